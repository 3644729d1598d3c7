/**
 * The one file that imports werift. A {@link WebRtcPeer} is one RTCPeerConnection with one
 * pre-negotiated, ordered, reliable data channel (id 0), non-trickle ICE (descriptions are
 * exchanged once gathering completes) and explicit ICE servers. Also installs the guard
 * that keeps an error on werift's UDP sockets from killing the process under Bun.
 */
import { claimInstance } from "./werift_claim.ts";
import { Buffer } from "node:buffer";
import dgram from "node:dgram";
import {
  CipherContext,
  crc32c,
  type DtlsKeys,
  HashAlgorithm,
  NamedCurveAlgorithm,
  RTCCertificate,
  RTCPeerConnection,
  SignatureAlgorithm,
  StunProtocol,
} from "werift";
import type { IceServer } from "./ice_server.ts";
import type { CandidateType, SelectedPair } from "./transport.ts";
import { delayedSackMs, probeWaitMs, retransmitTuning, rtoMs } from "./retransmit.ts";
import {
  directSends,
  fastDataPackets,
  fastMarkReceived,
  fastRecords,
  fastUdpSend,
  raiseReceiveBuffer,
  syncEvents,
} from "./packet_path.ts";
import { bundleSacks } from "./sack_bundling.ts";

/** Connection settings for a peer. */
export interface WebRtcPeerOptions {
  /** STUN/TURN servers; always passed to werift (an empty list means host candidates only). */
  iceServers: IceServer[];
  /** Extra host addresses to offer as candidates (network-namespace labs). */
  iceAdditionalHostAddresses?: string[];
  /** Give up waiting for ICE gathering after this long. @default 5000 */
  gatherTimeoutMs?: number;
  /** The member's DTLS certificate (see {@link createDtlsIdentity}). @default werift's process-wide one */
  dtls?: DtlsIdentity;
}

/** A member's one DTLS certificate, used for all its peer connections, and its fingerprint as SDPs carry it. */
export interface DtlsIdentity {
  readonly keys: DtlsKeys;
  /** "sha-256 AB:CD:…", normalised as signaling/sdp.ts reads SDP fingerprints. */
  readonly fingerprint: string;
}

/** Generates a self-signed ECDSA P-256 certificate (as werift's own default) for a member. */
export async function createDtlsIdentity(): Promise<DtlsIdentity> {
  const keys = await CipherContext.createSelfSignedCertificateWithKey(
    { signature: SignatureAlgorithm.ecdsa_3, hash: HashAlgorithm.sha256_4 },
    NamedCurveAlgorithm.secp256r1_23,
  );
  const [fp] = new RTCCertificate(keys.keyPem, keys.certPem, keys.signatureHash).getFingerprints();
  return { keys, fingerprint: `${fp.algorithm.toLowerCase()} ${fp.value.toUpperCase()}` };
}

/** Events of a peer; set the fields you need. */
export interface WebRtcPeerEvents {
  open(): void;
  /** The channel or the connection closed or failed (called once). */
  close(reason: string): void;
  message(bytes: Uint8Array): void;
  /** bufferedAmount fell to {@link WebRtcPeer.lowWaterBytes} or below. */
  bufferedLow(): void;
  /** The set-up moved on: ICE gathered, ICE or the connection changed state (see `Transport.connectProgress`). */
  progress?(): void;
}

let udpErrorsGuarded = 0;
let guardInstalled = false;

/**
 * werift creates dgram sockets without 'error' listeners. Under Bun an ICMP error (say,
 * port unreachable while checking a dead candidate) becomes such an event, and an
 * unhandled 'error' event kills the process. This wraps `Socket.prototype.emit` so an
 * 'error' that nobody listens to is counted instead of thrown. Sockets that do listen are
 * untouched. Idempotent.
 */
export function installUdpErrorGuard(): void {
  if (guardInstalled) return;
  guardInstalled = true;
  // deno-lint-ignore no-explicit-any
  const proto = (dgram as any).Socket?.prototype;
  if (!proto || typeof proto.emit !== "function") return;
  const original = proto.emit;
  proto.emit = function (this: { listenerCount(ev: string): number }, event: string, ...args: unknown[]) {
    if (event === "error" && this.listenerCount("error") === 0) {
      udpErrorsGuarded++;
      return false;
    }
    return original.call(this, event, ...args);
  };
}

