/**
 * `mod.ts signal`: the ready line, --help, bad flags and a taken port, as a user sees them
 * (a real child process).
 */
import { afterAll, expect, test } from "bun:test";
import { parseHostPort } from "../src/cli/signal.ts";
import { type Proc, spawnScript } from "./support/cluster.ts";

const procs: Proc[] = [];
afterAll(async () => {
  for (const p of procs) p.kill("SIGKILL");
  await Promise.all(procs.map((p) => p.exited));
});

test("parseHostPort accepts HOST:PORT and [v6]:PORT only", () => {
  expect(parseHostPort("127.0.0.1:0")).toEqual({ hostname: "127.0.0.1", port: 0 });
  expect(parseHostPort("[::1]:7000")).toEqual({ hostname: "::1", port: 7000 });
  for (const bad of ["127.0.0.1", ":80", "h:99999", "h:x", ""]) expect(() => parseHostPort(bad)).toThrow(RangeError);
});

test("signal prints a ready line, refuses a taken port and bad flags, and stops on SIGTERM", async () => {
  const s = spawnScript("signal", "bun", "mod.ts", ["signal", "--http", "127.0.0.1:0"]);
  procs.push(s);
  const ready = await s.waitFor((e) => e.event === "ready", "ready line");
  const url = String(ready.url);
  expect(await (await fetch(`${url}/signal/stats`)).json()).toMatchObject({ sockets: 0, relayedTotal: 0 });
  const port = new URL(url).port;

  const taken = spawnScript("taken", "bun", "mod.ts", ["signal", "--http", `127.0.0.1:${port}`]);
  procs.push(taken);
  expect(await taken.exited).toBe(1);
  expect(taken.stderr).toContain("already in use");

  const bad = spawnScript("bad", "bun", "mod.ts", ["signal", "--http", "nowhere"]);
  procs.push(bad);
  expect(await bad.exited).toBe(2);
  expect(bad.stderr).toContain("expected HOST:PORT");

  const unknown = spawnScript("unknown", "bun", "mod.ts", ["signal", "--bogus"]);
  procs.push(unknown);
  expect(await unknown.exited).toBe(2);
  expect(unknown.stderr).toContain('Unknown flag "--bogus"');

  const help = spawnScript("help", "bun", "mod.ts", ["signal", "--help"]);
  procs.push(help);
  expect(await help.exited).toBe(0);

  s.kill("SIGTERM");
  expect(await s.exited).toBe(0);
}, 60_000);
