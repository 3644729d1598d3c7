/**
 * A Bun member restarts itself in place with the JIT settings of src/runtime/tune.ts: the ready
 * line names them, the process that answers is the one that was started (kill -9 of its PID
 * stops the member), `SHOAL_BUN_DEFAULTS=1` keeps Bun's defaults, and a setting the user gave stays as given.
 */
import { afterAll, describe, expect, test } from "bun:test";
import { BUN_SETTINGS, bunRestartEnv } from "../src/runtime/tune.ts";
import { killAll, spawnMod } from "./support/cluster.ts";

afterAll(killAll);

describe("bunRestartEnv", () => {
  test("adds each missing setting and keeps the rest of the environment", () => {
    expect(bunRestartEnv({ PATH: "/bin", EMPTY: "", GONE: undefined })).toEqual({
      PATH: "/bin",
      EMPTY: "",
      ...BUN_SETTINGS,
    });
  });
  test("leaves a setting the user gave, and restarts for nothing then", () => {
    expect(bunRestartEnv({ ...BUN_SETTINGS, BUN_JSC_useFTLJIT: "1" })).toBeUndefined();
    expect(bunRestartEnv({ ...BUN_SETTINGS })).toBeUndefined();
    expect(bunRestartEnv({ BUN_JSC_useFTLJIT: "1" })).toEqual({ ...BUN_SETTINGS, BUN_JSC_useFTLJIT: "1" });
  });
  test("SHOAL_BUN_DEFAULTS=1 keeps the defaults; another value does not", () => {
    expect(bunRestartEnv({ SHOAL_BUN_DEFAULTS: "1" })).toBeUndefined();
    expect(bunRestartEnv({ SHOAL_BUN_DEFAULTS: "0" })).toEqual({ SHOAL_BUN_DEFAULTS: "0", ...BUN_SETTINGS });
  });
});

describe("a Bun member process", () => {
  test("runs with the settings under its own PID; SHOAL_BUN_DEFAULTS=1 and a user's value are kept", async () => {
    const args = (name: string) => ["node", "--name", name, "--http", "127.0.0.1:0", "--secret", "tune-secret"];
    const tuned = spawnMod("bun", args("tuned"));
    const kept = spawnMod("bun", args("kept"), { SHOAL_BUN_DEFAULTS: "1" });
    const own = spawnMod("bun", args("own"), { BUN_JSC_useFTLJIT: "1" });
    const [t, k, o] = await Promise.all([tuned.ready, kept.ready, own.ready]);
    expect(t.runtimeSettings as unknown).toEqual([
      "BUN_JSC_useFTLJIT=0",
      "BUN_JSC_useWarmUpMarkedBlocks=0",
      "MIMALLOC_PURGE_DELAY=1000",
      "BUN_JSC_thresholdForJITAfterWarmUp=50",
      "BUN_JSC_thresholdForOptimizeAfterWarmUp=100",
      "BUN_JSC_thresholdForOptimizeAfterLongWarmUp=100",
      "BUN_JSC_thresholdForOptimizeSoon=100",
    ]);
    expect(k.runtimeSettings).toBeUndefined();
    expect(o.runtimeSettings as unknown).toEqual([
      "BUN_JSC_useFTLJIT=1",
      "BUN_JSC_useWarmUpMarkedBlocks=0",
      "MIMALLOC_PURGE_DELAY=1000",
      "BUN_JSC_thresholdForJITAfterWarmUp=50",
      "BUN_JSC_thresholdForOptimizeAfterWarmUp=100",
      "BUN_JSC_thresholdForOptimizeAfterLongWarmUp=100",
      "BUN_JSC_thresholdForOptimizeSoon=100",
    ]);

    // The child started is the member: it still runs, and killing its PID takes the member down.
    expect(tuned.child.exitCode).toBeNull();
    const health = await fetch(`${t.http}/health`);
    await health.body?.cancel();
    expect(health.status).toBe(200);
    tuned.child.kill("SIGKILL");
    expect(await tuned.child.exited).toBe(137);
    const after = await fetch(`${t.http}/health`).then((r) => r.status, () => 0);
    expect(after).toBe(0);
    kept.child.kill("SIGKILL");
    own.child.kill("SIGKILL");
  }, 60_000);
});
