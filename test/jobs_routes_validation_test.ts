// Request validation of the job routes, mounted on a real hono app. Bad bodies are refused
// before the job service touches any map, so these run without a cluster; the routes over a
// live cluster are covered in test/sim/jobs_failover_test.ts.
import { expect, test } from "bun:test";
import type { Hono } from "hono";
import { offlineJobRoutes } from "./support/offline_job_routes.ts";

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
