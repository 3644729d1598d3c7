/**
 * Membership options and their defaults. The timing values start from hashicorp/memberlist's
 * LAN profile scaled down for a mesh that must react in seconds (memberlist: probe every
 * 1 s, 500 ms probe timeout, suspicion multiplier 4, gossip every 200 ms to 3 nodes).
 */
import type { NodeId } from "../transport/transport.ts";
import type { JoinSettings } from "./join_settings.ts";

export interface MembershipTiming {
  /** Time between two SWIM probes of this member. @default 400 */
  probeIntervalMs: number;
  /** How long to wait for a direct ack before asking others (ping-req). @default 150 */
  probeTimeoutMs: number;
  /** Members asked to probe indirectly when a direct probe times out. @default 3 */
  indirectChecks: number;
  /**
   * Suspicion timeout multiplier: the shortest suspicion lasts `suspicionMult × probeIntervalMs`
   * (no log(n) factor: suspect and dead notices are sent straight to every member over the
   * full mesh, so dissemination does not grow with the cluster). Lifeguard expects
   * `suspicionMult − 2` independent confirmations before it shrinks to that minimum.
   * @default 3
   */
  suspicionMult: number;
  /** The longest suspicion, as a multiple of the shortest. @default 5 */
  suspicionMaxTimeoutMult: number;
  /** Time between gossip rounds (only when something is queued). @default 200 */
  gossipIntervalMs: number;
  /** Members each gossip round sends to. @default 3 */
  gossipNodes: number;
  /** Each update is retransmitted `retransmitMult × ceil(log10(n + 1))` times. @default 3 */
  retransmitMult: number;
  /** Push-pull state exchange with one random member; scaled up above 32 members. @default 5000 */
  pushPullIntervalMs: number;
  /** Upper bound of the local-health (Lifeguard awareness) score. @default 8 */
  awarenessMax: number;
  /**
   * A timer of this member that fires this much later than scheduled means its own event
   * loop was stalled (CPU starvation, GC, a long synchronous task): acks that arrived
   * meanwhile may still be unread behind the overdue timers. Verdicts (a failed probe, an
   * expired suspicion) reached right after such a stall wait `probeTimeoutMs` so that
   * the backlog is read first.
   * @default 150
   */
  stallThresholdMs: number;
  /**
   * A suspect is declared dead here only once it has left this member's own pings
   * unanswered (no message of any kind from it since the first unanswered ping) for this
   * long, and the suspicion timeout has run out too. Every member that starts suspecting
   * a member pings it at once, so this measures how long the suspect has been silent
   * towards each member, not how long since it last happened to talk: a member that is
   * merely slow (a stalled event loop, a retransmitting link) answers the backlog and
   * refutes once it catches up. A dead notice from another member about a suspect heard
   * from within half of this is taken as a suspicion only. A suspect that talks but never
   * refutes (it hears nobody) is declared dead once the longest suspicion has passed.
   * @default 2000
   */
  suspectUnansweredMs: number;
  /** Time to wait for a reply to a join request before retrying. @default 3000 */
  joinTimeoutMs: number;
  /** Join attempts over all seeds before giving up (or forming a cluster alone). @default 6 */
  joinAttempts: number;
  /** Timeout of one link establishment. @default 10000 */
  connectTimeoutMs: number;
  /**
   * A link attempt not open after this long is given up and made again (through another
   * member or endpoint when there is one): its offer or answer was lost, or its set-up
   * stalled. Each such restart in a row doubles the bound; after `linkStallRetries` of them
   * an attempt runs to `connectTimeoutMs`. About 5 times a WebRTC set-up on loopback under
   * load (0.1-0.3 s). @default 1500
   */
  linkStallMs: number;
  /** Stalled link attempts to one member given up and made again in a row, at most. @default 2 */
  linkStallRetries: number;
  /**
   * An open link to a member that others still vouch for (not suspected), silent this long
   * with this member's probes over it unanswered, is closed at once and made again. Such a
   * link is wedged below the transport (both ends hold it open, nothing crosses either way:
   * seen over werift under packet loss, for minutes), and a link that stays open is never
   * made again otherwise. A member merely busy for that long is suspected by the others too,
   * so its link is left alone. @default 5000
   */
  linkSilentResetMs: number;
  /** Coalescing delay for member-list publications by the master. @default 30 */
  publishDelayMs: number;
  /** How long a new master waits for the views of other members. @default 400 */
  collectTimeoutMs: number;
  /** Link maintenance period (missing links, relay routes). @default 1000 */
  linkCheckIntervalMs: number;
  /** Concurrent link establishments. @default 16 */
  maxConcurrentConnects: number;
  /** An older member also initiates a missing link after this long (normally the newer one does). @default 12000 */
  linkFallbackMs: number;
  /** Failed direct connects before a relay route is looked for. @default 2 */
  relayAfterFailures: number;
  /** Longest back-off between two connect attempts to the same member. @default 30000 */
  linkRetryMaxMs: number;
  /** Split-brain check period: the master tries to reach lost members. @default 2000 */
  splitBrainIntervalMs: number;
  /** Lost members remembered for split-brain detection. @default 64 */
  maxLostMembers: number;
  /** Lost members are forgotten after this long. @default 600000 */
  lostMemberTtlMs: number;
  /** Maximum queued gossip updates. @default 1024 */
  maxGossipQueue: number;
  /** Maximum gossip updates piggybacked on one message. @default 32 */
  maxPiggyback: number;
  /** Maximum probes/requests awaiting an answer. @default 256 */
  maxPending: number;
}

