/**
 * Serves the HTTP app (with the in-process test node) on a real socket through
 * `src/runtime/serve.ts`, exercises it with fetch, and prints one JSON line of results.
 * Run by test/http_runtime_test.ts under Deno (and Bun) to check the app behaves the same
 * behind each runtime's server, SSE included.
 */
import { createHttpApp } from "../../src/http/app.ts";
import { serve } from "../../src/runtime/serve.ts";
import { createTestNode } from "./test_node.ts";

const node = createTestNode({ members: 3 });
const abort = new AbortController();
const app = createHttpApp(node, { token: "tok", signal: abort.signal, maxBodyBytes: 4096 });
const server = await serve({ hostname: "127.0.0.1", port: 0, fetch: app.fetch });
const u = (p: string) => server.url + p;
const auth = { authorization: "Bearer tok" };

const results: Record<string, unknown> = {};
results.health = (await fetch(u("/health"))).status;
results.putNoToken = (await fetch(u("/maps/m/k"), { method: "PUT", body: "1" })).status;
results.put = await (await fetch(u("/maps/m/k"), { method: "PUT", body: JSON.stringify({ a: 1 }), headers: auth }))
  .json();
results.getNoToken = (await fetch(u("/maps/m/k"))).status;
results.get = await (await fetch(u("/maps/m/k"), { headers: auth })).json();
results.badJson = (await fetch(u("/maps/m/k"), { method: "PUT", body: "{", headers: auth })).status;
results.tooBig =
  (await fetch(u("/maps/m/k"), { method: "PUT", body: JSON.stringify("x".repeat(5000)), headers: auth })).status;
const metrics = await fetch(u("/metrics"), { headers: auth });
results.metricsType = metrics.headers.get("content-type");
results.metricsHasMembers = (await metrics.text()).includes('shoal_members{lite="false"} 3');
results.dashboard = (await (await fetch(u("/"))).text()).includes('data-testid="partition-grid"');

const es = await fetch(u("/events"), { headers: auth });
results.eventsType = es.headers.get("content-type");
const reader = es.body!.getReader();
let buf = "";
const dec = new TextDecoder();
async function nextSnapshot(): Promise<{ cluster: { members: unknown[] }; table: { replicas: unknown[] } }> {
  for (;;) {
    const i = buf.indexOf("\n\n");
    if (i >= 0) {
      const block = buf.slice(0, i);
      buf = buf.slice(i + 2);
      const data = block.split("\n").find((l) => l.startsWith("data: "));
      if (data) return JSON.parse(data.slice(6));
      continue;
    }
    const { value, done } = await reader.read();
    if (done) throw new Error("event stream ended");
    buf += dec.decode(value, { stream: true });
  }
}
const first = await nextSnapshot();
results.firstMembers = first.cluster.members.length;
results.cells = first.table.replicas.length;
node.removeMember("m-peer0002");
let snap = await nextSnapshot();
while (snap.cluster.members.length !== 2) snap = await nextSnapshot();
results.afterRemoval = snap.cluster.members.length;
await reader.cancel();

abort.abort();
await server.close();
console.log(JSON.stringify(results));
