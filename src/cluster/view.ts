/**
 * What the layers above membership (partitions, maps, jobs, HTTP) may rely on. The
 * `Membership` state machine in this folder implements it.
 */
import type { NodeId } from "../transport/transport.ts";

export interface MemberInfo {
  id: NodeId;
  name: string;
  /** "bun" | "deno" | "node" | "sim" */
  runtime: string;
  /** Admission order: lower = older. The master is the oldest live member. */
  joinedAt: number;
  /** Lite members hold no data and own no partitions. */
  lite: boolean;
  incarnation: number;
  /**
   * Where this member serves its signaling endpoint (its HTTP base URLs): a member that lacks
   * a link to it, and reaches nobody who could relay, signals through one of these.
   */
  urls?: string[];
  /**
   * The fingerprint of the DTLS certificate the member joined with ("sha-256 AB:CD:…"): its
   * id is bound to it, links claiming the id with another certificate are refused.
   */
  fp?: string;
  /** The Ed25519 public key (64 hex digits) of the member's process; its relayed messages are signed with it. */
  pk?: string;
}

/**
 * Events, emitted synchronously in this order when one change causes several:
 * memberRemoved / memberAdded, then masterChanged, then memberListChanged. A member whose
 * death this node learns by gossip is removed here at once (memberRemoved), before the
 * master publishes the list without it.
 */
export type ClusterEvent =
  | { type: "memberAdded"; member: MemberInfo }
  | { type: "memberRemoved"; member: MemberInfo; reason: "dead" | "left" }
  | { type: "masterChanged"; master: NodeId; previous: NodeId | undefined; epoch: number }
  | { type: "memberListChanged"; version: number }
  /** This node's side lost a split-brain merge and re-joined the larger cluster: local data must be merged into it. */
  | { type: "merge"; from: NodeId[]; into: NodeId }
  /**
   * The master's list dropped this node (taken for dead: cut off or paused) and it joins again,
   * a group of one merging back: its data must be merged into the cluster as after a split, or
   * the copies only it kept (the others lost every replica of a partition) would be dropped.
   */
  | { type: "removedFromList"; master: NodeId | undefined };

export interface ClusterView {
  readonly self: NodeId;
  /** Live members in age order (oldest first), including self once joined. */
  members(): MemberInfo[];
  member(id: NodeId): MemberInfo | undefined;
  /**
   * Whether the member list the master published, as installed here, names `id` (false once it
   * left), whatever this node's own probes and gossip say of it. {@link member} drops a member
   * this node holds for dead at once; this one only when the master's list drops it. Decisions
   * that every replica must take alike (that a lock's owner died) follow this one: after a
   * split heals, a member still holds the split's verdicts about members that never died until
   * they refute them, and may already serve as a primary meanwhile.
   */
  listed(id: NodeId): boolean;
  /** The oldest live member, or undefined before joining. */
  master(): NodeId | undefined;
  isMaster(): boolean;
  /**
   * Increases with every master change this node observes. A new master publishes its
   * epoch with the member list and members adopt the higher value, so once views have
   * converged every member holds the same epoch. It may also rise on a split-brain merge.
   */
  readonly masterEpoch: number;
  readonly memberListVersion: number;
  /** Whether this node has joined a cluster (or formed its own). */
  readonly joined: boolean;
  /** Subscribes to cluster events; returns an unsubscribe function. */
  subscribe(listener: (e: ClusterEvent) => void): () => void;
  /**
   * With split-brain protection on, the data layer tells membership whether this member holds
   * a quorum now, so a side whose master holds one wins a split-brain merge (split_brain.ts).
   */
  useQuorum?(holds: () => boolean): void;
}