export interface MembershipConfig extends MembershipTiming {
  /** Cluster name; joiners of another cluster are refused. */
  cluster: string;
  /** Cluster secret, used only to derive the join key. */
  secret: string;
  /**
   * During a secret rotation, the previous secret: join and merge proofs made with it are
   * accepted too, and this member signs with it only towards a member that refused `secret`.
   */
  previousSecret?: string;
  /** Human name of this member. */
  name: string;
  /** "bun" | "deno" | "node" | "sim" */
  runtime: string;
  /** Lite member: no data, no partitions. */
  lite: boolean;
  /**
   * Cluster-wide settings: sent with every join request, and compared with every joiner's
   * (a joiner that differs is refused, naming the setting). None: no comparison (simulations).
   */
  settings?: JoinSettings;
}

export const DefaultTiming: MembershipTiming = {
  probeIntervalMs: 400,
  probeTimeoutMs: 150,
  indirectChecks: 3,
  suspicionMult: 3,
  suspicionMaxTimeoutMult: 5,
  gossipIntervalMs: 200,
  gossipNodes: 3,
  retransmitMult: 3,
  pushPullIntervalMs: 5000,
  awarenessMax: 8,
  stallThresholdMs: 150,
  suspectUnansweredMs: 2000,
  joinTimeoutMs: 3000,
  joinAttempts: 6,
  connectTimeoutMs: 10_000,
  linkStallMs: 1_500,
  linkStallRetries: 2,
  linkSilentResetMs: 5_000,
  publishDelayMs: 30,
  collectTimeoutMs: 400,
  linkCheckIntervalMs: 1000,
  maxConcurrentConnects: 16,
  linkFallbackMs: 12_000,
  relayAfterFailures: 2,
  linkRetryMaxMs: 30_000,
  splitBrainIntervalMs: 2000,
  maxLostMembers: 64,
  lostMemberTtlMs: 600_000,
  maxGossipQueue: 1024,
  maxPiggyback: 32,
  maxPending: 256,
};

/** Fills the defaults in. */
export function membershipConfig(
  c: Pick<MembershipConfig, "cluster" | "secret"> & Partial<MembershipConfig>,
): MembershipConfig {
  return { name: "member", runtime: "sim", lite: false, ...DefaultTiming, ...stripUndefined(c) } as MembershipConfig;
}

function stripUndefined<T extends object>(o: T): Partial<T> {
  return Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined)) as Partial<T>;
}

/** The most members one list may hold (message size bound). */
export const MAX_MEMBERS = 4096;

/** Re-exported for convenience. */
export type { NodeId };
