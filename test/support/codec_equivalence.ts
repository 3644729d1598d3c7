/**
 * The frame decode fast path (src/wire/fast_decode.ts) against the generic one (cbor-x, then
 * validation), on frames of generated, mutated and byte-damaged messages of every kind that has
 * a compiled reader. No test framework here: `checkDecodeEquivalence` throws on the first
 * difference, so the same check runs under `bun test` (test/fast_decode_test.ts) and under Deno
 * (`deno run -A test/deno/codec_equivalence_deno.ts`).
 */
import { Buffer } from "node:buffer";
import { Random } from "../../src/core/random.ts";
import {
  decodeFrame,
  decodeFrameGeneric,
  encodeFrame,
  encodeValue,
  encodeValueGeneric,
  PROTOCOL_VERSION,
} from "../../src/wire/codec.ts";
import { readFrame } from "../../src/wire/fast_decode.ts";
import { Limits } from "../../src/wire/limits.ts";
import { type Message, readerOf, registeredKinds, schemaOf } from "../../src/wire/message.ts";
import { frameOf } from "../../src/transport/frame_queue.ts";
import { randomValue } from "./arbitrary_message.ts";
import { mutate } from "./mutate_value.ts";
import "../../src/node.ts";

const hints = { ids: ["a", "b", "x", "fuzzed", "k1", "client/2a858470/2bb"] };

/** The message kinds of the put and get path: requests, answers, backups and their acks. */
export const HOT_KINDS = [
  "InvokeRequest",
  "InvokeResponse",
  "InvokeBackupAck",
  "InvokeBackupAnswer",
  "MapBackupOps",
  "MapBackupAck",
];

/**
 * Where two decoded values differ, or null when they are the same: equal scalars, same keys in
 * the same order, byte arrays of the same class over the same memory. With `frame` (two decodes
 * by the generic path), byte arrays outside the frame's memory compare by content instead: cbor-x
 * builds a fresh array for tag 64 on anything but a byte string (a damaged frame), each time anew.
 */
export function difference(a: unknown, b: unknown, path = "$", frame?: Uint8Array): string | null {
  if (a instanceof Uint8Array || b instanceof Uint8Array) {
    if (!(a instanceof Uint8Array && b instanceof Uint8Array)) return `${path}: bytes against non-bytes`;
    if (a.constructor !== b.constructor) return `${path}: ${a.constructor.name} against ${b.constructor.name}`;
    const fresh = frame !== undefined && a.buffer !== frame.buffer && b.buffer !== frame.buffer;
    if (fresh) {
      return a.byteLength === b.byteLength && a.every((x, i) => x === b[i]) ? null : `${path}: different bytes`;
    }
    if (a.buffer !== b.buffer || a.byteOffset !== b.byteOffset || a.byteLength !== b.byteLength) {
      return `${path}: different memory`;
    }
    return null;
  }
  if (Array.isArray(a) || Array.isArray(b)) {
    if (!(Array.isArray(a) && Array.isArray(b)) || a.length !== b.length) return `${path}: array length`;
    for (let i = 0; i < a.length; i++) {
      const d = difference(a[i], b[i], `${path}[${i}]`, frame);
      if (d) return d;
    }
    return null;
  }
  if (typeof a === "object" && a !== null && typeof b === "object" && b !== null) {
    if (Object.getPrototypeOf(a) !== Object.getPrototypeOf(b)) return `${path}: prototypes`;
    const ka = Object.keys(a), kb = Object.keys(b);
    if (ka.join() !== kb.join()) return `${path}: keys ${ka.join()} against ${kb.join()}`;
    for (const k of ka) {
      const d = difference((a as Record<string, unknown>)[k], (b as Record<string, unknown>)[k], `${path}.${k}`, frame);
      if (d) return d;
    }
    return null;
  }
  return Object.is(a, b) ? null : `${path}: ${String(a)} against ${String(b)}`;
}

/** Tallies of one equivalence run. */
export interface DecodeTally {
  frames: number;
  fastTaken: number;
  genericOnly: number;
  validFramesMissed: number;
}

function compare(frame: Uint8Array, t: DecodeTally, label: string): void {
  t.frames++;
  const generic = decodeFrameGeneric(frame);
  const fast = readFrame(frame, PROTOCOL_VERSION, Limits.maxBatchLength, readerOf);
  const whole = decodeFrame(frame, Infinity); // must never throw
  if (fast === null) {
    t.genericOnly++;
    const d = difference(whole, generic, "$", frame);
    if (d) throw new Error(`${label}: decodeFrame differs from the generic path (${d})`);
    return;
  }
  t.fastTaken++;
  if (!generic.ok || generic.dropped > 0) {
    throw new Error(`${label}: fast path accepted a frame the generic path rejects (${generic.reason})`);
  }
  const d = difference(fast, generic.msgs) ?? difference(whole.msgs, generic.msgs);
  if (d) throw new Error(`${label}: fast path differs from the generic path at ${d}`);
}

