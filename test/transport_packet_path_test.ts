/**
 * The packet-path patches of werift (src/transport/packet_path.ts): each one leaves the bytes
 * on the wire and werift's state exactly as werift's own code would. werift's SCTP
 * associations are run in memory here (two associations whose DTLS layer is a function
 * call), next to unpatched ones, and compared; the UDP and end-to-end checks use loopback.
 */
import { afterAll, expect, test } from "bun:test";
import { Buffer } from "node:buffer";
import { Event, RTCSctpTransport, UdpTransport } from "werift";
import {
  directSends,
  fastDataPackets,
  fastMarkReceived,
  fastRecords,
  fastUdpSend,
  packetPathFigures,
  raiseReceiveBuffer,
  syncEvents,
} from "../src/transport/packet_path.ts";
import { runtimeName } from "../src/runtime/process.ts";
import { crc32c } from "werift";
import { tuneSackPolicy, type WebRtcPeer } from "../src/transport/webrtc_peer.ts";
import { bundleSacks, sackBundlingFigures } from "../src/transport/sack_bundling.ts";
import { openPeerPair, sendBulkFrames } from "./support/webrtc_pair.ts";
import { until } from "./support/until.ts";

// deno-lint-ignore no-explicit-any
type Sctp = any;

/** Every in-memory association made here, stopped (their timers cleared) once a test is done with it. */
const associations: RTCSctpTransport[] = [];
async function stopAssociations(): Promise<void> {
  for (const t of associations.splice(0)) await t.stop().catch(() => {});
}
afterAll(stopAssociations);

/**
 * Two werift SCTP associations joined in memory: what one sends reaches the other's
 * handleData on the next turn. Resolves once both are established.
 */
async function sctpPair(tune: (s: Sctp) => void): Promise<{ a: Sctp; b: Sctp }> {
  // deno-lint-ignore no-explicit-any
  const dtls: any[] = [];
  for (const id of ["a", "b"]) {
    const self = {
      id,
      onStateChange: new Event(),
      iceTransport: { role: id === "a" ? "controlling" : "controlled" },
      dataReceiver: undefined as undefined | ((d: Buffer) => void),
      sendData: (d: Buffer) => {
        const peer = dtls[id === "a" ? 1 : 0];
        setImmediate(() => peer.dataReceiver?.(d));
        return Promise.resolve();
      },
    };
    dtls.push(self);
  }
  const [ta, tb] = [new RTCSctpTransport(), new RTCSctpTransport()];
  associations.push(ta, tb);
  ta.setDtlsTransport(dtls[0]);
  tb.setDtlsTransport(dtls[1]);
  const a: Sctp = ta.sctp, b: Sctp = tb.sctp;
  a.isServer = false;
  b.isServer = true;
  await b.start(5000);
  await a.start(5000);
  await until(() => (a.associationState === 4 && b.associationState === 4) || undefined, 10_000, "established");
  tune(a);
  tune(b);
  return { a, b };
}

/** Sends `messages` from a to b (stream 0, binary) and resolves with what b received. */
async function transfer(a: Sctp, b: Sctp, messages: Buffer[]): Promise<Buffer[]> {
  const got: Buffer[] = [];
  let done!: () => void;
  const all = new Promise<void>((r) => (done = r));
  b.onReceive.subscribe((_stream: number, _ppid: number, data: Buffer) => {
    got.push(Buffer.from(data));
    if (got.length === messages.length) done();
  });
  for (const m of messages) await a.send(0, 53, m);
  await all;
  return got;
}

/** Messages of many lengths: whole, fragmented, and every padding case (length mod 4). */
function messages(): Buffer[] {
  const out: Buffer[] = [];
  for (const n of [1, 2, 3, 4, 5, 1199, 1200, 1201, 2402, 3000, 12_000]) {
    out.push(Buffer.from(Array.from({ length: n }, (_, i) => (i * 31 + n) & 255)));
  }
  return out;
}

/** The packets `sctp.sendChunk` (patched or werift's own, `send`) hands to the DTLS layer for `chunks`. */
async function serialized(sctp: Sctp, send: (c: Sctp) => Promise<void>, chunks: Sctp[]): Promise<Buffer[]> {
  const real = sctp.transport;
  const out: Buffer[] = [];
  sctp.transport = { send: (d: Buffer) => (out.push(Buffer.from(d)), Promise.resolve()) };
  try {
    for (const c of chunks) await send(c);
  } finally {
    sctp.transport = real;
  }
  return out;
}

