/**
 * Memory per entry (issue 16): 3 data members and a lite client in this process over the
 * in-memory network (bench/_memory_grid.ts: backup 1, 271 partitions), `--entries` entries
 * (default 200,000) with 16-byte keys and 100-byte values loaded with `putAll` in chunks of
 * 5,000. Prints the growth of the process's RSS and of the JS heap after a full GC, per stored
 * copy (2 per entry: primary and backup) and per copy beyond the key and value bytes.
 *
 *   bun run bench/memory.ts [--entries 200000] [--log-per-partition 256] [--events-per-partition 256]
 *     [--log-bytes-per-partition N] [--event-bytes-per-partition N]   (defaults: the map service's)
 *   deno run -A --v8-flags=--expose-gc bench/memory.ts …
 *
 * The three members share one process, so what they share (code, runtime) is in the baseline,
 * taken after the members formed and before the load. The growth includes each member's
 * replication log (the last writes of each partition, kept for re-shipping to backups), as a
 * member process would.
 */
import { flag } from "./_cluster.ts";
import { memoryGrids } from "./_memory_grid.ts";
import type { DataGrid } from "../src/map/data_grid.ts";
import { mapServiceConfig } from "../src/map/map_context.ts";
import { args, collectGarbage, exit, runtimeVersion, writeStderrLine } from "../src/runtime/process.ts";
import { tuneRuntime } from "../src/runtime/tune.ts";
import process from "node:process";

// The members here run with a Bun member process's engine settings (src/runtime/tune.ts).
tuneRuntime(writeStderrLine);
const argv = args();
const ENTRIES = Number(flag(argv, "entries", "200000"));
const LOG = Number(flag(argv, "log-per-partition", "256"));
const EVENTS = Number(flag(argv, "events-per-partition", "256"));
const defaults = mapServiceConfig();
const LOG_BYTES = Number(flag(argv, "log-bytes-per-partition", String(defaults.logBytesPerPartition)));
const EVENT_BYTES = Number(flag(argv, "event-bytes-per-partition", String(defaults.eventBytesPerPartition)));
const KEY_BYTES = 16;
const VALUE = "v".repeat(100);
const CHUNK = 5000;

// deno-lint-ignore no-explicit-any
const g0 = globalThis as any;
/**
 * RSS and JS heap in use after a full garbage collection where the runtime offers one (under
 * Deno V8's last-resort flavour, which hands emptied heap pages back; a plain gc() keeps them),
 * and a second for the allocators to hand freed pages back (Bun's scavenger runs in the
 * background: RSS read at once varied by ±70 B per copy between runs of the same code).
 */
async function measure(): Promise<{ rss: number; heap: number }> {
  for (let i = 0; i < 3; i++) {
    g0.Bun?.gc?.(true);
    if (!g0.Bun) collectGarbage();
    await new Promise((r) => setTimeout(r, i === 1 ? 1000 : 50));
  }
  const m = process.memoryUsage();
  return { rss: m.rss, heap: m.heapUsed };
}

const { threeAndClient, grids } = memoryGrids({
  map: {
    logPerPartition: LOG,
    eventsPerPartition: EVENTS,
    logBytesPerPartition: LOG_BYTES,
    eventBytesPerPartition: EVENT_BYTES,
  },
});
const client = await threeAndClient();
const map = client.getMap<string, string>("memory");
// Warm-up outside the measured load (JIT, first buffers), then cleared.
await map.putAll(Array.from({ length: CHUNK }, (_, i) => [`warm-${String(i).padStart(11, "0")}`, VALUE]));
await map.clear();
const before = await measure();
const t0 = performance.now();
for (let i = 0; i < ENTRIES; i += CHUNK) {
  const part: Array<[string, string]> = [];
  for (let j = i; j < Math.min(ENTRIES, i + CHUNK); j++) {
    part.push([`key-${String(j).padStart(KEY_BYTES - 4, "0")}`, VALUE]);
  }
  await map.putAll(part);
}
const loadMs = performance.now() - t0;
const size = await map.size();
if (size !== ENTRIES) throw new Error(`size() ${size} after loading ${ENTRIES}`);
const after = await measure();

const copies = ENTRIES * 2;
const raw = KEY_BYTES + VALUE.length;
const per = (bytes: number) => bytes / copies;
const mb = (b: number) => `${(b / 1e6).toFixed(1)} MB`;
console.log(
  `Memory per entry (${runtimeVersion()}): ${ENTRIES.toLocaleString("en")} entries, ${KEY_BYTES} B keys, ` +
    `${VALUE.length} B values, backup 1, 3 members in one process, log ${LOG} writes / ${LOG_BYTES} B and events ${EVENTS} / ` +
    `${EVENT_BYTES} B per partition; ` +
    `loaded in ${(loadMs / 1000).toFixed(1)} s`,
);
console.log(`| figure | growth | per stored copy | beyond key + value (${raw} B) |\n|---|---:|---:|---:|`);
for (const [name, d] of [["RSS", after.rss - before.rss], ["JS heap in use", after.heap - before.heap]] as const) {
  console.log(`| ${name} | ${mb(d)} | ${per(d).toFixed(0)} B | ${(per(d) - raw).toFixed(0)} B |`);
}
// Where the live bytes are, summed over the data members (the typed arrays' own sizes, and the
// buffers' approximate byte counts as the map service keeps them).
const sum = <T extends Record<string, number>>(f: (g: DataGrid) => T): T => {
  const out: Record<string, number> = {};
  for (const g of grids.values()) for (const [k, v] of Object.entries(f(g))) out[k] = (out[k] ?? 0) + v;
  return out as T;
};
const st = sum((g) => g.maps.storeStats()), bs = sum((g) => g.maps.bufferStats());
const beyond = (b: number) => `${per(b).toFixed(1)} B`;
console.log(`\n| structure (live, all members) | bytes | per stored copy |\n|---|---:|---:|`);
for (
  const [name, b] of [
    [`record columns (${st.slots.toLocaleString("en")} slots)`, st.columns],
    ["key hash tables", st.table],
    ["arenas: key + value bytes of live records", st.arenaLive],
    ["arenas: written, not live", st.arenaUsed - st.arenaLive],
    ["arenas: not yet written", st.arena - st.arenaUsed],
    [`replication logs (${bs.log.toLocaleString("en")} writes, approx.)`, bs.logBytes],
    [`entry events (${bs.events.toLocaleString("en")}, approx., share the logs' bytes)`, bs.eventBytes],
  ] as const
) console.log(`| ${name} | ${mb(b)} | ${beyond(b)} |`);
console.log(JSON.stringify({
  bench: "memory",
  runtime: runtimeVersion(),
  entries: ENTRIES,
  logPerPartition: LOG,
  eventsPerPartition: EVENTS,
  logBytesPerPartition: LOG_BYTES,
  eventBytesPerPartition: EVENT_BYTES,
  rssGrowth: after.rss - before.rss,
  heapGrowth: after.heap - before.heap,
  rssPerCopyBeyond: per(after.rss - before.rss) - raw,
  heapPerCopyBeyond: per(after.heap - before.heap) - raw,
  members: grids.size,
  stores: st,
  buffers: bs,
}));
exit(0);
