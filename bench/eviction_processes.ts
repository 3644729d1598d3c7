/**
 * Eviction on real processes: 3 member processes (Bun, Deno, Bun) over WebRTC with a map
 * `evict` limited to `--limit` entries per member (LRU), loaded with `--entries` entries
 * (100-byte values, `--value-bytes`) through the members' REST API (`PUT /maps/evict/:key`, 24 in flight, spread over the members).
 *
 *   bun run bench/eviction_processes.ts                       # 200,000 entries, limit 20,000
 *   deno run -A bench/eviction_processes.ts --entries 20000 --limit 2000 --value-bytes 1000
 *
 * Prints the most entries any member held as primary (sampled from `GET /metrics` every 300 ms
 * during and after the load), each member's primaries, backups and evictions at the end, its
 * RSS (from /proc) after the first fill (3 × limit entries loaded), at each tenth of the load
 * and at the end, the least JS heap used sampled in each tenth, the most partitions it owned
 * and the fewest members it listed (a split or a lost member shows there), and the PUTs
 * retried; and at each tenth, each member's RSS, JS heap used and reserved and external buffers
 * right after a full garbage collection that returns free pages (`GET /metrics?gc=1`, members
 * run with --expose-gc; `--gc-samples 0` leaves it out, since at the full size the collection
 * pauses a member for seconds). `--partitions N` sets the partition count (271). Ends with one
 * JSON line of the raw figures. test/map_eviction_process_test.ts runs it at 6,000 entries.
 */
import { readFileSync } from "node:fs";
import { args, env } from "../src/runtime/process.ts";
import { type Member, startMember } from "../test/support/cluster.ts";
import { until } from "../test/support/until.ts";
import {
  benchMember,
  clusterOf,
  flag,
  runBench,
  sampleOf,
  scrapeMetrics,
  scrapeMetricsAfterGc,
  sleep,
} from "./_cluster.ts";

export interface EvictionFigures {
  entries: number;
  limit: number;
  loadMs: number;
  members: Array<{
    name: string;
    runtime: string;
    /** Most primary entries of the map seen on this member at any sample. */
    maxPrimary: number;
    primary: number;
    backup: number;
    evicted: number;
    rssFirstFillMb: number;
    rssEndMb: number;
    /** RSS in MB at each tenth of the load (after 10 %, 20 %, … of the entries). */
    rssCurveMb: number[];
    /**
     * Least JS heap used (MB) sampled during each tenth of the load: heap used includes garbage
     * not yet collected, so its low points (just after a collection) bound the live heap from above.
     */
    heapFloorMb: number[];
    /**
     * Memory after a full garbage collection (the member runs with --expose-gc and is scraped with
     * `GET /metrics?gc=1`) at each tenth of the load, in MB: RSS, JS heap used and reserved, external buffers.
     */
    afterGc: MemoryAfterGc[];
    /** Most partitions this member owned as primary at any sample, and fewest members it listed. */
    maxOwned: number;
    minMembers: number;
  }>;
  /** PUTs answered with an error or not at all, then retried (a retried PUT may write an evicted key again). */
  retries: number;
  /** Samples at which some member had a migration in flight. */
  migratingSamples: number;
}

/** A member's memory in MB right after a full garbage collection. */
export interface MemoryAfterGc {
  rss: number;
  used: number;
  total: number;
  external: number;
}

/** Forces a full collection on `m` and reads its memory right after (NaN figures when three scrapes failed). */
async function memoryAfterGc(m: Member): Promise<MemoryAfterGc> {
  let t = await scrapeMetricsAfterGc(m);
  // A scrape can time out on a loaded machine: twice more.
  for (let i = 0; i < 2 && !t; i++) (await sleep(500), t = await scrapeMetricsAfterGc(m));
  const mb = (x: number) => Math.round(x / 1024 / 1024 * 10) / 10;
  return {
    rss: mb(sampleOf(t, "shoal_process_resident_memory_bytes")),
    used: mb(sampleOf(t, "shoal_process_heap_bytes", `kind="used"`)),
    total: mb(sampleOf(t, "shoal_process_heap_bytes", `kind="total"`)),
    external: mb(sampleOf(t, "shoal_process_heap_bytes", `kind="external"`)),
  };
}

/** Resident set size of process `pid` in MB (NaN where /proc is not there). */
function rssMb(pid: number): number {
  try {
    const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, "utf8"));
    return m ? Number(m[1]) / 1024 : NaN;
  } catch {
    return NaN;
  }
}

const MAP = "evict";

