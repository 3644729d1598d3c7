/**
 * The `node` command as people run it: separate processes, real HTTP, real join.
 * Needs `startNode` from src/node.ts; until that exists these tests are skipped with a
 * message saying so.
 */
import { afterAll, describe, expect, test } from "bun:test";
import { existsSync } from "node:fs";
import type { ChildHandle } from "../src/runtime/spawn.ts";
import { killAll, type ModProcess, root, spawnMod } from "./support/cluster.ts";
import { until } from "./support/until.ts";

const hasNode = existsSync(`${root}/src/node.ts`);
if (!hasNode) console.warn("SKIPPED node command process tests: src/node.ts (startNode) does not exist yet");

/** Starts `mod.ts …args` under Bun with no secret from the environment and logs at warn. */
const start = (args: string[], env: Record<string, string> = {}): ModProcess =>
  spawnMod("bun", args, { SHOAL_SECRET: "", SHOAL_LOG_LEVEL: "warn", ...env });

async function exitOf(p: ChildHandle, timeoutMs = 30_000): Promise<number | "timeout"> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const r = await Promise.race([
    p.exited,
    new Promise<"timeout">((res) => (timer = setTimeout(() => res("timeout"), timeoutMs))),
  ]);
  clearTimeout(timer);
  return r;
}

afterAll(killAll);

describe.skipIf(!hasNode)("node command processes", () => {
  test(
    "embedded default: ready line, health, a second member joins with the printed command, SIGTERM exits 0",
    async () => {
      const a = start(["--name", "a", "--http", "127.0.0.1:0"]);
      const ready = await a.ready;
      expect(ready.event).toBe("ready");
      expect(typeof ready.member).toBe("string");
      expect(ready.http).toMatch(/^http:\/\/127\.0\.0\.1:\d+$/);
      expect(ready.join).toContain(`--join ${ready.http}`);
      const health = await fetch(`${ready.http}/health`);
      expect(health.status).toBe(200);
      expect((await health.json()).member).toBe(ready.member);

      // The printed join command: SHOAL_SECRET=… <launcher> mod.ts node --join URL --http 127.0.0.1:0
      const m = /^SHOAL_SECRET=(\S+) .*? node (.*)$/.exec(ready.join);
      expect(m).not.toBeNull();
      const b = start(m![2].split(" ").concat(["--name", "b"]), { SHOAL_SECRET: m![1] });
      const readyB = await b.ready;
      const members = await until(async () => {
        const c = await (await fetch(`${ready.http}/cluster`)).json();
        return c.members.length === 2 ? c.members : undefined;
      });
      expect(members.map((x: { id: string }) => x.id).sort()).toEqual([ready.member, readyB.member].sort());

      b.child.kill("SIGTERM");
      expect(await exitOf(b.child)).toBe(0);
      a.child.kill("SIGTERM");
      expect(await exitOf(a.child)).toBe(0);
    },
    90_000,
  );

  test("a taken port, a wrong secret and an unreachable join URL each exit non-zero with a clear message", async () => {
    const a = start(["--name", "a", "--http", "127.0.0.1:0", "--secret", "right-secret"]);
    const ready = await a.ready;
    const port = new URL(ready.http).port;

    const taken = start(["--http", `127.0.0.1:${port}`, "--secret", "x"]);
    const takenCode = await exitOf(taken.child);
    expect(takenCode).not.toBe(0);
    expect(taken.stderr()).toContain("already in use");

    const wrong = start(["--join", ready.http, "--http", "127.0.0.1:0"], { SHOAL_SECRET: "wrong-secret" });
    const wrongCode = await exitOf(wrong.child);
    expect(wrongCode).not.toBe(0);
    expect(wrongCode).not.toBe("timeout");
    expect(wrong.stderr()).toMatch(/error: .*secret/i);

    const unreachable = start(["--join", "http://127.0.0.1:1", "--http", "127.0.0.1:0"], { SHOAL_SECRET: "s" });
    const unreachableCode = await exitOf(unreachable.child);
    expect(unreachableCode).not.toBe(0);
    expect(unreachableCode).not.toBe("timeout");
    expect(unreachable.stderr()).toContain("error: ");

    a.child.kill("SIGTERM");
    expect(await exitOf(a.child)).toBe(0);
  }, 120_000);
});
