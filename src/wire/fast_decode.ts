/**
 * Frame readers compiled from the zod schemas of messages: the decode fast path of a received
 * frame. A compiled reader reads one message's CBOR bytes straight into the value that cbor-x's
 * decoding followed by validation (the compiled check of fast_check.ts) would return, in one
 * pass: no intermediate object, no second walk, field keys matched on their bytes.
 *
 * Like a compiled check, a reader is sound, not complete: when it accepts, cbor-x decodes the
 * same bytes to a value that validation accepts and turns into an equal value (same fields, in
 * the schema's order, the same byte-array classes over the same memory); on anything else it
 * returns {@link REJECT} and the caller decodes the whole frame the generic way (cbor-x, then
 * validation), which decides. It reads only what the project's own encoder writes for valid
 * messages: maps of at most 23 entries with short ASCII keys, definite lengths, integers up to
 * 32 bits, float64, ASCII strings, byte strings (tag 64 or not), null, undefined, booleans. A
 * non-ASCII string, a float16 or float32, a 64-bit integer, an unknown or repeated key, any other
 * tag, or a truncated item sends the frame to the generic path. test/fast_decode_test.ts compares
 * the two paths on generated and mutated frames.
 */
import type { z } from "zod";
import {
  bytesLimitOf,
  compileCheck,
  type FastCheck,
  internals,
  lengthBounds,
  numberBounds,
  REJECT,
  scalarValues,
} from "./fast_check.ts";

/** A compiled reader: reads one item at the current position, or returns {@link REJECT}. */
export type FastReader = () => unknown;

const EMPTY = new Uint8Array(0);
let src: Uint8Array = EMPTY;
let pos = 0;
let end = 0;
const f64 = new Float64Array(1);
const f64Bytes = new Uint8Array(f64.buffer);
const bigEndianHost = new Uint8Array(new Uint16Array([1]).buffer)[0] === 0;
const utf8 = new TextDecoder();
/** Reused argument lists of `String.fromCharCode` (faster than applying it to a byte view, under Bun and Deno). */
const charCodes: number[][] = Array.from({ length: 65 }, (_, n) => new Array<number>(n).fill(0));
/** Deeper `any` values (cbor-x reads them) go to the generic path. */
const MAX_DEPTH = 32;

/** The argument of a head whose low 5 bits are `info`: lengths and integers up to 32 bits, else -1. */
function readArg(info: number): number {
  if (info < 24) return info;
  if (info === 24) {
    if (pos >= end) return -1;
    return src[pos++];
  }
  if (info === 25) {
    if (pos + 2 > end) return -1;
    const v = (src[pos] << 8) | src[pos + 1];
    pos += 2;
    return v;
  }
  if (info === 26) {
    if (pos + 4 > end) return -1;
    const v = src[pos] * 0x1000000 + ((src[pos + 1] << 16) | (src[pos + 2] << 8) | src[pos + 3]);
    pos += 4;
    return v;
  }
  return -1;
}

function readFloat64(): number | typeof REJECT {
  if (pos + 8 > end) return REJECT;
  if (bigEndianHost) { for (let i = 0; i < 8; i++) f64Bytes[i] = src[pos + i]; }
  else for (let i = 0; i < 8; i++) f64Bytes[i] = src[pos + 7 - i];
  pos += 8;
  return f64[0];
}

/** A number as cbor-x reads it (integers of up to 32 bits, float64), or REJECT. */
function readNumber(): number | typeof REJECT {
  if (pos >= end) return REJECT;
  const h = src[pos++];
  if (h < 0x20) {
    const n = readArg(h);
    return n < 0 ? REJECT : n;
  }
  if (h < 0x40) {
    const n = readArg(h & 0x1f);
    return n < 0 ? REJECT : -1 - n;
  }
  return h === 0xfb ? readFloat64() : REJECT;
}

