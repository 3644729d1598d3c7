/**
 * Deno run of the foundation (CI: `deno run -A test/deno/foundation_transport.ts`): a
 * signaling server on Deno.serve, three WebRTC transports, a link through the server, a
 * route through a relay whose messages carry their origin's MAC for the receiver (pairwise
 * key from both ends' listed keys; tagged and checked through the id bindings), a link through relayed signaling, ordered and chunked
 * messages, a refused wrong secret, and a clean close. Every connection's sockets read into
 * Deno's cut read buffer, and no datagram sent comes near its size. Exits non-zero on any failure.
 */
import dgram from "node:dgram";
import { SignalingClient } from "../../src/signaling/client.ts";
import { createSignalingServer } from "../../src/signaling/server.ts";
import { runtimeName } from "../../src/runtime/process.ts";
import { WebRtcTransport } from "../../src/transport/webrtc.ts";
import { DENO_DATAGRAM_READ_BYTES, packetPathFigures } from "../../src/transport/packet_path.ts";
import { sackBundlingFigures } from "../../src/transport/sack_bundling.ts";
import { Kind } from "../../src/wire/kinds.ts";
import type { Message } from "../../src/wire/message.ts";
import { until } from "../support/until.ts";

function check(cond: unknown, what: string): asserts cond {
  if (!cond) throw new Error(`check failed: ${what}`);
}

/** The longest datagram any socket of this process sent (werift's sockets are node:dgram's). */
let longestDatagram = 0;
{
  // deno-lint-ignore no-explicit-any
  const proto = (dgram as any).Socket.prototype;
  const send = proto.send;
  proto.send = function (msg: Uint8Array | Uint8Array[], ...rest: unknown[]) {
    const n = Array.isArray(msg) ? msg.reduce((a, m) => a + m.byteLength, 0) : msg.byteLength;
    longestDatagram = Math.max(longestDatagram, n);
    return send.call(this, msg, ...rest);
  };
}

const server = await createSignalingServer({ hostname: "127.0.0.1", port: 0 });
const clients: SignalingClient[] = [];
const got: Record<string, Array<{ from: string; msg: Message }>> = {};
async function node(id: string, secret = "deno-secret") {
  const sc = new SignalingClient({ url: server.url, cluster: "deno", self: id });
  await sc.start();
  clients.push(sc);
  const t = new WebRtcTransport({
    self: id,
    cluster: "deno",
    secret,
    signaling: sc,
    iceServers: [],
    connectTimeoutMs: 10_000,
  });
  got[id] = [];
  t.setHandlers({ message: (from, msg) => got[id].push({ from, msg }), linkUp() {}, linkDown() {} });
  return t;
}

try {
  check(runtimeName() === "deno", "runs under Deno");
  const a = await node("a"), b = await node("b"), c = await node("c");
  await a.connect("b");
  await b.connect("c");
  const keys: Record<string, string> = { a: a.signingKey, b: b.signingKey, c: c.signingKey };
  const binding = { fingerprintOf: () => undefined, refused() {}, originKeyOf: (id: string) => keys[id] ?? null };
  a.bindIds(binding);
  c.bindIds(binding);
  a.setRoute("c", "b");
  for (let i = 0; i < 20; i++) a.send("c", { t: Kind.TestEcho, seq: i, reply: false });
  await until(() => got.c.length === 20, 20_000, "tagged relayed messages delivered", 5);
  check(got.c.every((m, i) => m.from === "a" && m.msg.seq === i), "relayed in order, from a");
  check(c.stats().droppedForged === 0 && b.stats().forwarded >= 20, "relayed by b, none dropped");
  a.setRoute("c", null);
  got.c.length = 0;
  await a.connect("c", { via: "b" });
  check(a.isLinked("c"), "a–c linked through relayed signaling");
  const relayed = server.stats().relayed;
  check(!relayed["a>c"] && !relayed["c>a"], "the server carried nothing for a–c");

  for (let i = 0; i < 3000; i++) a.send("b", { t: Kind.TestEcho, seq: i, reply: false });
  const big = new Uint8Array(300_000).map((_, i) => i % 251);
  a.send("c", { t: Kind.TestData, seq: 1, data: big });
  await until(() => got.b.length === 3000 && got.c.length === 1, 20_000, "messages delivered", 5);
  check(got.b.every((m, i) => m.msg.seq === i), "in order");
  const data = got.c[0].msg.data as Uint8Array;
  check(data.length === big.length && data.every((v, i) => v === big[i]), "chunked message intact");
  // The packet path's direct sends and SACKs bundled straight into their packets, under Deno too.
  const pp = packetPathFigures(), sb = sackBundlingFigures();
  check(pp.directTuned >= 2 * 3 * 2 && pp.directUntuned === 0, `direct sends on every connection (${pp.directTuned})`);
  check(
    pp.directStun > 100 && pp.directStun === pp.directSends,
    `packets sent through the direct sends (${pp.directStun})`,
  );
  // Each link's sockets read into 8 KiB, not Deno's 64 KiB, and the longest datagram is far below that.
  check(pp.denoReadBufferCut >= 3 * 2, `read buffers cut on every connection (${pp.denoReadBufferCut})`);
  check(
    longestDatagram > 1000 && longestDatagram <= DENO_DATAGRAM_READ_BYTES / 4,
    `longest datagram ${longestDatagram} B, read buffer ${DENO_DATAGRAM_READ_BYTES} B`,
  );
  check(sb.direct === sb.bundled, `bundled SACKs written straight into their packets (${sb.direct} of ${sb.bundled})`);

  const w = await node("w", "wrong");
  const err = await w.connect("a").then(() => null, (e) => e);
  check(err?.code === "AUTH_FAILED", `wrong secret refused (got ${err?.code}: ${err?.message})`);

  await a.close();
  await until(() => !b.isLinked("a") && !c.isLinked("a"), 20_000, "peers saw a close", 5);
  await Promise.all([b.close(), c.close(), w.close()]);
  console.log("foundation transport under Deno: ok");
} catch (e) {
  console.error(e);
  Deno.exit(1);
} finally {
  for (const c of clients) c.close();
  await server.close();
}
Deno.exit(0);
