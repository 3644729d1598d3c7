/**
 * SACKs bundled with outgoing DATA (RFC 9260 §6.2: "an endpoint SHOULD bundle a SACK chunk
 * with DATA chunks it sends"). werift 0.24 sends every SACK in a packet of its own, and every
 * DATA chunk in its own packet; on a request/response link (a put, its backup op, the ack, the
 * reply) nearly every DATA packet then gets a separate SACK back, most of them after the
 * delayed-SACK timer: a packet to encrypt, send, receive, decrypt and parse, and a timer
 * wake-up, for nothing but the acknowledgement. Here a DATA chunk that leaves while a SACK is
 * pending takes the SACK along in the same packet, ahead of it as §6.10 asks, and the pending
 * delayed-SACK timer is cancelled. When a SACK is due at once (every second DATA packet, gaps,
 * duplicates: tuneSackPolicy in webrtc_peer.ts) it still leaves at once, alone.
 * No werift import here: webrtc_peer.ts hands in werift's CRC32c.
 */
import { claimInstance } from "./werift_claim.ts";
import { Buffer } from "node:buffer";
import {
  COMMON_HEADER,
  dataChunkLength,
  padded,
  sackChunkLength,
  writeCommonHeader,
  writeDataChunk,
  writeSackChunk,
} from "./packet_path.ts";

/** Figures of this process, for tests and the benches. */
export interface SackBundlingFigures {
  /** Associations whose sending bundles SACKs. */
  tuned: number;
  /** Associations left alone (werift's internals not as expected). */
  untuned: number;
  /** SACKs that left inside a DATA packet. */
  bundled: number;
  /** Of those, packets whose two chunks were written straight into the packet (not through werift's `bytes`). */
  direct: number;
}

const figures: SackBundlingFigures = { tuned: 0, untuned: 0, bundled: 0, direct: 0 };

/** A copy of this process's SACK bundling figures. */
export function sackBundlingFigures(): SackBundlingFigures {
  return { ...figures };
}

/** Chunk type of DATA (RFC 9260 §3.3.1). */
const DATA = 0;
/** Largest SACK chunk bundled (16 bytes plus up to 12 gap blocks or duplicate TSNs), so a packet stays well under a 1,500-byte path MTU. */
const maxBundledSackBytes = 64;

interface Chunk {
  type: number;
  readonly bytes: Uint8Array;
}

/**
 * Makes association `sctp` bundle pending SACKs with the DATA chunks it sends. Call after
 * tuneSackPolicy (webrtc_peer.ts), whose delayed SACKs are the ones that wait to be bundled.
 * Changes only this instance, and only when werift's internals look as expected.
 * @param crc32c werift's CRC32c (the SCTP checksum), over a packet whose checksum field is zero
 * @returns whether the association was tuned
 */
// deno-lint-ignore no-explicit-any
export function bundleSacks(sctp: any, crc32c: (b: Uint8Array) => number): boolean {
  const expected = sctp && typeof sctp.sendChunk === "function" && typeof sctp.sendSack === "function" &&
    typeof sctp.transport?.send === "function" && "sackNeeded" in sctp && "sackTimeout" in sctp &&
    sctp.shoalSackTuned === true;
  if (!claimInstance(sctp, "shoalSackBundling", expected, (t) => t ? figures.tuned++ : figures.untuned++)) {
    return false;
  }

  const sendChunk = sctp.sendChunk.bind(sctp);
  /** The chunk werift's sendSack() built, taken instead of sent. */
  let taken: Chunk | undefined;
  let taking = false;

  /** werift's own sendSack(), made to hand its SACK chunk over (it also resets the SACK state). */
  const takeSack = (): Chunk | undefined => {
    taking = true;
    taken = undefined;
    try {
      // sendSack builds the chunk and calls sendChunk synchronously, before its first await.
      void sctp.sendSack().catch(() => {});
    } finally {
      taking = false;
    }
    const sack = taken;
    taken = undefined;
    return sack;
  };

  /**
   * The packet of `sack` then `chunk` (§6.10), its common header left to write, or undefined
   * when the SACK is too large to bundle. Chunks shaped as werift's are written straight into
   * it (the bytes of their `bytes`); others are copied from their `bytes`.
   */
  const bundle = (sack: Chunk, chunk: Chunk): Buffer | undefined => {
    const sackLength = sackChunkLength(sack), dataLength = dataChunkLength(chunk);
    if (sackLength !== undefined && dataLength !== undefined) {
      if (sackLength > maxBundledSackBytes) return undefined;
      const packet = Buffer.allocUnsafe(COMMON_HEADER + sackLength + padded(dataLength));
      writeSackChunk(packet, COMMON_HEADER, sack, sackLength);
      writeDataChunk(packet, COMMON_HEADER + sackLength, chunk, dataLength);
      figures.direct++;
      return packet;
    }
    const s = sack.bytes;
    if (s.byteLength > maxBundledSackBytes) return undefined;
    const d = chunk.bytes;
    const packet = Buffer.alloc(COMMON_HEADER + s.byteLength + d.byteLength);
    packet.set(s, COMMON_HEADER);
    packet.set(d, COMMON_HEADER + s.byteLength);
    return packet;
  };

  sctp.sendChunk = (chunk: Chunk): Promise<void> => {
    if (taking) {
      taken = chunk;
      return Promise.resolve();
    }
    if (chunk.type !== DATA || !sctp.sackNeeded || sctp.isStopped || sctp.state === "closed") return sendChunk(chunk);
    if (sctp.remotePort === undefined) return sendChunk(chunk);
    const sack = takeSack();
    if (!sack) return sendChunk(chunk);
    if (sctp.sackTimeout) {
      clearTimeout(sctp.sackTimeout);
      sctp.sackTimeout = undefined;
    }
    const packet = bundle(sack, chunk);
    if (!packet) {
      // A large gap report goes in a packet of its own, as werift would send it.
      return sendChunk(sack).then(() => sendChunk(chunk));
    }
    // What werift's sendSack() would reset once its send completed, reset now: the SACK is on its way.
    sctp.sackNeeded = false;
    writeCommonHeader(packet, sctp);
    packet.writeUInt32LE(crc32c(packet) >>> 0, 8);
    figures.bundled++;
    return sctp.transport.send(packet);
  };

  return true;
}
