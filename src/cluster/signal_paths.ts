/**
 * No member stranded when its seed dies: a member keeps a signaling path to every member it
 * has no link to. The member list carries each member's signaling URL (every member serves
 * `/signal`); for a member that is neither linked nor registered at any signaling server
 * this node is connected to (its seed's server may have died with the seed), this opens a
 * connection to the member's own endpoint and asks membership to link at once (which also
 * gives up an attempt whose signaling path died). Such a connection closes once the member
 * has been linked directly for {@link LINKED_CLOSE_MS}, or has gone. A member's endpoint
 * that closes is reported to membership, which probes the member at once. Members removed as dead
 * stay targets for a minute, so a split-brain check can still reach one that was only cut
 * off.
 *
 * The shell drives it (`tick` every {@link SIGNAL_PATH_TICK_MS}); what a connection is stays
 * the shell's: a WebSocket signaling client in a node (src/node.ts), a registration at a
 * simulated endpoint in the simulator (src/sim/sim_signaling.ts).
 */
import type { Logger } from "../core/log.ts";
import type { NodeId } from "../transport/transport.ts";
import type { MemberInfo } from "./view.ts";
import { setNewest } from "../core/bounded.ts";

/** How often the shell calls {@link SignalPaths.tick}. */
export const SIGNAL_PATH_TICK_MS = 250;
/** A member removed as dead stays a signaling target this long (split-brain checks may reach it). */
const LOST_PATH_MS = 60_000;
/** Connections to members' own endpoints at most. */
const MAX_MEMBER_PATHS = 16;
/** Members removed as dead remembered at most. */
const MAX_LOST = 64;
/** A failed connection to a URL is tried again after this long. */
const RETRY_FAILED_MS = 2_000;
/** A member still unlinked this long while reached through another server gets a path to its own endpoint too. */
const STALE_PATH_MS = 1_500;
/** A connection to a member linked directly (or gone) this long closes. */
const LINKED_CLOSE_MS = 5_000;
/** Members whose last signal in and out is remembered, at most. */
const MAX_ROUTES = 1024;

/** An open connection to a signaling endpoint. */
export interface EndpointConnection {
  /** Open and welcomed (a server that died leaves it closed, or its peer list stale). */
  readonly connected: boolean;
  /** The members registered at that endpoint. */
  peers(): NodeId[];
  close(): void;
}

/** What {@link SignalPaths} needs from its node. */
export interface SignalPathsHost<C extends EndpointConnection> {
  readonly self: NodeId;
  readonly log: Logger;
  /** Live members (with their signaling URLs). */
  members(): readonly MemberInfo[];
  isLinked(id: NodeId): boolean;
  /** The node's own connections: its join URL's server and its own endpoint. */
  fixed(): readonly C[];
  /**
   * Whether `conn` is the endpoint of a member this node suspects: its server is likely
   * frozen or dead with it (a frozen process's connections stay open), so it is no route.
   */
  suspectServer(conn: C): boolean;
  /** Opens a connection to the signaling endpoint at `url`; rejects when it cannot. */
  open(url: string): Promise<C>;
  /**
   * A path to `id` opened: link now (membership's `retryLink`); `serverLost` when the server
   * it was reached through before is gone.
   */
  retryLink(id: NodeId, serverLost: boolean): void;
  /** The member whose own endpoint `conn` is connected to, if any. */
  serverOf?(conn: C): NodeId | undefined;
  /**
   * The endpoint of member `id` closed (it was open at the previous tick): a killed member's
   * WebSockets close at once while its WebRTC links just go silent, so membership probes it
   * now (a hint, never a verdict).
   */
  endpointClosed?(id: NodeId): void;
  now(): number;
}

interface MemberPath<C> {
  member: NodeId;
  conn: C | null;
  /** Since when the member is linked directly (or gone): the connection closes later. */
  linkedSince: number | null;
}

