/**
 * CPU per hot message in the frame codec: encoding one message as a link queues it, by cbor-x
 * (`encodeValueGeneric`) and by the fast path (`encodeValue`, src/wire/fast_encode.ts), and decoding plus validating a frame of such messages, by the fast path (`decodeFrame`,
 * src/wire/fast_decode.ts) and by the generic path (`decodeFrameGeneric`: cbor-x, then
 * validation). Messages shaped as on the put path of bench/put_path.ts (100-byte values).
 *
 *   bun run bench/codec_hot.ts     |   deno run -A bench/codec_hot.ts
 *   bun run bench/codec_hot.ts --n 200000 --batch 10
 *
 * Prints µs per message (best of 5 rounds of `--n` messages; a frame holds `--batch` messages).
 */
import { args as processArgs, runtimeVersion } from "../src/runtime/process.ts";
import { decodeFrame, decodeFrameGeneric, encodeValue, encodeValueGeneric } from "../src/wire/codec.ts";
import { frameOf } from "../src/transport/frame_queue.ts";
import { Kind } from "../src/wire/kinds.ts";
import type { Message } from "../src/wire/message.ts";
import "../src/node.ts";
import { flag } from "./_cluster.ts";

const args = processArgs();
const N = Number(flag(args, "n", "100000"));
const BATCH = Number(flag(args, "batch", "1"));

const callId = "client/2a858470/2bb";
const key = encodeValue("t999");
const value = encodeValue("x".repeat(100));
const stamp = 1796546725930 + 3 / 1024;
const samples: Record<string, Message> = {
  InvokeRequest: {
    t: Kind.InvokeRequest,
    c: callId,
    a: 1,
    p: 24,
    e: 8592031745,
    op: 3,
    b: { k: key, v: value, m: "bench" },
    w: 2951,
  },
  MapBackupOps: {
    t: Kind.MapBackupOps,
    p: 24,
    e: 8592031745,
    l: 3214861073889513,
    ops: [{
      seq: 12,
      c: callId,
      r: null,
      e: [{ m: "bench", k: key.slice(), v: value.slice(), at: stamp }],
      w: 2951,
      o: "client",
      ak: ["b"],
    }],
  },
  InvokeResponse: { t: Kind.InvokeResponse, c: callId, a: 1, s: "ok", r: null },
  InvokeBackupAnswer: { t: Kind.InvokeBackupAnswer, pr: "b", cs: [callId], rs: [null] },
  MapBackupAck: { t: Kind.MapBackupAck, items: [{ p: 188, e: 8592031744, s: 7 }] },
};

/** Best CPU µs per item of `rounds` runs of `fn` over `n` items. */
function best(n: number, fn: () => void, rounds = 5): number {
  let min = Infinity;
  for (let r = 0; r < rounds; r++) {
    const t0 = performance.now();
    fn();
    min = Math.min(min, (performance.now() - t0) * 1000 / n);
  }
  return min;
}

const rows: string[] = [];
let sink = 0;
// Each kind alone, then the five in turn (the shapes a member meets, so property reads are not of one shape).
const cases: Array<[string, Message[]]> = Object.entries(samples).map(([name, msg]) => [name, [msg]]);
cases.push(["all five mixed", Object.values(samples)]);
for (const [name, list] of cases) {
  const msg = list[0];
  const enc = best(N, () => {
    for (let i = 0; i < N; i++) sink += encodeValue(list[i % list.length]).byteLength;
  });
  const encGeneric = best(N, () => {
    for (let i = 0; i < N; i++) sink += encodeValueGeneric(list[i % list.length]).byteLength;
  });
  const frame = frameOf(Array.from({ length: BATCH }, (_, i) => encodeValue(list[i % list.length])));
  const frames = Math.max(1, Math.floor(N / BATCH));
  if (!decodeFrame(frame).ok || decodeFrame(frame).msgs.length !== BATCH) throw new Error(`${name}: bad frame`);
  const fast = best(frames * BATCH, () => {
    for (let i = 0; i < frames; i++) sink += decodeFrame(frame).msgs.length;
  });
  const generic = best(frames * BATCH, () => {
    for (let i = 0; i < frames; i++) sink += decodeFrameGeneric(frame).msgs.length;
  });
  rows.push(
    `| ${name.padEnd(15)} | ${String(list.length > 1 ? "-" : encodeValue(msg).byteLength).padStart(5)} B | ${
      encGeneric.toFixed(2)
    } µs | ` +
      `${enc.toFixed(2)} µs | ` +
      `${generic.toFixed(2)} µs | ${fast.toFixed(2)} µs |`,
  );
}
console.log(`codec per hot message (${runtimeVersion()}; ${N} messages, ${BATCH} per frame, best of 5)`);
console.log(
  "| message         |    size | encode: cbor-x | encode: fast | decode+validate: cbor-x | decode+validate: fast |",
);
for (const r of rows) console.log(r);
if (sink < 0) console.log(sink);
