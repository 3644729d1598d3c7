/**
 * Signed session descriptions. An offer or answer carries the DTLS fingerprints of its
 * SDP and an HMAC (key derived from the cluster secret, purpose "signal") over the
 * cluster's room id, sender, receiver, nonce, timestamp, the fingerprints and, for an
 * answer, the offer's nonce. werift checks the peer's DTLS certificate against the SDP
 * fingerprint, so neither the signaling server nor a relaying member can put itself in
 * the middle without the secret.
 */
import { Kind } from "../wire/kinds.ts";
import { nonce as makeNonce, type ReplayGuard, sign, verify } from "../wire/envelope.ts";
import type { Description, SignalAnswer, SignalOffer } from "./messages.ts";
import { sdpFingerprints } from "./sdp.ts";

/** Who signs and checks: the local member and its cluster's key. */
export interface DescriptionKeys {
  /** Room id of the cluster (roomId(cluster)). */
  room: string;
  /** The "signal" key: deriveKey(cluster, secret, "signal"). */
  key: Uint8Array;
  /** The local member id. */
  self: string;
}

function fields(
  d: { t: number; cluster: string; from: string; to: string; nonce: string; ts: number; fp: string[] },
  re: string,
): unknown[] {
  return [d.t === Kind.SignalOffer ? "offer" : "answer", d.cluster, d.from, d.to, d.nonce, d.ts, d.fp, re];
}

/**
 * Builds a signed offer.
 * @param keys local identity and key
 * @param to the receiver
 * @param sdp the complete (gathered) SDP
 * @param nowMs wall-clock time
 * @returns the offer message
 */
export function signOffer(keys: DescriptionKeys, to: string, sdp: string, nowMs: number): SignalOffer {
  const d = {
    t: Kind.SignalOffer,
    cluster: keys.room,
    from: keys.self,
    to,
    nonce: makeNonce(),
    ts: Math.floor(nowMs),
    sdp,
    fp: sdpFingerprints(sdp),
    sig: "",
  };
  d.sig = sign(keys.key, fields(d, ""));
  return d as SignalOffer;
}

/**
 * Builds a signed answer to the offer with nonce `re`.
 * @returns the answer message
 */
export function signAnswer(keys: DescriptionKeys, to: string, sdp: string, re: string, nowMs: number): SignalAnswer {
  const d = {
    t: Kind.SignalAnswer,
    cluster: keys.room,
    from: keys.self,
    to,
    nonce: makeNonce(),
    ts: Math.floor(nowMs),
    sdp,
    fp: sdpFingerprints(sdp),
    sig: "",
    re,
  };
  d.sig = sign(keys.key, fields(d, re));
  return d as SignalAnswer;
}

/** Why a description was refused. */
export interface Refusal {
  code: "AUTH_FAILED" | "REFUSED";
  reason: string;
}

/**
 * Checks a received offer or answer: addressed to us, same cluster, valid signature,
 * fresh (replay guard), and the SDP's fingerprints equal the signed ones.
 * @param d the validated message
 * @param keys local identity and key
 * @param guard replay guard (the nonce is recorded when everything else checks out)
 * @param nowMs wall-clock time
 * @returns null when it checks out, else the refusal
 */
export function checkDescription(
  d: Description,
  keys: DescriptionKeys,
  guard: ReplayGuard,
  nowMs: number,
): Refusal | null {
  if (d.to !== keys.self) return { code: "REFUSED", reason: `description is addressed to ${d.to}, not ${keys.self}` };
  if (d.cluster !== keys.room) {
    return { code: "REFUSED", reason: "description is for another cluster (cluster names differ)" };
  }
  const re = d.t === Kind.SignalAnswer ? (d as SignalAnswer).re : "";
  if (!verify(keys.key, fields(d, re), d.sig)) {
    return { code: "AUTH_FAILED", reason: "authentication failed: bad signature (wrong cluster secret?)" };
  }
  const fp = sdpFingerprints(d.sdp);
  if (fp.length === 0 || fp.length !== d.fp.length || fp.some((f, i) => f !== d.fp[i])) {
    return { code: "AUTH_FAILED", reason: "authentication failed: SDP fingerprint differs from the signed one" };
  }
  const replay = guard.check(d.nonce, d.ts, nowMs);
  if (replay) return { code: "REFUSED", reason: `description refused: ${replay}` };
  return null;
}
