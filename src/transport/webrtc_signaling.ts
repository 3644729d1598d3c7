/**
 * The signaling half of the WebRTC transport (webrtc.ts): the hello/challenge exchange,
 * signed offers and answers (signaling/descriptions.ts), glare, rejects, relink offers and
 * answers, and SignalRelay messages forwarded for other members over the mesh. It reads and
 * changes the transport's links only through {@link LinkTable}, the transport's explicit
 * interface to its link table (a link's state, its current and next peer connection, its
 * signal path).
 */
import type { Clock } from "../core/clock.ts";
import { ShoalError } from "../core/errors.ts";
import type { Logger } from "../core/log.ts";
import type { SignalChannel } from "../signaling/client.ts";
import {
  ChallengeBook,
  checkHelloOrChallenge,
  ClockOffsets,
  type ClockSample,
  clockSample,
  signChallenge,
  signHello,
} from "../signaling/challenges.ts";
import {
  checkDescription,
  checkIdBinding,
  type DescriptionKeys,
  isRefusal,
  signAnswer,
  signOffer,
  unreachableReply,
} from "../signaling/descriptions.ts";
import type {
  Description,
  SignalAnswer,
  SignalChallenge,
  SignalHello,
  SignalOffer,
  SignalPayload,
  SignalReject,
  SignalRelay,
} from "../signaling/messages.ts";
import {
  MAX_REJECT_REASON,
  SignalAnswerMsg,
  SignalChallengeMsg,
  SignalHelloMsg,
  SignalOfferMsg,
  SignalRejectMsg,
} from "../signaling/messages.ts";
import { ReplayGuard } from "../wire/envelope.ts";
import { Kind } from "../wire/kinds.ts";
import { clip, kindName, type Message, validateMessage } from "../wire/message.ts";
import { isKind } from "./messages.ts";
import type { IdBinding, NodeId, TransportStats } from "./transport.ts";
import type { WebRtcPeer } from "./webrtc_peer.ts";
import type { Link, SignalingCounters, SignalPath, WebRtcTransportOptions } from "./webrtc_types.ts";

/** How a signal travels, for logs: "server" or the relaying member's id. */
const pathName = (p: SignalPath) => p.kind === "server" ? "server" : p.via;

/** What the signaling half needs from the transport: its identity, and its link table. */
export interface LinkTable {
  readonly self: NodeId;
  readonly keys: DescriptionKeys;
  readonly clock: Clock;
  readonly log: Logger;
  /** The transport's counters (invalid and unroutable messages, forwards). */
  readonly stats: TransportStats;
  /** The signaling server connection, if any. */
  readonly signaling: SignalChannel | undefined;
  /** Whether open links are renegotiated in place (members given STUN/TURN servers). */
  readonly relinks: boolean;
  readonly maxLinks: number;
  readonly connectTimeoutMs: number;
  closed(): boolean;
  binding(): IdBinding | undefined;
  /** The link to `peer`, whatever its state. */
  get(peer: NodeId): Link | undefined;
  all(): Iterable<Link>;
  size(): number;
  /** Adds a link being set up (it times out after `timeoutMs`). */
  newLink(peer: NodeId, state: "offering" | "answering", path: SignalPath, timeoutMs: number): Link;
  /** Swaps in a fresh peer connection for a link being (re)negotiated. */
  replacePeer(link: Link): void;
  /** Removes a link (linkDown if it was open, its connect() waiters rejected otherwise). */
  drop(link: Link, reason: string, err: Error): void;
  /** Drops `link` after its connection `rtc` failed, unless the link moved on to another connection. */
  dropFailed(link: Link, rtc: WebRtcPeer, reason: string, err: unknown): void;
  /** Starts the replacement connection of an open link (relink). */
  startNext(link: Link): WebRtcPeer;
  /** Gives up a replacement connection. */
  endNext(link: Link, rtc: WebRtcPeer): void;
  /** Queues a message on an open link. */
  enqueue(link: Link, msg: Message): boolean;
}

