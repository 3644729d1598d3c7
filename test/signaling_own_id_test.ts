/**
 * A member's signaling id on its own hub cannot be taken by a socket from elsewhere. The hub
 * let any hello name any id ("the newest socket wins", for reconnects), and a member's id is
 * public (`GET /health`): a client without the secret or the token held member A's id on A's
 * own `/signal` about 97 % of the time and received the signals meant for A (found by an
 * internal review). A member registers on its own hub in process, and such a registration is
 * no longer replaced by a network socket.
 */
import { afterAll, expect, test } from "bun:test";
import { type Node, startNode } from "../src/node.ts";
import { SOCKET_PROTOCOL_VERSION } from "../src/signaling/socket_protocol.ts";
import { roomId } from "../src/wire/envelope.ts";

const nodes: Node[] = [];
afterAll(async () => {
  for (const n of nodes) await n.shutdown().catch(() => {});
});

test("a network socket naming the hub's own member is refused; another id is welcome", async () => {
  const a = await startNode({ secret: "s", token: "T", http: "127.0.0.1:0", logLevel: "silent", partitionCount: 7 });
  nodes.push(a);
  const health = await (await fetch(a.httpUrl + "/health")).json();
  const wsUrl = a.httpUrl!.replace("http", "ws") + "/signal";
  const hello = (id: string) =>
    new Promise<{ messages: Array<{ type: string; code?: string }>; closed: number | undefined }>((resolve) => {
      const ws = new WebSocket(wsUrl);
      const messages: Array<{ type: string; code?: string }> = [];
      ws.onopen = () =>
        ws.send(JSON.stringify({ type: "hello", v: SOCKET_PROTOCOL_VERSION, room: roomId("shoal"), id }));
      ws.onmessage = (e) => messages.push(JSON.parse(String(e.data)));
      ws.onclose = (e) => resolve({ messages, closed: e.code });
      setTimeout(() => (ws.close(), resolve({ messages, closed: undefined })), 2000);
    });
  const stolen = await hello(health.member);
  expect(stolen.messages.map((m) => m.type)).toEqual(["error"]);
  expect(stolen.closed).toBe(1008);
  const other = await hello("someone-else");
  expect(other.messages[0]?.type).toBe("welcome");
  // The member is still registered: a second member joins through it.
  const b = await startNode({ secret: "s", join: [a.httpUrl!], logLevel: "silent", partitionCount: 7 });
  nodes.push(b);
  for (let i = 0; i < 200 && b.cluster.members().length < 2; i++) await new Promise((r) => setTimeout(r, 50));
  expect(b.cluster.members().length).toBe(2);
}, 60_000);
