/**
 * What every part of a node's membership (links, probes, member states, the master's role,
 * split brain) is handed by `Membership`: who it is, the settings, the injected clock,
 * randomness and transport, the log and the member list. Each part's host interface adds
 * what else it needs.
 */
import type { Clock, Timer } from "../core/clock.ts";
import type { Logger } from "../core/log.ts";
import type { Random } from "../core/random.ts";
import type { NodeId, Transport } from "../transport/transport.ts";
import type { Message } from "../wire/message.ts";
import type { MembershipConfig } from "./config.ts";
import type { MemberList } from "./member_list.ts";
import type { MemberInfo } from "./view.ts";

export interface MembershipPart {
  readonly self: NodeId;
  readonly config: MembershipConfig;
  readonly t: Transport;
  readonly clock: Clock;
  readonly rng: Random;
  readonly log: Logger;
  readonly list: MemberList;
  /** Live members in admission order. */
  members(): MemberInfo[];
  /** The master this member follows (undefined before joining). */
  master(): NodeId | undefined;
  /** Sends unless stopped; false when there is no link or route. */
  send(to: NodeId, msg: Message): boolean;
  /** A timer that does not fire once the membership stopped. */
  after(ms: number, fn: () => void): Timer;
  /** Counts (and logs) a message refused because its sender may not send it or it lies. */
  reject(reason: RejectReason, from: NodeId): void;
}

/**
 * Why a member refused a well-formed membership message from a linked peer: the sender is
 * not the one that may send it, or it claims what it cannot (see SECURITY.md, "A hostile
 * member"). Counted per reason in `MembershipStats.rejected` and `/metrics`
 * (`shoal_cluster_rejected_total{reason}`).
 */
export const RejectReasons = [
  /** A member list from a peer that is neither the master it names nor one this member asked for its list. */
  "list_not_from_master",
  /** A member list naming a master this member does not follow (and not vouched for by its master). */
  "list_foreign_master",
  /** A view reply to a new master from a member it did not ask (or a late one, after the collection ended). */
  "view_unasked",
  /** A join acceptance or refusal for this member, or one to relay, from a peer that may not send it. */
  "join_answer_forged",
  /** A forwarded join request whose named contact is not its sender. */
  "join_forward_forged",
  /** A leave notice about a linked member from someone else than it or the master (taken as a suspicion only). */
  "leave_for_other",
  /** A notice about a member, sent by someone else, naming an incarnation implausibly far above the known one. */
  "incarnation_jump",
  /** A merge request naming another master than its sender. */
  "foreign_master_claim",
  /**
   * A merge request, a collected view or an asked-for list whose member-list version or master epoch lies
   * further ahead than any honest member's.
   */
  "far_future",
  /** An offer or answer claiming a listed member's id, signed for another certificate than the one it joined with. */
  "foreign_certificate",
  /** A join request reusing a listed member's id with another certificate. */
  "id_taken",
  /** A split-brain hello claiming a group that its named members, asked directly, do not back enough to win. */
  "merge_claim_unconfirmed",
  /** A relayed message whose origin is not proved: unlisted or keyless, a bad origin MAC, or a replayed counter. */
  "forged_origin",
] as const;
export type RejectReason = typeof RejectReasons[number];

/** How far another cluster's master epoch may lie above ours in a merge request (one per master change). */
export const MAX_EPOCH_LEAD = 1024;
/** How far another cluster's member-list version may lie above ours (one per publication). */
export const MAX_LIST_VERSION_LEAD = 2 ** 32;

/**
 * Whether a list that did not come from our master (a view a new master collects, a list a member
 * asked another member for) lies implausibly far ahead of ours: its epoch would become ours, and a
 * member holding the secret could walk epochs to the end of the partition term space (2^19 reigns)
 * or versions and admission numbers (one per admission) to the end of the integer range.
 */
export function listFarAhead(
  body: { epoch: number; version: number; nextJoin: number },
  mine: { epoch: number; version: number; nextJoin: number },
): boolean {
  return body.epoch > mine.epoch + MAX_EPOCH_LEAD || body.version > mine.version + MAX_LIST_VERSION_LEAD ||
    body.nextJoin > mine.nextJoin + MAX_LIST_VERSION_LEAD;
}

/**
 * Highest incarnation a member takes up and counts on from (each refutation adds one, so no honest
 * one comes near it): one a merge request names for one of its members (the master admits each at
 * one above it, to outrank stale dead notices: named at 2^53 - 1, a member was admitted at 2^53,
 * which no member list passes on the wire, and every receiver dropped the master's lists as
 * invalid while it stayed), or one an accusation names, which a refutation would outbid.
 */
export const MAX_INCARNATION = 2 ** 52;

/** A zero count per reason. */
export function noRejections(): Record<RejectReason, number> {
  return Object.fromEntries(RejectReasons.map((r) => [r, 0])) as Record<RejectReason, number>;
}

/** Counters for metrics and simulation reports. */
export interface MembershipStats {
  /** Messages refused because their sender may not send them or they lie, by reason. */
  rejected: Record<RejectReason, number>;
  probes: number;
  probeFailures: number;
  /** Open links closed and made again because they carried nothing (see `linkSilentResetMs`). */
  silentLinkResets: number;
  suspicions: number;
  deadVerdicts: number;
  refutations: number;
  listsApplied: number;
  listsIgnored: number;
  joinsAdmitted: number;
  joinsRefused: number;
  merges: number;
  relayRoutes: number;
  /** Times this member found its own event loop stalled (a timer fired late by more than `stallThresholdMs`). */
  stalls: number;
  /** Failed probes not counted against the target: it talked to this member meanwhile. */
  probesVoided: number;
  /**
   * Dead verdicts held back: the suspect had not left this member's pings unanswered long
   * enough, this member had just stalled, or another member's dead notice was about a
   * member heard from lately (taken as a suspicion).
   */
  verdictsPostponed: number;
  /** Accusations from members following another master counted as confirmations of a suspicion held here. */
  crossConfirmations: number;
}
