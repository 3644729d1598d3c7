/**
 * Access control of the HTTP app: with a token, every data route (reads included) answers
 * 401 without it; the read-only token reads but cannot write (403); `/health`, the dashboard
 * page and the `/signal` upgrade stay open, `/metrics` too only with `openMetrics`; and no
 * token appears in any answer.
 */
import { describe, expect, test } from "bun:test";
import type { Hono } from "hono";
import { createHttpApp } from "../src/http/app.ts";
import { grantOf, isOpenRoute, requireToken } from "../src/http/auth.ts";
import { plainHttpWarning } from "../src/http/listen_address.ts";
import { mountSignaling } from "../src/signaling/server.ts";
import { offlineJobRoutes } from "./support/offline_job_routes.ts";
import { createTestNode } from "./support/test_node.ts";

const token = "full-token-5f1e9a";
const readToken = "read-token-77c2d0";
const wrongToken = "wrong-token-0b3c4d";
const bearer = (t: string) => ({ authorization: `Bearer ${t}` });

/** Every data route of a member (jobs and signaling stats included). */
const reads = [
  "/cluster",
  "/snapshot",
  "/maps",
  "/maps/m",
  "/maps/m/k",
  "/metrics",
  "/events",
  "/jobs",
  "/jobs/j1",
  "/overview",
  "/running-jobs",
  "/job-info/j1",
  "/finished-jobs",
  "/finished-jobs/FINISHED",
  "/signal/stats",
  "/no-such-route",
];
const writes: Array<[string, string, string?]> = [
  ["PUT", "/maps/m/k", '{"v":1}'],
  ["DELETE", "/maps/m/k"],
  ["POST", "/jobs", "{}"],
  ["POST", "/jobs/j1/cancel"],
  ["PATCH", "/maps/m/k", "{}"],
];

function memberApp(opts: { token?: string; readToken?: string; openMetrics?: boolean }): {
  app: Hono;
  abort: AbortController;
} {
  const abort = new AbortController();
  const upgrade = (() => (c: { text(s: string): Response }) => c.text("upgraded")) as never;
  const app = createHttpApp(createTestNode({ members: 3 }), {
    ...opts,
    signal: abort.signal,
    extraRoutes: (a) => {
      mountSignaling(a, upgrade);
      a.route("/", offlineJobRoutes().app);
    },
  });
  return { app, abort };
}

async function request(app: Hono, method: string, path: string, headers: Record<string, string> = {}, body?: string) {
  const res = await app.request(path, { method, headers: { "content-type": "application/json", ...headers }, body });
  const text = path === "/events" && res.status === 200 ? "" : await res.text();
  if (path === "/events" && res.status === 200) await res.body?.cancel();
  return { status: res.status, text, res };
}