/** One scrape per member: [primary, backup, evicted] of the map and the JS heap used in MB. */
async function counts(members: Member[]): Promise<Array<[number, number, number, number]>> {
  return await Promise.all(members.map(async (m) => {
    const t = await scrapeMetrics(m);
    return [
      sampleOf(t, "shoal_map_entries", `map="${MAP}",role="primary"`),
      sampleOf(t, "shoal_map_entries", `map="${MAP}",role="backup"`),
      sampleOf(t, "shoal_replication_events_total", `event="evicted"`),
      sampleOf(t, "shoal_process_heap_bytes", `kind="used"`) / 1024 / 1024,
    ] as [number, number, number, number];
  }));
}

/** Starts the members, loads the map, samples, and stops everything it started. */
export async function runEviction(
  o: {
    entries: number;
    limit: number;
    /** Bytes per value. @default 100 */
    valueBytes?: number;
    /** PUTs in flight. @default 24 */
    concurrency?: number;
    /** Partitions (`--partition-count`). @default 271 */
    partitions?: number;
    /**
     * Memory after a full GC at each tenth (`afterGc`). Such a collection paused a Deno member
     * with a 60 MB live heap for 3–5 s at load 12, long enough to be suspected by the others. @default true
     */
    gcSamples?: boolean;
    log?: (s: string) => void;
  },
): Promise<EvictionFigures> {
  const log = o.log ?? (() => {});
  const mapArgs = [
    "--map",
    `${MAP}:maxSizePerMember=${o.limit},eviction=lru`,
    ...(o.partitions ? ["--partition-count", String(o.partitions)] : []),
  ];
  // --expose-gc, so that `GET /metrics?gc=1` measures after a full collection (DENO_V8_FLAGS already set is kept).
  const v8Flags = [env("DENO_V8_FLAGS"), "--expose-gc"].filter((f) => f).join(" ");
  const opts = {
    ...benchMember,
    args: [...(benchMember.args ?? []), ...mapArgs],
    env: { BUN_OPTIONS: "--expose-gc", DENO_V8_FLAGS: v8Flags },
  };
  const a = await startMember({ name: "a", runtime: "bun", ...opts });
  const members = [
    a,
    await startMember({ name: "b", runtime: "deno", join: a.url, ...opts }),
    await startMember({ name: "c", runtime: "bun", join: a.url, ...opts }),
  ];
  try {
    await until(
      async () => {
        const vs = await Promise.all(members.map((m) => clusterOf(m).catch(() => null)));
        return vs.every((v) =>
          v && v.members.length === 3 && v.partitions.replicasMissing === 0 && v.partitions.migrating === 0
        ) || undefined;
      },
      120_000,
      "3 members with full replicas and no migration",
    );
    log(`cluster up; loading ${o.entries} entries, limit ${o.limit} per member`);
    const maxPrimary = members.map(() => 0);
    const maxOwned = members.map(() => 0);
    const minMembers = members.map(() => Infinity);
    let heapLow = members.map(() => Infinity);
    let migratingSamples = 0;
    let sampling = true;
    const sampler = (async () => {
      while (sampling) {
        (await counts(members)).forEach(([p, , , heap], i) => {
          maxPrimary[i] = Math.max(maxPrimary[i], p || 0);
          if (heap > 0) heapLow[i] = Math.min(heapLow[i], heap);
        });
        const views = await Promise.all(members.map((m) => clusterOf(m).catch(() => null)));
        views.forEach((v, i) => {
          if (!v) return;
          maxOwned[i] = Math.max(maxOwned[i], v.partitions.owners[v.self] ?? 0);
          minMembers[i] = Math.min(minMembers[i], v.members.length);
        });
        if (views.some((v) => v && v.partitions.migrating > 0)) migratingSamples++;
        await sleep(300);
      }
    })();
    const value = "v".repeat(o.valueBytes ?? 100);
    let rssFirst: number[] = [];
    const rssCurve: number[][] = members.map(() => []);
    const heapFloor: number[][] = members.map(() => []);
    const afterGc: MemoryAfterGc[][] = members.map(() => []);
    let retries = 0;
    const t0 = Date.now();
    // REST PUTs spread over the members, `concurrency` in flight; each retried until acknowledged.
    let next = 0;
    let done = 0;
    const worker = async () => {
      for (let k = next++; k < o.entries; k = next++) {
        const via = members[k % members.length];
        for (let attempt = 0;; attempt++) {
          const r = await fetch(`${via.url}/maps/${MAP}/key-${k}`, {
            method: "PUT",
            body: JSON.stringify(value + k),
            headers: { "content-type": "application/json" },
          }).catch(() => null);
          await r?.body?.cancel();
          if (r?.ok) break;
          retries++;
          if (attempt >= 20) throw new Error(`PUT key-${k} failed: ${r?.status ?? "no answer"}`);
          await sleep(200);
        }
        if (++done === 3 * o.limit) {
          rssFirst = members.map((m) => rssMb(m.child.pid));
          log(`first fill (${done} entries): RSS ${rssFirst.map((r) => r.toFixed(0)).join(" / ")} MB`);
        }
        if (done % (o.entries / 10) === 0) {
          members.forEach((m, i) => rssCurve[i].push(Math.round(rssMb(m.child.pid))));
          members.forEach((_, i) => heapFloor[i].push(Math.round(heapLow[i])));
          heapLow = members.map(() => Infinity);
          // One member at a time: a scrape makes the member ask the others for map sizes.
          const gcs: MemoryAfterGc[] = [];
          if (o.gcSamples ?? true) { for (const m of members) gcs.push(await memoryAfterGc(m)); }
          gcs.forEach((g, i) => afterGc[i].push(g));
          log(
            `${done} entries: RSS ${rssCurve.map((c) => c.at(-1)).join(" / ")} MB, least heap used ${
              heapFloor.map((c) => c.at(-1)).join(" / ")
            } MB, after a full GC (RSS/used/total/external) ${
              gcs.map((g) => `${g.rss}/${g.used}/${g.total}/${g.external}`).join(" , ")
            } MB, ${retries} retries`,
          );
        }
      }
    };
    await Promise.all(Array.from({ length: o.concurrency ?? 24 }, worker));
    const loadMs = Date.now() - t0;
    // Let the last evictions replicate, then the final figures.
    await sleep(3000);
    sampling = false;
    await sampler;
    const end = await counts(members);
    end.forEach(([p], i) => (maxPrimary[i] = Math.max(maxPrimary[i], p || 0)));
    const rssEnd = members.map((m) => rssMb(m.child.pid));
    return {
      entries: o.entries,
      limit: o.limit,
      loadMs,
      members: members.map((m, i) => ({
        name: m.name,
        runtime: m.runtime,
        maxPrimary: maxPrimary[i],
        primary: end[i][0],
        backup: end[i][1],
        evicted: end[i][2],
        rssFirstFillMb: rssFirst[i],
        rssEndMb: rssEnd[i],
        rssCurveMb: rssCurve[i],
        heapFloorMb: heapFloor[i],
        afterGc: afterGc[i],
        maxOwned: maxOwned[i],
        minMembers: minMembers[i],
      })),
      retries,
      migratingSamples,
    };
  } catch (err) {
    // What the members logged (warnings and errors) says why.
    for (const m of members) log(`--- ${m.name} (${m.runtime}) stderr:\n${m.stderr().slice(-3000)}`);
    throw err;
  } finally {
    for (const m of members) m.kill9();
  }
}

