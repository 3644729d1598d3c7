// The sequence source's `failAtRecord` option: validated like every other field of a
// submitted job, and a deterministic failure — the task holding that record emits the
// records before it and then fails, on every attempt, at the same record.
import { describe, expect, test } from "bun:test";
import { TaskFailure } from "../src/jobs/connector.ts";
import { ConnectorRegistry, InvalidJobError } from "../src/jobs/connector_registry.ts";
import { failAtRecordMessage, sequenceSource } from "../src/jobs/source_sequence.ts";
import { offlineJobRoutes } from "./support/offline_job_routes.ts";

const registry = ConnectorRegistry.withBuiltins();
const job = (source: Record<string, unknown>) => ({
  name: "j",
  source: { type: "sequence", count: 100, ...source },
  sink: { type: "map", map: "out" },
});

/** Reads a whole split the way a task does, batch by batch from `from`; returns the ids read and the error that stopped it. */
function drain(
  cfg: ReturnType<typeof sequenceSource.configure>,
  index: number,
  parallelism: number,
  from: number,
  batch: number,
) {
  const split = sequenceSource.split(cfg, index, parallelism);
  const ids: number[] = [];
  let offset = Math.max(from, split.start);
  try {
    while (offset < split.end) {
      const rs = sequenceSource.read(cfg, split, offset, Math.min(batch, split.end - offset)) as { id: number }[];
      ids.push(...rs.map((r) => r.id));
      offset += rs.length;
    }
  } catch (err) {
    return { ids, error: err };
  }
  return { ids, error: undefined };
}

describe("sequence.failAtRecord", () => {
  test("is kept in the definition when it names a record of the sequence", () => {
    const def = registry.normalizeDefinition(job({ parallelism: 4, failAtRecord: 42 }));
    expect(def.source).toEqual({ type: "sequence", count: 100, parallelism: 4, ratePerSecond: 0, failAtRecord: 42 });
    expect(registry.normalizeDefinition(job({})).source).not.toHaveProperty("failAtRecord");
  });

  test("anything but an integer record id of the sequence is refused, naming the field", () => {
    for (const bad of [-1, 100, 1.5, "7", null, true, [3]]) {
      expect(() => registry.normalizeDefinition(job({ failAtRecord: bad }))).toThrow(InvalidJobError);
      expect(() => registry.normalizeDefinition(job({ failAtRecord: bad }))).toThrow(/sequence\.failAtRecord/);
    }
    expect(() => registry.normalizeDefinition(job({ count: 0, failAtRecord: 0 }))).toThrow(
      /sequence\.failAtRecord needs count/,
    );
  });

  test("POST /jobs refuses a bad failAtRecord with 400 before touching any map", async () => {
    const { app, touched } = offlineJobRoutes();
    for (const bad of [100, -3, "x"]) {
      const res = await app.request("/jobs", {
        method: "POST",
        body: JSON.stringify(job({ failAtRecord: bad })),
        headers: { "content-type": "application/json" },
      });
      expect(res.status).toBe(400);
      expect(((await res.json()) as { error: string }).error).toMatch(
        /source: sequence\.failAtRecord must be an integer in \[0, 99\]/,
      );
    }
    expect(touched).toEqual([]);
  });

  test("the task holding the record emits the records before it, then fails there on every attempt", () => {
    const cfg = sequenceSource.configure({ type: "sequence", count: 90, parallelism: 3, failAtRecord: 47 });
    // Task 1 holds ids 30…59: whatever the batch size and wherever a replay starts, it
    // reads up to 46 and fails at 47 with the same reason.
    for (const [from, batch] of [[30, 7], [30, 500], [40, 1], [44, 3], [47, 10]]) {
      const { ids, error } = drain(cfg, 1, 3, from, batch);
      expect(ids).toEqual(Array.from({ length: 47 - from }, (_, i) => from + i));
      expect(error).toBeInstanceOf(TaskFailure);
      expect((error as Error).message).toBe(failAtRecordMessage(47));
      expect((error as Error).message).toBe("sequence source failed on purpose at record 47 (failAtRecord)");
    }
    // The other tasks read their whole range.
    expect(drain(cfg, 0, 3, 0, 8)).toEqual({ ids: Array.from({ length: 30 }, (_, i) => i), error: undefined });
    expect(drain(cfg, 2, 3, 60, 8)).toEqual({ ids: Array.from({ length: 30 }, (_, i) => 60 + i), error: undefined });
  });
});
