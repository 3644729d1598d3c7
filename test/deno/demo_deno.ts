/**
 * The real `demo` command under Deno (CI: `deno run -A test/deno/demo_deno.ts`): runs
 * `deno run -A mod.ts demo` (a signaling server and three Deno member processes, the
 * master killed mid-job), echoes its output, checks the key narration lines, and exits
 * with the demo's exit code (1 when a narration line is missing).
 */
const root = new URL("../..", import.meta.url).pathname;
const child = new Deno.Command(Deno.execPath(), {
  args: ["run", "-A", "mod.ts", "demo"],
  cwd: root,
  stdin: "null",
  stdout: "piped",
  stderr: "piped",
}).spawn();
// The demo keeps itself under its own timeout; this one only guards against a hang.
const guard = setTimeout(() => child.kill("SIGKILL"), 280_000);

async function tee(stream: ReadableStream<Uint8Array>, to: { writeSync(b: Uint8Array): number }): Promise<string> {
  const dec = new TextDecoder();
  let text = "";
  for await (const chunk of stream) {
    to.writeSync(chunk);
    text += dec.decode(chunk, { stream: true });
  }
  return text;
}

const [stdout] = await Promise.all([tee(child.stdout, Deno.stdout), tee(child.stderr, Deno.stderr)]);
const status = await child.status;
clearTimeout(guard);

const expected: RegExp[] = [
  /Shoal demo on deno/,
  /cluster formed: 3 members, master demo-1/,
  /dashboard: http:\/\/127\.0\.0\.1:\d+\//,
  /kill -9 demo-1 \(the master, pid \d+\)/,
  /new master: demo-[23], [\d,]+ ms after the kill/,
  /\d+ partitions had their primary on demo-1: \d+ backups promoted to primary/,
  /job FINISHED/,
  /verified: map "out" holds exactly 6,000 records, each with the right value/,
  /verified: map "inventory" still holds its 1,000 entries, all intact/,
  /all checks passed/,
];
const missing = expected.filter((re) => !re.test(stdout));
if (status.code !== 0) {
  console.error(
    `FAIL: deno run -A mod.ts demo exited with code ${status.code}${status.signal ? ` (signal ${status.signal})` : ""}`,
  );
  Deno.exit(status.code || 1);
}
if (missing.length > 0) {
  console.error(`FAIL: the demo exited 0 but its output lacks: ${missing.map(String).join(", ")}`);
  Deno.exit(1);
}
console.log("ok: deno run -A mod.ts demo exited 0 with the expected narration");
