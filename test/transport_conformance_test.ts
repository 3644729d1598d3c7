/**
 * One suite, two transports: every case runs against MemoryTransport (virtual clock) and
 * WebRtcTransport (real werift peers in this process, with a signaling server on
 * 127.0.0.1:0). A transport that passes these gives protocol code what it relies on.
 */
import { afterEach, describe, expect, test } from "bun:test";
import { settle, VirtualClock } from "../src/core/clock.ts";
import { Random } from "../src/core/random.ts";
import { SignalingClient } from "../src/signaling/client.ts";
import { createSignalingServer, type SignalingServer } from "../src/signaling/server.ts";
import { MemoryNetwork, type MemoryTransport } from "../src/transport/memory.ts";
import { forwardOf, OriginSigner } from "../src/transport/origin.ts";
import type { NodeId, Transport } from "../src/transport/transport.ts";
import { WebRtcTransport } from "../src/transport/webrtc.ts";
import { encodeFrame, encodeValue } from "../src/wire/codec.ts";
import { Kind } from "../src/wire/kinds.ts";
import type { Message } from "../src/wire/message.ts";
import "../src/transport/messages.ts";

/** What each node saw. */
class Recorder {
  msgs: Array<{ from: NodeId; msg: Message }> = [];
  ups: NodeId[] = [];
  downs: Array<{ peer: NodeId; reason: string }> = [];
  constructor(t: Transport) {
    t.setHandlers({
      message: (from, msg) => this.msgs.push({ from, msg }),
      linkUp: (p) => this.ups.push(p),
      linkDown: (peer, reason) => this.downs.push({ peer, reason }),
    });
  }
  seqsFrom(from: NodeId, kind: number = Kind.TestEcho): number[] {
    return this.msgs.filter((m) => m.from === from && m.msg.t === kind).map((m) => m.msg.seq as number);
  }
}

interface Harness {
  ids: NodeId[];
  t: Record<NodeId, Transport>;
  rec: Record<NodeId, Recorder>;
  /** Drives time until the promise settles. */
  run<T>(p: Promise<T>): Promise<T>;
  /** Drives time until `pred` holds (fails the test after a generous budget). */
  until(pred: () => boolean, what: string): Promise<void>;
  /** Lets time pass (virtual or real). */
  pass(ms: number): Promise<void>;
  /** Delivers raw bytes to `to` as if `from` sent them on their link. */
  inject(from: NodeId, to: NodeId, bytes: Uint8Array): void;
  /** Signaling messages the bootstrap server relayed between two members (webrtc only). */
  serverRelayed?(a: NodeId, b: NodeId): Promise<number>;
  close(): Promise<void>;
}

type Factory = () => Promise<Harness>;

const ids = ["a", "b", "c"];

function memoryHarness(): Promise<Harness> {
  const clock = new VirtualClock();
  const net = new MemoryNetwork({ clock, rng: new Random(7), encode: true });
  const t: Record<string, MemoryTransport> = {};
  const rec: Record<string, Recorder> = {};
  for (const id of ids) {
    t[id] = net.attach(id);
    rec[id] = new Recorder(t[id]);
  }
  const h: Harness = {
    ids,
    t,
    rec,
    async run(p) {
      let done = false;
      const out = p.finally(() => void (done = true));
      out.catch(() => {});
      for (let i = 0; i < 10_000 && !done; i++) await clock.runForAsync(10);
      return out;
    },
    async until(pred, what) {
      for (let i = 0; i < 10_000 && !pred(); i++) await clock.runForAsync(10);
      if (!pred()) throw new Error(`timed out (virtual) waiting for ${what}`);
    },
    async pass(ms) {
      await clock.runForAsync(ms);
    },
    inject(from, to, bytes) {
      t[to].receive(from, bytes, bytes.byteLength);
    },
    async close() {
      for (const id of ids) await t[id].close();
    },
  };
  return Promise.resolve(h);
}

