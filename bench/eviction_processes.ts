/**
 * Eviction on real processes: 3 member processes (Bun, Deno, Bun) over WebRTC with a map
 * `evict` limited to `--limit` entries per member (LRU), loaded with `--entries` entries
 * (100-byte values, `--value-bytes`) by a lite member in this process through `putAll` batches of half the limit.
 *
 *   bun run bench/eviction_processes.ts                       # 200,000 entries, limit 20,000
 *   deno run -A bench/eviction_processes.ts --entries 20000 --limit 2000 --value-bytes 1000
 *
 * Prints the most entries any member held as primary (sampled from `GET /metrics` during and
 * after the load), each member's primaries and backups at the end, evictions, and each
 * member's RSS (from /proc) after the first fill (3 × limit entries loaded) and at the end.
 * Ends with one JSON line of the raw figures. test/map_eviction_process_test.ts runs it at a
 * tenth of the size.
 */
import { readFileSync } from "node:fs";
import type { Node } from "../src/node.ts";
import { startNode } from "../src/node.ts";
import { args } from "../src/runtime/process.ts";
import { type Member, startMember } from "../test/support/cluster.ts";
import { until } from "../test/support/until.ts";
import { benchMember, clusterOf, flag, runBench, sampleOf, scrapeMetrics, sleep } from "./_cluster.ts";

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
  }>;
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

/** One scrape per member: [primary, backup, evicted] of the map. */
async function counts(members: Member[]): Promise<Array<[number, number, number]>> {
  return await Promise.all(members.map(async (m) => {
    const t = await scrapeMetrics(m);
    return [
      sampleOf(t, "shoal_map_entries", `map="${MAP}",role="primary"`),
      sampleOf(t, "shoal_map_entries", `map="${MAP}",role="backup"`),
      sampleOf(t, "shoal_replication_events_total", `event="evicted"`),
    ] as [number, number, number];
  }));
}

/** Starts the members, loads the map, samples, and stops everything it started. */
export async function runEviction(
  o: {
    entries: number;
    limit: number;
    /** Bytes per value. @default 100 */
    valueBytes?: number;
    log?: (s: string) => void;
  },
): Promise<EvictionFigures> {
  const log = o.log ?? (() => {});
  const mapArgs = ["--map", `${MAP}:maxSizePerMember=${o.limit},eviction=lru`];
  const opts = { ...benchMember, args: [...(benchMember.args ?? []), ...mapArgs] };
  const a = await startMember({ name: "a", runtime: "bun", ...opts });
  const members = [
    a,
    await startMember({ name: "b", runtime: "deno", join: a.url, ...opts }),
    await startMember({ name: "c", runtime: "bun", join: a.url, ...opts }),
  ];
  let client: Node | undefined;
  try {
    await until(
      async () => {
        const vs = await Promise.all(members.map((m) => clusterOf(m).catch(() => null)));
        return vs.every((v) => v && v.members.length === 3 && v.partitions.replicasMissing === 0) || undefined;
      },
      120_000,
      "3 members with full replicas",
    );
    client = await startNode({
      name: "loader",
      lite: true,
      join: [a.url],
      secret: "test-secret",
      http: false,
      logLevel: "warn",
      maps: { [MAP]: { maxSizePerMember: o.limit, eviction: "lru" } },
    });
    const map = client.getMap<string, string>(MAP);
    await until(async () => (await map.size().catch(() => undefined)) === 0 || undefined, 60_000, "the client served");
    log(`cluster up; loading ${o.entries} entries, limit ${o.limit} per member`);
    const maxPrimary = members.map(() => 0);
    let sampling = true;
    const sampler = (async () => {
      while (sampling) {
        (await counts(members)).forEach(([p], i) => (maxPrimary[i] = Math.max(maxPrimary[i], p || 0)));
        await sleep(300);
      }
    })();
    const value = "v".repeat(o.valueBytes ?? 100);
    // One putAll is one invocation per partition: large batches keep that cost per entry low.
    const BATCH = Math.max(500, Math.floor(o.limit / 2));
    let rssFirst: number[] = [];
    const t0 = Date.now();
    for (let i = 0; i < o.entries; i += BATCH) {
      const batch: Array<[string, string]> = [];
      for (let k = i; k < Math.min(o.entries, i + BATCH); k++) batch.push([`key-${k}`, value + k]);
      await map.putAll(batch);
      if (rssFirst.length === 0 && i + BATCH >= 3 * o.limit) {
        rssFirst = members.map((m) => rssMb(m.child.pid));
        log(`first fill (${i + BATCH} entries): RSS ${rssFirst.map((r) => r.toFixed(0)).join(" / ")} MB`);
      }
    }
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
      })),
    };
  } finally {
    await client?.shutdown().catch(() => {});
    for (const m of members) m.kill9();
  }
}

if (import.meta.main) {
  await runBench(async () => {
    const argv = args();
    const entries = Number(flag(argv, "--entries", "200000"));
    const valueBytes = Number(flag(argv, "--value-bytes", "100"));
    const limit = Number(flag(argv, "--limit", String(entries / 10)));
    const f = await runEviction({ entries, limit, valueBytes, log: (s) => console.log(s) });
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
    console.log(JSON.stringify(f));
  });
}
