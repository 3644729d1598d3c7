/**
 * CPU per write applied to a partition copy (issue 16), the map layer's share of a put on the
 * primary and on each backup without the network: `PartitionData.applyEntry` of writes as a
 * backup decodes them (key and value views into one received frame, a call id and the client's
 * watermark), 100-byte values over `--keys` (10,000) keys spread on 271 partitions, so the
 * records, the digest, the dedupe records, the entry events and the write log all do their
 * usual work. The first pass fills the stores; then `--runs` (5) timed passes of `--writes`
 * (200,000) overwrites each. Prints CPU µs per write (median, and every run) and the load.
 *
 *   bun run bench/apply_path.ts      |   deno run -A bench/apply_path.ts
 *   bun run bench/apply_path.ts --src /path/to/other/checkout/src    # the same on other code
 *
 * A single-threaded loop: CPU per write hardly moves with the machine's load (unlike the
 * cluster benches), so before/after comparisons of the apply path are made with it.
 */
import nodeProcess from "node:process";
import { args, runtimeVersion } from "../src/runtime/process.ts";
import { flag, loadAverage, runBench } from "./_cluster.ts";
import type { LogEntry } from "../src/map/partition_data.ts";

const argv = args();
const WRITES = Number(flag(argv, "writes", "200000"));
const KEYS = Number(flag(argv, "keys", "10000"));
const RUNS = Number(flag(argv, "runs", "5"));
const SRC = flag(argv, "src", new URL("../src", import.meta.url).pathname);
const P = 271;

await runBench(async () => {
  const { PartitionData } = await import(`${SRC}/map/partition_data.ts`);
  const { callId } = await import(`${SRC}/invoke/call_id.ts`);
  const te = new TextEncoder();
  const parts = Array.from({ length: P }, (_, p) => new PartitionData(p));
  const client = "n1/0a0b0c0d";
  let call = 0;
  const value = te.encode("v".repeat(100));
  /** `n` writes as a backup decodes them: every 64 share one frame; [partition index, entry without its seq]. */
  const build = (n: number) => {
    const out: Array<[number, Omit<LogEntry, "seq">]> = [];
    let frame = new Uint8Array(0), at = 0;
    for (let i = 0; i < n; i++) {
      if (i % 64 === 0) (frame = new Uint8Array(64 * 128), at = 0);
      const kb = te.encode(`k${(i * 7919) % KEYS}`);
      frame.set(kb, at);
      const k = frame.subarray(at, at + kb.length);
      at += kb.length;
      frame.set(value, at);
      const v = frame.subarray(at, at + value.length);
      at += value.length;
      const seq = ++call;
      out.push([(i * 7919) % KEYS % P, {
        c: callId(client, seq),
        w: Math.max(0, seq - 64),
        r: null,
        e: [{ m: "m", k, v, at: seq }],
      }]);
    }
    return out;
  };
  /** Applies `writes` (only this is timed): µs of CPU per write. */
  const apply = (writes: Array<[number, Omit<LogEntry, "seq">]>) => {
    const c0 = nodeProcess.cpuUsage();
    for (const [p, en] of writes) {
      const d = parts[p];
      (en as LogEntry).seq = d.seq + 1;
      d.applyEntry(en as LogEntry);
    }
    const c = nodeProcess.cpuUsage(c0);
    return (c.user + c.system) / writes.length;
  };
  apply(build(KEYS * 2));
  const runs: number[] = [];
  const load = loadAverage();
  for (let r = 0; r < RUNS; r++) runs.push(apply(build(WRITES)));
  const sorted = [...runs].sort((a, b) => a - b);
  const median = sorted[Math.floor(sorted.length / 2)];
  console.log(
    `apply path (${runtimeVersion()}; ${SRC}): ${median.toFixed(2)} µs CPU per write (runs: ${
      runs.map((x) => x.toFixed(2)).join(", ")
    }); load ${load} → ${loadAverage()}`,
  );
  console.log(JSON.stringify({ bench: "apply_path", runtime: runtimeVersion(), src: SRC, runs, median }));
});
