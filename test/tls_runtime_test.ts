/**
 * HTTPS and WSS behind each runtime's server: test/support/tls_smoke.ts serves the HTTP app
 * and the signaling endpoint with a certificate from a private CA (made at test time with
 * openssl) and talks to it over HTTPS and WSS, under Bun (`Bun.serve` tls) and under Deno
 * (`Deno.serve` cert/key).
 */
import { afterAll, describe, expect, test } from "bun:test";
import { rmSync } from "node:fs";
import { hasOpenssl, makeTestCerts, type TestCerts } from "./support/tls_certs.ts";

const root = `${import.meta.dir}/..`;
const certs: TestCerts | undefined = hasOpenssl() ? makeTestCerts() : undefined;
if (!certs) console.warn("SKIPPED TLS runtime test: the openssl command is missing (apt-get install -y openssl)");
afterAll(() => {
  if (certs) rmSync(certs.dir, { recursive: true, force: true });
});

const expected = {
  scheme: "https:",
  health: 200,
  clusterNoToken: 401,
  cluster: 200,
  untrusted: "refused",
  wssUrl: true,
  peersOfB: ["member-a"],
  relayed: { hi: 1 },
  wssWithoutCa: "failed",
};

function runSmoke(cmd: string[]): Record<string, unknown> {
  const p = Bun.spawnSync(cmd, { cwd: root, timeout: 60_000, env: { ...process.env, SHOAL_TLS_DIR: certs!.dir } });
  const out = p.stdout.toString().trim().split("\n").pop() ?? "";
  if (p.exitCode !== 0) throw new Error(`${cmd.join(" ")} exited ${p.exitCode}: ${p.stderr.toString()}`);
  return JSON.parse(out);
}

describe.skipIf(!certs)("HTTPS and WSS behind each runtime's server", () => {
  test("under Bun.serve with tls", () => {
    expect(runSmoke(["bun", "run", "test/support/tls_smoke.ts"])).toEqual(expected);
  }, 90_000);

  test("under Deno.serve with cert and key", () => {
    expect(runSmoke(["deno", "run", "-A", "test/support/tls_smoke.ts"])).toEqual(expected);
  }, 90_000);
});
