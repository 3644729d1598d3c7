/**
 * The cost of origin signatures on relayed messages (src/transport/origin.ts): for inner
 * messages of 100 B, 1 KiB and 16 KiB, the origin's work per Forward (encode + Ed25519 sign)
 * and the receiver's (encode + verify + replay window), in µs, median of `--runs` runs.
 *
 *   bun run bench/relay_signatures.ts          deno run -A bench/relay_signatures.ts
 *
 * Options: --runs N (default 5), --count N (Forwards per run and size; default 500).
 */
import { loadavg } from "node:os";
import { args, runtimeName } from "../src/runtime/process.ts";
import { forwardOf, OriginGuard, OriginSigner } from "../src/transport/origin.ts";
import { Kind } from "../src/wire/kinds.ts";
import type { Message } from "../src/wire/message.ts";
import "../src/transport/messages.ts";

const argv = args();
const opt = (name: string, dflt: number) => {
  const i = argv.indexOf(`--${name}`);
  return i >= 0 ? Number(argv[i + 1]) : dflt;
};
const runs = opt("runs", 5);
const count = opt("count", 500);
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];

const signer = new OriginSigner();
const keyOf = (id: string) => (id === "a" ? signer.publicKey : null);
console.log(`${runtimeName()}, load average ${loadavg()[0].toFixed(1)}, ${runs} runs × ${count} Forwards per size`);
for (const size of [100, 1024, 16 * 1024]) {
  const inner: Message = { t: Kind.TestData, seq: 1, data: new Uint8Array(size) };
  const signUs: number[] = [];
  const verifyUs: number[] = [];
  for (let r = 0; r < runs; r++) {
    const guard = new OriginGuard();
    const t0 = performance.now();
    const fwds = Array.from({ length: count }, () => forwardOf(signer, "a", "b", inner));
    const t1 = performance.now();
    for (const f of fwds) if (guard.check(f, inner, keyOf) !== null) throw new Error("a genuine Forward was refused");
    const t2 = performance.now();
    signUs.push(((t1 - t0) * 1000) / count);
    verifyUs.push(((t2 - t1) * 1000) / count);
  }
  const [s, v] = [median(signUs), median(verifyUs)];
  console.log(
    `inner ${String(size).padStart(5)} B: origin ${s.toFixed(0)} µs (encode + sign), receiver ${
      v.toFixed(0)
    } µs (encode + verify + window), ${(s + v).toFixed(0)} µs per relayed message`,
  );
}
