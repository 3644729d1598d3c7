import { describe, expect, test } from "bun:test";
import { toSecondsBuckets } from "../src/http/metrics.ts";
import { renderPrometheus } from "../src/http/prometheus.ts";

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