async function webrtcHarness(): Promise<Harness> {
  const server: SignalingServer = await createSignalingServer({ hostname: "127.0.0.1", port: 0 });
  const t: Record<string, WebRtcTransport> = {};
  const rec: Record<string, Recorder> = {};
  const clients: SignalingClient[] = [];
  for (const id of ids) {
    const sc = new SignalingClient({ url: server.url, cluster: "conformance", self: id });
    await sc.start();
    clients.push(sc);
    t[id] = new WebRtcTransport({ self: id, cluster: "conformance", secret: "s3cret", signaling: sc, iceServers: [] });
    rec[id] = new Recorder(t[id]);
  }
  const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));
  return {
    ids,
    t,
    rec,
    run: (p) => p,
    async until(pred, what) {
      const end = Date.now() + 20_000;
      while (!pred() && Date.now() < end) await sleep(5);
      if (!pred()) throw new Error(`timed out waiting for ${what}`);
    },
    pass: async (ms) => {
      await sleep(ms);
    },
    inject(from, to, bytes) {
      if (!t[from].sendRawFrame(to, bytes)) throw new Error(`cannot inject on ${from}→${to}`);
    },
    serverRelayed(a, b) {
      const s = server.stats().relayed;
      return Promise.resolve((s[`${a}>${b}`] ?? 0) + (s[`${b}>${a}`] ?? 0));
    },
    async close() {
      await Promise.all(ids.map((id) => t[id].close()));
      for (const c of clients) c.close();
      await server.close();
    },
  };
}

function echo(seq: number): Message {
  return { t: Kind.TestEcho, seq, reply: false };
}

