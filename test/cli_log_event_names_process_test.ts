/**
 * README "Log events": "Every `event` is a dotted name, `layer.subject.what`, so
 * `grep '"event":"map.'` picks one layer." The node command logged `shutdown-requested` and
 * `stopped`, and a member serving plain HTTP off loopback its security warning as
 * `http without tls`, so no layer filter found them (found by an internal review).
 */
import { afterAll, describe, expect, test } from "bun:test";
import { type NodeCommandDeps, runNodeCommand, type StopWaiter } from "../src/cli/node_command.ts";
import { killAll, spawnMod } from "./support/cluster.ts";
import { createTestNode } from "./support/test_node.ts";
import { until } from "./support/until.ts";

afterAll(killAll);

const dotted = /^[a-z][a-z0-9_]*(\.[a-z0-9_]+)+$/;

function eventsOf(lines: string[]): string[] {
  return lines.flatMap((l) => {
    try {
      const j = JSON.parse(l);
      return typeof j.event === "string" ? [j.event] : [];
    } catch {
      return [];
    }
  });
}

describe("log event names are dotted (layer.subject.what)", () => {
  test("the node command's shutdown events", async () => {
    const node = createTestNode({ httpUrl: "http://127.0.0.1:40001" });
    const errs: string[] = [];
    let signal!: (s: "SIGINT" | "SIGTERM") => void;
    const out: string[] = [];
    const deps: Partial<NodeCommandDeps> = {
      env: {},
      stdout: (l) => out.push(l),
      stderr: (l) => errs.push(l),
      start: () => Promise.resolve(node),
      waitForStop(): StopWaiter {
        return { stopped: new Promise((r) => (signal = r)), dispose: () => {} };
      },
      exit: () => {},
      randomSecret: () => "s",
      launcher: "bun run mod.ts",
      shutdownTimeoutMs: 1000,
    };
    const done = runNodeCommand(["--secret", "s"], deps);
    await until(() => out.length > 0, 2_000, "the ready line", 2);
    signal("SIGTERM");
    expect(await done).toBe(0);
    const events = eventsOf(errs);
    expect(events.length).toBeGreaterThan(0);
    expect(events.filter((e) => !dotted.test(e))).toEqual([]);
    expect(events).toContain("node.shutdown.requested");
  });

  test("the plain-HTTP-off-loopback warning (real process)", async () => {
    const a = spawnMod("bun", ["--http", "0.0.0.0:0", "--token", "t", "--secret", "s"], { SHOAL_LOG_LEVEL: "warn" });
    await a.ready;
    const events = eventsOf(a.stderr().split("\n"));
    expect(events.filter((e) => !dotted.test(e))).toEqual([]);
    a.child.kill("SIGTERM");
    await a.child.exited;
  }, 60_000);
});