test("DATA and SACK packets built in one buffer are the bytes werift builds, and arrive", async () => {
  const before = packetPathFigures();
  const { a, b } = await sctpPair((s) => expect(fastDataPackets(s, crc32c)).toBe(true));
  const sent: Sctp[] = [];
  for (const s of [a, b]) {
    const patched = s.sendChunk;
    s.sendChunk = (chunk: Sctp) => (sent.push(chunk), patched(chunk));
  }
  const msgs = messages();
  expect(await transfer(a, b, msgs)).toEqual(msgs);
  await new Promise((r) => setTimeout(r, 50));
  const data = sent.filter((c) => c.type === 0), sacks = sent.filter((c) => c.type === 3);
  expect(data.length).toBeGreaterThanOrEqual(msgs.length + 13);
  expect(sacks.length).toBeGreaterThan(0);
  const after = packetPathFigures();
  expect(after.dataPackets - before.dataPackets).toBe(data.length);
  expect(after.sackPackets - before.sackPackets).toBe(sacks.length);
  // SACKs with gap blocks and duplicate TSNs, as a lossy link makes them.
  const Sack = sacks[0].constructor;
  for (const [gaps, dups] of [[[[2, 3]], []], [[[2, 3], [5, 5]], [7, 2 ** 32 - 1]], [[], [1]]]) {
    const x = new Sack(0, undefined);
    x.cumulativeTsn = 2 ** 32 - 2;
    x.advertisedRwnd = 123_456;
    x.gaps = gaps;
    x.duplicates = dups;
    sacks.push(x);
  }
  const own = Object.getPrototypeOf(a).sendChunk;
  for (const [s, chunks] of [[a, data], [b, sacks]] as const) {
    const fast = await serialized(s, s.sendChunk, chunks);
    const werift = await serialized(s, (c) => own.call(s, c), chunks);
    expect(fast.length).toBe(chunks.length);
    for (let i = 0; i < chunks.length; i++) expect(fast[i].equals(werift[i])).toBe(true);
  }
}, 30_000);

test("in-order TSNs take the fast path; gaps, duplicates and wrap-around leave werift's state", async () => {
  const { a: plain } = await sctpPair(() => {});
  const { a: fast } = await sctpPair((s) => expect(fastMarkReceived(s)).toBe(true));
  const state = (s: Sctp) => ({
    last: s.lastReceivedTsn,
    misordered: [...s.sackMisOrdered].sort((x: number, y: number) => x - y),
    duplicates: [...s.sackDuplicates],
  });
  const start = 2 ** 32 - 3;
  for (const s of [plain, fast]) {
    s.lastReceivedTsn = start;
    s.sackMisOrdered = new Set();
    s.sackDuplicates = [];
  }
  const wrap = (n: number) => (start + n) % 2 ** 32;
  // in order across the wrap, a duplicate, a gap, the gap filled, in order again
  const tsns = [1, 2, 3, 4, 4, 2, 7, 6, 5, 8, 9, 9, 10].map(wrap);
  for (const tsn of tsns) {
    expect(fast.markReceived(tsn)).toBe(plain.markReceived(tsn));
    expect(state(fast)).toEqual(state(plain));
  }
  expect(fast.lastReceivedTsn).toBe(wrap(10));
  // Their received-TSN state was set by hand: stopped before any packet or timer meets it.
  await stopAssociations();
});

test("events without queued subscribers run their subscribers in order; queued ones still run", async () => {
  const order: string[] = [];
  const plain = new Event<[number]>(),
    fast = new Event<[number]>(),
    queued = new Event<[number]>(),
    ended = new Event<
      [number]
    >();
  expect(syncEvents([plain, fast, queued, ended, undefined, {}])).toBe(4);
  for (const [name, e] of [["plain", plain], ["fast", fast], ["queued", queued], ["ended", ended]] as const) {
    e.subscribe((n) => order.push(`${name}1:${n}`));
    e.once((n) => order.push(`${name}-once:${n}`));
    e.subscribe((n) => order.push(`${name}2:${n}`));
  }
  queued.queuingSubscribe(async (n) => {
    await Promise.resolve();
    order.push(`queued-async:${n}`);
  });
  ended.complete();
  for (const e of [fast, queued, ended]) {
    e.execute(1);
    e.execute(2);
  }
  await new Promise((r) => setTimeout(r, 10));
  expect(order).toEqual([
    "fast1:1",
    "fast-once:1",
    "fast2:1",
    "fast1:2",
    "fast2:2",
    "queued1:1",
    "queued-once:1",
    "queued2:1",
    "queued1:2",
    "queued2:2",
    "queued-async:1",
    "queued-async:2",
  ]);
});

