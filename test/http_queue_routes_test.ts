import { describe, expect, test } from "bun:test";
import { createHttpApp } from "../src/http/app.ts";
import { createTestNode } from "./support/test_node.ts";

const post = (body?: unknown) => ({
  method: "POST",
  body: body === undefined ? undefined : JSON.stringify(body),
  headers: { "content-type": "application/json" },
});

describe("queue routes", () => {
  test("offer 201, FULL 503, poll 200 { item } then 204, GET { name, size, capacity }", async () => {
    const app = createHttpApp(createTestNode());
    expect((await app.request("/queues/jobs?capacity=2", post({ n: 1 }))).status).toBe(201);
    expect((await app.request("/queues/jobs?capacity=2", post("two"))).status).toBe(201);
    const full = await app.request("/queues/jobs?capacity=2", post(3));
    expect(full.status).toBe(503);
    expect((await full.json()).code).toBe("FULL");
    expect(await (await app.request("/queues/jobs?capacity=2")).json()).toEqual({ name: "jobs", size: 2, capacity: 2 });
    expect(await (await app.request("/queues/jobs/poll", post())).json()).toEqual({ item: { n: 1 } });
    expect(await (await app.request("/queues/jobs/poll?timeoutMs=0", post())).json()).toEqual({ item: "two" });
    expect((await app.request("/queues/jobs/poll", post())).status).toBe(204);
  });

  test("bad names, parameters and bodies are 400", async () => {
    const app = createHttpApp(createTestNode());
    for (
      const [path, init] of [
        [`/queues/${"x".repeat(300)}`, post(1)],
        ["/queues/q?capacity=0", post(1)],
        ["/queues/q/poll?timeoutMs=-1", post()],
        ["/queues/q/poll?timeoutMs=999999", post()],
        // What JavaScript's Number would read, but is no whole number in decimal digits.
        ["/queues/q?capacity=0x10", post(1)],
        ["/queues/q?capacity=1e3", post(1)],
        ["/queues/q/poll?timeoutMs=%20", post()],
        ["/queues/q/poll?timeoutMs=+5", post()],
        ["/queues/q/poll?timeoutMs=5.0", post()],
        // A parameter given twice is refused, not one of its values picked.
        ["/queues/q?capacity=5&capacity=6", post(1)],
        ["/queues/q", { method: "POST", body: "{" }],
      ] as const
    ) {
      const r = await app.request(path, init);
      expect(r.status).toBe(400);
    }
  });
});
