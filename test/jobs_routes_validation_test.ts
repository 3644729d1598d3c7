// Request validation of the job routes, mounted on a real hono app. Bad bodies are refused
// before the job service touches any map, so these run without a cluster; the routes over a
// live cluster are covered in test/sim/jobs_failover_test.ts.
import { expect, test } from "bun:test";
import { Hono } from "hono";
import { VirtualClock } from "../src/core/clock.ts";
import { silentLogger } from "../src/core/log.ts";
import { Random } from "../src/core/random.ts";
import type { ClusterView } from "../src/cluster/view.ts";
import { JobService } from "../src/jobs/job_service.ts";
import { mountJobRoutes } from "../src/jobs/job_routes.ts";
import { MemoryNetwork } from "../src/transport/memory.ts";
import { MessageRouter } from "../src/transport/router.ts";

function app() {
  const clock = new VirtualClock();
  const rng = new Random(1);
  const net = new MemoryNetwork({ clock, rng });
  const router = new MessageRouter(net.attach("n1"));
  const view: ClusterView = {
    self: "n1",
    members: () => [],
    member: () => undefined,
    master: () => undefined,
    isMaster: () => false,
    masterEpoch: 0,
    memberListVersion: 0,
    joined: false,
    subscribe: () => () => {},
  };
  const touched: string[] = [];
  const service = new JobService({
    self: "n1",
    view,
    getMap: (name) => {
      touched.push(name);
      throw new Error("no map access expected");
    },
    router,
    transport: router.transport,
    clock,
    rng,
    log: silentLogger,
  });
  const a = new Hono();
  mountJobRoutes(a, service);
  return { a, touched };
}

const post = (a: Hono, path: string, body: string) =>
  a.request(path, { method: "POST", body, headers: { "content-type": "application/json" } });

test("POST /jobs refuses bad bodies with 400 and a message naming the problem", async () => {
  const { a, touched } = app();
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
  const { a } = app();
  const res = await post(a, "/jobs", JSON.stringify({ name: "x".repeat(70_000) }));
  expect(res.status).toBe(413);
});

test("/finished-jobs refuses states SeaTunnel does not have", async () => {
  const { a } = app();
  const res = await a.request("/finished-jobs/RUNNING");
  expect(res.status).toBe(400);
  expect(((await res.json()) as { error: string }).error).toMatch(/FINISHED, CANCELED, FAILED, UNKNOWABLE/);
});