/** Signed descriptions, challenges and relayed signaling of one WebRTC transport. */
export class LinkSignaling {
  readonly #host: LinkTable;
  readonly #guard = new ReplayGuard(60_000, 10_000);
  readonly #challenges = new ChallengeBook();
  readonly #offsets: ClockOffsets;
  readonly #relayHook: WebRtcTransportOptions["relayHook"];
  #counters: SignalingCounters = {
    refused: 0,
    lastRefusal: null,
    relayed: 0,
    offersViaServer: 0,
    offersViaMesh: 0,
  };

  constructor(host: LinkTable, relayHook?: WebRtcTransportOptions["relayHook"]) {
    this.#host = host;
    this.#offsets = new ClockOffsets(host.log);
    this.#relayHook = relayHook;
  }

  /** Counters of signed-description handling and relaying. */
  counters(): SignalingCounters {
    return { ...this.#counters };
  }

  /** The latest clock-offset estimate per peer (its clock minus ours), measured at each link setup. */
  clockOffsets(): Record<NodeId, ClockSample> {
    return this.#offsets.all();
  }

  /** Sends the relink offer once both its SDP and the peer's challenge are in. */
  relinkOfferWhenReady(link: Link): void {
    const next = link.next;
    const p = next?.pending;
    if (!next || !p?.sdp || !p.challenge) return;
    next.pending = null;
    const offer = signOffer(this.#host.keys, link.peer, p.sdp, this.#host.clock.now(), p.challenge, link.key);
    next.nonce = offer.nonce;
    this.#counters.offersViaServer++;
    if (!this.sendSignal({ kind: "server" }, link.peer, offer)) this.#host.endNext(link, next.rtc);
  }

  /** Starts signalling a link being offered: a hello for the receiver's challenge while ICE gathers. */
  async offer(link: Link): Promise<void> {
    const rtc = link.rtc;
    // Ask for the receiver's challenge while ICE gathers; the offer waits for both.
    this.#sendHello(link);
    let sdp: string;
    try {
      sdp = await rtc.createOffer();
    } catch (err) {
      this.#host.dropFailed(link, rtc, "offer failed", err);
      return;
    }
    if (link.rtc !== rtc || this.#host.get(link.peer) !== link || link.state !== "offering" || !link.pending) return;
    link.pending.sdp = sdp;
    link.progressAt = this.#host.clock.now();
    this.#offerWhenReady(link);
  }

  #sendHello(link: Link): void {
    const hello = signHello(this.#host.keys, link.peer, link.key);
    link.nonce = hello.nonce;
    link.pending = { helloSentMs: this.#host.clock.now(), sdp: link.pending?.sdp }; // a retried hello keeps the SDP
    this.#sendOrDrop(link, hello, "hello");
  }

  #offerWhenReady(link: Link): void {
    const p = link.pending;
    if (!p?.sdp || !p.challenge) return;
    link.pending = null;
    const offer = signOffer(this.#host.keys, link.peer, p.sdp, this.#host.clock.now(), p.challenge, link.key);
    link.nonce = offer.nonce;
    if (link.path.kind === "server") this.#counters.offersViaServer++;
    else this.#counters.offersViaMesh++;
    this.#sendOrDrop(link, offer, "offer");
  }

  #sendOrDrop(link: Link, payload: SignalPayload, what: string): void {
    if (this.sendSignal(link.path, link.peer, payload)) return;
    const how = link.path.kind === "server" ? "the signaling server" : `relay ${link.path.via}`;
    this.#host.drop(
      link,
      `${what} not sent`,
      new ShoalError("UNREACHABLE", `Cannot connect to ${link.peer}: cannot send the ${what} through ${how}`),
    );
  }

  sendSignal(path: SignalPath, to: NodeId, payload: SignalPayload): boolean {
    this.#host.log.debug("signaling.send", { peer: to, kind: kindName(payload.t), via: pathName(path) });
    if (path.kind === "server") return this.#host.signaling?.send(to, payload) ?? false;
    const relayMsg = { t: Kind.SignalRelay, from: this.#host.self, to, d: payload };
    const via = this.#host.get(path.via);
    if (via?.state !== "open") return false;
    // The relay may be the peer itself (a renegotiation over an existing link).
    return this.#host.enqueue(via, relayMsg);
  }

  #reject(path: SignalPath, to: NodeId, re: string, code: SignalReject["code"], reason: string): void {
    const r = clip(reason, MAX_REJECT_REASON);
    this.sendSignal(path, to, { t: Kind.SignalReject, from: this.#host.self, to, re, code, reason: r });
  }

  onServerSignal(from: NodeId, payload: unknown): void {
    if (this.#host.closed()) return;
    this.onPayload(from, payload, { kind: "server" });
  }

  /** A description or reject from `from` (as vouched for by the server or the relay). */
  onPayload(from: NodeId, payload: unknown, path: SignalPath): void {
    const v = validateMessage(payload);
    const d: SignalPayload | null = !v.ok
      ? null
      : isKind(SignalOfferMsg, v.msg) || isKind(SignalAnswerMsg, v.msg) || isKind(SignalRejectMsg, v.msg) ||
          isKind(SignalHelloMsg, v.msg) || isKind(SignalChallengeMsg, v.msg)
      ? v.msg
      : null;
    if (!d) {
      this.#host.stats.droppedInvalid++;
      return;
    }
    if (d.from !== from) {
      this.#host.stats.droppedInvalid++;
      return;
    }
    this.#host.log.debug("signaling.received", {
      peer: from,
      kind: kindName(d.t),
      via: pathName(path),
      state: this.#host.get(from)?.state ?? "none",
    });
    if (d.t === Kind.SignalReject) return this.#onReject(d as SignalReject);
    if (d.t === Kind.SignalHello || d.t === Kind.SignalChallenge) {
      return this.#onHelloOrChallenge(d as SignalHello | SignalChallenge, path);
    }
    const desc = d as Description;
    const now = this.#host.clock.now();
    const checked = checkDescription(desc, this.#host.keys, this.#guard, now, this.#challenges);
    const foreign = isRefusal(checked) ? null : checkIdBinding(desc, this.#host.binding()?.fingerprintOf(from));
    if (foreign) this.#host.binding()?.refused(from, foreign.reason);
    const refusal = foreign ?? checked;
    if (isRefusal(refusal)) {
      this.#refuse(path, from, d.t === Kind.SignalOffer ? "offer" : "answer", refusal, desc.nonce);
      // A refused answer also ends our attempt: the answerer cannot be trusted.
      if (d.t === Kind.SignalAnswer) {
        const link = this.#host.get(from);
        if (link && link.state === "offering" && link.nonce === (d as SignalAnswer).re) {
          this.#host.drop(
            link,
            "answer refused",
            new ShoalError(refusal.code, `Cannot connect to ${from}: ${refusal.reason}`),
          );
        }
      }
      return;
    }
    if (d.t === Kind.SignalOffer) {
      const offer = d as SignalOffer;
      // Our challenge out, its arrival and the offer's departure on their clock, the offer's arrival on ours.
      this.#offsets.record(from, clockSample(refusal.challengeIssuedMs!, offer.cts, offer.ts, now));
      void this.#onOffer(offer, path, refusal.key);
    } else void this.#onAnswer(d as SignalAnswer);
  }

  /** A hello (we answer with a challenge) or a challenge (our offer may go out). */
  #onHelloOrChallenge(m: SignalHello | SignalChallenge, path: SignalPath): void {
    const checked = checkHelloOrChallenge(m, this.#host.keys);
    if ("code" in checked) {
      const hello = m.t === Kind.SignalHello;
      return this.#refuse(
        path,
        m.from,
        hello ? "hello" : "challenge",
        checked,
        hello ? (m as SignalHello).nonce : undefined,
      );
    }
    const now = this.#host.clock.now();
    if (m.t === Kind.SignalHello) {
      const hello = m as SignalHello;
      const ch = this.#challenges.issue(hello.from, now);
      this.sendSignal(path, hello.from, signChallenge(this.#host.keys, hello, ch, now, checked.key));
      return;
    }
    const c = m as SignalChallenge;
    const link = this.#host.get(c.from);
    const next = link?.next;
    if (link?.state === "open" && next?.pending && next.nonce === c.re && !next.pending.challenge) {
      next.pending.challenge = { ch: c.ch, arrivedMs: now };
      return this.relinkOfferWhenReady(link);
    }
    if (!link || link.state !== "offering" || !link.pending || link.nonce !== c.re || link.pending.challenge) return;
    this.#offsets.record(c.from, clockSample(link.pending.helloSentMs, c.ts, c.ts, now));
    link.pending.challenge = { ch: c.ch, arrivedMs: now };
    link.progressAt = now;
    this.#offerWhenReady(link);
  }

  /** Counts and logs a refused signaling message, and answers it along `path` when `re` is given. */
  #refuse(path: SignalPath, from: NodeId, kind: string, r: Pick<SignalReject, "code" | "reason">, re?: string): void {
    this.#counters.refused++;
    this.#counters.lastRefusal = r.reason;
    this.#host.log.warn("signaling.refused", { peer: from, kind, reason: r.reason });
    if (re !== undefined) this.#reject(path, from, re, r.code, r.reason);
  }

  async #onOffer(offer: SignalOffer, path: SignalPath, key: Uint8Array): Promise<void> {
    const peer = offer.from;
    let link = this.#host.get(peer);
    if (link?.state === "offering" && this.#host.self < peer) {
      // Glare: both sides offered at once; the lower id's offer wins, so ignore theirs.
      return;
    }
    // The peer renegotiates an open link (it lost the path, or relinks). Members given
    // STUN/TURN servers answer with a replacement connection and keep the old one until the
    // new one opens; others drop the old link.
    if (link?.state === "open" && this.#host.relinks) return this.#answerRelink(link, offer, path, key);
    if (link) {
      if (link.state === "open") {
        this.#host.drop(link, "peer reconnected", new ShoalError("UNREACHABLE", `Connection to ${peer} replaced`));
        link = undefined;
      } else {
        link.state = "answering";
        link.pending = null;
        link.path = path;
        link.progressAt = this.#host.clock.now();
        this.#host.replacePeer(link);
      }
    }
    if (!link) {
      if (this.#host.size() >= this.#host.maxLinks) {
        this.#reject(path, peer, offer.nonce, "REFUSED", `member has ${this.#host.maxLinks} links already`);
        return;
      }
      link = this.#host.newLink(peer, "answering", path, this.#host.connectTimeoutMs);
    }
    const rtc = link.rtc;
    let sdp: string;
    try {
      sdp = await rtc.acceptOffer(offer.sdp);
    } catch (err) {
      if (link.rtc === rtc) {
        this.#host.drop(
          link,
          "bad offer",
          new ShoalError("UNREACHABLE", `Cannot connect to ${peer}: ${(err as Error).message}`),
        );
      }
      return;
    }
    if (link.rtc !== rtc || this.#host.get(peer) !== link) return;
    // Under the secret the offer was signed with (during a rotation, the peer may not know the new one yet).
    link.key = key;
    const answer = signAnswer(this.#host.keys, peer, sdp, offer.nonce, this.#host.clock.now(), key);
    link.nonce = answer.nonce;
    if (!this.sendSignal(path, peer, answer)) {
      this.#host.drop(
        link,
        "answer not sent",
        new ShoalError("UNREACHABLE", `Cannot connect to ${peer}: cannot send the answer`),
      );
    }
  }

  async #answerRelink(link: Link, offer: SignalOffer, path: SignalPath, key: Uint8Array): Promise<void> {
    if (link.next) {
      // Glare: both ends relink at once; the lower id's offer wins.
      if (this.#host.self < link.peer) return;
      this.#host.endNext(link, link.next.rtc);
    }
    const rtc = this.#host.startNext(link);
    let sdp: string;
    try {
      sdp = await rtc.acceptOffer(offer.sdp);
    } catch {
      return this.#host.endNext(link, rtc);
    }
    if (link.next?.rtc !== rtc) return;
    // Under the secret the relink offer was signed with, as for a first offer.
    const answer = signAnswer(this.#host.keys, link.peer, sdp, offer.nonce, this.#host.clock.now(), key);
    link.next.nonce = answer.nonce;
    if (!this.sendSignal(path, link.peer, answer)) this.#host.endNext(link, rtc);
  }

  async #onAnswer(answer: SignalAnswer): Promise<void> {
    const link = this.#host.get(answer.from);
    const next = link?.next;
    if (link?.state === "open" && next && next.nonce === answer.re) {
      try {
        await next.rtc.acceptAnswer(answer.sdp);
      } catch {
        this.#host.endNext(link, next.rtc);
      }
      return;
    }
    if (!link || link.state !== "offering" || link.nonce !== answer.re) return; // stale
    link.progressAt = this.#host.clock.now();
    const rtc = link.rtc;
    try {
      await rtc.acceptAnswer(answer.sdp);
    } catch (err) {
      this.#host.dropFailed(link, rtc, "bad answer", err);
    }
  }

  #onReject(r: SignalReject): void {
    if (r.to !== this.#host.self) return;
    for (const link of this.#host.all()) {
      if (link.state !== "open" && link.nonce === r.re) {
        const previous = this.#host.keys.previousKey;
        if (r.code === "AUTH_FAILED" && link.pending && previous && link.key !== previous) {
          // A secret rotation in progress: the peer may know only the previous secret.
          link.key = previous;
          this.#sendHello(link);
          return;
        }
        this.#host.log.warn("signaling.rejected", { peer: link.peer, code: r.code, reason: r.reason });
        this.#host.drop(link, "rejected", new ShoalError(r.code, `Cannot connect to ${link.peer}: ${r.reason}`));
        return;
      }
    }
  }

  onRelay(from: NodeId, m: SignalRelay): void {
    if (m.to === this.#host.self) {
      this.onPayload(m.from, m.d, { kind: "relay", via: from });
      return;
    }
    // Forward for others, only along a direct link.
    const next = this.#host.get(m.to);
    if (next?.state !== "open") {
      const back = this.#host.get(from);
      const reply = unreachableReply(m, this.#host.self);
      if (reply && back?.state === "open") this.#host.enqueue(back, reply);
      this.#host.stats.droppedNoRoute++;
      return;
    }
    const out = this.#relayHook ? this.#relayHook(m) : m;
    if (!out) return;
    this.#counters.relayed++;
    this.#host.stats.forwarded++;
    this.#host.enqueue(next, { ...out, t: Kind.SignalRelay });
  }
}
