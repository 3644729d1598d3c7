/**
 * The join path of a member: the signed join request (with the cluster-wide settings and the
 * member's own signaling URLs), the checks a member makes of one (cluster name, proof,
 * replay, settings that must match), forwarding it to the master, and the answer travelling
 * back to the joiner through its contact. Admission itself is the master's (master.ts);
 * the seed loop and re-joining after being taken for dead stay in membership.ts.
 */
import type { ReplayGuard, RotatingKey } from "../wire/envelope.ts";
import { otherKey, sign, verifyEither } from "../wire/envelope.ts";
import { Kind } from "../wire/kinds.ts";
import { clip } from "../wire/message.ts";
import type { NodeId } from "../transport/transport.ts";
import { canonicalSettings, settingsMismatch } from "./join_settings.ts";
import type { MembershipPart, MembershipStats } from "./part.ts";
import {
  type JoinAccepted,
  type JoinBody,
  type JoinForward,
  type JoinRefused,
  type JoinRequest,
  type ListBody,
  MAX_REFUSAL_REASON,
} from "./messages.ts";
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
  /** Keys that sign and check join requests (two during a secret rotation), and the guard against their replay. */
  readonly joinKeys: RotatingKey;
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
  /** The member this node last sent its join request to (its answer may come through it). */
  #asked: NodeId | undefined;
  /** The key this member's join requests are signed with now: the other one of a rotation after a refusal. */
  #signKey: Uint8Array;

  constructor(readonly host: JoinHost) {
    this.#signKey = host.joinKeys.key;
  }

  /** Signs the next join requests with the current secret. */
  useCurrentKey(): void {
    this.#signKey = this.host.joinKeys.key;
  }

  /**
   * Signs the next join requests with the previous secret (a rotation in progress: the seed,
   * or the master behind it, refused the current one).
   * @returns false when there is no previous secret, or it is already in use
   */
  usePreviousKey(): boolean {
    const previous = this.host.joinKeys.previousKey;
    if (!previous || this.#signKey === previous) return false;
    this.#signKey = previous;
    return true;
  }

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
    if (b.fp) fields.push(`fp:${b.fp}`);
    if (b.pk) fields.push(`pk:${b.pk}`);
    return fields;
  }

  /** A signed join request for `to`, whose answer (through it, or from the master) is then accepted. */
  makeJoinRequest(to: NodeId): JoinRequest {
    const h = this.host;
    this.#asked = to;
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
      ...(h.t.fingerprint ? { fp: h.t.fingerprint } : {}),
      ...(h.t.signingKey ? { pk: h.t.signingKey } : {}),
    };
    return { t: Kind.ClusterJoinRequest, ...b, proof: sign(this.#signKey, this.#joinFields(b)) };
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
      if (!h.send(seed, this.makeJoinRequest(seed))) done({ kind: "timeout" });
    });
  }

  /** Why a join request must be refused, or null. */
  #checkJoin(req: JoinBody): { code: "AUTH_FAILED" | "REFUSED"; reason: string } | null {
    const h = this.host;
    if (req.cluster !== h.config.cluster) return { code: "REFUSED", reason: "cluster name does not match" };
    if (!verifyEither(h.joinKeys, this.#joinFields(req), req.proof)) {
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
    h.send(
      to,
      { t: Kind.ClusterJoinRefused, joiner, code, reason: clip(reason, MAX_REFUSAL_REASON) } satisfies JoinRefused,
    );
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
    // A member forwards only requests it received itself: it names itself as the contact.
    if (m.contact !== from) return this.host.reject("join_forward_forged", from);
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
      // Passed on only from our master, who publishes the list it carries.
      if (from !== h.master() || m.list.master !== from) return h.reject("join_answer_forged", from);
      if (h.t.isLinked(m.joiner)) h.send(m.joiner, m);
      return;
    }
    // The answer comes from the master that admitted this node, or through the member it asked.
    if (from !== m.list.master && from !== this.#asked) return h.reject("join_answer_forged", from);
    if (this.#joinWaiter) return this.#joinWaiter({ kind: "accepted", list: m.list, from });
    if (h.rejoining() && isNewerList(h.list.version, m.list.version)) {
      h.log.info("cluster.join.rejoined", { master: m.list.master });
      h.installList(m.list, null);
    }
  }

  onJoinRefused(from: NodeId, m: JoinRefused): void {
    const h = this.host;
    if (m.joiner !== h.self) {
      if (from !== h.master()) return h.reject("join_answer_forged", from);
      if (h.t.isLinked(m.joiner)) h.send(m.joiner, m);
      return;
    }
    if (from !== this.#asked) return h.reject("join_answer_forged", from);
    if (this.#joinWaiter) return this.#joinWaiter({ kind: "refused", code: m.code, reason: m.reason });
    // A rejoin refused under one secret of a rotation is tried under the other next time.
    const other = m.code === "AUTH_FAILED" && h.rejoining() ? otherKey(h.joinKeys, this.#signKey) : undefined;
    if (other) this.#signKey = other;
  }
}