if (import.meta.main) {
  await runBench(async () => {
    const argv = args();
    const entries = Number(flag(argv, "entries", "200000"));
    const valueBytes = Number(flag(argv, "value-bytes", "100"));
    const limit = Number(flag(argv, "limit", String(entries / 10)));
    const partitions = Number(flag(argv, "partitions", "271"));
    const gcSamples = flag(argv, "gc-samples", "1") !== "0";
    const f = await runEviction({ entries, limit, valueBytes, partitions, gcSamples, log: (s) => console.log(s) });
    console.log(`loaded ${entries} entries in ${(f.loadMs / 1000).toFixed(1)} s`);
    for (const m of f.members) {
      console.log(
        `  ${m.name} (${m.runtime}): most primaries seen ${m.maxPrimary} (${
          ((m.maxPrimary / limit - 1) * 100).toFixed(2)
        } % over the limit), at the end ${m.primary} primary / ${m.backup} backup, ${m.evicted} evicted; RSS ${
          m.rssFirstFillMb.toFixed(0)
        } MB after the first fill, ${m.rssEndMb.toFixed(0)} MB at the end`,
      );
    }
    for (const m of f.members) {
      console.log(
        `  ${m.name} (${m.runtime}) after a full GC at each tenth, MB: RSS ${
          m.afterGc.map((g) => g.rss).join(" ")
        }; heap used ${m.afterGc.map((g) => g.used).join(" ")}; heap reserved ${
          m.afterGc.map((g) => g.total).join(" ")
        }; external ${m.afterGc.map((g) => g.external).join(" ")}`,
      );
    }
    console.log(`${f.retries} PUTs retried; a migration was in flight at ${f.migratingSamples} samples`);
    console.log(JSON.stringify(f));
  });
}
