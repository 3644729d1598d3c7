/**
 * HMAC-SHA256 envelopes for anything that authenticates a node (join, signaling offers
 * and answers). Keys are derived from the cluster secret with HKDF, one per purpose, so a
 * signature made for one purpose never verifies for another. Timestamps and nonces stop
 * replays (see {@link ReplayGuard}).
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
 * Remembers recently seen nonces so an envelope is accepted at most once, and rejects
 * envelopes whose timestamp is outside the window. Bounded: at most `maxNonces` entries.
 */
export class ReplayGuard {
  #seen = new Map<string, number>();
  constructor(readonly windowMs = 60_000, readonly maxNonces = 100_000) {}

  /** @returns null when fresh (and records it), or the reason it is refused */
  check(nonce: string, timestampMs: number, nowMs: number): string | null {
    if (!Number.isFinite(timestampMs) || Math.abs(nowMs - timestampMs) > this.windowMs) {
      return "timestamp outside the replay window";
    }
    this.#expire(nowMs);
    if (this.#seen.has(nonce)) return "nonce already used (replay)";
    if (this.#seen.size >= this.maxNonces) return "replay guard full";
    this.#seen.set(nonce, timestampMs);
    return null;
  }

  #expire(nowMs: number) {
    for (const [n, ts] of this.#seen) {
      if (Math.abs(nowMs - ts) <= this.windowMs) break; // insertion order ≈ time order
      this.#seen.delete(n);
    }
  }
}
