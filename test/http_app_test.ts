import { describe, expect, test } from "bun:test";
import { createHttpApp } from "../src/http/app.ts";
import type { DashboardSnapshot } from "../src/http/snapshot.ts";
import { createTestNode } from "./support/test_node.ts";

const json = (body: unknown, headers: Record<string, string> = {}) => ({
  method: "PUT",
  body: JSON.stringify(body),
  headers: { "content-type": "application/json", ...headers },
});

describe("GET /health", () => {
  test("answers 503 before the node joined and 200 with member and master after", async () => {
    const node = createTestNode({ joined: false });
    const app = createHttpApp(node);
    const before = await app.request("/health");
    expect(before.status).toBe(503);
    const missing = () => node.partitionSummary().replicasMissing;
    expect(await before.json()).toEqual({
      status: "starting",
      member: node.id,
      master: null,
      safe: false,
      replicasMissing: missing(),
      lacks: [],
    });
    node.join();
    const after = await app.request("/health");
    expect(after.status).toBe(200);
    expect(await after.json()).toEqual({
      status: "ok",
      member: node.id,
      master: node.id,
      safe: missing() === 0,
      replicasMissing: missing(),
      lacks: [],
    });
  });

  test("says safe once no partition misses a replica (a script waits for it after starting a cluster)", async () => {
    const node = createTestNode({ members: 3 });
    const app = createHttpApp(node);
    expect(node.partitionSummary().replicasMissing).toBe(0);
    const body = await (await app.request("/health")).json();
    expect(body.safe).toBe(true);
    expect(body.replicasMissing).toBe(0);
    expect(body.lacks).toEqual([]);
  });

  test("names the members this member has no link to, direct or relayed (lacks)", async () => {
    const node = createTestNode({ members: 4 });
    const [, , third, fourth] = node.cluster.members().map((m) => m.id);
    const all = node.links.bind(node);
    // Its link to the fourth member has not opened yet.
    node.links = () => all().filter((l) => l.peer !== fourth);
    const body = await (await createHttpApp(node).request("/health")).json();
    expect(body.lacks).toEqual([fourth]);
    expect(all().map((l) => l.peer)).toContain(third);
  });
});

describe("GET /cluster", () => {
  test("has the documented shape, with links and the coordinator", async () => {
    const node = createTestNode({ members: 3 });
    const body = await (await createHttpApp(node).request("/cluster")).json();
    expect(Object.keys(body).sort()).toEqual(
      [
        "clockOffsetWarnMs",
        "cluster",
        "coordinator",
        "epoch",
        "links",
        "master",
        "memberListVersion",
        "members",
        "partitionTableVersion",
        "partitions",
        "quorum",
        "self",
        "unreachable",
      ],
    );
    expect(body.cluster).toBe("shoal");
    expect(body.self).toBe(node.id);
    expect(body.master).toBe(node.id);
    expect(body.coordinator).toBe(node.id);
    expect(body.epoch).toBe(1);
    expect(body.members).toHaveLength(3);
    for (const m of body.members) {
      expect(Object.keys(m).sort()).toEqual(["clockOffsetMs", "id", "joinedAt", "lite", "name", "runtime"]);
    }
    expect(body.members[0].clockOffsetMs).toBe(0); // self
    expect(body.clockOffsetWarnMs).toBe(2000);
    expect(body.members.map((m: { name: string }) => m.name)).toEqual(["self", "peer1", "peer2"]);
    expect(typeof body.memberListVersion).toBe("number");
    expect(typeof body.partitionTableVersion).toBe("number");
    expect(Object.keys(body.partitions).sort()).toEqual([
      "count",
      "dataLoss",
      "lost",
      "migrating",
      "owners",
      "replicasMissing",
    ]);
    expect(body.partitions.lost).toBe(0);
    expect(body.partitions.dataLoss).toBe(0);
    expect(body.partitions.count).toBe(271);
    expect(Object.values(body.partitions.owners as Record<string, number>).reduce((a, b) => a + b, 0)).toBe(271);
    expect(body.partitions.replicasMissing).toBe(0);
    expect(body.links).toEqual([
      { peer: "m-peer0001", kind: "direct" },
      { peer: "m-peer0002", kind: "relayed", via: "m-peer0001" },
    ]);
    expect(body.unreachable).toEqual([]);
  });

  test("lists members without a path as unreachable, and a direct link's candidate types", async () => {
    const node = createTestNode({ members: 3 });
    const [direct] = node.links();
    // The relayed path is gone (its relay suspected, say); the direct link reports its ICE pair.
    node.links = () => [{ ...direct, candidateType: "relay", remoteCandidateType: "srflx" }];
    const body = await (await createHttpApp(node).request("/cluster")).json();
    expect(body.links).toEqual([{
      peer: "m-peer0001",
      kind: "direct",
      candidateType: "relay",
      remoteCandidateType: "srflx",
    }]);
    expect(body.unreachable).toEqual(["m-peer0002"]);
  });

  test("follows member changes: a removed master gives a new master and epoch", async () => {
    const node = createTestNode({ members: 3 });
    const app = createHttpApp(node);
    const peer = node.addMember("late");
    let body = await (await app.request("/cluster")).json();
    expect(body.members.map((m: { id: string }) => m.id)).toContain(peer.id);
    node.removeMember(node.id);
    body = await (await app.request("/cluster")).json();
    expect(body.master).toBe("m-peer0001");
    expect(body.epoch).toBe(2);
  });
});

