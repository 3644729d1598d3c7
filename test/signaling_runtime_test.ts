/**
 * The runtime adapter the signaling server (and the node's HTTP layer) stands on: serve()
 * on port 0, a clear error for a taken port, WebSocket upgrades through wsUpgrader(), and
 * the process helpers.
 */
import { expect, test } from "bun:test";
import { Hono } from "hono";
import { ShoalError } from "../src/core/errors.ts";
import { env, runtimeName } from "../src/runtime/process.ts";
import { clientAddress, serve } from "../src/runtime/serve.ts";
import { wsUpgrader } from "../src/runtime/websocket.ts";

test("serve() binds port 0, answers requests with the client address, and refuses a taken port", async () => {
  const app = new Hono().get("/", (c) => c.json({ ip: clientAddress(c) }));
  const s = await serve({ hostname: "127.0.0.1", port: 0, fetch: app.fetch });
  expect(s.port).toBeGreaterThan(0);
  expect(s.url).toBe(`http://127.0.0.1:${s.port}`);
  expect(await (await fetch(s.url)).json()).toEqual({ ip: "127.0.0.1" });
  const err = await serve({ hostname: "127.0.0.1", port: s.port, fetch: app.fetch }).catch((e) => e);
  expect(err).toBeInstanceOf(ShoalError);
  expect(err.code).toBe("REFUSED");
  expect(err.message).toBe(`Cannot listen on 127.0.0.1:${s.port}: the port is already in use`);
  await expect(serve({ port: 70000, fetch: app.fetch })).rejects.toThrow(RangeError);
  await s.close();
  await expect(fetch(s.url)).rejects.toThrow();
});

test("wsUpgrader() upgrades WebSockets and keeps one context per socket", async () => {
  const { upgradeWebSocket, websocket } = wsUpgrader();
  const app = new Hono();
  const contexts = new Set<unknown>();
  app.get(
    "/ws",
    upgradeWebSocket(() => ({
      onMessage: (e, ws) => {
        contexts.add(ws);
        ws.send(`echo:${String(e.data)}`);
      },
    })),
  );
  const s = await serve({ port: 0, fetch: app.fetch, websocket });
  const ws = new WebSocket(`${s.url.replace("http", "ws")}/ws`);
  const replies: string[] = [];
  await new Promise<void>((r) => (ws.onopen = () => r()));
  const two = new Promise<void>((r) => {
    ws.onmessage = (e) => {
      replies.push(String(e.data));
      if (replies.length === 2) r();
    };
  });
  ws.send("a");
  ws.send("b");
  await two;
  expect(replies).toEqual(["echo:a", "echo:b"]);
  expect(contexts.size).toBe(1);
  ws.close();
  await s.close();
});

test("process helpers name the runtime and read the environment", () => {
  expect(runtimeName()).toBe("bun");
  expect(env("PATH")).toBeString();
  expect(env("SHOAL_SURELY_UNSET_VARIABLE")).toBeUndefined();
});
