/**
 * The codec's fast paths against cbor-x under Deno (`deno run -A test/deno/codec_equivalence_deno.ts`):
 * the encoder writes cbor-x's bytes and the frame reader decodes what cbor-x and validation
 * decode (test/support/codec_equivalence.ts; under Bun: test/fast_encode_test.ts and
 * test/fast_decode_test.ts). Exits non-zero on the first difference.
 */
import { checkDecodeEquivalence, checkEncodeEquivalence } from "../support/codec_equivalence.ts";

const enc = checkEncodeEquivalence(16, 30);
const dec = checkDecodeEquivalence(16, 40);
console.log(`fast encode: ${JSON.stringify(enc)}`);
console.log(`fast decode: ${dec.kinds.length} kinds, ${JSON.stringify({ ...dec, kinds: undefined })}`);
if (dec.validFramesMissed > 0) throw new Error(`${dec.validFramesMissed} valid frames missed the fast path`);
