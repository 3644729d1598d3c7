/**
 * The outgoing queue of one link and the frames cut from it. A frame is the CBOR array
 * `[PROTOCOL_VERSION, [m1, m2, …]]`. Small messages wait as objects with an estimated
 * size and are encoded a whole frame at a time with encodeFrame(); chunks (already
 * encoded) are framed by concatenating them behind the two array headers ({@link frameOf}),
 * which gives the same bytes encodeFrame() would.
 */
import { encodeFrame, PROTOCOL_VERSION } from "../wire/codec.ts";
import { Limits } from "../wire/limits.ts";
import type { Message } from "../wire/message.ts";

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

/** One queued message: an object (encoded later) or bytes already encoded. */
interface Entry {
  msg: Message | null;
  bytes: Uint8Array | null;
  /** Estimated (objects) or exact (bytes) size. */
  size: number;
}

/** What {@link FrameQueue.takeFrame} produced. */
export type Taken =
  | { frame: Uint8Array; count: number }
  /** A queued message turned out too large for a frame: the caller chunks it. */
  | { oversized: Message }
  /** A queued message could not be encoded; it was removed. */
  | { invalid: true };

/** A bounded FIFO of messages for one peer. */
export class FrameQueue {
  #items: Entry[] = [];
  #head = 0;
  /** Bytes queued (estimated for messages not yet encoded). */
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

  /** Appends a message with its estimated size; the caller checked {@link fits}. */
  pushMessage(msg: Message, size: number): void {
    this.#items.push({ msg, bytes: null, size });
    this.bytes += size;
  }

  /** Appends an encoded message; the caller checked {@link fits}. */
  push(encoded: Uint8Array): void {
    this.#items.push({ msg: null, bytes: encoded, size: encoded.byteLength });
    this.bytes += encoded.byteLength;
  }

  /**
   * Removes messages from the front up to about `targetBytes` (at least one, at most
   * Limits.maxBatchLength) and returns them as one frame of at most `maxFrameBytes`, or
   * null when the queue is empty.
   */
  takeFrame(targetBytes: number, maxFrameBytes: number = Limits.maxFrameBytes): Taken | null {
    if (this.length === 0) return null;
    const encoded = this.#items[this.#head].bytes !== null;
    let end = this.#head;
    let size = 0;
    while (end < this.#items.length && end - this.#head < Limits.maxBatchLength) {
      const e = this.#items[end];
      if ((e.bytes !== null) !== encoded) break;
      if (end > this.#head && size + e.size > targetBytes) break;
      size += e.size;
      end++;
    }
    if (encoded) {
      const parts: Uint8Array[] = [];
      for (let i = this.#head; i < end; i++) parts.push(this.#items[i].bytes!);
      this.#consume(end);
      return { frame: frameOf(parts), count: parts.length };
    }
    // Encode the run in one call; if the estimate was too low, take fewer messages.
    for (;;) {
      const msgs: Message[] = [];
      for (let i = this.#head; i < end; i++) msgs.push(this.#items[i].msg!);
      let frame: Uint8Array;
      try {
        frame = encodeFrame(msgs);
      } catch {
        if (msgs.length === 1) {
          this.#consume(end);
          return { invalid: true };
        }
        end = this.#head + Math.ceil(msgs.length / 2);
        continue;
      }
      if (frame.byteLength <= maxFrameBytes) {
        this.#consume(end);
        return { frame, count: msgs.length };
      }
      if (msgs.length === 1) {
        this.#consume(end);
        return { oversized: msgs[0] };
      }
      end = this.#head + Math.ceil(msgs.length / 2);
    }
  }

  #consume(end: number): void {
    for (let i = this.#head; i < end; i++) {
      this.bytes -= this.#items[i].size;
      this.#items[i] = undefined as unknown as Entry;
    }
    this.#head = end;
    if (this.#head > 1024 && this.#head * 2 > this.#items.length) {
      this.#items = this.#items.slice(this.#head);
      this.#head = 0;
    }
    if (this.length === 0) {
      this.#items = [];
      this.#head = 0;
      this.bytes = 0;
    }
  }

  /** Drops everything. */
  clear(): void {
    this.#items = [];
    this.#head = 0;
    this.bytes = 0;
  }
}
