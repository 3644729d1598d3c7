/**
 * Freshness without synchronised clocks. Before offering, a member sends a signed
 * SignalHello; the receiver answers with a SignalChallenge holding a random challenge it
 * remembers (for {@link CHALLENGE_TTL_MS} of its own clock) and the offer must carry and sign
 * it. The receiver consumes a challenge on first use, so a replayed offer is refused even
 * if its sender's clock is hours off. (Answers are fresh by construction: they sign the
 * nonce of the offer they answer, which the offerer checks against its outstanding offer.)
 *
 * The same exchange measures the clock offset between the two members, NTP-style, from
 * the four timestamps of hello → challenge → offer, and {@link ClockOffsets} keeps the
 * latest estimate per peer for `GET /cluster` and the warning past
 * {@link CLOCK_OFFSET_WARN_MS}.
 */
import { type Logger, silentLogger } from "../core/log.ts";
import { nonce as makeNonce, sign, verifyEither } from "../wire/envelope.ts";
import { Kind } from "../wire/kinds.ts";
import type { DescriptionKeys } from "./keys.ts";
import type { SignalChallenge, SignalHello } from "./messages.ts";
import { setNewest } from "../core/bounded.ts";

/** How long an issued challenge stays valid, on the issuer's clock. */
export const CHALLENGE_TTL_MS = 30_000;
/** Challenges outstanding at most, in total and per peer (older ones are forgotten first). */
export const MAX_CHALLENGES = 4096;
export const MAX_CHALLENGES_PER_PEER = 4;
/** A clock offset beyond this (either way) is logged as a warning and flagged in `GET /cluster`. */
export const CLOCK_OFFSET_WARN_MS = 2_000;

const helloFields = (h: Omit<SignalHello, "t" | "sig">) => ["hello", h.cluster, h.from, h.to, h.nonce];
const challengeFields = (c: Omit<SignalChallenge, "t" | "sig">) => [
  "challenge",
  c.cluster,
  c.from,
  c.to,
  c.re,
  c.ch,
  c.ts,
];

/**
 * Builds a signed hello asking `to` for a challenge.
 * @param key the key to sign with (the current one, or the previous during a rotation)
 */
export function signHello(keys: DescriptionKeys, to: string, key: Uint8Array = keys.key): SignalHello {
  const h = { cluster: keys.room, from: keys.self, to, nonce: makeNonce() };
  return { t: Kind.SignalHello, ...h, sig: sign(key, helloFields(h)) } as SignalHello;
}

/**
 * Builds the signed challenge answering `hello`.
 * @param key the key that verified the hello (answers go out under the secret the peer uses)
 * @param ch the challenge from {@link ChallengeBook.issue}
 * @param nowMs our clock, for the peer's offset estimate
 */
export function signChallenge(
  keys: DescriptionKeys,
  hello: SignalHello,
  ch: string,
  nowMs: number,
  key: Uint8Array,
): SignalChallenge {
  const c = { cluster: keys.room, from: keys.self, to: hello.from, re: hello.nonce, ch, ts: Math.floor(nowMs) };
  return { t: Kind.SignalChallenge, ...c, sig: sign(key, challengeFields(c)) } as SignalChallenge;
}

/** Why a hello or challenge was refused, or the key that verified it. */
export type Checked = { key: Uint8Array } | { code: "AUTH_FAILED" | "REFUSED"; reason: string };

/** Checks a hello or challenge: addressed to us, our cluster, signed with the cluster secret. */
export function checkHelloOrChallenge(m: SignalHello | SignalChallenge, keys: DescriptionKeys): Checked {
  if (m.to !== keys.self) return { code: "REFUSED", reason: `message is addressed to ${m.to}, not ${keys.self}` };
  if (m.cluster !== keys.room) {
    return { code: "REFUSED", reason: "message is for another cluster (cluster names differ)" };
  }
  const fields = m.t === Kind.SignalHello ? helloFields(m as SignalHello) : challengeFields(m as SignalChallenge);
  const key = verifyEither(keys, fields, m.sig);
  if (!key) return { code: "AUTH_FAILED", reason: "authentication failed: bad signature (wrong cluster secret?)" };
  return { key };
}

interface Issued {
  peer: string;
  ch: string;
  at: number;
}

/**
 * The challenges a member issued and not yet seen back. Bounded: {@link MAX_CHALLENGES} in
 * all and {@link MAX_CHALLENGES_PER_PEER} per peer, each valid {@link CHALLENGE_TTL_MS} on
 * the issuer's own clock.
 */
