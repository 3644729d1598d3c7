/**
 * werift's per-packet path with its waste removed, not a byte changed on the wire. A snapshot
 * transfer is tens of thousands of 1,200-byte SCTP packets, and werift spends on each far
 * more than its encryption and its UDP send cost (bench/RESULTS.md, "werift's per-packet
 * path"). Six patches, each made on one instance and only when werift's (or Bun's) objects
 * look as expected; otherwise that instance keeps werift's own code and is counted untuned:
 *
 * - {@link fastDataPackets}: a DATA chunk, or a SACK sent alone, is serialized straight into
 *   its packet (werift builds the chunk, then copies header and chunk into a buffer for the
 *   checksum and again into the packet: four buffers and three copies for a DATA chunk, a
 *   buffer per gap block and duplicate TSN besides for a SACK).
 * - {@link fastRecords}: a DTLS record of application data (every SCTP packet) is encrypted
 *   into the buffer that goes out (werift builds a record object, encrypts into a new buffer,
 *   joins nonce, ciphertext and tag into another, and copies that behind the header in a
 *   third).
 * - {@link fastMarkReceived}: the next TSN in order is recorded without werift's per-chunk
 *   Set rebuild, sort and filter (it allocates four arrays and a Set for every DATA chunk).
 * - {@link syncEvents}: werift's events run their ordinary subscribers and then, for
 *   `queuingSubscribe` ones, an async loop, which costs a promise and a closure on every event
 *   even when none is queued (several events per packet received). Skipped when none is.
 * - {@link directSends}: below SCTP, a packet passed through three async functions (werift's
 *   `RTCDtlsTransport.sendData`, ICE `Connection.send` and `StunProtocol.sendData`), each a
 *   promise and an `await` (a microtask turn) per packet: the same checks, in the same order,
 *   in plain functions that hand on the promise of the layer below.
 * - {@link fastUdpSend}: under Bun, `node:dgram`'s `send` resolves the address on every call
 *   (an IPv4/IPv6 regular expression and a `dns.lookup` callback deferred to the next tick)
 *   and wraps the buffer twice before calling the native socket. A datagram to an IP address
 *   goes straight to the native socket; anything else (a queue already waiting, a host
 *   name, a refused send, a socket whose `send` was wrapped) takes `node:dgram`'s own path.
 * - {@link raiseReceiveBuffer}: a larger kernel receive buffer; under Deno, whose
 *   `setRecvBufferSize` sizes the buffer each datagram is read into instead, an 8 KiB one
 *   ({@link cutDenoReadBuffer}).
 *
 * No werift import here: webrtc_peer.ts hands in werift's CRC32c and objects.
 */
import { claimInstance } from "./werift_claim.ts";
import { Buffer } from "node:buffer";
import { createCipheriv } from "node:crypto";
import { isIP } from "node:net";

/** Figures of this process, for tests and the benches. */
export interface PacketPathFigures {
  /** Associations whose DATA packets are serialized in one buffer / left alone. */
  dataTuned: number;
  dataUntuned: number;
  /** DATA packets, and packets of a lone SACK, serialized in one buffer. */
  dataPackets: number;
  sackPackets: number;
  /** DTLS sockets whose records are encrypted in place / left alone, and records so sent. */
  recordsTuned: number;
  recordsUntuned: number;
  records: number;
  /** Associations whose in-order TSNs take the fast path / left alone. */
  tsnTuned: number;
  tsnUntuned: number;
  /** Events whose execute skips the empty async loop / left alone. */
  eventsTuned: number;
  eventsUntuned: number;
  /** UDP transports sending straight to Bun's native socket / left alone (not Bun, or internals differ). */
  udpTuned: number;
  udpUntuned: number;
  /** Datagrams sent straight to the native socket, and those handed to node:dgram's own path. */
  udpFast: number;
  udpFallback: number;
  /** DTLS transports / ICE connections whose send passes straight through / left alone. */
  directTuned: number;
  directUntuned: number;
  /** Packets that went through the direct ICE send, and through the inlined STUN protocol send. */
  directSends: number;
  directStun: number;
  /** UDP sockets whose receive buffer was raised / left alone (the runtime refused, or no socket). */
  rcvbufRaised: number;
  rcvbufUntouched: number;
  /** Under Deno, UDP sockets whose per-datagram read buffer was cut to {@link DENO_DATAGRAM_READ_BYTES}. */
  denoReadBufferCut: number;
}

