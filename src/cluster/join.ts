/**
 * The join path of a member: the signed join request (with the cluster-wide settings and the
 * member's own signaling URLs), the checks a member makes of one (cluster name, proof,
 * replay, settings that must match), forwarding it to the master, and the answer travelling
 * back to the joiner through its contact. Admission itself is the master's (master.ts);
 * the seed loop and re-joining after being taken for dead stay in membership.ts.
 */
import type { ReplayGuard } from "../wire/envelope.ts";
import { sign, verify } from "../wire/envelope.ts";
import { Kind } from "../wire/kinds.ts";
import type { NodeId } from "../transport/transport.ts";
import { canonicalSettings, settingsMismatch } from "./join_settings.ts";
import type { MembershipPart, MembershipStats } from "./part.ts";
import type { JoinAccepted, JoinBody, JoinForward, JoinRefused, JoinRequest, ListBody } from "./messages.ts";
import { isNewerList } from "./member_list.ts";

export type JoinResult =
  | { kind: "accepted"; list: ListBody; from: NodeId }
  | { kind: "refused"; code: "AUTH_FAILED" | "REFUSED" | "RETRY"; reason: string }
  | { kind: "timeout" };

/** Reason of the RETRY refusal from a contact that is not in a cluster yet. */
export const NOT_JOINED = "contact has not joined a cluster yet";

/** What the join path needs from the membership of its node. */
export interface JoinHost extends MembershipPart {
  readonly stats: MembershipStats;
  /** Key that signs join requests, and the guard against their replay. */
  readonly joinKey: Uint8Array;
  readonly replay: ReplayGuard;
  selfInc(): number;
  /** This member's signaling URLs (sent with its join request). */
  urls(): readonly string[];
  joined(): boolean;
  rejoining(): boolean;
  isMaster(): boolean;
  /** The master's admission of a checked request: a refusal, or null when it goes ahead. */
  admitJoin(req: JoinBody, contact: NodeId): { code: "RETRY" | "REFUSED"; reason: string } | null;
  installList(body: ListBody, delta: { removed: NodeId[] } | null): void;
}

export class JoinPath {
  #joinWaiter: ((r: JoinResult) => void) | null = null;

  constructor(readonly host: JoinHost) {}

  /** Whether a join request of this member is waiting for its answer. */
  get waiting(): boolean {
    return this.#joinWaiter !== null;
  }

  /** Ends the join request waiting for its answer, if any (the membership stopped). */
  cancel(): void {
    this.#joinWaiter?.({ kind: "timeout" });
    this.#joinWaiter = null;
  }