test("UDP sockets get a larger receive buffer; datagrams go straight to Bun's native socket (not tuned elsewhere) and arrive whole", async () => {
  const tx = await UdpTransport.init("udp4");
  const rx = await UdpTransport.init("udp4");
  try {
    // A larger receive buffer (the kernel caps it at net.core.rmem_max and reports it doubled).
    const rxSocket = rx.socket as unknown as { getRecvBufferSize(): number };
    const rcvbuf = rxSocket.getRecvBufferSize();
    expect(raiseReceiveBuffer(rx)).toBe(runtimeName() === "bun"); // Deno keeps the default (see packet_path.ts)
    expect(raiseReceiveBuffer(rx)).toBe(false); // once per transport
    if (rcvbuf < 1 << 20 && runtimeName() === "bun") expect(rxSocket.getRecvBufferSize()).toBeGreaterThan(rcvbuf);
    const before = packetPathFigures();
    const tuned = fastUdpSend(tx);
    expect(tuned).toBe(runtimeName() === "bun");
    const got: Buffer[] = [];
    rx.onData = (d: Buffer) => got.push(Buffer.from(d));
    const port = rx.address.port;
    const sent = Array.from({ length: 50 }, (_, i) => Buffer.alloc(1 + i * 25, i));
    for (const d of sent) await tx.send(d, ["127.0.0.1", port]);
    await until(() => got.length === sent.length || undefined, 10_000, "datagrams received");
    expect(got).toEqual(sent);
    const after = packetPathFigures();
    if (tuned) expect(after.udpFast - before.udpFast).toBe(sent.length);
    // A host name is not sent straight: node:dgram's own path resolves it.
    if (tuned) {
      await tx.send(Buffer.from("by name"), ["localhost", port]);
      await until(() => got.length === sent.length + 1 || undefined, 10_000, "datagram by name");
      expect(packetPathFigures().udpFallback - after.udpFallback).toBe(1);
      // A socket whose send was wrapped (as the retransmission tests drop packets) keeps its wrapper.
      const seen: number[] = [];
      const socket = tx.socket as unknown as { send: (d: Uint8Array, ...rest: unknown[]) => unknown };
      const own = socket.send.bind(socket);
      socket.send = (d: Uint8Array, ...rest: unknown[]) => (seen.push(d.byteLength), own(d, ...rest));
      await tx.send(Buffer.alloc(7, 1), ["127.0.0.1", port]);
      expect(seen).toEqual([7]);
      await until(() => got.length === sent.length + 2 || undefined, 10_000, "datagram through the wrapper");
    }
  } finally {
    await tx.close();
    await rx.close();
  }
});

const peers: WebRtcPeer[] = [];
afterAll(async () => {
  for (const p of peers) await p.close();
});

test("a peer connection gets every patch and a bulk transfer arrives whole and in order", async () => {
  const before = packetPathFigures();
  const [a, b] = await openPeerPair(peers);
  const after = packetPathFigures();
  expect(after.dataTuned - before.dataTuned).toBe(2);
  expect(after.tsnTuned - before.tsnTuned).toBe(2);
  expect(after.recordsTuned - before.recordsTuned).toBe(2);
  expect(after.dataUntuned + after.tsnUntuned + after.eventsUntuned + after.recordsUntuned).toBe(
    before.dataUntuned + before.tsnUntuned + before.eventsUntuned + before.recordsUntuned,
  );
  expect(after.eventsTuned - before.eventsTuned).toBeGreaterThanOrEqual(2 * 5);
  expect(after.directTuned - before.directTuned).toBe(4); // each side's DTLS transport and ICE connection
  expect(after.directUntuned).toBe(before.directUntuned);
  if (runtimeName() === "bun") expect(after.udpTuned - before.udpTuned).toBeGreaterThanOrEqual(2);
  if (runtimeName() === "bun") expect(after.rcvbufRaised - before.rcvbufRaised).toBeGreaterThanOrEqual(2);

  const frames = 200, frameBytes = 12_000;
  const received = await sendBulkFrames(a, b, frames, frameBytes);
  expect(received).toEqual(Array.from({ length: frames }, (_, i) => i % 251));
  const end = packetPathFigures();
  expect(end.dataPackets - after.dataPackets).toBeGreaterThanOrEqual(frames * 10);
  if (runtimeName() === "bun") expect(end.udpFast - after.udpFast).toBeGreaterThanOrEqual(frames * 10);
  // Every record went through the patched encryption, and b's DTLS layer (which checks each tag) took them.
  expect(end.records - after.records).toBeGreaterThanOrEqual(frames * 10);
  // …and every packet went down through the direct sends to the UDP transport.
  expect(end.directStun - after.directStun).toBeGreaterThanOrEqual(frames * 10);
}, 60_000);

