/**
 * Security of real member processes, on Bun and on Deno:
 * - tokens: a Bun member and a Deno member (joined to it) with `--token` and `--read-token`
 *   answer 401 on every data route without a token, 403 to writes with the read token, and
 *   no secret (cluster secret, token, read token) appears in their logs, `/metrics`,
 *   `/cluster`, error bodies or the dashboard HTML;
 * - TLS: a Bun member serves HTTPS/WSS with a certificate from a private CA (made at test
 *   time with openssl), a Deno member (also on TLS) joins it through `https://` with
 *   `--tls-ca`, a Bun member joins the Deno one through `wss://`, and a member without
 *   `--tls-ca` is refused with a message that names the certificate and the flag.
 */
import { afterAll, describe, expect, test } from "bun:test";
import { rmSync } from "node:fs";
import { killAll, type Member, runToExit, startMember } from "./support/cluster.ts";
import { until } from "./support/until.ts";
import { hasOpenssl, makeTestCerts, type TestCerts } from "./support/tls_certs.ts";

afterAll(() => killAll());

const secret = "cluster-secret-4c1d8e2f";
const token = "full-token-a93b51";
const readToken = "read-token-62e0f7";
const secrets = [secret, token, readToken];
const bearer = (t: string) => ({ authorization: `Bearer ${t}` });

const dataReads = ["/cluster", "/snapshot", "/maps", "/maps/m", "/maps/m/k", "/metrics", "/jobs", "/signal/stats"];

describe("tokens on real Bun and Deno members", () => {
  let a: Member, b: Member;

  test("a Bun member and a Deno member join with tokens set (signaling needs no token)", async () => {
    const args = ["--token", token, "--read-token", readToken];
    a = await startMember({ name: "tok-a", runtime: "bun", secret, args });
    b = await startMember({ name: "tok-b", runtime: "deno", secret, join: a.url, args });
    await until(
      async () => {
        const v = await (await fetch(`${a.url}/cluster`, { headers: bearer(readToken) })).json();
        return v.members.length === 2 && v.partitions.replicasMissing === 0 ? v : undefined;
      },
      90_000,
      "2 members, backups in place",
    );
  }, 120_000);

  test("every data route without a token → 401; the read token reads; writes with it → 403", async () => {
    for (const m of [a, b]) {
      for (const path of dataReads) {
        const res = await fetch(m.url + path);
        expect({ runtime: m.runtime, path, status: res.status }).toEqual({ runtime: m.runtime, path, status: 401 });
        const ok = await fetch(m.url + path, { headers: bearer(readToken) });
        expect({ runtime: m.runtime, path, status: ok.status === 401 || ok.status === 403 }).toEqual({
          runtime: m.runtime,
          path,
          status: false,
        });
        await ok.body?.cancel();
      }
      const events = await fetch(`${m.url}/events`);
      expect(events.status).toBe(401);
      const put = (headers: Record<string, string>) =>
        fetch(`${m.url}/maps/m/k`, {
          method: "PUT",
          headers: { "content-type": "application/json", ...headers },
          body: "1",
        });
      expect((await put({})).status).toBe(401);
      expect((await put(bearer(readToken))).status).toBe(403);
      expect((await put(bearer(token))).status).toBe(200);
      expect((await fetch(`${m.url}/jobs`, { method: "POST", headers: bearer(readToken), body: "{}" })).status)
        .toBe(403);
      expect((await fetch(`${m.url}/health`)).status).toBe(200);
      expect((await fetch(`${m.url}/`)).status).toBe(200);
    }
  }, 60_000);

  test("no secret in logs, /metrics, /cluster, error bodies or the dashboard HTML", async () => {
    const bodies: string[] = [];
    for (const m of [a, b]) {
      for (const path of ["/metrics", "/cluster", "/snapshot", "/", "/health", "/signal/stats", "/nope"]) {
        for (const h of [{}, bearer(readToken), bearer(token)]) {
          bodies.push(await (await fetch(m.url + path, { headers: h })).text());
        }
      }
      const bad = await fetch(`${m.url}/maps/m/k`, { method: "PUT", headers: bearer(token), body: "{not json" });
      expect(bad.status).toBe(400);
      bodies.push(await bad.text());
      bodies.push(await (await fetch(`${m.url}/jobs`, { method: "POST", headers: bearer(token), body: "{}" })).text());
    }
    for (const text of [...bodies, a.stderr(), b.stderr()]) {
      for (const s of secrets) expect(text.includes(s)).toBe(false);
    }
    // The logs are not empty: the check above looked at real output.
    expect(a.stderr().length).toBeGreaterThan(0);
    expect(b.stderr().length).toBeGreaterThan(0);
  }, 60_000);
});

