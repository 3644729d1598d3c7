/**
 * The real `demo` command under Bun: `bun run mod.ts demo` starts a signaling server and
 * three member processes, kills the master mid-job and checks the output itself. Here we
 * check that it exits 0, narrates the failover, leaves no process behind, and that
 * Ctrl-C stops it with every child killed.
 */
import { afterAll, describe, expect, test } from "bun:test";
import type { Subprocess } from "bun";
import { demoCommand } from "../src/cli/demo.ts";
import { main } from "../src/cli/main.ts";

const root = new URL("..", import.meta.url).pathname;
const started: Subprocess[] = [];

afterAll(() => {
  for (const p of started) if (p.exitCode === null && p.signalCode === null) p.kill(9);
});

function startDemo(args: string[] = []) {
  const proc = Bun.spawn(["bun", "run", "mod.ts", "demo", ...args], {
    cwd: root,
    stdin: "ignore",
    stdout: "pipe",
    stderr: "pipe",
  });
  started.push(proc);
  const out = { stdout: "", stderr: "" };
  const lines: Array<(s: string) => void> = [];
  const pump = async (stream: ReadableStream<Uint8Array>, key: "stdout" | "stderr") => {
    const dec = new TextDecoder();
    for await (const chunk of stream) {
      out[key] += dec.decode(chunk, { stream: true });
      if (key === "stdout") { for (const l of lines) l(out.stdout); }
    }
  };
  const done = Promise.all([pump(proc.stdout, "stdout"), pump(proc.stderr, "stderr")]).then(() => proc.exited);
  /** Resolves once stdout matches `re`. */
  const waitFor = (re: RegExp, timeoutMs: number) =>
    new Promise<RegExpMatchArray>((resolve, reject) => {
      const timer = setTimeout(
        () => reject(new Error(`no ${re} in demo output within ${timeoutMs} ms:\n${out.stdout}\n${out.stderr}`)),
        timeoutMs,
      );
      const check = (s: string) => {
        const m = s.match(re);
        if (m) {
          clearTimeout(timer);
          resolve(m);
        }
      };
      lines.push(check);
      check(out.stdout);
    });
  return { proc, out, done, waitFor };
}

/** Command lines of running processes that contain `needle`. */
async function processesWith(needle: string): Promise<string[]> {
  const ps = Bun.spawn(["ps", "-eo", "pid,args"], { stdout: "pipe" });
  const text = await new Response(ps.stdout).text();
  return text.split("\n").filter((l) => l.includes(needle) && !l.includes("ps -eo"));
}

describe("demo command", () => {
  test("--help prints the usage and exits 0; bad flags exit 2", async () => {
    const logged: string[] = [];
    const orig = console.log;
    const origErr = console.error;
    console.log = (s: unknown) => logged.push(String(s));
    console.error = (s: unknown) => logged.push(String(s));
    try {
      expect(await demoCommand.run(["--help"])).toBe(0);
      expect(logged.join("\n")).toContain("Usage: mod.ts demo");
      expect(await demoCommand.run(["--records", "ten"])).toBe(2);
      expect(await demoCommand.run(["--bogus"])).toBe(2);
      expect(await demoCommand.run(["extra"])).toBe(2);
      logged.length = 0;
      expect(await main(["--help"])).toBe(0);
      expect(logged.join("\n")).toMatch(/demo\s+run the failover demo/);
    } finally {
      console.log = orig;
      console.error = origErr;
    }
  });

  test(
    "bun run mod.ts demo: master killed mid-job, failover narrated, exact output, exit 0, no process left",
    async () => {
      const demo = startDemo();
      const code = await demo.done;
      const { stdout, stderr } = demo.out;
      if (code !== 0) console.error(stdout, stderr);
      expect(code).toBe(0);
      expect(stdout).toContain("Shoal demo on bun");
      expect(stdout).toMatch(/cluster formed: 3 members, master demo-1/);
      expect(stdout).toMatch(/dashboard: http:\/\/127\.0\.0\.1:\d+\//);
      expect(stdout).toMatch(/loaded 1,000 entries into map "inventory"/);
      expect(stdout).toMatch(/kill -9 demo-1 \(the master, pid \d+\)/);
      expect(stdout).toMatch(/new master: demo-[23], [\d,]+ ms after the kill/);
      expect(stdout).toMatch(/\d+ partitions had their primary on demo-1: \d+ backups promoted to primary/);
      expect(stdout).toMatch(/replicasMissing .*is 0 .* after the kill/);
      expect(stdout).toMatch(/job FINISHED/);
      expect(stdout).toContain('verified: map "out" holds exactly 6,000 records, each with the right value');
      expect(stdout).toContain('verified: map "inventory" still holds its 1,000 entries, all intact');
      expect(stdout).toMatch(/all checks passed/);
      // Narration comes in order.
      const order = ["dashboard:", "kill -9", "new master:", "job FINISHED", 'verified: map "out"', "all checks passed"]
        .map((s) => stdout.indexOf(s));
      expect(order).toEqual([...order].sort((a, b) => a - b));
      // Every child is gone: no member still runs with the demo's join URL, the signaling server is closed.
      const signalUrl = stdout.match(/signaling server listening on (http:\/\/[\d.:]+)/)![1];
      expect(await processesWith(`--join ${signalUrl}`)).toEqual([]);
      expect(await fetch(signalUrl + "/", { signal: AbortSignal.timeout(2_000) }).then(() => "open", () => "closed"))
        .toBe("closed");
    },
    240_000,
  );

  test("Ctrl-C stops the demo and kills every child", async () => {
    const demo = startDemo();
    const m = await demo.waitFor(/signaling server listening on (http:\/\/[\d.:]+)[\s\S]*member demo-1 \(/, 120_000);
    const signalUrl = m[1];
    expect((await processesWith(`--join ${signalUrl}`)).length).toBeGreaterThan(0);
    demo.proc.kill("SIGINT");
    const code = await demo.done;
    expect(code).toBe(130);
    expect(demo.out.stderr).toContain("SIGINT: stopping the demo's processes");
    expect(await processesWith(`--join ${signalUrl}`)).toEqual([]);
    expect(await fetch(signalUrl + "/", { signal: AbortSignal.timeout(2_000) }).then(() => "open", () => "closed"))
      .toBe("closed");
  }, 180_000);
});
