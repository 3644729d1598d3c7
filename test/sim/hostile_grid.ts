/**
 * The simulated cluster the hostile-member tests share: `data` honest data members and one lite
 * member (the liar) that joined honestly, so it holds the secret and valid links; a test then
 * sends through its transport (`wire`) whatever it likes. `SIM_LOG=debug` prints the members' logs.
 */
import type { DataGridConfig } from "../../src/map/data_grid.ts";
import type { MemoryTransport } from "../../src/transport/memory.ts";
import { fullReplicas, imapSimulation } from "./imap_sim.ts";

/**
 * Forms the cluster and waits until every partition is replicated.
 * @param seed the simulation's seed
 * @param data honest data members (the liar is the next id)
 * @param grid data grid settings over 31 partitions
 */
export async function gridWithLiar(seed: number, data = 3, grid: Partial<DataGridConfig> = {}) {
  const problems: string[] = [];
  const liar = `n${String(data).padStart(5, "0")}`;
  const sim = imapSimulation({
    seed,
    encode: true,
    grid: { partitionCount: 31, ...grid },
    isLite: (id) => id === liar,
    logLevel: process.env.SIM_LOG as "debug" | undefined,
    problems,
  });
  const first = sim.spawn();
  void first.m.start([]);
  await sim.run(10);
  for (let i = 0; i < data; i++) void sim.spawn().m.start([first.id]);
  await sim.until(() => fullReplicas(sim.liveNodes()), 60_000, 50, () => "cluster did not form");
  const honest = sim.liveNodes().slice(0, data);
  const evil = sim.liveNodes()[data];
  return { sim, problems, honest, evil, wire: sim.net.node(evil.id) as MemoryTransport };
}
