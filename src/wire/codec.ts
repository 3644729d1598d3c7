/**
 * The frame codec: the one place cbor-x is imported. A frame is the CBOR encoding of
 * `[PROTOCOL_VERSION, [message, …]]`. Decoding validates every message (invariant 8).
 */
import { Decoder, Encoder } from "cbor-x";
import { Limits } from "./limits.ts";
import { type Message, validateMessage } from "./message.ts";

export const PROTOCOL_VERSION = 1;

const encoder = new Encoder({ useRecords: false, mapsAsObjects: true, variableMapSize: true });
const decoder = new Decoder({ useRecords: false, mapsAsObjects: true });

/** Encodes any cbor-x encodable value (used for map keys and values). */
export function encodeValue(value: unknown): Uint8Array {
  return encoder.encode(value);
}

/** Decodes a value encoded by {@link encodeValue}. Throws on malformed input. */
export function decodeValue(bytes: Uint8Array): unknown {
  return decoder.decode(bytes);
}

/** Encodes a batch of messages into one frame. */
export function encodeFrame(msgs: readonly Message[]): Uint8Array {
  if (msgs.length > Limits.maxBatchLength) throw new RangeError(`Cannot encode frame: ${msgs.length} messages exceed ${Limits.maxBatchLength}`);
  return encoder.encode([PROTOCOL_VERSION, msgs]);
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
  if (bytes.byteLength > maxBytes) return { ok: false, msgs: [], dropped: 1, reason: `frame of ${bytes.byteLength} bytes exceeds ${maxBytes}` };
  let raw: unknown;
  try {
    raw = decodeFast(bytes);
  } catch (e) {
    return { ok: false, msgs: [], dropped: 1, reason: `undecodable frame: ${(e as Error).message?.slice(0, 80)}` };
  }
  if (!Array.isArray(raw) || raw.length !== 2) return { ok: false, msgs: [], dropped: 1, reason: "frame is not [version, messages]" };
  if (raw[0] !== PROTOCOL_VERSION) return { ok: false, msgs: [], dropped: 1, reason: `unsupported protocol version ${String(raw[0])}` };
  const list = raw[1];
  if (!Array.isArray(list)) return { ok: false, msgs: [], dropped: 1, reason: "frame messages are not a list" };
  if (list.length > Limits.maxBatchLength) return { ok: false, msgs: [], dropped: 1, reason: "frame holds too many messages" };
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

// ---------------------------------------------------------------- fast message encoder

/**
 * Whether cbor-x writes a plain Uint8Array behind tag 64 in this runtime (it does when a
 * global Buffer exists). Probed once so the fast encoder writes the same bytes.
 */
const TAG_UINT8ARRAY = encoder.encode(new Uint8Array(0))[0] === 0xd8;
const MAX_FAST_DEPTH = 32;
const textEncoder = new TextEncoder();
/**
 * Messages are written one after another into a slab and handed out as views of it (an
 * allocation per message costs more than the encoding in V8). A slab is never written
 * again once full, so every view stays valid; a message that does not fit moves to a new
 * slab.
 */
const SLAB_BYTES = 64 * 1024;
let buf = new Uint8Array(SLAB_BYTES);
let view = new DataView(buf.buffer);
/** Start of the message being written. */
let start = 0;
let pos = 0;

/** Thrown inside the fast encoder for a value it does not handle; cbor-x takes over. */
class Unsupported {}
const UNSUPPORTED = new Unsupported();

function room(n: number): void {
  if (pos + n <= buf.length) return;
  const used = pos - start;
  let size = SLAB_BYTES;
  while (size < used + n) size *= 2;
  const next = new Uint8Array(size);
  next.set(buf.subarray(start, pos));
  buf = next;
  view = new DataView(buf.buffer);
  start = 0;
  pos = used;
}

/** Writes a CBOR head (major type `major` = high 3 bits, already shifted) with a minimal length. */
function head(major: number, n: number): void {
  room(9);
  if (n < 0x18) buf[pos++] = major | n;
  else if (n < 0x100) {
    buf[pos++] = major | 0x18;
    buf[pos++] = n;
  } else if (n < 0x10000) {
    buf[pos++] = major | 0x19;
    buf[pos++] = n >> 8;
    buf[pos++] = n & 0xff;
  } else {
    buf[pos++] = major | 0x1a;
    view.setUint32(pos, n);
    pos += 4;
  }
}

function writeString(s: string): void {
  const len = s.length;
  if (len < 0x40) {
    // Same UTF-8 conversion as cbor-x for short strings (lone surrogates as 3 bytes).
    room(len * 3 + 2);
    // Room for a one-byte head when the string is likely to fit it, else two bytes.
    const hdr = len < 0x18 ? 1 : 2;
    let p = pos + hdr;
    for (let i = 0; i < len; i++) {
      let c1 = s.charCodeAt(i);
      if (c1 < 0x80) buf[p++] = c1;
      else if (c1 < 0x800) {
        buf[p++] = (c1 >> 6) | 0xc0;
        buf[p++] = (c1 & 0x3f) | 0x80;
      } else {
        let c2: number;
        if ((c1 & 0xfc00) === 0xd800 && ((c2 = s.charCodeAt(i + 1)) & 0xfc00) === 0xdc00) {
          c1 = 0x10000 + ((c1 & 0x03ff) << 10) + (c2 & 0x03ff);
          i++;
          buf[p++] = (c1 >> 18) | 0xf0;
          buf[p++] = ((c1 >> 12) & 0x3f) | 0x80;
          buf[p++] = ((c1 >> 6) & 0x3f) | 0x80;
          buf[p++] = (c1 & 0x3f) | 0x80;
        } else {
          buf[p++] = (c1 >> 12) | 0xe0;
          buf[p++] = ((c1 >> 6) & 0x3f) | 0x80;
          buf[p++] = (c1 & 0x3f) | 0x80;
        }
      }
    }
    const n = p - pos - hdr;
    if (n < 0x18) {
      if (hdr === 2) buf.copyWithin(pos + 1, pos + 2, p);
      buf[pos++] = 0x60 | n;
    } else {
      if (hdr === 1) buf.copyWithin(pos + 2, pos + 1, p);
      buf[pos++] = 0x78;
      buf[pos++] = n;
    }
    pos += n;
    return;
  }
  const max = len * 3;
  const hdr = max < 0x100 ? 2 : max < 0x10000 ? 3 : 5;
  room(max + hdr);
  const n = textEncoder.encodeInto(s, buf.subarray(pos + hdr, pos + hdr + max)).written;
  const need = n < 0x18 ? 1 : n < 0x100 ? 2 : n < 0x10000 ? 3 : 5;
  if (need !== hdr) buf.copyWithin(pos + need, pos + hdr, pos + hdr + n);
  head(0x60, n);
  pos += n;
}

function writeNumber(v: number): void {
  room(9);
  if (v >>> 0 === v) head(0x00, v);
  else if (v >> 0 === v) head(0x20, ~v);
  else if (v < 0 && v >= -0x100000000 && Math.floor(v) === v) {
    buf[pos++] = 0x3a;
    view.setUint32(pos, -1 - v);
    pos += 4;
  } else {
    buf[pos++] = 0xfb;
    view.setFloat64(pos, v);
    pos += 8;
  }
}

function writeAny(v: unknown, depth: number): void {
  switch (typeof v) {
    case "string":
      return writeString(v);
    case "number":
      return writeNumber(v);
    case "boolean":
      room(1);
      buf[pos++] = v ? 0xf5 : 0xf4;
      return;
    case "undefined":
      room(1);
      buf[pos++] = 0xf7;
      return;
    case "object": {
      if (v === null) {
        room(1);
        buf[pos++] = 0xf6;
        return;
      }
      if (depth > MAX_FAST_DEPTH) throw UNSUPPORTED;
      const ctor = (v as object).constructor;
      if (ctor === Object) {
        const keys = Object.keys(v);
        head(0xa0, keys.length);
        for (let i = 0; i < keys.length; i++) {
          writeString(keys[i]);
          writeAny((v as Record<string, unknown>)[keys[i]], depth + 1);
        }
        return;
      }
      if (ctor === Array) {
        const a = v as unknown[];
        head(0x80, a.length);
        for (let i = 0; i < a.length; i++) writeAny(a[i], depth + 1);
        return;
      }
      if (ctor === Uint8Array) {
        const b = v as Uint8Array;
        if (TAG_UINT8ARRAY) {
          room(2);
          buf[pos++] = 0xd8;
          buf[pos++] = 0x40;
        }
        const n = b.byteLength;
        head(0x40, n);
        room(n);
        buf.set(b, pos);
        pos += n;
        return;
      }
      throw UNSUPPORTED;
    }
    default:
      throw UNSUPPORTED;
  }
}

/**
 * Encodes one message: the same bytes as {@link encodeValue}, written by a plain-data fast
 * path (objects, arrays, strings, numbers, booleans, null, undefined, Uint8Array); any other
 * value hands the whole message to cbor-x. The result is a view that is never written again.
 * Throws when cbor-x cannot encode the message either.
 */
export function encodeMessage(msg: Message): Uint8Array {
  start = pos;
  try {
    writeAny(msg, 0);
  } catch (e) {
    pos = start;
    if (e !== UNSUPPORTED) throw e;
    return encoder.encode(msg);
  }
  const out = buf.subarray(start, pos);
  start = pos;
  if (buf.length > SLAB_BYTES) {
    // A large message got a slab of its own; the next one starts a normal slab.
    buf = new Uint8Array(SLAB_BYTES);
    view = new DataView(buf.buffer);
    start = pos = 0;
  }
  return out;
}

// ---------------------------------------------------------------- fast frame decoder

const MAX_FAST_DECODE_DEPTH = 64;
const textDecoder = new TextDecoder();
let src: Uint8Array = new Uint8Array(0);
let srcView: DataView = new DataView(src.buffer);
let srcBuffer: ArrayBufferLike = src.buffer;
let srcOffset = 0;
let at = 0;

function readArg(info: number): number {
  if (info < 24) return info;
  let v: number;
  switch (info) {
    case 24:
      if (at + 1 > src.length) throw UNSUPPORTED;
      return src[at++];
    case 25:
      if (at + 2 > src.length) throw UNSUPPORTED;
      v = (src[at] << 8) | src[at + 1];
      at += 2;
      return v;
    case 26:
      if (at + 4 > src.length) throw UNSUPPORTED;
      v = srcView.getUint32(at);
      at += 4;
      return v;
    default:
      throw UNSUPPORTED;
  }
}

/** Recently decoded short strings (map keys mostly), by a hash of their bytes. */
const keyCache: Array<{ bytes: Uint8Array; str: string } | undefined> = new Array(1024);

/** An ASCII text string of `n` bytes at `at` (anything else is left to cbor-x). */
function readAscii(n: number): string {
  const e = at + n;
  if (e > src.length) throw UNSUPPORTED;
  if (n <= 16) {
    let h = n;
    for (let i = at; i < e; i++) h = (h * 31 + src[i]) | 0;
    h &= 1023;
    const hit = keyCache[h];
    if (hit !== undefined && hit.bytes.length === n) {
      const kb = hit.bytes;
      let i = 0;
      while (i < n && kb[i] === src[at + i]) i++;
      if (i === n) {
        at = e;
        return hit.str;
      }
    }
    let s = "";
    for (let i = at; i < e; i++) {
      const c = src[i];
      if (c >= 0x80) throw UNSUPPORTED;
      s += String.fromCharCode(c);
    }
    keyCache[h] = { bytes: src.slice(at, e), str: s };
    at = e;
    return s;
  }
  if (n <= 24) {
    let s = "";
    for (let i = at; i < e; i++) {
      const c = src[i];
      if (c >= 0x80) throw UNSUPPORTED;
      s += String.fromCharCode(c);
    }
    at = e;
    return s;
  }
  for (let i = at; i < e; i++) if (src[i] >= 0x80) throw UNSUPPORTED;
  const s = textDecoder.decode(src.subarray(at, e));
  at = e;
  return s;
}

function readItem(depth: number): unknown {
  if (at >= src.length || depth > MAX_FAST_DECODE_DEPTH) throw UNSUPPORTED;
  const b = src[at++];
  const info = b & 0x1f;
  switch (b >> 5) {
    case 0:
      return readArg(info);
    case 1:
      return -1 - readArg(info);
    case 3:
      return readAscii(readArg(info));
    case 4: {
      const n = readArg(info);
      if (n > src.length - at) throw UNSUPPORTED;
      const a: unknown[] = [];
      for (let i = 0; i < n; i++) a.push(readItem(depth + 1));
      return a;
    }
    case 5: {
      const n = readArg(info);
      if (n > src.length - at) throw UNSUPPORTED;
      const o: Record<string, unknown> = {};
      for (let i = 0; i < n; i++) {
        if (at >= src.length) throw UNSUPPORTED;
        const kb = src[at++];
        if (kb >> 5 !== 3) throw UNSUPPORTED;
        const k = readAscii(readArg(kb & 0x1f));
        if (k === "__proto__") throw UNSUPPORTED;
        o[k] = readItem(depth + 1);
      }
      return o;
    }
    case 6: {
      // Only tag 64 (a Uint8Array) around a byte string: a view into the frame, as cbor-x gives.
      if (b !== 0xd8 || at + 2 > src.length || src[at] !== 0x40 || src[at + 1] >> 5 !== 2) throw UNSUPPORTED;
      at++;
      const n = readArg(src[at++] & 0x1f);
      if (n > src.length - at) throw UNSUPPORTED;
      const v = new Uint8Array(srcBuffer, srcOffset + at, n);
      at += n;
      return v;
    }
    case 7:
      switch (b) {
        case 0xf4:
          return false;
        case 0xf5:
          return true;
        case 0xf6:
          return null;
        case 0xf7:
          return undefined;
        case 0xfb: {
          if (at + 8 > src.length) throw UNSUPPORTED;
          const v = srcView.getFloat64(at);
          at += 8;
          return v;
        }
      }
      throw UNSUPPORTED;
    default:
      throw UNSUPPORTED;
  }
}

/**
 * Decodes `bytes` to the same value cbor-x gives, through a fast path for what frames
 * usually hold (definite-length arrays and maps with ASCII keys, 32-bit integers, doubles,
 * ASCII strings, tagged Uint8Arrays, simple values); anything else goes to cbor-x.
 * Throws like cbor-x on malformed input.
 */
function decodeFast(bytes: Uint8Array): unknown {
  src = bytes;
  srcBuffer = bytes.buffer;
  srcOffset = bytes.byteOffset;
  srcView = new DataView(srcBuffer, srcOffset, bytes.byteLength);
  at = 0;
  let v: unknown;
  try {
    v = readItem(0);
    if (at !== bytes.length) v = decoder.decode(bytes);
  } catch {
    v = decoder.decode(bytes);
  } finally {
    src = EMPTY;
    srcView = EMPTY_VIEW;
    srcBuffer = EMPTY.buffer;
  }
  return v;
}
const EMPTY = new Uint8Array(0);
const EMPTY_VIEW = new DataView(EMPTY.buffer);