export class SignalPaths<C extends EndpointConnection> {
  /** Connections to other members' own endpoints, by URL. */
  readonly #paths = new Map<string, MemberPath<C>>();
  /** Members removed as dead lately, and their signaling URL (bounded). */
  readonly #lost = new Map<NodeId, { url: string; at: number }>();
  /** When opening a connection to a URL last failed. */
  readonly #failedAt = new Map<string, number>();
  /** The connection through which each unlinked member was last found registered (null: none). */
  readonly #reachedVia = new Map<NodeId, C | null>();
  /** Unlinked members whose server died since they were last given a path. */
  readonly #serverLost = new Set<NodeId>();
  /** Since when each member has been unlinked here. */
  readonly #unlinkedSince = new Map<NodeId, number>();
  /** The connection each member's last signal arrived through (replies go back that way). */
  readonly #arrived = new Map<NodeId, C>();
  /** The connection this node's last signal to each unlinked member left through. */
  readonly #sent = new Map<NodeId, C>();
  /** Connections to members' endpoints that were open at the previous tick. */
  readonly #wasConnected = new Set<C>();
  #stopped = false;
  /** Connections opened so far (for tests and reports). */
  opened = 0;

  constructor(readonly host: SignalPathsHost<C>) {}

  /** A member left the list: one removed as dead stays a target for a while. */
  memberRemoved(member: MemberInfo, reason: string): void {
    if (reason !== "dead" || !member.urls?.length) return;
    setNewest(this.#lost, member.id, { url: member.urls[0], at: this.host.now() }, MAX_LOST);
  }

  /** The open connection to `to`'s own endpoint, if any (preferred: it dies only with `to`). */
  endpointOf(to: NodeId): C | undefined {
    for (const p of this.#paths.values()) {
      if (p.member === to && p.conn?.connected && p.conn.peers().includes(to)) return p.conn;
    }
    return undefined;
  }

  /** The connection to the member endpoint at `url`, if open. */
  connectionAt(url: string): C | undefined {
    return this.#paths.get(url)?.conn ?? undefined;
  }

  /** An open connection to a member's endpoint where `to` is registered (not one of a member suspected here). */
  connectionTo(to: NodeId): C | undefined {
    for (const p of this.#paths.values()) if (p.conn && this.#serves(p.conn, to)) return p.conn;
    return undefined;
  }

  /**
   * The connection to signal `to` through: `to`'s own endpoint (it dies only with `to`), else
   * the one `to`'s last signal arrived through (a reply goes back the way its request just
   * came: a server of this node's that also lists `to` may be one that froze), else a
   * server of this node's own where `to` is registered (the join URL's first), else any
   * other path where it is, else the join URL's server (which queues while disconnected).
   * @param arrivedVia where `to`'s last signal arrived (default: as recorded by {@link arrived})
   */
  route(to: NodeId, arrivedVia: C | null = this.#arrived.get(to) ?? null): C | undefined {
    const fixed = this.host.fixed();
    const back = arrivedVia && this.#serves(arrivedVia, to) ? arrivedVia : undefined;
    return this.endpointOf(to) ?? back ?? fixed.find((c) => this.#serves(c, to)) ?? this.connectionTo(to) ?? fixed[0];
  }

  /** Whether `conn` is open, lists `to`, and is not the endpoint of a member suspected here. */
  #serves(conn: C, to: NodeId): boolean {
    return conn.connected && conn.peers().includes(to) && !this.host.suspectServer(conn);
  }

  /** A signal from `from` arrived through `conn`. */
  arrived(from: NodeId, conn: C): void {
    remember(this.#arrived, from, conn);
  }

  /**
   * A signal to `to` left through `conn`. Should `conn` close before `to` is linked, or a
   * path to `to`'s own endpoint open, the link attempt it carried is given up and made again
   * through a live path (an offer or hello sent into a server that froze and then died is
   * lost, and would otherwise wait out its connect timeout).
   */
  sent(to: NodeId, conn: C): void {
    remember(this.#sent, to, conn);
  }

  /** Opens the paths that are missing and closes those no longer needed. */
  tick(): void {
    const h = this.host;
    if (this.#stopped) return;
    this.#watchClosed();
    const now = h.now();
    const targets = new Map<NodeId, string>();
    for (const [id, l] of this.#lost) {
      if (now - l.at > LOST_PATH_MS) this.#lost.delete(id);
      else targets.set(id, l.url);
    }
    for (const m of h.members()) if (m.urls?.length) targets.set(m.id, m.urls[0]);
    targets.delete(h.self);
    for (const id of this.#reachedVia.keys()) {
      if (!targets.has(id) || h.isLinked(id)) {
        this.#reachedVia.delete(id);
        this.#unlinkedSince.delete(id);
        this.#serverLost.delete(id);
      }
    }
    for (const [id, conn] of this.#sent) {
      if (!targets.has(id) || h.isLinked(id)) this.#sent.delete(id);
      else if ((!conn.connected || h.suspectServer(conn)) && this.route(id)?.connected) {
        // The attempt's signaling went through a server that is gone: make it again now
        // through a live one (with none yet, a path that opens retries it).
        this.#sent.delete(id);
        h.retryLink(id, true);
      }
    }
    for (const [id, url] of targets) {
      if (h.isLinked(id)) continue;
      const since = this.#unlinkedSince.get(id) ?? now;
      this.#unlinkedSince.set(id, since);
      const via = h.fixed().find((c) => this.#serves(c, id)) ?? this.connectionTo(id) ?? null;
      const before = this.#reachedVia.get(id);
      this.#reachedVia.set(id, via);
      const beforeLost = !!before && (!before.connected || h.suspectServer(before));
      if (before && before !== via && beforeLost) this.#serverLost.add(id);
      // A path appeared where there was none, or the server the member was reached through
      // died and the member is registered elsewhere (at this node's own endpoint, say): link
      // through it now. Two open servers that both list it trade places freely: an attempt
      // under way through one of them is left alone.
      if (via && before !== undefined && before !== via && (before === null || beforeLost)) {
        h.retryLink(id, this.#serverLost.delete(id));
      }
      // A member reached through another server but still unlinked after a while: open its
      // own endpoint too (it dies only with the member), and signal through that.
      if ((via && now - since < STALE_PATH_MS) || this.#paths.has(url) || this.#paths.size >= MAX_MEMBER_PATHS) {
        continue;
      }
      if (now - (this.#failedAt.get(url) ?? -Infinity) < RETRY_FAILED_MS) continue;
      this.#open(id, url);
    }
    for (const [url, p] of this.#paths) {
      if (!p.conn) continue;
      const done = !targets.has(p.member) || h.isLinked(p.member);
      if (!done) p.linkedSince = null;
      else if (p.linkedSince === null) p.linkedSince = now;
      else if (now - p.linkedSince > LINKED_CLOSE_MS) {
        p.conn.close();
        this.#paths.delete(url);
      }
    }
  }

  /** Tells the host about each member's endpoint that closed since the previous tick. */
  #watchClosed(): void {
    const h = this.host;
    const conns = [...h.fixed()];
    for (const p of this.#paths.values()) if (p.conn) conns.push(p.conn);
    for (const c of this.#wasConnected) if (!conns.includes(c)) this.#wasConnected.delete(c);
    for (const c of conns) {
      if (c.connected) this.#wasConnected.add(c);
      else if (this.#wasConnected.delete(c)) {
        const id = h.serverOf?.(c);
        if (id !== undefined && id !== h.self) h.endpointClosed?.(id);
      }
    }
  }

  #open(id: NodeId, url: string): void {
    const h = this.host;
    const entry: MemberPath<C> = { member: id, conn: null, linkedSince: null };
    this.#paths.set(url, entry);
    this.opened++;
    h.log.info("signaling.member_path", { peer: id, url });
    h.open(url).then(
      (conn) => {
        if (this.#stopped || this.#paths.get(url) !== entry) return conn.close();
        entry.conn = conn;
        if (conn.peers().includes(id)) this.#reachedVia.set(id, conn);
        // An attempt under way whose signaling left through another server (one that froze,
        // say) is made again through this path.
        const sentVia = this.#sent.get(id);
        const elsewhere = sentVia !== undefined && sentVia !== conn;
        h.retryLink(id, this.#serverLost.delete(id) || elsewhere);
      },
      () => {
        if (this.#paths.get(url) === entry) this.#paths.delete(url);
        if (this.#failedAt.size >= MAX_MEMBER_PATHS * 4) this.#failedAt.clear();
        this.#failedAt.set(url, h.now());
      },
    );
  }

  /** Closes every connection; nothing opens afterwards. */
  stop(): void {
    this.#stopped = true;
    for (const p of this.#paths.values()) p.conn?.close();
    this.#paths.clear();
    this.#wasConnected.clear();
    this.#arrived.clear();
    this.#sent.clear();
  }
}

/** Sets `map[key] = value`, the oldest entry dropped beyond {@link MAX_ROUTES}. */
function remember<V>(map: Map<NodeId, V>, key: NodeId, value: V): void {
  setNewest(map, key, value, MAX_ROUTES);
}
