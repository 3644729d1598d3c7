/**
 * Backups answer a write's caller themselves (one hop less than primary → backup → primary
 * → caller, and no answer from the primary at all): the primary ships the write with its
 * caller and the members that ack it, each of them sends the caller the write's result once
 * it applied it, and the caller counts the write acknowledged only once every one of them has.
 */
import { describe, expect, test } from "bun:test";
import { partitionOf } from "../src/partition/partition_of.ts";
import { Kind } from "../src/wire/kinds.ts";
import type { Message } from "../src/wire/message.ts";
import { GridHarness, type GridMember } from "./support/grid_harness.ts";

const P = 13;

/** `directBackupAcks` as given; undefined leaves the map config out (the default). */
async function cluster(
  n: number,
  directBackupAcks: boolean | undefined = true,
  more: { backupCount?: number; invoke?: Record<string, number> } = {},
) {
  const h = new GridHarness({
    config: {
      partitionCount: P,
      invoke: { attemptTimeoutMs: 2000, callTimeoutMs: 20_000, ...more.invoke },
      ...(more.backupCount ? { backupCount: more.backupCount } : {}),
      ...(directBackupAcks === undefined ? {} : { map: { directBackupAcks } }),
    },
  });
  for (let i = 0; i < n; i++) await h.add(`n${i}`);
  await h.run(3000);
  return h;
}

/** A key whose primary and backup are both other members than `client`. */
function remoteKey(h: GridHarness, client: string): { key: string; primary: string; backup: string } {
  const t = h.members.get(client)!.grid.partitions.table;
  for (let i = 0;; i++) {
    const row = t.replicas[partitionOf(`k${i}`, P)];
    if (!row.includes(client)) return { key: `k${i}`, primary: row[0], backup: row[1] };
  }
}

/** Collects the messages of kind `kind` (InvokeBackupAnswer unless given) that reach `client`. */
function countBackupAcks(h: GridHarness, client: string, kind: number = Kind.InvokeBackupAnswer): Message[] {
  const acks: Message[] = [];
  const m = h.members.get(client)!;
  m.router.dispatch = ((orig) => (from: string, msg: Message) => {
    if (msg.t === kind) acks.push({ ...msg, from });
    orig(from, msg);
  })(m.router.dispatch.bind(m.router));
  return acks;
}

/** The call ids of the InvokeRequests `member` sends from now on. */
function callIdsSent(member: GridMember): string[] {
  const ids: string[] = [];
  member.transport.send = ((orig) => (to: string, msg: Message) => {
    if (msg.t === Kind.InvokeRequest) ids.push(String(msg.c));
    return orig(to, msg);
  })(member.transport.send.bind(member.transport));
  return ids;
}

/** A write of `value` from n0 that its backup cannot apply yet (the primary's link to it is blocked). */
async function stalledWrite(value: number) {
  const h = await cluster(3);
  const client = h.members.get("n0")!;
  const { key, primary, backup } = remoteKey(h, "n0");
  const map = client.grid.getMap<string, number>("m");
  const ids = callIdsSent(client);
  h.net.setLink(primary, backup, { blocked: true });
  const p = map.set(key, value);
  await h.run(100);
  expect(ids.length).toBe(1);
  return { h, client, key, primary, backup, map, ids, p };
}

describe("directBackupAcks setting", () => {
  test("on by default: with no map config, a write is acknowledged through its backup's own ack", async () => {
    const h = await cluster(3, undefined);
    const { key, primary } = remoteKey(h, "n0");
    const acks = countBackupAcks(h, "n0");
    await h.until(h.members.get("n0")!.grid.getMap<string, number>("m").set(key, 1));
    expect(acks.length).toBe(1);
    expect(h.members.get(primary)!.grid.maps.counters.directAcked).toBe(1);
    h.stop();
  });

  test("off when configured: the primary answers after its backup acked, and no backup acks the caller", async () => {
    const h = await cluster(3, false);
    const { key, primary, backup } = remoteKey(h, "n0");
    const acks = countBackupAcks(h, "n0");
    const map = h.members.get("n0")!.grid.getMap<string, number>("m");
    await h.until(map.set(key, 1));
    expect(acks.length).toBe(0);
    expect(h.members.get(primary)!.grid.maps.counters.directAcked).toBe(0);
    const backupHas = h.members.get(backup)!.grid.maps.debugReplicas().find((r) => r.p === partitionOf(key, P))!;
    expect(backupHas.entries).toBe(1);
    expect(await h.until(map.get(key))).toBe(1);
    h.stop();
  });
});