/** How many UDP socket errors the guard absorbed in this process. */
export function guardedUdpErrors(): number {
  return udpErrorsGuarded;
}

installUdpErrorGuard();

const noop = () => {};

/** SACK policy figures of this process, for tests and the bench. */
export interface SackFigures {
  /** Associations whose SACK policy was tuned. */
  tuned: number;
  /** Associations left with werift's own policy (internals not as expected). */
  untuned: number;
  /** Packets carrying new DATA received on tuned associations. */
  dataPackets: number;
  /** SACKs sent on tuned associations. */
  sacks: number;
}

const sackFigures: SackFigures = { tuned: 0, untuned: 0, dataPackets: 0, sacks: 0 };

/** A copy of this process's SACK policy figures. */
export function sackPolicyFigures(): SackFigures {
  return { ...sackFigures };
}

/**
 * DATA packets a SACK waits for while every DATA chunk since the last SACK was a bulk one
 * ({@link bulkChunkBytes} or more). RFC 9260 §6.2 asks for a SACK at least every second
 * packet; a bulk transfer (a snapshot: thousands of full packets in a row) gets one every
 * fourth, as stacks that let the SACK frequency be set do (RFC 6458 §8.1.19, `sack_freq`). Four
 * is the most a werift sender keeps flowing with: it sends at most four packets per SACK
 * (`transmitOnce`'s burst limit). Each SACK saved is a packet encrypted, sent, received,
 * decrypted and processed; the sender of a bulk transfer, which is the busy end, processes
 * them all. Small packets (requests, replies) keep one SACK per two packets; a gap or a
 * duplicate is still acknowledged at once, and a lone packet after {@link delayedSackMs}.
 */
export const bulkPacketsPerSack = 4;
/** A DATA chunk at least this large counts as part of a bulk transfer (werift fills 1,200 bytes, browsers ~1,150). */
export const bulkChunkBytes = 1024;

/**
 * Gives an association RFC 9260 §6.2 delayed acknowledgement: a SACK for at least every
 * second packet carrying DATA (every {@link bulkPacketsPerSack}th in a bulk transfer), and
 * for a lone packet after {@link delayedSackMs}; gaps and duplicates are still acknowledged
 * at once. werift 0.24 acknowledges every DATA packet
 * immediately, so half of all packets on a busy link are SACKs, each one encrypted, sent,
 * decrypted and processed; halving them raises a Bun link's one-way throughput by about
 * 40 % on this machine kind (bench/transport.ts). The change is made on the association
 * instance, and only when werift's internals look as expected; otherwise werift's own
 * policy stays and the association is counted as untuned.
 * @returns whether the association was tuned
 */
// deno-lint-ignore no-explicit-any
export function tuneSackPolicy(sctp: any): boolean {
  const expected = sctp && typeof sctp.receiveDataChunk === "function" && typeof sctp.scheduleSack === "function" &&
    typeof sctp.sendSack === "function" && sctp.sackMisOrdered instanceof Set && Array.isArray(sctp.sackDuplicates) &&
    "sackImmediate" in sctp && "sackNeeded" in sctp && "sackTimeout" in sctp && "sackHasNewDataInPacket" in sctp;
  if (!claimInstance(sctp, "shoalSackTuned", expected, (t) => t ? sackFigures.tuned++ : sackFigures.untuned++)) {
    return false;
  }
  const receiveDataChunk = sctp.receiveDataChunk.bind(sctp);
  const sendSack = sctp.sendSack.bind(sctp);
  /** Whether every DATA chunk since the last SACK was a bulk one (see bulkPacketsPerSack). */
  let bulk = true;
  // deno-lint-ignore no-explicit-any
  sctp.receiveDataChunk = (chunk: any) => {
    if (!(chunk?.userData?.byteLength >= bulkChunkBytes)) bulk = false;
    const dupsBefore = sctp.sackDuplicates.length;
    // handleData clears the flag for each packet: counted at the packet's first new DATA chunk
    // (not when the SACK is scheduled, since one bundled with a reply may leave before that).
    const newDataBefore = sctp.sackHasNewDataInPacket;
    receiveDataChunk(chunk);
    if (!newDataBefore && sctp.sackHasNewDataInPacket) sackFigures.dataPackets++;
    // werift asks for an immediate SACK after every chunk; keep that only for gaps and
    // duplicates, and let handleData's every-second-packet rule decide the rest.
    if (sctp.sackMisOrdered.size === 0 && sctp.sackDuplicates.length === dupsBefore) sctp.sackImmediate = false;
  };
  sctp.sendSack = async () => {
    if (sctp.sackNeeded && !sctp.isStopped) {
      sackFigures.sacks++;
      bulk = true;
    }
    await sendSack();
  };
  sctp.scheduleSack = async () => {
    if (sctp.isStopped || !sctp.sackNeeded) return;
    if (
      sctp.sackImmediate && bulk && sctp.sackPacketCount < bulkPacketsPerSack && sctp.sackHasNewDataInPacket &&
      sctp.sackMisOrdered.size === 0 && sctp.sackDuplicates.length === 0
    ) {
      // Bulk packets, none missing or repeated: this SACK waits for the next packets (or the delay).
      sctp.sackImmediate = false;
    }
    if (sctp.sackImmediate) {
      if (sctp.sackTimeout) {
        clearTimeout(sctp.sackTimeout);
        sctp.sackTimeout = undefined;
      }
      await sctp.sendSack();
      return;
    }
    if (sctp.sackTimeout) return;
    sctp.sackTimeout = setTimeout(() => {
      sctp.sackTimeout = undefined;
      sctp.sendSack().catch(noop);
    }, delayedSackMs);
  };
  return true;
}

