/**
 * Expiry, eviction and entry-listener benchmark, in one process over the MemoryNetwork with
 * the real clock (frames through the real codec and validation): 3 data members and 1 lite
 * member as the client, backupCount 1, 271 partitions.
 *
 *   bun run bench/expiry.ts      |   deno run -A bench/expiry.ts
 *   bun run bench/expiry.ts --entries 200000 --limit 20000
 *   bun run bench/expiry.ts --only eviction --log-per-partition 16   # logs fill early: RSS levels off within the load
 *
 * Prints:
 * - eviction: loading `--entries` (default 200,000) into a map with `maxSizePerMember:
 *   --limit` (default 20,000): the most entries any member held as primary (sampled during
 *   and after the load), the backups' total, and the process RSS after the first fill and at the end;
 * - the expiry sweep: CPU ms of the whole process to expire 100,000 entries (over an idle
 *   baseline of the same length);
 * - events per second to 1 and to 10 listeners, and put throughput with 0 and 10 listeners.
 * Ends with one JSON line of the raw figures.
 */
import nodeProcess from "node:process";
import type { DataGrid } from "../src/map/data_grid.ts";
import { memoryGrids } from "./_memory_grid.ts";

// deno-lint-ignore no-explicit-any
const g0 = globalThis as any;
const args: string[] = g0.Deno?.args ?? g0.process?.argv?.slice(2) ?? [];
const arg = (name: string, def: number) => {
  const i = args.indexOf(name);
  return i >= 0 ? Number(args[i + 1]) : def;
};
const ENTRIES = arg("--entries", 200_000);
const onlyAt = args.indexOf("--only");
/** `--only eviction|sweep|listeners` runs one part. */
const only = onlyAt >= 0 ? args[onlyAt + 1] : undefined;
const part = (name: string) => only === undefined || only === name;
const LIMIT = arg("--limit", 20_000);
/** Writes (and entry events) each partition keeps for re-shipping (and listeners); defaults as the node's. */
const LOG = arg("--log-per-partition", 256);
const EVENTS = arg("--events-per-partition", 256);
const EXPIRING = 100_000;
const TTL_MS = 90_000;

/** RSS after a full garbage collection where the runtime offers one (Bun.gc; deno with --v8-flags=--expose-gc). */
const rss = (): number => {
  g0.Bun?.gc?.(true);
  g0.gc?.();
  return nodeProcess.memoryUsage().rss;
};
/** Live heap after the GC `rss()` runs (call rss() first). */
const heapUsed = (): number => nodeProcess.memoryUsage().heapUsed;
const cpuMs = (): number => {
  const u = nodeProcess.cpuUsage();
  return (u.user + u.system) / 1000;
};
const mb = (b: number) => `${(b / 1024 / 1024).toFixed(0)} MB`;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

const { grids, threeAndClient } = memoryGrids({
  seed: 7,
  map: { logPerPartition: LOG, eventsPerPartition: EVENTS },
  maps: { "cache*": { maxSizePerMember: LIMIT, eviction: "lru" } },
});
const client = await threeAndClient();
const data = ["a", "b", "c"].map((id) => grids.get(id)!);

const primaryCount = (g: DataGrid, map: string) => g.localMaps().find((m) => m.name === map)?.size ?? 0;

const value = "x".repeat(100);
const BATCH = 5_000;
const figures: Record<string, unknown> = { entries: ENTRIES, limit: LIMIT };

// ---- eviction -----------------------------------------------------------------------------
async function eviction(): Promise<void> {
  console.log(
    `eviction: ${ENTRIES.toLocaleString()} entries into "cache-1", maxSizePerMember ${LIMIT.toLocaleString()}`,
  );
  const cache = client.getMap<number, string>("cache-1");
  let maxSeen = 0;
  const sample = () => {
    for (const g of data) maxSeen = Math.max(maxSeen, primaryCount(g, "cache-1"));
  };
  let rssAfterFill = 0;
  const rssSamples: number[] = [];
  // Live heap after a full GC: what the process holds, without the allocator's slack that RSS shows.
  let heapAfterFill = 0;
  const heapSamples: number[] = [];
  const t0 = performance.now();
  for (let i = 0; i < ENTRIES; i += BATCH) {
    const batch: Array<[number, string]> = [];
    for (let j = i; j < Math.min(ENTRIES, i + BATCH); j++) batch.push([j, value]);
    await cache.putAll(batch);
    sample();
    if (rssAfterFill === 0 && i + BATCH >= LIMIT * 3) (rssAfterFill = rss(), heapAfterFill = heapUsed());
    if ((i / BATCH) % Math.max(1, Math.floor(ENTRIES / BATCH / 8)) === 0) {
      (rssSamples.push(rss()), heapSamples.push(heapUsed()));
    }
  }
  const loadMs = performance.now() - t0;
  await sleep(500);
  sample();
  const finalPrimaries = data.map((g) => primaryCount(g, "cache-1"));
  const backups = data.map((g) => g.maps.debugReplicas().filter((r) => !r.primary).reduce((n, r) => n + r.entries, 0));
  const rssEnd = rss();
  const heapEnd = heapUsed();
  console.log(
    `  load ${(ENTRIES / (loadMs / 1000)).toFixed(0)} entries/s; most primaries on one member at any sample: ` +
      `${maxSeen} (limit ${LIMIT}, +${(((maxSeen - LIMIT) / LIMIT) * 100).toFixed(2)} %); at the end ${
        finalPrimaries.join(" / ")
      }`,
  );
  console.log(`  backup entries per member at the end: ${backups.join(" / ")} (other maps: none)`);
  console.log(
    `  RSS after the first fill ${mb(rssAfterFill)}, during the load ${rssSamples.map(mb).join(", ")}, at the end ${
      mb(rssEnd)
    }`,
  );
  console.log(
    `  live heap after the first fill ${mb(heapAfterFill)}, during the load ${
      heapSamples.map(mb).join(", ")
    }, at the end ${mb(heapEnd)}`,
  );
  Object.assign(figures, {
    maxPrimariesSeen: maxSeen,
    finalPrimaries,
    backups,
    rssAfterFill,
    rssSamples,
    rssEnd,
    heapAfterFill,
    heapSamples,
    heapEnd,
  });
  await cache.destroy();
}