describe("map routes", () => {
  test("a value JSON cannot express (stored through the IMap API) gets 422, not 500", async () => {
    const node = createTestNode();
    await node.getMap<string, unknown>("big").set("n", 2n ** 70n);
    const res = await createHttpApp(node).request("/maps/big/n");
    expect(res.status).toBe(422);
    expect((await res.json()).code).toBe("UNREPRESENTABLE");
  });

  test("put, get, overwrite, delete and 404", async () => {
    const app = createHttpApp(createTestNode());
    expect(await (await app.request("/maps/users/alice", json({ age: 30 }))).json()).toEqual({ previous: null });
    expect(await (await app.request("/maps/users/alice")).json()).toEqual({ value: { age: 30 } });
    expect(await (await app.request("/maps/users/alice", json([1, "two", null]))).json()).toEqual({
      previous: { age: 30 },
    });
    const size = await app.request("/maps/users");
    expect(await size.json()).toEqual({ name: "users", size: 1 });
    const del = await app.request("/maps/users/alice", { method: "DELETE" });
    expect(del.status).toBe(200);
    expect(await del.json()).toEqual({ previous: [1, "two", null] });
    const missing = await app.request("/maps/users/alice");
    expect(missing.status).toBe(404);
    expect((await missing.json()).error).toContain('No entry for key "alice"');
    expect(await (await app.request("/maps/users/alice", { method: "DELETE" })).json()).toEqual({ previous: null });
  });

  test("stores JSON scalars, including null, and decodes keys from the path", async () => {
    const app = createHttpApp(createTestNode());
    expect((await app.request("/maps/m/n", json(null))).status).toBe(200);
    expect(await (await app.request("/maps/m/n")).json()).toEqual({ value: null });
    await app.request("/maps/m/42", json(7));
    expect(await (await app.request("/maps/m/42")).json()).toEqual({ value: 7 });
    await app.request(`/maps/m/${encodeURIComponent("a b/c")}`, json("spaced"));
    expect(await (await app.request(`/maps/m/${encodeURIComponent("a b/c")}`)).json()).toEqual({ value: "spaced" });
    const list = await (await app.request("/maps")).json();
    expect(list).toEqual([{ name: "m", size: 3 }]);
  });

  test("bad JSON, empty and over-deep bodies get 400 with a message", async () => {
    const app = createHttpApp(createTestNode());
    const bad = await app.request("/maps/m/k", { method: "PUT", body: "{not json" });
    expect(bad.status).toBe(400);
    expect((await bad.json()).error).toContain("Bad JSON in request body");
    const empty = await app.request("/maps/m/k", { method: "PUT", body: "" });
    expect(empty.status).toBe(400);
    expect((await empty.json()).error).toContain("empty body");
    const deep = await app.request("/maps/m/k", { method: "PUT", body: "[".repeat(100) + "]".repeat(100) });
    expect(deep.status).toBe(400);
    expect((await deep.json()).error).toContain("nests deeper");
    const utf = await app.request("/maps/m/k", { method: "PUT", body: new Uint8Array([0x22, 0xff, 0x22]) });
    expect(utf.status).toBe(400);
    expect((await app.request("/maps/m/k")).status).toBe(404);
  });

  test("values that would not be stored as sent get 400 and store nothing: lone surrogates, __proto__, 1e400", async () => {
    const app = createHttpApp(createTestNode());
    const bodies = [
      String.raw`"\ud800"`,
      String.raw`{"a\udc00":1}`,
      `{"__proto__":1}`,
      `[1, {"x": 1e400}]`,
      `-1e999`,
    ];
    for (const body of bodies) {
      const r = await app.request("/maps/m/k", { method: "PUT", body });
      expect(`${body}: ${r.status}`).toBe(`${body}: 400`);
      expect((await r.json()).code).toBe("INVALID_ARGUMENT");
    }
    expect((await app.request("/maps/m/k")).status).toBe(404);
    // A lock owner that could never unlock its lock (its name would be stored changed) is refused too.
    const lock = await app.request("/maps/m/k/lock", { method: "POST", body: String.raw`{"owner":"\ud800"}` });
    expect(lock.status).toBe(400);
    // Well-formed text, surrogate pairs included, and large finite numbers are stored as sent.
    const ok = String.raw`{"s":"\ud83d\ude00 é","n":1.7976931348623157e308,"proto":"__proto__"}`;
    expect((await app.request("/maps/m/k", { method: "PUT", body: ok })).status).toBeLessThan(300);
    expect((await (await app.request("/maps/m/k")).json()).value).toEqual(JSON.parse(ok));
  });

  test("oversized bodies get 413, with or without a Content-Length", async () => {
    const app = createHttpApp(createTestNode(), { maxBodyBytes: 1000 });
    const big = JSON.stringify("x".repeat(2000));
    const withLength = await app.request("/maps/m/k", {
      method: "PUT",
      body: big,
      headers: { "content-length": String(big.length) },
    });
    expect(withLength.status).toBe(413);
    expect((await withLength.json()).error).toContain("larger than the limit of 1000 bytes");
    const chunks = [new TextEncoder().encode('"' + "y".repeat(600)), new TextEncoder().encode("y".repeat(600) + '"')];
    const stream = new ReadableStream<Uint8Array>({
      pull(c) {
        const next = chunks.shift();
        if (next) c.enqueue(next);
        else c.close();
      },
    });
    const chunked = await app.request(
      new Request(
        "http://localhost/maps/m/k",
        { method: "PUT", body: stream, headers: { "transfer-encoding": "chunked" }, duplex: "half" } as RequestInit,
      ),
    );
    expect(chunked.status).toBe(413);
    const ok = await app.request("/maps/m/k", json("small"));
    expect(ok.status).toBe(200);
  });

  test("map errors become JSON answers with status by code", async () => {
    const node = createTestNode();
    const app = createHttpApp(node);
    node.failNext = "TIMEOUT";
    const t = await app.request("/maps/m/k");
    expect(t.status).toBe(504);
    expect(await t.json()).toMatchObject({ code: "TIMEOUT" });
    node.failNext = "MIGRATING";
    const m = await app.request("/maps/m/k", json(1));
    expect(m.status).toBe(503);
    expect(m.headers.get("retry-after")).toBe("1");
    node.failNext = "INDETERMINATE";
    const i = await app.request("/maps/m/k", { method: "DELETE" });
    expect(i.status).toBe(504);
    expect((await i.json()).code).toBe("INDETERMINATE");
    node.failNext = "QUORUM";
    const q = await app.request("/maps/m/k");
    expect(q.status).toBe(503);
    expect(q.headers.get("retry-after")).toBe("1");
    expect((await q.json()).code).toBe("QUORUM");
  });

  test("over-long map names and keys are refused", async () => {
    const app = createHttpApp(createTestNode());
    expect((await app.request(`/maps/${"n".repeat(300)}/k`)).status).toBe(400);
    expect((await app.request(`/maps/m/${"k".repeat(5000)}`, json(1))).status).toBe(400);
  });
});

