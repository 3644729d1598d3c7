/**
 * The examples under Deno (CI: `deno run -A test/deno/examples_deno.ts`): runs
 * `deno run -A examples/local-cluster.ts` and `deno run -A examples/embedding.ts` as child
 * processes and checks their exit codes and key output lines. Exits non-zero on failure.
 */
const root = new URL("../..", import.meta.url).pathname;

async function runExample(file: string, expected: RegExp[]): Promise<string | undefined> {
  const child = new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", file],
    cwd: root,
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  const guard = setTimeout(() => child.kill("SIGKILL"), 120_000);
  const out = await child.output();
  clearTimeout(guard);
  const stdout = new TextDecoder().decode(out.stdout);
  const stderr = new TextDecoder().decode(out.stderr);
  if (out.code !== 0) {
    return `${file} exited with code ${out.code}${out.signal ? ` (${out.signal})` : ""}\n${stdout}\n${
      stderr.slice(-4000)
    }`;
  }
  const missing = expected.filter((re) => !re.test(stdout));
  if (missing.length > 0) return `${file} exited 0 but its output lacks ${missing.map(String).join(", ")}\n${stdout}`;
  console.log(`ok   deno run -A ${file}`);
  return undefined;
}

const failures = [
  await runExample("examples/local-cluster.ts", [
    /cluster of 3 over WebRTC: a, b, c; master a/,
    /members now: b, c; new master b/,
    /all 300 entries survived/,
    /done/,
  ]),
  await runExample("examples/embedding.ts", [
    /\(1 member\(s\)\)/,
    /size 52, guests seen by iteration 50, containsKey\(s-2\) true/,
    /\/maps\/sessions\/s-1 → \{"value":\{"user":"ada"/,
  ]),
].filter((f): f is string => f !== undefined);

for (const f of failures) console.error(`FAIL ${f}`);
Deno.exit(failures.length === 0 ? 0 : 1);
