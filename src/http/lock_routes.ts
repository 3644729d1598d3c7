/**
 * REST routes of per-key locks (locks.ts), writes as far as tokens go (a read-only token
 * gets 403 on the POSTs):
 * - `POST /maps/:map/:key/lock` with `{ "owner", "leaseMs"?, "timeoutMs"? }` → 200
 *   `{ "token" }` once held by this member + `owner`, or 423 `{ "code": "LOCKED" }` when
 *   another owner still holds it after `timeoutMs` (≤ 25,000, default 0). A client that hangs
 *   up while waiting gives up its place; if the lock was granted meanwhile it is released.
 * - `POST /maps/:map/:key/unlock` with `{ "owner" }` → 200 `{}`, or 409 `CONFLICT` when this
 *   member + `owner` does not hold it.
 * - `GET /maps/:map/:key/lock` → `{ "locked" }`.
 * A lock taken over REST belongs to the member that served the call, like one taken through
 * the API there: writes to the key through that member pass, through others get 423.
 */
import type { Context, Hono } from "hono";
import { z } from "zod";
import { MAX_EXPIRY_MS } from "../map/map_config.ts";
import type { ShoalNode } from "../node_api.ts";
import { jsonError } from "./errors.ts";
import { readJsonBody } from "./json_body.ts";
import { keyRoute } from "./map_routes.ts";
import { MAX_HTTP_WAIT_MS } from "./queue_routes.ts";

const Owner = z.string().min(1).max(128);
const LockBody = z.object({
  owner: Owner,
  leaseMs: z.number().int().min(0).max(MAX_EXPIRY_MS).optional(),
  timeoutMs: z.number().int().min(0).max(MAX_HTTP_WAIT_MS).optional(),
}).strict();
const UnlockBody = z.object({ owner: Owner }).strict();

/** The validated body, or the 400 answer. */
async function parseBody<T>(c: Context, schema: z.ZodType<T>): Promise<T | Response> {
  const body = await readJsonBody(c);
  if (!body.ok) return body.response;
  const parsed = schema.safeParse(body.value);
  if (parsed.success) return parsed.data;
  const issue = parsed.error.issues[0];
  return jsonError(c, 400, `Bad lock body: ${issue?.path.join(".") || "body"}: ${issue?.message}`, "INVALID_ARGUMENT");
}

/** Adds the lock routes to `app`. */
export function mountLockRoutes(app: Hono, node: ShoalNode): void {
  app.post(
    "/maps/:map/:key/lock",
    keyRoute(async (c, map, key) => {
      const m = node.getMap<string, unknown>(map);
      const b = await parseBody(c, LockBody);
      if (b instanceof Response) return b;
      const signal = c.req.raw.signal;
      const token = await m.tryLock(key, { owner: b.owner, leaseMs: b.leaseMs, timeoutMs: b.timeoutMs ?? 0, signal });
      if (token !== undefined && signal.aborted) {
        // Nobody is left to receive the token or to unlock; nobody reads this answer either.
        await m.unlock(key, { owner: b.owner });
        return c.body(null, 204);
      }
      if (token === undefined) {
        return jsonError(c, 423, `Key "${key}" of map "${map}" is locked by another owner`, "LOCKED");
      }
      return c.json({ token });
    }),
  );

  app.post(
    "/maps/:map/:key/unlock",
    keyRoute(async (c, map, key) => {
      const b = await parseBody(c, UnlockBody);
      if (b instanceof Response) return b;
      await node.getMap<string, unknown>(map).unlock(key, { owner: b.owner });
      return c.json({});
    }),
  );

  app.get(
    "/maps/:map/:key/lock",
    keyRoute(async (c, map, key) => c.json({ locked: await node.getMap<string, unknown>(map).isLocked(key) })),
  );
}
