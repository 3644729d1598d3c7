/**
 * Cluster-layer message kinds (40–79): join, SWIM probes and gossip, member-list
 * publication, view collection by a new master, relay routes and split-brain merge.
 * Every message from the network is validated against these schemas before the
 * membership state machine sees it (see PROTOCOL.md, "Cluster membership", for the field meanings).
 */
import { z } from "zod";
import { Kind } from "../wire/kinds.ts";
import { defineMessage, w } from "../wire/message.ts";
import { MAX_MEMBERS } from "./config.ts";
import { JoinSettingsSchema } from "./join_settings.ts";

/** Signaling URLs per member at most. */
const MAX_URLS = 4;

/** One entry of the member list. */
export const MemberInfoSchema = z.object({
  id: w.id(),
  name: w.str(128),
  runtime: w.str(16),
  joinedAt: w.uint(),
  lite: z.boolean(),
  incarnation: w.uint(),
  /** The member's signaling URLs (its HTTP base URLs). */
  urls: w.list(w.str(512), MAX_URLS).optional(),
  /** The fingerprint of the DTLS certificate the member joined with; its id is bound to it. */
  fp: w.str(160).optional(),
  /** The Ed25519 public key (hex) of the member's process; its relayed messages are checked with it. */
  pk: w.str(64).optional(),
});

/** A member list as the master published it. */
export const ListBodySchema = z.object({
  /** Member-list version; only ever increases. */
  version: w.uint(),
  /** The master that published this version. */
  master: w.id(),
  /** Master epoch at publication. */
  epoch: w.uint(),
  /** The next admission number the master will hand out. */
  nextJoin: w.uint(),
  members: w.list(MemberInfoSchema, MAX_MEMBERS),
});
export type ListBody = z.infer<typeof ListBodySchema>;

/** Gossip statuses: 0 alive, 1 suspect, 2 dead, 3 left. */
export const Status = { alive: 0, suspect: 1, dead: 2, left: 3 } as const;
export type StatusCode = 0 | 1 | 2 | 3;

/** One SWIM update: status of member `id` at incarnation `inc`; `by` is the accuser of a suspicion. */
export const GossipItemSchema = z.object({
  s: z.union([z.literal(0), z.literal(1), z.literal(2), z.literal(3)]),
  id: w.id(),
  inc: w.uint(),
  by: w.id().optional(),
});
export type GossipItem = z.infer<typeof GossipItemSchema>;
const gossip = () => w.list(GossipItemSchema, 256);

const joinFields = {
  cluster: w.str(256),
  id: w.id(),
  name: w.str(128),
  runtime: w.str(16),
  lite: z.boolean(),
  inc: w.uint(),
  ts: w.uint(),
  nonce: w.str(64),
  /** The joiner's signaling URLs, published in the member list. */
  urls: w.list(w.str(512), MAX_URLS).optional(),
  /** The joiner's cluster-wide settings (see src/cluster/join_settings.ts), compared by the master. */
  st: JoinSettingsSchema.optional(),
  /** The fingerprint of the joiner's DTLS certificate (one for all its links); the master binds its id to it. */
  fp: w.str(160).optional(),
  /** The Ed25519 public key (hex) the joiner signs its relayed messages with. */
  pk: w.str(64).optional(),
  /** HMAC(joinKey, [cluster, id, name, runtime, lite, inc, ts, nonce, then canonical st, urls, "fp:" + fp and "pk:" + pk when present]) */
  proof: w.str(64),
};
const JoinBodySchema = z.object(joinFields);
export type JoinBody = z.infer<typeof JoinBodySchema>;

export const JoinRequestMsg = defineMessage(Kind.ClusterJoinRequest, "ClusterJoinRequest", joinFields);
export const JoinForwardMsg = defineMessage(Kind.ClusterJoinForward, "ClusterJoinForward", {
  contact: w.id(),
  req: JoinBodySchema,
});
export const JoinAcceptedMsg = defineMessage(Kind.ClusterJoinAccepted, "ClusterJoinAccepted", {
  joiner: w.id(),
  list: ListBodySchema,
});
/** Longest reason a join or merge refusal carries (a longer one is clipped: `clip` in wire/message.ts). */
export const MAX_REFUSAL_REASON = 256;

