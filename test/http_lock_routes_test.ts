import { describe, expect, test } from "bun:test";
import { createHttpApp } from "../src/http/app.ts";
import { startNode } from "../src/node.ts";
import { createTestNode } from "./support/test_node.ts";

const post = (body: unknown, headers: Record<string, string> = {}) => ({
  method: "POST",
  body: typeof body === "string" ? body : JSON.stringify(body),
  headers: { "content-type": "application/json", ...headers },
});

describe("REST lock routes", () => {
  test("lock, contend, wait, unlock on a real node: tokens rise and only the owner unlocks", async () => {
    const node = await startNode({ secret: "s", http: false, logLevel: "silent", partitionCount: 7 });
    const app = createHttpApp(node);
    const lock = (owner: string, extra: Record<string, number> = {}) =>
      app.request("/maps/m/k/lock", post({ owner, ...extra }));
    const r1 = await lock("a");
    expect(r1.status).toBe(200);
    const { token: t1 } = await r1.json();
    expect(t1).toBeGreaterThan(0);
    expect(await (await app.request("/maps/m/k/lock")).json()).toEqual({ locked: true });
    const busy = await lock("b");
    expect(busy.status).toBe(423);
    expect((await busy.json()).code).toBe("LOCKED");
    const wrong = await app.request("/maps/m/k/unlock", post({ owner: "b" }));
    expect(wrong.status).toBe(409);
    expect((await wrong.json()).code).toBe("CONFLICT");
    // b waits; a's unlock hands it the lock with the next token.
    const waiting = lock("b", { timeoutMs: 10_000 });
    await new Promise((r) => setTimeout(r, 100));
    expect((await app.request("/maps/m/k/unlock", post({ owner: "a" }))).status).toBe(200);
    const r2 = await waiting;
    expect(r2.status).toBe(200);
    expect((await r2.json()).token).toBeGreaterThan(t1);
    expect((await app.request("/maps/m/k/unlock", post({ owner: "b" }))).status).toBe(200);
    expect(await (await app.request("/maps/m/k/lock")).json()).toEqual({ locked: false });
    await node.shutdown();
  });

  test("bad bodies are 400", async () => {
    const app = createHttpApp(createTestNode());
    const bodies = ["{", "", {}, { owner: "" }, { owner: "a", extra: 1 }, { owner: "a", timeoutMs: 25_001 }, {
      owner: "a",
      leaseMs: -1,
    }, { owner: "x".repeat(129) }];
    for (const body of bodies) {
      const r = await app.request("/maps/m/k/lock", post(body));
      expect(r.status).toBe(400);
      expect((await r.json()).code).toBe("INVALID_ARGUMENT");
    }
    expect((await app.request("/maps/m/k/unlock", post({ owner: "a", leaseMs: 1 }))).status).toBe(400);
  });

  test("lock and unlock are writes: a read token is not enough", async () => {
    const app = createHttpApp(createTestNode(), { token: "full", readToken: "read" });
    const auth = (t: string) => ({ authorization: `Bearer ${t}` });
    expect((await app.request("/maps/m/k/lock", post({ owner: "a" }))).status).toBe(401);
    expect((await app.request("/maps/m/k/lock", post({ owner: "a" }, auth("read")))).status).toBe(403);
    expect((await app.request("/maps/m/k/lock", { headers: auth("read") })).status).toBe(200);
    expect((await app.request("/maps/m/k/lock", post({ owner: "a" }, auth("full")))).status).toBe(200);
    expect((await app.request("/maps/m/k/unlock", post({ owner: "a" }, auth("read")))).status).toBe(403);
    expect((await app.request("/maps/m/k/unlock", post({ owner: "a" }, auth("full")))).status).toBe(200);
  });
});
