/**
 * One Shoal member wired together from {@link NodeOptions}: HTTP server (with the embedded
 * signaling endpoint when the node bootstraps a cluster), signaling client, WebRTC
 * transport, membership, partitions and maps, jobs. Protocol code gets the real clock and
 * system entropy here; the simulator wires the same classes with virtual ones.
 */
import { backupCountProblem, parseMapsConfig } from "./map/map_config.ts";
import { Hono } from "hono";
import { joinSettings } from "./cluster/join_settings.ts";
import { mapConfigJoinSetting } from "./map/map_config.ts";
import { Membership } from "./cluster/membership.ts";
import { quorumMetricFamilies, type QuorumState } from "./cluster/quorum.ts";
import { Defaults, type NodeOptions, nodeOptionsProblem } from "./config.ts";
import { realClock } from "./core/clock.ts";
import { ShoalError } from "./core/errors.ts";
import { createLogger, type Logger } from "./core/log.ts";
import { systemRandom } from "./core/random.ts";
import { createHttpApp } from "./http/app.ts";
import { isLoopbackHost, parseListenAddress, plainHttpWarning } from "./http/listen_address.ts";
import { JobService } from "./jobs/job_service.ts";
import { mountJobRoutes } from "./jobs/job_routes.ts";
import { jobMetricFamilies } from "./jobs/job_metrics.ts";
import { JobMaps } from "./jobs/map_names.ts";
import { ProcessorRegistry } from "./map/entry_processor.ts";
import { DataGrid } from "./map/data_grid.ts";
import type { IMap } from "./map/imap.ts";
import type { IQueue, QueueOptions } from "./map/queue.ts";
import type { ITopic } from "./map/topic.ts";
import { LATENCY_BUCKETS_MS } from "./map/map_stats.ts";
import type {
  LinkInfo,
  MapSize,
  MapSizeSweepOptions,
  NodeMetrics,
  OperationStats,
  PartitionReplicaInfo,
  PartitionSummary,
  ShoalNode,
} from "./node_api.ts";
import { runtimeName } from "./runtime/process.ts";
import { readPemFile, serve, type Served, type TlsFiles } from "./runtime/serve.ts";
import { wsUpgrader } from "./runtime/websocket.ts";
import { SignalingClient, signalUrl } from "./signaling/client.ts";
import { SIGNAL_PATH_TICK_MS, SignalPaths } from "./cluster/signal_paths.ts";
import { type ClientSocket, localSocket } from "./signaling/local_socket.ts";
import { mountSignaling, type SignalingHub } from "./signaling/server.ts";
import { MAX_SOCKET_MESSAGE_BYTES } from "./signaling/socket_protocol.ts";
import { MessageRouter } from "./transport/router.ts";
import type { NodeId, TransportStats } from "./transport/transport.ts";
import { createDtlsIdentity, type DtlsIdentity, WebRtcTransport } from "./transport/webrtc.ts";
import { PROTOCOL_VERSION } from "./wire/codec.ts";
import type { MergePolicySetting } from "./map/merge_policy.ts";

function newMemberId(): NodeId {
  const b = crypto.getRandomValues(new Uint8Array(8));
  return Array.from(b, (x) => x.toString(16).padStart(2, "0")).join("");
}

/** A merge policy as the join settings compare it: its name (a custom policy's own name). */
function mergePolicyName(p: MergePolicySetting): string {
  return typeof p === "string" ? p : `custom:${p.name}`;
}

/** The job engine's maps (see the JobService options below). */
const JOB_MAPS = new Set<string>(Object.values(JobMaps));

/** A running member. Create with {@link startNode}. */
export class Node implements ShoalNode {
  readonly id: NodeId;
  readonly name: string;
  readonly clusterName: string;
  readonly log: Logger;
  readonly transport: WebRtcTransport;
  readonly router: MessageRouter;
  readonly membership: Membership;
  readonly grid: DataGrid;
  readonly jobs: JobService;
  #served: Served | undefined;
  /** Signaling clients: the join URL's server (first, if any) and this node's own endpoint. */
  #signaling: SignalingClient[] = [];
  /** Signaling connections to other members' own endpoints (no member stranded when its seed dies). */
  readonly #paths: SignalPaths<SignalingClient>;
  #signalPathTimer: ReturnType<typeof setInterval> | undefined;
  #hub: SignalingHub | undefined;
  /** The `tlsCa` file's text, trusted by the signaling clients. */
  #ca: string | undefined;
  #abort = new AbortController();
  #masterChanges = 0;
  #stopping: Promise<void> | undefined;

