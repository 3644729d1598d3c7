/**
 * The outgoing queue of one link: messages already CBOR-encoded one by one (so their size
 * is known when queued), cut into frames of about the target size. A frame is the CBOR
 * array `[PROTOCOL_VERSION, [m1, m2, …]]`, written here by concatenating the encoded
 * messages behind the two array headers — byte for byte what encodeFrame() produces.
 */
import { Buffer } from "node:buffer";
import { PROTOCOL_VERSION } from "../wire/codec.ts";
import { Limits } from "../wire/limits.ts";

/**
 * Builds a frame from encoded messages, in a buffer from the runtime's pool (`Buffer.allocUnsafe`:
 * a fresh `Uint8Array` costs Deno 1-3 µs, a pooled one ~0.1 µs; bench/RESULTS.md). Every byte is
 * written here, and the frame is never changed after: werift's chunks of it are views.
 * @param parts each message's CBOR encoding
 * @returns the frame bytes
 */
export function frameOf(parts: readonly Uint8Array[]): Uint8Array {
  const n = parts.length;
  if (n >= 0x10000) throw new RangeError(`Cannot frame ${n} messages`);
  const hdr = n < 24 ? 1 : n < 0x100 ? 2 : 3;
  let len = 2 + hdr;
  for (const p of parts) len += p.byteLength;
  const out = Buffer.allocUnsafe(len);
  out[0] = 0x82; // array of 2
  out[1] = PROTOCOL_VERSION; // small unsigned int
  // The message list's array header (CBOR major type 4), in its shortest form.
  if (hdr === 1) out[2] = 0x80 | n;
  else if (hdr === 2) {
    out[2] = 0x98;
    out[3] = n;
  } else {
    out[2] = 0x99;
    out[3] = n >> 8;
    out[4] = n & 0xff;
  }
  let at = 2 + hdr;
  for (const p of parts) {
    out.set(p, at);
    at += p.byteLength;
  }
  return out;
}

/** A bounded FIFO of encoded messages for one peer. */
export class FrameQueue {
  #items: Uint8Array[] = [];
  #head = 0;
  /** Bytes queued. */
  bytes = 0;

  constructor(readonly maxBytes: number = Limits.maxQueuedBytesPerPeer) {}

  /** Messages queued. */
  get length(): number {
    return this.#items.length - this.#head;
  }

  /** Whether `n` more bytes fit under the limit. */
  fits(n: number): boolean {
    return this.bytes + n <= this.maxBytes;
  }

  /** Appends an encoded message; the caller checked {@link fits}. */
  push(encoded: Uint8Array): void {
    this.#items.push(encoded);
    this.bytes += encoded.byteLength;
  }

  /**
   * Removes messages from the front up to about `targetBytes` (at least one, at most
   * Limits.maxBatchLength) and returns them as one frame, or null when empty.
   */
  takeFrame(targetBytes: number): Uint8Array | null {
    if (this.length === 0) return null;
    const parts: Uint8Array[] = [];
    let size = 0;
    while (this.#head < this.#items.length && parts.length < Limits.maxBatchLength) {
      const next = this.#items[this.#head];
      if (parts.length > 0 && size + next.byteLength > targetBytes) break;
      parts.push(next);
      size += next.byteLength;
      this.#head++;
    }
    this.bytes -= size;
    if (this.#head > 1024 && this.#head * 2 > this.#items.length) {
      this.#items = this.#items.slice(this.#head);
      this.#head = 0;
    }
    return frameOf(parts);
  }

  /** Drops everything. */
  clear(): void {
    this.#items = [];
    this.#head = 0;
    this.bytes = 0;
  }
}