/** Retransmission figures of this process, for tests and the bench. */
export interface RetransmitFigures {
  /** Associations whose retransmission was tuned. */
  tuned: number;
  /** Associations left with werift's own timers (internals not as expected). */
  untuned: number;
  /** Probe timers that fired with DATA outstanding and retransmitted something. */
  probes: number;
  /** DATA chunks retransmitted by probes. */
  probeChunks: number;
  /** T3-rtx (RTO) expiries on tuned associations. */
  rtoExpiries: number;
  /** Probes the peer reported as duplicates (the original had arrived; its SACK was late or lost). */
  spuriousProbes: number;
  /** Probe timer expiries (each one a wake-up of the event loop, whether it probed or not). */
  probeTimerExpiries: number;
}

const retransmitFigures: RetransmitFigures = {
  tuned: 0,
  untuned: 0,
  probes: 0,
  probeChunks: 0,
  rtoExpiries: 0,
  spuriousProbes: 0,
  probeTimerExpiries: 0,
};

/** A copy of this process's retransmission figures. */
export function retransmissionFigures(): RetransmitFigures {
  return { ...retransmitFigures };
}

/**
 * Gives an association RTO bounds that follow the measured RTT, and a probe (tail-loss
 * probe, as RFC 8985 §7 does for TCP): when DATA is outstanding and no SACK arrived for
 * max(2·SRTT + {@link delayedSackMs}, probeMinMs), the earliest unacknowledged chunks are
 * sent again, at most {@link retransmitTuning}.maxProbes times per silence, each wait twice
 * the last. A probe leaves the congestion window alone: the chunks stay counted in flight,
 * and their send count rises so no RTT is sampled from them (Karn). If the original was
 * lost the probe delivers it; if only its SACK was lost, the duplicate makes the peer SACK at
 * once. A probe the peer reports as a duplicate (its SACK was late, as on a loaded machine,
 * or lost) doubles the probe wait, at most {@link retransmitTuning}.maxSlowdown-fold and up to the
 * RTO, for {@link retransmitTuning}.spuriousHoldMs,
 * so late SACKs do not turn into a stream of needless packets. The T3-rtx timer stays the
 * backstop, now with RTO = SRTT + 4·RTTVAR clamped to [rtoMinMs, rtoMaxMs] and doubled on
 * each expiry (RFC 9260 §6.3.3 E2), which werift omits. Changes only this instance, and only
 * when werift's internals look as expected.
 * @returns whether the association was tuned
 */
