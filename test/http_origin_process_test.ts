/**
 * A web page cannot use a member's API through the operator's browser (src/http/origin_check.ts).
 * A member started the documented way (loopback `--http`, no `--token`) checked neither
 * `Origin` nor `Host`: any page the operator visited could write to it with "simple"
 * cross-origin requests (CSRF: a queue item, a topic message, a job), and a DNS-rebinding page
 * could read it (found by an internal review). Real Bun member, real Chromium.
 */
import { afterAll, expect, test } from "bun:test";
import { connect } from "node:net";
import { killAll, startMember } from "./support/cluster.ts";
import { launchChromium } from "./support/chromium.ts";

afterAll(() => killAll());

test("a page on another origin cannot write to a loopback member without a token (CSRF)", async () => {
  const a = await startMember({ name: "csrf-a", runtime: "bun", secret: "s", args: ["--log-level", "warn"] });
  const evil = Bun.serve({
    hostname: "127.0.0.1",
    port: 0,
    fetch: () =>
      new Response(
        `<!doctype html><script>
          const v = ${JSON.stringify(a.url)};
          const post = (p, b) => fetch(v + p, { method: "POST", mode: "no-cors", body: b });
          Promise.all([
            post("/queues/pwned", '{"from":"evil page"}'),
            post("/topics/pwned", '{"from":"evil page"}'),
            post("/jobs", JSON.stringify({ id: "evil-job", name: "evil", source: { type: "sequence", count: 10, parallelism: 1, ratePerSecond: 100 }, sink: { type: "map", map: "pwned-by-job" }, checkpointIntervalMs: 500 })),
          ]).then(() => document.title = "done", () => document.title = "failed");
        </script>`,
        { headers: { "content-type": "text/html" } },
      ),
  });
  const browser = await launchChromium();
  try {
    const page = await browser.newPage();
    await page.goto(`http://127.0.0.1:${evil.port}/`); // another origin than the member
    await page.waitForFunction(() => document.title === "done" || document.title === "failed", undefined, {
      timeout: 20_000,
    });
  } finally {
    await browser.close();
    evil.stop(true);
  }
  const q = await (await fetch(a.url + "/queues/pwned")).json();
  const job = await fetch(a.url + "/jobs/evil-job");
  // The page's writes were refused; the member's own clients (no Origin) still write.
  expect(q.size).toBe(0);
  expect(job.status).toBe(404);
  expect((await fetch(a.url + "/queues/pwned", { method: "POST", body: '"mine"' })).status).toBe(201);
}, 120_000);

test("a request naming another Host (DNS rebinding) is refused by a member on loopback", async () => {
  const a = await startMember({ name: "rebind-a", runtime: "bun", secret: "s", args: ["--log-level", "warn"] });
  await fetch(a.url + "/maps/secrets/k", { method: "PUT", body: '"top secret"' });
  const port = Number(new URL(a.url).port);
  const raw = await new Promise<string>((resolve, reject) => {
    const s = connect(
      port,
      "127.0.0.1",
      () =>
        s.write(
          "GET /maps/secrets/k HTTP/1.1\r\nHost: attacker.example:" + port + "\r\nOrigin: http://attacker.example:" +
            port + "\r\nConnection: close\r\n\r\n",
        ),
    );
    let buf = "";
    s.on("data", (d) => (buf += d));
    s.on("end", () => resolve(buf));
    s.on("error", reject);
  });
  expect(raw.startsWith("HTTP/1.1 403")).toBe(true);
  expect(raw).not.toContain("top secret");
  // Its own loopback name is served.
  expect(await (await fetch(a.url.replace("127.0.0.1", "localhost") + "/maps/secrets/k")).json()).toEqual({
    value: "top secret",
  });
}, 120_000);
