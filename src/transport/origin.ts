/**
 * End-to-end origin authentication of relayed messages (SECURITY.md, "Relayed messages are
 * authenticated by their origin"; PROTOCOL.md, "Origin MAC").
 * Each member has an Ed25519 key pair per process; its public key travels in its member-list
 * entry (`pk`). For each (origin, receiver) pair both ends derive the same key: X25519 between
 * one's secret and the other's public key (both converted from Ed25519), then HKDF-SHA256
 * with the two ids (ordered) in its info. The origin tags every Forward it originates with an
 * HMAC-SHA256 under that key, truncated to {@link MAC_BYTES}, over (origin, destination, a
 * counter, the inner message's bytes). The relay passes it on unchanged; the receiver
 * recomputes it from its own secret and the origin's listed key, and keeps a sliding window
 * of counters per origin so a captured Forward cannot be delivered twice. Only the two ends
 * hold a pair's key, so the tag proves the origin to that one receiver, which is all a
 * Forward (one destination) needs. Derived keys are cached per peer (bounded, least recently
 * used first out, replaced when the peer's key changes): the per-message cost is one HMAC.
 * Both transports apply {@link OriginGuard.check}.
 */
import { ed25519, edwardsToMontgomeryPriv, edwardsToMontgomeryPub, x25519 } from "@noble/curves/ed25519";
import { hkdf } from "@noble/hashes/hkdf.js";
import { hmac } from "@noble/hashes/hmac.js";
import { sha256 } from "@noble/hashes/sha2.js";
import { bytesToHex } from "@noble/hashes/utils.js";
import { encodeValue } from "../wire/codec.ts";
import { Kind } from "../wire/kinds.ts";
import type { Message } from "../wire/message.ts";
import type { Forward } from "./messages.ts";
import type { IdBinding, NodeId, TransportStats } from "./transport.ts";
import { setNewest } from "../core/bounded.ts";

/** Counters a receiver remembers behind the highest one seen from an origin. */
export const REPLAY_WINDOW = 1024;
/** Origins whose windows a receiver keeps; the least recently used one goes first past it. */
export const MAX_ORIGIN_WINDOWS = 8192;
/** Pairwise keys a member keeps derived; the least recently used one goes first past it. */
export const MAX_PAIR_KEYS = 8192;
/**
 * Bytes of the HMAC-SHA256 a Forward carries: 128 bits, as HMAC-SHA-256-128 in IPsec
 * (RFC 4868). A forger gets no oracle (a wrong tag is dropped and counted, nothing answers),
 * so each guess is one message with a 2^-128 chance; 16 more bytes would buy nothing usable
 * and cost every relayed message.
 */
export const MAC_BYTES = 16;

/**
 * Inner kinds delivered without an origin MAC check: a relayed signaling message carries
 * descriptions signed with the cluster secret over their `from` and `to` and the certificate
 * fingerprint the id is bound to, and the link it sets up is authenticated by DTLS, so its
 * origin is proved without this layer.
 */
const SELF_PROVED: ReadonlySet<number> = new Set([Kind.SignalRelay]);

/**
 * Inner kinds a receiver accepts from an origin it does not list (tagged or not): the
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

/** The origin authentication fields a Forward carries. */
export interface OriginTag {
  /** The origin's counter: one more for every Forward it tags. */
  n: number;
  /** HMAC-SHA256 ({@link MAC_BYTES} bytes) over {@link signedBytes} under the pair's key. */
  mac: Uint8Array<ArrayBuffer>;
}

/** The bytes an origin authenticates for a Forward from `from` to `to` with counter `n` around `inner`. */
export function signedBytes(from: NodeId, to: NodeId, n: number, inner: unknown): Uint8Array {
  return encodeValue(["shoal-fwd-1", from, to, n, encodeValue(inner)]);
}

/** HKDF info: CBOR([this label, the lower id, the higher id]) (CBOR delimits the ids). */
const PAIR_LABEL = "shoal-fwd-mac-1";
type Mac = ReturnType<typeof hmac.create>;

/**
 * A member's Ed25519 key pair (one per process), its Forward counter, and the pairwise MAC
 * keys it derived (per peer id and key; at most {@link MAX_PAIR_KEYS}).
 */
export class OriginSigner {
  readonly #x25519: Uint8Array;
  /** The public key, 64 hex digits, as member-list entries carry it (`pk`). */
  readonly publicKey: string;
  #n = 0;
  /** `self \0 peer` → the peer's key and the HMAC keyed for the pair (null: the key is unusable). */
  readonly #pairs = new Map<string, { pk: string; mac: Mac | null }>();

  readonly #maxPairs: number;

