/**
 * Signed session descriptions. An offer or answer carries the DTLS fingerprints of its
 * SDP and an HMAC (key derived from the cluster secret, purpose "signal") over the
 * cluster's room id, sender, receiver, nonce, timestamp, the fingerprints and, for an
 * answer, the offer's nonce, for an offer the receiver's challenge. werift checks the
 * peer's DTLS certificate against the SDP fingerprint, so neither the signaling server nor
 * a relaying member can put itself in the middle without the secret.
 *
 * Freshness never depends on the sender's clock: an offer must carry a challenge the
 * receiver issued (see challenges.ts) and an answer the nonce of the receiver's own
 * outstanding offer. `ts` is only used to estimate clock offsets.
 */
import { Kind } from "../wire/kinds.ts";
import { nonce as makeNonce, type ReplayGuard, sign, verifyEither } from "../wire/envelope.ts";
import type { ChallengeBook } from "./challenges.ts";
import { clip, validateMessage } from "../wire/message.ts";
import {
  type Description,
  MAX_REJECT_REASON,
  type SignalAnswer,
  type SignalOffer,
  type SignalRelay,
} from "./messages.ts";
import type { DescriptionKeys } from "./keys.ts";
import { sdpFingerprints } from "./sdp.ts";

export type { DescriptionKeys } from "./keys.ts";

/** The fields an offer and an answer share, with an empty signature still to fill in. */
function unsigned(keys: DescriptionKeys, to: string, sdp: string, nowMs: number) {
  return {
    cluster: keys.room,
    from: keys.self,
    to,
    nonce: makeNonce(),
    ts: Math.floor(nowMs),
    sdp,
    fp: sdpFingerprints(sdp),
    sig: "",
  };
}

function fields(
  d: { t: number; cluster: string; from: string; to: string; nonce: string; ts: number; fp: string[] },
  re: string,
  ch: readonly unknown[],
): unknown[] {
  return [d.t === Kind.SignalOffer ? "offer" : "answer", d.cluster, d.from, d.to, d.nonce, d.ts, d.fp, re, ...ch];
}

/**
 * Builds a signed offer.
 * @param keys local identity and key
 * @param to the receiver
 * @param sdp the complete (gathered) SDP
 * @param nowMs wall-clock time (for the receiver's clock-offset estimate only)
 * @param challenge the receiver's challenge and our clock when it arrived
 * @param key the key to sign with @default keys.key
 * @returns the offer message
 */
export function signOffer(
  keys: DescriptionKeys,
  to: string,
  sdp: string,
  nowMs: number,
  challenge: { ch: string; arrivedMs: number },
  key: Uint8Array = keys.key,
): SignalOffer {
  const d = {
    t: Kind.SignalOffer,
    ...unsigned(keys, to, sdp, nowMs),
    ch: challenge.ch,
    cts: Math.floor(challenge.arrivedMs),
  };
  d.sig = sign(key, fields(d, "", [d.ch, d.cts]));
  return d as SignalOffer;
}

/**
 * Builds a signed answer to the offer with nonce `re`.
 * @param key the key to sign with: the one that verified the offer @default keys.key
 * @returns the answer message
 */
export function signAnswer(
  keys: DescriptionKeys,
  to: string,
  sdp: string,
  re: string,
  nowMs: number,
  key: Uint8Array = keys.key,
): SignalAnswer {
  const d = {
    t: Kind.SignalAnswer,
    ...unsigned(keys, to, sdp, nowMs),
    re,
  };
  d.sig = sign(key, fields(d, re, []));
  return d as SignalAnswer;
}

/** Why a description was refused. */
export interface Refusal {
  code: "AUTH_FAILED" | "REFUSED";
  reason: string;
}

/** A description that checked out: the key that verified it and, for an offer, when we issued its challenge. */
export interface Accepted {
  key: Uint8Array;
  /** Our clock when we issued the offer's challenge (offers only). */
  challengeIssuedMs?: number;
}

