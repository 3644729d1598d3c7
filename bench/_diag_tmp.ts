// TEMPORARY diagnostic, not committed: single sets (one write each, like REST PUTs), heap after GC and buffers per tenth.
import nodeProcess from "node:process";
import { memoryGrids } from "./_memory_grid.ts";
const ENTRIES = Number(Bun.argv[2] ?? 200000), LIMIT = ENTRIES / 10;
const { grids, threeAndClient } = memoryGrids({ seed: 7, maps: { "cache*": { maxSizePerMember: LIMIT, eviction: "lru" } } });
const client = await threeAndClient();
const a = grids.get("a")!;
const m = client.getMap<number, string>("cache-1");
const value = "x".repeat(100);
let next = 0, done = 0;
const rep = () => {
  Bun.gc(true);
  const b = a.maps.bufferStats();
  console.log(`${done}: heap ${(nodeProcess.memoryUsage().heapUsed / 1e6).toFixed(1)} MB; member a buffers: log ${b.log} (${(b.logBytes/1e6).toFixed(1)} MB) events ${b.events} (${(b.eventBytes/1e6).toFixed(1)} MB) dedupe ${b.dedupe} (${(b.dedupeBytes/1e6).toFixed(1)} MB) tombstones ${b.tombstones}`);
};
const worker = async () => {
  for (let k = next++; k < ENTRIES; k = next++) {
    await m.set(k, value);
    if (++done % (ENTRIES / 10) === 0) rep();
  }
};
await Promise.all(Array.from({ length: 64 }, worker));
nodeProcess.exit(0);
