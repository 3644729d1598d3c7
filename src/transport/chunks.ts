/**
 * Chunking of messages larger than a frame should carry. The sender encodes the message as
 * a frame of one, cuts the bytes into Chunk messages (kind 1: `{id, i, n, data}`) sent in
 * order on the same ordered channel; the receiver reassembles them (bounded in count and
 * size) and decodes the result as a frame.
 */
import { Kind } from "../wire/kinds.ts";
import { Limits } from "../wire/limits.ts";
import { CHUNK_BYTES, type ChunkMessage, MAX_CHUNKS } from "./messages.ts";

export { CHUNK_BYTES, type ChunkMessage, MAX_CHUNKS };
/** Messages whose encoding exceeds this are chunked. */
export const CHUNK_THRESHOLD_BYTES = 16 * 1024;

/**
 * Cuts `bytes` into chunk messages.
 * @param id the message id, unique per link among messages being reassembled
 * @param bytes the encoded frame of one message
 */
export function splitIntoChunks(id: number, bytes: Uint8Array): ChunkMessage[] {
  const n = Math.ceil(bytes.byteLength / CHUNK_BYTES);
  const out: ChunkMessage[] = [];
  for (let i = 0; i < n; i++) {
    out.push({
      t: Kind.Chunk,
      id,
      i,
      n,
      data: bytes.subarray(i * CHUNK_BYTES, Math.min(bytes.byteLength, (i + 1) * CHUNK_BYTES)),
    });
  }
  return out;
}

interface Partial {
  n: number;
  next: number;
  parts: Uint8Array[];
  bytes: number;
}

/** Result of adding a chunk. */
export type ChunkResult = { done: Uint8Array } | { pending: true } | { invalid: string };

/** Reassembles chunked messages from one peer, within Limits. */
export class Reassembler {
  #partials = new Map<number, Partial>();

  constructor(
    readonly maxPartials: number = Limits.maxPartialMessagesPerPeer,
    readonly maxMessageBytes: number = Limits.maxMessageBytes,
  ) {}

  /** Messages being reassembled. */
  get pending(): number {
    return this.#partials.size;
  }

  /** Adds a validated chunk. */
  add(c: Omit<ChunkMessage, "t">): ChunkResult {
    if (c.n < 2 || c.n > MAX_CHUNKS || c.i >= c.n) return { invalid: "chunk index or count out of range" };
    let p = this.#partials.get(c.id);
    if (!p) {
      if (c.i !== 0) return { invalid: "chunk of an unknown message" };
      if (this.#partials.size >= this.maxPartials) return { invalid: "too many messages being reassembled" };
      p = { n: c.n, next: 0, parts: [], bytes: 0 };
      this.#partials.set(c.id, p);
    }
    if (c.n !== p.n || c.i !== p.next) {
      this.#partials.delete(c.id);
      return { invalid: "chunk out of order" };
    }
    p.bytes += c.data.byteLength;
    if (p.bytes > this.maxMessageBytes) {
      this.#partials.delete(c.id);
      return { invalid: "reassembled message exceeds the size limit" };
    }
    p.parts.push(c.data);
    p.next++;
    if (p.next < p.n) return { pending: true };
    this.#partials.delete(c.id);
    const out = new Uint8Array(p.bytes);
    let at = 0;
    for (const part of p.parts) {
      out.set(part, at);
      at += part.byteLength;
    }
    return { done: out };
  }

  clear(): void {
    this.#partials.clear();
  }
}
