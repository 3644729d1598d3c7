/**
 * The wire fuzzer at scale: `bun run scripts/fuzz_wire.ts [--frames 1000000] [--seed 1]`.
 * Runs test/support/wire_fuzz.ts in batches of 100,000 frames (a fresh member each, seeds
 * seed, seed+1, …), prints one line per batch and exits 1 if any batch let an error
 * escape, changed the member's state, accepted a mutated envelope or grew the heap by
 * 64 MiB or more. Replay a failing batch with `--frames 100000 --seed <its seed>`.
 */
import { runWireFuzz } from "../test/support/wire_fuzz.ts";

function arg(name: string, fallback: number): number {
  const i = process.argv.indexOf(`--${name}`);
  const v = i >= 0 ? Number(process.argv[i + 1]) : fallback;
  if (!Number.isSafeInteger(v) || v < 0) {
    console.error(`--${name} needs a whole number`);
    process.exit(2);
  }
  return v;
}

const frames = arg("frames", 1_000_000);
const seed = arg("seed", 1);
const batch = 100_000;
let failed = 0;
const t0 = performance.now();
for (let done = 0, s = seed; done < frames; done += batch, s++) {
  const n = Math.min(batch, frames - done);
  const r = await runWireFuzz(n, s);
  const bad = r.escapes.length > 0 || r.stateChange !== null || r.envelopeAccepted > 0 ||
    r.heapGrowthBytes >= 64 * 1024 * 1024;
  if (bad) failed++;
  console.log(
    `${
      bad ? "FAIL" : "ok  "
    } seed ${s}: ${r.frames} frames, ${r.dispatched} messages dispatched, ${r.dropped} dropped, ` +
      `${r.envelopeChecks} envelopes (${r.envelopeAccepted} accepted), heap ${
        Math.round(r.heapGrowthBytes / 1048576)
      } MiB`,
  );
  for (const e of r.escapes) console.log(`  escaped: ${e}`);
  if (r.stateChange) console.log(`  state changed:\n${r.stateChange}`);
}
console.log(`${frames} frames in ${Math.round((performance.now() - t0) / 1000)} s; ${failed} failed batches`);
process.exit(failed > 0 ? 1 : 0);
