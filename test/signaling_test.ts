/**
 * Signaling: signed descriptions, the bootstrap server's protocol and limits, the client's
 * reconnects, and the transport refusing descriptions that do not check out (wrong
 * secret, a relay that swaps a fingerprint or breaks a signature), plus glare.
 */
import { afterEach, describe, expect, test } from "bun:test";
import { ShoalError } from "../src/core/errors.ts";
import { SignalingClient, signalUrl } from "../src/signaling/client.ts";
import { checkDescription, type DescriptionKeys, signAnswer, signOffer } from "../src/signaling/descriptions.ts";
import type { SignalRelay } from "../src/signaling/messages.ts";
import { sdpFingerprints } from "../src/signaling/sdp.ts";
import { createSignalingServer, type SignalingServer } from "../src/signaling/server.ts";
import { WebRtcTransport, type WebRtcTransportOptions } from "../src/transport/webrtc.ts";
import { deriveKey, ReplayGuard, roomId } from "../src/wire/envelope.ts";
import { Kind } from "../src/wire/kinds.ts";
import { until } from "./support/until.ts";

const FP_A = "sha-256 F9:84:9F:A6:CB:AD:9C:1E:49:36:84:1F:D6:81:15:29:59:A8:C4:C9:30:A7:E2:0D:6F:11:41:FA:00:A7:0C:5B";
const FP_B = "sha-256 00:11:22:33:44:55:66:77:88:99:AA:BB:CC:DD:EE:FF:00:11:22:33:44:55:66:77:88:99:AA:BB:CC:DD:EE:FF";
const sdpWith = (fp: string) =>
  `v=0\r\no=- 1 0 IN IP4 0.0.0.0\r\ns=-\r\nt=0 0\r\nm=application 9 UDP/DTLS/SCTP webrtc-datachannel\r\na=fingerprint:${fp}\r\na=setup:actpass\r\n`;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe("signed descriptions", () => {
  const keysOf = (self: string, secret = "s3cret", cluster = "c"): DescriptionKeys => ({
    room: roomId(cluster),
    key: deriveKey(cluster, secret, "signal"),
    self,
  });
  const now = 1_700_000_000_000;

  test("sdpFingerprints normalises algorithm and hex case", () => {
    expect(sdpFingerprints("a=fingerprint:SHA-256 ab:cd\r\nx=1\na=fingerprint:sha-1  0a:0b\n")).toEqual([
      "sha-256 AB:CD",
      "sha-1 0A:0B",
    ]);
    expect(sdpFingerprints("v=0\r\n")).toEqual([]);
  });

  test("an offer and its answer verify for their receivers", () => {
    const offer = signOffer(keysOf("a"), "b", sdpWith(FP_A), now);
    expect(offer.fp).toEqual([FP_A]);
    expect(checkDescription(offer, keysOf("b"), new ReplayGuard(), now + 10)).toBeNull();
    const answer = signAnswer(keysOf("b"), "a", sdpWith(FP_B), offer.nonce, now);
    expect(checkDescription(answer, keysOf("a"), new ReplayGuard(), now)).toBeNull();
  });

  test("a wrong secret, a swapped fingerprint, a forged answer reference or a changed field is refused", () => {
    const guard = () => new ReplayGuard();
    const offer = signOffer(keysOf("a"), "b", sdpWith(FP_A), now);
    expect(checkDescription(offer, keysOf("b", "other"), guard(), now)).toMatchObject({
      code: "AUTH_FAILED",
      reason: expect.stringContaining("authentication failed"),
    });
    // The relay puts its own certificate's fingerprint into the SDP.
    expect(checkDescription({ ...offer, sdp: sdpWith(FP_B) }, keysOf("b"), guard(), now)?.reason).toContain(
      "fingerprint",
    );
    // … and into the signed field too: the signature no longer matches.
    expect(checkDescription({ ...offer, sdp: sdpWith(FP_B), fp: [FP_B] }, keysOf("b"), guard(), now)?.reason).toContain(
      "signature",
    );
    expect(checkDescription({ ...offer, from: "mallory" }, keysOf("b"), guard(), now)?.code).toBe("AUTH_FAILED");
    expect(checkDescription({ ...offer, ts: offer.ts + 1 }, keysOf("b"), guard(), now)?.code).toBe("AUTH_FAILED");
    const answer = signAnswer(keysOf("b"), "a", sdpWith(FP_B), offer.nonce, now);
    expect(checkDescription({ ...answer, re: "0".repeat(32) }, keysOf("a"), guard(), now)?.code).toBe("AUTH_FAILED");
    // An offer's signature does not verify as an answer.
    expect(checkDescription({ ...offer, t: Kind.SignalAnswer, re: "" } as never, keysOf("b"), guard(), now)?.code).toBe(
      "AUTH_FAILED",
    );
  });

  test("wrong receiver, other cluster, replays and stale timestamps are refused", () => {
    const offer = signOffer(keysOf("a"), "b", sdpWith(FP_A), now);
    expect(checkDescription(offer, keysOf("c"), new ReplayGuard(), now)?.reason).toContain("addressed to b");
    expect(checkDescription(offer, keysOf("b", "s3cret", "other"), new ReplayGuard(), now)?.reason).toContain(
      "another cluster",
    );
    const g = new ReplayGuard();
    expect(checkDescription(offer, keysOf("b"), g, now)).toBeNull();
    expect(checkDescription(offer, keysOf("b"), g, now)?.reason).toContain("replay");
    expect(checkDescription(offer, keysOf("b"), new ReplayGuard(), now + 120_000)?.reason).toContain("window");
  });
});