const figures: PacketPathFigures = {
  dataTuned: 0,
  dataUntuned: 0,
  dataPackets: 0,
  sackPackets: 0,
  recordsTuned: 0,
  recordsUntuned: 0,
  records: 0,
  tsnTuned: 0,
  tsnUntuned: 0,
  eventsTuned: 0,
  eventsUntuned: 0,
  udpTuned: 0,
  udpUntuned: 0,
  udpFast: 0,
  udpFallback: 0,
  directTuned: 0,
  directUntuned: 0,
  directSends: 0,
  directStun: 0,
  rcvbufRaised: 0,
  rcvbufUntouched: 0,
  denoReadBufferCut: 0,
};

/** A copy of this process's packet-path figures. */
export function packetPathFigures(): PacketPathFigures {
  return { ...figures };
}

/** Chunk types of DATA and SACK (RFC 9260 §3.3.1, §3.3.4). */
const DATA = 0, SACK = 3;
/** A SACK chunk's fixed part: type, flags, length, cumulative TSN, a_rwnd, gap and duplicate counts. */
const SACK_HEADER = 16;
/** SCTP common header: ports, verification tag, checksum (RFC 9260 §3.1). */
export const COMMON_HEADER = 12;
/** The DATA chunk's own header (RFC 9260 §3.3.1). */
const DATA_HEADER = 16;

/** `length` rounded up to a multiple of 4 (chunks are padded to 4 bytes, RFC 9260 §3.2). */
export const padded = (length: number): number => (length + 3) & ~3;

/**
 * The length of DATA chunk `chunk` (RFC 9260 §3.3.1: its 16-byte header and user data, before
 * padding), or undefined when it is not a DATA chunk with its user data in bytes.
 */
// deno-lint-ignore no-explicit-any
export function dataChunkLength(chunk: any): number | undefined {
  return chunk?.type === DATA && chunk.userData instanceof Uint8Array
    ? DATA_HEADER + chunk.userData.byteLength
    : undefined;
}

/**
 * The length of SACK chunk `chunk` (RFC 9260 §3.3.4: 16 bytes, then 4 per gap block and per
 * duplicate TSN), or undefined when it is not a SACK with werift's gap and duplicate arrays.
 */
// deno-lint-ignore no-explicit-any
export function sackChunkLength(chunk: any): number | undefined {
  const gaps: unknown = chunk?.gaps, dups: unknown = chunk?.duplicates;
  if (chunk?.type !== SACK || !Array.isArray(gaps) || !Array.isArray(dups)) return undefined;
  return SACK_HEADER + 4 * (gaps.length + dups.length);
}

/** Writes association `sctp`'s common header (ports, verification tag) into `packet`, checksum field zero. */
// deno-lint-ignore no-explicit-any
export function writeCommonHeader(packet: Buffer, sctp: any): void {
  packet.writeUInt16BE(sctp.localPort, 0);
  packet.writeUInt16BE(sctp.remotePort, 2);
  packet.writeUInt32BE(sctp.remoteVerificationTag, 4);
  packet.writeUInt32BE(0, 8);
}

/** Writes a chunk's type, flags and length (RFC 9260 §3.2) at `at` in `packet`. */
function writeChunkHeader(packet: Buffer, at: number, type: number, flags: number, length: number): void {
  packet[at] = type;
  packet[at + 1] = flags;
  packet.writeUInt16BE(length, at + 2);
}

/**
 * Writes DATA chunk `chunk` of `length` bytes ({@link dataChunkLength}) at `at` in `packet`,
 * as werift's `DataChunk.bytes` makes it, and zeroes its padding.
 */
