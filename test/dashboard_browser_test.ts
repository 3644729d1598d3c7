/**
 * The dashboard in a real browser against a real cluster: three member processes
 * (`bun run mod.ts node`, linked over WebRTC), a map loaded and a job running; headless
 * Debian Chromium driven by playwright-core loads `/` from one member, sees 3 members and
 * 271 partition cells coloured by their owners, then another member is killed with
 * SIGKILL and the page shows 2 members and no cell owned by the dead one.
 *
 * The screenshot goes to docs/dashboard.png only with SHOAL_SAVE_SCREENSHOT=1 (so a test
 * run leaves the tree clean); otherwise to a temporary directory.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { existsSync, mkdirSync, mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { Browser } from "playwright-core";
import { killAll, type Member, root, startMember } from "./support/cluster.ts";
import { chromiumPath, hasChromium, launchChromium } from "./support/chromium.ts";
import { until } from "./support/until.ts";

const saveToDocs = process.env.SHOAL_SAVE_SCREENSHOT === "1";

if (!hasChromium) {
  console.warn(
    `SKIPPED dashboard browser test: ${chromiumPath} is missing (install it with: apt-get install -y chromium)`,
  );
}

describe.skipIf(!hasChromium)("dashboard in headless Chromium against a 3-member cluster", () => {
  let browser: Browser | undefined;
  let a: Member, b: Member, c: Member;
  let jobId = "";

  beforeAll(async () => {
    const secret = "dashboard-browser-test";
    const args = ["--log-level", "warn"];
    a = await startMember({ name: "dash-a", runtime: "bun", secret, args });
    b = await startMember({ name: "dash-b", runtime: "bun", secret, join: a.url, args });
    c = await startMember({ name: "dash-c", runtime: "bun", secret, join: a.url, args });
    await until(
      async () => {
        const v = await a.json<{ members: unknown[]; partitions: { replicasMissing: number; migrating: number } }>(
          "/cluster",
        );
        return v.members.length === 3 && v.partitions.replicasMissing === 0 && v.partitions.migrating === 0
          ? v
          : undefined;
      },
      90_000,
      "3 members, every partition backed up",
    );
    // A map to show, written through all three members.
    await Promise.all(Array.from({ length: 200 }, async (_, i) => {
      const m = [a, b, c][i % 3];
      const res = await fetch(`${m.url}/maps/orders/${i}`, {
        method: "PUT",
        headers: { "content-type": "application/json" },
        body: JSON.stringify({ amount: i }),
      });
      if (!res.ok) throw new Error(`PUT orders/${i}: ${res.status} ${await res.text()}`);
    }));
    // A job slow enough to be running while the page is looked at.
    const res = await fetch(`${b.url}/jobs`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({
        name: "sequence → map",
        source: { type: "sequence", count: 12_000, parallelism: 3, ratePerSecond: 200 },
        sink: { type: "map", map: "out" },
        checkpointIntervalMs: 500,
      }),
    });
    expect(res.status).toBe(201);
    jobId = (await res.json()).id;
    browser = await launchChromium();
  }, 180_000);

  afterAll(async () => {
    await browser?.close();
    killAll();
  });

  test("shows 3 members and 271 partition cells, then 2 members within seconds of a kill -9", async () => {
    const page = await browser!.newPage({ viewport: { width: 1280, height: 860 } });
    await page.goto(a.url + "/");
    const cells = '[data-testid="partition-cell"]';
    await page.waitForFunction((sel) => document.querySelectorAll(sel).length === 271, cells, { timeout: 20_000 });
    await page.waitForFunction(() => document.querySelectorAll('[data-testid="member"]').length === 3, undefined, {
      timeout: 20_000,
    });
    expect(await page.locator(cells).count()).toBe(271);
    expect(await page.locator('[data-testid="member"]').count()).toBe(3);
    expect(await page.locator('[data-testid="member"][data-master="true"]').getAttribute("data-member-id")).toBe(a.id);
    expect(await page.locator('[data-testid="connection-status"]').getAttribute("data-state")).toBe("live");
    // Every cell is coloured by one of the three real members, and each owns a share.
    const owned = await Promise.all([a, b, c].map((m) => page.locator(`${cells}[data-owner="${m.id}"]`).count()));
    expect(owned.reduce((x, y) => x + y, 0)).toBe(271);
    for (const n of owned) expect(n).toBeGreaterThan(60);
    await page.waitForSelector('[data-testid="map-row"][data-map="orders"]', { timeout: 20_000 });
    await page.waitForSelector(`[data-testid="job-row"][data-job-id="${jobId}"][data-status="RUNNING"]`, {
      timeout: 30_000,
    });
    // Let the job show some progress before the picture is taken.
    await page.waitForFunction(
      (id) =>
        /^[1-9]\d* records/.test(
          document.querySelector(`[data-testid="job-row"][data-job-id="${id}"] .mono`)?.textContent ?? "",
        ),
      jobId,
      { timeout: 30_000 },
    );

    const dir = saveToDocs ? join(root, "docs") : mkdtempSync(join(tmpdir(), "shoal-dashboard-"));
    mkdirSync(dir, { recursive: true });
    await page.screenshot({ path: join(dir, "dashboard.png"), fullPage: true });
    expect(existsSync(join(dir, "dashboard.png"))).toBe(true);

    // kill -9 a member the page is not served by.
    c.kill9();
    await page.waitForFunction(() => document.querySelectorAll('[data-testid="member"]').length === 2, undefined, {
      timeout: 20_000,
    });
    expect(await page.locator('[data-testid="member-count"]').textContent()).toBe("2");
    expect(await page.locator(`[data-testid="member"][data-member-id="${c.id}"]`).count()).toBe(0);
    // The grid repaints: the dead member's partitions get new primaries (promoted backups).
    await page.waitForFunction((sel) => document.querySelectorAll(sel).length === 0, `${cells}[data-owner="${c.id}"]`, {
      timeout: 30_000,
    });
    expect(await page.locator(cells).count()).toBe(271);
    const after = await Promise.all([a, b].map((m) => page.locator(`${cells}[data-owner="${m.id}"]`).count()));
    expect(after[0] + after[1]).toBe(271);
    expect(await page.locator('[data-testid="connection-status"]').getAttribute("data-state")).toBe("live");
    await page.close();
  }, 180_000);
});
