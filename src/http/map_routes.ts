/**
 * REST routes of the IMap: `GET|PUT|DELETE /maps/:map/:key` (`PUT ?ttl=MS&maxIdle=MS` sets
 * the entry's expiry; absent = the map's default, 0 = never), `GET /maps/:map`, `GET /maps`
 * and `GET /maps/:map/events` (map_events.ts). Keys are the URL path segment as a string;
 * values are JSON. Writes answer only after the map acknowledged them (after the sync
 * backups applied them).
 */
import type { Context, Hono } from "hono";
import type { ShoalNode } from "../node_api.ts";
import { MAX_EXPIRY_MS } from "../map/map_config.ts";
import { errorResponse, jsonError } from "./errors.ts";
import { readJsonBody } from "./json_body.ts";
import { queryOnce, wholeNumber } from "./params.ts";
import { mountMapEventRoutes } from "./map_events.ts";
import type { MapSizeCache } from "./map_sizes.ts";
import { jsonText, writeAnswer } from "./json_out.ts";

/** Longest map name accepted. */
export const maxMapNameLength = 256;
/** Longest key accepted (characters). */
export const maxKeyLength = 4096;

export function checkNames(c: Context, map: string, key?: string): Response | undefined {
  if (map.length === 0 || map.length > maxMapNameLength) {
    return jsonError(c, 400, `Map name must be 1 to ${maxMapNameLength} characters`, "INVALID_ARGUMENT");
  }
  if (key !== undefined && (key.length === 0 || key.length > maxKeyLength)) {
    return jsonError(c, 400, `Key must be 1 to ${maxKeyLength} characters`, "INVALID_ARGUMENT");
  }
  return undefined;
}

/**
 * A route on one key of a map: checks the names, runs `handle`, and answers its errors as
 * HTTP errors.
 */
export function keyRoute(handle: (c: Context, map: string, key: string) => Promise<Response>) {
  return async (c: Context): Promise<Response> => {
    const { map, key } = c.req.param();
    const bad = checkNames(c, map, key);
    if (bad) return bad;
    try {
      return await handle(c, map, key);
    } catch (err) {
      return errorResponse(c, err);
    }
  };
}

/**
 * Adds the map routes to `app`.
 * @param app the hono app
 * @param node the node whose maps are served
 * @param sizes cache used by `GET /maps`
 */
export function mountMapRoutes(app: Hono, node: ShoalNode, sizes: MapSizeCache, keepaliveMs: number): void {
  app.get("/maps", async (c) => {
    await sizes.refresh();
    return c.json(sizes.current());
  });

  app.get("/maps/:map", async (c) => {
    const map = c.req.param("map");
    const bad = checkNames(c, map);
    if (bad) return bad;
    try {
      return c.json({ name: map, size: await node.getMap(map).size() });
    } catch (err) {
      return errorResponse(c, err);
    }
  });

  // Before /maps/:map/:key: a key named "events" is reached through the IMap API only.
  mountMapEventRoutes(app, node, keepaliveMs);

  app.get(
    "/maps/:map/:key",
    keyRoute(async (c, map, key) => {
      const value = await node.getMap<string, unknown>(map).get(key);
      if (value === undefined) return jsonError(c, 404, `No entry for key "${key}" in map "${map}"`, "NOT_FOUND");
      // A value stored through the IMap API that JSON cannot express (a BigInt) answered 500.
      const body = jsonText({ value });
      if (body === undefined) {
        return jsonError(c, 422, `The value of key "${key}" cannot be written as JSON`, "UNREPRESENTABLE");
      }
      return c.body(body, 200, { "Content-Type": "application/json" });
    }),
  );

  app.put(
    "/maps/:map/:key",
    keyRoute(async (c, map, key) => {
      const expiry: { ttlMs?: number; maxIdleMs?: number } = {};
      for (const [q, field] of [["ttl", "ttlMs"], ["maxIdle", "maxIdleMs"]] as const) {
        const raw = queryOnce(c, q);
        if (raw instanceof Response) return raw;
        if (raw === undefined) continue;
        const ms = wholeNumber(raw, 0, MAX_EXPIRY_MS);
        if (ms === null) {
          return jsonError(
            c,
            400,
            `${q} must be a whole number of milliseconds from 0 to ${MAX_EXPIRY_MS}`,
            "INVALID_ARGUMENT",
          );
        }
        expiry[field] = ms;
      }
      const body = await readJsonBody(c);
      if (!body.ok) return body.response;
      const previous = await node.getMap<string, unknown>(map).put(key, body.value, expiry);
      return writeAnswer(c, { previous: previous ?? null });
    }),
  );

  app.delete(
    "/maps/:map/:key",
    keyRoute(async (c, map, key) => {
      const previous = await node.getMap<string, unknown>(map).remove(key);
      return writeAnswer(c, { previous: previous ?? null });
    }),
  );
}
