import { describe, expect, test } from "bun:test";
import fc from "fast-check";
import { ConnectorRegistry, InvalidJobError } from "../src/jobs/connector_registry.ts";
import { buildPlan, jobIdOfTask, planTasks } from "../src/jobs/job_plan.ts";
import { sequenceSource, sequenceSplit, sequenceValue } from "../src/jobs/source_sequence.ts";
import { mapFunctions, mapTransform } from "../src/jobs/transform_map.ts";

const registry = ConnectorRegistry.withBuiltins();

describe("plan", () => {
  test("task ids are derived from the job id and index only", () => {
    const plan = buildPlan("j1", { parallelism: 3 });
    expect(planTasks(plan).map((t) => t.id)).toEqual(["j1/p0/t0", "j1/p0/t1", "j1/p0/t2"]);
    expect(plan.pipelines.map((p) => p.id)).toEqual(["j1/p0"]);
    expect(plan.pipelines[0].taskGroups.map((g) => g.id)).toEqual(["j1/p0/g0", "j1/p0/g1", "j1/p0/g2"]);
    expect(jobIdOfTask("j1/p0/t2")).toBe("j1");
  });

  test("rebuilding the plan from the same definition gives the same plan", () => {
    fc.assert(fc.property(fc.stringMatching(/^[a-z0-9-]{1,20}$/), fc.integer({ min: 1, max: 64 }), (id, p) => {
      expect(buildPlan(id, { parallelism: p })).toEqual(buildPlan(id, { parallelism: p }));
      expect(new Set(planTasks(buildPlan(id, { parallelism: p })).map((t) => t.id)).size).toBe(p);
    }));
  });
});

describe("sequence source", () => {
  test("splits cover every id exactly once, contiguous and in order", () => {
    fc.assert(fc.property(fc.integer({ min: 0, max: 100_000 }), fc.integer({ min: 1, max: 64 }), (count, p) => {
      let next = 0;
      for (let i = 0; i < p; i++) {
        const s = sequenceSplit(count, i, p);
        expect(s.start).toBe(next);
        expect(s.end).toBeGreaterThanOrEqual(s.start);
        next = s.end;
      }
      expect(next).toBe(count);
    }));
  });

  test("6,000 records over 3 tasks split 2,000 each", () => {
    expect([0, 1, 2].map((i) => sequenceSplit(6000, i, 3))).toEqual([
      { index: 0, start: 0, end: 2000 },
      { index: 1, start: 2000, end: 4000 },
      { index: 2, start: 4000, end: 6000 },
    ]);
  });

  test("reading the same positions again gives the same records (replayable)", () => {
    const cfg = sequenceSource.configure({ type: "sequence", count: 100, parallelism: 2 });
    const split = sequenceSource.split(cfg, 1, 2);
    const a = sequenceSource.read(cfg, split, 60, 10);
    const b = sequenceSource.read(cfg, split, 60, 10);
    expect(a).toEqual(b);
    expect(a).toHaveLength(10);
    expect((a as { id: number; value: unknown }[]).map((r) => r.id)).toEqual([60, 61, 62, 63, 64, 65, 66, 67, 68, 69]);
    expect((a as { id: number; value: unknown }[])[0].value).toBe(sequenceValue(60));
    expect(sequenceSource.read(cfg, split, 95, 10)).toHaveLength(5);
  });

  test("the rate is shared between the parallel tasks", () => {
    const cfg = sequenceSource.configure({ type: "sequence", count: 6000, parallelism: 3, ratePerSecond: 600 });
    expect(sequenceSource.ratePerSecond(cfg, 3)).toBe(200);
    const unlimited = sequenceSource.configure({ type: "sequence", count: 10 });
    expect(sequenceSource.ratePerSecond(unlimited, 1)).toBeUndefined();
  });
});

describe("map transform", () => {
  test("named functions are pure and do what their names say", () => {
    expect(mapFunctions.double(21)).toBe(42);
    expect(mapFunctions.square(12)).toBe(144);
    expect(mapFunctions.negate(5)).toBe(-5);
    expect(mapFunctions.hex(255)).toBe("FF");
    expect(mapFunctions.upper("abc")).toBe("ABC");
    expect(mapFunctions.identity(7)).toBe(7);
    const f = mapTransform.open(mapTransform.configure({ type: "map", fn: "double" }));
    expect(f({ id: 3, value: 10 })).toEqual({ id: 3, value: 20 });
  });

  test("an unknown function name is refused", () => {
    expect(() => mapTransform.configure({ type: "map", fn: "eval" })).toThrow(/map.fn must be one of/);
  });
});

describe("definition validation", () => {
  const good = {
    name: "copy",
    source: { type: "sequence", count: 6000, parallelism: 3, ratePerSecond: 1000 },
    transform: { type: "map", fn: "square" },
    sink: { type: "map", map: "out" },
    checkpointIntervalMs: 500,
  };

  test("a good definition gets its defaults and the source's parallelism", () => {
    const d = registry.normalizeDefinition(good);
    expect(d.parallelism).toBe(3);
    expect(d.maxTaskRestarts).toBe(3);
    expect(d.checkpointIntervalMs).toBe(500);
    expect(d.sink).toEqual({ type: "map", map: "out" });
  });

  test("bad definitions are refused with a message naming the field", () => {
    const cases: Array<[unknown, RegExp]> = [
      [{ ...good, name: "" }, /name/],
      [{ ...good, source: { type: "kafka" } }, /Unknown source type "kafka"/],
      [{ ...good, source: { type: "sequence", count: -1 } }, /sequence.count/],
      [{ ...good, sink: { type: "map" } }, /map.map must be a map name/],
      [{ ...good, sink: { type: "tape", map: "x" } }, /Unknown sink type/],
      [{ ...good, checkpointIntervalMs: 1 }, /checkpointIntervalMs/],
      ["nope", /Invalid job/],
    ];
    for (const [input, re] of cases) {
      let err: unknown;
      try {
        registry.normalizeDefinition(input);
      } catch (e) {
        err = e;
      }
      expect(err).toBeInstanceOf(InvalidJobError);
      expect((err as Error).message).toMatch(re);
    }
  });
});
