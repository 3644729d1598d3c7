/**
 * Origin authentication of relayed messages (src/transport/origin.ts): a Forward is delivered
 * only when its MAC over (origin, destination, counter, inner bytes), under the key the
 * receiver derives from its own secret and the origin's listed key, checks and its counter is
 * fresh; only the two ends of a pair derive its key (a third member, the relay, cannot tag in
 * the origin's name, nor can a Forward for one receiver pass at another); the replay window
 * per origin, the number of windows and of cached pair keys are bounded, and a pair key
 * follows a key change; the kinds that prove their origin otherwise, or come from members of
 * another cluster, pass as documented; and a tagged Forward of any kind survives the frame
 * codec (the receiver re-encodes the decoded inner message and gets the bytes the origin tagged).
 */
import { describe, expect, test } from "bun:test";
import "../src/cluster/messages.ts";
import "../src/cluster/quorum.ts";
import "../src/invoke/messages.ts";
import "../src/jobs/messages.ts";
import "../src/map/messages.ts";
import "../src/partition/messages.ts";
import "../src/signaling/messages.ts";
import { Random } from "../src/core/random.ts";
import { randomMessage } from "./support/arbitrary_message.ts";
import { decodeFrame, encodeFrame } from "../src/wire/codec.ts";
import { Kind } from "../src/wire/kinds.ts";
import { type Message, registeredKinds } from "../src/wire/message.ts";
import type { Forward } from "../src/transport/messages.ts";
import "../src/transport/messages.ts";
import {
  CounterWindows,
  forwardOf,
  MAC_BYTES,
  MAX_ORIGIN_WINDOWS,
  MAX_PAIR_KEYS,
  OriginGuard,
  type OriginKeyOf,
  OriginSigner,
  REPLAY_WINDOW,
} from "../src/transport/origin.ts";

const seed = (b: number) => new Uint8Array(32).fill(b);
const master = new OriginSigner(seed(1));
const liar = new OriginSigner(seed(2));
const b = new OriginSigner(seed(4));
const c = new OriginSigner(seed(3));
const keys: Record<string, string> = { master: master.publicKey, b: b.publicKey, c: c.publicKey };
const listed: OriginKeyOf = (id) => keys[id] ?? null;
/** A Forward from the master to b, tagged for b's listed key. */
const toB = (m: Message) => forwardOf(master, "master", "b", keys.b, m);
const gossip = (inc: number): Message => ({ t: Kind.ClusterGossip, ms: "master", g: [{ s: 3, id: "b", inc }] });