describe("signaling server and client", () => {
  let server: SignalingServer | null = null;
  const clients: SignalingClient[] = [];
  afterEach(async () => {
    for (const c of clients.splice(0)) c.close();
    await server?.close();
    server = null;
  });
  const client = (self: string, cluster = "c", url = server!.url) => {
    const c = new SignalingClient({ url, cluster, self, backoffMinMs: 50, backoffMaxMs: 200 });
    clients.push(c);
    return c;
  };
  const rawSocket = async (url: string) => {
    const ws = new WebSocket(signalUrl(url));
    const inbox: Array<Record<string, unknown>> = [];
    ws.onmessage = (e) => inbox.push(JSON.parse(String(e.data)));
    const opened = await new Promise<boolean>((r) => {
      ws.onopen = () => r(true);
      ws.onerror = () => r(false);
      ws.onclose = () => r(false);
    });
    return { ws, inbox, opened };
  };

  test("signalUrl maps base URLs to the /signal WebSocket", () => {
    expect(signalUrl("http://127.0.0.1:5701")).toBe("ws://127.0.0.1:5701/signal");
    expect(signalUrl("https://h.example/x/")).toBe("wss://h.example/x/signal");
    expect(signalUrl("ws://h:1/signal")).toBe("ws://h:1/signal");
    expect(() => signalUrl("ftp://h")).toThrow(TypeError);
  });

  test("members of a room see each other, relay payloads, and the server counts per pair", async () => {
    server = await createSignalingServer({ port: 0 });
    const a = client("a"), b = client("b"), x = client("x", "other-cluster");
    await a.start();
    await b.start();
    await x.start();
    await until(() => a.peers().includes("b"), 15_000, "a sees b", 5);
    expect(b.peers()).toEqual(["a"]);
    expect(a.peers()).toEqual(["b"]); // x is in another room
    const got: Array<[string, unknown]> = [];
    b.onSignal((from, p) => got.push([from, p]));
    expect(a.send("b", { hello: 1 })).toBe(true);
    expect(a.send("b", { hello: 2 })).toBe(true);
    x.send("b", { sneaky: true }); // different room: not delivered
    await until(() => got.length === 2, 15_000, "two payloads", 5);
    await sleep(50);
    expect(got).toEqual([["a", { hello: 1 }], ["a", { hello: 2 }]]);
    const stats = await (await fetch(`${server.url}/signal/stats`)).json();
    expect(stats.relayed).toEqual({ "a>b": 2 });
    expect(stats.sockets).toBe(3);
    expect(stats.rooms).toBe(2);
    expect(stats.dropped).toBe(1);
    b.close();
    await until(() => a.peers().length === 0, 15_000, "a sees b leave", 5);
  });

  test("the client reconnects after the server restarts on the same port", async () => {
    server = await createSignalingServer({ port: 0 });
    const port = server.port;
    const a = client("a"), b = client("b");
    await a.start();
    await b.start();
    await server.close();
    await until(() => !a.connected, 15_000, "a disconnected", 5);
    expect(a.send("b", { queued: true })).toBe(true); // waits in the queue
    server = await createSignalingServer({ port });
    const got: unknown[] = [];
    b.onSignal((_from, p) => got.push(p));
    await until(() => a.connected && b.connected, 15_000, "both reconnected", 5);
    await until(() => got.length === 1, 15_000, "the queued payload", 5);
    expect(got).toEqual([{ queued: true }]);
  });

  test("start() rejects with UNREACHABLE when no server answers", async () => {
    const probe = await createSignalingServer({ port: 0 });
    const url = probe.url;
    await probe.close();
    const c = client("a", "c", url);
    const err = await c.start(400).catch((e) => e);
    expect(err).toBeInstanceOf(ShoalError);
    expect(err.code).toBe("UNREACHABLE");
  });

  test("sockets per IP are limited", async () => {
    server = await createSignalingServer({ port: 0, maxSocketsPerIp: 2 });
    const s1 = await rawSocket(server.url);
    const s2 = await rawSocket(server.url);
    const s3 = await rawSocket(server.url);
    expect([s1.opened, s2.opened, s3.opened]).toEqual([true, true, false]);
    expect(server.stats().refused).toBe(1);
    s1.ws.close();
    s2.ws.close();
    await until(() => server!.stats().sockets === 0, 15_000, "sockets closed", 5);
    const s4 = await rawSocket(server.url);
    expect(s4.opened).toBe(true);
    s4.ws.close();
  });

  test("invalid, unaddressed, over-rate and oversized messages are refused", async () => {
    server = await createSignalingServer({ port: 0, ratePerSecond: 0.001, rateBurst: 6 });
    const { ws, inbox } = await rawSocket(server.url);
    ws.send("not json");
    ws.send(JSON.stringify({ type: "signal", to: "b", payload: 1 })); // before hello
    ws.send(JSON.stringify({ type: "hello", v: 1, room: roomId("c"), id: "a" }));
    ws.send(JSON.stringify({ type: "signal", to: "nobody", payload: 1 }));
    ws.send(JSON.stringify({ type: "hello", v: 1, room: roomId("c"), id: "a" })); // twice
    ws.send(JSON.stringify({ type: "bogus" }));
    ws.send(JSON.stringify({ type: "hello", v: 1, room: roomId("c"), id: "z" })); // 7th: over the burst
    await until(() => inbox.length >= 7, 15_000, "seven replies", 5);
    expect(inbox.map((m) => m.type)).toEqual(["error", "error", "welcome", "error", "error", "error", "error"]);
    expect(inbox.map((m) => m.code ?? "-")).toEqual([
      "INVALID",
      "INVALID",
      "-",
      "NO_PEER",
      "INVALID",
      "INVALID",
      "RATE",
    ]);
    const closed = new Promise<number>((r) => (ws.onclose = (e) => r(e.code)));
    ws.send("x".repeat(70 * 1024));
    expect(await closed).toBe(1009);
    expect(server.stats().dropped).toBe(7);
  });
});

