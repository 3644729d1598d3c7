/**
 * The decode fast path of received frames (src/wire/fast_decode.ts) against the generic path
 * (cbor-x, then validation): on generated, mutated and byte-damaged frames of every kind with a
 * compiled reader, the fast path accepts only what the generic path accepts, with the same
 * messages (same fields in the same order, byte arrays of the same class over the same memory),
 * and `decodeFrame` never throws. Valid frames of the hot kinds must take the fast path.
 */
import { expect, test } from "bun:test";
import { encodeFrame, PROTOCOL_VERSION } from "../src/wire/codec.ts";
import { readFrame } from "../src/wire/fast_decode.ts";
import { Limits } from "../src/wire/limits.ts";
import { readerOf } from "../src/wire/message.ts";
import { checkDecodeEquivalence, HOT_KINDS } from "./support/codec_equivalence.ts";

test("the fast path decodes exactly what cbor-x and validation decode, or leaves the frame to them", () => {
  const t = checkDecodeEquivalence(16, 40);
  console.log(`fast decode: ${t.kinds.length} kinds, ${JSON.stringify({ ...t, kinds: undefined })}`);
  for (const hot of HOT_KINDS) {
    expect(t.kinds).toContain(hot);
  }
  // Generated valid messages (ASCII strings) all take the fast path; both paths were exercised.
  expect(t.validFramesMissed).toBe(0);
  expect(t.fastTaken).toBeGreaterThan(t.frames / 20);
  expect(t.genericOnly).toBeGreaterThan(t.frames / 5);
});

test("frames the fast path leaves to the generic one", () => {
  const read = (frame: Uint8Array) => readFrame(frame, PROTOCOL_VERSION, Limits.maxBatchLength, readerOf);
  const ok = { t: 142, pr: "b", cs: ["client/1"] };
  expect(read(encodeFrame([ok]))).toStrictEqual([ok]);
  // Non-ASCII strings, unknown keys, kinds without a reader, a wrong version, trailing bytes.
  expect(read(encodeFrame([{ ...ok, pr: "é" }]))).toBeNull();
  expect(read(encodeFrame([{ ...ok, extra: 1 }]))).toBeNull();
  expect(read(encodeFrame([{ t: 9999 }]))).toBeNull();
  const frame = encodeFrame([ok]);
  expect(read(Uint8Array.of(0x82, 2, ...frame.subarray(2)))).toBeNull();
  expect(read(Uint8Array.of(...frame, 0))).toBeNull();
  // The kind first: a message whose `t` comes later is read the generic way.
  expect(read(encodeFrame([{ pr: "b", cs: [], t: 142 }]))).toBeNull();
});