/** An ASCII text string of `len` bytes at the position, or REJECT. */
function readAscii(len: number): string | typeof REJECT {
  if (len > end - pos) return REJECT;
  const at = pos;
  if (len <= 64) {
    const codes = charCodes[len];
    for (let i = 0; i < len; i++) {
      const c = src[at + i];
      if (c > 0x7f) return REJECT;
      codes[i] = c;
    }
    pos += len;
    return String.fromCharCode.apply(null, codes);
  }
  for (let i = at; i < at + len; i++) if (src[i] > 0x7f) return REJECT;
  pos += len;
  return utf8.decode(src.subarray(at, at + len));
}

/** A text string (major type 3), or REJECT. */
function readString(): string | typeof REJECT {
  if (pos >= end) return REJECT;
  const h = src[pos++];
  if ((h & 0xe0) !== 0x60) return REJECT;
  const len = readArg(h & 0x1f);
  return len < 0 ? REJECT : readAscii(len);
}

/** A byte string, optionally under tag 64, as cbor-x returns it (a view of the frame), or REJECT. */
function readBytes(max: number): Uint8Array | typeof REJECT {
  if (pos >= end) return REJECT;
  let h = src[pos++];
  const tagged = h === 0xd8 && src[pos] === 0x40;
  if (tagged) {
    pos++;
    if (pos >= end) return REJECT;
    h = src[pos++];
  }
  if ((h & 0xe0) !== 0x40) return REJECT;
  const len = readArg(h & 0x1f);
  if (len < 0 || len > end - pos || len > max) return REJECT;
  const sub = src.subarray(pos, pos + len);
  pos += len;
  return tagged ? new Uint8Array(sub.buffer, sub.byteOffset, len) : sub;
}

/** The count of a definite-length array, or -1. */
function readArrayHeader(): number {
  if (pos >= end) return -1;
  const h = src[pos++];
  if ((h & 0xe0) !== 0x80) return -1;
  const n = readArg(h & 0x1f);
  return n > end - pos ? -1 : n;
}

/** Any value of the subset above, as cbor-x decodes it (with `mapsAsObjects`), or REJECT. */
function readAny(depth: number): unknown {
  if (pos >= end || depth > MAX_DEPTH) return REJECT;
  const h = src[pos];
  switch (h >> 5) {
    case 0:
    case 1:
      return readNumber();
    case 2:
      return readBytes(Infinity);
    case 3:
      return readString();
    case 4: {
      const n = readArrayHeader();
      if (n < 0) return REJECT;
      const out = new Array(n);
      for (let i = 0; i < n; i++) {
        const x = readAny(depth + 1);
        if (x === REJECT) return REJECT;
        out[i] = x;
      }
      return out;
    }
    case 5: {
      pos++;
      const n = readArg(h & 0x1f);
      if (n < 0 || n > (end - pos) / 2) return REJECT;
      const out: Record<string, unknown> = {};
      for (let i = 0; i < n; i++) {
        const k = readString();
        if (k === REJECT || k === "__proto__" || Object.hasOwn(out, k)) return REJECT;
        const x = readAny(depth + 1);
        if (x === REJECT) return REJECT;
        out[k] = x;
      }
      return out;
    }
    case 6:
      return h === 0xd8 && src[pos + 1] === 0x40 ? readBytes(Infinity) : REJECT;
    default:
      pos++;
      switch (h) {
        case 0xf4:
          return false;
        case 0xf5:
          return true;
        case 0xf6:
          return null;
        case 0xf7:
          return undefined;
        case 0xfb:
          return readFloat64();
        default:
          return REJECT;
      }
  }
}

const readAnyTop: FastReader = () => readAny(0);

/**
 * Compiles a message or body schema into a reader.
 * @param check the schema's compiled check, when the caller already has it (compiled here otherwise)
 * @returns the reader, or null when the schema has no compiled check or uses a part readers do not know
 */
export function compileReader(schema: z.ZodType, check: FastCheck | null = compileCheck(schema)): FastReader | null {
  return check ? compile(schema) : null;
}

