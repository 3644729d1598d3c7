/**
 * The dashboard page's `joinOrder` map (the browser script in src/http/dashboard.ts, which picks
 * each member's colour) got an entry for every member id any snapshot ever listed and never
 * forgot one: a tab left open through days of rolling restarts (every restarted member has a
 * new random id) kept one entry per member that ever joined (found by an internal review). It
 * now keeps the 256 seen last.
 *
 * The page's script is run with a stub DOM (a Proxy that accepts any call), and `render` is
 * fed snapshots of a 3-member cluster whose members are replaced one at a time.
 */
import { expect, test } from "bun:test";
import { dashboardHtml } from "../src/http/dashboard.ts";

function stub(): unknown {
  const target = function () {} as unknown as Record<string | symbol, unknown>;
  const p: unknown = new Proxy(target, {
    get(t, k) {
      if (k === Symbol.toPrimitive) return () => "";
      if (k === Symbol.iterator) return function* () {};
      if (k === "then") return undefined;
      if (k in t && k !== "prototype" && k !== "length" && k !== "name") return t[k];
      return p;
    },
    set(t, k, v) {
      t[k] = v;
      return true;
    },
    apply: () => p,
    construct: () => p as object,
  });
  return p;
}

function loadPage(): { render(s: unknown): void; joinOrder: Map<string, number> } {
  const html = dashboardHtml();
  const scripts = [...html.matchAll(/<script[^>]*>([\s\S]*?)<\/script>/g)].map((m) => m[1]);
  const script = scripts.find((s) => s.includes("joinOrder"));
  if (!script) throw new Error("dashboard script not found");
  const never = () => new Promise(() => {});
  const fn = new Function(
    "document",
    "fetch",
    "setTimeout",
    "localStorage",
    "sessionStorage",
    "location",
    "window",
    script.replace(/^\s*"use strict";/, "") + "\n;return { render, joinOrder };",
  );
  return fn(stub(), never, () => 0, stub(), stub(), stub(), stub());
}

function snapshot(ids: string[], joinedAt: Map<string, number>): unknown {
  const members = ids.map((id) => ({ id, name: id, runtime: "bun", lite: false, joinedAt: joinedAt.get(id)! }));
  const P = 8;
  return {
    cluster: {
      cluster: "c",
      self: ids[0],
      master: ids[0],
      epoch: 1,
      memberListVersion: 1,
      partitionTableVersion: 1,
      members,
      links: [],
      partitions: { replicasMissing: 0, migrating: 0, owners: {} },
    },
    table: {
      ids,
      live: ids.length,
      wanted: 2,
      replicas: Array.from({ length: P }, (_, p) => [p % ids.length, (p + 1) % ids.length]),
      migrating: [],
      filling: [],
    },
    maps: [],
  };
}

test("the dashboard forgets departed members' join order (bounded under 1,000 restarts)", () => {
  const page = loadPage();
  const joinedAt = new Map<string, number>();
  let next = 1;
  const ids: string[] = [];
  for (let i = 0; i < 3; i++) {
    const id = `member-${next}`;
    joinedAt.set(id, next++);
    ids.push(id);
  }
  page.render(snapshot(ids, joinedAt));
  const CYCLES = 1000;
  for (let c = 0; c < CYCLES; c++) {
    // A rolling restart: the member after the first is replaced by one with a new id.
    const i = 1 + (c % 2);
    joinedAt.delete(ids[i]);
    const id = `member-${next}`;
    joinedAt.set(id, next++);
    ids[i] = id;
    page.render(snapshot(ids, joinedAt));
  }
  // 3 members at any time; 1,003 ever seen. Anything up to a few dozen would do.
  expect(page.joinOrder.size).toBeLessThanOrEqual(256);
});
