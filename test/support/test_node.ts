/**
 * An in-process stand-in for a running member, used only to exercise the HTTP layer and
 * the CLI's run loop (which are the things under test there). It keeps maps in plain JS
 * Maps, a member list the test edits, and a round-robin partition table.
 *
 * To run the same HTTP tests against a real member, replace `createTestNode()` with
 * `startNode({ http: false, … })` and drive state changes through real members instead
 * of `addMember`/`removeMember`.
 */
import type { MemberInfo } from "../../src/cluster/view.ts";
import { ShoalError, type ShoalErrorCode } from "../../src/core/errors.ts";
import { builtinProcessors } from "../../src/map/entry_processor.ts";
import type { IMap } from "../../src/map/imap.ts";
import type { IQueue, QueueOptions } from "../../src/map/queue.ts";
import type { ITopic, SubscribeOptions } from "../../src/map/topic.ts";
import type {
  LinkInfo,
  MapSize,
  NodeMetrics,
  OperationStats,
  PartitionReplicaInfo,
  PartitionSummary,
  ShoalNode,
} from "../../src/node_api.ts";
import { emptyStats, type NodeId, type TransportStats } from "../../src/transport/transport.ts";
import { TestClusterView } from "./test_cluster_view.ts";

const latencyBoundsMs = [0.5, 1, 5, 25, 100, 1000];