describe("origin MACs of relayed messages", () => {
  test("a genuine Forward is delivered once; its replays, and any change to it, are dropped", () => {
    const guard = new OriginGuard(b);
    const f = toB(gossip(1));
    expect(f.n).toBe(1);
    expect(f.mac?.byteLength).toBe(MAC_BYTES);
    expect(guard.check(f, f.m as Message, listed)).toBeNull();
    expect(guard.check(f, f.m as Message, listed)).toBe("replayed");
    const g = toB(gossip(2));
    const changed: Forward[] = [
      { ...g, m: gossip(3) }, // other inner message
      { ...g, n: g.n! + 1 }, // other counter
      { ...g, from: "c" }, // claimed by another listed member
      { ...g, mac: g.mac!.map((x, i) => i === 0 ? x ^ 1 : x) },
      { ...g, mac: new Uint8Array([...g.mac!, 0]) }, // too long (the frame schema refuses it before)
    ];
    for (const x of changed) expect(guard.check(x, x.m as Message, listed)).toBe("bad_signature");
    expect(guard.check(g, g.m as Message, listed)).toBeNull(); // the untouched one still passes
  });

  test("a Forward tagged for one receiver does not pass at another, even readdressed to it", () => {
    const atC = new OriginGuard(c);
    const f = toB(gossip(1));
    expect(atC.check(f, f.m as Message, listed)).toBe("bad_signature"); // c holds another pair key
    expect(atC.check({ ...f, to: "c" }, f.m as Message, listed)).toBe("bad_signature");
    const g = forwardOf(master, "master", "c", keys.c, gossip(1));
    expect(atC.check(g, g.m as Message, listed)).toBeNull();
    expect(new OriginGuard(b).check({ ...g, to: "b" }, g.m as Message, listed)).toBe("bad_signature");
  });

  test("both ends derive the same pair key; a third member (the relay) derives another", () => {
    const m = gossip(1);
    // b answers the master: the master checks it with its own secret and b's listed key.
    const back = forwardOf(b, "b", "master", keys.master, m);
    expect(new OriginGuard(master).check(back, m, listed)).toBeNull();
    // c, the relay, tags in the master's name with its own secret and b's listed key.
    const byRelay = forwardOf(c, "master", "b", keys.b, m);
    expect(new OriginGuard(b).check(byRelay, m, listed)).toBe("bad_signature");
  });

  test("in a listed member's name: untagged, or tagged with another key, is dropped", () => {
    const guard = new OriginGuard(b);
    const m = gossip(1);
    const untagged: Forward = { t: Kind.Forward, from: "master", to: "b", ttl: 1, m };
    expect(guard.check(untagged, m, listed)).toBe("bad_signature");
    expect(guard.check(forwardOf(liar, "master", "b", keys.b, m), m, listed)).toBe("bad_signature");
    expect(guard.check({ ...untagged, n: 1, mac: new Uint8Array(12) }, m, listed)).toBe("bad_signature");
    expect(guard.check({ ...untagged, n: 1, mac: new Uint8Array(MAC_BYTES) }, m, listed)).toBe("bad_signature");
  });

  test("without the receiver's key the origin cannot tag; an unusable listed key is refused", () => {
    const m = gossip(1);
    for (const k of [undefined, null, "", "zz", "00".repeat(32)]) {
      const f = forwardOf(master, "master", "b", k, m);
      expect(f.mac).toBeUndefined();
      expect(f.n).toBeUndefined();
    }
    // An origin listed with a key that is no curve point (or a low-order one): nothing verifies.
    const guard = new OriginGuard(b);
    const f = toB(m);
    expect(guard.check(f, m, () => "00".repeat(32))).toBe("bad_signature");
    expect(guard.check(f, m, () => "not hex")).toBe("bad_signature");
    expect(guard.check(f, m, listed)).toBeNull();
  });

  test("pair keys: cached, replaced when the peer's key changes, at most a bound, least recently used out", () => {
    expect(MAX_PAIR_KEYS).toBeGreaterThanOrEqual(MAX_ORIGIN_WINDOWS);
    const own = new OriginSigner(seed(9), 16);
    const first = own.pairMac("me", "p", keys.master);
    expect(own.pairMac("me", "p", keys.master)).toBe(first); // cached
    const other = own.pairMac("me", "p", keys.c); // p restarted with a new key
    expect(other).not.toBe(first);
    expect(other).not.toBeNull();
    expect(own.pairKeys).toBe(1);
    // A Forward tagged for p's old key is refused once p's list entry carries the new one.
    const f = forwardOf(master, "master", "b", keys.b, gossip(1));
    const newB = new OriginSigner(seed(5));
    expect(new OriginGuard(newB).check(f, f.m as Message, listed)).toBe("bad_signature");
    const derived = Array.from({ length: 15 }, (_, i) => own.pairMac("me", `p${i}`, keys.b));
    expect(own.pairKeys).toBe(16);
    const recent = own.pairMac("me", "p", keys.c); // used again: now the most recent
    expect(recent).toBe(other);
    const p0 = own.pairMac("me", "p0", keys.b);
    own.pairMac("me", "q", keys.b); // one more: the least recently used (p1) goes
    expect(own.pairKeys).toBe(16);
    expect(own.pairMac("me", "p0", keys.b)).toBe(p0);
    expect(own.pairMac("me", "p", keys.c)).toBe(other);
    expect(p0).toBe(derived[0]);
    const p1 = own.pairMac("me", "p1", keys.b); // derived again: another object, the same key
    expect(p1).not.toBe(derived[1]);
    expect(p1!.clone().update(new Uint8Array(3)).digest()).toEqual(
      derived[1]!.clone().update(new Uint8Array(3)).digest(),
    );
  });

  test("an unlisted origin: dropped, but for a split-brain hello and join answers; no list: nothing checked", () => {
    const guard = new OriginGuard(b);
    const m = gossip(1);
    const f: Forward = { t: Kind.Forward, from: "ghost", to: "b", ttl: 1, m };
    expect(guard.check(f, m, listed)).toBe("unknown_origin");
    expect(guard.check(f, m, () => null)).toBe("unknown_origin"); // listed without a key
    const hello: Message = { t: Kind.ClusterSplitHello, cluster: "x", master: "ghost", size: 3, version: 9 };
    expect(guard.check({ ...f, m: hello }, hello, listed)).toBeNull();
    const accepted: Message = { t: Kind.ClusterJoinAccepted, joiner: "b", list: {} };
    expect(guard.check({ ...f, m: accepted }, accepted, listed)).toBeNull();
    // A relayed signaling message proves its origin itself (signed descriptions, id binding, DTLS).
    const relay: Message = { t: Kind.SignalRelay, from: "master", to: "b", d: {} };
    expect(guard.check({ ...f, from: "master", m: relay }, relay, listed)).toBeNull();
    // Without a member list (no membership, or not joined yet) ids are unbound.
    expect(guard.check({ ...f, from: "master" }, m, () => undefined)).toBeNull();
    expect(guard.check({ ...f, from: "master" }, m, undefined)).toBeNull();
  });

  test("a tagged Forward survives the frame codec and checks after it", () => {
    const guard = new OriginGuard(b);
    const inner: Message = {
      t: Kind.ClusterMemberList,
      base: 0,
      list: { version: 3, master: "master", epoch: 1, nextJoin: 2, members: [] },
      removed: [],
      g: [{ s: 1, id: "c", inc: 2, by: "master" }],
    };
    const f = toB(inner);
    const d = decodeFrame(encodeFrame([f]));
    expect(d.msgs.length).toBe(1);
    const back = d.msgs[0] as Forward;
    expect(guard.check(back, back.m as Message, listed)).toBeNull();
  });

  test("random messages of every kind, tagged, survive the frame codec and check after it", () => {
    const guard = new OriginGuard(b);
    const rng = new Random(17);
    const hints = { ids: ["master", "b", "c", "m", "k1"] };
    let checked = 0;
    for (const { kind } of registeredKinds()) {
      if (kind === Kind.Forward || kind === Kind.Chunk) continue; // never relayed (forwardableInner)
      for (let i = 0; i < 10; i++) {
        const inner = randomMessage(kind, rng, hints);
        if (!inner) continue;
        const d = decodeFrame(encodeFrame([toB(inner)]), 16 * 1024 * 1024);
        expect(d.msgs.length).toBe(1);
        const back = d.msgs[0] as Forward;
        expect({ kind, why: guard.check(back, back.m as Message, listed) }).toEqual({ kind, why: null });
        checked++;
      }
    }
    expect(checked).toBeGreaterThan(500);
  });
});

