/**
 * The dashboard in a real browser: headless Debian Chromium driven by playwright-core loads
 * `/` from a served node, sees every member and 271 partition cells, then a member goes
 * away and the page repaints. Saves a screenshot to docs/dashboard.png.
 *
 * The node here is the in-process test node behind the real HTTP app and server; the
 * cluster-level version of this check (3 real members, one killed) belongs with the
 * multi-process tests.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { existsSync, mkdirSync } from "node:fs";
import { type Browser, chromium } from "playwright-core";
import { createHttpApp } from "../src/http/app.ts";
import { serve, type Served } from "../src/runtime/serve.ts";
import { createTestNode, type TestNode } from "./support/test_node.ts";

const chromiumPath = "/usr/bin/chromium";
const hasChromium = existsSync(chromiumPath);
const root = `${import.meta.dir}/..`;

if (!hasChromium) {
  console.warn(`SKIPPED dashboard browser test: ${chromiumPath} is missing (install it with: apt-get install -y chromium)`);
}

describe.skipIf(!hasChromium)("dashboard in headless Chromium", () => {
  let browser: Browser;
  let server: Served;
  let node: TestNode;
  const abort = new AbortController();

  beforeAll(async () => {
    node = createTestNode({ members: 3 });
    node.migrating.set(5, "m-peer0002");
    const app = createHttpApp(node, {
      signal: abort.signal,
      sseIntervalMs: 500,
      extraRoutes: (a) => {
        a.get("/jobs", (c) => c.json([{ id: "job-1", name: "sequence → map", status: "RUNNING" }]));
        a.get("/jobs/:id", (c) =>
          c.json({
            id: c.req.param("id"),
            name: "sequence → map",
            status: "RUNNING",
            tasks: [
              { id: "t0", state: "FINISHED", worker: node.id, attempt: 0, recordsWritten: 2000 },
              { id: "t1", state: "RUNNING", worker: "m-peer0001", attempt: 0, recordsWritten: 1200 },
              { id: "t2", state: "RUNNING", worker: "m-peer0002", attempt: 1, recordsWritten: 800 },
            ],
          }));
      },
    });
    const orders = node.getMap<string, unknown>("orders");
    for (let i = 0; i < 120; i++) await orders.set(String(i), { amount: i });
    await node.getMap<string, unknown>("out").set("42", { id: 42 });
    server = await serve({ hostname: "127.0.0.1", port: 0, fetch: app.fetch });
    browser = await chromium.launch({
      executablePath: chromiumPath,
      args: [
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
      ],
    });
  }, 60_000);

  afterAll(async () => {
    await browser?.close();
    abort.abort();
    await server?.close();
  });

  test("shows every member and 271 partition cells, and repaints when a member goes away", async () => {
    const page = await browser.newPage({ viewport: { width: 1280, height: 860 } });
    await page.goto(server.url + "/");
    await page.waitForFunction(() => document.querySelectorAll('[data-testid="partition-cell"]').length === 271, undefined, { timeout: 10_000 });
    expect(await page.locator('[data-testid="partition-cell"]').count()).toBe(271);
    expect(await page.locator('[data-testid="member"]').count()).toBe(3);
    expect(await page.locator('[data-testid="member"][data-master="true"]').getAttribute("data-member-id")).toBe(node.id);
    expect(await page.locator('[data-testid="connection-status"]').getAttribute("data-state")).toBe("live");
    expect(await page.locator('[data-testid="partition-cell"][data-owner="m-peer0002"]').count()).toBe(90);
    expect(await page.locator(".cell.migrating").count()).toBe(1);
    await page.waitForFunction(() => document.querySelectorAll('[data-testid="map-row"]').length === 2, undefined, { timeout: 5_000 });
    await page.waitForSelector('[data-testid="job-row"]', { timeout: 5_000 });

    mkdirSync(`${root}/docs`, { recursive: true });
    await page.screenshot({ path: `${root}/docs/dashboard.png`, fullPage: true });

    node.migrating.clear();
    node.removeMember("m-peer0002");
    await page.waitForFunction(() => document.querySelectorAll('[data-testid="member"]').length === 2, undefined, { timeout: 5_000 });
    expect(await page.locator('[data-testid="partition-cell"][data-owner="m-peer0002"]').count()).toBe(0);
    expect(await page.locator('[data-testid="partition-cell"]').count()).toBe(271);
    expect(await page.locator('[data-testid="member-count"]').textContent()).toBe("2");

    node.removeMember(node.id);
    await page.waitForFunction(
      () => document.querySelector('[data-testid="member"][data-master="true"]')?.getAttribute("data-member-id") === "m-peer0001",
      undefined,
      { timeout: 5_000 },
    );
    await page.close();
  }, 60_000);
});