class TestMap implements IMap<unknown, unknown> {
  data = new Map<string, [unknown, unknown]>();
  constructor(readonly name: string, private owner: TestNode) {}
  #k(key: unknown): string {
    return JSON.stringify(key);
  }
  async #op<T>(op: string, fn: () => T): Promise<T> {
    const stats = this.owner.opStats(this.name, op);
    stats.count++;
    const fail = this.owner.failNext;
    if (fail) {
      this.owner.failNext = undefined;
      stats.errors++;
      throw new ShoalError(fail, `Cannot ${op} on map "${this.name}": injected ${fail}`);
    }
    await Promise.resolve();
    const r = fn();
    stats.latency.counts[0]++;
    stats.latency.count++;
    stats.latency.sumMs += 0.1;
    return r;
  }
  get(key: unknown) {
    return this.#op("get", () => this.data.get(this.#k(key))?.[1]);
  }
  // Entry listeners are not modelled here: the SSE route is tested against a real member (map_events_http_test.ts).
  addEntryListener(): Promise<string> {
    return Promise.reject(new ShoalError("INVALID_ARGUMENT", "The test node has no entry listeners"));
  }
  removeEntryListener(): boolean {
    return false;
  }
  events(): AsyncIterableIterator<never> {
    throw new ShoalError("INVALID_ARGUMENT", "The test node has no entry listeners");
  }
  openEvents(): Promise<never> {
    return Promise.reject(new ShoalError("INVALID_ARGUMENT", "The test node has no entry listeners"));
  }
  set(key: unknown, value: unknown) {
    return this.#op("set", () => void this.data.set(this.#k(key), [key, value]));
  }
  put(key: unknown, value: unknown) {
    return this.#op("put", () => {
      const prev = this.data.get(this.#k(key))?.[1];
      this.data.set(this.#k(key), [key, value]);
      return prev;
    });
  }
  putIfAbsent(key: unknown, value: unknown) {
    return this.#op("putIfAbsent", () => {
      const prev = this.data.get(this.#k(key))?.[1];
      if (prev === undefined) this.data.set(this.#k(key), [key, value]);
      return prev;
    });
  }
  replace(key: unknown, value: unknown): Promise<unknown>;
  replace(key: unknown, expected: unknown, value: unknown): Promise<boolean>;
  replace(key: unknown, a: unknown, b?: unknown): Promise<unknown> {
    return this.#op("replace", () => {
      const cur = this.data.get(this.#k(key));
      if (arguments.length === 3) {
        if (!cur || JSON.stringify(cur[1]) !== JSON.stringify(a)) return false;
        this.data.set(this.#k(key), [key, b]);
        return true;
      }
      if (cur) this.data.set(this.#k(key), [key, a]);
      return cur?.[1];
    });
  }
  remove(key: unknown): Promise<unknown>;
  remove(key: unknown, expected: unknown): Promise<boolean>;
  remove(key: unknown, expected?: unknown): Promise<unknown> {
    const conditional = arguments.length === 2;
    return this.#op("remove", () => {
      const cur = this.data.get(this.#k(key));
      if (conditional) {
        if (!cur || JSON.stringify(cur[1]) !== JSON.stringify(expected)) return false;
        this.data.delete(this.#k(key));
        return true;
      }
      this.data.delete(this.#k(key));
      return cur?.[1];
    });
  }
  delete(key: unknown) {
    return this.#op("delete", () => void this.data.delete(this.#k(key)));
  }
  containsKey(key: unknown) {
    return this.#op("containsKey", () => this.data.has(this.#k(key)));
  }
  getAll(keys: Iterable<unknown>) {
    return this.#op("getAll", () => {
      const out = new Map<unknown, unknown>();
      for (const k of keys) {
        const e = this.data.get(this.#k(k));
        if (e) out.set(k, e[1]);
      }
      return out;
    });
  }
  putAll(entries: Iterable<[unknown, unknown]>) {
    return this.#op("putAll", () => {
      for (const [k, v] of entries) this.data.set(this.#k(k), [k, v]);
    });
  }
  size() {
    return this.#op("size", () => this.data.size);
  }
  clear() {
    return this.#op("clear", () => this.data.clear());
  }
  async *keys() {
    for (const [k] of [...this.data.values()]) yield k;
  }
  async *values() {
    for (const [, v] of [...this.data.values()]) yield v;
  }
  async *entries(): AsyncIterableIterator<[unknown, unknown]> {
    for (const e of [...this.data.values()]) yield e;
  }
  destroy() {
    return this.#op("destroy", () => void this.owner.maps.delete(this.name));
  }
  /** Runs the member's real built-in processors on the local entry (errors as the grid reports them). */
  executeOnKeyWithValue<R>(key: unknown, processor: string, arg?: unknown) {
    return this.#op("executeOnKey", () => {
      const fn = builtinProcessors[processor];
      if (!fn) throw new ShoalError("NOT_FOUND", `No processor named "${processor}" on this member`);
      const cur = this.data.get(this.#k(key));
      const entry = { key, value: cur?.[1], exists: cur !== undefined };
      let result: R;
      try {
        result = fn(entry, arg) as R;
      } catch (e) {
        throw new ShoalError("PROCESSOR_FAILED", `processor "${processor}" failed: ${(e as Error).message}`);
      }
      if (entry.value === undefined) this.data.delete(this.#k(key));
      else this.data.set(this.#k(key), [key, entry.value]);
      return { result, value: entry.value };
    });
  }
  async executeOnKey<R>(key: unknown, processor: string, arg?: unknown): Promise<R> {
    return (await this.executeOnKeyWithValue<R>(key, processor, arg)).result;
  }
  async executeOnKeys<R>(keys: Iterable<unknown>, processor: string, arg?: unknown): Promise<Map<unknown, R>> {
    const out = new Map<unknown, R>();
    for (const k of keys) out.set(k, await this.executeOnKey<R>(k, processor, arg));
    return out;
  }
  /** Locks of the stand-in: one process, no waiting (the grid's are tested in map_locks_test.ts). */
  #locks = new Map<string, { tok: number; owner: string | null }>();
  tryLock(key: unknown, o: { owner?: string } = {}) {
    return this.#op("tryLock", () => {
      const l = this.#locks.get(this.#k(key)) ?? { tok: 0, owner: null };
      if (l.owner !== null && l.owner !== (o.owner ?? "")) return undefined;
      if (l.owner === null) (l.tok++, l.owner = o.owner ?? "");
      this.#locks.set(this.#k(key), l);
      return l.tok;
    });
  }
  async lock(key: unknown, o: { owner?: string } = {}): Promise<number> {
    const t = await this.tryLock(key, o);
    if (t === undefined) throw new ShoalError("TIMEOUT", "locked by another owner");
    return t;
  }
  unlock(key: unknown, o: { owner?: string } = {}) {
    return this.#op("unlock", () => {
      const l = this.#locks.get(this.#k(key));
      if (!l || l.owner !== (o.owner ?? "")) throw new ShoalError("CONFLICT", "not the owner");
      l.owner = null;
    });
  }
  isLocked(key: unknown) {
    return this.#op("isLocked", () => (this.#locks.get(this.#k(key))?.owner ?? null) !== null);
  }
  forceUnlock(key: unknown) {
    return this.#op("forceUnlock", () => {
      const l = this.#locks.get(this.#k(key));
      if (l) l.owner = null;
    });
  }
  async *executeOnEntries<R>(processor: string, arg?: unknown): AsyncIterableIterator<[unknown, R]> {
    for (const [k] of [...this.data.values()]) yield [k, await this.executeOnKey<R>(k, processor, arg)];
  }
}

