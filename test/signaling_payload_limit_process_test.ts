/**
 * The signaling endpoint's 64 KiB message limit holds before a message is buffered (Bun). The
 * limit was checked in the handler, after the runtime had buffered the whole message, and Bun's
 * WebSocket handler took its default of 16 MiB: a client with no token and no secret held ~14
 * MiB per socket with an unfinished frame (8 sockets: +112 MiB of RSS). Now Bun's
 * `maxPayloadLength` closes such a socket from the frame's header (src/runtime/websocket.ts).
 */
import { afterAll, expect, test } from "bun:test";
import { readFileSync } from "node:fs";
import { connect, type Socket } from "node:net";
import { killAll, spawnMod } from "./support/cluster.ts";

afterAll(() => killAll());

const rssKb = (pid: number) => Number(/VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${pid}/status`, "utf8"))![1]);

function bigUnfinishedFrame(port: number, bytes: number): Promise<Socket> {
  return new Promise((resolve, reject) => {
    const s = connect(port, "127.0.0.1", () => {
      s.write(
        `GET /signal HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n` +
          `Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n`,
      );
    });
    let upgraded = false;
    s.on("data", (d) => {
      if (upgraded || !String(d).startsWith("HTTP/1.1 101")) return;
      upgraded = true;
      const header = Buffer.alloc(14);
      header[0] = 0x81; // FIN, text
      header[1] = 0x80 | 127; // masked, 64-bit length
      header.writeBigUInt64BE(BigInt(bytes + 1024), 2); // announce a bit more than we send
      header.writeUInt32BE(0, 10); // mask key 0
      s.write(header);
      s.write(Buffer.alloc(bytes, 0x61), () => resolve(s));
    });
    s.on("error", reject);
  });
}

test("an unauthenticated client cannot make a member buffer more than 64 KiB per signaling socket", async () => {
  const m = spawnMod("bun", [
    "node",
    "--name",
    "big",
    "--http",
    "127.0.0.1:0",
    "--secret",
    "s",
    "--token",
    "T",
    "--log-level",
    "warn",
  ]);
  const ready = await m.ready;
  const port = Number(new URL(ready.http).port);
  const pid = m.child.pid as number;
  await new Promise((r) => setTimeout(r, 1000));
  const before = rssKb(pid);
  const socks: Socket[] = [];
  for (let i = 0; i < 8; i++) socks.push(await bigUnfinishedFrame(port, 14 * 1024 * 1024));
  await new Promise((r) => setTimeout(r, 2000));
  const after = rssKb(pid);
  const open = socks.filter((s) => !s.destroyed).length;
  console.log(
    `member RSS ${Math.round(before / 1024)} MiB -> ${
      Math.round(after / 1024)
    } MiB with 8 unfinished frames; sockets still open: ${open}`,
  );
  for (const s of socks) s.destroy();
  m.child.kill("SIGKILL");
  // At most 8 x 64 KiB buffered: frames past the limit are refused from their header.
  expect(open).toBe(0);
  expect(after - before).toBeLessThan(16 * 1024);
}, 120_000);