export const JoinRefusedMsg = defineMessage(Kind.ClusterJoinRefused, "ClusterJoinRefused", {
  joiner: w.id(),
  code: z.enum(["AUTH_FAILED", "REFUSED", "RETRY"]),
  reason: w.str(MAX_REFUSAL_REASON),
});
export const PingMsg = defineMessage(Kind.ClusterPing, "ClusterPing", {
  seq: w.uint(),
  target: w.id(),
  /** sender's member-list version and believed master, for anti-entropy */
  lv: w.uint(),
  ms: w.str(128),
  g: gossip(),
});
export const AckMsg = defineMessage(Kind.ClusterAck, "ClusterAck", {
  seq: w.uint(),
  lv: w.uint(),
  ms: w.str(128),
  g: gossip(),
});
export const PingReqMsg = defineMessage(Kind.ClusterPingReq, "ClusterPingReq", {
  seq: w.uint(),
  target: w.id(),
  ms: w.str(128),
  g: gossip(),
});
export const NackMsg = defineMessage(Kind.ClusterNack, "ClusterNack", {
  seq: w.uint(),
  /** true: the helper has no path to the target at all (rather than no answer from it) */
  unreachable: z.boolean().optional(),
});
export const GossipMsg = defineMessage(Kind.ClusterGossip, "ClusterGossip", { ms: w.str(128), g: gossip() });
export const MemberListMsg = defineMessage(Kind.ClusterMemberList, "ClusterMemberList", {
  /** 0: `list.members` is the full list; otherwise a delta against version `base`. */
  base: w.uint(),
  list: ListBodySchema,
  removed: w.list(w.id(), MAX_MEMBERS),
  g: gossip(),
});
export const ListRequestMsg = defineMessage(Kind.ClusterListRequest, "ClusterListRequest", { have: w.uint() });
export const ViewRequestMsg = defineMessage(Kind.ClusterViewRequest, "ClusterViewRequest", {
  seq: w.uint(),
  epoch: w.uint(),
});
export const ViewReplyMsg = defineMessage(Kind.ClusterViewReply, "ClusterViewReply", {
  seq: w.uint(),
  list: ListBodySchema,
});
export const PushPullMsg = defineMessage(Kind.ClusterPushPull, "ClusterPushPull", {
  reply: z.boolean(),
  lv: w.uint(),
  ms: w.str(128),
  states: w.list(GossipItemSchema, MAX_MEMBERS),
});
export const RouteQueryMsg = defineMessage(Kind.ClusterRouteQuery, "ClusterRouteQuery", {
  seq: w.uint(),
  target: w.id(),
});
export const RouteAnswerMsg = defineMessage(Kind.ClusterRouteAnswer, "ClusterRouteAnswer", {
  seq: w.uint(),
  target: w.id(),
  ok: z.boolean(),
});
export const RouteHintMsg = defineMessage(Kind.ClusterRouteHint, "ClusterRouteHint", { via: w.id() });
export const SplitHelloMsg = defineMessage(Kind.ClusterSplitHello, "ClusterSplitHello", {
  cluster: w.str(256),
  master: w.id(),
  size: w.uint(),
  version: w.uint(),
  /** set by a member that relays the hello to its own master */
  relay: w.id().optional(),
  /** the sender's member ids (see split_brain.ts: a stale list does not win) */
  ids: w.list(w.id(), MAX_MEMBERS).optional(),
  /** with split-brain protection on: whether the sender (its group's master) holds a quorum now */
  q: z.boolean().optional(),
  /** 1: the sender breaks a tie of sizes by `version` (merge_rule.ts; added 8 December) */
  tv: z.literal(1).optional(),
});
export const MergeRequestMsg = defineMessage(Kind.ClusterMergeRequest, "ClusterMergeRequest", {
  cluster: w.str(256),
  master: w.id(),
  version: w.uint(),
  epoch: w.uint(),
  members: w.list(MemberInfoSchema, MAX_MEMBERS),
  ts: w.uint(),
  nonce: w.str(64),
  /** with split-brain protection on: whether the requesting master holds a quorum now */
  q: z.boolean().optional(),
  /** 1: the requester breaks a tie of sizes by `version` (merge_rule.ts; added 8 December) */
  tv: z.literal(1).optional(),
  /** HMAC(joinKey, ["merge", cluster, master, version, epoch, ts, nonce, member ids]), then `q` when present */
  proof: w.str(64),
});
export const MergeAcceptedMsg = defineMessage(Kind.ClusterMergeAccepted, "ClusterMergeAccepted", {
  list: ListBodySchema,
});
export const MergeRefusedMsg = defineMessage(Kind.ClusterMergeRefused, "ClusterMergeRefused", {
  reason: w.str(MAX_REFUSAL_REASON),
});
export const MergeIntoMsg = defineMessage(Kind.ClusterMergeInto, "ClusterMergeInto", {
  list: ListBodySchema,
  from: w.list(w.id(), MAX_MEMBERS),
});

