/**
 * Members whose clocks are 10 minutes off join and work. Real Bun and Deno processes run
 * under libfaketime (Debian `faketime`: LD_PRELOAD with FAKETIME="+600s" or "-600s"):
 * joins, offers and answers no longer depend on the sender's clock (challenges from the
 * receiver, see src/signaling/challenges.ts), and each member measures the others' clock
 * offsets, reports them in `GET /cluster` (`clockOffsetMs` per member) and logs a warning
 * past the 2 s bound.
 */
import { afterAll, describe, expect, test } from "bun:test";
import { existsSync } from "node:fs";
import { killAll, type Member, type RuntimeKind, startMember } from "./support/cluster.ts";
import { until } from "./support/until.ts";

afterAll(killAll);

const libfaketime = "/usr/lib/x86_64-linux-gnu/faketime/libfaketime.so.1";
const hasFaketime = existsSync(libfaketime);
if (!hasFaketime) {
  console.warn(`SKIPPED clock-skew process test: ${libfaketime} is missing (apt-get install -y faketime)`);
}

interface ClusterJson {
  members: { id: string; name: string; clockOffsetMs: number | null }[];
  partitions: { replicasMissing: number };
  clockOffsetWarnMs: number;
}

const tenMinutes = 600_000;
/** Tolerance of an offset estimate on a loaded 2-core machine (it is half a round trip at worst). */
const toleranceMs = 3_000;

function skewed(name: string, runtime: RuntimeKind, skewMs: number, join: string): Promise<Member> {
  return startMember({
    name,
    runtime,
    join,
    readyTimeoutMs: 90_000,
    env: { LD_PRELOAD: libfaketime, FAKETIME: `${skewMs >= 0 ? "+" : "-"}${Math.abs(skewMs) / 1000}s` },
  });
}

async function checkCluster(a: Member, skewedMembers: Array<[Member, number]>): Promise<void> {
  const n = skewedMembers.length + 1;
  const view = await until(
    async () => {
      const v = await a.json<ClusterJson>("/cluster");
      const measured = v.members.every((m) => m.clockOffsetMs !== null);
      return v.members.length === n && v.partitions.replicasMissing === 0 && measured ? v : undefined;
    },
    120_000,
    `${n} members with clock offsets measured`,
  );
  expect(view.clockOffsetWarnMs).toBe(2000);
  for (const [m, skew] of skewedMembers) {
    const offset = view.members.find((x) => x.id === m.id)!.clockOffsetMs!;
    expect({ member: m.name, off: Math.abs(offset - skew) < toleranceMs }).toEqual({ member: m.name, off: true });
    // The skewed member sees the honest one the other way round, and says so in its log.
    const own = await m.json<ClusterJson>("/cluster");
    const back = own.members.find((x) => x.id === a.id)!.clockOffsetMs;
    expect(back === null || Math.abs(back + skew) < toleranceMs).toBe(true);
    await until(
      () =>
        (m.stderr().includes('"signaling.clock.offset"') || a.stderr().includes('"signaling.clock.offset"')) ||
        undefined,
      10_000,
      "warning",
    );
  }
  expect(a.stderr()).toContain('"signaling.clock.offset"');
  // And the data path works across the skewed members.
  const [first] = skewedMembers[0];
  const last = skewedMembers[skewedMembers.length - 1][0];
  for (let i = 0; i < 20; i++) {
    const res = await fetch(`${first.url}/maps/skew/k${i}`, { method: "PUT", body: JSON.stringify({ i }) });
    expect(res.status).toBe(200);
  }
  for (let i = 0; i < 20; i++) expect(await last.json(`/maps/skew/k${i}`)).toEqual({ value: { i } });
}

describe.skipIf(!hasFaketime)("members with clocks 10 minutes off (libfaketime)", () => {
  let a: Member;

  test("a Deno member at +10 min and a Bun member at −10 min join a true-clock Bun member and work", async () => {
    a = await startMember({ name: "true-clock", runtime: "bun" });
    const b = await skewed("deno-plus10", "deno", tenMinutes, a.url);
    const c = await skewed("bun-minus10", "bun", -tenMinutes, a.url);
    await checkCluster(a, [[b, tenMinutes], [c, -tenMinutes]]);
    b.kill9();
    c.kill9();
  }, 300_000);

  test("a Bun member at +10 min and a Deno member at −10 min join too", async () => {
    await until(async () => (await a.json<ClusterJson>("/cluster")).members.length === 1 || undefined, 60_000, "alone");
    const d = await skewed("bun-plus10", "bun", tenMinutes, a.url);
    const e = await skewed("deno-minus10", "deno", -tenMinutes, a.url);
    await checkCluster(a, [[d, tenMinutes], [e, -tenMinutes]]);
  }, 300_000);
});
