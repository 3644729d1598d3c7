import { describe, expect, test } from "bun:test";

const root = `${import.meta.dir}/..`;

const expected = {
  health: 200,
  putNoToken: 401,
  getNoToken: 401,
  put: { previous: null },
  get: { value: { a: 1 } },
  badJson: 400,
  tooBig: 413,
  metricsType: "text/plain; version=0.0.4; charset=utf-8",
  metricsHasMembers: true,
  dashboard: true,
  eventsType: "text/event-stream; charset=utf-8",
  firstMembers: 3,
  cells: 271,
  afterRemoval: 2,
};

function runSmoke(cmd: string[]): Record<string, unknown> {
  const p = Bun.spawnSync(cmd, { cwd: root, timeout: 60_000 });
  const out = p.stdout.toString().trim().split("\n").pop() ?? "";
  if (p.exitCode !== 0) throw new Error(`${cmd.join(" ")} exited ${p.exitCode}: ${p.stderr.toString()}`);
  return JSON.parse(out);
}

describe("HTTP app behind each runtime's server", () => {
  test("under Bun.serve: REST, token, limits, metrics, dashboard and SSE", () => {
    expect(runSmoke(["bun", "run", "test/support/http_smoke.ts"])).toEqual(expected);
  }, 60_000);

  test("under Deno.serve: REST, token, limits, metrics, dashboard and SSE", () => {
    expect(runSmoke(["deno", "run", "-A", "test/support/http_smoke.ts"])).toEqual(expected);
  }, 60_000);
});