/**
 * Checks a received offer or answer: addressed to us, same cluster, valid signature, the
 * SDP's fingerprints equal the signed ones, a nonce not seen before and, for an offer, a
 * challenge we issued to its sender and that was not used yet. Nothing here reads the
 * sender's clock.
 * @param d the validated message
 * @param keys local identity and key(s)
 * @param guard replay guard (the nonce is recorded when everything else checks out)
 * @param nowMs our clock
 * @param challenges the challenges we issued (consulted and consumed for offers)
 * @returns the refusal, or what verified it
 */
export function checkDescription(
  d: Description,
  keys: DescriptionKeys,
  guard: ReplayGuard,
  nowMs: number,
  challenges: ChallengeBook,
): Refusal | Accepted {
  if (d.to !== keys.self) return { code: "REFUSED", reason: `description is addressed to ${d.to}, not ${keys.self}` };
  if (d.cluster !== keys.room) {
    return { code: "REFUSED", reason: "description is for another cluster (cluster names differ)" };
  }
  const offer = d.t === Kind.SignalOffer ? (d as SignalOffer) : undefined;
  const re = d.t === Kind.SignalAnswer ? (d as SignalAnswer).re : "";
  const key = verifyEither(keys, fields(d, re, offer ? [offer.ch, offer.cts] : []), d.sig);
  if (!key) return { code: "AUTH_FAILED", reason: "authentication failed: bad signature (wrong cluster secret?)" };
  const fp = sdpFingerprints(d.sdp);
  if (fp.length === 0 || fp.length !== d.fp.length || fp.some((f, i) => f !== d.fp[i])) {
    return { code: "AUTH_FAILED", reason: "authentication failed: SDP fingerprint differs from the signed one" };
  }
  let challengeIssuedMs: number | undefined;
  if (offer) {
    challengeIssuedMs = challenges.consume(d.from, offer.ch, nowMs);
    if (challengeIssuedMs === undefined) {
      return {
        code: "REFUSED",
        reason: "description refused: its challenge is unknown, used or expired (a replayed or late offer)",
      };
    }
  }
  const replay = guard.accept(d.nonce, nowMs);
  if (replay) return { code: "REFUSED", reason: `description refused: ${replay}` };
  return { key, challengeIssuedMs };
}

/**
 * Checks that a description claiming a member id carries that member's certificate: when
 * `from` is bound to a fingerprint (the one it joined with), the signed fingerprints must
 * include it. Call after {@link checkDescription} accepted `d` (its fingerprints are then
 * the signed ones of its SDP, and werift holds the peer to them).
 * @param d the description
 * @param bound the fingerprint `d.from` is bound to, or undefined for an unbound id
 * @returns the refusal, or null
 */
export function checkIdBinding(d: Pick<Description, "from" | "fp">, bound: string | undefined): Refusal | null {
  if (bound === undefined || d.fp.includes(bound)) return null;
  return {
    code: "AUTH_FAILED",
    reason: `description refused: member ${d.from} joined with another DTLS certificate`,
  };
}

/** Whether {@link checkDescription} refused. */
export function isRefusal(r: Refusal | Accepted): r is Refusal {
  return "code" in r;
}

/**
 * What a relay sends back when it cannot forward `m` (no direct link to `m.to`): a relayed
 * UNREACHABLE reject of the description, hello or offer inside, so the sender fails fast.
 * @param m the SignalRelay that cannot be forwarded
 * @param self the relay's id
 * @returns the reply, or null when `m.d` carries no nonce to refer to (a reject, a challenge, garbage)
 */
export function unreachableReply(m: SignalRelay, self: string): SignalRelay | null {
  const d = validateMessage(m.d);
  if (!d.ok || d.msg.t === Kind.SignalReject || typeof d.msg.nonce !== "string") return null;
  return {
    t: Kind.SignalRelay,
    from: m.to,
    to: m.from,
    d: {
      t: Kind.SignalReject,
      from: m.to,
      to: m.from,
      re: d.msg.nonce,
      code: "UNREACHABLE",
      reason: clip(`relay ${self} has no link to ${m.to}`, MAX_REJECT_REASON),
    },
  };
}