describe("backups ack straight to the caller", () => {
  test("a write is acknowledged through its backup's own ack, and the backup holds it", async () => {
    const h = await cluster(3);
    const client = h.members.get("n0")!;
    const { key, primary, backup } = remoteKey(h, "n0");
    const acks = countBackupAcks(h, "n0");
    await h.until(client.grid.getMap<string, number>("m").set(key, 1));
    expect(acks.length).toBe(1);
    expect(acks[0].pr).toBe(primary);
    expect(h.members.get(primary)!.grid.maps.counters.directAcked).toBe(1);
    const backupHas = h.members.get(backup)!.grid.maps.debugReplicas().find((r) => r.p === partitionOf(key, P))!;
    expect(backupHas.entries).toBe(1);
    h.stop();
  });

  test("the backup sends the caller's ack before the primary's (the caller's is on the write's path)", async () => {
    const h = await cluster(3);
    const client = h.members.get("n0")!;
    const { key, primary, backup } = remoteKey(h, "n0");
    const b = h.members.get(backup)!;
    const sent: string[] = [];
    b.transport.send = ((orig) => (to: string, msg: Message) => {
      if (msg.t === Kind.InvokeBackupAnswer) sent.push(`InvokeBackupAnswer to ${to}`);
      if (msg.t === Kind.MapBackupAck) sent.push(`MapBackupAck to ${to}`);
      return orig(to, msg);
    })(b.transport.send.bind(b.transport));
    await h.until(client.grid.getMap<string, number>("m").set(key, 1));
    expect(sent.slice(0, 2)).toEqual(["InvokeBackupAnswer to n0", `MapBackupAck to ${primary}`]);
    h.stop();
  });

  test("while the backup cannot apply the write, the caller does not count it acknowledged; afterwards it does", async () => {
    const h = await cluster(3);
    const client = h.members.get("n0")!;
    const { key, primary, backup } = remoteKey(h, "n0");
    h.net.setLink(primary, backup, { blocked: true });
    let done = false;
    const p = client.grid.getMap<string, number>("m").set(key, 7).then(() => void (done = true));
    await h.run(5000);
    expect(done).toBe(false);
    h.net.setLink(primary, backup, { blocked: false });
    await h.until(p);
    expect(done).toBe(true);
    const pp = partitionOf(key, P);
    expect(h.members.get(backup)!.grid.maps.debugReplicas().find((r) => r.p === pp)!.entries).toBe(1);
    h.stop();
  });

  test("when the backup's ack to the caller is lost, the caller asks again and the primary answers once it saw the backup's ack", async () => {
    const h = await cluster(3);
    const client = h.members.get("n0")!;
    const { key } = remoteKey(h, "n0");
    let dropped = 0;
    client.router.dispatch = ((orig) => (from: string, msg: Message) => {
      if (msg.t === Kind.InvokeBackupAnswer) return void dropped++;
      orig(from, msg);
    })(client.router.dispatch.bind(client.router));
    const map = client.grid.getMap<string, number>("m");
    for (let i = 0; i < 5; i++) await h.until(map.set(key, i));
    expect(dropped).toBe(5);
    expect(await h.until(map.get(key))).toBe(4);
    expect(client.grid.invoker.stats.retries).toBeGreaterThanOrEqual(5);
    h.stop();
  });
});