test("DTLS records encrypted in place are the bytes werift's own send makes", async () => {
  const [a] = await openPeerPair(peers);
  // deno-lint-ignore no-explicit-any
  const sock = (a.sctpTransportForTests() as any).dtlsTransport.dtls;
  expect(typeof sock.shoalWeriftSend).toBe("function");
  expect(fastRecords(sock)).toBe(false); // once per socket
  const real = sock.transport;
  const out: Buffer[] = [];
  sock.transport = { send: (d: Buffer) => (out.push(Buffer.from(d)), Promise.resolve()) };
  try {
    for (const n of [0, 1, 15, 16, 17, 1228, 1244]) {
      const payload = Buffer.from(Array.from({ length: n }, (_, i) => (i * 7 + n) & 255));
      const seq = sock.dtls.recordSequenceNumber;
      await sock.send(payload);
      sock.dtls.recordSequenceNumber = seq; // werift's own send, same sequence number
      await sock.shoalWeriftSend(payload);
      expect(out.length).toBe(2);
      const [fast, werift] = out.splice(0);
      expect(fast.equals(werift)).toBe(true);
      expect(fast.byteLength).toBe(13 + 8 + n + 16);
    }
  } finally {
    sock.transport = real;
  }
}, 30_000);

test(
  "direct DTLS and ICE sends do what werift's async wrappers do: datagrams, counts, closed and failing layers",
  async () => {
    const [a] = await openPeerPair(peers);
    // deno-lint-ignore no-explicit-any
    const dtls = (a.sctpTransportForTests() as any).dtlsTransport;
    const ice = dtls.iceTransport.connection;
    expect(typeof dtls.shoalWeriftSendData).toBe("function");
    expect(typeof ice.shoalWeriftSend).toBe("function");
    expect(directSends(dtls, ice, () => {})).toBe(0); // once per object
    const pair = ice.nominated, udp = pair.protocol.transport;
    const realSend = udp.send, realClosed = udp.closed, realState = ice.state;
    let sent: [number[], unknown][] = [];
    let mode: "ok" | "reject" | "throw" = "ok";
    udp.send = (d: Uint8Array, addr: unknown) => {
      if (mode === "throw") throw new Error("refused");
      sent.push([[...d], addr]);
      return mode === "reject" ? Promise.reject(new Error("unreachable")) : Promise.resolve();
    };
    /** What one send through `f` did: its outcome, the datagrams, the pair's counts. */
    const run = async (f: () => Promise<unknown>) => {
      const [p0, b0] = [pair.packetsSent, pair.bytesSent];
      sent = [];
      const outcome = await f().then((v) => ({ ok: v }), (e) => ({ error: String(e?.message) }));
      return { outcome, sent, packets: pair.packetsSent - p0, bytes: pair.bytesSent - b0 };
    };
    const data = Buffer.from("a record's bytes");
    try {
      const cases: [string, () => void][] = [
        ["open", () => {}],
        ["udp closed", () => (udp.closed = true)],
        ["send rejects", () => (mode = "reject")],
        ["send throws", () => (mode = "throw")],
        ["ice closed", () => (ice.state = "closed")],
      ];
      for (const [name, set] of cases) {
        set();
        const direct = await run(() => ice.send(data));
        const werift = await run(() => ice.shoalWeriftSend(data));
        expect({ name, ...direct }).toEqual({ name, ...werift });
        udp.closed = realClosed;
        mode = "ok";
        ice.state = realState;
      }
      // The whole way down from the DTLS transport: records reach the nominated pair's address.
      const direct = await run(() => dtls.sendData(data));
      expect(direct.sent.length).toBe(1);
      expect(direct.sent[0][1]).toEqual(pair.remoteAddr);
      expect(direct.packets).toBe(1);
      const sock = dtls.dtls;
      dtls.dtls = undefined;
      const both = [await run(() => dtls.sendData(data)), await run(() => dtls.shoalWeriftSendData(data))];
      dtls.dtls = sock;
      expect(both[0]).toEqual(both[1]);
      expect(both[0].outcome).toEqual({ error: "dtls not established" });
    } finally {
      udp.send = realSend;
      udp.closed = realClosed;
      ice.state = realState;
    }
  },
  30_000,
);

