/**
 * CPU per put and per get on the hot path, in one process over the MemoryNetwork with the real
 * clock (every message goes through the real frame codec and validation; links add no delay):
 * 3 data members and 1 lite member as the client, backupCount 1, 271 partitions, 100-byte values.
 * Since every member runs in this process, `process.cpuUsage()` over a phase is the CPU of all
 * members and the client summed. Under Bun the process restarts itself with the members' engine
 * settings first (src/runtime/tune.ts; `SHOAL_BUN_DEFAULTS=1` keeps Bun's defaults), so the figures
 * are those of the code as members run it: with Bun's defaults the FTL compiler and the GC's
 * warm-up thread took a quarter of this bench's CPU samples.
 *
 *   bun run bench/put_path.ts      |   deno run -A bench/put_path.ts
 *   bun run bench/put_path.ts --ops 30000 --runs 3 --in-flight 64
 *   bun run bench/put_path.ts --direct-acks off        # backups ack through the primary
 *   bun run bench/put_path.ts --in-flight 1 --delay-ms 0.5 --ops 2000   # latency, each hop delayed
 *   bun --cpu-prof run bench/put_path.ts --only put    # a profile of the put phase
 *
 * For each run: puts/s and gets/s with `--in-flight` callers (default 64) over 10,000 keys,
 * p50/p99 of each call, and CPU µs per op. Prints the median of `--runs` (default 3) runs and
 * the load average, and ends with one JSON line of the raw figures.
 */
import nodeProcess from "node:process";
import { args as processArgs, exit, runtimeVersion, writeStderrLine } from "../src/runtime/process.ts";
import { runtimeSettings, tuneRuntime } from "../src/runtime/tune.ts";
import { memoryGrids } from "./_memory_grid.ts";

// Before any timer or socket: under Bun this may replace the process (same PID) by one with the settings.
tuneRuntime(writeStderrLine);

const args = processArgs();
const arg = (name: string, def: string) => {
  const i = args.indexOf(name);
  return i >= 0 ? args[i + 1] : def;
};
const OPS = Number(arg("--ops", "30000"));
const RUNS = Number(arg("--runs", "3"));
const IN_FLIGHT = Number(arg("--in-flight", "64"));
const only = arg("--only", "");
/** Delay of every hop (ms), standing in for a process hop. */
const DELAY_MS = Number(arg("--delay-ms", "0"));
const directAcks = arg("--direct-acks", "default");
const map = directAcks === "default" ? undefined : { directBackupAcks: directAcks === "on" };

const loadavg = async (): Promise<string> => {
  try {
    const { readFileSync } = await import("node:fs");
    return readFileSync("/proc/loadavg", "utf8").split(" ").slice(0, 3).join(" ");
  } catch {
    return "?";
  }
};

const { grids, threeAndClient } = memoryGrids({ map, delayMs: DELAY_MS });
const client = await threeAndClient();
const imap = client.getMap<string, string>("bench");
const value = "x".repeat(100);
for (let i = 0; i < 2000; i++) await imap.set(`t${i % 10_000}`, value);

interface Phase {
  opsPerS: number;
  p50Us: number;
  p99Us: number;
  cpuUsPerOp: number;
}

async function phase(kind: "put" | "get"): Promise<Phase> {
  const lat = new Float64Array(OPS);
  let next = 0;
  const c0 = nodeProcess.cpuUsage();
  const t0 = performance.now();
  await Promise.all(Array.from({ length: IN_FLIGHT }, async () => {
    while (next < OPS) {
      const i = next++;
      const t = performance.now();
      if (kind === "put") await imap.set(`t${i % 10_000}`, value);
      else await imap.get(`t${i % 10_000}`);
      lat[i] = performance.now() - t;
    }
  }));
  const wallMs = performance.now() - t0;
  const c = nodeProcess.cpuUsage(c0);
  lat.sort();
  return {
    opsPerS: OPS / (wallMs / 1000),
    p50Us: lat[Math.floor(OPS * 0.5)] * 1000,
    p99Us: lat[Math.floor(OPS * 0.99)] * 1000,
    cpuUsPerOp: (c.user + c.system) / OPS,
  };
}

const median = (xs: number[]) => xs.slice().sort((a, b) => a - b)[Math.floor(xs.length / 2)];
const load0 = await loadavg();
const runs: Record<string, Phase[]> = { put: [], get: [] };
for (let r = 0; r < RUNS; r++) {
  for (const kind of ["put", "get"] as const) {
    if (only && only !== kind) continue;
    runs[kind].push(await phase(kind));
  }
}
const load1 = await loadavg();
const settings = runtimeSettings();
const engine = settings.length > 0 ? "the members' engine settings" : "the runtime's default engine settings";

console.log(
  `put path (${runtimeVersion()}; in-process MemoryNetwork, real codec, 3 data + 1 lite client, backup 1, ` +
    `100 B values, ${DELAY_MS} ms per hop, ${IN_FLIGHT} in flight, ${
      OPS.toLocaleString("en")
    } ops per run, median of ${RUNS}; ` +
    `direct backup acks ${directAcks}; ${engine}; load ${load0} → ${load1})`,
);
for (const kind of ["put", "get"] as const) {
  const xs = runs[kind];
  if (xs.length === 0) continue;
  const m = (f: (p: Phase) => number) => median(xs.map(f));
  console.log(
    `  ${kind}: ${Math.round(m((p) => p.opsPerS)).toLocaleString("en")}/s  p50 ${m((p) => p.p50Us).toFixed(0)} µs  ` +
      `p99 ${m((p) => p.p99Us).toFixed(0)} µs  CPU ${m((p) => p.cpuUsPerOp).toFixed(1)} µs/op  ` +
      `(runs: ${xs.map((p) => Math.round(p.opsPerS)).join(", ")}/s)`,
  );
}
console.log(
  JSON.stringify({ runtime: runtimeVersion(), settings, load: [load0, load1], inFlight: IN_FLIGHT, ops: OPS, runs }),
);
for (const g of grids.values()) g.stop();
exit(0);
