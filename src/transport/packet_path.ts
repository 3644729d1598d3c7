/**
 * werift's per-packet path with its waste removed, not a byte changed on the wire. A snapshot
 * transfer is tens of thousands of 1,200-byte SCTP packets, and werift spends on each far
 * more than its encryption and its UDP send cost (bench/RESULTS.md, "werift's per-packet
 * path"). Four patches, each made on one instance and only when werift's (or Bun's) objects
 * look as expected; otherwise that instance keeps werift's own code and is counted untuned:
 *
 * - {@link fastDataPackets}: a DATA chunk is serialized straight into its packet (werift
 *   builds the chunk, then copies header and chunk into a buffer for the checksum and again
 *   into the packet: four buffers and three copies).
 * - {@link fastMarkReceived}: the next TSN in order is recorded without werift's per-chunk
 *   Set rebuild, sort and filter (it allocates four arrays and a Set for every DATA chunk).
 * - {@link syncEvents}: werift's events run their ordinary subscribers and then, for
 *   `queuingSubscribe` ones, an async loop, which costs a promise and a closure on every event
 *   even when none is queued (several events per packet received). Skipped when none is.
 * - {@link fastUdpSend}: under Bun, `node:dgram`'s `send` resolves the address on every call
 *   (an IPv4/IPv6 regular expression and a `dns.lookup` callback deferred to the next tick)
 *   and wraps the buffer twice before calling the native socket. A datagram to an IP address
 *   goes straight to the native socket; anything else (a queue already waiting, a host
 *   name, a refused send, a socket whose `send` was wrapped) takes `node:dgram`'s own path.
 *
 * No werift import here: webrtc_peer.ts hands in werift's CRC32c and objects.
 */
import { Buffer } from "node:buffer";
import { isIP } from "node:net";

/** Figures of this process, for tests and the benches. */
export interface PacketPathFigures {
  /** Associations whose DATA packets are serialized in one buffer / left alone. */
  dataTuned: number;
  dataUntuned: number;
  /** DATA packets serialized in one buffer. */
  dataPackets: number;
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
}

const figures: PacketPathFigures = {
  dataTuned: 0,
  dataUntuned: 0,
  dataPackets: 0,
  tsnTuned: 0,
  tsnUntuned: 0,
  eventsTuned: 0,
  eventsUntuned: 0,
  udpTuned: 0,
  udpUntuned: 0,
  udpFast: 0,
  udpFallback: 0,
};

/** A copy of this process's packet-path figures. */
export function packetPathFigures(): PacketPathFigures {
  return { ...figures };
}

/** Chunk type of DATA (RFC 9260 §3.3.1). */
const DATA = 0;
/** SCTP common header (ports, verification tag, checksum), then the DATA chunk's own 16-byte header. */
const COMMON_HEADER = 12, DATA_HEADER = 16;

/**
 * Makes association `sctp` serialize each DATA chunk it sends straight into the packet, with
 * the checksum computed over that one buffer (RFC 9260 §3 and §3.3.1: the same bytes werift
 * sends). Other chunks (SACK, INIT, …) keep werift's serialization. Call before
 * bundleSacks (sack_bundling.ts), which sends through the `sendChunk` it finds.
 * @param crc32c werift's CRC32c, over a packet whose checksum field is zero
 * @returns whether the association was tuned
 */
// deno-lint-ignore no-explicit-any
export function fastDataPackets(sctp: any, crc32c: (b: Uint8Array) => number): boolean {
  const expected = sctp && typeof sctp.sendChunk === "function" && typeof sctp.transport?.send === "function" &&
    "localPort" in sctp && "remoteVerificationTag" in sctp && !sctp.shoalDataTuned && !sctp.shoalSackBundling;
  if (!expected) {
    if (!sctp?.shoalDataTuned) figures.dataUntuned++;
    return false;
  }
  sctp.shoalDataTuned = true;
  figures.dataTuned++;
  const sendChunk = sctp.sendChunk.bind(sctp);
  // deno-lint-ignore no-explicit-any
  sctp.sendChunk = (chunk: any): Promise<void> => {
    const ud = chunk?.userData;
    if (
      chunk?.type !== DATA || !(ud instanceof Uint8Array) || sctp.state === "closed" || sctp.remotePort === undefined
    ) return sendChunk(chunk);
    const length = DATA_HEADER + ud.byteLength;
    const padded = (length + 3) & ~3;
    const packet = Buffer.allocUnsafe(COMMON_HEADER + padded);
    packet.writeUInt16BE(sctp.localPort, 0);
    packet.writeUInt16BE(sctp.remotePort, 2);
    packet.writeUInt32BE(sctp.remoteVerificationTag, 4);
    packet.writeUInt32BE(0, 8);
    packet[12] = DATA;
    packet[13] = chunk.flags;
    packet.writeUInt16BE(length, 14);
    packet.writeUInt32BE(chunk.tsn, 16);
    packet.writeUInt16BE(chunk.streamId, 20);
    packet.writeUInt16BE(chunk.streamSeqNum, 22);
    packet.writeUInt32BE(chunk.protocol, 24);
    packet.set(ud, COMMON_HEADER + DATA_HEADER);
    packet.fill(0, COMMON_HEADER + length);
    packet.writeUInt32LE(crc32c(packet) >>> 0, 8);
    figures.dataPackets++;
    return sctp.transport.send(packet);
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
    Array.isArray(sctp.sackDuplicates) && typeof sctp.lastReceivedTsn === "number" && !sctp.shoalTsnTuned;
  if (!expected) {
    if (!sctp?.shoalTsnTuned) figures.tsnUntuned++;
    return false;
  }
  sctp.shoalTsnTuned = true;
  figures.tsnTuned++;
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
      Array.isArray(ev.event?.promiseStack) && "ended" in ev && !ev.shoalSyncEvent;
    if (!expected) {
      if (!ev?.shoalSyncEvent) figures.eventsUntuned++;
      continue;
    }
    ev.shoalSyncEvent = true;
    figures.eventsTuned++;
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
  const expected = typeof udp?.send === "function" && typeof state?.handle?.socket?.send === "function" &&
    !udp.shoalFastUdp;
  if (!expected) {
    if (!udp?.shoalFastUdp) figures.udpUntuned++;
    return false;
  }
  udp.shoalFastUdp = true;
  figures.udpTuned++;
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
