/**
 * A page on another site cannot open `/signal` on a member through its visitor's browser. The
 * origin check covered writes only, and a WebSocket upgrade is a GET: a page on any site could
 * open `/signal` on a loopback member (its Host is 127.0.0.1), learn the members' ids from
 * `welcome`, and take the id of a member that joined through this hub (newest socket wins; only
 * the hub's own id is protected) (found by a review of the origin check). Browsers send `Origin`
 * on every WebSocket; members' own clients send none.
 */
import { afterAll, expect, test } from "bun:test";
import { type Node, startNode } from "../src/node.ts";
import { SOCKET_PROTOCOL_VERSION } from "../src/signaling/socket_protocol.ts";
import { roomId } from "../src/wire/envelope.ts";

const nodes: Node[] = [];
afterAll(async () => {
  for (const n of nodes) await n.shutdown().catch(() => {});
});

test("a cross-site page's WebSocket to /signal is refused", async () => {
  const a = await startNode(
    { secret: "s", http: "127.0.0.1:0", logLevel: "silent", partitionCount: 7 } as never,
  ) as Node;
  nodes.push(a);
  const b = await startNode({ secret: "s", join: [a.httpUrl!], logLevel: "silent", partitionCount: 7 });
  nodes.push(b);
  for (let i = 0; i < 200 && b.cluster.members().length < 2; i++) await new Promise((r) => setTimeout(r, 50));
  const wsUrl = a.httpUrl!.replace("http", "ws") + "/signal";
  const hello = (id: string) =>
    new Promise<Array<{ type: string; peers?: string[]; code?: string }>>((resolve) => {
      // What a browser sends for `new WebSocket(...)` from https://evil.example.
      const ws = new WebSocket(wsUrl, { headers: { Origin: "https://evil.example" } } as never);
      const messages: Array<{ type: string; peers?: string[] }> = [];
      ws.onopen = () =>
        ws.send(JSON.stringify({ type: "hello", v: SOCKET_PROTOCOL_VERSION, room: roomId("shoal"), id }));
      ws.onmessage = (e) => messages.push(JSON.parse(String(e.data)));
      ws.onclose = () => resolve(messages);
      setTimeout(() => (ws.close(), resolve(messages)), 1500);
    });
  const first = await hello("page-1");
  console.log("cross-site socket got:", JSON.stringify(first));
  const bId = (b as unknown as { cluster: { self: string } }).cluster.self ?? "";
  const taken = await hello(String(first[0]?.peers?.find((p) => p !== undefined && p !== a.cluster.self) ?? bId));
  console.log("hello with the joined member's id got:", JSON.stringify(taken));
  expect(first[0]?.type).not.toBe("welcome");
}, 60_000);