describe("with --token and --read-token", () => {
  test("every data route without a token → 401 with WWW-Authenticate; a wrong token → 401", async () => {
    const { app, abort } = memberApp({ token, readToken });
    for (const path of reads) {
      const r = await request(app, "GET", path);
      expect({ path, status: r.status }).toEqual({ path, status: 401 });
      expect(r.res.headers.get("www-authenticate")).toContain("Bearer");
      expect(JSON.parse(r.text).code).toBe("AUTH_FAILED");
      expect((await request(app, "GET", path, bearer(wrongToken))).status).toBe(401);
      expect((await request(app, "GET", path, { authorization: token })).status).toBe(401); // no "Bearer"
    }
    for (const [method, path, body] of writes) {
      expect({ method, path, status: (await request(app, method, path, {}, body)).status }).toEqual({
        method,
        path,
        status: 401,
      });
    }
    abort.abort();
  });

  test("the read token reads every route and every write with it → 403, changing nothing", async () => {
    const { app, abort } = memberApp({ token, readToken });
    for (const path of reads) {
      const r = await request(app, "GET", path, bearer(readToken));
      expect({ path, denied: r.status === 401 || r.status === 403 }).toEqual({ path, denied: false });
    }
    expect((await request(app, "PUT", "/maps/m/k", bearer(token), '{"v":1}')).status).toBe(200);
    for (const [method, path, body] of writes) {
      const r = await request(app, method, path, bearer(readToken), body);
      expect({ method, path, status: r.status }).toEqual({ method, path, status: 403 });
      expect(JSON.parse(r.text).error).toContain("read-only");
    }
    expect(JSON.parse((await request(app, "GET", "/maps/m/k", bearer(readToken))).text)).toEqual({ value: { v: 1 } });
    abort.abort();
  });

  test("the full token reads and writes", async () => {
    const { app, abort } = memberApp({ token, readToken });
    expect((await request(app, "PUT", "/maps/m/k", bearer(token), '{"v":2}')).status).toBe(200);
    expect(JSON.parse((await request(app, "GET", "/maps/m/k", bearer(token))).text)).toEqual({ value: { v: 2 } });
    expect((await request(app, "DELETE", "/maps/m/k", bearer(token))).status).toBe(200);
    expect((await request(app, "GET", "/cluster", bearer(` ${token} `))).status).toBe(200);
    abort.abort();
  });

  test("/health, the dashboard page and the /signal upgrade stay open", async () => {
    const { app, abort } = memberApp({ token, readToken });
    expect((await request(app, "GET", "/health")).status).toBe(200);
    const page = await request(app, "GET", "/");
    expect(page.status).toBe(200);
    expect(page.text).toContain('data-testid="login"');
    // The upgrade route is reached (the gate answers 426 without an Upgrade header), not 401.
    expect((await request(app, "GET", "/signal")).status).toBe(426);
    abort.abort();
  });

  test("/metrics is protected unless openMetrics is set", async () => {
    const closed = memberApp({ token, readToken });
    expect((await request(closed.app, "GET", "/metrics")).status).toBe(401);
    expect((await request(closed.app, "GET", "/metrics", bearer(readToken))).status).toBe(200);
    closed.abort.abort();
    const open = memberApp({ token, readToken, openMetrics: true });
    const m = await request(open.app, "GET", "/metrics");
    expect(m.status).toBe(200);
    expect(m.text).toContain("shoal_members");
    expect((await request(open.app, "GET", "/cluster")).status).toBe(401);
    open.abort.abort();
  });

  test("no answer contains either token: data, metrics, dashboard HTML, error bodies", async () => {
    const { app, abort } = memberApp({ token, readToken });
    const texts: string[] = [];
    for (const path of [...reads, "/", "/health"]) {
      for (const h of [{}, bearer(wrongToken), bearer(readToken), bearer(token)]) {
        texts.push((await request(app, "GET", path, h)).text);
      }
    }
    for (const [method, path, body] of writes) {
      for (const h of [{}, bearer(wrongToken), bearer(readToken)]) {
        texts.push((await request(app, method, path, h, body)).text);
      }
    }
    texts.push((await request(app, "PUT", "/maps/m/k", bearer(token), "{bad json")).text);
    for (const t of texts) {
      // A token sent by the client is not echoed back either.
      expect(t.includes(token) || t.includes(readToken) || t.includes(wrongToken)).toBe(false);
    }
    abort.abort();
  });
});

describe("policy", () => {
  test("without a token every route is open (loopback use)", async () => {
    const { app, abort } = memberApp({});
    expect((await request(app, "GET", "/cluster")).status).toBe(200);
    expect((await request(app, "PUT", "/maps/m/k", {}, "1")).status).toBe(200);
    abort.abort();
  });

  test("a read token without a token, or equal to it, is refused at start", () => {
    expect(() => requireToken({ readToken: "r" })).toThrow("writes would be open");
    expect(() => requireToken({ token: "t", readToken: "t" })).toThrow("must differ");
    expect(() => memberApp({ readToken: "r" })).toThrow();
  });

  test("grants and open routes", () => {
    const p = { token: "t", readToken: "r" };
    expect(grantOf("Bearer t", p)).toBe("write");
    expect(grantOf("bearer   r", p)).toBe("read");
    expect(grantOf("Bearer x", p)).toBe("none");
    expect(grantOf("Basic t", p)).toBe("none");
    expect(grantOf(undefined, p)).toBe("none");
    expect(isOpenRoute("GET", "/health", p)).toBe(true);
    expect(isOpenRoute("POST", "/health", p)).toBe(false);
    expect(isOpenRoute("GET", "/metrics", p)).toBe(false);
    expect(isOpenRoute("GET", "/metrics", { ...p, openMetrics: true })).toBe(true);
    expect(isOpenRoute("GET", "/signal/stats", p)).toBe(false);
  });

  test("plain HTTP off loopback gets a warning naming the risk; loopback or TLS do not", () => {
    const w = plainHttpWarning("0.0.0.0:5701", "0.0.0.0", false);
    expect(w).toContain("clear text");
    expect(w).toContain("--tls-cert");
    expect(plainHttpWarning("192.168.1.5:80", "192.168.1.5", false)).toContain("token");
    expect(plainHttpWarning("0.0.0.0:5701", "0.0.0.0", true)).toBeUndefined();
    expect(plainHttpWarning("127.0.0.1:5701", "127.0.0.1", false)).toBeUndefined();
    expect(plainHttpWarning("[::1]:5701", "::1", false)).toBeUndefined();
  });
});