describe("bearer token", () => {
  test("writes and reads need the token; /health and the dashboard page do not", async () => {
    const node = createTestNode();
    const app = createHttpApp(node, { token: "s3cr3t" });
    const none = await app.request("/maps/m/k", json(1));
    expect(none.status).toBe(401);
    expect(none.headers.get("www-authenticate")).toContain("Bearer");
    expect((await none.json()).code).toBe("AUTH_FAILED");
    expect((await app.request("/maps/m/k", json(1, { authorization: "Bearer wrong" }))).status).toBe(401);
    expect((await app.request("/maps/m/k", { method: "DELETE" })).status).toBe(401);
    expect(node.maps.get("m")?.data.size ?? 0).toBe(0);
    expect((await app.request("/maps/m/k", json(1, { authorization: "Bearer s3cr3t" }))).status).toBe(200);
    expect((await app.request("/maps/m/k")).status).toBe(401);
    expect(await (await app.request("/maps/m/k", { headers: { authorization: "Bearer s3cr3t" } })).json()).toEqual({
      value: 1,
    });
    expect((await app.request("/cluster")).status).toBe(401);
    expect((await app.request("/health")).status).toBe(200);
    expect((await app.request("/")).status).toBe(200);
  });

  test("routes added through extraRoutes are protected too", async () => {
    const app = createHttpApp(createTestNode(), {
      token: "t",
      extraRoutes: (a) => {
        a.post("/jobs", (c) => c.json({ id: "j1" }, 201));
        a.get("/jobs", (c) => c.json([]));
      },
    });
    expect((await app.request("/jobs", { method: "POST", body: "{}" })).status).toBe(401);
    expect((await app.request("/jobs", { method: "POST", body: "{}", headers: { authorization: "Bearer t" } })).status)
      .toBe(201);
    expect((await app.request("/jobs")).status).toBe(401);
    expect(await (await app.request("/jobs", { headers: { authorization: "Bearer t" } })).json()).toEqual([]);
  });
});