function conformance(name: string, factory: Factory) {
  describe(`transport conformance: ${name}`, () => {
    let h: Harness | null = null;
    const setup = async () => (h = await factory());
    afterEach(async () => {
      await h?.close();
      h = null;
    });

    test("connect raises linkUp on both ends and links() lists the peer", async () => {
      const { t, rec, run, until } = await setup();
      await run(t.a.connect("b"));
      await until(() => rec.b.ups.includes("a"), "b's linkUp");
      expect(rec.a.ups).toEqual(["b"]);
      expect(t.a.isLinked("b")).toBe(true);
      expect(t.b.isLinked("a")).toBe(true);
      expect(t.a.links()).toEqual(["b"]);
      expect(t.a.isLinked("c")).toBe(false);
      await run(t.a.connect("b")); // already linked: resolves at once
      expect(rec.a.ups).toEqual(["b"]);
    });

    test("connectProgress: set while a link is being set up, never going back, undefined once it is open", async () => {
      const { t, until, serverRelayed } = await setup();
      expect(t.a.connectProgress?.("b")).toBeUndefined();
      const p = t.a.connect("b");
      const seen: Array<number | undefined> = [t.a.connectProgress?.("b")];
      await until(() => {
        seen.push(t.a.connectProgress?.("b"));
        return t.a.isLinked("b");
      }, "a's link to b");
      await p;
      expect(seen[0]).toBeNumber();
      const during = seen.filter((x): x is number => x !== undefined);
      expect(during).toEqual([...during].sort((x, y) => x - y));
      // WebRTC (the harness with a signaling server): the challenge, the answer and ICE moved it on.
      if (serverRelayed) expect(new Set(during).size).toBeGreaterThan(2);
      expect(t.a.connectProgress?.("b")).toBeUndefined();
      expect(t.a.connectProgress?.("c")).toBeUndefined();
    });

    test("messages arrive in the order they were sent", async () => {
      const { t, rec, run, until } = await setup();
      await run(t.a.connect("b"));
      for (let i = 0; i < 500; i++) expect(t.a.send("b", echo(i))).toBe(true);
      await until(() => rec.b.seqsFrom("a").length === 500, "500 messages");
      expect(rec.b.seqsFrom("a")).toEqual([...Array(500).keys()]);
      expect(t.b.stats().messagesReceived).toBe(500);
    });

    test("many messages in both directions all arrive, in order", async () => {
      const { t, rec, run, until } = await setup();
      await run(t.a.connect("b"));
      const n = 20_000;
      for (let i = 0; i < n; i++) {
        t.a.send("b", echo(i));
        t.b.send("a", echo(i));
      }
      await until(() => rec.b.seqsFrom("a").length === n && rec.a.seqsFrom("b").length === n, `${n} messages each way`);
      expect(rec.b.seqsFrom("a")).toEqual([...Array(n).keys()]);
      expect(rec.a.seqsFrom("b")).toEqual([...Array(n).keys()]);
      expect(t.a.stats().droppedOverflow).toBe(0);
    });

    test("a large message is carried intact and in order with small ones", async () => {
      const { t, rec, run, until } = await setup();
      await run(t.a.connect("b"));
      const big = new Uint8Array(1024 * 1024 + 17);
      for (let i = 0; i < big.length; i++) big[i] = (i * 31 + 7) & 0xff;
      t.a.send("b", echo(1));
      t.a.send("b", { t: Kind.TestData, seq: 2, data: big });
      t.a.send("b", echo(3));
      await until(() => rec.b.msgs.length === 3, "3 messages");
      expect(rec.b.msgs.map((m) => m.msg.seq)).toEqual([1, 2, 3]);
      const got = rec.b.msgs[1].msg.data as Uint8Array;
      expect(got.byteLength).toBe(big.byteLength);
      expect(Buffer.from(got).equals(Buffer.from(big))).toBe(true);
      expect(t.b.stats().droppedInvalid).toBe(0);
    });

    test("sending to a member with no link and no route returns false and counts droppedNoRoute", async () => {
      const { t } = await setup();
      expect(t.a.send("nobody", echo(1))).toBe(false);
      expect(t.a.send("b", echo(2))).toBe(false);
      expect(t.a.stats().droppedNoRoute).toBe(2);
    });

    test("a route through a relay carries messages with the original sender", async () => {
      const { t, rec, run, until } = await setup();
      await run(t.a.connect("b"));
      await run(t.b.connect("c"));
      t.a.setRoute("c", "b");
      expect(t.a.routeOf("c")).toBe("b");
      for (let i = 0; i < 50; i++) expect(t.a.send("c", echo(i))).toBe(true);
      await until(() => rec.c.seqsFrom("a").length === 50, "forwarded messages");
      expect(rec.c.seqsFrom("a")).toEqual([...Array(50).keys()]);
      expect(t.b.stats().forwarded).toBeGreaterThanOrEqual(50);
      expect(rec.b.seqsFrom("a")).toEqual([]);
      t.a.setRoute("c", null);
      expect(t.a.routeOf("c")).toBeUndefined();
      expect(t.a.send("c", echo(99))).toBe(false);
    });

    test("with an id binding, relayed messages need their origin's MAC: forged ones are dropped, counted", async () => {
      const { t, rec, run, until, inject } = await setup();
      await run(t.a.connect("b"));
      await run(t.b.connect("c"));
      const keys: Record<string, string | undefined> = { a: t.a.signingKey, b: t.b.signingKey, c: t.c.signingKey };
      expect(keys.a).toMatch(/^[0-9a-f]{64}$/);
      const forged: string[] = [];
      const binding = (onForged?: (claimed: string, reason: string) => void) => ({
        fingerprintOf: () => undefined,
        refused: () => {},
        originKeyOf: (id: string) => keys[id] ?? null,
        forged: onForged ?? (() => {}),
      });
      // a tags for c with the key c's list entry carries; c checks with a's.
      t.a.bindIds?.(binding());
      t.c.bindIds?.(binding((claimed, reason) => forged.push(`${claimed} ${reason}`)));
      t.a.setRoute("c", "b");
      for (let i = 0; i < 20; i++) expect(t.a.send("c", echo(i))).toBe(true);
      await until(() => rec.c.seqsFrom("a").length === 20, "tagged relayed messages");
      // The relay b makes up messages in a's name (untagged, with a made-up MAC, then tagged with a
      // key pair that is not a's) and an unlisted one's.
      const fwd = (from: string, m: Message, tag?: object) =>
        encodeValue([1, [{ t: Kind.Forward, from, to: "c", ttl: 1, m, ...tag }]]);
      inject("b", "c", fwd("a", echo(100)));
      inject("b", "c", fwd("a", echo(101), { n: 99, mac: new Uint8Array(16).fill(1) }));
      const byB = forwardOf(new OriginSigner(), "a", "c", keys.c, echo(102));
      inject("b", "c", encodeValue([1, [byB]]));
      inject("b", "c", fwd("ghost", echo(103)));
      t.b.send("c", echo(7)); // the link keeps working
      await until(() => rec.c.seqsFrom("b").includes(7), "b's own message after the forgeries");
      expect(t.c.stats().droppedForged).toBe(4);
      expect(forged).toEqual(["a bad_signature", "a bad_signature", "a bad_signature", "ghost unknown_origin"]);
      expect(rec.c.seqsFrom("a")).toEqual([...Array(20).keys()]);
      expect(rec.c.seqsFrom("ghost")).toEqual([]);
    });

    test("connect via a linked member (relayed signaling) opens a direct link", async () => {
      const { t, rec, run, until, serverRelayed } = await setup();
      await run(t.a.connect("b"));
      await run(t.b.connect("c"));
      await run(t.a.connect("c", { via: "b" }));
      await until(() => rec.c.ups.includes("a"), "c's linkUp for a");
      expect(t.a.isLinked("c")).toBe(true);
      t.c.send("a", echo(5));
      await until(() => rec.a.seqsFrom("c").length === 1, "a message over the new link");
      if (serverRelayed) expect(await serverRelayed("a", "c")).toBe(0);
    });

    test("connect via a member that is not linked fails", async () => {
      const { t, run } = await setup();
      await expect(run(t.a.connect("c", { via: "b" }))).rejects.toThrow();
      expect(t.a.isLinked("c")).toBe(false);
    });

    test("invalid frames are dropped and counted while the link keeps working", async () => {
      const { t, rec, run, until, inject } = await setup();
      await run(t.a.connect("b"));
      const good = encodeFrame([echo(1)]);
      const bad = [
        new Uint8Array([0xff, 0x00, 0x13]), // not CBOR
        good.subarray(0, good.length - 2), // truncated
        encodeValue([9, [echo(2)]]), // unknown protocol version
        encodeValue([1, [{ t: 999, x: 1 }]]), // unknown kind
        encodeValue([1, [{ t: Kind.TestEcho, seq: "x", reply: false }]]), // wrong field type
        encodeValue([1, [{ t: Kind.Forward, from: "x".repeat(500), to: "b", ttl: 1, m: echo(3) }]]), // id too long
        encodeValue([1, new Array(4097).fill(0)]), // batch too long
      ];
      const before = t.b.stats().droppedInvalid;
      for (const b of bad) inject("a", "b", b);
      t.a.send("b", echo(42));
      await until(() => rec.b.seqsFrom("a").includes(42), "a good message after the junk");
      expect(t.b.stats().droppedInvalid - before).toBe(bad.length);
      expect(rec.b.seqsFrom("a")).toEqual([42]);
      expect(t.a.isLinked("b")).toBe(true);
    });

    test("a Forward carrying a Forward or a Chunk is dropped and counted at its destination", async () => {
      const { t, rec, run, until, inject } = await setup();
      await run(t.a.connect("b"));
      const chunk = { t: Kind.Chunk, id: 1, i: 0, n: 2, data: new Uint8Array(8) };
      const nested = { t: Kind.Forward, from: "a", to: "b", ttl: 1, m: echo(4) };
      const before = t.b.stats().droppedInvalid;
      inject("a", "b", encodeValue([1, [{ t: Kind.Forward, from: "a", to: "b", ttl: 1, m: chunk }]]));
      inject("a", "b", encodeValue([1, [{ t: Kind.Forward, from: "a", to: "b", ttl: 1, m: nested }]]));
      inject("a", "b", encodeValue([1, [{ t: Kind.Forward, from: "a", to: "b", ttl: 1, m: echo(5) }]]));
      await until(() => rec.b.seqsFrom("a").includes(5), "the valid forwarded message");
      expect(t.b.stats().droppedInvalid - before).toBe(2);
      expect(rec.b.seqsFrom("a")).toEqual([5]);
      expect(rec.b.msgs.some((m) => m.msg.t === Kind.Chunk || m.msg.t === Kind.Forward)).toBe(false);
    });

    test("disconnect closes the link on both ends", async () => {
      const { t, rec, run, until } = await setup();
      await run(t.a.connect("b"));
      await until(() => rec.b.ups.includes("a"), "b's linkUp");
      t.a.disconnect("b");
      expect(t.a.isLinked("b")).toBe(false);
      expect(rec.a.downs.map((d) => d.peer)).toEqual(["b"]);
      await until(() => rec.b.downs.some((d) => d.peer === "a"), "b's linkDown");
      expect(t.b.isLinked("a")).toBe(false);
      expect(t.a.send("b", echo(1))).toBe(false);
      // and it can be opened again
      await run(t.b.connect("a"));
      t.b.send("a", echo(7));
      await until(() => rec.a.seqsFrom("b").includes(7), "a message on the new link");
    });

    test("close ends every link; the peers see linkDown and later sends are refused", async () => {
      const { t, rec, run, until, pass } = await setup();
      await run(t.a.connect("b"));
      await run(t.a.connect("c"));
      await run(t.a.close());
      await until(
        () => rec.b.downs.some((d) => d.peer === "a") && rec.c.downs.some((d) => d.peer === "a"),
        "peers' linkDown",
      );
      expect(t.a.send("b", echo(1))).toBe(false);
      expect(t.a.links()).toEqual([]);
      await expect(run(t.a.connect("b"))).rejects.toThrow();
      await pass(20);
      expect(rec.b.seqsFrom("a")).toEqual([]);
    });
  });
}

conformance("memory", memoryHarness);
conformance("webrtc", webrtcHarness);

// settle() is re-exported for harness authors that need a macrotask turn.
void settle;
