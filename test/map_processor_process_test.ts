/**
 * Entry processors between real processes (Bun and Deno): 3 members run 10,000 `increment`
 * calls (REST, spread over the members, 32 in flight) on one key while the key's primary is
 * killed with kill -9. The final value is the number of acknowledged increments plus at most
 * the indeterminate ones (HTTP 504 INDETERMINATE, or a connection to the killed member lost
 * mid-call), and every call is accounted for as one of: acknowledged, indeterminate, or
 * refused before it ran.
 */
import { afterAll, describe, expect, test } from "bun:test";
import { killAll, primaryOf, startSettledCluster } from "./support/cluster.ts";
import { until } from "./support/until.ts";

afterAll(() => killAll());

const CALLS = 10_000;
const KEY = "hits";

describe("entry processors across processes", () => {
  test(
    "10,000 concurrent increments while the key's primary is killed: acked ≤ final ≤ acked + indeterminate",
    async () => {
      const { members: all, snap } = await startSettledCluster(["bun", "deno", "bun"]);
      const victim = primaryOf(all, snap, KEY)!;
      expect(victim).toBeDefined();

      let acked = 0;
      let indeterminate = 0;
      let refused = 0;
      const unexpected: string[] = [];
      let killed = false;
      let next = 0;
      await Promise.all(Array.from({ length: 32 }, async (_, w) => {
        while (next < CALLS) {
          next++;
          const live = killed ? all.filter((m) => m !== victim) : all;
          const via = live[w % live.length];
          if (!killed && acked >= CALLS / 3) {
            killed = true;
            victim.kill9();
          }
          let r: Response;
          try {
            r = await fetch(`${via.url}/maps/counters/${KEY}/execute`, {
              method: "POST",
              body: JSON.stringify({ processor: "increment" }),
              headers: { "content-type": "application/json" },
            });
          } catch {
            // The connection died with the member: the call may or may not have run.
            indeterminate++;
            continue;
          }
          const body = await r.json().catch(() => ({}));
          if (r.ok) acked++;
          else if (body.code === "INDETERMINATE") indeterminate++;
          else if (body.code === "TIMEOUT" || body.code === "OVERLOADED") refused++;
          else unexpected.push(`${r.status} ${JSON.stringify(body)}`);
        }
      }));
      console.log(`acked ${acked}, indeterminate ${indeterminate}, refused ${refused}`);
      expect(unexpected.slice(0, 5)).toEqual([]);
      expect(acked + indeterminate + refused).toBe(CALLS);
      const survivor = all.find((m) => m !== victim)!;
      const final = await until(
        async () => {
          const r = await fetch(`${survivor.url}/maps/counters/${KEY}`);
          return r.ok ? ((await r.json()).value as number) : undefined;
        },
        30_000,
        "the counter to be readable",
      );
      console.log(`final ${final}`);
      expect(final).toBeGreaterThanOrEqual(acked);
      expect(final).toBeLessThanOrEqual(acked + indeterminate);
    },
    300_000,
  );
});
