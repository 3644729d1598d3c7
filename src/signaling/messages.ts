/**
 * Signaling message kinds (20–39). Offers and answers travel either through the
 * signaling server (as the `payload` of a socket message, JSON) or over the mesh inside a
 * {@link SignalRelayMsg}; in both cases the receiver validates them with these schemas.
 */
import { z } from "zod";
import { Kind } from "../wire/kinds.ts";
import { defineMessage, w } from "../wire/message.ts";

/** Longest SDP accepted (a data-channel-only SDP is ~1 KiB plus ~100 B per candidate). */
export const MAX_SDP_LENGTH = 16 * 1024;

const descriptionShape = {
  /** Room id of the cluster (hash of the name, see roomId()). */
  cluster: w.str(64),
  from: w.id(),
  to: w.id(),
  nonce: w.str(64).min(16),
  /** Sender's wall-clock time, ms since the epoch: only for clock-offset estimates, never for freshness. */
  ts: w.uint(),
  sdp: w.str(MAX_SDP_LENGTH),
  /** DTLS fingerprints of the SDP, "algo HEX:HEX…", as signed. */
  fp: w.list(w.str(160), 4),
  /** HMAC-SHA256 (hex) with the cluster's "signal" key. */
  sig: w.str(64),
};

/**
 * An offer: opens a link. `ch` is a challenge the receiver issued (SignalChallenge) and
 * consumes on arrival, so a replayed offer is refused whatever the clocks say; `cts` is the
 * sender's clock when that challenge arrived (for the receiver's clock-offset estimate).
 */
export const SignalOfferMsg = defineMessage(Kind.SignalOffer, "SignalOffer", {
  ...descriptionShape,
  ch: w.str(64).min(16),
  cts: w.uint(),
});

/** An answer to the offer whose nonce is `re`. */
export const SignalAnswerMsg = defineMessage(Kind.SignalAnswer, "SignalAnswer", { ...descriptionShape, re: w.str(64) });

/** Codes a reject can carry. */
export const RejectCode = z.enum(["AUTH_FAILED", "REFUSED", "UNREACHABLE"]);

/** Longest reason a SignalReject carries (a longer one is clipped: `clip` in wire/message.ts). */
export const MAX_REJECT_REASON = 200;

/** A refusal of the description whose nonce is `re`, with the reason, so the sender fails fast. */
export const SignalRejectMsg = defineMessage(Kind.SignalReject, "SignalReject", {
  from: w.id(),
  to: w.id(),
  re: w.str(64),
  code: RejectCode,
  reason: w.str(MAX_REJECT_REASON),
});

/**
 * Asks `to` for a challenge before offering (signed with the "signal" key, so only members
 * holding the cluster secret make `to` keep state).
 */
export const SignalHelloMsg = defineMessage(Kind.SignalHello, "SignalHello", {
  cluster: w.str(64),
  from: w.id(),
  to: w.id(),
  nonce: w.str(64).min(16),
  sig: w.str(64),
});

/**
 * The answer to the hello whose nonce is `re`: a fresh challenge `ch` for the offer, and
 * the sender's clock `ts` (for the receiver's clock-offset estimate), signed.
 */
export const SignalChallengeMsg = defineMessage(Kind.SignalChallenge, "SignalChallenge", {
  cluster: w.str(64),
  from: w.id(),
  to: w.id(),
  re: w.str(64),
  ch: w.str(64).min(16),
  ts: w.uint(),
  sig: w.str(64),
});

/** A description (`d`: offer, answer, reject, hello or challenge) relayed over the mesh from `from` to `to`. */
export const SignalRelayMsg = defineMessage(Kind.SignalRelay, "SignalRelay", {
  from: w.id(),
  to: w.id(),
  d: w.any(),
});

export type SignalOffer = z.infer<typeof SignalOfferMsg>;
export type SignalAnswer = z.infer<typeof SignalAnswerMsg>;
export type SignalReject = z.infer<typeof SignalRejectMsg>;
export type SignalRelay = z.infer<typeof SignalRelayMsg>;
export type SignalHello = z.infer<typeof SignalHelloMsg>;
export type SignalChallenge = z.infer<typeof SignalChallengeMsg>;
export type Description = SignalOffer | SignalAnswer;
export type SignalPayload = SignalOffer | SignalAnswer | SignalReject | SignalHello | SignalChallenge;
