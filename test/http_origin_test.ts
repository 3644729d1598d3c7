import { describe, expect, test } from "bun:test";
import { createHttpApp } from "../src/http/app.ts";
import { sameOrigin, splitHost } from "../src/http/origin_check.ts";
import { createTestNode } from "./support/test_node.ts";

const post = (headers: Record<string, string>) => ({ method: "POST", body: '"item"', headers });

describe("origin and host checks", () => {
  test("sameOrigin compares scheme-default ports, names case-insensitively, and refuses null or other schemes", () => {
    expect(sameOrigin("http://127.0.0.1:5701", "127.0.0.1:5701")).toBe(true);
    expect(sameOrigin("http://Example.com", "example.com:80")).toBe(true);
    expect(sameOrigin("https://example.com", "example.com")).toBe(true);
    expect(sameOrigin("https://example.com", "example.com:80")).toBe(false);
    expect(sameOrigin("http://[::1]:9", "[::1]:9")).toBe(true);
    expect(sameOrigin("http://evil.example:5701", "127.0.0.1:5701")).toBe(false);
    expect(sameOrigin("http://127.0.0.1:5702", "127.0.0.1:5701")).toBe(false);
    expect(sameOrigin("null", "127.0.0.1:5701")).toBe(false);
    expect(sameOrigin("file:///x", "127.0.0.1:5701")).toBe(false);
    expect(sameOrigin("http://127.0.0.1:5701", undefined)).toBe(false);
    expect(splitHost("a@b:1")).toBeUndefined();
    expect(splitHost("[::1]:80")).toEqual({ name: "[::1]", port: 80 });
  });

  test("a write from another web origin gets 403 and changes nothing; same-origin and Origin-less writes pass", async () => {
    const node = createTestNode();
    const app = createHttpApp(node);
    const host = { host: "127.0.0.1:5701" };
    expect((await app.request("/queues/q", post({ ...host, origin: "http://evil.example" }))).status).toBe(403);
    expect((await app.request("/queues/q", post({ ...host, origin: "null" }))).status).toBe(403);
    expect(node.queues.get("q")?.length ?? 0).toBe(0);
    expect((await app.request("/queues/q", post({ ...host, origin: "http://127.0.0.1:5701" }))).status).toBe(201);
    expect((await app.request("/queues/q", post(host))).status).toBe(201);
    // A WebSocket upgrade from another origin is refused like a write: the page would hold the socket.
    const upgrade = { ...host, upgrade: "websocket", connection: "Upgrade" };
    expect((await app.request("/signal", { headers: { ...upgrade, origin: "https://evil.example" } })).status).toBe(
      403,
    );
    // A read from another origin is served: without CORS headers the page cannot see the answer.
    expect((await app.request("/queues/q", { headers: { ...host, origin: "http://evil.example" } })).status).toBe(200);
  });

  test("a member on loopback answers only requests whose Host is a loopback name (DNS rebinding)", async () => {
    const app = createHttpApp(createTestNode(), { loopbackOnly: true });
    for (
      const host of [
        "127.0.0.1:5701",
        "localhost:5701",
        "[::1]:5701",
        "LOCALHOST",
        "localhost.:5701",
        "[::ffff:7f00:1]:5701",
      ]
    ) {
      expect((await app.request("/health", { headers: { host } })).status).toBe(200);
    }
    for (const host of ["attacker.example:5701", "127.0.0.1.attacker.example", "10.0.0.1:5701", ""]) {
      expect((await app.request("/health", { headers: { host } })).status).toBe(403);
    }
    // A request without Host (HTTP/1.0) comes from no browser: served.
    const bare = new Request("http://x/health");
    bare.headers.delete("host");
    expect((await app.fetch(bare)).status).toBe(200);
    // Without loopbackOnly (a member listening on a network address) any Host is served.
    const open = createHttpApp(createTestNode());
    expect((await open.request("/health", { headers: { host: "shoal.internal:5701" } })).status).toBe(200);
  });

  test("a reverse proxy's public name (--http-allowed-host) is accepted as Host and as the origin of writes", async () => {
    const node = createTestNode();
    const app = createHttpApp(node, { loopbackOnly: true, allowedHosts: ["grid.example.com"] });
    // nginx keeping the public Host.
    expect((await app.request("/health", { headers: { host: "grid.example.com" } })).status).toBe(200);
    // nginx rewriting Host to the member's address: the browser's Origin is the public name.
    const viaProxy = post({ host: "127.0.0.1:5701", origin: "https://grid.example.com" });
    expect((await app.request("/queues/q", viaProxy)).status).toBe(201);
    // Other names are still refused.
    expect((await app.request("/health", { headers: { host: "evil.example" } })).status).toBe(403);
    const evil = post({ host: "127.0.0.1:5701", origin: "https://evil.example" });
    expect((await app.request("/queues/q", evil)).status).toBe(403);
  });
});
