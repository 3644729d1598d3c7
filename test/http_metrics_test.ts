import { afterAll, describe, expect, test } from "bun:test";
import { RejectReasons } from "../src/cluster/part.ts";
import { toSecondsBuckets } from "../src/http/metrics.ts";
import { renderPrometheus } from "../src/http/prometheus.ts";
import { killAll, type Member, startMember } from "./support/cluster.ts";
import { until } from "./support/until.ts";

type ClusterJson = { members: unknown[]; partitions: { replicasMissing: number; migrating: number } };

describe("Prometheus text format", () => {
  test("renders HELP, TYPE and samples with escaped labels", () => {
    const text = renderPrometheus([
      { name: "shoal_members", help: "Live\nmembers", type: "gauge", samples: [{ value: 3 }] },
      { name: "shoal_x_total", help: "x", type: "counter", samples: [{ labels: { map: 'a"b\\c\nd' }, value: 1.5 }] },
      { name: "shoal_empty", help: "left out", type: "gauge", samples: [] },
      {
        name: "shoal_odd",
        help: "odd",
        type: "gauge",
        samples: [{ value: NaN }, { labels: { k: "v" }, value: Infinity }],
      },
    ]);
    expect(text).toBe(
      "# HELP shoal_members Live\\nmembers\n# TYPE shoal_members gauge\nshoal_members 3\n" +
        '# HELP shoal_x_total x\n# TYPE shoal_x_total counter\nshoal_x_total{map="a\\"b\\\\c\\nd"} 1.5\n' +
        '# HELP shoal_odd odd\n# TYPE shoal_odd gauge\nshoal_odd NaN\nshoal_odd{k="v"} +Inf\n',
    );
  });

  test("histograms get cumulative buckets, +Inf, _sum and _count", () => {
    const h = toSecondsBuckets({ boundsMs: [1, 10], counts: [2, 3, 1], sumMs: 40, count: 6 });
    expect(h).toEqual({
      buckets: [{ le: 0.001, count: 2 }, { le: 0.01, count: 5 }, { le: Infinity, count: 6 }],
      sum: 0.04,
      count: 6,
    });
    const text = renderPrometheus([{
      name: "op_seconds",
      help: "ops",
      type: "histogram",
      samples: [{ labels: { op: "get" }, ...h }],
    }]);
    expect(text.split("\n")).toEqual([
      "# HELP op_seconds ops",
      "# TYPE op_seconds histogram",
      'op_seconds_bucket{op="get",le="0.001"} 2',
      'op_seconds_bucket{op="get",le="0.01"} 5',
      'op_seconds_bucket{op="get",le="+Inf"} 6',
      'op_seconds_sum{op="get"} 0.04',
      'op_seconds_count{op="get"} 6',
      "",
    ]);
  });

  test("refuses invalid and duplicate metric names and bad label names", () => {
    expect(() => renderPrometheus([{ name: "1bad", help: "", type: "gauge", samples: [{ value: 1 }] }])).toThrow(
      RangeError,
    );
    const f = { name: "dup", help: "", type: "gauge" as const, samples: [{ value: 1 }] };
    expect(() => renderPrometheus([f, f])).toThrow("twice");
    expect(() =>
      renderPrometheus([{ name: "ok", help: "", type: "gauge", samples: [{ labels: { "bad-label": "x" }, value: 1 }] }])
    ).toThrow(RangeError);
  });
});

describe("shoal_map_entries on real members", () => {
  afterAll(() => killAll());

  /** The value of `shoal_map_entries{map, role}` in a member's /metrics (0 when absent). */
  async function entries(m: Member, map: string, role: "primary" | "backup"): Promise<number> {
    const text = await (await m.get("/metrics")).text();
    const prefix = `shoal_map_entries{map="${map}",role="${role}"} `;
    const line = text.split("\n").find((l) => l.startsWith(prefix));
    return line ? Number(line.slice(prefix.length)) : 0;
  }

  test("each member reports the entries it holds as primary and as backup (Bun and Deno)", async () => {
    const a = await startMember({ name: "a", runtime: "bun", args: ["--partition-count", "31"] });
    const b = await startMember({ name: "b", runtime: "deno", join: a.url, args: ["--partition-count", "31"] });
    await until(
      async () => {
        const vs = await Promise.all([a, b].map((m) => m.json<ClusterJson>("/cluster")));
        return vs.every((v) =>
            v.members.length === 2 && v.partitions.replicasMissing === 0 && v.partitions.migrating === 0
          )
          ? true
          : undefined;
      },
      60_000,
      "2 members with full replicas",
    );
    const KEYS = 40;
    for (let i = 0; i < KEYS; i++) {
      const r = await fetch(`${[a, b][i % 2].url}/maps/m/k${i}`, {
        method: "PUT",
        body: JSON.stringify(i),
        headers: { "content-type": "application/json" },
      });
      expect(r.status).toBe(200);
    }
    // backupCount 1 on two members: every key is held once as primary and once as backup,
    // and each member backs up the other's primaries.
    const per = await until(
      async () => {
        const counts = await Promise.all(
          [a, b].map(async (m) => ({
            primary: await entries(m, "m", "primary"),
            backup: await entries(m, "m", "backup"),
          })),
        );
        const sum = (k: "primary" | "backup") => counts.reduce((n, c) => n + c[k], 0);
        return sum("primary") === KEYS && sum("backup") === KEYS ? counts : undefined;
      },
      30_000,
      "every key counted once as primary and once as backup",
    );
    expect(per[0].backup).toBe(per[1].primary);
    expect(per[1].backup).toBe(per[0].primary);
    expect(per.every((c) => c.backup > 0)).toBe(true);
    // Refusals of lying members are counted by reason (none here: both members are honest).
    const text = await (await a.get("/metrics")).text();
    for (const reason of [...RejectReasons, "table_not_from_master", "table_implausible"]) {
      expect(text).toMatch(new RegExp(`^shoal_cluster_rejected_total\\{reason="${reason}"\\} \\d+$`, "m"));
    }
    expect(text).toContain('shoal_cluster_rejected_total{reason="list_not_from_master"} 0');
  }, 120_000);
});