const certs: TestCerts | undefined = hasOpenssl() ? makeTestCerts() : undefined;
if (!certs) console.warn("SKIPPED TLS process test: the openssl command is missing (apt-get install -y openssl)");
afterAll(() => {
  if (certs) rmSync(certs.dir, { recursive: true, force: true });
});

describe.skipIf(!certs)("TLS between real Bun and Deno members", () => {
  const c = certs!;
  const tlsArgs = () => ["--tls-cert", c.cert, "--tls-key", c.key];
  const trusting = async (): Promise<RequestInit> => ({ tls: { ca: await Bun.file(c.ca).text() } } as RequestInit);
  let a: Member, b: Member;

  test(
    "a Deno member joins a Bun member through https:// with --tls-ca; a Bun member joins it through wss://",
    async () => {
      a = await startMember({ name: "tls-a", runtime: "bun", args: tlsArgs() });
      expect(a.url.startsWith("https://127.0.0.1:")).toBe(true);
      b = await startMember({ name: "tls-b", runtime: "deno", join: a.url, args: [...tlsArgs(), "--tls-ca", c.ca] });
      expect(b.url.startsWith("https://")).toBe(true);
      const cJoin = b.url.replace("https://", "wss://");
      const m3 = await startMember({ name: "tls-c", runtime: "bun", join: cJoin, args: ["--tls-ca", c.ca] });
      expect(m3.url.startsWith("http://")).toBe(true);
      const init = await trusting();
      const view = await until(
        async () => {
          const v = await (await fetch(`${a.url}/cluster`, init)).json();
          return v.members.length === 3 && v.partitions.replicasMissing === 0 ? v : undefined;
        },
        90_000,
        "3 members over TLS signaling, backups in place",
      );
      expect(view.members.map((m: { runtime: string }) => m.runtime).sort()).toEqual(["bun", "bun", "deno"]);
      // Data written over HTTPS on one member is read over HTTPS on the other.
      const put = await fetch(`${a.url}/maps/tls/k`, { ...init, method: "PUT", body: JSON.stringify({ v: 42 }) });
      expect(put.status).toBe(200);
      expect(await (await fetch(`${b.url}/maps/tls/k`, init)).json()).toEqual({ value: { v: 42 } });
      // Plain HTTP on the TLS port gets no answer with data.
      const plain = await fetch(a.url.replace("https://", "http://") + "/cluster").then(
        (r) => r.status,
        () => "failed",
      );
      expect(plain === "failed" || plain === 400).toBe(true);
    },
    180_000,
  );

  test("joining a private-CA https:// URL without --tls-ca fails and names the certificate and the flag", async () => {
    for (const runtime of ["bun", "deno"] as const) {
      const r = await runToExit(runtime, ["node", "--http", "127.0.0.1:0", "--secret", "test-secret", "--join", a.url]);
      expect(r.code).not.toBe(0);
      expect(r.stderr).toMatch(/certificate/i);
      expect(r.stderr).toContain("--tls-ca");
    }
  }, 120_000);

  test("a self-signed certificate serves HTTPS too, trusted by itself as the CA", async () => {
    const s = await startMember({
      name: "tls-self",
      runtime: "deno",
      args: ["--tls-cert", c.selfCert, "--tls-key", c.selfKey],
    });
    const ca = await Bun.file(c.selfCert).text();
    const res = await fetch(`${s.url}/health`, { tls: { ca } } as RequestInit);
    expect(res.status).toBe(200);
    const t = await startMember({ name: "tls-self-join", runtime: "bun", join: s.url, args: ["--tls-ca", c.selfCert] });
    await until(
      async () => {
        const v = await (await fetch(`${t.url}/cluster`)).json();
        return v.members.length === 2 ? v : undefined;
      },
      90_000,
      "the self-signed member and its joiner",
    );
  }, 150_000);

  test("a missing certificate file is a clear start error", async () => {
    const r = await runToExit("bun", [
      "node",
      "--http",
      "127.0.0.1:0",
      "--tls-cert",
      "/nonexistent.pem",
      "--tls-key",
      c.key,
    ]);
    expect(r.code).not.toBe(0);
    expect(r.stderr).toContain("Cannot read --tls-cert /nonexistent.pem");
  }, 60_000);
});
