/**
 * Minimal clients for the stores bench/peers.ts compares Shoal with, written against the
 * stores' documented wire protocols over `node:net` (Bun and Deno alike) so that every store
 * gets the same socket layer and the same pipelining, and the project needs no client
 * packages: Redis (RESP2), ZooKeeper (its jute-encoded client protocol: connect, create,
 * setData) and etcd (the v3 gRPC gateway's HTTP/JSON `kv/put`, through `fetch`).
 *
 * Each connection answers its requests in the order they were sent (both protocols reply in
 * order), so a pending request is a FIFO entry; a connection error rejects everything pending.
 */
import { connect, type Socket } from "node:net";
import { Buffer } from "node:buffer";

/** One request waiting for its reply. */
interface Pending<T> {
  resolve(v: T): void;
  reject(e: Error): void;
}

/** Most bytes a connection buffers while waiting for the rest of a reply. */
const maxBuffered = 16 * 1024 * 1024;

/** A TCP connection whose replies arrive in request order, parsed by `parse`. */
abstract class OrderedConn<T> {
  protected readonly pending: Pending<T>[] = [];
  #buf: Buffer = Buffer.alloc(0);
  #error: Error | undefined;

  protected constructor(protected readonly socket: Socket) {
    socket.setNoDelay(true);
    socket.on("data", (chunk: Buffer) => {
      this.#buf = this.#buf.length === 0 ? chunk : Buffer.concat([this.#buf, chunk]);
      if (this.#buf.length > maxBuffered) return this.#fail(new Error("reply larger than 16 MiB"));
      for (;;) {
        const r = this.parse(this.#buf);
        if (!r) break;
        this.#buf = this.#buf.subarray(r.used);
        this.onReply(r.reply);
      }
    });
    socket.on("error", (e: Error) => this.#fail(e));
    socket.on("close", () => this.#fail(new Error("connection closed")));
  }

  /** One complete reply at the start of `buf` and the bytes it took, or undefined when incomplete. */
  protected abstract parse(buf: Buffer): { reply: T; used: number } | undefined;

  protected onReply(reply: T): void {
    this.pending.shift()?.resolve(reply);
  }

  protected send(bytes: Uint8Array, count = 1): Promise<T>[] {
    if (this.#error) return Array.from({ length: count }, () => Promise.reject(this.#error));
    const out = Array.from(
      { length: count },
      () => new Promise<T>((resolve, reject) => this.pending.push({ resolve, reject })),
    );
    this.socket.write(bytes);
    return out;
  }

  #fail(e: Error): void {
    this.#error ??= e;
    for (const p of this.pending.splice(0)) p.reject(e);
  }

  close(): void {
    this.socket.destroy();
  }
}

function open(port: number): Promise<Socket> {
  return new Promise((resolve, reject) => {
    const s = connect({ host: "127.0.0.1", port }, () => {
      s.off("error", reject);
      resolve(s);
    });
    s.once("error", reject);
  });
}

// ---------------------------------------------------------------- Redis (RESP2)

/** A RESP2 reply: simple string, integer, bulk string (null when absent) or an error. */
export type RespReply = string | number | null | Error;

function respCommand(args: string[]): string {
  let s = `*${args.length}\r\n`;
  for (const a of args) s += `$${Buffer.byteLength(a)}\r\n${a}\r\n`;
  return s;
}

export class RedisConn extends OrderedConn<RespReply> {
  private constructor(socket: Socket) {
    super(socket);
  }

  static async open(port: number): Promise<RedisConn> {
    return new RedisConn(await open(port));
  }

  /** Sends the commands in one write (pipelined); resolves with their replies in order. */
  commands(...cmds: string[][]): Promise<RespReply[]> {
    return Promise.all(this.send(Buffer.from(cmds.map(respCommand).join("")), cmds.length));
  }

  protected parse(buf: Buffer): { reply: RespReply; used: number } | undefined {
    const eol = buf.indexOf("\r\n");
    if (eol < 0) return undefined;
    const line = buf.toString("latin1", 1, eol);
    switch (buf[0]) {
      case 0x2b: // +
        return { reply: line, used: eol + 2 };
      case 0x2d: // -
        return { reply: new Error(line), used: eol + 2 };
      case 0x3a: // :
        return { reply: Number(line), used: eol + 2 };
      case 0x24: { // $
        const n = Number(line);
        if (n < 0) return { reply: null, used: eol + 2 };
        if (buf.length < eol + 2 + n + 2) return undefined;
        return { reply: buf.toString("utf8", eol + 2, eol + 2 + n), used: eol + 2 + n + 2 };
      }
      default:
        throw new Error(`Cannot parse the RESP reply type 0x${buf[0].toString(16)}: only + - : $ are used here`);
    }
  }
}

// ---------------------------------------------------------------- ZooKeeper

/** A ZooKeeper reply frame: transaction id and error code (0 = ok; the body is not read). */
export interface ZkReply {
  xid: number;
  err: number;
}

/** ZooKeeper error codes this bench meets. */
export const ZK_NODE_EXISTS = -110;

/** Writes jute values (big-endian ints, length-prefixed strings and buffers) into one growing buffer. */
class Jute {
  readonly parts: Buffer[] = [];
  int(n: number): this {
    const b = Buffer.alloc(4);
    b.writeInt32BE(n);
    this.parts.push(b);
    return this;
  }
  long(n: bigint): this {
    const b = Buffer.alloc(8);
    b.writeBigInt64BE(n);
    this.parts.push(b);
    return this;
  }
  bool(v: boolean): this {
    this.parts.push(Buffer.from([v ? 1 : 0]));
    return this;
  }
  buffer(b: Uint8Array): this {
    this.int(b.length);
    this.parts.push(Buffer.from(b));
    return this;
  }
  string(s: string): this {
    return this.buffer(Buffer.from(s, "utf8"));
  }
  /** The frame: a 4-byte length, then the values. */
  frame(): Buffer {
    const body = Buffer.concat(this.parts);
    const len = Buffer.alloc(4);
    len.writeInt32BE(body.length);
    return Buffer.concat([len, body]);
  }
}

const ZK_CREATE = 1;
const ZK_SET_DATA = 5;

export class ZkConn extends OrderedConn<ZkReply> {
  #xid = 1;
  #connected = false;

  private constructor(socket: Socket) {
    super(socket);
  }

  /** Opens a session (timeout `sessionMs`) on the server at `port`. */
  static async open(port: number, sessionMs = 30_000): Promise<ZkConn> {
    const c = new ZkConn(await open(port));
    // ConnectRequest: protocolVersion, lastZxidSeen, timeOut, sessionId, passwd, readOnly.
    const req = new Jute().int(0).long(0n).int(sessionMs).long(0n).buffer(new Uint8Array(16)).bool(false).frame();
    const [reply] = c.send(req);
    await reply;
    c.#connected = true;
    return c;
  }

  protected parse(buf: Buffer): { reply: ZkReply; used: number } | undefined {
    if (buf.length < 4) return undefined;
    const len = buf.readInt32BE(0);
    if (buf.length < 4 + len) return undefined;
    // The connect response has no reply header; every later frame starts xid, zxid, err.
    const reply = this.#connected ? { xid: buf.readInt32BE(4), err: buf.readInt32BE(16) } : { xid: 0, err: 0 };
    return { reply, used: 4 + len };
  }

  protected override onReply(reply: ZkReply): void {
    // Watch events (xid -1) and pings (xid -2) are not requests of ours.
    if (reply.xid === -1 || reply.xid === -2) return;
    super.onReply(reply);
  }

  /** Creates a persistent node with an open ACL. */
  create(path: string, data: Uint8Array): Promise<ZkReply> {
    const j = new Jute().int(this.#xid++).int(ZK_CREATE).string(path).buffer(data);
    j.int(1).int(31).string("world").string("anyone"); // ACL vector: one entry, all permissions
    return this.send(j.int(0).frame())[0];
  }

  /** Sets a node's data at any version. */
  setData(path: string, data: Uint8Array): Promise<ZkReply> {
    return this.send(new Jute().int(this.#xid++).int(ZK_SET_DATA).string(path).buffer(data).int(-1).frame())[0];
  }
}

// ---------------------------------------------------------------- etcd (v3 gRPC gateway, JSON)

const b64 = (s: string) => Buffer.from(s, "utf8").toString("base64");

/**
 * `PUT key value` through the gateway of the member at `baseUrl` (`POST /v3/kv/put`).
 * @throws Error on a status other than 200, or after `timeoutMs`
 */
export async function etcdPut(baseUrl: string, key: string, value: string, timeoutMs = 10_000): Promise<void> {
  const res = await fetch(`${baseUrl}/v3/kv/put`, {
    method: "POST",
    signal: AbortSignal.timeout(timeoutMs),
    headers: { "content-type": "application/json" },
    body: JSON.stringify({ key: b64(key), value: b64(value) }),
  });
  if (res.status !== 200) throw new Error(`etcd put: HTTP ${res.status} ${await res.text()}`);
  await res.arrayBuffer();
}
