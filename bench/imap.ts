/**
 * IMap benchmark, in one process over the MemoryNetwork with the real clock (messages go
 * through the real frame codec and validation; links add no delay): 3 data members and 1
 * lite member as the client, backupCount 1, 271 partitions.
 *
 *   bun run bench/imap.ts      |   deno run -A bench/imap.ts
 *   bun run bench/imap.ts --delay-ms 1          # each hop delayed (stands in for a process hop)
 *   bun run bench/imap.ts --direct-acks         # backups ack writes straight to the caller
 *
 * Prints put/get latency p50/p99 (one call at a time), throughput with 64 calls in
 * flight, migration MB/s when a 4th data member joins a map of 100,000 entries, and the
 * time from a member's crash being known to every partition being writable again.
 */
import { args as processArgs, exit, runtimeVersion } from "../src/runtime/process.ts";
import type { DataGrid } from "../src/map/data_grid.ts";
import { memoryGrids } from "./_memory_grid.ts";

const args = processArgs();
const delayAt = args.indexOf("--delay-ms");
const delayMs = delayAt >= 0 ? Number(args[delayAt + 1]) : 0;
const directBackupAcks = args.includes("--direct-acks");

const { net, cluster, grids, add } = memoryGrids({ delayMs, map: { directBackupAcks } });
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function settled(g: DataGrid, want: number): Promise<number> {
  const t = performance.now();
  for (;;) {
    const s = g.partitionSummary();
    if (s.migrating === 0 && s.replicasMissing === 0 && Object.keys(s.owners).length === want) {
      return performance.now() - t;
    }
    await sleep(5);
  }
}

const pct = (xs: number[], p: number) =>
  xs.slice().sort((a, b) => a - b)[Math.min(xs.length - 1, Math.floor(xs.length * p))];
const fmt = (ms: number) => `${(ms * 1000).toFixed(0)} µs`;

const a = await add("a");
await add("b");
await add("c");
const client = await add("client", true);
await settled(a, 3);
const map = client.getMap<string, string>("bench");
const value = "x".repeat(100);

// warm-up
for (let i = 0; i < 2000; i++) await map.set(`w${i}`, value);

const putLat: number[] = [];
for (let i = 0; i < 3000; i++) {
  const t = performance.now();
  await map.put(`k${i}`, value);
  putLat.push(performance.now() - t);
}
const getLat: number[] = [];
for (let i = 0; i < 3000; i++) {
  const t = performance.now();
  await map.get(`k${i}`);
  getLat.push(performance.now() - t);
}

async function throughput(kind: "put" | "get", total: number, inFlight: number): Promise<number> {
  let next = 0;
  const t = performance.now();
  await Promise.all(Array.from({ length: inFlight }, async () => {
    while (next < total) {
      const i = next++;
      if (kind === "put") await map.set(`t${i % 10_000}`, value);
      else await map.get(`t${i % 10_000}`);
    }
  }));
  return total / ((performance.now() - t) / 1000);
}
const putTput = await throughput("put", 30_000, 64);
const getTput = await throughput("get", 30_000, 64);

// migration: 100,000 entries, then a 4th data member joins
const entries: Array<[string, string]> = [];
for (let i = 0; i < 100_000; i++) entries.push([`m${i}`, value]);
for (let i = 0; i < entries.length; i += 5000) {
  await client.getMap<string, string>("big").putAll(entries.slice(i, i + 5000));
}
let bytesBefore = 0;
for (const g of grids.values()) bytesBefore += 0 * g.localMaps().length;
const statsBefore = ["a", "b", "c"].reduce((s, id) => s + net.node(id)!.stats().bytesSent, 0);
const tJoin = performance.now();
await add("d");
await settled(a, 4);
const migrationMs = performance.now() - tJoin;
const migratedBytes = ["a", "b", "c"].reduce((s, id) => s + net.node(id)!.stats().bytesSent, 0) - statsBefore;

// failover: crash the master; time from the view change to every partition writable
net.crash("a");
grids.get("a")!.stop();
grids.delete("a");
cluster.remove("a");
const tFail = performance.now();
cluster.publish();
await Promise.all(Array.from({ length: 271 }, async (_, p) => {
  // a key in each partition
  const { partitionOf } = await import("../src/partition/partition_of.ts");
  let i = 0;
  while (partitionOf(`f${p}-${i}`, 271) !== p) i++;
  await map.set(`f${p}-${i}`, value);
}));
const failoverMs = performance.now() - tFail;

const runtime = runtimeVersion();
console.log(
  `IMap bench (${runtime}; in-process MemoryNetwork, ${delayMs} ms per hop, real codec, 3 data + 1 lite client, backup 1, 271 partitions, 100 B values, backups ack ${
    directBackupAcks ? "straight to the caller" : "to the primary"
  })`,
);
console.log(`  put  p50 ${fmt(pct(putLat, 0.5))}  p99 ${fmt(pct(putLat, 0.99))}`);
console.log(`  get  p50 ${fmt(pct(getLat, 0.5))}  p99 ${fmt(pct(getLat, 0.99))}`);
console.log(
  `  64 in flight: ${Math.round(putTput).toLocaleString("en")} puts/s, ${
    Math.round(getTput).toLocaleString("en")
  } gets/s`,
);
console.log(
  `  migration on join (100,000 entries): ${(migrationMs / 1000).toFixed(2)} s, ${
    (migratedBytes / 1e6 / (migrationMs / 1000)).toFixed(1)
  } MB/s sent by the old members`,
);
console.log(`  failover (view change → all 271 partitions writable): ${failoverMs.toFixed(0)} ms`);
for (const g of grids.values()) g.stop();
exit(0);