  #joinFields(b: Omit<JoinBody, "proof">): unknown[] {
    const fields: unknown[] = [b.cluster, b.id, b.name, b.runtime, b.lite, b.inc, b.ts, b.nonce];
    if (b.st) fields.push(canonicalSettings(b.st));
    if (b.urls) fields.push(b.urls.join(" "));
    return fields;
  }

  makeJoinRequest(): JoinRequest {
    const h = this.host;
    const urls = h.urls();
    const b = {
      cluster: h.config.cluster,
      id: h.self,
      name: h.config.name,
      runtime: h.config.runtime,
      lite: h.config.lite,
      inc: h.selfInc(),
      ts: Math.floor(h.clock.now()),
      nonce: h.rng.id(32),
      ...(h.config.settings ? { st: { ...h.config.settings.values } } : {}),
      ...(urls.length > 0 ? { urls: [...urls] } : {}),
    };
    return { t: Kind.ClusterJoinRequest, ...b, proof: sign(h.joinKey, this.#joinFields(b)) };
  }

  requestJoin(seed: NodeId): Promise<JoinResult> {
    const h = this.host;
    return new Promise((resolve) => {
      const timer = h.clock.setTimer(h.config.joinTimeoutMs, () => done({ kind: "timeout" }));
      const done = (r: JoinResult) => {
        timer.cancel();
        if (this.#joinWaiter === done) this.#joinWaiter = null;
        resolve(r);
      };
      this.#joinWaiter = done;
      if (!h.send(seed, this.makeJoinRequest())) done({ kind: "timeout" });
    });
  }

  /** Why a join request must be refused, or null. */
  #checkJoin(req: JoinBody): { code: "AUTH_FAILED" | "REFUSED"; reason: string } | null {
    const h = this.host;
    if (req.cluster !== h.config.cluster) return { code: "REFUSED", reason: "cluster name does not match" };
    if (!verify(h.joinKey, this.#joinFields(req), req.proof)) {
      return { code: "AUTH_FAILED", reason: "join proof does not verify (wrong cluster secret)" };
    }
    const r = h.replay.check(req.nonce, req.ts, h.clock.now());
    if (r) return { code: "AUTH_FAILED", reason: `join refused: ${r}` };
    // Settings that differ cannot work together (a joiner without any is of another version).
    const differs = h.config.settings && settingsMismatch(h.config.settings, req.st ?? {});
    if (differs) return { code: "REFUSED", reason: differs };
    return null;
  }

  #refuseJoin(to: NodeId, joiner: NodeId, code: JoinRefused["code"], reason: string): void {
    const h = this.host;
    if (code !== "RETRY") {
      h.stats.joinsRefused++;
      h.log.warn("cluster.admission.refused", { joiner, code, reason });
    }
    h.send(to, { t: Kind.ClusterJoinRefused, joiner, code, reason } satisfies JoinRefused);
  }

  onJoinRequest(from: NodeId, m: JoinRequest): void {
    const h = this.host;
    if (!h.joined() || h.rejoining()) return this.#refuseJoin(from, m.id, "RETRY", NOT_JOINED);
    if (m.id !== from) return this.#refuseJoin(from, m.id, "REFUSED", "join request must come from the joiner itself");
    const bad = this.#checkJoin(m);
    if (bad) return this.#refuseJoin(from, m.id, bad.code, bad.reason);
    const { t: _t, ...req } = m;
    if (h.isMaster()) return this.#handleAdmission(req, h.self, from);
    const master = h.master();
    if (!master || !h.send(master, { t: Kind.ClusterJoinForward, contact: h.self, req } satisfies JoinForward)) {
      this.#refuseJoin(from, m.id, "RETRY", "master unreachable");
    }
  }

  onJoinForward(from: NodeId, m: JoinForward): void {
    if (!this.host.isMaster()) return this.#refuseJoin(from, m.req.id, "RETRY", "not the master");
    const bad = this.#checkJoin(m.req);
    if (bad) return this.#refuseJoin(from, m.req.id, bad.code, bad.reason);
    this.#handleAdmission(m.req, m.contact, from);
  }

  #handleAdmission(req: JoinBody, contact: NodeId, replyTo: NodeId): void {
    const refusal = this.host.admitJoin(req, contact);
    if (refusal) this.#refuseJoin(replyTo, req.id, refusal.code, refusal.reason);
  }

  onJoinAccepted(from: NodeId, m: JoinAccepted): void {
    const h = this.host;
    if (m.joiner !== h.self) {
      if (h.t.isLinked(m.joiner)) h.send(m.joiner, m);
      return;
    }
    if (this.#joinWaiter) return this.#joinWaiter({ kind: "accepted", list: m.list, from });
    if (h.rejoining() && isNewerList(h.list.version, m.list.version)) {
      h.log.info("cluster.join.rejoined", { master: m.list.master });
      h.installList(m.list, null);
    }
  }

  onJoinRefused(_from: NodeId, m: JoinRefused): void {
    const h = this.host;
    if (m.joiner !== h.self) {
      if (h.t.isLinked(m.joiner)) h.send(m.joiner, m);
      return;
    }
    this.#joinWaiter?.({ kind: "refused", code: m.code, reason: m.reason });
  }
}