export interface TestNodeOptions {
  /** Number of members including self (self is the oldest). @default 3 */
  members?: number;
  /** Whether the node starts joined. @default true */
  joined?: boolean;
  partitionCount?: number;
  backupCount?: number;
  cluster?: string;
  httpUrl?: string;
}

/** The in-process stand-in; see the file comment. */
export class TestNode implements ShoalNode {
  readonly id: NodeId;
  readonly name: string;
  readonly clusterName: string;
  httpUrl: string | undefined;
  readonly cluster: TestClusterView;
  readonly maps = new Map<string, TestMap>();
  readonly partitionCount: number;
  readonly backupCount: number;
  /** Partitions shown as migrating to the given member. */
  migrating = new Map<number, NodeId>();
  /** Makes the next map operation fail with this code. */
  failNext: ShoalErrorCode | undefined;
  stats: TransportStats = emptyStats();
  masterChanges = 0;
  shutdownCalls = 0;
  #ops = new Map<string, OperationStats>();
  #nextJoin = 0;

  constructor(opts: TestNodeOptions = {}) {
    this.id = "m-self0000";
    this.name = "self";
    this.clusterName = opts.cluster ?? "shoal";
    this.httpUrl = opts.httpUrl;
    this.partitionCount = opts.partitionCount ?? 271;
    this.backupCount = opts.backupCount ?? 1;
    this.cluster = new TestClusterView(this.id, { joined: false });
    this.cluster.subscribe((e) => {
      if (e.type === "masterChanged") this.masterChanges++;
    });
    const members: MemberInfo[] = [this.#member(this.id, this.name)];
    for (let i = 1; i < (opts.members ?? 3); i++) members.push(this.#member(`m-peer000${i}`, `peer${i}`));
    if (opts.joined ?? true) this.cluster.joined = true;
    this.cluster.setMembers(members);
  }

  #member(id: NodeId, name: string, lite = false): MemberInfo {
    return { id, name, runtime: "bun", joinedAt: this.#nextJoin++, lite, incarnation: 0 };
  }

  /** Marks the node joined (health turns 200). */
  join(): void {
    this.cluster.joined = true;
    this.cluster.setMembers(
      this.cluster.members().length ? this.cluster.members() : [this.#member(this.id, this.name)],
    );
  }

  addMember(name: string, lite = false): MemberInfo {
    const m = this.#member(`m-${name}`, name, lite);
    this.cluster.setMembers([...this.cluster.members(), m]);
    return m;
  }

  removeMember(id: NodeId): void {
    const m = this.cluster.member(id);
    if (!m) throw new Error(`no member ${id}`);
    this.cluster.setMembers(this.cluster.members().filter((x) => x.id !== id));
  }

  opStats(map: string, op: string): OperationStats {
    const key = `${map}\u0000${op}`;
    let s = this.#ops.get(key);
    if (!s) {
      s = {
        map,
        op,
        count: 0,
        errors: 0,
        latency: {
          boundsMs: latencyBoundsMs,
          counts: new Array(latencyBoundsMs.length + 1).fill(0),
          sumMs: 0,
          count: 0,
        },
      };
      this.#ops.set(key, s);
    }
    return s;
  }

  readonly queues = new Map<string, unknown[]>();
  readonly queueCapacities = new Map<string, number>();
  /** An in-memory FIFO with the queue API (no waiting: the grid's queue is tested in queue_test.ts). */
  getQueue<T = unknown>(name: string, options: QueueOptions = {}): IQueue<T> {
    let items = this.queues.get(name) as T[] | undefined;
    if (!items) this.queues.set(name, items = []);
    const list = items;
    // The capacity belongs to the queue: a handle given one sets it with its offers.
    const caps = this.queueCapacities;
    const capacity = () => caps.get(name) ?? 100_000;
    const poll = () => Promise.resolve(list.shift());
    return {
      name,
      capacity: options.capacity,
      offer: (item: T) => {
        if (options.capacity !== undefined) caps.set(name, options.capacity);
        return Promise.resolve(list.length < capacity() ? (list.push(item), true) : false);
      },
      poll,
      take: async () => {
        const v = await poll();
        if (v === undefined) throw new ShoalError("TIMEOUT", "empty");
        return v;
      },
      peek: () => Promise.resolve(list[0]),
      size: () => Promise.resolve(list.length),
      info: () => Promise.resolve({ size: list.length, capacity: capacity() }),
      drain: (max = 500) => Promise.resolve(list.splice(0, max)),
      async *[Symbol.asyncIterator]() {
        while (list.length > 0) yield list.shift()!;
      },
    };
  }

  readonly topics = new Map<string, unknown[]>();
  /** An in-memory ring with the topic API (sequence = index; no capacity): the grid's is tested in topic_test.ts. */
  getTopic<T = unknown>(name: string): ITopic<T> {
    let log = this.topics.get(name) as T[] | undefined;
    if (!log) this.topics.set(name, log = []);
    const msgs = log;
    return {
      name,
      capacity: undefined,
      publish: (m: T) => Promise.resolve(msgs.push(m) - 1),
      subscribe(o: SubscribeOptions = {}) {
        const start = o.from ?? msgs.length;
        async function* events() {
          let next = start;
          while (!o.signal?.aborted) {
            while (next < msgs.length) yield { seq: next, message: msgs[next++] };
            await new Promise((r) => setTimeout(r, 5));
          }
        }
        // Fixed at the call: every message published after it is yielded.
        return Object.assign(events(), { ready: Promise.resolve(start) });
      },
    };
  }
  getReliableTopic<T = unknown>(name: string): ITopic<T> {
    return this.getTopic<T>(name);
  }

  getMap<K = unknown, V = unknown>(name: string): IMap<K, V> {
    let m = this.maps.get(name);
    if (!m) {
      m = new TestMap(name, this);
      this.maps.set(name, m);
    }
    return m as unknown as IMap<K, V>;
  }

  mapNames(): string[] {
    return [...this.maps.keys()];
  }

  /** The whole cluster is this node: every map it holds, sized without counting an operation. */
  mapSizes(opts: { maxMaps?: number } = {}): Promise<MapSize[]> {
    const names = [...this.maps.keys()].sort().slice(0, opts.maxMaps ?? 64);
    return Promise.resolve(names.map((name) => ({ name, size: this.maps.get(name)!.data.size })));
  }

  partitionTable(): PartitionReplicaInfo[] {
    const data = this.cluster.members().filter((m) => !m.lite).map((m) => m.id);
    const out: PartitionReplicaInfo[] = [];
    for (let p = 0; p < this.partitionCount; p++) {
      const replicas: NodeId[] = [];
      for (let r = 0; r <= this.backupCount && r < data.length; r++) replicas.push(data[(p + r) % data.length]);
      const info: PartitionReplicaInfo = { partition: p, replicas, epoch: 1 };
      const to = this.migrating.get(p);
      if (to) info.migratingTo = [to, ...replicas.slice(1)];
      out.push(info);
    }
    return out;
  }

  partitionSummary(): PartitionSummary {
    const owners: Record<NodeId, number> = {};
    let missing = 0;
    for (const p of this.partitionTable()) {
      if (p.replicas[0]) owners[p.replicas[0]] = (owners[p.replicas[0]] ?? 0) + 1;
      missing += this.backupCount + 1 - p.replicas.length;
    }
    return {
      count: this.partitionCount,
      version: this.cluster.memberListVersion,
      owners,
      replicasMissing: missing,
      migrating: this.migrating.size,
      lost: 0,
      dataLoss: 0,
    };
  }

  links(): LinkInfo[] {
    return this.cluster.members().filter((m) => m.id !== this.id).map((m, i) =>
      i === 1
        ? { peer: m.id, kind: "relayed" as const, via: this.cluster.members()[1].id }
        : { peer: m.id, kind: "direct" as const }
    );
  }

  transportStats(): TransportStats {
    return { ...this.stats };
  }

  metrics(): NodeMetrics {
    return {
      masterChanges: this.masterChanges,
      operations: [...this.#ops.values()],
      maps: [...this.maps.values()].map((m) => ({ name: m.name, primaryEntries: m.data.size, backupEntries: 0 })),
      jobs: { jobs: { RUNNING: 1, FINISHED: 2 }, tasks: { RUNNING: 3 } },
    };
  }

  shutdown(): Promise<void> {
    this.shutdownCalls++;
    return Promise.resolve();
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.shutdown();
  }
}

/** A test node with `members` members (self the oldest, so the master), joined unless told otherwise. */
export function createTestNode(opts: TestNodeOptions = {}): TestNode {
  return new TestNode(opts);
}
