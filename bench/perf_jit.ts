/**
 * Where Bun processes spend their CPU, from `perf` (issue 16). Bun's `--cpu-prof` samples the
 * main thread at wall-clock intervals: time a process spends preempted inside a UDP send, or in
 * native code reached from no JavaScript frame, is counted against whatever JavaScript frame the
 * sampler last saw (bench/RESULTS.md, "True CPU per put"). `perf record` samples CPU time on
 * every thread; with JavaScriptCore's JIT dumps turned into perf's symbol maps, its stacks name the
 * JavaScript functions, so CPU can be split between Shoal's code, werift's and the runtime's.
 *
 * Steps (root, `perf` installed; the bench and the members inherit the two variables):
 *
 *   mkdir -p /tmp/jd && cd /tmp/jd
 *   BUN_JSC_useJITDump=1 BUN_JSC_jitDumpDirectory=/tmp/jd bun run bench/put_processes.ts --seconds 30 &
 *   perf record -F 1999 -a -g -o /tmp/jd/perf.data -- sleep 12        # during the put phase
 *   bun run bench/perf_jit.ts maps /tmp/jd                             # writes /tmp/perf-<pid>.map
 *   perf script -i /tmp/jd/perf.data -F comm,pid,tid,ip,sym,dso > /tmp/jd/script.txt
 *   bun run bench/perf_jit.ts buckets /tmp/jd/script.txt --pids 101,102,103 [--top 40] [--within "werift send"]
 *
 * `maps` reads every `jit-*.dump` of the directory (perf's jitdump format) and writes, per process,
 * the perf map of its latest dump (a Bun member restarts itself with `execve` once, keeping its
 * PID: the dump from before the restart names code that no longer exists). `buckets` reads the
 * stacks of the processes given (their main threads, and their other threads by name) and prints
 * the share of samples in each part of the path, then the functions the most samples stop in
 * (`--within`: of the buckets whose name starts so; shares stay of all the samples counted).
 */
import { readdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { args, exit, writeStderrLine } from "../src/runtime/process.ts";

const JITDUMP_MAGIC = 0x4a695444;
const JIT_CODE_LOAD = 0;

/** One jitdump file's code-load records. */
export interface JitDump {
  pid: number;
  /** The header's timestamp (the dump's start). */
  time: bigint;
  /** `start size name` lines of a perf map, addresses and sizes in hex. */
  lines: string[];
}

/**
 * Parses a jitdump file (tools/perf/Documentation/jitdump-specification.txt): a 40-byte header,
 * then records of `id`, `total_size`, `timestamp`; a code load carries `pid`, `tid`, `vma`,
 * `code_addr`, `code_size`, `code_index` and a NUL-terminated name before the code bytes.
 * @throws Error when the magic number is not a little-endian jitdump's
 */
export function parseJitDump(buf: Uint8Array): JitDump {
  const dv = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
  if (buf.byteLength < 40 || dv.getUint32(0, true) !== JITDUMP_MAGIC) throw new Error("not a jitdump file");
  const headerSize = dv.getUint32(8, true);
  const pid = dv.getUint32(20, true);
  const time = dv.getBigUint64(24, true);
  const lines: string[] = [];
  const decoder = new TextDecoder();
  let off = headerSize;
  while (off + 16 <= buf.byteLength) {
    const id = dv.getUint32(off, true), size = dv.getUint32(off + 4, true);
    if (size < 16 || off + size > buf.byteLength) break; // a record cut short by a process killed mid-write
    if (id === JIT_CODE_LOAD && size >= 56) {
      const addr = dv.getBigUint64(off + 32, true), codeSize = dv.getBigUint64(off + 40, true);
      let end = off + 56;
      while (end < off + size && buf[end] !== 0) end++;
      const name = decoder.decode(buf.subarray(off + 56, end)).replaceAll("\n", " ");
      lines.push(`${addr.toString(16)} ${codeSize.toString(16)} ${name}`);
    }
    off += size;
  }
  return { pid, time, lines };
}

/** One sampled stack of `perf script -F comm,pid,tid,ip,sym,dso`, leaf first. */
interface Stack {
  comm: string;
  pid: number;
  frames: { name: string; kind: "js" | "kernel" | "native" | "libc" | "other" }[];
}

function frameOf(line: string): Stack["frames"][number] {
  // "\t    7f2a0ee7ddf7 JSC-DFG: writeString#Bi3d0t (/tmp/perf-24286.map)"
  const m = /^\s*[0-9a-f]+ (.*) \((.*)\)$/.exec(line);
  const sym = m ? m[1] : line.trim(), dso = m ? m[2] : "";
  const js = /^JSC-(FTL|DFG|Baseline|LLInt): (.*?)(#[A-Za-z0-9]+)?$/.exec(sym);
  if (js) return { name: js[2] || "(anonymous)", kind: "js" };
  if (dso.includes("kallsyms")) return { name: sym, kind: "kernel" };
  if (dso.includes("libc")) return { name: sym, kind: "libc" };
  if (dso.endsWith("bun.exe") || dso.endsWith("/bun")) return { name: sym, kind: "native" };
  return { name: sym, kind: "other" };
}

function* stacksOf(text: string): Iterable<Stack> {
  let cur: Stack | null = null;
  for (const line of text.split("\n")) {
    if (line === "") {
      if (cur) yield cur;
      cur = null;
    } else if (!/^\s/.test(line)) {
      // "bun.exe 24286/24286 " (the command may contain spaces: the pid/tid field is the last)
      const m = /^(.*?)\s+(\d+)\/(\d+)\s*$/.exec(line);
      cur = m ? { comm: m[1], pid: Number(m[2]), frames: [] } : null;
    } else if (cur) cur.frames.push(frameOf(line));
  }
  if (cur) yield cur;
}

/** The part of the put path a main-thread sample belongs to: the first rule whose function is on its stack. */
const BUCKETS: Array<[string, (names: Set<string>, s: Stack) => boolean]> = [
  [
    "werift send path: SCTP packet, DTLS record, UDP send (with the kernel's loopback delivery)",
    (n) => n.has("transmitOnce") || n.has("transmit") || n.has("sendSack"),
  ],
  ["werift DTLS decryption", (n) => n.has("decrypt") || n.has("Decipheriv2")],
  ["Shoal: frame decode and validation, the map's and invoker's handling, replies queued", (n) => n.has("onFrame")],
  [
    "werift receive path: UDP callback, DTLS record, SCTP parse, SACK processing",
    (n) => n.has("handleData") || n.has("udpOnMessage") || n.has("datagramReceived"),
  ],
  [
    "kernel, no JavaScript on the stack: event-loop wait, receive, page faults, scheduling",
    (_n, s) => s.frames[0]?.kind === "kernel",
  ],
  ["JavaScript elsewhere: ticks, timers, membership, metrics", (_n, s) => s.frames.some((f) => f.kind === "js")],
  ["runtime native code, no JavaScript frame found: event loop, GC, microtasks, crypto", () => true],
];

/** Samples per bucket and per place they stop in, over the given processes' stacks. */
export interface BucketCounts {
  total: number;
  /** Bucket (a part of the path, or another thread by name) → samples. */
  byBucket: Map<string, number>;
  /** Main threads: "<kind of the code running> under <nearest JavaScript function>" → samples. */
  leaves: Map<string, number>;
}

/**
 * Splits the samples of `pids` in the output of `perf script -F comm,pid,tid,ip,sym,dso`.
 * @param text the script's output (stacks leaf first, separated by blank lines)
 * @param within only the main threads' samples of the buckets whose name starts so (all when empty)
 */
export function bucketCounts(text: string, pids: ReadonlySet<number>, within = ""): BucketCounts {
  const byBucket = new Map<string, number>();
  const leaves = new Map<string, number>();
  let total = 0;
  for (const s of stacksOf(text)) {
    if (!pids.has(s.pid)) continue;
    total++;
    const main = s.comm === "bun.exe" || s.comm === "bun";
    let bucket: string;
    if (!main) {
      if (within !== "") continue;
      bucket = `other thread: ${s.comm}`;
    } else {
      const names = new Set(s.frames.filter((f) => f.kind === "js").map((f) => f.name));
      bucket = BUCKETS.find(([, test]) => test(names, s))![0];
      if (!bucket.startsWith(within)) continue;
      const leafJs = s.frames.find((f) => f.kind === "js")?.name ?? "(no JS frame)";
      const leaf = `${s.frames[0]?.kind ?? "?"} under ${leafJs}`;
      leaves.set(leaf, (leaves.get(leaf) ?? 0) + 1);
    }
    byBucket.set(bucket, (byBucket.get(bucket) ?? 0) + 1);
  }
  return { total, byBucket, leaves };
}

function buckets(path: string, pids: Set<number>, top: number, within: string): void {
  const { total, byBucket, leaves } = bucketCounts(readFileSync(path, "utf8"), pids, within);
  const pct = (n: number) => `${(100 * n / Math.max(1, total)).toFixed(1).padStart(5)} %`;
  console.log(`${total} samples of processes ${[...pids].join(", ")}`);
  for (const [b, n] of [...byBucket].sort((x, y) => y[1] - x[1])) console.log(`${pct(n)}  ${b}`);
  console.log(`\nmain threads: where the samples stop (the code running, and the nearest JavaScript function)`);
  for (const [l, n] of [...leaves].sort((x, y) => y[1] - x[1]).slice(0, top)) console.log(`${pct(n)}  ${l}`);
}

function maps(dir: string): void {
  const latest = new Map<number, JitDump>();
  for (const f of readdirSync(dir)) {
    if (!/^jit-.*\.dump$/.test(f)) continue;
    const d = parseJitDump(readFileSync(join(dir, f)));
    const had = latest.get(d.pid);
    if (!had || d.time > had.time) latest.set(d.pid, d);
  }
  for (const d of latest.values()) {
    const out = `/tmp/perf-${d.pid}.map`;
    writeFileSync(out, d.lines.join("\n") + "\n");
    console.log(`${out}: ${d.lines.length} symbols`);
  }
}

if (import.meta.main) {
  const argv = args();
  const flag = (name: string, def: string) => {
    const i = argv.indexOf(`--${name}`);
    return i >= 0 && i + 1 < argv.length ? argv[i + 1] : def;
  };
  if (argv[0] === "maps" && argv[1]) maps(argv[1]);
  else if (argv[0] === "buckets" && argv[1]) {
    const pids = new Set(flag("pids", "").split(",").filter((s) => s !== "").map(Number));
    if (pids.size === 0) {
      writeStderrLine("buckets needs --pids (the member pids put_processes.ts prints)");
      exit(2);
    }
    buckets(argv[1], pids, Number(flag("top", "40")), flag("within", ""));
  } else {
    writeStderrLine("usage: perf_jit.ts maps DIR | buckets SCRIPT --pids a,b,c [--top 40] [--within PREFIX]");
    exit(2);
  }
}
