/**
 * Links and relays: this node keeps a direct link to every live member (the newer member of
 * a pair opens it, the older one after `linkFallbackMs`, or right away when a link to that
 * member closed at its own end: the other end may not know), routes through a member that
 * reaches both ends when a pair cannot link, and asks around who reaches a member before
 * signalling a link through it. Links are hints: a closed link triggers a probe, never a
 * verdict (membership.ts decides).
 */
import type { CandidateType, NodeId } from "../transport/transport.ts";
import { Kind } from "../wire/kinds.ts";
import type { MembershipPart } from "./part.ts";
import type { MemberState } from "./member_list.ts";
import { type RouteAnswer, type RouteHint, type RouteQuery, Status } from "./messages.ts";
import { addNewest } from "../core/bounded.ts";

/** How this node reaches a member: over its own link, or relayed through another member. */
export interface MemberLink {
  peer: NodeId;
  kind: "direct" | "relayed";
  via?: NodeId;
  /** A direct link's selected ICE candidate pair: this end's candidate type (WebRTC only). */
  candidateType?: CandidateType;
  /** The peer's candidate type in that pair. */
  remoteCandidateType?: CandidateType;
}

/** A question "who reaches `target`?" in flight, to open a link through the answerer or relay via it. */
export interface RouteRequest {
  kind: "route";
  target: NodeId;
  done: boolean;
  purpose: "relay" | "connect";
}

/** What links need from the membership of their node. */
export interface LinksHost extends MembershipPart {
  readonly stats: { relayRoutes: number };
  /** Requests in flight by sequence number (shared with probes, hence `kind`). */
  readonly pending: Map<number, { kind: string } | RouteRequest>;
  nextSeq(): number;
  joined(): boolean;
  stopped(): boolean;
  contact(): NodeId | undefined;
  randomMembers(k: number, ok: (id: NodeId) => boolean): NodeId[];
}

/** A link attempt signalled through a server is given up for a new path only once this old. */
const RESTART_MIN_AGE_MS = 1_000;

export class Links {
  /** Live members this node has no link to yet. */
  readonly unlinked = new Set<NodeId>();
  /** Members a link is being opened to (split-brain checks use it too). */
  readonly connecting = new Set<NodeId>();
  /**
   * How each link being opened is signalled: through a member (relayed over the mesh) or,
   * `null`, through a signaling server.
   */
  readonly #paths = new Map<NodeId, { via: NodeId | null; at: number }>();
  /** Links whose opening was given up on purpose (their path died): retried at once. */
  readonly #retryNow = new Set<NodeId>();
  #tickQueued = false;
  /**
   * Members whose link closed at this end (its transport saw it close, or a verdict here
   * tore it down), until a link to them is up again. The other end may not have seen the
   * close (a half-open link: a close lost on its way, a verdict it then refuted) and opens
   * nothing while its end looks open, so this end opens the link again at once even when
   * it is the older of the pair. Oldest first; at most `maxLostMembers`.
   */
  readonly #closedHere = new Set<NodeId>();

  constructor(readonly host: LinksHost) {}

  /** When routes through a suspected relay last looked for another relay, by target. */
  readonly #rerouted = new Map<NodeId, number>();

  /** Whether this node reaches a member, directly or through a linked relay. */
  reachable(id: NodeId): boolean {
    const t = this.host.t;
    if (t.isLinked(id)) return true;
    const via = t.routeOf(id);
    return via !== undefined && t.isLinked(via);
  }

  /**
   * How this node reaches each other live member: direct link or relay route. A route
   * through a relay this node suspects is no path (a dead relay's link can stay open for
   * tens of seconds): such a member is left out, as is one with neither link nor route.
   */
  links(): MemberLink[] {
    const { t, self } = this.host;
    const out: MemberLink[] = [];
    for (const m of this.host.members()) {
      if (m.id === self) continue;
      if (t.isLinked(m.id)) {
        const pair = t.selectedPair?.(m.id);
        out.push(
          pair
            ? { peer: m.id, kind: "direct", candidateType: pair.local, remoteCandidateType: pair.remote }
            : { peer: m.id, kind: "direct" },
        );
      } else {
        const via = t.routeOf(m.id);
        if (via && !this.#suspected(via)) out.push({ peer: m.id, kind: "relayed", via });
      }
    }
    return out;
  }

  #suspected(id: NodeId): boolean {
    return this.host.list.states.get(id)?.status === Status.suspect;
  }

  /** A member got an entry: link to it unless linked already. */
  appeared(id: NodeId): void {
    if (id !== this.host.self && !this.host.t.isLinked(id)) this.unlinked.add(id);
  }