/** Another group's master, checking a split-brain claim, asks a member who its master is (`n`: a fresh nonce). */
export const MergeCheckMsg = defineMessage(Kind.ClusterMergeCheck, "ClusterMergeCheck", {
  master: w.id(),
  n: w.str(64),
});
/** The answer: the nonce asked with, this member's master (empty before joining), its quorum under protection. */
export const MergeCheckReplyMsg = defineMessage(Kind.ClusterMergeCheckReply, "ClusterMergeCheckReply", {
  n: w.str(64),
  ms: w.str(128),
  q: z.boolean().optional(),
});

export type JoinRequest = z.infer<typeof JoinRequestMsg>;
export type JoinForward = z.infer<typeof JoinForwardMsg>;
export type JoinAccepted = z.infer<typeof JoinAcceptedMsg>;
export type JoinRefused = z.infer<typeof JoinRefusedMsg>;
export type Ping = z.infer<typeof PingMsg>;
export type Ack = z.infer<typeof AckMsg>;
export type PingReq = z.infer<typeof PingReqMsg>;
export type Nack = z.infer<typeof NackMsg>;
export type Gossip = z.infer<typeof GossipMsg>;
export type MemberListM = z.infer<typeof MemberListMsg>;
export type ListRequest = z.infer<typeof ListRequestMsg>;
export type ViewRequest = z.infer<typeof ViewRequestMsg>;
export type ViewReply = z.infer<typeof ViewReplyMsg>;
export type PushPull = z.infer<typeof PushPullMsg>;
export type RouteQuery = z.infer<typeof RouteQueryMsg>;
export type RouteAnswer = z.infer<typeof RouteAnswerMsg>;
export type RouteHint = z.infer<typeof RouteHintMsg>;
export type SplitHello = z.infer<typeof SplitHelloMsg>;
export type MergeRequest = z.infer<typeof MergeRequestMsg>;
export type MergeAccepted = z.infer<typeof MergeAcceptedMsg>;
export type MergeRefused = z.infer<typeof MergeRefusedMsg>;
export type MergeInto = z.infer<typeof MergeIntoMsg>;
export type MergeCheck = z.infer<typeof MergeCheckMsg>;
export type MergeCheckReply = z.infer<typeof MergeCheckReplyMsg>;

/** Every kind the membership layer handles. */
export const ClusterKinds: number[] = [
  Kind.ClusterJoinRequest,
  Kind.ClusterJoinForward,
  Kind.ClusterJoinAccepted,
  Kind.ClusterJoinRefused,
  Kind.ClusterPing,
  Kind.ClusterAck,
  Kind.ClusterPingReq,
  Kind.ClusterNack,
  Kind.ClusterGossip,
  Kind.ClusterMemberList,
  Kind.ClusterListRequest,
  Kind.ClusterViewRequest,
  Kind.ClusterViewReply,
  Kind.ClusterPushPull,
  Kind.ClusterRouteQuery,
  Kind.ClusterRouteAnswer,
  Kind.ClusterRouteHint,
  Kind.ClusterSplitHello,
  Kind.ClusterMergeRequest,
  Kind.ClusterMergeAccepted,
  Kind.ClusterMergeRefused,
  Kind.ClusterMergeInto,
  Kind.ClusterMergeCheck,
  Kind.ClusterMergeCheckReply,
];