describe("errors", () => {
  test("unknown routes answer 404 JSON", async () => {
    const res = await createHttpApp(createTestNode()).request("/nope");
    expect(res.status).toBe(404);
    expect((await res.json()).error).toContain("No route for GET /nope");
  });

  test("an exception in a route is a 500 JSON answer, not a crash", async () => {
    const node = createTestNode();
    node.partitionSummary = () => {
      throw new Error("internal detail");
    };
    const res = await createHttpApp(node).request("/cluster");
    expect(res.status).toBe(500);
    const body = await res.json();
    expect(body).toEqual({ error: "Internal error", code: "INTERNAL" });
  });
});

/** Parses exposition text into `name{labels}` → value, checking every line's syntax. */
function parseProm(text: string): Map<string, number> {
  const out = new Map<string, number>();
  const typed = new Set<string>();
  for (const line of text.trimEnd().split("\n")) {
    if (line.startsWith("# HELP ")) continue;
    const t = /^# TYPE ([a-zA-Z_:][a-zA-Z0-9_:]*) (counter|gauge|histogram)$/.exec(line);
    if (t) {
      expect(typed.has(t[1])).toBe(false);
      typed.add(t[1]);
      continue;
    }
    const m =
      /^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{(?:[a-zA-Z_][a-zA-Z0-9_]*="(?:[^"\\]|\\.)*",?)*\})? (-?[0-9.e+-]+|\+Inf|NaN)$/
        .exec(line);
    if (!m) throw new Error(`bad exposition line: ${line}`);
    out.set(m[1] + (m[2] ?? ""), Number(m[3].replace("+Inf", "Infinity")));
  }
  return out;
}