test(
  "a SACK bundled with DATA is written straight into the packet: werift's bytes of both chunks, with gaps and duplicates",
  async () => {
    const { a, b } = await sctpPair((s) => {
      fastDataPackets(s, crc32c);
      expect(tuneSackPolicy(s)).toBe(true);
      expect(bundleSacks(s, crc32c)).toBe(true);
    });
    // Request/response: each reply carries the SACK of its request, content and order kept.
    const before = sackBundlingFigures();
    const data: Sctp[] = [];
    const patched = a.sendChunk;
    a.sendChunk = (c: Sctp) => (c.type === 0 && data.push(c), patched(c));
    b.onReceive.subscribe((_s: number, _p: number, m: Buffer) => void b.send(0, 53, Buffer.from(m)));
    const msgs = messages().filter((m) => m.byteLength <= 1200);
    const echoes: Buffer[] = [];
    a.onReceive.subscribe((_s: number, _p: number, m: Buffer) => void echoes.push(Buffer.from(m)));
    for (const m of msgs) {
      const n = echoes.length;
      await a.send(0, 53, m);
      await until(() => echoes.length > n || undefined, 10_000, "echo");
    }
    expect(echoes).toEqual(msgs);
    const after = sackBundlingFigures();
    expect(after.direct - before.direct).toBeGreaterThanOrEqual(msgs.length - 1);
    expect(after.direct - before.direct).toBe(after.bundled - before.bundled);
    a.sendChunk = patched;

    /** werift's own SACK chunk for `a`'s state (its sendSack, on a copy of that state). */
    const weriftSack = (misOrdered: number[], dups: number[]): Sctp => {
      let sack: Sctp;
      const state = {
        isStopped: false,
        sackNeeded: true,
        sackMisOrdered: new Set(misOrdered),
        sackDuplicates: [...dups],
        lastReceivedTsn: a.lastReceivedTsn,
        advertisedRwnd: a.advertisedRwnd,
        sendChunk: (c: Sctp) => ((sack = c), Promise.resolve()),
      };
      void Object.getPrototypeOf(a).sendSack.call(state);
      return sack;
    };
    const header = () => {
      const h = Buffer.alloc(12);
      h.writeUInt16BE(a.localPort, 0);
      h.writeUInt16BE(a.remotePort, 2);
      h.writeUInt32BE(a.remoteVerificationTag, 4);
      return h;
    };
    const packetOf = (...chunks: Sctp[]) => {
      const p = Buffer.concat([header(), ...chunks.map((c) => c.bytes)]);
      p.writeUInt32LE(crc32c(p) >>> 0, 8);
      return p;
    };
    const base = a.lastReceivedTsn;
    const cases: [number[], number[]][] = [
      [[], []],
      [[base + 2, base + 3, base + 5], []],
      [[base + 2], [base - 1, base - 7]],
      [[], [base]],
      // 13 gap blocks: too large to bundle, the SACK leaves in a packet of its own, then the DATA.
      [Array.from({ length: 13 }, (_, i) => base + 2 + 2 * i), []],
    ];
    for (const [misOrdered, dups] of cases) {
      for (const d of data.filter((c) => c.userData.byteLength <= 5 || c.userData.byteLength === 1200)) {
        const expected = weriftSack(misOrdered, dups).gaps.length > 12
          ? [packetOf(weriftSack(misOrdered, dups)), packetOf(d)]
          : [packetOf(weriftSack(misOrdered, dups), d)];
        a.sackMisOrdered = new Set(misOrdered);
        a.sackDuplicates = [...dups];
        a.sackNeeded = true;
        const got = await serialized(a, a.sendChunk, [d]);
        expect(got.map((p) => p.toString("hex"))).toEqual(expected.map((p) => p.toString("hex")));
        expect(a.sackNeeded).toBe(false);
      }
    }
    a.sackMisOrdered = new Set();
    a.sackDuplicates = [];
  },
  30_000,
);
