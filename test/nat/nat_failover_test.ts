/**
 * Three members behind three cone NATs in the namespace lab (test/nat/lab.ts): a NAT
 * rebinding under write load (router 1 moves its mappings to new ports and forgets the
 * old ones), then `kill -9` of the master while a job runs across the NATs.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { sequenceValue } from "../../src/jobs/source_sequence.ts";
import { mapFunctions } from "../../src/jobs/transform_map.ts";
import { LAB_TEST_MS, type LabMember, labSkipReason, NatLab, STUN, until, wanOf } from "./lab.ts";

const skip = labSkipReason();
if (skip) console.log(`skipping NAT lab tests: ${skip}`);

const figures: string[] = [];
let lab: NatLab;
let members: LabMember[] = [];

beforeAll(async () => {
  if (skip) return;
  lab = await NatLab.up();
});
afterAll(async () => {
  await lab?.down();
  if (figures.length) console.log(["NAT lab figures (failover):", ...figures].join("\n  "));
});

/** Member names each member's /cluster lists. */
async function views(ms: LabMember[]): Promise<string[][]> {
  return await Promise.all(ms.map(async (m) => (await m.cluster()).members.map((x) => x.name).sort()));
}

describe.skipIf(skip !== null)("NAT lab: three members behind three NATs", () => {
  test("formed with direct links only", async () => {
    const t0 = performance.now();
    const a = await lab.member("nat-a", "h1", { runtime: "bun", ice: [STUN] });
    const [b, c] = await Promise.all([
      lab.member("nat-b", "h2", { runtime: "deno", ice: [STUN] }),
      lab.member("nat-c", "h3", { runtime: "bun", ice: [STUN] }),
    ]);
    members = [a, b, c];
    await until("three members, replicas in place", 60_000, async () => {
      const vs = await Promise.all(members.map((m) => m.cluster()));
      return vs.every((v) =>
        v.members.length === 3 && v.partitions.replicasMissing === 0 && v.partitions.migrating === 0 &&
        v.links.length === 2 && v.links.every((l) => l.kind === "direct")
      );
    });
    figures.push(`three members behind three NATs, first start → formed: ${Math.round(performance.now() - t0)} ms`);
  }, LAB_TEST_MS);

  test("NAT rebinding under load: links recover, nobody is declared dead, no acknowledged write is lost", async () => {
    const [a, b, c] = members;
    const acked = new Map<string, number>();
    let stop = false;
    let failures = 0;
    // Writers on both sides of the rebinding router.
    const writer = async (m: LabMember, prefix: string) => {
      for (let i = 0; !stop; i++) {
        const key = `${prefix}${i}`;
        try {
          if ((await m.put("rebind", key, i)) === 200) acked.set(key, i);
          else failures++;
        } catch {
          failures++;
        }
      }
    };
    const writers = [writer(a, "a"), writer(b, "b")];
    const viewLog: string[][][] = [];
    const watch = (async () => {
      while (!stop) {
        viewLog.push(await views(members).catch(() => []));
        await Bun.sleep(200);
      }
    })();
    await Bun.sleep(1_500);
    const before = acked.size;
    const rebindAt = performance.now();
    lab.rebind(1);
    // Router 1 maps a's UDP to ports 30000–30999 from now on: new links must be punched.
    // a's links to b and c are back once flows from a to both routers carry replies again.
    const newPath = (wan: string) => lab.flows(1).some((f) => f.replied && f.src === "10.0.1.2" && f.dst === wan);
    await until("a's links back on new mappings", 30_000, () => newPath(wanOf(2)) && newPath(wanOf(3)));
    const recovered = Math.round(performance.now() - rebindAt);
    // Writes through a keep being acknowledged after the rebinding.
    const afterRecovery = acked.size;
    await until("writes acknowledged again", 20_000, () => acked.size > afterRecovery + 20);
    stop = true;
    await Promise.all([...writers, watch]);
    figures.push(
      `NAT rebinding of router 1: links back after ${recovered} ms; ${acked.size} writes acknowledged (${before} before), ${failures} failed or timed out`,
    );

    for (const vs of viewLog) for (const v of vs) expect(v).toEqual(["nat-a", "nat-b", "nat-c"]);
    for (const m of members) {
      for (const line of m.proc.stderr.split("\n")) {
        expect(line).not.toMatch(/"event":"(member dead|split brain detected)"/);
      }
    }
    for (const [key, value] of acked) expect(await c.get("rebind", key)).toEqual({ status: 200, value });
  }, LAB_TEST_MS);

  test("kill -9 of the master: the survivors serve every key and a job across the NATs finishes exactly", async () => {
    const master = (await members[0].cluster()).master;
    const victim = members.find((m) => m.id === master)!;
    const survivors = members.filter((m) => m !== victim);
    for (let i = 0; i < 200; i++) expect(await survivors[i % 2].put("keep", `k${i}`, i)).toBe(200);

    const count = 900;
    const job = {
      id: "nat-job",
      name: "across-nats",
      source: { type: "sequence", count, parallelism: 3, ratePerSecond: 150 },
      transform: { type: "map", fn: "double" },
      sink: { type: "map", map: "nat-out" },
      checkpointIntervalMs: 500,
    };
    const submitted = await survivors[0].req("POST", "/jobs", job);
    expect(submitted.status).toBe(201);
    await until("job running with records written", 30_000, async () => {
      const r = await survivors[0].req<{ status: string; tasks?: { recordsWritten: number }[] }>(
        "GET",
        "/jobs/nat-job",
      );
      return r.body.status === "RUNNING" && (r.body.tasks ?? []).some((t) => t.recordsWritten > 30);
    });
    const killedAt = performance.now();
    await lab.stop(victim);
    await until("two members left", 20_000, async () => (await views(survivors)).every((v) => v.length === 2));
    figures.push(
      `master killed behind a NAT: survivors agree on two members after ${Math.round(performance.now() - killedAt)} ms`,
    );

    for (let i = 0; i < 200; i++) {
      for (const s of survivors) expect(await s.get("keep", `k${i}`)).toEqual({ status: 200, value: i });
    }
    const done = await until("job finished", 90_000, async () => {
      const r = await survivors[1].req<{ status: string }>("GET", "/jobs/nat-job");
      if (r.body.status === "FAILED" || r.body.status === "CANCELED") throw new Error(JSON.stringify(r.body));
      return r.body.status === "FINISHED" ? r.body : undefined;
    });
    figures.push(
      `job of ${count} records across the NATs, master killed mid-job: FINISHED ${
        Math.round(performance.now() - killedAt)
      } ms after the kill`,
    );
    expect(done.status).toBe("FINISHED");
    expect((await survivors[0].req<{ size: number }>("GET", "/maps/nat-out")).body.size).toBe(count);
    // Every record exactly once, with its transformed value (the sink's key is the record id).
    for (let from = 0; from < count; from += 50) {
      const ids = Array.from({ length: Math.min(50, count - from) }, (_, i) => from + i);
      const got = await Promise.all(ids.map((id) => survivors[id % 2].get("nat-out", String(id))));
      expect(got).toEqual(
        ids.map((id) => ({ status: 200, value: { id, value: mapFunctions.double(sequenceValue(id)) } })),
      );
    }
  }, LAB_TEST_MS);
});