describe("backups answer in place of the primary", () => {
  test("the primary sends no answer of its own, and the backup's carries the write's result", async () => {
    const h = await cluster(3);
    const client = h.members.get("n0")!;
    const { key, backup } = remoteKey(h, "n0");
    const acks = countBackupAcks(h, "n0");
    const responses = countBackupAcks(h, "n0", Kind.InvokeResponse);
    const map = client.grid.getMap<string, string>("m");
    expect(await h.until(map.put(key, "first"))).toBeUndefined();
    expect(await h.until(map.put(key, "second"))).toBe("first");
    expect(await h.until(map.replace(key, "third"))).toBe("second");
    expect(responses.length).toBe(0);
    expect(acks.length).toBe(3);
    for (const a of acks) {
      expect(a.from).toBe(backup);
      expect(a.cs).toHaveLength(1);
      expect(a.rs).toHaveLength(1);
      expect(a.ob).toBeUndefined();
    }
    // A read is still answered by the primary.
    expect(await h.until(map.get(key))).toBe("third");
    expect(responses.length).toBe(1);
    h.stop();
  });

  test("with two backups, each answers naming the other, and the write counts only once both have", async () => {
    const h = await cluster(4, true, { backupCount: 2 });
    const client = h.members.get("n0")!;
    const t = client.grid.partitions.table;
    let key = "";
    for (let i = 0; !key; i++) if (!t.replicas[partitionOf(`k${i}`, P)].includes("n0")) key = `k${i}`;
    const [primary, b1, b2] = t.replicas[partitionOf(key, P)];
    const acks = countBackupAcks(h, "n0");
    const map = client.grid.getMap<string, number>("m");
    expect(await h.until(map.put(key, 1))).toBeUndefined();
    expect(acks.map((a) => a.from).sort()).toEqual([b1, b2].sort());
    for (const a of acks) expect(a.ob).toEqual([[a.from === b1 ? b2 : b1]]);
    // One backup cut off from the primary: the other's answer alone does not acknowledge the write.
    h.net.setLink(primary, b2, { blocked: true });
    let done: number | undefined;
    const p = map.put(key, 2).then((r) => void (done = r));
    await h.run(3000);
    expect(done).toBeUndefined();
    expect(acks.filter((a) => a.from === b1).length).toBe(2);
    h.net.setLink(primary, b2, { blocked: false });
    await h.until(p);
    expect(done).toBe(1);
    h.stop();
  });

  test("a write whose backup leaves asks its primary again at once, not after its attempt timeout", async () => {
    // Attempts that never time out: only the backup's removal can send the call again.
    const h = await cluster(4, true, { invoke: { attemptTimeoutMs: 25_000, minAttemptTimeoutMs: 25_000 } });
    const client = h.members.get("n0")!;
    const { key, primary, backup } = remoteKey(h, "n0");
    h.net.setLink(primary, backup, { blocked: true });
    const map = client.grid.getMap<string, number>("m");
    let done = false;
    const p = map.set(key, 5).then(() => void (done = true));
    await h.run(500);
    expect(done).toBe(false);
    const retries = client.grid.invoker.stats.retries;
    h.crash(backup, 1000);
    await h.run(1100);
    expect(client.grid.invoker.stats.retries).toBeGreaterThan(retries);
    await h.until(p, 20_000);
    expect(done).toBe(true);
    expect(await h.until(map.get(key))).toBe(5);
    h.stop();
  });

  test("answers whose lists differ in length are dropped and counted, and the call still completes", async () => {
    const { h, client, key, primary, backup, map, ids, p } = await stalledWrite(9);
    const forged = (rs: unknown[], ob?: string[][]) =>
      client.router.dispatch(backup, { t: Kind.InvokeBackupAnswer, pr: primary, cs: ids, rs, ...(ob ? { ob } : {}) });
    forged([]);
    forged([null], [[], []]);
    expect(client.grid.invoker.stats.badAnswers).toBe(2);
    expect(client.grid.invoker.pendingCalls).toBe(1);
    h.net.setLink(primary, backup, { blocked: false });
    await h.until(p);
    expect(await h.until(map.get(key))).toBe(9);
    h.stop();
  });

  test("an answer naming backups (as members older than InvokeBackupAnswer send it) does not count until the write is acknowledged", async () => {
    const { h, client, key, primary, backup, map, ids, p: set } = await stalledWrite(3);
    let done = false;
    const p = set.then(() => void (done = true));
    client.router.dispatch(primary, { t: Kind.InvokeResponse, c: ids[0], a: 1, s: "ok", r: null, bk: [backup] });
    await h.run(2000);
    expect(done).toBe(false);
    expect(client.grid.invoker.stats.retries).toBeGreaterThan(0);
    h.net.setLink(primary, backup, { blocked: false });
    await h.until(p);
    expect(done).toBe(true);
    expect(await h.until(map.get(key))).toBe(3);
    h.stop();
  });

  test("the writes of one received frame get one answer per caller and one ack per primary, answers first", async () => {
    const h = await cluster(3);
    const client = h.members.get("n0")!;
    const t = client.grid.partitions.table;
    // Six keys with the same primary and backup (neither the client), some sharing a partition.
    const { primary, backup } = remoteKey(h, "n0");
    const keys: string[] = [];
    for (let i = 0; keys.length < 6; i++) {
      const row = t.replicas[partitionOf(`f${i}`, P)];
      if (row[0] === primary && row[1] === backup) keys.push(`f${i}`);
    }
    const partitions = new Set(keys.map((k) => partitionOf(k, P)));
    // The backup holds the primary's ops back, then takes them in as one frame.
    const b = h.members.get(backup)!;
    const held: Array<[string, Message]> = [];
    const dispatch = b.router.dispatch.bind(b.router);
    b.router.dispatch = (from: string, msg: Message) => {
      if (msg.t === Kind.MapBackupOps && from === primary) held.push([from, msg]);
      else dispatch(from, msg);
    };
    const sent: Message[] = [];
    b.transport.send = ((orig) => (to: string, msg: Message) => {
      if (msg.t === Kind.InvokeBackupAnswer || msg.t === Kind.MapBackupAck) sent.push({ ...msg, to });
      return orig(to, msg);
    })(b.transport.send.bind(b.transport));
    const map = client.grid.getMap<string, number>("m");
    let done = 0;
    const writes = keys.map((k, i) => map.put(k, i).then((r) => (done++, r)));
    await h.run(200);
    expect(held.length).toBe(6);
    expect(done).toBe(0);
    b.router.dispatch = dispatch;
    b.router.frame(() => {
      for (const [from, msg] of held) dispatch(from, msg);
    });
    expect(sent.map((m) => [m.t, m.to])).toEqual([[Kind.InvokeBackupAnswer, "n0"], [Kind.MapBackupAck, primary]]);
    expect(sent[0].cs).toHaveLength(6);
    expect(sent[0].rs).toEqual([null, null, null, null, null, null]);
    // One ack per partition: its newest.
    const items = sent[1].items as Array<{ p: number; s: number }>;
    expect(items.map((it) => it.p).sort()).toEqual([...partitions].sort());
    for (const it of items) {
      expect(it.s).toBe(b.grid.maps.debugReplicas().find((r) => r.p === it.p)!.seq);
    }
    expect(await h.until(Promise.all(writes))).toEqual([
      undefined,
      undefined,
      undefined,
      undefined,
      undefined,
      undefined,
    ]);
    // Outside a frame, each ops message is answered and acked on its own.
    sent.length = 0;
    await h.until(Promise.all(keys.slice(0, 2).map((k) => map.set(k, 9))));
    expect(sent.map((m) => m.t)).toEqual([
      Kind.InvokeBackupAnswer,
      Kind.MapBackupAck,
      Kind.InvokeBackupAnswer,
      Kind.MapBackupAck,
    ]);
    for (const k of keys.slice(0, 2)) expect(await h.until(map.get(k))).toBe(9);
    h.stop();
  });
});
