import { describe, expect, test } from "bun:test";
import { type NodeCommandDeps, runNodeCommand, type StopWaiter } from "../src/cli/node_command.ts";
import type { NodeOptions } from "../src/config.ts";
import { ShoalError } from "../src/core/errors.ts";
import { createTestNode } from "./support/test_node.ts";
import { until } from "./support/until.ts";

/** Captures output and lets the test send stop signals. */
function harness(start: NodeCommandDeps["start"], env: Record<string, string> = {}) {
  const out: string[] = [];
  const errs: string[] = [];
  const exits: number[] = [];
  let signal!: (s: "SIGINT" | "SIGTERM") => void;
  let force!: () => void;
  let disposed = false;
  const deps: Partial<NodeCommandDeps> = {
    env,
    stdout: (l) => out.push(l),
    stderr: (l) => errs.push(l),
    start,
    waitForStop(onForce): StopWaiter {
      force = onForce;
      return { stopped: new Promise((r) => (signal = r)), dispose: () => void (disposed = true) };
    },
    exit: (c) => void exits.push(c),
    randomSecret: () => "generated-secret",
    launcher: "bun run mod.ts",
    shutdownTimeoutMs: 200,
  };
  return {
    deps,
    out,
    errs,
    exits,
    signal: (s: "SIGINT" | "SIGTERM") => signal(s),
    force: () => force(),
    disposed: () => disposed,
  };
}