  /** @internal use startNode() */
  constructor(
    readonly options: Required<Pick<NodeOptions, "cluster" | "secret">> & NodeOptions,
    id: NodeId,
    log: Logger,
    dtls?: DtlsIdentity,
  ) {
    this.id = id;
    this.name = options.name ?? `node-${id.slice(0, 6)}`;
    this.clusterName = options.cluster;
    this.log = log;
    this.transport = new WebRtcTransport({
      self: id,
      cluster: options.cluster,
      secret: options.secret,
      previousSecret: options.previousSecret,
      iceServers: options.iceServers ?? [],
      iceAdditionalHostAddresses: options.iceAdditionalHostAddresses,
      // One certificate for all links: its fingerprint is part of this member's identity.
      dtls,
      log: log.child({ layer: "transport" }),
      signaling: {
        // Through `to`'s own endpoint when this node holds a connection to it, else back the
        // way `to`'s last signal came, else the server where `to` is registered: the join
        // URL's, our own endpoint, another member's (SignalPaths.route). A connection whose
        // server died keeps its last peer list: it is skipped.
        send: (to, payload) => {
          const c = this.#paths.route(to);
          if (!c) return false;
          this.log.debug("signaling.route", { peer: to, url: c.url, connected: c.connected });
          this.#paths.sent(to, c);
          return c.send(to, payload);
        },
        onSignal: (h) => (this.#onServerSignal = h),
      },
    });
    this.router = new MessageRouter(this.transport);
    this.router.onHandlerError = (kind, err) =>
      log.error("node.handler.failed", { kind, error: String((err as Error)?.stack ?? err) });
    this.membership = new Membership({
      self: id,
      transport: this.transport,
      router: this.router,
      clock: realClock,
      rng: systemRandom(),
      log: log.child({ layer: "cluster" }),
      config: {
        cluster: options.cluster,
        secret: options.secret,
        previousSecret: options.previousSecret,
        name: this.name,
        runtime: runtimeName(),
        lite: options.lite ?? false,
        settings: joinSettings({
          protocolVersion: PROTOCOL_VERSION,
          partitionCount: options.partitionCount ?? Defaults.partitionCount,
          backupCount: options.backupCount ?? Defaults.backupCount,
          asyncBackupCount: options.asyncBackupCount ?? Defaults.asyncBackupCount,
          mergePolicy: mergePolicyName(options.mergePolicy ?? Defaults.mergePolicy),
        }, [
          {
            field: { key: "mcs", label: "minimum cluster size", flag: "--min-cluster-size" },
            value: options.minClusterSize ?? Defaults.minClusterSize,
          },
          new ProcessorRegistry(options.processors).joinSetting(),
          mapConfigJoinSetting(options.maps ?? {}),
        ]),
      },
    });
    const serverOf = (conn: SignalingClient) =>
      this.membership.members().find((m) => m.urls?.some((u) => signalUrl(u) === conn.url))?.id;
    this.#paths = new SignalPaths<SignalingClient>({
      self: id,
      log,
      members: () => this.membership.members(),
      isLinked: (peer) => this.transport.isLinked(peer),
      fixed: () => this.#signaling,
      // The endpoint every member serves at its HTTP address dies (or freezes) with it.
      suspectServer: (conn) => {
        const peer = serverOf(conn);
        return peer !== undefined && this.membership.memberState(peer)?.status === "suspect";
      },
      open: (url) => this.#openSignaling(url, 5_000),
      retryLink: (peer, serverLost) => this.membership.retryLink(peer, serverLost),
      serverOf,
      endpointClosed: (peer) => this.membership.endpointClosed(peer),
      now: () => Date.now(),
    });
    this.grid = new DataGrid({
      self: id,
      view: this.membership,
      transport: this.transport,
      router: this.router,
      clock: realClock,
      rng: systemRandom(),
      log: log.child({ layer: "map" }),
      processors: options.processors,
      config: {
        partitionCount: options.partitionCount ?? Defaults.partitionCount,
        backupCount: options.backupCount ?? Defaults.backupCount,
        asyncBackupCount: options.asyncBackupCount ?? Defaults.asyncBackupCount,
        lite: options.lite ?? false,
        mergePolicy: options.mergePolicy ?? Defaults.mergePolicy,
        maps: options.maps ?? {},
        minClusterSize: options.minClusterSize ?? Defaults.minClusterSize,
        // Shorter than the time the others need to declare this member dead (lease.ts).
        leaseMs: Math.min(1000, this.membership.config.suspectUnansweredMs / 2),
      },
    });
    this.jobs = new JobService({
      self: id,
      view: this.membership,
      // The job engine's own maps are its bookkeeping (on timers, and on every scrape of /metrics),
      // not operations anybody called on this member; the maps its connectors read and write count.
      getMap: (name) => JOB_MAPS.has(name) ? this.grid.quietMap(name) : this.grid.getMap(name),
      router: this.router,
      transport: this.transport,
      clock: realClock,
      rng: systemRandom(),
      log: log.child({ layer: "jobs" }),
      slots: options.slots ?? Defaults.slots,
      historyMs: (options.jobHistoryMinutes ?? Defaults.jobHistoryMinutes) * 60_000,
      lite: options.lite ?? false,
      gate: () => this.grid.quorum.check(),
    });
    this.membership.subscribe((e) => {
      if (e.type === "masterChanged") {
        this.#masterChanges++;
        log.info("node.master.changed", { master: e.master, previous: e.previous, epoch: e.epoch });
      } else if (e.type === "memberAdded") log.info("node.member.added", { id: e.member.id, name: e.member.name });
      else if (e.type === "memberRemoved") {
        this.#paths.memberRemoved(e.member, e.reason);
        log.info("node.member.removed", { id: e.member.id, name: e.member.name, reason: e.reason });
      }
    });
  }

  #onServerSignal: (from: NodeId, payload: unknown) => void = () => {};

  get cluster(): Membership {
    return this.membership;
  }

  get httpUrl(): string | undefined {
    return this.#served?.url;
  }

  /** @internal */
  async start(): Promise<void> {
    const o = this.options;
    const joinUrls = o.join ?? [];
    if ((o.tlsCert === undefined) !== (o.tlsKey === undefined)) {
      throw new ShoalError("INVALID_ARGUMENT", "TLS needs both a certificate (--tls-cert) and its key (--tls-key)");
    }
    const tls: TlsFiles | undefined = o.tlsCert !== undefined && o.tlsKey !== undefined
      ? { cert: await readPemFile(o.tlsCert, "--tls-cert"), key: await readPemFile(o.tlsKey, "--tls-key") }
      : undefined;
    if (o.tlsCa !== undefined) this.#ca = await readPemFile(o.tlsCa, "--tls-ca");
    if (o.http !== false) {
      const addr = parseListenAddress(o.http ?? Defaults.http);
      if ("error" in addr) throw new ShoalError("INVALID_ARGUMENT", addr.error);
      const warning = plainHttpWarning(o.http ?? Defaults.http, addr.host, tls !== undefined);
      if (warning) this.log.warn("http.tls.missing", { risk: warning });
      const { upgradeWebSocket, websocket } = wsUpgrader({ maxMessageBytes: MAX_SOCKET_MESSAGE_BYTES });
      const app = createHttpApp(this, {
        token: o.token,
        readToken: o.readToken,
        openMetrics: o.openMetrics,
        signal: this.#abort.signal,
        logger: this.log.child({ layer: "http" }),
        loopbackOnly: isLoopbackHost(addr.host),
        allowedHosts: o.httpAllowedHosts,
        extraRoutes: (a: Hono) => {
          // Every member can bootstrap others: the signaling endpoint is always served.
          this.#hub = mountSignaling(a, upgradeWebSocket);
          mountJobRoutes(a, this.jobs);
        },
        // The job families are read from the job maps: left out while split-brain protection
        // refuses data operations here, so /metrics still answers on such a member.
        extraMetrics: async () => [
          ...quorumMetricFamilies(this.grid.quorum),
          // deno-lint-ignore no-explicit-any
          ...(this.grid.quorum.refusal() ? [] : await jobMetricFamilies(this.jobs)) as any[],
        ],
      });
      this.#served = await serve({ hostname: addr.host, port: addr.port, fetch: app.fetch, websocket, tls });
    }
    // First the join URL (any member's HTTP address or a standalone signaling server).
    let lastErr: unknown;
    for (const url of joinUrls) {
      const client = await this.#openSignaling(url, 10_000).catch((err) => {
        lastErr = err;
        return undefined;
      });
      if (client) {
        this.#signaling.push(client);
        break;
      }
    }
    if (joinUrls.length > 0 && this.#signaling.length === 0) {
      throw lastErr instanceof ShoalError
        ? lastErr
        : new ShoalError("UNREACHABLE", `Cannot reach any join URL (${joinUrls.join(", ")})`);
    }
    const seeds = this.#signaling[0]?.peers() ?? [];
    // Then our own endpoint, so nodes that join through our address can reach us.
    // In process (local_socket.ts): no network, so no certificate to verify for our bind address.
    const hub = this.#hub;
    if (this.#served && hub) {
      this.#signaling.push(await this.#openSignaling(this.#served.url, 5_000, () => localSocket(hub)));
    }
    if (this.#served) this.membership.setUrls([this.#served.url]);
    this.#signalPathTimer = setInterval(() => this.#paths.tick(), SIGNAL_PATH_TICK_MS);
    for (const c of this.#signaling) c.onPeers((peers) => this.membership.addCandidates(peers));
    await this.membership.start(seeds);
    this.jobs.start();
    this.log.info("node.cluster.joined", {
      master: this.membership.master(),
      members: this.membership.members().length,
    });
  }

  async #openSignaling(url: string, timeoutMs: number, socket?: () => ClientSocket): Promise<SignalingClient> {
    const client = new SignalingClient({
      url,
      cluster: this.options.cluster,
      self: this.id,
      ca: this.#ca,
      socket,
      log: this.log.child({ layer: "signaling" }),
    });
    client.onSignal((from, payload) => {
      this.#paths.arrived(from, client);
      this.#onServerSignal(from, payload);
    });
    try {
      await client.start(timeoutMs);
      return client;
    } catch (err) {
      client.close();
      throw err;
    }
  }

  getMap<K = unknown, V = unknown>(name: string): IMap<K, V> {
    return this.grid.getMap<K, V>(name);
  }

  getQueue<T = unknown>(name: string, options?: QueueOptions): IQueue<T> {
    return this.grid.getQueue<T>(name, options);
  }

  getTopic<T = unknown>(name: string): ITopic<T> {
    return this.grid.getTopic<T>(name);
  }

  getReliableTopic<T = unknown>(name: string, options?: { capacity?: number }): ITopic<T> {
    return this.grid.getReliableTopic<T>(name, options);
  }

  mapNames(): string[] {
    return this.grid.localMaps().map((m) => m.name);
  }

  mapSizes(opts?: MapSizeSweepOptions): Promise<MapSize[]> {
    return this.grid.mapSizes(opts);
  }

  quorum(): QuorumState {
    return this.grid.quorum.state();
  }

  partitionSummary(): PartitionSummary {
    return this.grid.partitionSummary();
  }

  partitionTable(): PartitionReplicaInfo[] {
    return this.grid.partitionTable();
  }

  links(): LinkInfo[] {
    return this.membership.links();
  }

  clockOffsets(): Record<NodeId, { offsetMs: number; rttMs: number }> {
    return this.transport.clockOffsets();
  }

  transportStats(): TransportStats {
    return this.transport.stats();
  }

  metrics(): NodeMetrics {
    const operations: OperationStats[] = [];
    for (const m of this.grid.mapStats()) {
      for (const [op, st] of Object.entries(m.ops)) {
        operations.push({
          map: m.map,
          op,
          count: st.count,
          errors: st.errors,
          latency: { boundsMs: [...LATENCY_BUCKETS_MS], counts: st.counts, sumMs: st.sumMs, count: st.count },
        });
      }
    }
    return {
      masterChanges: this.#masterChanges,
      operations,
      maps: this.grid.localMapEntries(),
      // Expiries, evictions and touches are writes the primaries originate and replicate.
      // Migration commits a master held while its quorum had lapsed (split-brain protection).
      replication: {
        ...this.grid.maps.counters,
        ...this.grid.maps.housekeeping.counters,
        commitsDeferred: this.grid.partitions.stats.commitsDeferred,
      },
      rejected: {
        ...this.membership.stats.rejected,
        table_not_from_master: this.grid.partitions.stats.pushesIgnored,
        table_implausible: this.grid.partitions.stats.reportsRejected,
      },
    };
  }

  /**
   * Graceful leave: partitions migrate away, `left` is announced, links and servers close. A
   * second call (a signal handler and `await using`, say) waits for the first to finish: it
   * returned at once, before the data had moved off.
   */
  shutdown(): Promise<void> {
    return this.#stopping ??= this.#shutdown();
  }

  async #shutdown(): Promise<void> {
    // Tasks stop first; the coordinator reschedules them elsewhere once we have left.
    this.jobs.stop();
    try {
      if (this.membership.joined && this.membership.members().length > 1) {
        await this.grid.migrateAway().catch((err) =>
          this.log.warn("node.shutdown.migration_incomplete", { error: String(err) })
        );
      }
      await this.membership.leave();
    } finally {
      this.grid.stop();
      this.#abort.abort();
      for (const c of this.#signaling) c.close();
      clearInterval(this.#signalPathTimer);
      this.#paths.stop();
      await this.transport.close();
      this.#hub?.closeAll();
      await this.#served?.close();
    }
  }

  [Symbol.asyncDispose](): Promise<void> {
    return this.shutdown();
  }
}

