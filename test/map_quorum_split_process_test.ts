/**
 * Split-brain protection through a real network split: 4 members (Bun and Deno, over
 * WebRTC), each in its own network namespace on one bridge, with `--min-cluster-size 3`.
 * iptables in the namespaces cuts the master off from the other three for 8 s, then the cut
 * is lifted. 8 REST clients (from the root namespace, which reaches every member) record a
 * history of PUT / GET / DELETE on 6 hot keys throughout. The cut-off master must refuse with
 * QUORUM within its lease, the three others must keep serving, and the history must be
 * linearizable with no acknowledged write lost. Needs root (ip netns, iptables); skipped
 * otherwise.
 */
import { afterAll, describe, expect, test } from "bun:test";
import { spawnSync } from "bun";
import { fetchJson } from "../src/runtime/fetch_json.ts";
import { checkLinearizable, checkNoLostWrites } from "./support/history_checker.ts";
import { killAll, type Member, startMember } from "./support/cluster.ts";
import { RestLoad } from "./support/rest_history.ts";
import { until } from "./support/until.ts";

const NS = ["shq1", "shq2", "shq3", "shq4"];
const BRIDGE = "shqbr0";
const ip = (i: number) => `10.78.0.${i + 1}`;
const TOKEN = "quorum-split-token";
const CUT_MS = 8000;

const skip = process.platform !== "linux" || process.getuid?.() !== 0 || !Bun.which("ip") || !Bun.which("iptables");

function sh(cmd: string, check = true): void {
  const r = spawnSync(["bash", "-c", cmd], { stdout: "pipe", stderr: "pipe" });
  if (check && r.exitCode !== 0) throw new Error(`${cmd}: ${r.stderr.toString()}`);
}

function labDown(): void {
  // Deleting a namespace frees its veth pair only once the kernel's cleanup runs: delete the pairs first.
  NS.forEach((_, i) => sh(`ip link del shqv${i}`, false));
  for (const ns of NS) sh(`ip netns del ${ns}`, false);
  sh(`ip link del ${BRIDGE}`, false);
}

function labUp(): void {
  labDown();
  sh(`ip link add ${BRIDGE} type bridge && ip addr add 10.78.0.254/24 dev ${BRIDGE} && ip link set ${BRIDGE} up`);
  NS.forEach((ns, i) => {
    // Inside the namespace the interface is eth0: werift does not gather candidates on veth* names.
    sh(
      `ip netns add ${ns} && ip link add shqv${i} type veth peer name shqp${i} && ip link set shqp${i} netns ${ns}` +
        ` && ip -n ${ns} link set shqp${i} name eth0 && ip -n ${ns} addr add ${ip(i)}/24 dev eth0` +
        ` && ip -n ${ns} link set eth0 up && ip -n ${ns} link set lo up` +
        ` && ip link set shqv${i} master ${BRIDGE} && ip link set shqv${i} up`,
    );
  });
}

/** Drops all traffic between the members of `a` and those of `b` (the root namespace still reaches everyone). */
function cut(a: number[], b: number[]): void {
  for (const [from, to] of [[a, b], [b, a]]) {
    for (const i of from) {
      for (const j of to) {
        sh(`ip netns exec ${NS[i]} iptables -A INPUT -s ${ip(j)} -j DROP`);
        sh(`ip netns exec ${NS[i]} iptables -A OUTPUT -d ${ip(j)} -j DROP`);
      }
    }
  }
}

function heal(): void {
  for (const ns of NS) sh(`ip netns exec ${ns} iptables -F`);
}

afterAll(() => {
  killAll();
  if (!skip) labDown();
});

/** GET /cluster with the token (off loopback every route but /health needs it). */
const clusterOf = (m: Member) =>
  fetchJson<ClusterJson>(`${m.url}/cluster`, { headers: { authorization: `Bearer ${TOKEN}` } }).catch(() => undefined);

interface ClusterJson {
  master: string;
  members: { id: string }[];
  partitions: { replicasMissing: number; migrating: number };
  quorum: { serving: boolean } | null;
}

describe("split-brain protection through a network split between namespaces", () => {
  test.skipIf(skip)(
    "the master cut off from the other three: it refuses, they serve, the history stays linearizable",
    async () => {
      labUp();
      const args = ["--min-cluster-size", "3", "--partition-count", "31", "--token", TOKEN];
      const start = (i: number, name: string, runtime: "bun" | "deno", join?: string) =>
        startMember({ name, runtime, join, args, http: `${ip(i)}:7000`, netns: NS[i] });
      const a = await start(0, "a", "bun");
      const others = await Promise.all([
        start(1, "b", "deno", a.url),
        start(2, "c", "bun", a.url),
        start(3, "d", "bun", a.url),
      ]);
      const all = [a, ...others];
      const settled = async (members: Member[]) => {
        const vs = await Promise.all(members.map(clusterOf));
        return vs.every((v) =>
          v && v.members.length === members.length && v.master === vs[0]!.master && v.quorum?.serving &&
          v.partitions.replicasMissing === 0 && v.partitions.migrating === 0
        );
      };
      await until(async () => (await settled(all)) || undefined, 90_000, "4 members serving with full replicas");

      const load = new RestLoad({ members: all, clients: 8, keys: 6, token: TOKEN });
      await new Promise((r) => setTimeout(r, 3000));

      cut([0], [1, 2, 3]);
      const cutAt = load.now();
      load.since = cutAt;
      const refusing = await until(
        async () => (await clusterOf(a))?.quorum?.serving === false || undefined,
        10_000,
        "the cut-off master refuses",
        20,
      ).then(() => Math.round(load.now() - cutAt));
      await new Promise((r) => setTimeout(r, Math.max(0, CUT_MS - (load.now() - cutAt))));
      heal();
      await new Promise((r) => setTimeout(r, 6000));
      await load.stop();

      await until(async () => (await settled(all)) || undefined, 90_000, "one cluster of 4 serving again");
      await load.readAll(others[0]);
      const h = load.history;
      const answeredByMajority = ["b", "c", "d"].reduce((n, m) => n + (load.answeredSince.get(m) ?? 0), 0);
      console.log(
        `${h.ops.length} operations, ${
          h.ops.filter((o) => o.status === "ok").length
        } ok, the cut-off master refused ${refusing} ms after the cut; refused with QUORUM by ${
          JSON.stringify(Object.fromEntries(load.refusedBy))
        }; answered by the majority after the cut: ${answeredByMajority}`,
      );
      expect(checkNoLostWrites(h).problems).toEqual([]);
      expect(checkLinearizable(h).problems).toEqual([]);
      expect(refusing).toBeLessThan(2000);
      expect(load.refusedBy.get("a") ?? 0).toBeGreaterThan(0);
      expect(answeredByMajority).toBeGreaterThan(0);
    },
    300_000,
  );
});