  /**
   * @param seed 32 bytes: a fixed seed gives a fixed key (the simulator); default random
   * @param maxPairKeys pairwise keys kept derived (tests lower it)
   */
  constructor(seed: Uint8Array = ed25519.utils.randomPrivateKey(), maxPairKeys = MAX_PAIR_KEYS) {
    this.#maxPairs = maxPairKeys;
    this.publicKey = bytesToHex(ed25519.getPublicKey(seed));
    this.#x25519 = edwardsToMontgomeryPriv(seed);
  }

  /** How many pairwise keys are cached. */
  get pairKeys(): number {
    return this.#pairs.size;
  }

  /**
   * The HMAC keyed for the pair (`self`, `peer` whose listed key is `peerKey`), derived on
   * first use and cached; null when `peerKey` is not a usable public key.
   */
  pairMac(self: NodeId, peer: NodeId, peerKey: string): Mac | null {
    const id = `${self}\0${peer}`;
    let e = this.#pairs.get(id);
    if (!e || e.pk !== peerKey) e = { pk: peerKey, mac: this.#derive(self, peer, peerKey) };
    // Re-inserted: the map's order is least recently used first.
    setNewest(this.#pairs, id, e, this.#maxPairs);
    return e.mac;
  }

  #derive(self: NodeId, peer: NodeId, peerKey: string): Mac | null {
    let shared: Uint8Array;
    try {
      // Throws on a malformed point, and on a low-order one (an all-zero shared secret).
      shared = x25519.getSharedSecret(this.#x25519, edwardsToMontgomeryPub(peerKey));
    } catch {
      return null;
    }
    const [lo, hi] = self < peer ? [self, peer] : [peer, self];
    const info = encodeValue([PAIR_LABEL, lo, hi]);
    return hmac.create(sha256, hkdf(sha256, shared, undefined, info, 32));
  }

  /**
   * Tags a Forward this member originates for `to`, whose listed key is `toKey`; nothing
   * (an untagged Forward) when `to`'s key is unknown or unusable.
   */
  tag(from: NodeId, to: NodeId, toKey: string | null | undefined, inner: Message): OriginTag | undefined {
    const base = toKey ? this.pairMac(from, to, toKey) : null;
    if (!base) return undefined;
    const n = ++this.#n;
    return { n, mac: macOf(base, signedBytes(from, to, n, inner)) };
  }
}

/** The truncated HMAC of `bytes` under the keyed `base` (cloned: `base` stays reusable). */
function macOf(base: Mac, bytes: Uint8Array): Uint8Array<ArrayBuffer> {
  return base.clone().update(bytes).digest().slice(0, MAC_BYTES) as Uint8Array<ArrayBuffer>;
}

/** Whether two byte arrays are equal, in time independent of where they differ. */
function sameBytes(a: Uint8Array, b: Uint8Array): boolean {
  if (a.byteLength !== b.byteLength) return false;
  let d = 0;
  for (let i = 0; i < a.byteLength; i++) d |= a[i] ^ b[i];
  return d === 0;
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
    if (!w || w.key !== key) w = { key, top: 0, seen: new Uint8Array(REPLAY_WINDOW / 8) };
    // Re-inserted: the map's order is least recently used first.
    setNewest(this.#windows, origin, w, MAX_ORIGIN_WINDOWS);
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

/** The receiver's side: checks relayed messages' MACs and remembers recent counters per origin. */
export class OriginGuard {
  readonly windows = new CounterWindows();
  readonly #own: OriginSigner;

  /** @param own this member's key pair (its secret derives the pairwise keys) */
  constructor(own: OriginSigner) {
    this.#own = own;
  }

  /**
   * Checks a Forward addressed to this member whose inner message `inner` was validated.
   * @returns why it must be dropped, or null to deliver it
   */
  check(f: Forward, inner: Message, keyOf: OriginKeyOf | undefined): ForgedReason | null {
    if (SELF_PROVED.has(inner.t)) return null;
    const key = keyOf?.(f.from);
    if (key === undefined) return null;
    if (key === null) return UNLISTED_OK.has(inner.t) ? null : "unknown_origin";
    if (f.n === undefined || f.mac === undefined || f.mac.byteLength !== MAC_BYTES) return "bad_signature";
    const base = this.#own.pairMac(f.to, f.from, key);
    if (!base || !sameBytes(macOf(base, signedBytes(f.from, f.to, f.n, f.m)), f.mac)) return "bad_signature";
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

/**
 * The Forward that carries `msg` from `from` (this member) to `to` through a relay, tagged
 * when there is a signer and `to`'s listed key (`toKey`) is known.
 */
export function forwardOf(
  signer: OriginSigner | undefined,
  from: NodeId,
  to: NodeId,
  toKey: string | null | undefined,
  msg: Message,
): Forward & Message {
  const f = { t: Kind.Forward as typeof Kind.Forward, from, to, ttl: 2, m: msg };
  const tag = signer?.tag(from, to, toKey, msg);
  return tag ? { ...f, ...tag } : f;
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
