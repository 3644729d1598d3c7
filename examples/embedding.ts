/**
 * Embedding Shoal in your own Deno or Bun app: start a member with `startNode()` and use
 * the distributed map (`IMap`) directly — no separate server process.
 *
 *     bun run examples/embedding.ts
 *     deno run -A examples/embedding.ts
 *
 * Alone it starts a one-member cluster. To run it as a member of an existing cluster, give
 * that cluster's join URL and secret:
 *
 *     SHOAL_JOIN=http://127.0.0.1:5701 SHOAL_SECRET=… bun run examples/embedding.ts
 *
 * Exits 0 when every step worked, 1 otherwise.
 */
import process from "node:process"; // Deno and Bun both provide it
import { type IMap, startNode } from "../mod.ts";

const env = (name: string): string | undefined => process.env[name];

interface Session {
  user: string;
  cart: string[];
  visits: number;
}

function check(cond: unknown, what: string): asserts cond {
  if (!cond) throw new Error(`check failed: ${what}`);
}

/**
 * Adds `item` to a session's cart. replace(key, expected, value) succeeds only if the entry
 * still equals `expected`, which makes read-modify-write safe when several members (or
 * several calls) update one key at once: a lost race just reads again and retries.
 */
async function addToCart(sessions: IMap<string, Session>, id: string, item: string): Promise<void> {
  for (;;) {
    const current = await sessions.get(id);
    if (!current) throw new Error(`no session ${id}`);
    const next = { ...current, cart: [...current.cart, item], visits: current.visits + 1 };
    if (await sessions.replace(id, current, next)) return;
  }
}

const join = env("SHOAL_JOIN");
const node = await startNode({
  name: "embedded-app",
  secret: env("SHOAL_SECRET") ?? "embedding-example",
  join: join ? [join] : [],
  // Port 0: any free port. Pass `http: false` for a member that serves no HTTP at all.
  http: "127.0.0.1:0",
  logLevel: "warn",
});
let code = 0;
try {
  console.log(
    `member ${node.id} joined cluster "${node.clusterName}" (${node.membership.members().length} member(s)); REST and dashboard at ${node.httpUrl}`,
  );

  // A typed handle on a cluster-wide map. Keys and values are anything CBOR can encode.
  const sessions: IMap<string, Session> = node.getMap<string, Session>("sessions");

  // set / get: set() answers once the primary and its synchronous backup applied the write.
  await sessions.set("s-1", { user: "ada", cart: [], visits: 1 });
  console.log("get s-1 →", await sessions.get("s-1"));

  // put returns the previous value; putIfAbsent writes only when the key is free.
  const previous = await sessions.put("s-1", { user: "ada", cart: ["book"], visits: 2 });
  check(previous?.visits === 1, "put returns the previous value");
  check(
    (await sessions.putIfAbsent("s-1", { user: "eve", cart: [], visits: 1 }))?.user === "ada",
    "putIfAbsent keeps the existing entry",
  );
  check(
    await sessions.putIfAbsent("s-2", { user: "bob", cart: [], visits: 1 }) === undefined,
    "putIfAbsent writes a free key",
  );

  // Compare-and-set (see addToCart below) keeps concurrent read-modify-writes from losing updates.
  await Promise.all([
    addToCart(sessions, "s-1", "pen"),
    addToCart(sessions, "s-1", "lamp"),
    addToCart(sessions, "s-1", "mug"),
  ]);
  const s1 = await sessions.get("s-1");
  check(s1?.cart.length === 4 && s1.visits === 5, `every concurrent update applied once (got ${JSON.stringify(s1)})`);
  console.log("after 3 concurrent compare-and-set updates →", s1);

  // Bulk operations and iteration.
  await sessions.putAll(
    Array.from(
      { length: 50 },
      (_, i) => [`guest-${i}`, { user: `guest${i}`, cart: [], visits: 0 }] as [string, Session],
    ),
  );
  const some = await sessions.getAll(["s-1", "s-2", "guest-7", "nobody"]);
  check(some.size === 3 && !some.has("nobody"), "getAll returns only present keys");
  let guests = 0;
  for await (const [key] of sessions.entries()) if (key.startsWith("guest-")) guests++;
  check(guests === 50, `iteration sees every guest (saw ${guests})`);
  console.log(
    `size ${await sessions.size()}, guests seen by iteration ${guests}, containsKey(s-2) ${await sessions.containsKey(
      "s-2",
    )}`,
  );

  // remove returns the old value; remove(key, expected) removes only a matching entry.
  check((await sessions.remove("s-2"))?.user === "bob", "remove returns the old value");
  check(
    !(await sessions.remove("s-1", { user: "ada", cart: [], visits: 0 })),
    "conditional remove of a stale value fails",
  );
  console.log(`after removes: size ${await sessions.size()}`);

  // The same map over REST, as any other process would see it.
  const res = await fetch(`${node.httpUrl}/maps/sessions/s-1`);
  const body = await res.json();
  check(res.ok && body.value.visits === 5, "REST reads what the API wrote");
  console.log(`GET ${node.httpUrl}/maps/sessions/s-1 →`, JSON.stringify(body));

  if (!join) await sessions.destroy();
} catch (err) {
  console.error(`embedding example FAILED: ${(err as Error).stack ?? err}`);
  code = 1;
} finally {
  // Graceful leave: partitions move to the other members before this one goes.
  await node.shutdown();
}
process.exit(code);