// deno-lint-ignore no-explicit-any
export function writeDataChunk(packet: Buffer, at: number, chunk: any, length: number): void {
  writeChunkHeader(packet, at, DATA, chunk.flags, length);
  packet.writeUInt32BE(chunk.tsn, at + 4);
  packet.writeUInt16BE(chunk.streamId, at + 8);
  packet.writeUInt16BE(chunk.streamSeqNum, at + 10);
  packet.writeUInt32BE(chunk.protocol, at + 12);
  packet.set(chunk.userData, at + DATA_HEADER);
  packet.fill(0, at + length, at + padded(length));
}

/**
 * Writes SACK chunk `chunk` of `length` bytes ({@link sackChunkLength}) at `at` in `packet`,
 * as werift's `SackChunk.bytes` makes it: cumulative TSN, a_rwnd, gap blocks, duplicate TSNs.
 */
// deno-lint-ignore no-explicit-any
export function writeSackChunk(packet: Buffer, at: number, chunk: any, length: number): void {
  const gaps: [number, number][] = chunk.gaps, dups: number[] = chunk.duplicates;
  writeChunkHeader(packet, at, SACK, chunk.flags, length);
  packet.writeUInt32BE(chunk.cumulativeTsn, at + 4);
  packet.writeUInt32BE(chunk.advertisedRwnd, at + 8);
  packet.writeUInt16BE(gaps.length, at + 12);
  packet.writeUInt16BE(dups.length, at + 14);
  let pos = at + SACK_HEADER;
  for (const [start, end] of gaps) {
    packet.writeUInt16BE(start, pos);
    packet.writeUInt16BE(end, pos + 2);
    pos += 4;
  }
  for (const tsn of dups) {
    packet.writeUInt32BE(tsn, pos);
    pos += 4;
  }
}

/**
 * Makes association `sctp` serialize each DATA chunk and each lone SACK it sends straight
 * into the packet, with the checksum computed over that one buffer (RFC 9260 §3, §3.3.1 and
 * §3.3.4: the same bytes werift sends). Other chunks (INIT, COOKIE, …) keep werift's
 * serialization. Call before
 * bundleSacks (sack_bundling.ts), which sends through the `sendChunk` it finds.
 * @param crc32c werift's CRC32c, over a packet whose checksum field is zero
 * @returns whether the association was tuned
 */
// deno-lint-ignore no-explicit-any
export function fastDataPackets(sctp: any, crc32c: (b: Uint8Array) => number): boolean {
  const expected = sctp && typeof sctp.sendChunk === "function" && typeof sctp.transport?.send === "function" &&
    "localPort" in sctp && "remoteVerificationTag" in sctp && !sctp.shoalSackBundling;
  if (!claimInstance(sctp, "shoalDataTuned", expected, (t) => t ? figures.dataTuned++ : figures.dataUntuned++)) {
    return false;
  }
  const sendChunk = sctp.sendChunk.bind(sctp);
  // deno-lint-ignore no-explicit-any
  sctp.sendChunk = (chunk: any): Promise<void> => {
    if (sctp.state === "closed" || sctp.remotePort === undefined) return sendChunk(chunk);
    const sack = chunk?.type === SACK;
    const length = sack ? sackChunkLength(chunk) : dataChunkLength(chunk);
    if (length === undefined) return sendChunk(chunk);
    const packet = Buffer.allocUnsafe(COMMON_HEADER + padded(length));
    writeCommonHeader(packet, sctp);
    if (sack) {
      writeSackChunk(packet, COMMON_HEADER, chunk, length);
      figures.sackPackets++;
    } else {
      writeDataChunk(packet, COMMON_HEADER, chunk, length);
      figures.dataPackets++;
    }
    packet.writeUInt32LE(crc32c(packet) >>> 0, 8);
    return sctp.transport.send(packet);
  };
  return true;
}

/** DTLS record header (RFC 6347 §4.1), AES-GCM's explicit nonce and tag (RFC 5288 §3). */
const RECORD_HEADER = 13, EXPLICIT_NONCE = 8, GCM_TAG = 16, IMPLICIT_NONCE = 4;
/** DTLS content type of application data. */
const APPLICATION_DATA = 23;
/** werift's SessionType.CLIENT (the other end is SERVER, 2). */
const CLIENT = 1;

