/**
 * The encode fast path (src/wire/fast_encode.ts) against cbor-x: `encodeValue` writes the very
 * bytes cbor-x writes (same class of result), on messages of every kind, generated and mutated,
 * and on plain values across every head size, so the wire does not change. The same check runs
 * under Deno: `deno run -A test/deno/codec_equivalence_deno.ts`.
 */
import { expect, test } from "bun:test";
import { checkEncodeEquivalence } from "./support/codec_equivalence.ts";

test("the fast encoder writes cbor-x's bytes", () => {
  const t = checkEncodeEquivalence(16, 30);
  console.log(`fast encode: ${JSON.stringify(t)}`);
  expect(t.values).toBeGreaterThan(5000);
});
