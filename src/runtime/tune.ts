/**
 * Runtime settings a member process starts with (issue 16).
 *
 * Under Bun, four defaults cost Shoal more than they give:
 * - JavaScriptCore's top JIT tier (FTL): its compiler threads keep ~10–20 % of a core per
 *   process busy through a steady load, and the message path runs no faster for it;
 * - the GC's warm-up thread (`JSCWarmUp`), which touches heap blocks ahead of use: ~5 % of the
 *   machine's samples under load, for no measured gain;
 * - mimalloc's purge delay of 100 ms: pages freed by one burst of packets are handed back to
 *   the system and faulted in again by the next (the `mi-scavenger` thread ~6 % of the
 *   machine's samples, page faults ~6 % of the main threads'). At 1 s they stay while reused;
 * - the executions a function needs before the baseline JIT (500) and the optimizing DFG
 *   (1,000, doubled on a machine with few cores) compile it: with the FTL off the DFG is the top
 *   tier, and a started member's message path ran in the lower tiers for its first thousands of
 *   puts (`bench/peers.ts`, 2,000 sequential puts after 200: p50 of the first 500 1.1–1.6 ms,
 *   of the last 500 0.74–1.03 ms). At 50 and 100, the sequential p50 fell from a median of
 *   0.99 ms to 0.76 ms over alternating runs, with the same puts/s and CPU per put under load;
 *   the cost is ~0.1–0.2 s more CPU while a member starts (more of its start-up code compiled).
 *
 * `bench/put_processes.ts` (Bun 1.4.5, 3 members and a client, 64 puts in flight; alternating
 * runs, 2026-12-06): defaults 5,222–6,025 puts/s at 238–269 µs of member CPU per put; FTL off
 * 7,031–8,522 puts/s at 164–196 µs; FTL and warm-up off 7,590–9,339 puts/s at 147–180 µs; all
 * three 9,205–10,369 puts/s at 133–147 µs. RSS per stored copy (`bench/memory.ts`, read 1 s
 * after a GC) 138 B with the defaults, 117–133 B with the settings.
 *
 * JavaScriptCore and mimalloc read their options once, at start, from `BUN_JSC_*` and
 * `MIMALLOC_*` variables. So `mod.ts`
 * under Bun calls {@link tuneRuntime} before it loads anything else: when a setting is missing
 * from the environment, the process replaces itself (`execve`: same PID, same descriptors, same
 * arguments) by one started with it. A setting already in the environment is left as it is,
 * and `SHOAL_BUN_DEFAULTS=1` keeps Bun's defaults. Deno, and an application that imports Shoal as a
 * library, are not restarted; such an application can set the same variables itself.
 */
import { bun, nodeProcess } from "./globals.ts";

/** The variables a Bun member process runs with, and their values. */
export const BUN_SETTINGS: Readonly<Record<string, string>> = Object.freeze({
  BUN_JSC_useFTLJIT: "0",
  BUN_JSC_useWarmUpMarkedBlocks: "0",
  MIMALLOC_PURGE_DELAY: "1000",
  BUN_JSC_thresholdForJITAfterWarmUp: "50",
  BUN_JSC_thresholdForOptimizeAfterWarmUp: "100",
  BUN_JSC_thresholdForOptimizeAfterLongWarmUp: "100",
  BUN_JSC_thresholdForOptimizeSoon: "100",
});

/** Set to `1` to keep Bun's defaults (no restart). */
export const KEEP_DEFAULTS_ENV = "SHOAL_BUN_DEFAULTS";

/**
 * The environment a Bun process should restart with, or undefined when it runs as it should.
 * @param env the current environment
 * @returns `env` plus each missing {@link BUN_SETTINGS} entry, or undefined when none is
 *   missing or `SHOAL_BUN_DEFAULTS=1`
 * @example
 * ```ts
 * bunRestartEnv({ PATH: "/bin" }); // { PATH: "/bin", ...BUN_SETTINGS }
 * bunRestartEnv({ SHOAL_BUN_DEFAULTS: "1" }); // undefined: keep Bun's defaults
 * ```
 */
export function bunRestartEnv(env: Readonly<Record<string, string | undefined>>): Record<string, string> | undefined {
  if (env[KEEP_DEFAULTS_ENV] === "1") return undefined;
  const missing = Object.entries(BUN_SETTINGS).filter(([name]) => env[name] === undefined);
  if (missing.length === 0) return undefined;
  const next: Record<string, string> = {};
  for (const [name, value] of Object.entries(env)) if (value !== undefined) next[name] = value;
  for (const [name, value] of missing) next[name] = value;
  return next;
}

/**
 * The {@link BUN_SETTINGS} entries this process runs with (for the ready line).
 * @returns e.g. `["BUN_JSC_useFTLJIT=0", …]`; empty under Deno
 */
export function runtimeSettings(): string[] {
  if (!bun || !nodeProcess) return [];
  const env = nodeProcess.env;
  return Object.keys(BUN_SETTINGS).filter((name) => env[name] !== undefined).map((name) => `${name}=${env[name]}`);
}

/**
 * Under Bun, restarts this process in place with the missing {@link BUN_SETTINGS}
 * (see the module's comment); elsewhere, or when nothing is missing, does nothing. Call it
 * first, before any socket or timer exists. A compiled executable (`bun build --compile`) is
 * not restarted, since its arguments cannot be given back as they came.
 * @param warn where a failed restart is reported (the process then goes on as it is)
 */
export function tuneRuntime(warn: (line: string) => void): void {
  const proc = nodeProcess;
  if (!bun || !proc || typeof proc.execve !== "function" || bun.main.startsWith("/$bunfs/")) return;
  const next = bunRestartEnv(proc.env);
  if (!next) return;
  try {
    proc.execve(proc.execPath, [proc.execPath, ...(proc.execArgv ?? []), ...proc.argv.slice(1)], next);
  } catch (err) {
    warn(`warning: could not restart with ${Object.keys(BUN_SETTINGS).join(", ")}: ${String(err)}`);
  }
}