/**
 * Makes werift `DtlsSocket` `sock` encrypt each record of application data it sends straight
 * into the outgoing buffer: header, explicit nonce (epoch and sequence number, as werift
 * writes it), ciphertext and tag, the same bytes as werift's own `send` (RFC 5288 AES-GCM,
 * additional data per RFC 5246 §6.2.3.3). Only AES-GCM with werift's nonce layout; anything
 * else keeps werift's `send`, which the socket keeps as `shoalWeriftSend` (for the tests).
 * @returns whether the socket was tuned
 */
// deno-lint-ignore no-explicit-any
export function fastRecords(sock: any): boolean {
  const expected = sock && typeof sock.send === "function" && typeof sock.transport?.send === "function" &&
    typeof sock.dtls?.recordSequenceNumber === "number" && typeof sock.dtls?.version?.major === "number" &&
    typeof sock.cipher === "object";
  const send = sock?.send;
  const count = (t: boolean) => t ? figures.recordsTuned++ : figures.recordsUntuned++;
  if (!claimInstance(sock, "shoalWeriftSend", expected, count, send)) return false;
  sock.send = (buf: Uint8Array, addr?: unknown): Promise<void> => {
    const ctx = sock.cipher, c = ctx?.cipher, dtls = sock.dtls;
    const client = ctx?.sessionType === CLIENT;
    const iv: unknown = client ? c?.clientNonce : c?.serverNonce;
    const key: unknown = client ? c?.clientWriteKey : c?.serverWriteKey;
    if (
      !(iv instanceof Uint8Array) || !(key instanceof Uint8Array) ||
      iv.byteLength !== IMPLICIT_NONCE + EXPLICIT_NONCE ||
      typeof c.blockAlgorithm !== "string" || !c.blockAlgorithm.endsWith("-gcm") || c.authTagLength !== GCM_TAG ||
      c.nonceImplicitLength !== IMPLICIT_NONCE || buf.byteLength > 0xffff - EXPLICIT_NONCE - GCM_TAG
    ) return send(buf, addr);
    const seq = ++dtls.recordSequenceNumber;
    const epoch: number = dtls.epoch, version = (dtls.version.major << 8) | dtls.version.minor;
    const n = buf.byteLength;
    const record = Buffer.allocUnsafe(RECORD_HEADER + EXPLICIT_NONCE + n + GCM_TAG);
    // The header's fields after the type are the additional data's: epoch and sequence number.
    record[0] = APPLICATION_DATA;
    record.writeUInt16BE(version, 1);
    record.writeUInt16BE(epoch, 3);
    record.writeUIntBE(seq, 5, 6);
    record.writeUInt16BE(EXPLICIT_NONCE + n + GCM_TAG, 11);
    const nonce = Buffer.from(iv.buffer, iv.byteOffset, iv.byteLength);
    nonce.writeUInt16BE(epoch, IMPLICIT_NONCE);
    nonce.writeUIntBE(seq, IMPLICIT_NONCE + 2, 6);
    nonce.copy(record, RECORD_HEADER, IMPLICIT_NONCE);
    const aad = Buffer.allocUnsafe(13);
    record.copy(aad, 0, 3, 11);
    aad[8] = APPLICATION_DATA;
    aad.writeUInt16BE(version, 9);
    aad.writeUInt16BE(n, 11);
    const cipher = createCipheriv(c.blockAlgorithm, key, nonce, { authTagLength: GCM_TAG } as never) as unknown as {
      setAAD(b: Uint8Array, o: { plaintextLength: number }): void;
      update(b: Uint8Array): Buffer;
      final(): Buffer;
      getAuthTag(): Buffer;
    };
    cipher.setAAD(aad, { plaintextLength: n });
    const body = cipher.update(buf), rest = cipher.final();
    let at = RECORD_HEADER + EXPLICIT_NONCE;
    record.set(body, at);
    at += body.byteLength;
    if (rest.byteLength > 0) {
      record.set(rest, at);
      at += rest.byteLength;
    }
    record.set(cipher.getAuthTag(), at);
    figures.records++;
    return sock.transport.send(record, addr);
  };
  return true;
}

