/**
 * Checking another group's claim before merging into it. A split-brain hello (57) says "I am
 * the master of these members, and I hold a quorum": any member holding the cluster secret
 * can send one, so before the losing master merges into the other group (and then adopts
 * whatever member list its master answers with) it asks the members named in the claim
 * themselves, each over a direct link of its own, who their master is (64). Every question
 * carries a fresh random nonce that only the asked member sees (the link is DTLS-encrypted
 * and bound to the member's certificate), so a reply quoting it (65) comes from that
 * member, not from a peer forwarding a forged one in its name.
 *
 * Only members that confirm count: the claim holds if the group of confirmed members (with
 * the quorum it claims only when another confirmed member than the master says it holds one
 * too) still wins the merge rules (`mergeWinner`) against this group. A liar naming this
 * group's own members, or ids nobody answers to, is not backed by them; a woken master's
 * former members, who elected a new master meanwhile, confirm it and the merge goes on.
 */
import type { NodeId } from "../transport/transport.ts";
import { Kind } from "../wire/kinds.ts";
import { type GroupSummary, mergeWinner } from "./merge_rule.ts";
import type { MembershipPart } from "./part.ts";
import type { MergeCheck, MergeCheckReply } from "./messages.ts";

/** What a claim check needs from the membership of its node. */
export interface ClaimCheckHost extends MembershipPart {
  /** With split-brain protection on: whether this member holds a quorum now; undefined when off. */
  holdsQuorum(): boolean | undefined;
}

/** Another group's claim, as a hello makes it. */
export interface Claim {
  master: NodeId;
  /** Its members (a hello without ids is checked with its master alone). */
  ids: readonly NodeId[];
  q?: boolean;
  /** Its member list's version, as the hello gave it. */
  version?: number;
}

/** How a check ended: whether the claim holds, how many of the asked members confirmed it, and who did not answer. */
export interface CheckResult {
  ok: boolean;
  confirmed: number;
  asked: number;
  /** Asked members that neither answered nor failed to link (at most 16 named). */
  silent: NodeId[];
  /** Whether a confirming member other than the master vouched for the claimed quorum. */
  vouched: boolean;
}

interface Run {
  claim: Claim;
  /** This group as the merge rules see it (read afresh at every answer). */
  mine: () => GroupSummary;
  done: (r: CheckResult) => void;
  targets: NodeId[];
  /** The nonce sent to each asked member. */
  asked: Map<NodeId, string>;
  /** Rounds each member was asked over a link that looked open without answering. */
  unanswered: Map<NodeId, number>;
  /** Members whose silent link was closed and opened anew (once per check). */
  relinked: Set<NodeId>;
  /** Members that answered, could not be reached, or whose answer is no longer awaited. */
  settled: Set<NodeId>;
  confirmed: Set<NodeId>;
  /** Confirmed members other than the master that hold a quorum themselves. */
  vouch: Set<NodeId>;
  /** Members not linked, to connect to (a few at a time), and those being connected to. */
  toConnect: Set<NodeId>;
  connecting: Set<NodeId>;
}

/** Rounds (probe intervals) a member may leave a question over an open-looking link unanswered before it is re-linked. */
const RELINK_AFTER_ROUNDS = 3;

export class ClaimCheck {
  #run: Run | null = null;

  constructor(readonly host: ClaimCheckHost) {}

  /** Whether a check is under way (one at a time). */
  get busy(): boolean {
    return this.#run !== null;
  }

