/**
 * What an idle cluster costs per second (issue 16): 3 data member processes of this runtime
 * (backup 1, 271 partitions) and this process as a lite client, 2,000 warm-up puts of 100-byte
 * values, a short rest, then `--seconds` (20) with no calls. For each member and the client it
 * prints CPU ms/s (all threads, then the main thread, which runs the event loop, and the other
 * threads by name: JIT, GC, allocator) and main-thread context switches per second (each time
 * the event loop slept and was woken, or was preempted: the wake-ups of timers and packets).
 *
 *   bun run bench/idle.ts [--seconds 20] [--runs 1]
 *   deno run -A bench/idle.ts …
 *   bun run bench/idle.ts --member-flags "--cpu-prof --cpu-prof-md --cpu-prof-dir=/tmp/prof"
 *
 * `--member-flags` are given to the members' runtime (space-separated); the members are then
 * stopped with two SIGTERMs at the end, so a profile covers their whole life (formation and
 * warm-up included: use a long `--seconds`).
 * Nothing polls the members during the measured window (a `/metrics` scrape counts every map's
 * size through calls). Ends with one JSON line.
 */
import {
  contextSwitches,
  flag,
  loadAverage,
  processCpu,
  runBench,
  startBenchCluster,
  stopForProfiles,
  threadCpu,
} from "./_cluster.ts";
import { args, runtimeVersion } from "../src/runtime/process.ts";

const argv = args();
const SECONDS = Number(flag(argv, "seconds", "20"));
const RUNS = Number(flag(argv, "runs", "1"));
const MEMBER_FLAGS = flag(argv, "member-flags", "").split(" ").filter((s) => s !== "");

await runBench(async () => {
  const { members, client } = await startBenchCluster(`idle-${Date.now()}`, 100, { runtimeFlags: MEMBER_FLAGS });
  try {
    const map = client.getMap<string, string>("idle");
    for (let i = 0; i < 2000; i++) await map.set(`k${i % 1000}`, "v".repeat(100));
    await new Promise((r) => setTimeout(r, 3000));
    const pids = members.map((m) => m.child.pid);
    const results = [];
    for (let run = 0; run < RUNS; run++) {
      const load = loadAverage();
      const cpu0 = pids.map((p) => processCpu(p).cpuMs), self0 = processCpu("self").cpuMs;
      const th0 = pids.map(threadCpu), sw0 = [...pids, "self" as const].map(contextSwitches);
      const start = performance.now();
      await new Promise((r) => setTimeout(r, SECONDS * 1000));
      const s = (performance.now() - start) / 1000;
      const cpu = pids.map((p, i) => (processCpu(p).cpuMs - cpu0[i]) / s);
      const clientCpu = (processCpu("self").cpuMs - self0) / s;
      const threads = pids.map((p, i) => {
        const out: Record<string, number> = {};
        for (const [name, ms] of threadCpu(p)) out[name] = (ms - (th0[i].get(name) ?? 0)) / s;
        return out;
      });
      const wakes = [...pids, "self" as const].map(contextSwitches).map((x, i) => (x.main - sw0[i].main) / s);
      const r = {
        load,
        memberCpuMsPerS: cpu,
        clientCpuMsPerS: clientCpu,
        memberThreadsMsPerS: threads,
        mainSwitchesPerS: wakes,
      };
      results.push(r);
      const f = (x: number) => x.toFixed(1);
      console.log(
        `run ${run + 1}: CPU ms/s: members ${cpu.map(f).join(" + ")}, client ${f(clientCpu)}; members' main threads ${
          threads.map((t) => f(t.main ?? 0)).join(" + ")
        }; others: ${
          threads.map((t) =>
            Object.entries(t).filter(([n, v]) => n !== "main" && v >= 0.5).sort((a, b) => b[1] - a[1])
              .map(([n, v]) => `${n} ${f(v)}`).join(", ")
          ).join(" | ")
        }; main-thread context switches/s: members ${wakes.slice(0, -1).map(f).join(" + ")}, client ${
          f(wakes[wakes.length - 1])
        }; load ${load} → ${loadAverage()}`,
      );
    }
    console.log(JSON.stringify({ bench: "idle", runtime: runtimeVersion(), seconds: SECONDS, results }));
  } finally {
    await client.shutdown().catch(() => {});
    if (MEMBER_FLAGS.length > 0) await stopForProfiles(members);
  }
});