/** 2^32: TSNs are serial numbers modulo this (RFC 9260 §1.6). */
const TSN_MODULO = 2 ** 32;

/**
 * Makes association `sctp` record the next in-order TSN (the common case: nothing missing,
 * nothing duplicated) without werift's per-chunk rebuild of its gap set and duplicate list;
 * every other TSN takes werift's own `markReceived`, so the state it leaves is the same.
 * @returns whether the association was tuned
 */
// deno-lint-ignore no-explicit-any
export function fastMarkReceived(sctp: any): boolean {
  const expected = sctp && typeof sctp.markReceived === "function" && sctp.sackMisOrdered instanceof Set &&
    Array.isArray(sctp.sackDuplicates) && typeof sctp.lastReceivedTsn === "number";
  if (!claimInstance(sctp, "shoalTsnTuned", expected, (t) => t ? figures.tsnTuned++ : figures.tsnUntuned++)) {
    return false;
  }
  const markReceived = sctp.markReceived.bind(sctp);
  sctp.markReceived = (tsn: number): boolean => {
    // werift's result here: not a duplicate, lastReceivedTsn moves on, and the (empty) gap
    // set and duplicate list keep only TSNs above it, which they already do when empty.
    if (
      sctp.sackMisOrdered.size === 0 && sctp.sackDuplicates.length === 0 &&
      tsn === (sctp.lastReceivedTsn + 1) % TSN_MODULO
    ) {
      sctp.lastReceivedTsn = tsn;
      return false;
    }
    return markReceived(tsn);
  };
  return true;
}

/**
 * Makes werift `Event`s run without their async loop over `queuingSubscribe` subscribers
 * while there are none: the ordinary subscribers run as before, in order, and the loop still
 * runs whenever one is queued. Events not shaped as expected are left alone.
 * @returns how many of `events` were tuned
 */
export function syncEvents(events: readonly unknown[]): number {
  let n = 0;
  for (const e of events) {
    // deno-lint-ignore no-explicit-any
    const ev = e as any;
    const expected = ev && typeof ev.execute === "function" && Array.isArray(ev.event?.stack) &&
      Array.isArray(ev.event?.promiseStack) && "ended" in ev;
    if (!claimInstance(ev, "shoalSyncEvent", expected, (t) => t ? figures.eventsTuned++ : figures.eventsUntuned++)) {
      continue;
    }
    n++;
    const execute = ev.execute;
    ev.execute = (...args: unknown[]) => {
      if (ev.event.promiseStack.length > 0) return execute(...args);
      if (ev.ended) return;
      const stack = ev.event.stack;
      for (let i = 0; i < stack.length; i++) stack[i].execute(...args);
    };
  }
  return n;
}

const countDirect = (t: boolean) => t ? figures.directTuned++ : figures.directUntuned++;

/**
 * A synchronous throw turned into a rejection, as werift's async functions do.
 * @returns what `f` returns, or a promise rejected with what it threw
 */
function settled(f: () => Promise<unknown>): Promise<unknown> {
  try {
    return f();
  } catch (e) {
    return Promise.reject(e);
  }
}

/**
 * Makes werift `RTCDtlsTransport` `dtls` and its ICE `Connection` `ice` pass each packet down
 * without their async wrappers: `sendData` checks for the DTLS socket and calls its `send`;
 * `Connection.send` checks `canSendApplicationData()`, sends on the nominated pair and counts
 * the pair's packets and bytes once the send resolves, as werift does; and when the pair's
 * protocol is a plain `StunProtocol` (its `sendData` is `stunSendData`, werift's own) the
 * packet goes to its transport at once unless that is closed. A loss simulation
 * (`config.debug.outboundPacketLoss`), a TURN protocol or a wrapped `sendData` keep werift's
 * code. Resolves to undefined, rejects with what werift would have rejected with. werift's own
 * functions stay on the objects as `shoalWeriftSendData` and `shoalWeriftSend` (for the tests).
 * @param stunSendData werift's `StunProtocol.prototype.sendData`
 * @returns how many of the two were tuned
 */
