/**
 * The frame codec: the one place cbor-x is imported. A frame is the CBOR encoding of
 * `[PROTOCOL_VERSION, [message, …]]`. Decoding validates every message (invariant 8): frames of
 * kinds with a compiled reader (fast_decode.ts) are read and checked in one pass, any other frame
 * is decoded by cbor-x and then validated.
 */
import { Buffer } from "node:buffer";
import { Decoder, Encoder } from "cbor-x";
import { Limits } from "./limits.ts";
import { readFrame } from "./fast_decode.ts";
import { fastEncoder } from "./fast_encode.ts";
import { type Message, readerOf, validateMessage } from "./message.ts";

export const PROTOCOL_VERSION = 1;

const encoder = new Encoder({ useRecords: false, mapsAsObjects: true, variableMapSize: true });
const decoder = new Decoder({ useRecords: false, mapsAsObjects: true });
/**
 * Map keys and values: byte strings copied out (`copyBuffers`), so a value handed to the app is
 * never a view of a record store's bytes (read from a Buffer, cbor-x's byte strings are views).
 */
const valueDecoder = new Decoder(
  { useRecords: false, mapsAsObjects: true, copyBuffers: true } as ConstructorParameters<
    typeof Decoder
  >[0],
);
/** cbor-x's bytes, written by the fast path for plain values (fast_encode.ts), by cbor-x for anything else. */
const encode = fastEncoder((value) => encoder.encode(value));

/** Encodes any cbor-x encodable value (used for map keys and values). */
export function encodeValue(value: unknown): Uint8Array {
  return encode(value);
}

/** cbor-x's own encoding of `value` (what {@link encodeValue} returns, without the fast path; for tests and benches). */
export function encodeValueGeneric(value: unknown): Uint8Array {
  return encoder.encode(value);
}

/**
 * Decodes a value encoded by {@link encodeValue}. Throws on malformed input. Read from a Buffer
 * view (see {@link asBuffer}), so that what it returns encodes to `bytes` again: a Buffer an
 * app stored (an untagged byte string) came back as a plain Uint8Array, which encodes under tag
 * 64, so `replace(k, await get(k), next)` never matched and a Buffer key read from `keys()` did
 * not find its entry (found by an internal review).
 */
export function decodeValue(bytes: Uint8Array): unknown {
  return valueDecoder.decode(asBuffer(bytes));
}

/** Encodes a batch of messages into one frame. */
export function encodeFrame(msgs: readonly Message[]): Uint8Array {
  if (msgs.length > Limits.maxBatchLength) {
    throw new RangeError(`Cannot encode frame: ${msgs.length} messages exceed ${Limits.maxBatchLength}`);
  }
  return encode([PROTOCOL_VERSION, msgs]);
}

/**
 * A Buffer view of `bytes` (no copy), what frames are read from whatever they came in (werift
 * hands Buffers; a reassembled message is a plain array): cbor-x decodes a byte string as a view
 * of its input, and encodes a plain Uint8Array under tag 64 but a Buffer untagged, so a decoded
 * message encodes to the same bytes again only when they are Buffers. (The origin MAC of a
 * relayed message is checked over that encoding: a chunked one failed it, found by an internal
 * review.)
 */
function asBuffer(bytes: Uint8Array): Uint8Array {
  return bytes instanceof Buffer ? bytes : Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
}

/** Outcome of decoding a frame: the valid messages and how many were dropped and why. */
export interface DecodedFrame {
  ok: boolean;
  msgs: Message[];
  dropped: number;
  reason?: string;
}

/**
 * Decodes and validates a frame. Never throws: a frame that cannot be decoded is reported
 * with `ok: false`; invalid messages inside a good frame are dropped one by one.
 * @param bytes the received frame
 * @param maxBytes the size limit for this frame (chunk reassembly passes a larger one)
 */
export function decodeFrame(bytes: Uint8Array, maxBytes: number = Limits.maxFrameBytes): DecodedFrame {
  if (!(bytes instanceof Uint8Array)) return { ok: false, msgs: [], dropped: 1, reason: "frame is not bytes" };
  bytes = asBuffer(bytes);
  if (bytes.byteLength > maxBytes) {
    return { ok: false, msgs: [], dropped: 1, reason: `frame of ${bytes.byteLength} bytes exceeds ${maxBytes}` };
  }
  // Frames of the hot kinds, read and checked in one pass (fast_decode.ts); anything else, the generic way.
  const fast = readFrame(bytes, PROTOCOL_VERSION, Limits.maxBatchLength, readerOf);
  if (fast) return { ok: true, msgs: fast as Message[], dropped: 0, reason: undefined };
  return decodeFrameGeneric(bytes);
}

/**
 * Decodes a frame with cbor-x and validates each message: what {@link decodeFrame} does for a
 * frame the fast path does not take (exported for the tests that compare the two). Never throws.
 */
export function decodeFrameGeneric(bytes: Uint8Array): DecodedFrame {
  bytes = asBuffer(bytes);
  let raw: unknown;
  try {
    raw = decoder.decode(bytes);
  } catch (e) {
    return { ok: false, msgs: [], dropped: 1, reason: `undecodable frame: ${(e as Error).message?.slice(0, 80)}` };
  }
  if (!Array.isArray(raw) || raw.length !== 2) {
    return { ok: false, msgs: [], dropped: 1, reason: "frame is not [version, messages]" };
  }
  if (raw[0] !== PROTOCOL_VERSION) {
    return { ok: false, msgs: [], dropped: 1, reason: `unsupported protocol version ${String(raw[0])}` };
  }
  const list = raw[1];
  if (!Array.isArray(list)) return { ok: false, msgs: [], dropped: 1, reason: "frame messages are not a list" };
  if (list.length > Limits.maxBatchLength) {
    return { ok: false, msgs: [], dropped: 1, reason: "frame holds too many messages" };
  }
  const msgs: Message[] = [];
  let dropped = 0;
  let reason: string | undefined;
  for (const m of list) {
    const v = validateMessage(m);
    if (v.ok) msgs.push(v.msg);
    else {
      dropped++;
      reason ??= v.reason;
    }
  }
  return { ok: true, msgs, dropped, reason };
}