  /**
   * Asks the members the claim names (linked to its master already) who their master is, and
   * calls `done` once the confirmed ones make the claim win, once every one answered or failed,
   * or after the connect and join timeouts.
   */
  start(claim: Claim, mine: () => GroupSummary, done: (r: CheckResult) => void): void {
    const h = this.host;
    if (this.#run) return;
    const targets = [...new Set([claim.master, ...claim.ids])].filter((id) => id !== h.self);
    const run: Run = {
      claim,
      mine,
      done,
      targets,
      asked: new Map(),
      unanswered: new Map(),
      relinked: new Set(),
      settled: new Set(),
      confirmed: new Set(),
      vouch: new Set(),
      toConnect: new Set(),
      connecting: new Set(),
    };
    this.#run = run;
    // Asks again, every probe interval, the members that have not answered. A link that looks
    // open may be dead (this master was paused, and the others closed theirs meanwhile, which
    // it may not notice before its own failure detection removes them): after three silent
    // rounds it is closed and opened anew, once.
    const round = () => {
      if (this.#run !== run) return;
      for (const id of targets) {
        if (!run.settled.has(id) && !run.connecting.has(id) && !run.toConnect.has(id)) this.#reach(run, id);
      }
      this.#pump(run);
      if (this.#run === run) h.after(h.config.probeIntervalMs, round);
    };
    round();
    h.after(h.config.connectTimeoutMs + h.config.joinTimeoutMs, () => this.#finish(run, false));
  }

  /** A member of another group asks who this member's master is: answer with the nonce. */
  onCheck(from: NodeId, m: MergeCheck): void {
    const h = this.host;
    const q = h.holdsQuorum();
    h.send(
      from,
      {
        t: Kind.ClusterMergeCheckReply,
        n: m.n,
        ms: h.master() ?? "",
        ...(q === undefined ? {} : { q }),
      } satisfies MergeCheckReply,
    );
  }

  onReply(from: NodeId, m: MergeCheckReply): void {
    const run = this.#run;
    // Late answers (after the check ended) and answers quoting another nonce are ignored.
    if (!run || run.asked.get(from) !== m.n || run.settled.has(from)) return;
    run.settled.add(from);
    if (m.ms === run.claim.master) {
      run.confirmed.add(from);
      if (m.q === true && from !== run.claim.master) run.vouch.add(from);
    }
    this.#evaluate(run);
  }

  /** Asks `id` over its direct link (the same nonce every time), or queues a connection to it. */
  #reach(run: Run, id: NodeId): void {
    const h = this.host;
    let n = run.asked.get(id);
    if (n === undefined) run.asked.set(id, n = h.rng.id(24));
    const silent = run.unanswered.get(id) ?? 0;
    if (h.t.isLinked(id) && silent >= RELINK_AFTER_ROUNDS && !run.relinked.has(id)) {
      run.relinked.add(id);
      h.log.debug("cluster.split_brain.relink", { peer: id, silentRounds: silent });
      h.t.disconnect(id);
    }
    // A send refused over a link (a full queue) is tried again next round.
    if (h.t.isLinked(id)) {
      run.unanswered.set(id, silent + 1);
      h.send(id, { t: Kind.ClusterMergeCheck, master: run.claim.master, n } satisfies MergeCheck);
    } else run.toConnect.add(id);
  }

  #fail(run: Run, id: NodeId): void {
    run.settled.add(id);
    this.#evaluate(run);
  }

  /** Opens links to the members not yet linked, at most `maxConcurrentConnects` at a time, through the claimed master. */
  #pump(run: Run): void {
    const h = this.host;
    while (this.#run === run && run.toConnect.size > 0 && run.connecting.size < h.config.maxConcurrentConnects) {
      const id = run.toConnect.values().next().value!;
      run.toConnect.delete(id);
      run.connecting.add(id);
      const via = h.t.isLinked(run.claim.master) && id !== run.claim.master ? run.claim.master : undefined;
      h.t.connect(id, { via, timeoutMs: h.config.connectTimeoutMs }).then(
        () => {
          run.connecting.delete(id);
          if (this.#run === run && !run.settled.has(id)) this.#reach(run, id);
          this.#pump(run);
        },
        () => {
          run.connecting.delete(id);
          // A member this master cannot link to cannot confirm: it is not asked again.
          if (this.#run === run) this.#fail(run, id);
          this.#pump(run);
        },
      );
    }
  }

  /** The group of confirmed members, as the merge rules see it. */
  #confirmedGroup(run: Run): GroupSummary {
    const { claim } = run;
    // The claim's own listing of this member stays: it only makes the members both list count for both.
    const members = claim.ids.filter((id) => run.confirmed.has(id) || id === this.host.self);
    if (run.confirmed.has(claim.master) && !members.includes(claim.master)) members.push(claim.master);
    return {
      size: run.confirmed.size,
      master: claim.master,
      members,
      ...(claim.q === undefined ? {} : { quorum: claim.q && run.vouch.size > 0 }),
      ...(claim.version === undefined ? {} : { version: claim.version }),
    };
  }

  #evaluate(run: Run): void {
    if (this.#run !== run) return;
    if (run.confirmed.size > 0 && mergeWinner(run.mine(), this.#confirmedGroup(run)) === "b") {
      return this.#finish(run, true);
    }
    if (run.settled.size >= run.targets.length) this.#finish(run, false);
  }

  #finish(run: Run, ok: boolean): void {
    if (this.#run !== run) return;
    this.#run = null;
    const silent = run.targets.filter((id) => !run.settled.has(id)).slice(0, 16);
    run.done({ ok, confirmed: run.confirmed.size, asked: run.targets.length, silent, vouched: run.vouch.size > 0 });
  }
}