// deno-lint-ignore no-explicit-any
export function directSends(dtls: any, ice: any, stunSendData: unknown): number {
  let n = 0;
  const dtlsExpected = dtls && typeof dtls.sendData === "function" && "dtls" in dtls && "config" in dtls;
  if (claimInstance(dtls, "shoalWeriftSendData", dtlsExpected, countDirect, dtls?.sendData)) {
    n++;
    const sendData = dtls.sendData;
    dtls.sendData = (data: Uint8Array): Promise<unknown> => {
      const sock = dtls.dtls;
      if (!sock || dtls.config?.debug?.outboundPacketLoss) return sendData(data);
      return settled(() => sock.send(data));
    };
  }
  const iceExpected = ice && typeof ice.send === "function" && typeof ice.canSendApplicationData === "function" &&
    "nominated" in ice && typeof stunSendData === "function";
  if (claimInstance(ice, "shoalWeriftSend", iceExpected, countDirect, ice?.send)) {
    n++;
    ice.send = (data: Uint8Array): Promise<unknown> =>
      settled(() => {
        if (!ice.canSendApplicationData()) return Promise.resolve();
        const pair = ice.nominated, protocol = pair.protocol;
        figures.directSends++;
        let sent: Promise<unknown>;
        if (protocol.sendData === stunSendData && protocol.transport) {
          if (protocol.transport.closed) sent = Promise.resolve();
          else {
            figures.directStun++;
            sent = settled(() => protocol.transport.send(data, pair.remoteAddr));
          }
        } else sent = settled(() => protocol.sendData(data, pair.remoteAddr));
        return sent.then(() => {
          pair.packetsSent++;
          pair.bytesSent += data.length;
        });
      });
  }
  return n;
}

/** What Bun's `node:dgram` keeps under its state symbol (Bun 1.x). */
interface BunDgramState {
  bindState?: number;
  connectState?: number;
  handle?: { sendQueue?: unknown; socket?: { send(data: Uint8Array, port: number, address: string): boolean } };
}

/** Bun's `bindState` once bound, as `node:dgram`'s own send checks it. */
const BIND_STATE_BOUND = 2;
/** Bun's `connectState` once connected (send then takes no address). */
const CONNECT_STATE_CONNECTED = 2;

/**
 * Makes werift `UdpTransport` `udp` send each datagram to an IP address straight to Bun's
 * native socket, as `node:dgram`'s own send ends up doing once it has resolved the address
 * and found no queue waiting. Only under Bun (elsewhere the state it reads does not exist).
 * @returns whether the transport was tuned
 */
// deno-lint-ignore no-explicit-any
export function fastUdpSend(udp: any): boolean {
  const socket = udp?.socket;
  const sym = socket && Object.getOwnPropertySymbols(socket).find((s) => s.description === "state symbol");
  const state: BunDgramState | undefined = sym ? socket[sym] : undefined;
  const expected = typeof udp?.send === "function" && typeof state?.handle?.socket?.send === "function";
  if (!claimInstance(udp, "shoalFastUdp", expected, (t) => t ? figures.udpTuned++ : figures.udpUntuned++)) {
    return false;
  }
  const send = udp.send;
  /** node:dgram's own send: a socket whose send was wrapped (a test dropping packets) keeps its wrapper. */
  const dgramSend = Object.getPrototypeOf(socket)?.send;
  /** The last address found to be an IP address (the nominated pair's, nearly always). */
  let checkedHost = "";
  udp.send = (data: Uint8Array, addr?: [string, number]): Promise<void> => {
    const s = socket[sym] as BunDgramState;
    const h = s.handle;
    if (
      addr && h?.socket && h.sendQueue === undefined && s.bindState === BIND_STATE_BOUND && socket.send === dgramSend &&
      s.connectState !== CONNECT_STATE_CONNECTED && typeof addr[1] === "number" &&
      (addr[0] === checkedHost || (isIP(addr[0]) !== 0 && (checkedHost = addr[0]) !== ""))
    ) {
      try {
        if (h.socket.send(data, addr[1], addr[0])) {
          figures.udpFast++;
          return Promise.resolve();
        }
      } catch {
        // node:dgram's own path reports it as it would have
      }
    }
    figures.udpFallback++;
    return send(data, addr);
  };
  return true;
}