/**
 * Starts a member: joins the cluster behind `options.join`, or bootstraps a new one-member
 * cluster (serving the signaling endpoint itself) when no join URL is given.
 *
 * @param options node configuration; see {@link NodeOptions}
 * @returns the running member once it has joined
 * @throws ShoalError AUTH_FAILED (wrong secret), REFUSED (wrong cluster), UNREACHABLE (join URL), INVALID_ARGUMENT
 * @example
 * ```ts
 * const node = await startNode({ secret: "s3cret", http: "127.0.0.1:0" });
 * console.log(node.httpUrl, node.cluster.master());
 * await node.shutdown();
 * ```
 */
export async function startNode(options: NodeOptions = {}): Promise<Node> {
  const id = newMemberId();
  const cluster = options.cluster ?? Defaults.cluster;
  const secret = options.secret;
  if (!secret) throw new ShoalError("INVALID_ARGUMENT", "Cannot start a node without a cluster secret");
  const problem = nodeOptionsProblem(options);
  if (problem) throw new ShoalError("INVALID_ARGUMENT", `Cannot start a node: ${problem}`);
  const maps = parseMapsConfig(options.maps ?? {}, "maps");
  if ("error" in maps) throw new ShoalError("INVALID_ARGUMENT", maps.error);
  const backups = backupCountProblem(maps.maps, {
    backupCount: options.backupCount ?? Defaults.backupCount,
    asyncBackupCount: options.asyncBackupCount ?? Defaults.asyncBackupCount,
  });
  if (backups) throw new ShoalError("INVALID_ARGUMENT", `Cannot start a node: ${backups}`);
  const log = createLogger(options.logLevel ?? Defaults.logLevel, { member: id, name: options.name });
  const node = new Node({ ...options, cluster, secret }, id, log, await createDtlsIdentity());
  try {
    await node.start();
  } catch (err) {
    await node.shutdown().catch(() => {});
    throw err;
  }
  return node;
}
