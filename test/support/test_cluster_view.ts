/**
 * A cluster view the test controls, standing in for membership where a test needs exact
 * control of who is a member and when others learn of a death. `TestCluster` holds the
 * truth; each member's `TestClusterView` is updated when the test says so. The in-process
 * `TestNode` (test_node.ts) uses the same view, created not yet joined.
 */
import type { ClusterEvent, ClusterView, MemberInfo } from "../../src/cluster/view.ts";
import type { NodeId } from "../../src/transport/transport.ts";

/** How a {@link TestClusterView} starts. */
export interface TestClusterViewOptions {
  /** Whether the member has joined; until it has, it lists no members and no master. @default true */
  joined?: boolean;
}

export class TestClusterView implements ClusterView {
  #members: MemberInfo[] = [];
  #listeners = new Set<(e: ClusterEvent) => void>();
  masterEpoch = 0;
  memberListVersion = 0;
  joined: boolean;

  constructor(readonly self: NodeId, options: TestClusterViewOptions = {}) {
    this.joined = options.joined ?? true;
  }

  members(): MemberInfo[] {
    return this.joined ? [...this.#members] : [];
  }
  member(id: NodeId): MemberInfo | undefined {
    return this.#members.find((m) => m.id === id);
  }
  listed(id: NodeId): boolean {
    return this.member(id) !== undefined;
  }
  master(): NodeId | undefined {
    return this.joined ? this.#members[0]?.id : undefined;
  }
  isMaster(): boolean {
    return this.master() === this.self;
  }
  subscribe(listener: (e: ClusterEvent) => void): () => void {
    this.#listeners.add(listener);
    return () => this.#listeners.delete(listener);
  }

  /** Replaces the member list and emits the events a membership would. */
  setMembers(list: MemberInfo[]): void {
    const before = this.#members;
    const prevMaster = this.master();
    this.#members = [...list].sort((a, b) => a.joinedAt - b.joinedAt);
    this.memberListVersion++;
    const emit = (e: ClusterEvent) => this.#listeners.forEach((l) => l(e));
    for (const m of this.#members) if (!before.some((b) => b.id === m.id)) emit({ type: "memberAdded", member: m });
    for (const m of before) {
      if (!this.#members.some((b) => b.id === m.id)) emit({ type: "memberRemoved", member: m, reason: "dead" });
    }
    emit({ type: "memberListChanged", version: this.memberListVersion });
    const master = this.master();
    if (master !== prevMaster && master !== undefined) {
      this.masterEpoch++;
      emit({ type: "masterChanged", master, previous: prevMaster, epoch: this.masterEpoch });
    }
  }
}

/** The truth about membership, pushed to each member's view on demand. */
export class TestCluster {
  readonly views = new Map<NodeId, TestClusterView>();
  #members: MemberInfo[] = [];
  #nextJoin = 1;

  /** Adds a member (youngest) and returns its view; call {@link publish} to tell everyone. */
  add(id: NodeId, lite = false): TestClusterView {
    this.#members.push({ id, name: id, runtime: "sim", joinedAt: this.#nextJoin++, lite, incarnation: 0 });
    const v = new TestClusterView(id);
    this.views.set(id, v);
    return v;
  }

  /** Removes a member from the truth (its view is dropped). */
  remove(id: NodeId): void {
    this.#members = this.#members.filter((m) => m.id !== id);
    this.views.delete(id);
  }

  members(): MemberInfo[] {
    return [...this.#members];
  }

  /** Pushes the current truth to every (or the given) member's view. */
  publish(only?: NodeId[]): void {
    for (const [id, v] of this.views) if (!only || only.includes(id)) v.setMembers(this.#members);
  }
}
