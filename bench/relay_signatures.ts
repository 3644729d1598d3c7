/**
 * The cost of origin authentication on relayed messages (src/transport/origin.ts):
 * - deriving a pair key once per (origin, receiver) pair (Ed25519 → X25519, shared secret,
 *   HKDF-SHA256), in µs;
 * - for inner messages of 100 B, 1 KiB and 16 KiB, the origin's work per Forward (encode +
 *   HMAC-SHA256 under the cached pair key) and the receiver's (encode + HMAC + compare +
 *   replay window), in µs, median of `--runs` runs;
 * - for comparison, what an Ed25519 signature and its verification per Forward cost (the
 *   scheme this replaced).
 *
 *   bun run bench/relay_signatures.ts          deno run -A bench/relay_signatures.ts
 *
 * Options: --runs N (default 5), --count N (Forwards per run and size; default 5000).
 */
import { ed25519 } from "@noble/curves/ed25519";
import { loadavg } from "node:os";
import { args, runtimeName } from "../src/runtime/process.ts";
import { forwardOf, OriginGuard, OriginSigner, signedBytes } from "../src/transport/origin.ts";
import { Kind } from "../src/wire/kinds.ts";
import type { Message } from "../src/wire/message.ts";
import "../src/transport/messages.ts";

const argv = args();
const opt = (name: string, dflt: number) => {
  const i = argv.indexOf(`--${name}`);
  return i >= 0 ? Number(argv[i + 1]) : dflt;
};
const runs = opt("runs", 5);
const count = opt("count", 5000);
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];

const origin = new OriginSigner();
const receiver = new OriginSigner();
const keyOf = (id: string) => (id === "a" ? origin.publicKey : id === "b" ? receiver.publicKey : null);
console.log(`${runtimeName()}, load average ${loadavg()[0].toFixed(1)}, ${runs} runs × ${count} Forwards per size`);

const peers = 200;
const deriveUs: number[] = [];
for (let r = 0; r < runs; r++) {
  const fresh = new OriginSigner();
  const t0 = performance.now();
  for (let i = 0; i < peers; i++) if (!fresh.pairMac("a", `p${i}`, receiver.publicKey)) throw new Error("no pair key");
  deriveUs.push(((performance.now() - t0) * 1000) / peers);
}
console.log(`pair key, derived once per peer (X25519 + HKDF-SHA256): ${median(deriveUs).toFixed(0)} µs`);

for (const size of [100, 1024, 16 * 1024]) {
  const inner: Message = { t: Kind.TestData, seq: 1, data: new Uint8Array(size) };
  const tagUs: number[] = [];
  const checkUs: number[] = [];
  for (let r = 0; r < runs; r++) {
    const guard = new OriginGuard(receiver);
    const t0 = performance.now();
    const fwds = Array.from({ length: count }, () => forwardOf(origin, "a", "b", receiver.publicKey, inner));
    const t1 = performance.now();
    for (const f of fwds) if (guard.check(f, inner, keyOf) !== null) throw new Error("a genuine Forward was refused");
    const t2 = performance.now();
    tagUs.push(((t1 - t0) * 1000) / count);
    checkUs.push(((t2 - t1) * 1000) / count);
  }
  const [s, v] = [median(tagUs), median(checkUs)];
  console.log(
    `inner ${String(size).padStart(5)} B: origin ${s.toFixed(1)} µs (encode + HMAC), receiver ${
      v.toFixed(1)
    } µs (encode + HMAC + window), ${(s + v).toFixed(1)} µs per relayed message`,
  );
}

// The replaced scheme, on 100-byte messages: a few hundred suffice at these costs.
const seed = ed25519.utils.randomPrivateKey();
const pub = ed25519.getPublicKey(seed);
const bytes = signedBytes("a", "b", 1, { t: Kind.TestData, seq: 1, data: new Uint8Array(100) });
const edCount = Math.min(count, 200);
const t0 = performance.now();
const sigs = Array.from({ length: edCount }, () => ed25519.sign(bytes, seed));
const t1 = performance.now();
for (const s of sigs) if (!ed25519.verify(s, bytes, pub)) throw new Error("bad signature");
const t2 = performance.now();
console.log(
  `for comparison, Ed25519 per 100 B message: sign ${((t1 - t0) * 1000 / edCount).toFixed(0)} µs, verify ${
    ((t2 - t1) * 1000 / edCount).toFixed(0)
  } µs`,
);
