/**
 * A bare WebSocket client over node:net for tests that play an abuser: it can pick its
 * source address on loopback (127.0.0.x, so the per-IP limits see many clients), send
 * frames a browser never would (oversized, malformed, binary garbage), and hold sockets
 * open cheaply. Only what the tests need: client frames are masked, server frames are
 * parsed for text messages and the close code, and a close frame is answered.
 */
import net from "node:net";

export interface RawWs {
  /** The HTTP status of the upgrade answer (101 when it was accepted). */
  status: number;
  /** Text messages received. */
  texts: string[];
  /** The close code the server sent, if any. */
  closeCode: number | null;
  /** Whether the TCP connection has ended. */
  ended: boolean;
  /** Sends one frame (text by default) with `payload`. */
  send(payload: string | Uint8Array, opcode?: number): void;
  /** Ends the connection. */
  destroy(): void;
}

function frame(opcode: number, payload: Uint8Array): Uint8Array {
  const n = payload.length;
  const head = n < 126 ? 2 : n < 65536 ? 4 : 10;
  const out = new Uint8Array(head + 4 + n);
  out[0] = 0x80 | opcode;
  if (n < 126) out[1] = 0x80 | n;
  else if (n < 65536) {
    out[1] = 0x80 | 126;
    out[2] = n >> 8;
    out[3] = n & 0xff;
  } else {
    out[1] = 0x80 | 127;
    new DataView(out.buffer).setBigUint64(2, BigInt(n));
  }
  const mask = crypto.getRandomValues(new Uint8Array(4));
  out.set(mask, head);
  for (let i = 0; i < n; i++) out[head + 4 + i] = payload[i] ^ mask[i & 3];
  return out;
}

/**
 * Opens a WebSocket to `ws://host:port{path}` from `localAddress`.
 * @returns the socket once the server answered the upgrade (whatever the status)
 */
export function openRawWs(host: string, port: number, path: string, localAddress: string): Promise<RawWs> {
  return new Promise((resolve, reject) => {
    const sock = net.connect({ host, port, localAddress });
    let buf = new Uint8Array(0);
    let upgraded = false;
    const ws: RawWs = {
      status: 0,
      texts: [],
      closeCode: null,
      ended: false,
      send(payload, opcode = 1) {
        if (ws.ended) return;
        const bytes = typeof payload === "string" ? new TextEncoder().encode(payload) : payload;
        sock.write(frame(opcode, bytes));
      },
      destroy() {
        sock.destroy();
      },
    };
    const parseFrames = () => {
      for (;;) {
        if (buf.length < 2) return;
        const opcode = buf[0] & 0x0f;
        let len = buf[1] & 0x7f;
        let off = 2;
        if (len === 126) {
          if (buf.length < 4) return;
          len = (buf[2] << 8) | buf[3];
          off = 4;
        } else if (len === 127) {
          if (buf.length < 10) return;
          len = Number(new DataView(buf.buffer, buf.byteOffset).getBigUint64(2));
          off = 10;
        }
        if (buf.length < off + len) return;
        const payload = buf.slice(off, off + len);
        buf = buf.slice(off + len);
        if (opcode === 1 && ws.texts.length < 1000) ws.texts.push(new TextDecoder().decode(payload));
        if (opcode === 8 && ws.closeCode === null) {
          ws.closeCode = payload.length >= 2 ? (payload[0] << 8) | payload[1] : 1005;
          // Answer the close like a browser would, then let the server end the connection.
          if (!ws.ended) sock.write(frame(8, payload.slice(0, 2)));
        }
      }
    };
    sock.on("connect", () => {
      const key = btoa(String.fromCharCode(...crypto.getRandomValues(new Uint8Array(16))));
      sock.write(
        `GET ${path} HTTP/1.1\r\nHost: ${host}:${port}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n` +
          `Sec-WebSocket-Key: ${key}\r\nSec-WebSocket-Version: 13\r\n\r\n`,
      );
    });
    sock.on("data", (chunk: Uint8Array) => {
      const next = new Uint8Array(buf.length + chunk.length);
      next.set(buf);
      next.set(chunk, buf.length);
      buf = next;
      if (!upgraded) {
        const text = new TextDecoder().decode(buf);
        const end = text.indexOf("\r\n\r\n");
        if (end < 0) return;
        upgraded = true;
        ws.status = Number(/^HTTP\/1\.1 (\d{3})/.exec(text)?.[1] ?? 0);
        buf = buf.slice(new TextEncoder().encode(text.slice(0, end + 4)).length);
        resolve(ws);
      }
      parseFrames();
    });
    sock.on("error", (err) => {
      ws.ended = true;
      if (!upgraded) reject(err);
    });
    sock.on("close", () => {
      ws.ended = true;
      if (!upgraded) reject(new Error("closed before the upgrade answer"));
    });
  });
}
