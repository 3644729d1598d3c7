import { describe, expect, test } from "bun:test";

// The card's own command: `deno run mod.ts …` typed with no permission flags, and the short
// forms the README documents. Help needs no permission; a command that does need one prints
// one line naming the flags, never a stack trace.
const root = `${import.meta.dir}/..`;

function run(cmd: string[]) {
  const p = Bun.spawnSync(cmd, { cwd: root, env: { ...process.env, NO_COLOR: "1", SHOAL_SECRET: "" } });
  return { code: p.exitCode, out: p.stdout.toString(), err: p.stderr.toString() };
}

/** Lines of a stack trace (`    at f (file:…)`), which a user must never see for a missing permission. */
const stackLine = /^\s+at\s/m;

describe("mod.ts under Deno without permission flags", () => {
  test("deno run mod.ts --help prints the usage and exits 0", () => {
    const r = run(["deno", "run", "mod.ts", "--help"]);
    expect(r.err).not.toMatch(stackLine);
    expect(r.err).not.toContain("NotCapable");
    expect(r.out).toContain("Usage:");
    expect(r.out).toContain("deno task");
    expect(r.code).toBe(0);
  });

  test.each([["node", "[node]"], ["signal", "signal"], ["demo", "demo"]])(
    "deno run mod.ts %s --help prints that command's flags",
    (command, usage) => {
      const r = run(["deno", "run", "mod.ts", command, "--help"]);
      expect(r.err).not.toMatch(stackLine);
      expect(r.out).toContain(`Usage: mod.ts ${usage}`);
      expect(r.code).toBe(0);
    },
  );

  test.each([
    [["node"], "deno task node", "--allow-env"],
    [["signal", "--http", "127.0.0.1:0"], "deno task signal", "--allow-net"],
    [["demo"], "deno task demo", "--allow-run"],
  ])("deno run mod.ts %p: one line naming the flags, no stack trace", (args, task, flag) => {
    const r = run(["deno", "run", "mod.ts", ...args]);
    expect(r.code).not.toBe(0);
    expect(r.err).not.toMatch(stackLine);
    const lines = r.err.trim().split("\n");
    expect(lines.length).toBe(1);
    expect(lines[0]).toContain(task);
    expect(lines[0]).toContain(flag);
  });
});

describe("the short forms the README documents", () => {
  test.each([
    [["deno", "run", "-P", "mod.ts", "--help"], "Usage:"],
    [["deno", "task", "node", "--help"], "Usage: mod.ts [node]"],
    [["deno", "task", "signal", "--help"], "Usage: mod.ts signal"],
    [["deno", "task", "demo", "--help"], "Usage: mod.ts demo"],
    [["bun", "run", "mod.ts", "--help"], "Usage:"],
  ])("%p prints help", (cmd, expected) => {
    const r = run(cmd);
    expect(r.err).not.toMatch(stackLine);
    expect(r.out).toContain(expected);
    expect(r.code).toBe(0);
  });

  test("deno run -P mod.ts starts a member that answers /health, and SIGTERM stops it", async () => {
    const p = Bun.spawn(["deno", "run", "-P", "mod.ts", "--http", "127.0.0.1:0", "--secret", "s"], {
      cwd: root,
      env: { ...process.env, NO_COLOR: "1" },
      stdout: "pipe",
      stderr: "pipe",
    });
    try {
      const reader = p.stdout.getReader();
      let text = "";
      while (!text.includes("\n")) {
        const { value, done } = await reader.read();
        if (done) break;
        text += new TextDecoder().decode(value);
      }
      const ready = JSON.parse(text.split("\n")[0]);
      expect(ready.event).toBe("ready");
      expect((await fetch(`${ready.http}/health`)).status).toBe(200);
      p.kill("SIGTERM");
      expect(await p.exited).toBe(0);
    } finally {
      p.kill("SIGKILL");
    }
  }, 60_000);
});
