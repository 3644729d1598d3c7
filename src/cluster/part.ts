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
}

/** Counters for metrics and simulation reports. */
export interface MembershipStats {
  probes: number;
  probeFailures: number;
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
}