// ---- expiry sweep -------------------------------------------------------------------------
// 100,000 entries loaded with putAll, each batch with the TTL that makes every entry expire
// at the same moment; the CPU of the whole process from then until every entry is gone,
// over an idle baseline.
async function sweep(): Promise<void> {
  const idleCpu0 = cpuMs();
  await sleep(2000);
  const idleCpuPerMs = (cpuMs() - idleCpu0) / 2000;
  const ttlMap = client.getMap<number, string>("ttl-bench");
  const t1 = performance.now();
  for (let i = 0; i < EXPIRING; i += BATCH) {
    const batch: Array<[number, string]> = [];
    for (let j = i; j < Math.min(EXPIRING, i + BATCH); j++) batch.push([j, value]);
    await ttlMap.putAll(batch, { ttlMs: Math.max(1, Math.round(t1 + TTL_MS - performance.now())) });
  }
  const loadedMs = performance.now() - t1;
  if (loadedMs > TTL_MS) console.log(`  (loading took ${loadedMs.toFixed(0)} ms, longer than the TTL: raise TTL_MS)`);
  const before = data.reduce((n, g) => n + g.maps.housekeeping.counters.expired, 0);
  await sleep(Math.max(0, t1 + TTL_MS - performance.now()));
  const c0 = cpuMs();
  const s0 = performance.now();
  while (data.reduce((n, g) => n + primaryCount(g, "ttl-bench"), 0) > 0) await sleep(20);
  const sweepWallMs = performance.now() - s0;
  const sweepCpuMs = cpuMs() - c0 - idleCpuPerMs * sweepWallMs;
  const expired = data.reduce((n, g) => n + g.maps.housekeeping.counters.expired, 0) - before;
  console.log(
    `expiry sweep: ${expired.toLocaleString()} entries expired over ${sweepWallMs.toFixed(0)} ms (loaded over ` +
      `${loadedMs.toFixed(0)} ms): ${sweepCpuMs.toFixed(0)} CPU ms over the idle baseline for the whole cluster ` +
      `(sweeps, replicated removals, backups applying them) = ${
        (sweepCpuMs / expired * 100_000).toFixed(0)
      } ms per 100,000`,
  );
  Object.assign(figures, { sweepEntries: expired, sweepWallMs, sweepCpuMs });
}

// ---- listeners ----------------------------------------------------------------------------
async function putThroughput(map: string, ms: number): Promise<number> {
  const m = client.getMap<number, string>(map);
  let n = 0;
  const end = performance.now() + ms;
  await Promise.all(Array.from({ length: 64 }, async (_, w) => {
    for (let i = w; performance.now() < end; i += 64) {
      await m.set(i % 10_000, value);
      n++;
    }
  }));
  return n / (ms / 1000);
}

async function eventsPerSecond(listeners: number): Promise<{ eventsPerS: number; putsPerS: number }> {
  const name = `ev${listeners}`;
  const got = new Array(listeners).fill(0);
  const ids: string[] = [];
  for (let l = 0; l < listeners; l++) {
    ids.push(await data[l % 3].getMap<number, string>(name).addEntryListener(() => void got[l]++));
  }
  const t = performance.now();
  const putsPerS = await putThroughput(name, 5000);
  const total = Math.round(putsPerS * 5);
  while (got.some((n) => n < total) && performance.now() - t < 60_000) await sleep(10);
  const s = (performance.now() - t) / 1000;
  for (let l = 0; l < listeners; l++) data[l % 3].getMap(name).removeEntryListener(ids[l]);
  return { eventsPerS: got.reduce((a, b) => a + b, 0) / s, putsPerS };
}

async function listeners(): Promise<void> {
  const puts0 = await putThroughput("plain", 5000);
  const one = await eventsPerSecond(1);
  const ten = await eventsPerSecond(10);
  console.log(
    `puts/s (64 in flight): ${puts0.toFixed(0)} with no listener, ${ten.putsPerS.toFixed(0)} with 10 listeners`,
  );
  console.log(
    `events/s delivered: ${one.eventsPerS.toFixed(0)} to 1 listener, ${
      ten.eventsPerS.toFixed(0)
    } in total to 10 listeners`,
  );
  Object.assign(figures, {
    putsPerS0: puts0,
    putsPerS10: ten.putsPerS,
    eventsPerS1: one.eventsPerS,
    eventsPerS10: ten.eventsPerS,
  });
}

if (part("eviction")) await eviction();
if (part("sweep")) await sweep();
if (part("listeners")) await listeners();
console.log(JSON.stringify(figures));
for (const g of grids.values()) g.stop();
g0.process?.exit?.(0);
g0.Deno?.exit?.(0);
