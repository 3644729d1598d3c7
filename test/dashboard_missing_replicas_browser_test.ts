/**
 * The dashboard marks a partition cell "missing" (red corner, legend "replica missing") for
 * every partition the member's summary counts as lacking a replica (GET /cluster
 * `replicasMissing`, GET /health `safe`, the page's own "replicas missing" figure): a backup
 * still filling (created in place, not yet in sync) and a replica on a member no longer alive
 * are not replicas. The page judged by row length alone, so right after a failure it said
 * "replicas missing N" with no cell marked (found by an internal review). The node serves
 * the real table functions (partition_table.ts `tableInfo` / `tableSummary`) over a table in
 * those states.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import type { Browser } from "playwright-core";
import { createHttpApp } from "../src/http/app.ts";
import { type PartitionTable, tableInfo, tableSummary } from "../src/partition/partition_table.ts";
import type { PartitionReplicaInfo, PartitionSummary } from "../src/node_api.ts";
import { hasChromium, launchChromium } from "./support/chromium.ts";
import { TestNode } from "./support/test_node.ts";

const P = 7;

/** A test node whose partition table and summary come from the real table functions. */
class TableNode extends TestNode {
  table!: PartitionTable;
  override partitionTable(): PartitionReplicaInfo[] {
    return tableInfo(this.table);
  }
  override partitionSummary(): PartitionSummary {
    const live = new Set(this.cluster.members().map((m) => m.id));
    const data = this.cluster.members().filter((m) => !m.lite).length;
    const wanted = Math.min(1 + this.backupCount, Math.max(1, data));
    return { ...tableSummary(this.table, wanted, live), lost: 0, dataLoss: 0 };
  }
}

function table(rows: string[][], filling?: Map<number, string[]>): PartitionTable {
  return {
    version: 5,
    term: 1,
    partitionCount: rows.length,
    replicas: rows,
    epochs: rows.map(() => 1),
    migrations: new Map(),
    ...(filling ? { filling } : {}),
  };
}

let browser: Browser | undefined;
const servers: { stop(force?: boolean): void }[] = [];
beforeAll(async () => {
  if (hasChromium) browser = await launchChromium();
}, 60_000);
afterAll(async () => {
  await browser?.close();
  for (const s of servers) s.stop(true);
});

/** Serves the node's app, opens the dashboard, and answers the missing cells and the summary figure. */
async function look(node: TableNode): Promise<{ missingCells: string[]; missingFigure: string }> {
  const server = Bun.serve({
    port: 0,
    hostname: "127.0.0.1",
    fetch: createHttpApp(node, { sseIntervalMs: 200 }).fetch,
  });
  servers.push(server);
  const page = await browser!.newPage();
  try {
    await page.goto(`http://127.0.0.1:${server.port}/`);
    await page.waitForFunction(
      (n) => document.querySelectorAll('[data-testid="partition-cell"]').length === n,
      P,
      { timeout: 20_000 },
    );
    const missingCells = await page.$$eval(
      '[data-testid="partition-cell"].missing',
      (els) => els.map((e) => (e as HTMLElement).dataset.partition ?? ""),
    );
    const missingFigure = (await page.locator('[data-testid="replicas-missing"]').textContent()) ?? "";
    return { missingCells, missingFigure };
  } finally {
    await page.close();
  }
}

describe.skipIf(!hasChromium)("dashboard: a cell is marked missing for every partition the summary counts", () => {
  test("a backup still filling (not in sync) is shown as a missing replica", async () => {
    const node = new TableNode({ members: 3, partitionCount: P, backupCount: 1 });
    const [a, b, c] = node.cluster.members().map((m) => m.id);
    const rows = Array.from({ length: P }, (_, p) => [[a, b], [b, c], [c, a]][p % 3]);
    node.table = table(rows, new Map([[2, [a]]])); // partition 2's backup a is still filling
    expect((await (await createHttpApp(node).request("/cluster")).json()).partitions.replicasMissing).toBe(1);
    const seen = await look(node);
    expect(seen.missingFigure).toBe("1");
    expect(seen.missingCells).toEqual(["2"]);
  }, 60_000);

  test("a replica on a member no longer alive is shown as missing", async () => {
    const node = new TableNode({ members: 3, partitionCount: P, backupCount: 1 });
    const [a, b, c] = node.cluster.members().map((m) => m.id);
    const rows = Array.from({ length: P }, (_, p) => [[a, b], [b, c], [c, a]][p % 3]);
    node.table = table(rows);
    node.removeMember(c); // c is dead; the master has not published the repaired table yet
    const body = (await (await createHttpApp(node).request("/cluster")).json()).partitions;
    const expected = rows.flatMap((r, p) => (r.includes(c) ? [String(p)] : []));
    expect(body.replicasMissing).toBe(expected.length);
    const seen = await look(node);
    expect(seen.missingFigure).toBe(String(expected.length));
    expect(seen.missingCells).toEqual(expected);
  }, 60_000);
});

describe("the snapshot carries what the page needs to mark missing replicas", () => {
  test("filling backups, the live members and the wanted replica count are in the compact table", async () => {
    const node = new TableNode({ members: 3, partitionCount: P, backupCount: 1 });
    const [a, b, c] = node.cluster.members().map((m) => m.id);
    const rows = Array.from({ length: P }, (_, p) => [[a, b], [b, c], [c, a]][p % 3]);
    node.table = table(rows, new Map([[2, [a]]]));
    node.removeMember(c);
    const t = (await (await createHttpApp(node).request("/snapshot")).json()).table;
    expect(t.ids.slice(0, t.live)).toEqual([a, b]); // c is named by the table only
    expect(t.filling).toEqual([[2, [t.ids.indexOf(a)]]]);
    expect(t.wanted).toBe(2);
  });
});