// deno-lint-ignore no-explicit-any
export function tuneRetransmission(sctp: any): boolean {
  const expected = sctp && typeof sctp.updateRto === "function" && typeof sctp.timer3Expired === "function" &&
    typeof sctp.receiveSackChunk === "function" && typeof sctp.transmit === "function" &&
    typeof sctp.sendChunk === "function" && Array.isArray(sctp.sentQueue) && typeof sctp.rto === "number";
  const count = (t: boolean) => t ? retransmitFigures.tuned++ : retransmitFigures.untuned++;
  if (!claimInstance(sctp, "shoalRetransmitTuned", expected, count)) return false;
  const t = retransmitTuning;
  // werift keeps srtt, rttvar and rto in seconds.
  sctp.rto = sctp.srtt === undefined ? t.rtoInitialMs / 1000 : rtoMs(sctp.srtt * 1000, sctp.rttvar * 1000) / 1000;

  // RFC 9260 §6.3.1 C2/C3 (werift's formula), with Shoal's bounds.
  sctp.updateRto = (r: number) => {
    if (sctp.srtt === undefined) {
      sctp.rttvar = r / 2;
      sctp.srtt = r;
    } else {
      sctp.rttvar = 0.75 * sctp.rttvar + 0.25 * Math.abs(sctp.srtt - r);
      sctp.srtt = 0.875 * sctp.srtt + 0.125 * r;
    }
    sctp.rto = rtoMs(sctp.srtt * 1000, sctp.rttvar * 1000) / 1000;
  };

  const timer3Expired = sctp.timer3Expired;
  sctp.timer3Expired = () => {
    if (!sctp.isStopped) {
      retransmitFigures.rtoExpiries++;
      sctp.rto = Math.min(sctp.rto * 2, t.rtoMaxMs / 1000);
    }
    timer3Expired();
  };

  // One timer per association; a SACK only moves `quietSince`, and the timer, when it
  // fires early, sleeps for the rest of the wait (no timer churn per SACK). A SACK that leaves
  // nothing outstanding stops it; the next transmission starts it again.
  let probeTimer: ReturnType<typeof setTimeout> | undefined;
  let probesSent = 0;
  let quietSince = 0;
  /** TSNs sent by probes and not yet acknowledged cumulatively. */
  const probed = new Set<number>();
  let slowdown = 1;
  let lastSpurious = 0;
  const outstanding = () =>
    sctp.sentQueue.some((c: { acked?: boolean; abandoned?: boolean }) => !c.acked && !c.abandoned);
  const probeWait = () => {
    if (slowdown > 1 && performance.now() - lastSpurious > t.spuriousHoldMs) slowdown = 1;
    const rto = sctp.rto * 1000;
    return Math.min(
      probeWaitMs(sctp.srtt === undefined ? undefined : sctp.srtt * 1000, probesSent, rto) * slowdown,
      rto,
    );
  };
  const armProbe = (delayMs: number) => {
    if (probeTimer === undefined && !sctp.isStopped && probesSent < t.maxProbes) {
      probeTimer = setTimeout(probe, delayMs);
    }
  };
  const probe = () => {
    probeTimer = undefined;
    retransmitFigures.probeTimerExpiries++;
    if (sctp.isStopped || !outstanding()) return;
    const wait = probeWait(), quiet = performance.now() - quietSince;
    if (quiet < wait) return armProbe(wait - quiet);
    const chunks = [];
    for (const c of sctp.sentQueue) {
      if (chunks.length >= t.probeChunks) break;
      // Chunks already marked for retransmission go out through werift's own transmit().
      if (!c.acked && !c.abandoned && !c.retransmit) chunks.push(c);
    }
    if (chunks.length === 0) return;
    probesSent++;
    retransmitFigures.probes++;
    for (const c of chunks) {
      c.sentCount++;
      if (probed.size < 64) probed.add(c.tsn);
      retransmitFigures.probeChunks++;
      sctp.sendChunk(c).catch(noop);
    }
    quietSince = performance.now();
    armProbe(probeWait());
  };

  const receiveSackChunk = sctp.receiveSackChunk.bind(sctp);
  // deno-lint-ignore no-explicit-any
  sctp.receiveSackChunk = async (chunk: any) => {
    // The peer is heard from: a new silence starts, with a fresh probe budget.
    quietSince = performance.now();
    probesSent = 0;
    if (probed.size > 0) {
      for (const tsn of chunk.duplicates ?? []) {
        if (!probed.delete(tsn)) continue;
        retransmitFigures.spuriousProbes++;
        slowdown = Math.min(slowdown * 2, t.maxSlowdown);
        lastSpurious = performance.now();
      }
    }
    await receiveSackChunk(chunk);
    // Probed chunks acknowledged and not reported twice were needed (or their report is lost).
    if (probed.size > 0 && sctp.sentQueue.length === 0) probed.clear();
    if (outstanding()) armProbe(probeWait());
    else if (probeTimer !== undefined) {
      // Everything acknowledged: no wake-up for a probe with nothing to probe (on a busy
      // request/response link that timer would otherwise fire every few milliseconds, each
      // time only to find the last SACK recent and sleep again).
      clearTimeout(probeTimer);
      probeTimer = undefined;
    }
  };
  const transmit = sctp.transmit.bind(sctp);
  sctp.transmit = async () => {
    const idle = probeTimer === undefined;
    await transmit();
    if (idle && outstanding()) {
      quietSince = performance.now();
      armProbe(probeWait());
    }
  };
  return true;
}

