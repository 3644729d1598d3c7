/**
 * The HTTP idle timeout (runtime/serve.ts). Bun.serve ran with `idleTimeout: 0`: a client that
 * made one request and kept its socket idle was never cut off, and a few hundred such sockets
 * used up a member's file descriptors (its API stopped answering, found by an internal review).
 * Now idle connections close after the timeout (40 s; 2 s here, which Bun's coarse timer makes
 * up to 12 s), and the event streams, quiet for longer than that, live on by their keepalive
 * comments.
 */
import { expect, test } from "bun:test";
import { connect, type Socket } from "node:net";
import { createHttpApp } from "../src/http/app.ts";
import { serve } from "../src/runtime/serve.ts";
import { createTestNode } from "./support/test_node.ts";

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

test(
  "idle keep-alive sockets are closed after the idle timeout; a quiet topic stream lives on by its keepalives",
  async () => {
    const node = createTestNode();
    const app = createHttpApp(node, { streamKeepaliveMs: 500 });
    const served = await serve({ port: 0, fetch: app.fetch, idleTimeoutSec: 2 });
    try {
      const socks: Socket[] = [];
      let closed = 0;
      for (let i = 0; i < 30; i++) {
        const s = connect(served.port, "127.0.0.1", () => s.write("GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n"));
        s.on("error", () => {});
        s.on("close", () => closed++);
        s.resume(); // read the answer: a paused socket would not see the server's close
        socks.push(s);
      }
      const stream = await fetch(`${served.url}/topics/quiet/events`);
      expect(stream.status).toBe(200);
      const reader = stream.body!.getReader();
      const dec = new TextDecoder();
      let text = "";
      while (!text.includes("event: ready")) text += dec.decode((await reader.read()).value);
      // Bun's socket timer moves in 4 s steps: a socket closes 2–12 s after its last byte.
      const t0 = Date.now();
      while (closed < 30 && Date.now() - t0 < 20_000) await sleep(250);
      console.log(`30 idle sockets closed by the server within ${Date.now() - t0} ms`);
      expect(closed).toBe(30);
      // The stream, quiet but for its keepalives for longer than the idle timeout, still delivers.
      const pub = await fetch(`${served.url}/topics/quiet`, {
        method: "POST",
        body: JSON.stringify("after the quiet"),
        headers: { "content-type": "application/json" },
      });
      expect(pub.status).toBe(201);
      while (!text.includes("event: message")) text += dec.decode((await reader.read()).value);
      expect(text).toContain(": keepalive");
      expect(text).toContain('data: "after the quiet"');
      await reader.cancel();
      for (const s of socks) s.destroy();
    } finally {
      await served.close();
    }
  },
  60_000,
);