/**
 * Receive buffer asked for on each UDP socket of a connection. The kernel's default (208 KiB
 * on Linux, about 90 datagrams of 1,250 bytes once its per-packet overhead counts) holds what
 * a bulk sender has in flight for a few milliseconds only; a member that is busy, or waits
 * for a core, that long drops the rest, and each drop costs an SCTP retransmission and a
 * SACK with gap reports on both ends. The kernel caps the request at `net.core.rmem_max`.
 */
export const UDP_RECEIVE_BUFFER_BYTES = 1 << 20;

/**
 * What Deno's `node:dgram` allocates for each datagram it reads. Deno 2.9 reads every datagram
 * into a new zeroed buffer of the socket's "receive buffer size", 64 KiB by default, and its
 * `setRecvBufferSize` sets that size only (doubled on Linux, as the kernel reports SO_RCVBUF),
 * never the kernel's buffer. A 64 KiB allocation and clear per datagram cost ~10 µs of CPU
 * more than an 8 KiB one on this machine kind (bench/deno_udp.ts: 31.9 against 22.5 µs per
 * datagram sent and received). The largest datagram a link carries is ~1,300 bytes
 * (1,200 bytes of user data behind SCTP's and DTLS's headers, a bundled SACK of at most 64
 * bytes, a TURN header); a lone SACK reporting hundreds of gaps stays under ~2 KB. A longer
 * datagram arrives cut short and fails DTLS's authentication, as a corrupted one does.
 */
export const DENO_DATAGRAM_READ_BYTES = 8192;

/**
 * Under Deno, makes `socket` (a bound `node:dgram` socket) read each datagram into
 * {@link DENO_DATAGRAM_READ_BYTES} instead of 64 KiB. From the next datagram on. Elsewhere
 * nothing (the same call would shrink the kernel's buffer).
 * @returns whether the size is now that
 */
// deno-lint-ignore no-explicit-any
export function cutDenoReadBuffer(socket: any): boolean {
  if (!("Deno" in globalThis)) return false;
  try {
    socket.setRecvBufferSize(DENO_DATAGRAM_READ_BYTES);
    // Deno doubles the size on Linux, as Linux does with SO_RCVBUF
    if (socket.getRecvBufferSize() > DENO_DATAGRAM_READ_BYTES) socket.setRecvBufferSize(DENO_DATAGRAM_READ_BYTES / 2);
    if (socket.getRecvBufferSize() !== DENO_DATAGRAM_READ_BYTES) return false;
    figures.denoReadBufferCut++;
    return true;
  } catch {
    return false; // not bound yet: Deno's default stays
  }
}

/**
 * Raises the receive buffer of werift `UdpTransport` `udp`'s socket to
 * {@link UDP_RECEIVE_BUFFER_BYTES} (never lowers it). Bytes on the wire are unchanged. Under
 * Deno, whose `setRecvBufferSize` sizes the buffer each datagram is read into and not the
 * kernel's (see {@link DENO_DATAGRAM_READ_BYTES}), it cuts that buffer instead.
 * @returns whether the buffer was raised (or already at least that large)
 */
// deno-lint-ignore no-explicit-any
export function raiseReceiveBuffer(udp: any): boolean {
  const socket = udp?.socket;
  if (!socket || udp.shoalRcvbuf) return false;
  if ("Deno" in globalThis) {
    // The 1 MiB asked below would be a 2 MiB allocation per datagram under Deno: puts at about
    // half the rate (bench/lossy.ts, 4 Deno members).
    udp.shoalRcvbuf = true;
    figures.rcvbufUntouched++;
    cutDenoReadBuffer(socket);
    return false;
  }
  try {
    udp.shoalRcvbuf = true;
    if (socket.getRecvBufferSize() < UDP_RECEIVE_BUFFER_BYTES) socket.setRecvBufferSize(UDP_RECEIVE_BUFFER_BYTES);
    figures.rcvbufRaised++;
    return true;
  } catch {
    // not bound yet, or the runtime does not offer it: the kernel's default stays
    figures.rcvbufUntouched++;
    return false;
  }
}