describe("the WebRTC transport refuses descriptions that do not check out", () => {
  let server: SignalingServer | null = null;
  const transports: WebRtcTransport[] = [];
  const clients: SignalingClient[] = [];
  afterEach(async () => {
    await Promise.all(transports.splice(0).map((t) => t.close()));
    for (const c of clients.splice(0)) c.close();
    await server?.close();
    server = null;
  });
  const node = async (self: string, extra: Partial<WebRtcTransportOptions> = {}) => {
    server ??= await createSignalingServer({ port: 0 });
    const sc = new SignalingClient({ url: server.url, cluster: "c", self });
    await sc.start();
    clients.push(sc);
    const t = new WebRtcTransport({
      self,
      cluster: "c",
      secret: "s3cret",
      signaling: sc,
      connectTimeoutMs: 10_000,
      ...extra,
    });
    transports.push(t);
    return t;
  };

  test("a member with the wrong secret is told 'authentication failed' instead of timing out", async () => {
    const a = await node("a", { secret: "wrong" });
    const b = await node("b");
    const started = Date.now();
    const err = await a.connect("b").catch((e) => e);
    expect(err).toBeInstanceOf(ShoalError);
    expect(err.code).toBe("AUTH_FAILED");
    expect(err.message).toContain("authentication failed");
    expect(Date.now() - started).toBeLessThan(10_000); // a reply, not the connect timeout
    expect(b.signalingCounters().refused).toBe(1);
    expect(b.signalingCounters().lastRefusal).toContain("signature");
    expect(a.isLinked("b") || b.isLinked("a")).toBe(false);
  });

  test("a relay that swaps a fingerprint or breaks a signature is detected; an honest relay works", async () => {
    let tamper: ((m: SignalRelay) => SignalRelay) | null = null;
    const a = await node("a");
    const r = await node("r", { relayHook: (m) => (tamper ? tamper(m) : m) });
    const b = await node("b");
    await a.connect("r");
    await b.connect("r");
    const swapFp = (m: SignalRelay): SignalRelay => {
      const d = m.d as { sdp: string };
      return { ...m, d: { ...d, sdp: d.sdp.replace(/a=fingerprint:sha-256 [0-9A-F:]+/, `a=fingerprint:${FP_B}`) } };
    };
    const cases: Array<[string, (m: SignalRelay) => SignalRelay, string]> = [
      // The relay replaces the offer's certificate fingerprint with its own.
      ["offer fingerprint", (m) => ((m.d as { t: number }).t === Kind.SignalOffer ? swapFp(m) : m), "fingerprint"],
      // … and also the signed copy, which breaks the signature.
      ["offer fingerprint and fp field", (m) => {
        if ((m.d as { t: number }).t !== Kind.SignalOffer) return m;
        const s = swapFp(m);
        return { ...s, d: { ...(s.d as object), fp: [FP_B] } };
      }, "signature"],
      // The answer's fingerprint is swapped: the offerer refuses it.
      ["answer fingerprint", (m) => ((m.d as { t: number }).t === Kind.SignalAnswer ? swapFp(m) : m), "fingerprint"],
      // A forged signature.
      [
        "signature",
        (
          m,
        ) => ((m.d as { t: number }).t === Kind.SignalOffer
          ? { ...m, d: { ...(m.d as object), sig: "0".repeat(64) } }
          : m),
        "signature",
      ],
    ];
    let refusedBefore = a.signalingCounters().refused + b.signalingCounters().refused;
    for (const [name, fn, reason] of cases) {
      tamper = fn;
      const err = await a.connect("b", { via: "r" }).catch((e) => e);
      expect(err, name).toBeInstanceOf(ShoalError);
      expect(err.code, name).toBe("AUTH_FAILED");
      expect(err.message, name).toContain(reason);
      const refused = a.signalingCounters().refused + b.signalingCounters().refused;
      expect(refused, name).toBe(refusedBefore + 1);
      refusedBefore = refused;
      expect(a.isLinked("b"), name).toBe(false);
    }
    tamper = null;
    await a.connect("b", { via: "r" });
    expect(a.isLinked("b")).toBe(true);
    expect(r.signalingCounters().relayed).toBeGreaterThanOrEqual(10);
    const stats = server!.stats().relayed;
    expect(stats["a>b"] ?? 0).toBe(0);
    expect(stats["b>a"] ?? 0).toBe(0);
  });

  test("both ends connecting at once (glare) ends with one working link", async () => {
    const a = await node("a");
    const b = await node("b");
    const gotA: number[] = [], gotB: number[] = [];
    let upsA = 0, upsB = 0;
    a.setHandlers({ message: (_f, m) => gotA.push(m.seq as number), linkUp: () => upsA++, linkDown: () => {} });
    b.setHandlers({ message: (_f, m) => gotB.push(m.seq as number), linkUp: () => upsB++, linkDown: () => {} });
    await Promise.all([a.connect("b"), b.connect("a")]);
    await until(() => a.isLinked("b") && b.isLinked("a"), 15_000, "both linked", 5);
    a.send("b", { t: Kind.TestEcho, seq: 1, reply: false });
    b.send("a", { t: Kind.TestEcho, seq: 2, reply: false });
    await until(() => gotA.length === 1 && gotB.length === 1, 15_000, "one message each way", 5);
    expect([upsA, upsB]).toEqual([1, 1]);
  });
});