  /** A member is gone (verdict or removal): only this tears its link down. */
  gone(id: NodeId): void {
    const t = this.host.t;
    this.pathLost(id);
    this.unlinked.delete(id);
    this.#rerouted.delete(id);
    if (t.isLinked(id)) {
      this.#closed(id);
      t.disconnect(id);
    }
    if (t.routeOf(id)) t.setRoute(id, null);
  }

  /**
   * `via` is suspect or gone: links being signalled through it will not complete (a killed
   * member relays nothing, and the transport would wait out its connect timeout). Give them
   * up and open them again at once through another path (another member that reaches the
   * peer, or a signaling server where the peer is registered).
   */
  pathLost(via: NodeId): void {
    for (const [id, p] of this.#paths) if (p.via === via) this.#abort(id);
  }

  /**
   * A new signaling path to `id` opened (its own signaling endpoint): link now, and give up
   * an attempt under way that cannot complete, one signalled through a server (the server
   * it went through may be the one that died) or through a member that is not alive here.
   * @param serverLost the server `id` was reached through is gone: an attempt signalled
   *   through a server is given up however young (it went through the dead one)
   */
  retry(id: NodeId, serverLost = false): void {
    const st = this.host.list.states.get(id);
    if (!st || id === this.host.self || this.host.t.isLinked(id) || st.status > Status.suspect) return;
    st.link.nextAt = 0;
    this.unlinked.add(id);
    const p = this.#paths.get(id);
    // A server attempt started lately likely went through the new path already: restarting it
    // would only cost the progress it made (several paths often appear within a few ms, and on
    // a loaded machine a WebRTC set-up takes seconds).
    const serverStuck = p?.via === null && (serverLost || this.host.clock.now() - p.at >= RESTART_MIN_AGE_MS);
    if (serverStuck || (p?.via && !this.#healthyRelay(p.via))) this.#abort(id);
    this.queueTick();
  }

  /**
   * Gives up the attempt to `id` under way; it is made again at once.
   * @param stalledMs set when it is given up as stalled (silent this long); otherwise its
   *   path died, and the next attempt starts a new series of restarts for stalls
   */
  #abort(id: NodeId, stalledMs?: number): void {
    if (this.#retryNow.has(id)) return;
    this.#retryNow.add(id);
    const via = this.#paths.get(id)?.via ?? "server";
    if (stalledMs !== undefined) this.host.log.info("cluster.link.stalled", { peer: id, via, quietMs: stalledMs });
    else {
      this.host.log.info("cluster.link.path_lost", { peer: id, via });
      const st = this.host.list.states.get(id);
      if (st) st.link.stalls = 0;
    }
    this.host.t.disconnect(id);
  }

  /** A member that can relay signaling: linked and not suspected here. */
  #healthyRelay(id: NodeId): boolean {
    return this.host.t.isLinked(id) && this.host.list.states.get(id)?.status === Status.alive;
  }

  #closed(id: NodeId): void {
    addNewest(this.#closedHere, id, this.host.config.maxLostMembers);
  }

  /** A link came up: drop any relay route, and the link-opening back-off. */
  up(peer: NodeId, st: MemberState | undefined): void {
    this.#closedHere.delete(peer);
    this.unlinked.delete(peer);
    if (this.host.t.routeOf(peer)) this.host.t.setRoute(peer, null);
    if (st) {
      st.link.upAt = this.host.clock.now();
      st.link.attempts = 0;
      st.link.stalls = 0;
      st.link.established = true;
    }
  }

  /** A live member's link closed: re-link or route around it. */
  down(peer: NodeId, st: MemberState): void {
    this.#closed(peer);
    this.unlinked.add(peer);
    st.link.since = this.host.clock.now();
    st.link.nextAt = 0;
  }

  queueTick(): void {
    if (this.#tickQueued || !this.host.joined()) return;
    this.#tickQueued = true;
    this.host.after(0, () => {
      this.#tickQueued = false;
      this.tick();
    });
  }

  /** Opens missing links (the newer member of a pair initiates) and routes around failures. */
  tick(): void {
    const { t, self, config, list } = this.host;
    const now = this.host.clock.now();
    const me = list.states.get(self);
    for (const id of this.unlinked) {
      if (this.connecting.size >= config.maxConcurrentConnects) break;
      const st = list.states.get(id);
      if (!st || st.status > Status.suspect || id === self) {
        this.unlinked.delete(id);
        continue;
      }
      if (t.isLinked(id)) {
        this.unlinked.delete(id);
        continue;
      }
      const via = t.routeOf(id);
      if (via !== undefined && !t.isLinked(via)) t.setRoute(id, null); // the relay is gone
      else if (via !== undefined && this.#suspected(via)) this.#reroute(id);
      if (this.connecting.has(id) || now < st.link.nextAt) continue;
      const iAmNewer = !!me && me.info.joinedAt > st.info.joinedAt;
      if (!iAmNewer && !this.#closedHere.has(id) && now - st.link.since < config.linkFallbackMs) continue;
      this.#connectTo(id, st);
    }
  }

  /**
   * Members worth asking whether they reach `target`: the master, our contact, two at random;
   * not the one that relayed an attempt just given up as stalled (another path is tried).
   */
  #viaCandidates(target: NodeId, avoid: NodeId | null | undefined): NodeId[] {
    const self = this.host.self;
    const ok = (x: NodeId) => x !== target && x !== self && x !== avoid && this.#healthyRelay(x);
    const out = new Set<NodeId>();
    for (const c of [this.host.master(), this.host.contact()]) if (c && ok(c)) out.add(c);
    for (const r of this.host.randomMembers(2, ok)) out.add(r);
    return [...out];
  }

  /**
   * Opens a link to `id`. Signaling for it is relayed by a member that reaches both ends,
   * so first a few linked members are asked whether they reach `id` (one round trip,
   * cheap next to establishing a WebRTC connection), and the first that does relays.
   */
  #connectTo(id: NodeId, st: MemberState): void {
    const h = this.host;
    const candidates = this.#viaCandidates(id, st.link.stalls > 0 ? st.link.stalledVia : undefined);
    if (candidates.length === 0 || h.pending.size >= h.config.maxPending) {
      this.#connectVia(id, st, undefined);
      return;
    }
    this.connecting.add(id);
    const seq = h.nextSeq();
    const p: RouteRequest = { kind: "route", target: id, done: false, purpose: "connect" };
    h.pending.set(seq, p);
    for (const c of candidates) h.send(c, { t: Kind.ClusterRouteQuery, seq, target: id } satisfies RouteQuery);
    h.after(h.config.probeTimeoutMs * 2, () => {
      h.pending.delete(seq);
      if (p.done) return;
      p.done = true;
      // Nobody reaches it yet (its own links may still be forming): retry shortly, and
      // after that go through the signaling server.
      this.connecting.delete(id);
      if (st.link.attempts >= 1 || st.link.stalls > 0) return this.#connectVia(id, st, undefined);
      st.link.attempts++;
      const waitMs = h.config.probeIntervalMs * (1 + h.rng.next());
      st.link.nextAt = h.clock.now() + waitMs;
      // Then, not at the next periodic check (up to `linkCheckIntervalMs` later).
      h.after(waitMs, () => this.queueTick());
    });
  }

  #connectVia(id: NodeId, st: MemberState, via: NodeId | undefined): void {
    const h = this.host;
    if (h.t.isLinked(id) || h.list.states.get(id) !== st) {
      this.connecting.delete(id);
      return;
    }
    this.connecting.add(id);
    const attempt = { via: via ?? null, at: h.clock.now() };
    this.#paths.set(id, attempt);
    this.#retryNow.delete(id);
    h.log.debug("cluster.link.connect", { peer: id, via: via ?? "server" });
    this.#watchStall(id, st, attempt);
    h.t.connect(id, { via, timeoutMs: h.config.connectTimeoutMs }).then(
      () => {
        this.connecting.delete(id);
        this.#paths.delete(id);
        this.#retryNow.delete(id);
        this.#closedHere.delete(id);
        st.link.attempts = 0;
        st.link.stalls = 0;
        st.link.established = true;
        this.unlinked.delete(id);
        if (h.t.routeOf(id)) h.t.setRoute(id, null);
        if (this.unlinked.size > 0) this.queueTick();
      },
      (err) => {
        this.connecting.delete(id);
        this.#paths.delete(id);
        if (h.stopped()) return;
        this.queueTick();
        if (this.#retryNow.delete(id)) {
          // Given up on purpose (its path died, or it stalled): open it again now, through another path.
          st.link.nextAt = 0;
          return;
        }
        st.link.attempts++;
        // Timed out or refused: the back-off paces the next attempt, which may be restarted again.
        st.link.stalls = 0;
        const backoff = Math.min(h.config.linkRetryMaxMs, 500 * 2 ** st.link.attempts) * (0.5 + h.rng.next());
        st.link.nextAt = h.clock.now() + backoff;
        h.log.debug("cluster.link.failed", { peer: id, via, attempts: st.link.attempts, error: String(err) });
        if (st.link.attempts >= h.config.relayAfterFailures && !h.t.routeOf(id) && h.list.states.get(id) === st) {
          this.#findRelay(id);
        }
      },
    );
  }

  /**
   * Gives up the attempt once its set-up made no progress for `linkStallMs` (doubled for
   * each restart in a row; progress as the transport reports it, else the start): an offer,
   * answer or hello lost on its way, or a set-up that stalled, would otherwise hold the link
   * for the whole connect timeout. It is made again at once, through another relay when one
   * reaches the peer (or a signaling server). After `linkStallRetries` restarts in a row an
   * attempt runs to its timeout, so that one that is only slow completes.
   */
  #watchStall(id: NodeId, st: MemberState, attempt: { via: NodeId | null; at: number }): void {
    const h = this.host;
    if (st.link.stalls >= h.config.linkStallRetries) return;
    const bound = h.config.linkStallMs * 2 ** st.link.stalls;
    const check = () => {
      if (this.#paths.get(id) !== attempt || h.t.isLinked(id) || h.stopped() || this.#retryNow.has(id)) return;
      const last = Math.max(attempt.at, h.t.connectProgress?.(id) ?? attempt.at);
      const quietMs = h.clock.now() - last;
      if (quietMs < bound) return void h.after(bound - quietMs, check);
      st.link.stalls++;
      st.link.stalledVia = attempt.via;
      this.#abort(id, Math.round(quietMs));
      // A pair whose set-ups keep going silent may never link (ICE checks that all fail): relay
      // meanwhile, as after failed attempts.
      if (st.link.attempts + st.link.stalls >= h.config.relayAfterFailures && !h.t.routeOf(id)) this.#findRelay(id);
    };
    h.after(bound, check);
  }

  /**
   * The relay of `target` is suspected: its route stays (the relay may well be alive) while
   * the other members are asked, at most once per two probe intervals, whether they reach
   * `target`; one that does replaces the relay.
   */
  #reroute(target: NodeId): void {
    const h = this.host;
    const now = h.clock.now();
    if (now - (this.#rerouted.get(target) ?? -Infinity) < h.config.probeIntervalMs * 2) return;
    if (this.#rerouted.size >= h.config.maxPending) this.#rerouted.clear();
    this.#rerouted.set(target, now);
    this.#findRelay(target);
  }

  /** Asks a few linked members whether they reach `target`; the first that does becomes the relay. */
  #findRelay(target: NodeId): void {
    const h = this.host;
    if (h.pending.size >= h.config.maxPending) return;
    const seq = h.nextSeq();
    h.pending.set(seq, { kind: "route", target, done: false, purpose: "relay" });
    for (const x of h.randomMembers(3, (x) => x !== target && h.t.isLinked(x) && !this.#suspected(x))) {
      h.send(x, { t: Kind.ClusterRouteQuery, seq, target } satisfies RouteQuery);
    }
    h.after(h.config.probeIntervalMs * 2, () => h.pending.delete(seq));
  }

  /** Another member asks whether this node reaches `q.target` directly. */
  onRouteQuery(from: NodeId, q: RouteQuery): void {
    this.host.send(
      from,
      {
        t: Kind.ClusterRouteAnswer,
        seq: q.seq,
        target: q.target,
        ok: this.host.t.isLinked(q.target),
      } satisfies RouteAnswer,
    );
  }

  onRouteAnswer(from: NodeId, m: RouteAnswer): void {
    const h = this.host;
    const p = h.pending.get(m.seq);
    if (p?.kind !== "route" || !("purpose" in p) || p.done || !m.ok || p.target !== m.target) return;
    p.done = true;
    if (p.purpose === "connect") {
      const st = h.list.states.get(m.target);
      if (st) this.#connectVia(m.target, st, from);
      else this.connecting.delete(m.target);
      return;
    }
    if (h.t.isLinked(m.target) || h.t.routeOf(m.target) === from) return;
    h.t.setRoute(m.target, from);
    h.stats.relayRoutes++;
    h.log.info("cluster.relay.route", { peer: m.target, via: from });
    h.send(m.target, { t: Kind.ClusterRouteHint, via: from } satisfies RouteHint);
  }

  /** A member relays to this node: use the same relay back while there is no direct link. */
  onRouteHint(from: NodeId, h: RouteHint): void {
    const t = this.host.t;
    if (!t.isLinked(from) && t.isLinked(h.via) && h.via !== from) t.setRoute(from, h.via);
  }
}