function compile(schema: z.ZodType): FastReader | null {
  const max = bytesLimitOf(schema);
  if (max !== undefined) return () => readBytes(max);
  const def = internals(schema).def;
  const checks: unknown[] | undefined = def.checks;
  switch (def.type) {
    case "unknown":
    case "any":
      return readAnyTop;
    case "boolean":
      return () => {
        const h = src[pos];
        if (pos >= end || (h !== 0xf4 && h !== 0xf5)) return REJECT;
        pos++;
        return h === 0xf5;
      };
    case "literal":
    case "enum": {
      const values = scalarValues(schema);
      if (!values) return null;
      return () => {
        const v = readAny(MAX_DEPTH);
        return values.has(v) ? v : REJECT;
      };
    }
    case "string": {
      const b = lengthBounds(checks);
      if (!b) return null;
      const { min, max } = b;
      return () => {
        const v = readString();
        // ASCII: the length is the count of code points zod checks.
        return v !== REJECT && v.length <= max && v.length >= min ? v : REJECT;
      };
    }
    case "number": {
      const b = numberBounds(checks);
      if (!b) return null;
      const { lo, hi, loIn, hiIn, int } = b;
      return () => {
        const v = readNumber();
        return v !== REJECT && Number.isFinite(v) && (!int || Number.isSafeInteger(v)) &&
            (loIn ? v >= lo : v > lo) && (hiIn ? v <= hi : v < hi)
          ? v
          : REJECT;
      };
    }
    case "optional":
    case "nullable": {
      const inner = compile(def.innerType);
      if (!inner) return null;
      const absent = def.type === "optional" ? 0xf7 : 0xf6;
      const value = def.type === "optional" ? undefined : null;
      return () => {
        if (pos < end && src[pos] === absent) {
          pos++;
          return value;
        }
        return inner();
      };
    }
    case "array": {
      const b = lengthBounds(checks);
      const item = b && compile(def.element);
      if (!b || !item) return null;
      const { min, max } = b;
      return () => {
        const n = readArrayHeader();
        if (n < min || n > max) return REJECT;
        const out = new Array(n);
        for (let i = 0; i < n; i++) {
          const x = item();
          if (x === REJECT) return REJECT;
          out[i] = x;
        }
        return out;
      };
    }
    case "tuple":
      return compileTuple(def);
    case "union": {
      const values = scalarValues(schema);
      if (values) {
        return () => {
          const v = readAny(MAX_DEPTH);
          return values.has(v) ? v : REJECT;
        };
      }
      return compileUnion(def);
    }
    case "object":
      return compileObject(def);
    default:
      return null;
  }
}

// deno-lint-ignore no-explicit-any
function compileTuple(def: any): FastReader | null {
  const items = (def.items as z.ZodType[]).map(compile);
  if (items.some((c) => c === null)) return null;
  const cs = items as FastReader[];
  const n = cs.length;
  return () => {
    if (readArrayHeader() !== n) return REJECT;
    const out = new Array(n);
    for (let i = 0; i < n; i++) {
      const x = cs[i]();
      if (x === REJECT) return REJECT;
      out[i] = x;
    }
    return out;
  };
}

/** As the compiled check: a union of tuples of different lengths, told apart by the array's length (literals: above). */
// deno-lint-ignore no-explicit-any
function compileUnion(def: any): FastReader | null {
  const byLength = new Map<number, FastReader>();
  for (const o of def.options as z.ZodType[]) {
    const r = compile(o);
    if (!r) return null;
    byLength.set((internals(o).def.items as unknown[]).length, r);
  }
  return () => {
    const at = pos;
    const n = readArrayHeader();
    pos = at;
    return byLength.get(n)?.() ?? REJECT;
  };
}

