import { describe, expect, test } from "bun:test";
import fc from "fast-check";
import { decodeFrame, encodeFrame, encodeValue } from "../src/wire/codec.ts";
import { deriveKey, ReplayGuard, sign, verify } from "../src/wire/envelope.ts";
import { Kind } from "../src/wire/kinds.ts";
import { Limits } from "../src/wire/limits.ts";
import "../src/transport/messages.ts";

describe("frame codec", () => {
  test("round-trips a batch of valid messages", () => {
    const msgs = [{ t: Kind.TestEcho, seq: 1, reply: false }, {
      t: Kind.TestData,
      seq: 2,
      data: new Uint8Array([1, 2, 3]),
    }];
    const d = decodeFrame(encodeFrame(msgs));
    expect(d.ok).toBe(true);
    expect(d.dropped).toBe(0);
    expect(d.msgs).toEqual(msgs);
  });

  test("drops messages of unknown kind or wrong shape but keeps the rest", () => {
    const frame = encodeValue([1, [{ t: 999, x: 1 }, { t: Kind.TestEcho, seq: -1, reply: false }, {
      t: Kind.TestEcho,
      seq: 5,
      reply: true,
    }]]);
    const d = decodeFrame(frame);
    expect(d.ok).toBe(true);
    expect(d.dropped).toBe(2);
    expect(d.msgs).toEqual([{ t: Kind.TestEcho, seq: 5, reply: true }]);
  });

  test("refuses oversized frames, bad versions and non-frames", () => {
    expect(decodeFrame(new Uint8Array(Limits.maxFrameBytes + 1)).ok).toBe(false);
    expect(decodeFrame(encodeValue([2, []])).ok).toBe(false);
    expect(decodeFrame(encodeValue({ a: 1 })).ok).toBe(false);
    expect(decodeFrame(new Uint8Array([0xff, 0xff])).ok).toBe(false);
  });

  test("strips unknown fields so they never reach protocol code", () => {
    const d = decodeFrame(encodeValue([1, [{ t: Kind.TestEcho, seq: 1, reply: false, __proto__x: 1, extra: "x" }]]));
    expect(d.msgs[0]).toEqual({ t: Kind.TestEcho, seq: 1, reply: false });
  });

  test("never throws on random, truncated or mutated bytes", () => {
    const good = encodeFrame([{ t: Kind.TestData, seq: 9, data: new Uint8Array(100) }]);
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 2048 }), fc.nat(good.length), fc.nat(255), (junk, cut, flip) => {
        for (const b of [junk, good.slice(0, cut), good.map((x, i) => (i === cut ? x ^ flip : x))]) {
          const d = decodeFrame(b);
          expect(d.ok === false || Array.isArray(d.msgs)).toBe(true);
          for (const m of d.msgs) expect(typeof m.t).toBe("number");
        }
      }),
      { numRuns: 2000 },
    );
  });
});

describe("HMAC envelopes", () => {
  test("a signature verifies only with the same key, purpose and fields", () => {
    const k = deriveKey("c", "s3cret", "signal");
    const sig = sign(k, ["c", "a", "b", 1]);
    expect(verify(k, ["c", "a", "b", 1], sig)).toBe(true);
    expect(verify(k, ["c", "a", "b", 2], sig)).toBe(false);
    expect(verify(deriveKey("c", "other", "signal"), ["c", "a", "b", 1], sig)).toBe(false);
    expect(verify(deriveKey("c", "s3cret", "join"), ["c", "a", "b", 1], sig)).toBe(false);
    expect(verify(deriveKey("d", "s3cret", "signal"), ["c", "a", "b", 1], sig)).toBe(false);
  });

  test("the replay guard accepts a nonce once, for a window of the receiver's clock, never reading the sender's", () => {
    const g = new ReplayGuard(1000, 10);
    expect(g.accept("n1", 5000)).toBeNull();
    expect(g.accept("n1", 5001)).toContain("replay");
    // The deprecated form ignores the sender's timestamp: 10 minutes off either way is fine.
    expect(g.check("n2", 5000 - 600_000, 5000)).toBeNull();
    expect(g.check("n3", 5000 + 600_000, 5000)).toBeNull();
    for (let i = 0; i < 7; i++) expect(g.accept(`m${i}`, 5000)).toBeNull();
    expect(g.size).toBe(10);
    expect(g.accept("full", 5000)).toContain("full");
    expect(g.accept("n1", 5500)).toContain("replay"); // still remembered inside the window
    expect(g.accept("later", 6001)).toBeNull(); // the receiver's window passed: old entries expired
    expect(g.size).toBe(1);
  });
});
