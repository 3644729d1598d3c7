/**
 * Bun loads `.env` files of the working directory into the environment by itself; Deno does not.
 * So a `.env` holding SHOAL_* lines configured a Bun member but not a Deno member started the same
 * way from the same directory (a SHOAL_TOKEN there protected only the Bun member), silently (found
 * by an internal review). Both runtimes now warn with `node.dotenv.found`, naming the files and
 * variables and what this runtime did with them.
 */
import { afterAll, describe, expect, test } from "bun:test";
import { mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { dotenvSettings } from "../src/cli/node_command.ts";
import { type ChildHandle, spawnChild } from "../src/runtime/spawn.ts";
import { launcher, root } from "./support/cluster.ts";

const children: ChildHandle[] = [];
afterAll(() => children.forEach((c) => c.kill("SIGKILL")));

/** The ready line and the `node.dotenv.found` warning of a member started in `cwd`. */
function start(runtime: "bun" | "deno", cwd: string): Promise<{ ready: Record<string, unknown>; warning: unknown }> {
  return new Promise((resolve, reject) => {
    let ready: Record<string, unknown> | undefined;
    const child = spawnChild(
      [...launcher(runtime), `${root}/mod.ts`, "node", "--http", "127.0.0.1:0", "--secret", "s"],
      {
        cwd,
        env: { SHOAL_LOG_LEVEL: "warn" },
        onStdoutLine: (line) => {
          if (line.includes('"event":"ready"')) ready = JSON.parse(line);
        },
        onStderrLine: (line) => {
          if (!line.includes('"event":"node.dotenv.found"')) return;
          resolve({ ready: ready!, warning: JSON.parse(line) });
          child.kill("SIGTERM");
        },
      },
    );
    children.push(child);
    void child.exited.then((code) => reject(new Error(`${runtime} exited ${code} without the warning`)));
  });
}

describe("SHOAL_* settings in a .env file", () => {
  test("the files and variables Bun would load are found", () => {
    const dir = mkdtempSync(join(tmpdir(), "shoal-dotenv-"));
    writeFileSync(
      join(dir, ".env"),
      "# comment\nSHOAL_CLUSTER=a\nexport SHOAL_TOKEN = t\nOTHER=1\n  SHOAL_CLUSTER=b\n",
    );
    writeFileSync(join(dir, ".env.production"), "SHOAL_NAME=p\n");
    writeFileSync(join(dir, ".env.local"), "NOTHING=1\n");
    const read = (p: string) => readFileSync(p, "utf8");
    expect(dotenvSettings(dir, undefined, read)).toEqual([{
      file: ".env",
      variables: ["SHOAL_CLUSTER", "SHOAL_TOKEN"],
    }]);
    expect(dotenvSettings(dir, "production", read)).toEqual([
      { file: ".env", variables: ["SHOAL_CLUSTER", "SHOAL_TOKEN"] },
      { file: ".env.production", variables: ["SHOAL_NAME"] },
    ]);
  });

  test("a Bun and a Deno member started beside one both say what they did with it", async () => {
    const dir = mkdtempSync(join(tmpdir(), "shoal-dotenv-"));
    writeFileSync(join(dir, ".env"), "SHOAL_CLUSTER=from-dotenv\n");
    const bun = await start("bun", dir);
    const deno = await start("deno", dir);
    expect(bun.ready.cluster).toBe("from-dotenv");
    expect(deno.ready.cluster).toBe("shoal");
    for (const [r, runtime] of [[bun, "bun"], [deno, "deno"]] as const) {
      expect(r.warning).toMatchObject({
        level: "warn",
        runtime,
        files: [{ file: ".env", variables: ["SHOAL_CLUSTER"] }],
      });
    }
  }, 90_000);
});
