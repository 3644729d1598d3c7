/**
 * Serves the HTTP app (with the in-process test node and the signaling endpoint) over HTTPS
 * through `src/runtime/serve.ts`, then talks to it as a client would: fetch over HTTPS
 * trusting the private CA, and a signaling client over WSS with `ca`. Prints one JSON line.
 * Run by test/tls_runtime_test.ts under Bun and under Deno; SHOAL_TLS_DIR names the
 * directory of the certificates made by tls_certs.ts.
 */
import { createHttpApp } from "../../src/http/app.ts";
import { readPemFile, serve } from "../../src/runtime/serve.ts";
import { openWebSocket, wsUpgrader } from "../../src/runtime/websocket.ts";
import { SignalingClient } from "../../src/signaling/client.ts";
import { mountSignaling } from "../../src/signaling/server.ts";
import { createTestNode } from "./test_node.ts";

// deno-lint-ignore no-explicit-any
const g = globalThis as any;
const dir = g.Bun ? g.Bun.env.SHOAL_TLS_DIR : g.Deno.env.get("SHOAL_TLS_DIR");
const ca = await readPemFile(`${dir}/ca.pem`, "--tls-ca");
const tls = {
  cert: await readPemFile(`${dir}/server.pem`, "--tls-cert"),
  key: await readPemFile(`${dir}/server.key`, "--tls-key"),
};

const node = createTestNode({ members: 3 });
const abort = new AbortController();
const { upgradeWebSocket, websocket } = wsUpgrader();
const app = createHttpApp(node, {
  token: "tok",
  signal: abort.signal,
  extraRoutes: (a) => void mountSignaling(a, upgradeWebSocket),
});
const server = await serve({ hostname: "127.0.0.1", port: 0, fetch: app.fetch, websocket, tls });
const results: Record<string, unknown> = { scheme: new URL(server.url).protocol };

function trusting(init: RequestInit = {}): RequestInit {
  return g.Bun
    ? { ...init, tls: { ca } } as RequestInit
    : { ...init, client: g.Deno.createHttpClient({ caCerts: [ca] }) } as RequestInit;
}
results.health = (await fetch(`${server.url}/health`, trusting())).status;
results.clusterNoToken = (await fetch(`${server.url}/cluster`, trusting())).status;
results.cluster = (await fetch(`${server.url}/cluster`, trusting({ headers: { authorization: "Bearer tok" } }))).status;
try {
  await fetch(`${server.url}/health`);
  results.untrusted = "accepted";
} catch {
  results.untrusted = "refused";
}

// Two signaling clients over WSS see each other in the room.
const a = new SignalingClient({ url: server.url, cluster: "c", self: "member-a", ca });
const b = new SignalingClient({ url: server.url.replace("https:", "wss:"), cluster: "c", self: "member-b", ca });
await a.start(5_000);
await b.start(5_000);
results.wssUrl = b.url.startsWith("wss://");
results.peersOfB = b.peers();
const got = new Promise<unknown>((resolve) => a.onSignal((_from, payload) => resolve(payload)));
b.send("member-a", { hi: 1 });
results.relayed = await got;
a.close();
b.close();

// Without the CA, the socket does not open.
results.wssWithoutCa = await new Promise<string>((resolve) => {
  const ws = openWebSocket(server.url.replace("https:", "wss:") + "/signal");
  ws.onopen = () => {
    ws.close();
    resolve("opened");
  };
  ws.onerror = () => resolve("failed");
});

abort.abort();
await server.close();
console.log(JSON.stringify(results));
