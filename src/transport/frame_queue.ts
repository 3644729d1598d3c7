/**
 * The outgoing queue of one link: messages already CBOR-encoded one by one (so their size
 * is known when queued), cut into frames of about the target size. A frame is the CBOR
 * array `[PROTOCOL_VERSION, [m1, m2, …]]`, written here by concatenating the encoded
 * messages behind the two array headers — byte for byte what encodeFrame() produces.
 */
import { PROTOCOL_VERSION } from "../wire/codec.ts";
import { Limits } from "../wire/limits.ts";

/** CBOR header of an array of `n` items (major type 4). */
export function cborArrayHeader(n: number): Uint8Array {
  if (n < 24) return Uint8Array.of(0x80 | n);
  if (n < 0x100) return Uint8Array.of(0x98, n);
  if (n < 0x10000) return Uint8Array.of(0x99, n >> 8, n & 0xff);
  throw new RangeError(`Cannot frame ${n} messages`);
}

/**
 * Builds a frame from encoded messages.
 * @param parts each message's CBOR encoding
 * @returns the frame bytes
 */
export function frameOf(parts: readonly Uint8Array[]): Uint8Array {
  const hdr = cborArrayHeader(parts.length);
  let len = 2 + hdr.length;
  for (const p of parts) len += p.byteLength;
  const out = new Uint8Array(len);
  out[0] = 0x82; // array of 2
  out[1] = PROTOCOL_VERSION; // small unsigned int
  out.set(hdr, 2);
  let at = 2 + hdr.length;
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
