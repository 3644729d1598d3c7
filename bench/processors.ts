/**
 * Entry-processor benchmark, in one process over the MemoryNetwork with the real clock
 * (messages go through the real frame codec and validation): 3 data members and 1 lite
 * member as the client, backupCount 1, 271 partitions — the setup of bench/imap.ts.
 *
 *   bun run bench/processors.ts   |   deno run -A bench/processors.ts
 *
 * Prints calls/s with 64 calls in flight of plain `set` and of `executeOnKey(increment)` on
 * 10,000 keys, and of both on one hot key (one partition: every call waits its turn on the
 * primary), then one JSON line with the numbers.
 */
import { exit, runtimeVersion } from "../src/runtime/process.ts";
import { loadAverage } from "./_cluster.ts";
import { memoryGrids } from "./_memory_grid.ts";

const { grids, threeAndClient } = memoryGrids();
const client = await threeAndClient();
const map = client.getMap<string, number>("bench");

async function rate(total: number, inFlight: number, call: (i: number) => Promise<unknown>): Promise<number> {
  let next = 0;
  const t = performance.now();
  await Promise.all(Array.from({ length: inFlight }, async () => {
    while (next < total) await call(next++);
  }));
  return total / ((performance.now() - t) / 1000);
}

await rate(5000, 64, (i) => map.set(`w${i}`, i)); // warm-up
const set = await rate(30_000, 64, (i) => map.set(`k${i % 10_000}`, i));
const inc = await rate(30_000, 64, (i) => map.executeOnKey(`k${i % 10_000}`, "increment"));
const setHot = await rate(10_000, 64, (i) => map.set("hot", i));
await map.delete("hot");
const incHot = await rate(10_000, 64, () => map.executeOnKey("hot", "increment"));
const hot = await map.get("hot");

const f = (n: number) => `${Math.round(n).toLocaleString("en-US")} calls/s`;
console.log(`runtime: ${runtimeVersion()}, load average ${loadAverage()}`);
console.log(`set, 10,000 keys, 64 in flight:                 ${f(set)}`);
console.log(`executeOnKey(increment), same keys:             ${f(inc)} (${(inc / set * 100).toFixed(0)}% of set)`);
console.log(`set, one hot key, 64 in flight:                 ${f(setHot)}`);
console.log(`executeOnKey(increment), one hot key:           ${f(incHot)} (final value ${hot}, expected 10000)`);
console.log(JSON.stringify({ bench: "processors", set, increment: inc, setHot, incrementHot: incHot }));
for (const g of grids.values()) g.stop();
exit(0);