/** A copy of `bytes` with one random byte-level change: truncated, a byte changed, inserted or removed. */
function damage(bytes: Uint8Array, rng: Random): Uint8Array {
  const at = rng.int(bytes.length);
  switch (rng.int(4)) {
    case 0:
      return bytes.slice(0, at);
    case 1: {
      const out = bytes.slice();
      out[at] =
        [0, 0x17, 0x18, 0x1b, 0x3a, 0x40, 0x5f, 0x61, 0x7f, 0x80, 0xa1, 0xd8, 0xf4, 0xf6, 0xf7, 0xfa, 0xfb, 0xff][
          rng.int(18)
        ] ^ (rng.next() < 0.3 ? rng.int(256) : 0);
      return out;
    }
    case 2: {
      const out = new Uint8Array(bytes.length + 1);
      out.set(bytes.subarray(0, at));
      out[at] = rng.int(256);
      out.set(bytes.subarray(at), at + 1);
      return out;
    }
    default: {
      const out = new Uint8Array(bytes.length - 1);
      out.set(bytes.subarray(0, at));
      out.set(bytes.subarray(at + 1), at);
      return out;
    }
  }
}

/**
 * Compares the two decode paths on `rounds` random values of every kind with a reader: each
 * valid, mutated, and byte-damaged, alone and in frames of several messages, with byte arrays as
 * `Uint8Array` (tag 64) and as the runtime's `Buffer` (no tag). Throws on the first difference.
 */
export function checkDecodeEquivalence(seed: number, rounds: number): DecodeTally & { kinds: string[] } {
  const rng = new Random(seed);
  const t: DecodeTally = { frames: 0, fastTaken: 0, genericOnly: 0, validFramesMissed: 0 };
  const kinds = registeredKinds().filter(({ kind }) => readerOf(kind) !== null);
  for (let r = 0; r < rounds; r++) {
    const batch: Message[] = [];
    for (const { kind, name } of kinds) {
      const v = randomValue(schemaOf(kind)!, rng, hints) as Message;
      const asBuffer = rng.next() < 0.5;
      const valid = asBuffer ? buffersOf(v) : v;
      const frame = encodeFrame([valid as Message]);
      const before = t.fastTaken;
      compare(frame, t, `${name} valid`);
      if (t.fastTaken === before && decodeFrameGeneric(frame).dropped === 0) t.validFramesMissed++;
      if (rng.next() < 0.3) batch.push(valid as Message);
      let m: unknown = valid;
      for (let j = 0; j < 1 + rng.int(3); j++) {
        m = mutate(m, rng);
        let bytes: Uint8Array;
        try {
          bytes = frameOf([encodeValue(m)]);
        } catch {
          continue; // cbor-x cannot encode it (such a value is never sent)
        }
        compare(bytes, t, `${name} mutated`);
      }
      for (let j = 0; j < 3; j++) compare(damage(frame, rng), t, `${name} damaged`);
    }
    const frame = encodeFrame(batch);
    compare(frame, t, "batch");
    for (let j = 0; j < 5; j++) compare(damage(frame, rng), t, "damaged batch");
  }
  return { ...t, kinds: kinds.map((k) => k.name) };
}

/** `v` with every `Uint8Array` inside replaced by a `Buffer` over the same bytes (as Bun's and Deno's cbor-x decode). */
function buffersOf(v: unknown): unknown {
  if (v instanceof Uint8Array) return Buffer.from(v);
  if (Array.isArray(v)) return v.map(buffersOf);
  if (typeof v === "object" && v !== null) {
    return Object.fromEntries(Object.entries(v).map(([k, x]) => [k, buffersOf(x)]));
  }
  return v;
}

/** Numbers at the edges of cbor-x's integer, negative-integer and float choices. */
const edgeNumbers = [
  0,
  -0,
  1,
  23,
  24,
  255,
  256,
  65_535,
  65_536,
  2 ** 31 - 1,
  2 ** 31,
  2 ** 32 - 1,
  2 ** 32,
  2 ** 53 - 1,
  2 ** 53,
  2 ** 64,
  -1,
  -24,
  -25,
  -256,
  -257,
  -65_536,
  -65_537,
  -(2 ** 31),
  -(2 ** 31) - 1,
  -(2 ** 32),
  -(2 ** 32) - 1,
  -(2 ** 53),
  0.5,
  -0.5,
  1 / 3,
  1796546725930 + 3 / 1024,
  1e300,
  5e-324,
  NaN,
  Infinity,
  -Infinity,
];

