import { describe, expect, test } from "bun:test";
import { createHttpApp } from "../src/http/app.ts";
import { createTestNode } from "./support/test_node.ts";

const post = (body: unknown) => ({
  method: "POST",
  body: typeof body === "string" ? body : JSON.stringify(body),
  headers: { "content-type": "application/json" },
});

describe("POST /maps/:map/:key/execute", () => {
  test("runs a processor and answers { result, value }", async () => {
    const app = createHttpApp(createTestNode());
    const r1 = await app.request("/maps/counters/hits/execute", post({ processor: "increment" }));
    expect(r1.status).toBe(200);
    expect(await r1.json()).toEqual({ result: 1, value: 1 });
    expect(await (await app.request("/maps/counters/hits/execute", post({ processor: "increment", arg: 4 }))).json())
      .toEqual({ result: 5, value: 5 });
    expect(await (await app.request("/maps/counters/hits")).json()).toEqual({ value: 5 });
    expect(
      await (await app.request("/maps/counters/hits/execute", post({ processor: "delete-if-equals", arg: 5 }))).json(),
    )
      .toEqual({ result: true, value: null });
    expect((await app.request("/maps/counters/hits")).status).toBe(404);
  });

  test("bad bodies are 400, an unknown processor 404, a failing one 422", async () => {
    const app = createHttpApp(createTestNode());
    for (const body of ["{", "", { arg: 1 }, { processor: "a b" }, { processor: "increment", extra: 1 }, [1]]) {
      const r = await app.request("/maps/m/k/execute", post(body));
      expect(r.status).toBe(400);
      expect((await r.json()).code).toBe("INVALID_ARGUMENT");
    }
    const missing = await app.request("/maps/m/k/execute", post({ processor: "nope" }));
    expect(missing.status).toBe(404);
    await app.request("/maps/m/k", { ...post("text"), method: "PUT", body: JSON.stringify("text") });
    const failed = await app.request("/maps/m/k/execute", post({ processor: "increment" }));
    expect(failed.status).toBe(422);
    expect((await failed.json()).code).toBe("PROCESSOR_FAILED");
  });

  test("is a write: it needs the full token, a read token is not enough", async () => {
    const app = createHttpApp(createTestNode(), { token: "full", readToken: "read" });
    const call = (auth?: string) =>
      app.request("/maps/m/k/execute", {
        ...post({ processor: "increment" }),
        headers: { "content-type": "application/json", ...(auth ? { authorization: `Bearer ${auth}` } : {}) },
      });
    expect((await call()).status).toBe(401);
    expect([401, 403]).toContain((await call("read")).status);
    expect((await call("full")).status).toBe(200);
  });
});
