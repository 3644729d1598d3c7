/**
 * README "Running nodes": with no secret given a node "also prints the command line that starts a
 * second member". That command carried only --cluster, not the cluster-wide settings a joiner
 * must share (--partition-count, --backup-count, --async-backup-count, --merge-policy,
 * --min-cluster-size, --map; src/cluster/join_settings.ts), so for a first member started with
 * any of them the printed command was refused (found by an internal review).
 */
import { afterAll, describe, expect, test } from "bun:test";
import { joinCommand } from "../src/cli/node_command.ts";
import { parseNodeArgs } from "../src/cli/node_args.ts";
import type { ChildHandle } from "../src/runtime/spawn.ts";
import { killAll, spawnMod } from "./support/cluster.ts";

afterAll(killAll);

async function exitOf(p: ChildHandle, timeoutMs: number): Promise<number | "timeout"> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const r = await Promise.race([
    p.exited,
    new Promise<"timeout">((res) => (timer = setTimeout(() => res("timeout"), timeoutMs))),
  ]);
  clearTimeout(timer);
  return r;
}

describe("the printed join command", () => {
  test("carries the cluster-wide settings of the first member (pure)", () => {
    const args = [
      "--partition-count",
      "31",
      "--backup-count",
      "2",
      "--merge-policy",
      "discard",
      "--min-cluster-size",
      "2",
    ];
    const parsed = parseNodeArgs(args, {});
    if (!("options" in parsed)) throw new Error(JSON.stringify(parsed));
    const options = { ...parsed.options, secret: "generated" };
    const hint = joinCommand("bun run mod.ts", options, "http://127.0.0.1:40001");
    expect(hint).toContain("--partition-count 31");
    expect(hint).toContain("--backup-count 2");
    expect(hint).toContain("--merge-policy discard");
    expect(hint).toContain("--min-cluster-size 2");
  });

  test("its --map values parse back to the first member's map settings (pure)", () => {
    const parsed = parseNodeArgs(["--map", "sessions*:ttlMs=60000,eviction=lru", "--map", "c:maxSizePerMember=5"], {});
    if (!("options" in parsed)) throw new Error(JSON.stringify(parsed));
    const hint = joinCommand("bun run mod.ts", { ...parsed.options, secret: "s" }, "http://127.0.0.1:1");
    // The shell's view of the line: words, single quotes removed.
    const words = [...hint.matchAll(/'([^']*)'|(\S+)/g)].map((m) => m[1] ?? m[2]);
    const back = parseNodeArgs(words.slice(words.indexOf("node") + 1), {});
    if (!("options" in back)) throw new Error(JSON.stringify(back));
    expect(back.options.maps).toEqual(parsed.options.maps);
  });

  test("run as printed, it joins a first member started with --partition-count 31 (real processes)", async () => {
    const a = spawnMod("bun", ["--name", "a", "--http", "127.0.0.1:0", "--partition-count", "31"], {
      SHOAL_SECRET: "",
      SHOAL_LOG_LEVEL: "warn",
    });
    const ready = await a.ready;
    const m = /^SHOAL_SECRET=(\S+) .*? node (.*)$/.exec(ready.join);
    expect(m).not.toBeNull();
    const b = spawnMod("bun", m![2].split(" ").concat(["--name", "b"]), {
      SHOAL_SECRET: m![1],
      SHOAL_LOG_LEVEL: "warn",
    });
    const outcome = await b.ready.then(
      () => "ready",
      () => `exited: ${b.stderr().split("\n").filter((l) => l.startsWith("error")).join(" ")}`,
    );
    expect(outcome).toBe("ready");
    b.child.kill("SIGTERM");
    a.child.kill("SIGTERM");
    await exitOf(b.child, 30_000);
    await exitOf(a.child, 30_000);
  }, 90_000);
});