// deno-lint-ignore no-explicit-any
function compileObject(def: any): FastReader | null {
  const entries = Object.entries(def.shape as Record<string, z.ZodType>);
  if (entries.length > 23) return null;
  const keys: string[] = [];
  const keyBytes: Uint8Array[] = [];
  const readers: FastReader[] = [];
  const optional: boolean[] = [];
  for (const [key, s] of entries) {
    const r = compile(s);
    if (!r || !/^[\x20-\x7e]{1,23}$/.test(key)) return null;
    keys.push(key);
    keyBytes.push(new TextEncoder().encode(key));
    readers.push(r);
    const { optin, optout } = internals(s);
    optional.push(optin === "optional" && optout === "optional");
  }
  const n = keys.length;
  /** Fields by the byte of a one-character key (most keys), -1 for none. */
  const byChar = new Int8Array(128).fill(-1);
  keyBytes.forEach((kb, f) => {
    if (kb.length === 1) byChar[kb[0]] = f;
  });
  /** The index of the field whose key is at the position (a short text string), or -1. */
  const field = (): number => {
    const h = src[pos];
    if (pos + 1 >= end || h < 0x61 || h > 0x77) return -1;
    if (h === 0x61) {
      const c = src[pos + 1];
      const f = c < 0x80 ? byChar[c] : -1;
      if (f >= 0) pos += 2;
      return f;
    }
    const len = h - 0x60;
    if (len > end - pos - 1) return -1;
    next: for (let f = 0; f < n; f++) {
      const kb = keyBytes[f];
      if (kb.length !== len) continue;
      for (let i = 0; i < len; i++) if (src[pos + 1 + i] !== kb[i]) continue next;
      pos += 1 + len;
      return f;
    }
    return -1;
  };
  return () => {
    const h = src[pos];
    if (pos >= end || h < 0xa0 || h > 0xb7) return REJECT;
    pos++;
    const count = h - 0xa0;
    // Fields go straight into the output; sent out of the schema's order (rare), they are put in its order after.
    const out: Record<string, unknown> = {};
    let seen = 0;
    let last = -1;
    let ordered = true;
    for (let i = 0; i < count; i++) {
      const f = field();
      if (f < 0 || (seen & (1 << f)) !== 0) return REJECT;
      seen |= 1 << f;
      if (f < last) ordered = false;
      last = f;
      const x = readers[f]();
      if (x === REJECT) return REJECT;
      out[keys[f]] = x;
    }
    for (let f = 0; f < n; f++) if ((seen & (1 << f)) === 0 && !optional[f]) return REJECT;
    if (ordered) return out;
    const sorted: Record<string, unknown> = {};
    for (let f = 0; f < n; f++) if ((seen & (1 << f)) !== 0) sorted[keys[f]] = out[keys[f]];
    return sorted;
  };
}

/**
 * Reads a whole frame `[version, [message, …]]` whose every message has a compiled reader.
 * Never throws.
 * @param readerOf the reader of a message kind, or null
 * @returns the messages, or null when anything in the frame is not for the fast path
 */
export function readFrame(
  bytes: Uint8Array,
  version: number,
  maxBatch: number,
  readerOf: (kind: number) => FastReader | null,
): unknown[] | null {
  src = bytes;
  pos = 0;
  end = bytes.byteLength;
  try {
    if (end < 3 || src[0] !== 0x82 || src[1] !== version) return null;
    pos = 2;
    const count = readArrayHeader();
    if (count < 0 || count > maxBatch) return null;
    const msgs = new Array(count);
    for (let i = 0; i < count; i++) {
      // A message is a map whose first key is "t", the kind (written first by every sender).
      if (src[pos + 1] !== 0x61 || src[pos + 2] !== 0x74) return null;
      const k = src[pos + 3];
      const reader = readerOf(k < 24 ? k : k === 0x18 ? src[pos + 4] : -1);
      const m = reader ? reader() : REJECT;
      if (m === REJECT) return null;
      msgs[i] = m;
    }
    return pos === end ? msgs : null;
  } catch {
    return null;
  } finally {
    src = EMPTY;
  }
}