describe("counter windows", () => {
  test("out of order within the window once each; behind the window or seen: refused", () => {
    const w = new CounterWindows();
    expect(w.fresh("a", "k", 5)).toBe(true);
    expect(w.fresh("a", "k", 3)).toBe(true);
    expect(w.fresh("a", "k", 3)).toBe(false);
    expect(w.fresh("a", "k", 5)).toBe(false);
    expect(w.fresh("a", "k", 4)).toBe(true);
    expect(w.fresh("a", "k", 5 + REPLAY_WINDOW)).toBe(true);
    expect(w.fresh("a", "k", 5)).toBe(false); // fell behind
    expect(w.fresh("a", "k", 6)).toBe(true); // just inside
    expect(w.fresh("a", "k", 6)).toBe(false);
    // A counter seen long ago, its bit reused after the window slid: still refused once seen.
    expect(w.fresh("a", "k", 5 + 3 * REPLAY_WINDOW)).toBe(true);
    expect(w.fresh("a", "k", 5 + 2 * REPLAY_WINDOW)).toBe(false);
    expect(w.fresh("a", "k", 6 + 2 * REPLAY_WINDOW)).toBe(true);
    // Another origin has its own window; a new key (a new process) starts afresh.
    expect(w.fresh("b", "k", 4)).toBe(true);
    expect(w.fresh("a", "k2", 1)).toBe(true);
    expect(w.fresh("a", "k2", 1)).toBe(false);
  });

  test("every counter of a long in-order run with gaps and reordering is taken exactly once", () => {
    const w = new CounterWindows();
    const seen = new Set<number>();
    let n = 0;
    for (let i = 0; i < 20_000; i++) {
      n += 1 + (i % 7 === 0 ? 40 : 0);
      const order = i % 3 === 0 ? [n, n - 1, n] : [n];
      for (const x of order) {
        const fresh = !seen.has(x) && x > 0;
        expect(w.fresh("a", "k", x)).toBe(fresh);
        seen.add(x);
      }
    }
  });

  test("at most MAX_ORIGIN_WINDOWS origins are remembered, the least recently used go first", () => {
    const w = new CounterWindows();
    for (let i = 0; i < MAX_ORIGIN_WINDOWS + 100; i++) w.fresh(`o${i}`, "k", 1);
    expect(w.size).toBe(MAX_ORIGIN_WINDOWS);
    expect(w.fresh(`o${MAX_ORIGIN_WINDOWS + 99}`, "k", 1)).toBe(false); // recent: remembered
    expect(w.fresh("o0", "k", 1)).toBe(true); // evicted: a new window
    expect(w.size).toBe(MAX_ORIGIN_WINDOWS);
  });
});
