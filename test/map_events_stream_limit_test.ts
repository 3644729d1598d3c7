/**
 * Map-event streams are capped per member (64) below the entry-listener pool (256): a read-token
 * holder used to open 256 streams and so take every listener of the member, after which the
 * application's own listeners and every other client got OVERLOADED.
 */
import { afterAll, beforeAll, expect, test } from "bun:test";
import { connect, type Socket } from "node:net";
import { startNode } from "../src/node.ts";
import type { ShoalNode } from "../src/node_api.ts";
import { MAX_MAP_EVENT_STREAMS } from "../src/http/map_events.ts";

let node: ShoalNode & { httpUrl?: string; shutdown(): Promise<void> };
beforeAll(async () => {
  node = await startNode({
    secret: "s",
    http: "127.0.0.1:0",
    logLevel: "silent",
    partitionCount: 7,
    token: "FULL",
    readToken: "READ",
  } as never) as typeof node;
}, 60_000);
afterAll(async () => {
  await node?.shutdown();
});

/** Opens one SSE stream on a raw socket; resolves with its status line once headers arrived. */
function openStream(port: number, path: string, token: string): Promise<{ s: Socket; status: string }> {
  return new Promise((resolve, reject) => {
    const s = connect(
      port,
      "127.0.0.1",
      () => s.write(`GET ${path} HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer ${token}\r\n\r\n`),
    );
    let buf = "";
    s.on("data", (d) => {
      buf += d;
      if (buf.includes("\r\n\r\n")) resolve({ s, status: buf.split("\r\n")[0] });
    });
    s.on("error", reject);
  });
}

test(
  "a read-token client cannot take the member's entry listeners: streams stop at 64, the application's listeners still open",
  async () => {
    const port = Number(new URL(node.httpUrl!).port);
    const socks: Socket[] = [];
    let ok = 0, refused = 0;
    for (let i = 0; i < 80; i++) {
      const { s, status } = await openStream(port, `/maps/junk${i}/events?key=k`, "READ");
      socks.push(s);
      if (status.includes(" 200")) ok++;
      if (status.includes(" 503")) refused++;
    }
    expect(ok).toBe(MAX_MAP_EVENT_STREAMS);
    expect(refused).toBe(80 - MAX_MAP_EVENT_STREAMS);
    const sub = await node.getMap<string, unknown>("orders").openEvents();
    sub.close();
    // Closed streams give their place back.
    for (const s of socks) s.destroy();
    let status = 0;
    for (let i = 0; i < 100 && status !== 200; i++) {
      await new Promise((r) => setTimeout(r, 50));
      const res = await fetch(`${node.httpUrl}/maps/orders/events`, { headers: { authorization: "Bearer FULL" } });
      status = res.status;
      await res.body?.cancel();
    }
    expect(status).toBe(200);
  },
  120_000,
);