describe("node command run loop", () => {
  test("prints one ready JSON line, a join hint for a generated secret, and shuts down on SIGTERM", async () => {
    const node = createTestNode({ httpUrl: "http://127.0.0.1:40001" });
    let started: NodeOptions | undefined;
    const h = harness((o) => {
      started = o;
      return Promise.resolve(node);
    });
    const done = runNodeCommand(["--name", "a"], h.deps);
    await until(() => h.out.length > 0, 1_000, "a stdout line", 2);
    const readyLines = h.out.filter((l) => l.startsWith("{"));
    expect(readyLines.length).toBe(1);
    const ready = JSON.parse(readyLines[0]);
    expect(ready.event).toBe("ready");
    expect(ready.member).toBe(node.id);
    expect(ready.http).toBe("http://127.0.0.1:40001");
    expect(ready.master).toBe(node.id);
    expect(ready.join).toBe(
      "SHOAL_SECRET=generated-secret bun run mod.ts node --join http://127.0.0.1:40001 --http 127.0.0.1:0",
    );
    expect(h.out.join("\n")).toContain("To add a member, run:");
    expect(started?.secret).toBe("generated-secret");
    expect(node.shutdownCalls).toBe(0);
    h.signal("SIGTERM");
    expect(await done).toBe(0);
    expect(node.shutdownCalls).toBe(1);
    expect(h.disposed()).toBe(true);
  });

  test("a given secret is used as is and no join hint is printed", async () => {
    const node = createTestNode({ httpUrl: "http://127.0.0.1:40002" });
    let started: NodeOptions | undefined;
    const h = harness((o) => {
      started = o;
      return Promise.resolve(node);
    }, { SHOAL_SECRET: "mine" });
    const done = runNodeCommand(["--cluster", "c1"], h.deps);
    await until(() => h.out.length > 0, 1_000, "a stdout line", 2);
    expect(h.out.length).toBe(1);
    expect(JSON.parse(h.out[0]).join).toBeUndefined();
    expect(started).toMatchObject({ secret: "mine", cluster: "c1" });
    h.signal("SIGINT");
    expect(await done).toBe(0);
  });

  test("--join without a secret is a usage error", async () => {
    const h = harness(() => Promise.reject(new Error("must not start")));
    expect(await runNodeCommand(["--join", "http://127.0.0.1:1"], h.deps)).toBe(2);
    expect(h.errs.join("\n")).toContain("--join needs the cluster's secret");
  });

  test("bad flags exit 2 with the error on stderr; --help exits 0 on stdout", async () => {
    const h = harness(() => Promise.reject(new Error("must not start")));
    expect(await runNodeCommand(["--bogus"], h.deps)).toBe(2);
    expect(h.errs[0]).toContain('Unknown flag "--bogus"');
    expect(h.out.length).toBe(0);
    expect(await runNodeCommand(["--help"], h.deps)).toBe(0);
    expect(h.out[0]).toContain("--backup-count");
  });

  test("start failures give a clear message and exit 1", async () => {
    const cases: [unknown, string][] = [
      [
        Object.assign(new Error("Failed to start server. Is port 5701 in use?"), { code: "EADDRINUSE" }),
        "already in use",
      ],
      [Object.assign(new Error("Address already in use (os error 98)"), { name: "AddrInUse" }), "already in use"],
      [new ShoalError("AUTH_FAILED", "the member refused our proof of the secret"), "Check --secret"],
      [new ShoalError("UNREACHABLE", "connection refused"), "Cannot reach http://127.0.0.1:9"],
      [new Error("boom"), "Cannot start node: boom"],
    ];
    for (const [e, expected] of cases) {
      const h = harness(() => Promise.reject(e), { SHOAL_SECRET: "s" });
      expect(await runNodeCommand(["--join", "http://127.0.0.1:9"], h.deps)).toBe(1);
      expect(h.errs.join("\n")).toContain(expected);
      expect(h.out.length).toBe(0);
      expect(h.disposed()).toBe(true);
    }
  });

  test("a shutdown that does not finish in time exits 1", async () => {
    const node = createTestNode({ httpUrl: "http://127.0.0.1:40003" });
    node.shutdown = () => new Promise(() => {});
    const h = harness(() => Promise.resolve(node), { SHOAL_SECRET: "s" });
    const done = runNodeCommand([], h.deps);
    await until(() => h.out.length > 0, 1_000, "a stdout line", 2);
    h.signal("SIGTERM");
    expect(await done).toBe(1);
    expect(h.errs.join("\n")).toContain("Cannot shut down cleanly");
  });

  test("a second signal exits at once with 130", async () => {
    const node = createTestNode({ httpUrl: "http://127.0.0.1:40004" });
    node.shutdown = () => new Promise(() => {});
    const h = harness(() => Promise.resolve(node), { SHOAL_SECRET: "s" });
    void runNodeCommand([], h.deps);
    await until(() => h.out.length > 0, 1_000, "a stdout line", 2);
    h.signal("SIGINT");
    h.force();
    expect(h.exits).toEqual([130]);
  });
});

describe.each([["bun", "run"], ["deno", "run", "-A"]])("mod.ts entry (real process, %s)", (...launcher: string[]) => {
  const run = (args: string[]) => {
    const p = Bun.spawnSync([...launcher, "mod.ts", ...args], {
      cwd: `${import.meta.dir}/..`,
      env: { ...process.env, SHOAL_SECRET: "" },
    });
    return { code: p.exitCode, out: p.stdout.toString(), err: p.stderr.toString() };
  };

  test("a bad SHOAL_ variable exits 2 naming the variable", () => {
    const p = Bun.spawnSync([...launcher, "mod.ts"], {
      cwd: `${import.meta.dir}/..`,
      env: { ...process.env, SHOAL_SLOTS: "lots" },
    });
    expect(p.exitCode).toBe(2);
    expect(p.stderr.toString()).toContain('Invalid value "lots" for SHOAL_SLOTS');
  });

  test("an unknown flag exits 2 with a message", () => {
    const r = run(["--no-such-flag"]);
    expect(r.code).toBe(2);
    expect(r.err).toContain('Unknown flag "--no-such-flag"');
  });

  test("node --help exits 0 and lists the flags", () => {
    const r = run(["node", "--help"]);
    expect(r.code).toBe(0);
    expect(r.out).toContain("--join URL");
    expect(r.out).toContain("SHOAL_TOKEN");
  });
});
