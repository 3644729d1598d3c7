/**
 * HMAC-SHA256 envelopes for anything that authenticates a node (join, signaling offers
 * and answers). Keys are derived from the cluster secret with HKDF, one per purpose, so a
 * signature made for one purpose never verifies for another. Nonces remembered by the
 * receiver stop replays (see {@link ReplayGuard}); no check depends on the sender's clock.
 */
import { hmac } from "@noble/hashes/hmac.js";
import { hkdf } from "@noble/hashes/hkdf.js";
import { sha256 } from "@noble/hashes/sha2.js";
import { bytesToHex, randomBytes, utf8ToBytes } from "@noble/hashes/utils.js";
import { encodeValue } from "./codec.ts";

export type KeyPurpose = "signal" | "join" | "relay";

/** Derives the key for one purpose from the cluster name and secret. */
export function deriveKey(cluster: string, secret: string, purpose: KeyPurpose): Uint8Array {
  return hkdf(sha256, utf8ToBytes(secret), utf8ToBytes(`shoal/${cluster}`), utf8ToBytes(`shoal-${purpose}-v1`), 32);
}

/**
 * One purpose's key, plus the previous secret's during a secret rotation: a member signs
 * with `key` and accepts either (see {@link verifyEither}).
 */
export interface RotatingKey {
  /** deriveKey(cluster, secret, purpose): signs, and verifies. */
  key: Uint8Array;
  /** deriveKey(cluster, previousSecret, purpose): verifies, and signs only towards a peer that refused `key`. */
  previousKey?: Uint8Array;
}

/** The key of `purpose` under `secret`, and under `previousSecret` when one is given (a rotation). */
export function rotatingKey(
  cluster: string,
  secret: string,
  previousSecret: string | undefined,
  purpose: KeyPurpose,
): RotatingKey {
  const key = deriveKey(cluster, secret, purpose);
  return previousSecret ? { key, previousKey: deriveKey(cluster, previousSecret, purpose) } : { key };
}

/**
 * Verifies `signature` over `fields` with the current key or, during a secret rotation, the
 * previous one.
 * @returns the key that verified (answer under it), or null
 */
export function verifyEither(k: RotatingKey, fields: readonly unknown[], signature: string): Uint8Array | null {
  if (verify(k.key, fields, signature)) return k.key;
  return k.previousKey && verify(k.previousKey, fields, signature) ? k.previousKey : null;
}

/**
 * The other key of a rotation: what to sign with after a peer refused `used` (it may know
 * only the other secret), or undefined when there is no rotation.
 */
export function otherKey(k: RotatingKey, used: Uint8Array): Uint8Array | undefined {
  if (!k.previousKey) return undefined;
  return used === k.key ? k.previousKey : k.key;
}

/** HMAC-SHA256 over the canonical CBOR encoding of `fields`, as lowercase hex. */
export function sign(key: Uint8Array, fields: readonly unknown[]): string {
  return bytesToHex(hmac(sha256, key, encodeValue(fields)));
}

/** Constant-time comparison of a signature with the one `fields` should carry. */
export function verify(key: Uint8Array, fields: readonly unknown[], signature: string): boolean {
  const expected = sign(key, fields);
  if (typeof signature !== "string" || signature.length !== expected.length) return false;
  let diff = 0;
  for (let i = 0; i < expected.length; i++) diff |= expected.charCodeAt(i) ^ signature.charCodeAt(i);
  return diff === 0;
}

/** A random nonce as hex. */
export function nonce(bytes = 16): string {
  return bytesToHex(randomBytes(bytes));
}

/** Hash of the cluster name, used as a signaling room id so names stay private. */
export function roomId(cluster: string): string {
  return bytesToHex(sha256(utf8ToBytes(`shoal-room/${cluster}`))).slice(0, 32);
}

/**
 * Remembers the nonces it accepted so an envelope is accepted at most once, for `windowMs`
 * of the RECEIVER's clock from the moment it was first seen. The sender's timestamp plays no
 * part in the decision: members' clocks may be minutes apart (a Raspberry Pi has no RTC),
 * and freshness comes from the receiver instead, through challenges it issued itself (see
 * signaling/challenges.ts) and from DTLS, which protects everything sent over a link
 * against replays by anyone outside it. Bounded: at most `maxNonces` entries; when full,
 * new nonces are refused until old ones expire.
 */
export class ReplayGuard {
  #seen = new Map<string, number>();
  constructor(readonly windowMs = 60_000, readonly maxNonces = 100_000) {}

  /**
   * Accepts a nonce once.
   * @param nonce the envelope's nonce
   * @param nowMs the receiver's clock
   * @returns null when new (and records it), or the reason it is refused
   */
  accept(nonce: string, nowMs: number): string | null {
    this.#expire(nowMs);
    if (this.#seen.has(nonce)) return "nonce already used (replay)";
    if (this.#seen.size >= this.maxNonces) return "replay guard full";
    this.#seen.set(nonce, nowMs);
    return null;
  }

  /**
   * Same as {@link accept}; the sender's timestamp is ignored (kept for callers that
   * still pass it).
   * @deprecated use accept(nonce, nowMs)
   */
  check(nonce: string, _senderTimestampMs: number, nowMs: number): string | null {
    return this.accept(nonce, nowMs);
  }

  /** Nonces remembered now. */
  get size(): number {
    return this.#seen.size;
  }

  #expire(nowMs: number) {
    for (const [n, at] of this.#seen) {
      // Insertion order is the receiver's time order; a clock stepping back keeps entries longer.
      if (nowMs - at <= this.windowMs) break;
      this.#seen.delete(n);
    }
  }
}