class Sub extends Array {}
/** Values cbor-x writes its own way (or refuses), which the fast path must leave to it. */
const oddValues: Array<() => unknown> = [
  () => 10n,
  () => new Map([["a", 1]]),
  () => new Date(0),
  () => new Uint16Array(2),
  () => Object.create(null),
  () => ({ constructor: 1, a: 2 }),
  () => Object.assign([1, 2], { constructor: Object }),
  () => Object.assign(new Uint8Array(2), { constructor: Object }),
  () => Sub.from([1, 2]),
  () => Object.create({ inherited: 1 }),
  () => () => 1,
  () => Symbol("s"),
];

/** A random value of the kinds the encoder meets, with strings, arrays, maps and bytes across every head size. */
function randomPlain(rng: Random, depth: number): unknown {
  const r = rng.int(depth > 2 ? 6 : 9);
  const big = depth === 0; // large strings, bytes and arrays only at the top, so a value stays small
  switch (r) {
    case 0:
      return edgeNumbers[rng.int(edgeNumbers.length)];
    case 1:
      return [null, undefined, true, false][rng.int(4)];
    case 2: {
      const len = [0, 1, 23, 24, 31, 32, 63, 64, 65, 255, 256, 70_000][rng.int(big ? 12 : 11)];
      const alphabet = rng.next() < 0.8 ? "abcxyz019/-_" : "aé😀\ud800";
      let s = "";
      while (s.length < len) s += alphabet[rng.int(alphabet.length)];
      return s;
    }
    case 3:
    case 4: {
      const len = [0, 1, 23, 24, 255, 256, 9_000, 70_000][rng.int(big ? 8 : 6)];
      const b = new Uint8Array(len).map(() => rng.int(256));
      return rng.next() < 0.5 ? b : rng.next() < 0.5 ? Buffer.from(b) : b.subarray(len >> 1);
    }
    case 5:
      return oddValues[rng.int(oddValues.length)]();
    case 6:
      return Array.from({ length: [0, 1, 3, 23, 24, 300][rng.int(big ? 6 : 4)] }, () => randomPlain(rng, depth + 1));
    default: {
      const out: Record<string, unknown> = {};
      const n = [0, 1, 5, 23, 24, 40][rng.int(big ? 6 : 3)];
      for (let i = 0; i < n; i++) out[rng.next() < 0.9 ? `k${i}` : `é${i}`] = randomPlain(rng, depth + 1);
      return out;
    }
  }
}

/**
 * Compares `encodeValue` (the fast path) with cbor-x's own encoding on messages of every kind
 * (generated, mutated, with byte arrays as `Uint8Array` and as `Buffer`) and on random plain
 * values across every head size: the same bytes, as the same class. Throws on the first difference.
 */
export function checkEncodeEquivalence(seed: number, rounds: number): { values: number; bytes: number } {
  const rng = new Random(seed);
  const t = { values: 0, bytes: 0 };
  const same = (v: unknown, label: string) => {
    let generic: Uint8Array | Error, fast: Uint8Array | Error;
    try {
      generic = encodeValueGeneric(v);
      generic = generic.slice(); // cbor-x may write its next value over a view it returned
    } catch (e) {
      generic = e as Error;
    }
    try {
      fast = encodeValue(v);
    } catch (e) {
      fast = e as Error;
    }
    t.values++;
    if (generic instanceof Error || fast instanceof Error) {
      if (!(generic instanceof Error && fast instanceof Error)) throw new Error(`${label}: only one encoder threw`);
      return;
    }
    t.bytes += fast.byteLength;
    if (fast.constructor !== generic.constructor) throw new Error(`${label}: ${fast.constructor.name} result`);
    if (Buffer.compare(Buffer.from(fast), Buffer.from(generic)) !== 0) {
      throw new Error(`${label}: bytes differ: ${Buffer.from(fast).toString("hex").slice(0, 200)}`);
    }
  };
  const kinds = registeredKinds();
  for (let r = 0; r < rounds; r++) {
    for (const { kind, name } of kinds) {
      const v = randomValue(schemaOf(kind)!, rng, hints);
      same(v, name);
      same(buffersOf(v), `${name} (Buffers)`);
      let m: unknown = v;
      for (let j = 0; j < 2; j++) same(m = mutate(m, rng), `${name} mutated`);
    }
    for (let j = 0; j < 20; j++) same(randomPlain(rng, 0), "plain");
  }
  let deep: unknown = 1;
  for (let i = 0; i < 100; i++) deep = [deep, { a: deep === 1 ? 2 : 3 }];
  same(deep, "deep");
  return t;
}
