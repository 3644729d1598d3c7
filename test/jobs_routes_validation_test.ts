// Request validation of the job routes, mounted on a real hono app. Bad bodies are refused
// before the job service touches any map, so these run without a cluster; the routes over a
// live cluster are covered in test/sim/jobs_failover_test.ts.
import { expect, test } from "bun:test";
import type { Hono } from "hono";
import { offlineJobRoutes } from "./support/offline_job_routes.ts";
import { isJobEntry } from "../src/jobs/map_names.ts";

const post = (a: Hono, path: string, body: string) =>
  a.request(path, { method: "POST", body, headers: { "content-type": "application/json" } });

test("POST /jobs refuses bad bodies with 400 and a message naming the problem", async () => {
  const { app: a, touched } = offlineJobRoutes();
  const good = { name: "j", source: { type: "sequence", count: 10 }, sink: { type: "map", map: "out" } };
  const cases: Array<[string, RegExp]> = [
    ["{not json", /not valid JSON/],
    ["[1,2]", /JSON object/],
    [JSON.stringify({ ...good, name: 5 }), /name/],
    [JSON.stringify({ ...good, source: { type: "sequence", count: "many" } }), /sequence.count/],
    [JSON.stringify({ ...good, source: { type: "nope" } }), /Unknown source type/],
    [JSON.stringify({ ...good, transform: { type: "map", fn: "rm -rf" } }), /map.fn/],
    [JSON.stringify({ ...good, sink: { type: "log" } }), /log.map/],
    [JSON.stringify({ ...good, id: "bad id/with slash" }), /id/],
    [JSON.stringify({ ...good, parallelism: 10_000 }), /parallelism/],
    // A sink into the job system's own maps, or a name reserved for the grid.
    [JSON.stringify({ ...good, sink: { type: "map", map: "jobs" } }), /map.map cannot be "jobs"/],
    [JSON.stringify({ ...good, sink: { type: "log", map: "job-states" } }), /log.map cannot be "job-states"/],
    [JSON.stringify({ ...good, sink: { type: "map", map: "\u0001queue:q" } }), /reserved/],
    // Values that would be stored changed.
    [
      String.raw`{"name":"j\ud800","source":{"type":"sequence","count":10},"sink":{"type":"map","map":"out"}}`,
      /surrogate/,
    ],
    [
      `{"__proto__":{},"name":"j","source":{"type":"sequence","count":10},"sink":{"type":"map","map":"out"}}`,
      /__proto__/,
    ],
  ];
  for (const [body, re] of cases) {
    const res = await post(a, "/jobs", body);
    expect(res.status).toBe(400);
    const j = (await res.json()) as { error: string };
    expect(j.error).toMatch(re);
  }
  expect(touched).toEqual([]);
});

test("an oversized body gets 413", async () => {
  const { app: a } = offlineJobRoutes();
  const res = await post(a, "/jobs", JSON.stringify({ name: "x".repeat(70_000) }));
  expect(res.status).toBe(413);
});

test("/finished-jobs refuses states SeaTunnel does not have", async () => {
  const { app: a } = offlineJobRoutes();
  const res = await a.request("/finished-jobs/RUNNING");
  expect(res.status).toBe(400);
  expect(((await res.json()) as { error: string }).error).toMatch(/FINISHED, CANCELED, FAILED, UNKNOWABLE/);
});

test("a value in the jobs map that is not a job entry is passed over, not read as one", () => {
  const definition = {
    name: "j",
    source: { type: "range" },
    sink: { type: "log" },
    parallelism: 2,
    checkpointIntervalMs: 1000,
    maxTaskRestarts: 3,
  };
  const entry = { id: "j", definition, plan: { jobId: "j", pipelines: [] }, createdAt: 1 };
  expect(isJobEntry(entry)).toBe(true);
  const junk: unknown[] = [null, 3, "x", {}, { id: "j" }, { ...entry, definition: null }, { ...entry, plan: {} }];
  // A definition past the limits a submit checks (the master would build a plan without end), or without its defaults.
  junk.push({ ...entry, definition: { ...definition, parallelism: Number.MAX_SAFE_INTEGER } });
  junk.push({ ...entry, definition: { name: "j" } }, { ...entry, createdAt: NaN });
  for (const v of junk) expect(isJobEntry(v)).toBe(false);
});