/**
 * Applies packet_path.ts to a connection once its channel is open: DATA packets serialized in
 * one buffer and in-order TSNs recorded without allocation (the association), DTLS records
 * encrypted into the outgoing buffer (the DTLS socket), packets passed from DTLS through ICE
 * to UDP without werift's async wrappers, the events
 * on the way of every packet received without their empty async loop, and on every UDP
 * transport of the ICE connection a larger receive buffer and, under Bun, datagrams sent
 * straight to the native socket.
 * Call before the SACK bundling, which sends through the association's `sendChunk`.
 */
// deno-lint-ignore no-explicit-any
export function tunePacketPath(sctpTransport: any, dc: unknown): void {
  const sctp = sctpTransport?.sctp;
  fastDataPackets(sctp, crc32c);
  fastMarkReceived(sctp);
  const dtls = sctpTransport?.dtlsTransport;
  fastRecords(dtls?.dtls);
  const connection = dtls?.iceTransport?.connection;
  directSends(dtls, connection, StunProtocol?.prototype?.sendData);
  const protocols: unknown[] = Array.isArray(connection?.protocols) ? connection.protocols : [];
  syncEvents([
    // deno-lint-ignore no-explicit-any
    ...protocols.map((p: any) => p?.onDataReceived),
    connection?.onData,
    dtls?.dtls?.onData,
    sctp?.flush,
    sctp?.onReceive,
    // deno-lint-ignore no-explicit-any
    (dc as any)?.onMessage,
  ]);
  // deno-lint-ignore no-explicit-any
  for (const p of protocols as any[]) {
    fastUdpSend(p?.transport);
    raiseReceiveBuffer(p?.transport);
  }
}

let pairsUnknown = 0;

/** Peers whose selected candidate pair could not be read (werift's objects not as expected). */
export function unknownCandidatePairs(): number {
  return pairsUnknown;
}

/**
 * The type of an ICE candidate from its SDP attribute (`candidate:… typ relay …`), as
 * werift's `RTCIceTransport.getSelectedCandidatePair()` returns it.
 * @returns the type, or undefined when the value is not such a candidate
 */
export function candidateTypeOf(c: unknown): Exclude<CandidateType, "unknown"> | undefined {
  const line = (c as { candidate?: unknown } | null)?.candidate;
  if (typeof line !== "string") return undefined;
  const m = line.match(/ typ (host|srflx|prflx|relay)(?: |$)/);
  return m ? m[1] as Exclude<CandidateType, "unknown"> : undefined;
}

/**
 * The candidate types of an ICE transport's selected pair (the nominated one, else one that
 * succeeded), through werift's `RTCIceTransport.getSelectedCandidatePair()`.
 * @param ice werift's RTCIceTransport of the connection
 * @returns the types; null while no pair is selected; undefined when `ice` is not as expected
 */
export function selectedPairOf(ice: unknown): SelectedPair | null | undefined {
  let pair: unknown;
  try {
    const get = (ice as { getSelectedCandidatePair?: unknown } | null)?.getSelectedCandidatePair;
    if (typeof get !== "function") return undefined;
    pair = get.call(ice);
  } catch {
    return undefined;
  }
  if (pair === null) return null;
  const p = pair as { local?: unknown; remote?: unknown } | undefined;
  const local = candidateTypeOf(p?.local), remote = candidateTypeOf(p?.remote);
  return local && remote ? { local, remote } : undefined;
}

