/**
 * `mod.ts signal --max-sockets-per-ip N` parsed N with Number(), so hex, exponent and fractional
 * spellings ("0x10", "1e3", "5.0") were accepted silently as 16, 1000 and 5, where every int flag
 * of `node` refuses anything but decimal digits with exit code 2 (found by an internal review).
 * The signal command now uses the node command's flag parser.
 */
import { afterAll, describe, expect, test } from "bun:test";
import { killAll, spawnMod } from "./support/cluster.ts";

afterAll(killAll);

/** Exit code of `signal …args`, or "ready" when it started serving instead. */
async function outcome(args: string[]): Promise<number | "ready"> {
  const p = spawnMod("bun", ["signal", "--http", "127.0.0.1:0", "--log-level", "silent", ...args]);
  const r = await Promise.race([p.ready.then(() => "ready" as const, () => undefined), p.child.exited]);
  if (r === "ready") {
    p.child.kill("SIGTERM");
    await p.child.exited;
    return "ready";
  }
  return (await p.child.exited) ?? -1;
}

describe("signal --max-sockets-per-ip takes a decimal whole number only", () => {
  for (const v of ["0x10", "1e3", "5.0"]) {
    test(`"${v}" is a usage error (exit 2), as it is for the node command's int flags`, async () => {
      expect(await outcome(["--max-sockets-per-ip", v])).toBe(2);
    }, 30_000);
  }
});
