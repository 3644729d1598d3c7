/**
 * Runs a smoke script (test/support/*_smoke.ts) in a child process from the repository root
 * and returns the JSON report it prints as its last stdout line; throws with its stderr when
 * it exits non-zero.
 */
const root = `${import.meta.dir}/../..`;

/**
 * @param cmd the command, e.g. `["deno", "run", "-A", "test/support/http_smoke.ts"]`
 * @param env variables added to this process's environment for the child @default none (inherits)
 */
export function runSmoke(cmd: string[], env?: Record<string, string>): Record<string, unknown> {
  const p = Bun.spawnSync(cmd, { cwd: root, timeout: 60_000, ...(env ? { env: { ...process.env, ...env } } : {}) });
  const out = p.stdout.toString().trim().split("\n").pop() ?? "";
  if (p.exitCode !== 0) throw new Error(`${cmd.join(" ")} exited ${p.exitCode}: ${p.stderr.toString()}`);
  return JSON.parse(out);
}
