/**
 * End-to-end origin authentication of relayed messages (SECURITY.md, "Relayed messages are
 * signed by their origin"; PROTOCOL.md, "Origin signature").
 * Each member signs, with the Ed25519 key pair of its process, every Forward it originates:
 * over (origin, destination, a counter, the inner message's bytes). The relay passes it on
 * unchanged; the receiver verifies it against the public key the origin's member-list entry
 * carries, and keeps a sliding window of counters per origin so a captured Forward cannot be
 * delivered twice. Both transports apply {@link OriginGuard.check}.
 */
import { ed25519 } from "@noble/curves/ed25519";
import { bytesToHex, hexToBytes } from "@noble/hashes/utils.js";
import { encodeValue } from "../wire/codec.ts";
import { Kind } from "../wire/kinds.ts";
import type { Message } from "../wire/message.ts";
import type { Forward } from "./messages.ts";
import type { IdBinding, NodeId, TransportStats } from "./transport.ts";

/** Counters a receiver remembers behind the highest one seen from an origin. */
export const REPLAY_WINDOW = 1024;
/** Origins whose windows a receiver keeps; the least recently used one goes first past it. */
export const MAX_ORIGIN_WINDOWS = 8192;

/**
 * Inner kinds delivered without an origin signature check: a relayed signaling message
 * carries descriptions signed with the cluster secret over their `from` and `to` and the
 * certificate fingerprint the id is bound to, and the link it sets up is authenticated by
 * DTLS, so its origin is proved without this layer.
 */
const SELF_PROVED: ReadonlySet<number> = new Set([Kind.SignalRelay]);

/**
 * Inner kinds a receiver accepts from an origin it does not list (signed or not): the
 * split-brain hello from another cluster's master, whose members are not in this list (it
 * only starts the exchange; the merge itself runs over a direct DTLS link with a request
 * signed with the secret and nonce checks), and the answers to a join.
 */
const UNLISTED_OK: ReadonlySet<number> = new Set([
  Kind.ClusterSplitHello,
  Kind.ClusterJoinAccepted,
  Kind.ClusterJoinRefused,
]);

/** Why a relayed message was dropped. */
export type ForgedReason = "unknown_origin" | "bad_signature" | "replayed";

/** The origin signature fields a Forward carries. */
export interface OriginSignature {
  /** The origin's counter: one more for every Forward it signs. */
  n: number;
  /** Ed25519 signature (64 bytes) over {@link signedBytes}. */
  sig: Uint8Array<ArrayBuffer>;
}

/** The bytes an origin signs for a Forward from `from` to `to` with counter `n` around `inner`. */
export function signedBytes(from: NodeId, to: NodeId, n: number, inner: unknown): Uint8Array {
  return encodeValue(["shoal-fwd-1", from, to, n, encodeValue(inner)]);
}

/** A member's Ed25519 key pair (one per process) and its Forward counter. */
export class OriginSigner {
  readonly #secret: Uint8Array;
  /** The public key, 64 hex digits, as member-list entries carry it (`pk`). */
  readonly publicKey: string;
  #n = 0;

  /** @param seed 32 bytes: a fixed seed gives a fixed key (the simulator); default random */
  constructor(seed: Uint8Array = ed25519.utils.randomPrivateKey()) {
    this.#secret = seed;
    this.publicKey = bytesToHex(ed25519.getPublicKey(seed));
  }

