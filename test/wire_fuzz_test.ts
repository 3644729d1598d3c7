/**
 * Fuzzing of the codec, the envelopes and dispatch, 10^5 generated frames per run (see
 * test/support/wire_fuzz.ts; `bun run scripts/fuzz_wire.ts` runs 10^6 or more): no error
 * escapes, a member's state does not change for input from a process that is not a member,
 * no mutated signed envelope is accepted, and the heap stays under 64 MiB of growth.
 */
import { expect, test } from "bun:test";
import { runWireFuzz } from "./support/wire_fuzz.ts";

test("10^5 generated frames through codec, validation and dispatch; mutated envelopes", async () => {
  const r = await runWireFuzz(100_000, 17);
  console.log(`wire fuzz: ${JSON.stringify({ ...r, escapes: r.escapes.length })}`);
  expect(r.escapes).toEqual([]);
  expect(r.stateChange).toBeNull();
  expect(r.frames).toBe(100_000);
  expect(r.envelopeChecks).toBe(10_000);
  expect(r.envelopeAccepted).toBe(0);
  // Both paths were exercised: messages reached the layers, and many were dropped by the codec.
  expect(r.dispatched).toBeGreaterThan(10_000);
  expect(r.dropped).toBeGreaterThan(10_000);
  expect(r.heapGrowthBytes).toBeLessThan(64 * 1024 * 1024);
}, 600_000);
