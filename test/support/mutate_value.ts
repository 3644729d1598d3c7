/**
 * Random changes to a decoded value, as a hostile or buggy peer would make them: wrong types,
 * the edges of every bound, odd numbers and strings, missing and extra keys (fuzzing of the
 * validation and decode paths).
 */
import type { Random } from "../../src/core/random.ts";

/** Values a hostile peer might put anywhere: wrong types, edges of every bound, odd numbers and strings. */
export const junk: unknown[] = [
  undefined,
  null,
  NaN,
  Infinity,
  -Infinity,
  -1,
  -0,
  0.5,
  7,
  65_536,
  100_001,
  2 ** 53,
  Number.MAX_SAFE_INTEGER,
  -Number.MAX_SAFE_INTEGER,
  10n,
  "",
  "a",
  "x".repeat(128),
  "x".repeat(129),
  "x".repeat(257),
  "😀".repeat(100), // 200 units, 100 code points
  "😀".repeat(200), // 400 units, 200 code points: zod (code points) accepts it under a 256 limit
  "\ud800",
  "😀".repeat(8), // 16 units, 8 code points
  "ab\ud800\udc00".repeat(4),
  true,
  false,
  new Uint8Array(0),
  new Uint8Array(3),
  [],
  [1, 2],
  [new Uint8Array(1), new Uint8Array(1)],
  ["m", new Uint8Array(1), null, 1],
  {},
  { t: 140 },
  new Map(),
  new Date(0),
];

function pick<T>(xs: readonly T[], rng: Random): T {
  return xs[rng.int(xs.length)];
}

/** A copy of `v` with one random change somewhere inside (or the junk itself at the top). */
export function mutate(v: unknown, rng: Random, depth = 0): unknown {
  const r = rng.next();
  if (depth > 0 && r < 0.25) return pick(junk, rng);
  if (Array.isArray(v)) {
    const out = v.slice();
    const c = rng.int(4);
    if (c === 0) out.push(out.length > 0 ? pick(out, rng) : pick(junk, rng));
    else if (c === 1) out.pop();
    else if (out.length > 0) {
      const i = rng.int(out.length);
      out[i] = mutate(out[i], rng, depth + 1);
    }
    return out;
  }
  if (typeof v === "object" && v !== null && !(v instanceof Uint8Array)) {
    const out: Record<string, unknown> = { ...v as Record<string, unknown> };
    const keys = Object.keys(out);
    const c = rng.int(5);
    if (c === 0 && keys.length > 0) delete out[pick(keys, rng)];
    else if (c === 1) out[pick(["zz", "t", "k", "v", "m", "ttl", "bk", "extra"], rng)] = pick(junk, rng);
    else if (keys.length > 0) {
      const k = pick(keys, rng);
      out[k] = mutate(out[k], rng, depth + 1);
    }
    return out;
  }
  return pick(junk, rng);
}
