/**
 * Backups ack a write straight to its caller (one hop less than primary → backup →
 * primary → caller): the primary answers at once naming the backups, and the caller counts
 * the write acknowledged only once each named backup acked it itself.
 */
import { describe, expect, test } from "bun:test";
import { partitionOf } from "../src/partition/partition_of.ts";
import { Kind } from "../src/wire/kinds.ts";
import type { Message } from "../src/wire/message.ts";
import { GridHarness } from "./support/grid_harness.ts";

const P = 13;

/** `directBackupAcks` as given; undefined leaves the map config out (the default). */
async function cluster(n: number, directBackupAcks: boolean | undefined = true) {
  const h = new GridHarness({
    config: {
      partitionCount: P,
      invoke: { attemptTimeoutMs: 2000, callTimeoutMs: 20_000 },
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

/** Counts the InvokeBackupAck messages that reach `client`. */
function countBackupAcks(h: GridHarness, client: string): Message[] {
  const acks: Message[] = [];
  const m = h.members.get(client)!;
  m.router.dispatch = ((orig) => (from: string, msg: Message) => {
    if (msg.t === Kind.InvokeBackupAck) acks.push(msg);
    orig(from, msg);
  })(m.router.dispatch.bind(m.router));
  return acks;
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
      if (msg.t === Kind.InvokeBackupAck) sent.push(`InvokeBackupAck to ${to}`);
      if (msg.t === Kind.MapBackupAck) sent.push(`MapBackupAck to ${to}`);
      return orig(to, msg);
    })(b.transport.send.bind(b.transport));
    await h.until(client.grid.getMap<string, number>("m").set(key, 1));
    expect(sent.slice(0, 2)).toEqual(["InvokeBackupAck to n0", `MapBackupAck to ${primary}`]);
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
      if (msg.t === Kind.InvokeBackupAck) return void dropped++;
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