/** One werift peer connection with one data channel. */
export class WebRtcPeer {
  /** 'bufferedLow' fires when bufferedAmount drops to this. */
  static lowWaterBytes = 16 * 1024;
  readonly #pc: RTCPeerConnection;
  // deno-lint-ignore no-explicit-any
  readonly #dc: any;
  readonly #gatherTimeoutMs: number;
  #closed = false;
  #opened = false;
  /** werift's SCTP association, once the channel is open. */
  // deno-lint-ignore no-explicit-any
  #sctp: any;
  #pairCounted = false;
  events: WebRtcPeerEvents = { open: noop, close: noop, message: noop, bufferedLow: noop };

  constructor(opts: WebRtcPeerOptions) {
    this.#gatherTimeoutMs = opts.gatherTimeoutMs ?? 5_000;
    this.#pc = new RTCPeerConnection({
      iceServers: opts.iceServers.map((s) => ({ ...s })),
      ...(opts.iceAdditionalHostAddresses?.length
        ? { iceAdditionalHostAddresses: opts.iceAdditionalHostAddresses }
        : {}),
      ...(opts.dtls ? { dtls: { keys: opts.dtls.keys } } : {}),
    });
    this.#dc = this.#pc.createDataChannel("shoal", { negotiated: true, id: 0, ordered: true });
    this.#dc.bufferedAmountLowThreshold = WebRtcPeer.lowWaterBytes;
    this.#dc.stateChanged.subscribe((state: string) => {
      if (state === "open" && !this.#opened && !this.#closed) {
        this.#opened = true;
        // deno-lint-ignore no-explicit-any
        const sctpTransport = (this.#pc as any).sctpTransport;
        const sctp = sctpTransport?.sctp;
        this.#sctp = sctp ?? undefined;
        tunePacketPath(sctpTransport, this.#dc);
        tuneSackPolicy(sctp);
        tuneRetransmission(sctp);
        bundleSacks(sctp, crc32c);
        this.events.open();
      } else if (state === "closed") this.#fail("data channel closed");
    });
    this.#dc.onMessage.subscribe((data: string | Uint8Array) => {
      if (this.#closed) return;
      if (typeof data === "string") this.events.message(new TextEncoder().encode(data));
      else this.events.message(data);
    });
    this.#dc.bufferedAmountLow.subscribe(() => {
      if (!this.#closed) this.events.bufferedLow();
    });
    this.#pc.connectionStateChange.subscribe((state: string) => {
      if (state === "failed" || state === "closed") this.#fail(`connection ${state}`);
      else if (!this.#closed) this.events.progress?.();
    });
    this.#pc.iceConnectionStateChange.subscribe(() => {
      if (!this.#closed) this.events.progress?.();
    });
  }

  /** Whether the data channel is open. */
  get open(): boolean {
    return this.#opened && !this.#closed;
  }

  get closed(): boolean {
    return this.#closed;
  }

  /**
   * DATA chunks awaiting their SACK, when nothing is queued in werift's association nor buffered
   * on the channel; -1 otherwise, until the channel is open, and whenever werift's objects are
   * not as expected.
   */
  #unackedOnly(): number {
    const sctp = this.#sctp;
    if (sctp === undefined || this.#closed) return -1;
    const sent: unknown = sctp.sentQueue, queued: unknown = sctp.outboundQueue;
    return Array.isArray(sent) && Array.isArray(queued) && queued.length === 0 && this.#dc.bufferedAmount === 0
      ? sent.length
      : -1;
  }

  /**
   * Whether everything sent on this connection was acknowledged: no DATA chunk unacknowledged
   * or queued in werift's association, nothing buffered on the channel. False until the channel
   * is open, and whenever werift's objects are not as expected.
   */
  get idle(): boolean {
    return this.#unackedOnly() === 0;
  }

  /**
   * Whether a new frame may leave at once on a link with sparse traffic (webrtc_frames.ts): nothing
   * queued in werift's association or buffered on the channel, and at most one DATA chunk
   * unacknowledged. One is allowed because the peer holds the SACK of a lone packet for
   * {@link delayedSackMs} unless DATA of its own can carry it: on a link that carries messages
   * one way only (a backup's acknowledgements to a caller) the last one's SACK is often still
   * pending when the next leaves, which is no sign of a burst. A burst puts a second frame in
   * flight within the same turn, and the frames after it wait for the end of the turn. False
   * until the channel is open, and whenever werift's objects are not as expected.
   */
  get quiet(): boolean {
    const n = this.#unackedOnly();
    return n === 0 || n === 1;
  }

  /** Bytes handed to the channel and not yet given to the network. */
  get bufferedAmount(): number {
    return this.#dc.bufferedAmount as number;
  }

  /** Creates the offer and waits for ICE gathering; returns the complete SDP. */
  async createOffer(): Promise<string> {
    const offer = await this.#pc.createOffer();
    await this.#pc.setLocalDescription(offer);
    await this.#gathered();
    return this.#pc.localDescription!.sdp;
  }

  /** Applies a remote offer and returns the complete answer SDP. */
  async acceptOffer(sdp: string): Promise<string> {
    await this.#pc.setRemoteDescription({ type: "offer", sdp });
    const answer = await this.#pc.createAnswer();
    await this.#pc.setLocalDescription(answer);
    await this.#gathered();
    return this.#pc.localDescription!.sdp;
  }

  /** Applies the remote answer to our offer. */
  async acceptAnswer(sdp: string): Promise<void> {
    await this.#pc.setRemoteDescription({ type: "answer", sdp });
  }

  /**
   * Sends one data-channel message (a frame).
   * @throws when the channel is not open or the frame exceeds the peer's max-message-size
   */
  send(bytes: Uint8Array): void {
    this.#dc.send(Buffer.isBuffer(bytes) ? bytes : Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength));
  }

  /**
   * The candidate types of the selected ICE candidate pair (see {@link selectedPairOf}).
   * When werift's objects are not as expected the types are "unknown" and the peer is
   * counted ({@link unknownCandidatePairs}).
   * @returns undefined while no pair is selected
   */
  selectedPair(): SelectedPair | undefined {
    const pair = selectedPairOf(this.#iceTransport());
    return pair === undefined ? this.#pairUnknown() : pair ?? undefined;
  }

  /** werift's ICE transport of this connection (undefined if its getter fails). */
  #iceTransport(): unknown {
    try {
      return this.#pc.iceTransports?.[0];
    } catch {
      return undefined;
    }
  }

  #pairUnknown(): SelectedPair {
    if (!this.#pairCounted) {
      this.#pairCounted = true;
      pairsUnknown++;
    }
    return { local: "unknown", remote: "unknown" };
  }

  /** werift's SCTP transport of this connection (for tests of the packet-path patches). */
  sctpTransportForTests(): unknown {
    // deno-lint-ignore no-explicit-any
    return (this.#pc as any).sctpTransport;
  }

  /** The UDP sockets werift opened for this connection (for tests of the error guard). */
  udpSockets(): unknown[] {
    const out: unknown[] = [];
    try {
      // deno-lint-ignore no-explicit-any
      for (const t of (this.#pc as any).iceTransports ?? []) {
        for (const p of t.connection?.protocols ?? []) if (p.transport?.socket) out.push(p.transport.socket);
      }
    } catch {
      // internals differ between werift versions; the guard does not depend on this
    }
    return out;
  }

  /**
   * Waits until everything handed to the channel went out (or `maxMs` passed), so a last
   * message is not cut off by close().
   */
  async drained(maxMs = 300): Promise<void> {
    const start = performance.now();
    while (!this.#closed && this.bufferedAmount > 0 && performance.now() - start < maxMs) {
      await new Promise((r) => setTimeout(r, 5));
    }
    await new Promise((r) => setTimeout(r, 5));
  }

  /** Closes the channel and the connection. Safe to call more than once. */
  async close(): Promise<void> {
    this.#fail("closed locally");
    try {
      await this.#pc.close();
    } catch {
      // already closing
    }
  }

  #fail(reason: string) {
    if (this.#closed) return;
    this.#closed = true;
    this.events.close(reason);
    void this.#pc.close().catch(noop);
  }

  async #gathered(): Promise<void> {
    if (this.#pc.iceGatheringState === "complete") return;
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => {
        sub.unSubscribe();
        reject(new Error(`ICE gathering did not complete in ${this.#gatherTimeoutMs} ms`));
      }, this.#gatherTimeoutMs);
      const sub = this.#pc.iceGatheringStateChange.subscribe((state: string) => {
        if (state === "complete") {
          clearTimeout(timer);
          sub.unSubscribe();
          resolve();
        }
      });
      if (this.#pc.iceGatheringState === "complete") {
        clearTimeout(timer);
        sub.unSubscribe();
        resolve();
      }
    });
  }
}