  /** Signs a Forward this member originates. */
  sign(from: NodeId, to: NodeId, inner: Message): OriginSignature {
    const n = ++this.#n;
    // noble returns a fresh ArrayBuffer-backed array (the wire schema's type).
    return { n, sig: ed25519.sign(signedBytes(from, to, n, inner), this.#secret) as Uint8Array<ArrayBuffer> };
  }
}

/**
 * Where the receiver looks up an origin's public key: the key (64 hex digits); null when the
 * origin is not a listed member or joined without a key (its Forwards are dropped); undefined
 * when this member has no member list to check against (no membership, or not joined yet:
 * nothing is checked, as ids are unbound then).
 */
export type OriginKeyOf = (id: NodeId) => string | null | undefined;

interface Window {
  key: string;
  top: number;
  seen: Uint8Array;
}

/**
 * Sliding windows of counters per origin (RFC 4303 §3.4.3 style): a counter is fresh once,
 * and only while it is within {@link REPLAY_WINDOW} of the highest seen. A new key for an
 * origin (a new process) starts a new window. At most {@link MAX_ORIGIN_WINDOWS} origins
 * (128 bytes each), the least recently used dropped first.
 */
export class CounterWindows {
  readonly #windows = new Map<NodeId, Window>();

  /** How many origins have a window. */
  get size(): number {
    return this.#windows.size;
  }

  /** Records counter `n` of `origin` (under `key`); false when it was seen or fell behind the window. */
  fresh(origin: NodeId, key: string, n: number): boolean {
    let w = this.#windows.get(origin);
    if (w) this.#windows.delete(origin); // re-inserted below: the map's order is least recently used first
    if (!w || w.key !== key) w = { key, top: 0, seen: new Uint8Array(REPLAY_WINDOW / 8) };
    this.#windows.set(origin, w);
    if (this.#windows.size > MAX_ORIGIN_WINDOWS) this.#windows.delete(this.#windows.keys().next().value!);
    if (n > w.top) {
      const gap = n - w.top;
      if (gap >= REPLAY_WINDOW) w.seen.fill(0);
      else for (let i = w.top + 1; i < n; i++) clearBit(w.seen, i);
      w.top = n;
      setBit(w.seen, n);
      return true;
    }
    if (n <= w.top - REPLAY_WINDOW || getBit(w.seen, n)) return false;
    setBit(w.seen, n);
    return true;
  }
}

/** The receiver's side: verifies relayed messages and remembers recent counters per origin. */
export class OriginGuard {
  readonly windows = new CounterWindows();

  /**
   * Checks a Forward addressed to this member whose inner message `inner` was validated.
   * @returns why it must be dropped, or null to deliver it
   */
  check(f: Forward, inner: Message, keyOf: OriginKeyOf | undefined): ForgedReason | null {
    if (SELF_PROVED.has(inner.t)) return null;
    const key = keyOf?.(f.from);
    if (key === undefined) return null;
    if (key === null) return UNLISTED_OK.has(inner.t) ? null : "unknown_origin";
    if (f.n === undefined || f.sig === undefined || f.sig.byteLength !== 64) return "bad_signature";
    let ok = false;
    try {
      ok = ed25519.verify(f.sig, signedBytes(f.from, f.to, f.n, f.m), hexToBytes(key));
    } catch {
      ok = false;
    }
    if (!ok) return "bad_signature";
    return this.windows.fresh(f.from, key, f.n) ? null : "replayed";
  }
}

function getBit(b: Uint8Array, n: number): boolean {
  const i = n % REPLAY_WINDOW;
  return (b[i >> 3] & (1 << (i & 7))) !== 0;
}
function setBit(b: Uint8Array, n: number): void {
  const i = n % REPLAY_WINDOW;
  b[i >> 3] |= 1 << (i & 7);
}
function clearBit(b: Uint8Array, n: number): void {
  const i = n % REPLAY_WINDOW;
  b[i >> 3] &= ~(1 << (i & 7));
}

/** The Forward that carries `msg` from `from` (this member) to `to` through a relay, signed when there is a signer. */
export function forwardOf(signer: OriginSigner | undefined, from: NodeId, to: NodeId, msg: Message): Forward & Message {
  const f = { t: Kind.Forward as typeof Kind.Forward, from, to, ttl: 2, m: msg };
  return signer ? { ...f, ...signer.sign(from, to, msg) } : f;
}

/**
 * The rule both transports apply to a Forward addressed to them, after its inner message
 * passed `forwardableInner`: whether to deliver it. A drop is counted in `stats.droppedForged`
 * and reported to the binding.
 */
export function admitForward(
  guard: OriginGuard,
  f: Forward,
  inner: Message,
  binding: IdBinding | undefined,
  stats: TransportStats,
): boolean {
  const why = guard.check(f, inner, binding?.originKeyOf?.bind(binding));
  if (why === null) return true;
  stats.droppedForged++;
  binding?.forged?.(f.from, why);
  return false;
}