export class ChallengeBook {
  // Insertion order is issue order, so expiry and eviction walk from the front.
  readonly #issued = new Map<string, Issued>();
  readonly #perPeer = new Map<string, number>();
  /** Challenges forgotten because a bound was reached. */
  evicted = 0;

  constructor(
    readonly ttlMs = CHALLENGE_TTL_MS,
    readonly max = MAX_CHALLENGES,
    readonly maxPerPeer = MAX_CHALLENGES_PER_PEER,
  ) {}

  /** Challenges outstanding. */
  get size(): number {
    return this.#issued.size;
  }

  /**
   * Issues a fresh challenge for `peer`.
   * @param nowMs the issuer's clock
   */
  issue(peer: string, nowMs: number): string {
    this.#expire(nowMs);
    if ((this.#perPeer.get(peer) ?? 0) >= this.maxPerPeer) {
      for (const [ch, e] of this.#issued) {
        if (e.peer === peer) {
          this.#remove(ch, e);
          this.evicted++;
          break;
        }
      }
    }
    if (this.#issued.size >= this.max) {
      const [ch, e] = this.#issued.entries().next().value as [string, Issued];
      this.#remove(ch, e);
      this.evicted++;
    }
    const ch = makeNonce();
    this.#issued.set(ch, { peer, ch, at: nowMs });
    this.#perPeer.set(peer, (this.#perPeer.get(peer) ?? 0) + 1);
    return ch;
  }

  /**
   * Takes back a challenge: valid once, only from the peer it was issued to, only within
   * the TTL.
   * @returns the time it was issued (issuer's clock), or undefined when unknown, used, expired or someone else's
   */
  consume(peer: string, ch: string, nowMs: number): number | undefined {
    this.#expire(nowMs);
    const e = this.#issued.get(ch);
    if (!e || e.peer !== peer) return undefined;
    this.#remove(ch, e);
    return e.at;
  }

  #remove(ch: string, e: Issued): void {
    this.#issued.delete(ch);
    const n = (this.#perPeer.get(e.peer) ?? 1) - 1;
    if (n <= 0) this.#perPeer.delete(e.peer);
    else this.#perPeer.set(e.peer, n);
  }

  #expire(nowMs: number): void {
    for (const [ch, e] of this.#issued) {
      if (nowMs - e.at <= this.ttlMs && e.at <= nowMs) break;
      this.#remove(ch, e);
    }
  }
}

/** One clock-offset estimate: the peer's clock minus ours, and the round trip it came from. */
export interface ClockSample {
  offsetMs: number;
  rttMs: number;
  /** Our clock when it was measured. */
  atMs: number;
}

/**
 * The NTP estimate from a request sent at `t0` (our clock), handled by the peer at `t1` and
 * answered at `t2` (its clock), and received back at `t3` (our clock).
 * @returns the peer's offset from us and the round trip without the peer's holding time
 */
export function clockSample(t0: number, t1: number, t2: number, t3: number): ClockSample {
  return { offsetMs: Math.round((t1 - t0 + (t2 - t3)) / 2), rttMs: Math.max(0, (t3 - t0) - (t2 - t1)), atMs: t3 };
}

/** The latest clock-offset estimate per peer. Bounded by `max` peers (oldest estimates go first). */
export class ClockOffsets {
  readonly #byPeer = new Map<string, ClockSample>();
  constructor(readonly log: Logger = silentLogger, readonly max = 1024) {}

  /**
   * Records an estimate, and logs a warning when it is past {@link CLOCK_OFFSET_WARN_MS}.
   * @returns whether it is past the bound
   */
  record(peer: string, s: ClockSample): boolean {
    setNewest(this.#byPeer, peer, s, this.max);
    const off = Math.abs(s.offsetMs) > CLOCK_OFFSET_WARN_MS;
    if (off) {
      this.log.warn("signaling.clock.offset", {
        peer,
        offsetMs: s.offsetMs,
        rttMs: s.rttMs,
        boundMs: CLOCK_OFFSET_WARN_MS,
        effect: "latestUpdate merges and TTL deadlines between these members are off by about this much",
      });
    }
    return off;
  }

  get(peer: string): ClockSample | undefined {
    return this.#byPeer.get(peer);
  }

  /** Every peer's latest estimate. */
  all(): Record<string, ClockSample> {
    return Object.fromEntries(this.#byPeer);
  }
}
