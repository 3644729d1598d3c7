/**
 * The JSON bodies of `GET /cluster` and `GET /health`, built from a node's read-only
 * surface. Also the dashboard's view of the cluster.
 */
import type { QuorumState } from "../cluster/quorum.ts";
import { type LinkInfo, membersLacking, type ShoalNode } from "../node_api.ts";
import { CLOCK_OFFSET_WARN_MS } from "../signaling/challenges.ts";
import type { NodeId } from "../transport/transport.ts";

/** One entry of `members` in `GET /cluster`. */
export interface ClusterMemberJson {
  id: NodeId;
  name: string;
  runtime: string;
  joinedAt: number;
  lite: boolean;
  /**
   * That member's clock minus this member's, in ms, as measured when their link was set up
   * (0 for this member; null when not measured, e.g. a member reached only through a relay).
   * Beyond `clockOffsetWarnMs` either way, `latestUpdate` merges and TTL deadlines between
   * the two are off by that much; the member also logs a warning.
   */
  clockOffsetMs: number | null;
  /** Where the member serves its signaling endpoint (absent for members without HTTP). */
  urls?: string[];
}

/** The body of `GET /cluster`. */
export interface ClusterJson {
  cluster: string;
  /** This member's id. */
  self: NodeId;
  master: NodeId | null;
  /** The member running the job coordinator: always the master. */
  coordinator: NodeId | null;
  /** Master epoch: increases with every master change. */
  epoch: number;
  members: ClusterMemberJson[];
  memberListVersion: number;
  partitionTableVersion: number;
  partitions: {
    count: number;
    owners: Record<NodeId, number>;
    replicasMissing: number;
    migrating: number;
    lost: number;
    dataLoss: number;
  };
  /**
   * This member's paths to the others: a direct link (with the ICE candidate type of its
   * local end when the transport tells), or a route relayed through another member.
   */
  links: LinkInfo[];
  /**
   * Members this one has no path to right now: no direct link, and no route through a relay
   * it does not suspect (a relay that died, before the verdicts on it and on the members
   * behind it). Links being set up count here too.
   */
  unreachable: NodeId[];
  /** Split-brain protection (null when the node does not report it): serving, why not, lease left. */
  quorum: QuorumState | null;
  /** The clock-offset bound past which a warning is logged. */
  clockOffsetWarnMs: number;
}

/**
 * Builds the `GET /cluster` body.
 * @param node the node to describe
 * @returns the JSON-ready object
 */
export function clusterJson(node: ShoalNode): ClusterJson {
  const view = node.cluster;
  const master = view.master() ?? null;
  const p = node.partitionSummary();
  const offsets = node.clockOffsets?.() ?? {};
  const links = node.links();
  return {
    cluster: node.clusterName,
    self: node.id,
    master,
    coordinator: master,
    epoch: view.masterEpoch,
    members: view.members().map((m) => ({
      id: m.id,
      name: m.name,
      runtime: m.runtime,
      joinedAt: m.joinedAt,
      lite: m.lite,
      clockOffsetMs: m.id === node.id ? 0 : offsets[m.id]?.offsetMs ?? null,
      ...(m.urls ? { urls: [...m.urls] } : {}),
    })),
    memberListVersion: view.memberListVersion,
    partitionTableVersion: p.version,
    partitions: {
      count: p.count,
      owners: { ...p.owners },
      replicasMissing: p.replicasMissing,
      migrating: p.migrating,
      lost: p.lost,
      dataLoss: p.dataLoss,
    },
    links: links.map((l) => ({
      peer: l.peer,
      kind: l.kind,
      ...(l.via === undefined ? {} : { via: l.via }),
      ...(l.candidateType === undefined ? {} : { candidateType: l.candidateType }),
      ...(l.remoteCandidateType === undefined ? {} : { remoteCandidateType: l.remoteCandidateType }),
    })),
    unreachable: view.members().map((m) => m.id).filter((id) => id !== node.id && !links.some((l) => l.peer === id)),
    quorum: node.quorum?.() ?? null,
    clockOffsetWarnMs: CLOCK_OFFSET_WARN_MS,
  };
}

/** The body of `GET /health`. */
export interface HealthJson {
  status: "ok" | "starting";
  member: NodeId;
  master: NodeId | null;
  /**
   * Every partition has all its replicas in sync in this member's table (`replicasMissing`
   * is 0: backups created in place count only once their primary reported them in sync), so
   * one more crash loses no data. A script waits for it on every member after starting a
   * cluster.
   */
  safe: boolean;
  replicasMissing: number;
  /**
   * Members of this member's view it has no link to, direct or relayed (empty once it
   * reaches every member; links still forming, or a member it is cut off from).
   */
  lacks: NodeId[];
}

/** The body of `GET /health`; `ok` decides between 200 and 503 (`safe` does not). */
export function healthJson(node: ShoalNode): { ok: boolean; body: HealthJson } {
  const joined = node.cluster.joined;
  const master = node.cluster.master() ?? null;
  const ok = joined && master !== null;
  const p = node.partitionSummary();
  const safe = ok && p.version > 0 && p.replicasMissing === 0;
  return {
    ok,
    body: {
      status: ok ? "ok" : "starting",
      member: node.id,
      master,
      safe,
      replicasMissing: p.replicasMissing,
      lacks: membersLacking(node),
    },
  };
}
