/**
 * Shared by the in-process benches (imap.ts, processors.ts, expiry.ts, memory.ts): data-grid members over the
 * MemoryNetwork with the real clock (messages go through the real frame codec and
 * validation), 271 partitions, backupCount 1, membership from a TestCluster.
 */
import { realClock } from "../src/core/clock.ts";
import { silentLogger } from "../src/core/log.ts";
import { Random } from "../src/core/random.ts";
import { DataGrid } from "../src/map/data_grid.ts";
import type { MapServiceConfig } from "../src/map/map_service.ts";
import type { MapsConfig } from "../src/map/map_config.ts";
import { MemoryNetwork } from "../src/transport/memory.ts";
import { MessageRouter } from "../src/transport/router.ts";
import { TestCluster } from "../test/support/test_cluster_view.ts";

/**
 * Members in one process; `add` starts one, links it to the others and publishes the member list.
 * @param opts.seed randomness of the network and the members @default 42
 * @param opts.maps per-map configuration (name patterns) of every member
 */
export function memoryGrids(opts: { delayMs?: number; map?: MapServiceConfig; maps?: MapsConfig; seed?: number } = {}) {
  const rng = new Random(opts.seed ?? 42);
  const net = new MemoryNetwork({
    clock: realClock,
    rng: rng.fork(),
    link: { delayMs: opts.delayMs ?? 0 },
    encode: true,
    connectDelayMs: 0,
  });
  const cluster = new TestCluster();
  const grids = new Map<string, DataGrid>();
  async function add(id: string, lite = false): Promise<DataGrid> {
    const transport = net.attach(id);
    const router = new MessageRouter(transport);
    const grid = new DataGrid({
      self: id,
      view: cluster.add(id, lite),
      transport,
      router,
      clock: realClock,
      rng: rng.fork(),
      log: silentLogger,
      config: { partitionCount: 271, backupCount: 1, asyncBackupCount: 0, lite, map: opts.map, maps: opts.maps },
    });
    for (const other of grids.keys()) await transport.connect(other);
    grids.set(id, grid);
    cluster.publish();
    return grid;
  }
  /** Starts data members a, b, c and a lite client, and waits until every partition has its replicas. */
  async function threeAndClient(): Promise<DataGrid> {
    const a = await add("a");
    await add("b");
    await add("c");
    const client = await add("client", true);
    for (;;) {
      const s = a.partitionSummary();
      if (s.migrating === 0 && s.replicasMissing === 0 && Object.keys(s.owners).length === 3) return client;
      await new Promise((r) => setTimeout(r, 5));
    }
  }
  return { net, cluster, grids, add, threeAndClient };
}