describe("GET /metrics", () => {
  test("a family reported by another layer replaces the built-in one of the same name", async () => {
    const node = createTestNode({ members: 1 });
    const app = createHttpApp(node, {
      extraMetrics: () => [{
        name: "shoal_jobs",
        help: "from the job maps",
        type: "gauge",
        samples: [{ labels: { state: "RUNNING" }, value: 2 }],
      }],
    });
    const res = await app.request("/metrics");
    expect(res.status).toBe(200);
    const text = await res.text();
    expect(text.match(/^# TYPE shoal_jobs /gm)?.length).toBe(1);
    expect(text).toContain('shoal_jobs{state="RUNNING"} 2');
  });

  test("serves Prometheus text with cluster, partition, map, transport and job figures", async () => {
    const node = createTestNode({ members: 3 });
    node.stats.framesSent = 12;
    node.stats.bytesReceived = 3456;
    node.stats.droppedInvalid = 2;
    node.migrating.set(0, "m-peer0001");
    const app = createHttpApp(node, {
      extraMetrics: () => [{ name: "shoal_extra_thing", help: "extra", type: "gauge", samples: [{ value: 5 }] }],
    });
    await app.request("/maps/orders/1", json({ a: 1 }));
    await app.request("/maps/orders/2", json({ a: 2 }));
    await app.request("/maps/orders/1");
    const res = await app.request("/metrics");
    expect(res.status).toBe(200);
    expect(res.headers.get("content-type")).toBe("text/plain; version=0.0.4; charset=utf-8");
    const text = await res.text();
    expect(text).toContain("# TYPE shoal_map_operation_duration_seconds histogram");
    expect(text).toContain("# HELP shoal_members Live members");
    const m = parseProm(text);
    expect(m.get('shoal_members{lite="false"}')).toBe(3);
    expect(m.get("shoal_is_master")).toBe(1);
    expect(m.get("shoal_partitions")).toBe(271);
    expect(m.get("shoal_partitions_owned")).toBe(91);
    expect(m.get("shoal_partitions_backed_up")).toBe(90);
    expect(m.get("shoal_partitions_migrating")).toBe(1);
    expect(m.get("shoal_cluster_partitions_migrating")).toBe(1);
    expect(m.get('shoal_map_size{map="orders"}')).toBe(2);
    expect(m.get('shoal_map_entries{map="orders",role="primary"}')).toBe(2);
    expect(m.get('shoal_map_operations_total{map="orders",op="put"}')).toBe(2);
    expect(m.get('shoal_map_operation_duration_seconds_bucket{map="orders",op="put",le="0.0005"}')).toBe(2);
    expect(m.get('shoal_map_operation_duration_seconds_bucket{map="orders",op="put",le="+Inf"}')).toBe(2);
    expect(m.get('shoal_map_operation_duration_seconds_count{map="orders",op="get"}')).toBe(1);
    expect(m.get('shoal_transport_frames_total{direction="sent"}')).toBe(12);
    expect(m.get('shoal_transport_bytes_total{direction="received"}')).toBe(3456);
    expect(m.get('shoal_transport_dropped_total{reason="invalid"}')).toBe(2);
    expect(m.get('shoal_jobs{state="RUNNING"}')).toBe(1);
    expect(m.get('shoal_links{kind="relayed"}')).toBe(1);
    expect(m.get("shoal_master_changes_total")).toBe(1);
    expect(m.get("shoal_extra_thing")).toBe(5);
  });

  test("label values are escaped", async () => {
    const node = createTestNode();
    const app = createHttpApp(node);
    await app.request(`/maps/${encodeURIComponent('we"ird\\map')}/k`, json(1));
    const text = await (await app.request("/metrics")).text();
    expect(text).toContain('shoal_map_size{map="we\\"ird\\\\map"} 1');
    parseProm(text);
  });
});

describe("dashboard and events", () => {
  test("GET / serves the self-contained dashboard page", async () => {
    const res = await createHttpApp(createTestNode()).request("/");
    expect(res.status).toBe(200);
    expect(res.headers.get("content-type")).toContain("text/html");
    // It asks for the token: no other site may frame it.
    expect(res.headers.get("x-frame-options")).toBe("DENY");
    expect(res.headers.get("content-security-policy")).toBe("frame-ancestors 'none'");
    const html = await res.text();
    expect(html.startsWith("<!doctype html>")).toBe(true);
    expect(html).toContain('data-testid="partition-grid"');
    // The event stream is read with fetch so the token can go in a header, never in the URL.
    expect(html).toContain('fetch("events", { headers: authHeaders(');
    expect(html).not.toContain("EventSource(");
    expect(html).toContain("sessionStorage");
    expect(html).not.toMatch(/<script[^>]+src=/);
    expect(html).not.toMatch(/<link[^>]+stylesheet/);
  });

  test("GET /snapshot has the cluster, a compact table of every partition, and map sizes", async () => {
    const node = createTestNode({ members: 3 });
    const app = createHttpApp(node);
    await app.request("/maps/a/1", json(1));
    const s = (await (await app.request("/snapshot")).json()) as DashboardSnapshot;
    expect(s.cluster.members).toHaveLength(3);
    expect(s.table.replicas).toHaveLength(271);
    expect(s.table.ids.slice(0, 3)).toEqual(s.cluster.members.map((m) => m.id));
    expect(s.table.replicas[1]).toEqual([1, 2]);
    expect(s.maps).toEqual([{ name: "a", size: 1 }]);
  });

  test("GET /events streams snapshots, sends a new one on a cluster change, and limits clients", async () => {
    const node = createTestNode({ members: 3 });
    const abort = new AbortController();
    const app = createHttpApp(node, { maxSseClients: 2, signal: abort.signal });
    const res = await app.request("/events");
    expect(res.status).toBe(200);
    expect(res.headers.get("content-type")).toBe("text/event-stream; charset=utf-8");
    expect(res.headers.get("cache-control")).toContain("no-cache");
    const reader = sseReader(res);
    const first = await reader.next();
    expect(first.cluster.members).toHaveLength(3);
    expect(first.table.replicas).toHaveLength(271);

    node.removeMember("m-peer0002");
    let second = await reader.next();
    for (let i = 0; i < 5 && second.cluster.members.length !== 2; i++) second = await reader.next();
    expect(second.cluster.members).toHaveLength(2);
    expect(new Set(second.table.replicas.flat())).toEqual(new Set([0, 1]));

    const res2 = await app.request("/events");
    expect(res2.status).toBe(200);
    const third = await app.request("/events");
    expect(third.status).toBe(503);
    expect((await third.json()).code).toBe("OVERLOADED");
    await reader.cancel();
    const again = await app.request("/events");
    expect(again.status).toBe(200);

    abort.abort();
    const after = await app.request("/events");
    expect(after.status).toBe(503);
    await res2.body?.cancel();
    await again.body?.cancel();
  });
});

function sseReader(res: Response) {
  const r = res.body!.getReader();
  const dec = new TextDecoder();
  let buf = "";
  return {
    async next(): Promise<DashboardSnapshot> {
      for (;;) {
        const end = buf.indexOf("\n\n");
        if (end >= 0) {
          const block = buf.slice(0, end);
          buf = buf.slice(end + 2);
          if (!block.includes("event: snapshot")) continue;
          const data = block.split("\n").filter((l) => l.startsWith("data: ")).map((l) => l.slice(6)).join("\n");
          return JSON.parse(data);
        }
        const { value, done } = await r.read();
        if (done) throw new Error("stream ended");
        buf += dec.decode(value, { stream: true });
      }
    },
    cancel: () => r.cancel(),
  };
}
