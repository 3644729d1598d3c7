/**
 * Signaling: signed descriptions, the bootstrap server's protocol and limits, the client's
 * reconnects, and the transport refusing descriptions that do not check out (wrong
 * secret, a relay that swaps a fingerprint or breaks a signature), plus glare.
 */
import { afterEach, describe, expect, test } from "bun:test";
import { ShoalError } from "../src/core/errors.ts";
import { createLogger } from "../src/core/log.ts";
import { SignalingClient, signalUrl } from "../src/signaling/client.ts";
import {
  CHALLENGE_TTL_MS,
  ChallengeBook,
  checkHelloOrChallenge,
  CLOCK_OFFSET_WARN_MS,
  ClockOffsets,
  clockSample,
  signChallenge,
  signHello,
} from "../src/signaling/challenges.ts";
import { checkDescription, type DescriptionKeys, signAnswer, signOffer } from "../src/signaling/descriptions.ts";
import type { SignalRelay } from "../src/signaling/messages.ts";
import { sdpFingerprints } from "../src/signaling/sdp.ts";
import { createSignalingServer, type SignalingServer } from "../src/signaling/server.ts";
import type { WebRtcTransportOptions } from "../src/transport/webrtc.ts";
import { deriveKey, ReplayGuard, roomId } from "../src/wire/envelope.ts";
import { Kind } from "../src/wire/kinds.ts";
import { until } from "./support/until.ts";
import { WebRtcNodes } from "./support/webrtc_nodes.ts";

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

  /** `b`'s side: its challenge book, with a challenge issued to `a` at `at`. */
  const challenged = (at = now) => {
    const book = new ChallengeBook();
    const ch = book.issue("a", at);
    return { book, challenge: { ch, arrivedMs: at + 5 } };
  };
  const ok = (r: ReturnType<typeof checkDescription>) => ("code" in r ? r : null);
  const refusal = (r: ReturnType<typeof checkDescription>) => ("code" in r ? r : { code: "ACCEPTED", reason: "" });

  test("an offer (with b's challenge) and its answer verify for their receivers", () => {
    const { book, challenge } = challenged();
    const offer = signOffer(keysOf("a"), "b", sdpWith(FP_A), now + 7, challenge);
    expect(offer.fp).toEqual([FP_A]);
    const r = checkDescription(offer, keysOf("b"), new ReplayGuard(), now + 10, book);
    expect(ok(r)).toBeNull();
    expect((r as { challengeIssuedMs: number }).challengeIssuedMs).toBe(now);
    const answer = signAnswer(keysOf("b"), "a", sdpWith(FP_B), offer.nonce, now);
    expect(ok(checkDescription(answer, keysOf("a"), new ReplayGuard(), now, new ChallengeBook()))).toBeNull();
  });

  test("a wrong secret, a swapped fingerprint, a forged answer reference or a changed field is refused", () => {
    const guard = () => new ReplayGuard();
    const { challenge } = challenged();
    const book = () => challenged().book;
    const offer = signOffer(keysOf("a"), "b", sdpWith(FP_A), now, challenge);
    expect(refusal(checkDescription(offer, keysOf("b", "other"), guard(), now, book()))).toMatchObject({
      code: "AUTH_FAILED",
      reason: expect.stringContaining("authentication failed"),
    });
    // The relay puts its own certificate's fingerprint into the SDP.
    expect(refusal(checkDescription({ ...offer, sdp: sdpWith(FP_B) }, keysOf("b"), guard(), now, book())).reason)
      .toContain("fingerprint");
    // … and into the signed field too: the signature no longer matches.
    expect(
      refusal(checkDescription({ ...offer, sdp: sdpWith(FP_B), fp: [FP_B] }, keysOf("b"), guard(), now, book())).reason,
    ).toContain("signature");
    for (const forged of [{ from: "mallory" }, { ts: offer.ts + 1 }, { ch: "f".repeat(32) }, { cts: offer.cts + 1 }]) {
      expect(refusal(checkDescription({ ...offer, ...forged }, keysOf("b"), guard(), now, book())).code).toBe(
        "AUTH_FAILED",
      );
    }
    const answer = signAnswer(keysOf("b"), "a", sdpWith(FP_B), offer.nonce, now);
    expect(refusal(checkDescription({ ...answer, re: "0".repeat(32) }, keysOf("a"), guard(), now, book())).code).toBe(
      "AUTH_FAILED",
    );
    // An offer's signature does not verify as an answer.
    expect(
      refusal(checkDescription({ ...offer, t: Kind.SignalAnswer, re: "" } as never, keysOf("b"), guard(), now, book()))
        .code,
    ).toBe("AUTH_FAILED");
  });

  test("wrong receiver, other cluster, replays and offers without a live challenge are refused", () => {
    const { book, challenge } = challenged();
    const offer = signOffer(keysOf("a"), "b", sdpWith(FP_A), now, challenge);
    expect(refusal(checkDescription(offer, keysOf("c"), new ReplayGuard(), now, book)).reason).toContain(
      "addressed to b",
    );
    expect(refusal(checkDescription(offer, keysOf("b", "s3cret", "other"), new ReplayGuard(), now, book)).reason)
      .toContain("another cluster");
    const g = new ReplayGuard();
    expect(ok(checkDescription(offer, keysOf("b"), g, now, book))).toBeNull();
    // The same offer again: its challenge is used up (and its nonce seen), whatever the clocks say.
    expect(refusal(checkDescription(offer, keysOf("b"), g, now, book)).reason).toContain("challenge");
    expect(refusal(checkDescription(offer, keysOf("b"), new ReplayGuard(), now, book)).reason).toContain("challenge");
    // A challenge b never issued, one issued to someone else, or one past its lifetime on b's clock.
    const other = challenged();
    const forOther = other.book.issue("c", now);
    expect(
      refusal(checkDescription(
        signOffer(keysOf("a"), "b", sdpWith(FP_A), now, { ch: forOther, arrivedMs: now }),
        keysOf("b"),
        new ReplayGuard(),
        now,
        other.book,
      )).reason,
    ).toContain("challenge");
    const late = challenged();
    const lateOffer = signOffer(keysOf("a"), "b", sdpWith(FP_A), now, late.challenge);
    expect(
      refusal(checkDescription(lateOffer, keysOf("b"), new ReplayGuard(), now + CHALLENGE_TTL_MS + 1, late.book))
        .reason,
    ).toContain("expired");
  });

  test("the sender's clock plays no part: offers and answers from a clock 10 minutes off either way verify", () => {
    for (const skew of [-600_000, 600_000, -86_400_000]) {
      const { book, challenge } = challenged();
      const theirs = { ch: challenge.ch, arrivedMs: challenge.arrivedMs + skew };
      const offer = signOffer(keysOf("a"), "b", sdpWith(FP_A), now + skew + 10, theirs);
      expect(ok(checkDescription(offer, keysOf("b"), new ReplayGuard(), now + 20, book))).toBeNull();
      const answer = signAnswer(keysOf("b"), "a", sdpWith(FP_B), offer.nonce, now - skew);
      expect(ok(checkDescription(answer, keysOf("a"), new ReplayGuard(), now, new ChallengeBook()))).toBeNull();
    }
  });

  test("during a secret rotation, descriptions signed with either secret verify; others do not", () => {
    const rotating: DescriptionKeys = { ...keysOf("b", "new"), previousKey: deriveKey("c", "old", "signal") };
    for (const secret of ["new", "old"]) {
      const { book, challenge } = challenged();
      const offer = signOffer(keysOf("a", secret), "b", sdpWith(FP_A), now, challenge);
      const r = checkDescription(offer, rotating, new ReplayGuard(), now, book);
      expect(ok(r)).toBeNull();
      // The answer goes out under the key that verified the offer.
      expect((r as { key: Uint8Array }).key).toEqual(deriveKey("c", secret, "signal"));
    }
    const { book, challenge } = challenged();
    const offer = signOffer(keysOf("a", "third"), "b", sdpWith(FP_A), now, challenge);
    expect(refusal(checkDescription(offer, rotating, new ReplayGuard(), now, book)).code).toBe("AUTH_FAILED");
  });
});

describe("challenges and clock offsets", () => {
  test("a challenge is valid once, for its peer, within its TTL; the book is bounded", () => {
    const book = new ChallengeBook(1000, 8, 2);
    const ch = book.issue("a", 100);
    expect(book.consume("b", ch, 100)).toBeUndefined();
    expect(book.consume("a", ch, 100)).toBe(100);
    expect(book.consume("a", ch, 100)).toBeUndefined();
    // Per peer: the oldest is forgotten first.
    const [x, y, z] = [book.issue("a", 200), book.issue("a", 201), book.issue("a", 202)];
    expect(book.size).toBe(2);
    expect(book.consume("a", x, 300)).toBeUndefined();
    expect(book.consume("a", z, 300)).toBe(202);
    expect(book.consume("a", y, 1300)).toBeUndefined(); // expired
    // In total: 1,000 peers asking leave at most 8 challenges.
    for (let i = 0; i < 1000; i++) book.issue(`p${i}`, 2000);
    expect(book.size).toBe(8);
    expect(book.evicted).toBeGreaterThan(900);
  });

  test("hellos and challenges are signed: a wrong secret or a changed field is refused", () => {
    const keys = (self: string, secret = "s"): DescriptionKeys => ({
      room: roomId("c"),
      key: deriveKey("c", secret, "signal"),
      self,
    });
    const hello = signHello(keys("a"), "b");
    expect("key" in checkHelloOrChallenge(hello, keys("b"))).toBe(true);
    expect(checkHelloOrChallenge(hello, keys("b", "other"))).toMatchObject({ code: "AUTH_FAILED" });
    expect(checkHelloOrChallenge({ ...hello, from: "m" }, keys("b"))).toMatchObject({ code: "AUTH_FAILED" });
    expect(checkHelloOrChallenge(hello, keys("c"))).toMatchObject({ code: "REFUSED" });
    const c = signChallenge(keys("b"), hello, "0123456789abcdef0123", 1_700_000_000_000, keys("b").key);
    expect("key" in checkHelloOrChallenge(c, keys("a"))).toBe(true);
    expect(checkHelloOrChallenge({ ...c, ts: c.ts + 1 }, keys("a"))).toMatchObject({ code: "AUTH_FAILED" });
  });

  test("the NTP estimate recovers a peer's offset and the round trip", () => {
    // Peer 600 s ahead; 40 ms each way; it holds the request 100 ms.
    const s = clockSample(1000, 1040 + 600_000, 1140 + 600_000, 1180);
    expect(s).toEqual({ offsetMs: 600_000, rttMs: 80, atMs: 1180 });
    const offsets = new ClockOffsets(undefined, 2);
    expect(offsets.record("a", s)).toBe(true); // past the warning bound
    expect(offsets.record("b", clockSample(0, 10, 10, 20))).toBe(false);
    offsets.record("c", clockSample(0, -5_000, -5_000, 0));
    expect(Object.keys(offsets.all())).toEqual(["b", "c"]); // bounded: the oldest went
    expect(CLOCK_OFFSET_WARN_MS).toBe(2000);
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

  test("a signal to a member not on the server is counted and logged at debug, not warned about", async () => {
    server = await createSignalingServer({ port: 0 });
    const lines: Array<{ level: string; event: string; code?: string }> = [];
    const log = createLogger("debug", {}, (line) => lines.push(JSON.parse(line)));
    const c = new SignalingClient({ url: server.url, cluster: "c", self: "a", log });
    clients.push(c);
    await c.start();
    // A dead member the master still tries to reach (every 10 s for minutes): expected, so not a warning.
    c.send("gone", { sdp: "x" });
    await until(() => c.dropped > 0, 5_000, "the NO_PEER answer");
    const errors = lines.filter((l) => l.event === "signaling.server_error");
    expect(errors.map((l) => [l.level, l.code])).toEqual([["debug", "NO_PEER"]]);
    expect(c.lastError).toContain("gone");
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
    // Under Bun the runtime closes the socket from the frame's header (maxPayloadLength), before
    // the hub sees the message; under Deno the hub's own check does, and counts it.
    expect(server.stats().dropped).toBe(typeof Bun !== "undefined" ? 6 : 7);
  });
});

describe("the WebRTC transport refuses descriptions that do not check out", () => {
  const nodes = new WebRtcNodes();
  afterEach(() => nodes.close());
  const node = (self: string, extra: Partial<WebRtcTransportOptions> = {}) => nodes.node(self, extra);

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
    const stats = nodes.server!.stats().relayed;
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
