/**
 * REST route of entry processors: `POST /maps/:map/:key/execute` with
 * `{ "processor": name, "arg"?: JSON }` runs the processor registered under that name on the
 * key's primary and answers `{ "result", "value" }` (the value after the call; null when the
 * entry is absent). Like the map routes, the key is the path segment as a string. It is a
 * write: it answers once the sync backups applied the change.
 */
import type { Hono } from "hono";
import { z } from "zod";
import { PROCESSOR_NAME } from "../map/entry_processor.ts";
import type { ShoalNode } from "../node_api.ts";
import { errorResponse, jsonError } from "./errors.ts";
import { readJsonBody } from "./json_body.ts";
import { maxKeyLength, maxMapNameLength } from "./map_routes.ts";
import { writeAnswer } from "./json_out.ts";

const ExecuteBody = z.object({
  processor: z.string().regex(PROCESSOR_NAME, "processor must be 1–64 of A–Z a–z 0–9 . _ -"),
  arg: z.unknown().optional(),
}).strict();

/** Adds `POST /maps/:map/:key/execute` to `app`. */
export function mountProcessorRoutes(app: Hono, node: ShoalNode): void {
  app.post("/maps/:map/:key/execute", async (c) => {
    const { map, key } = c.req.param();
    if (map.length === 0 || map.length > maxMapNameLength) {
      return jsonError(c, 400, `Map name must be 1 to ${maxMapNameLength} characters`, "INVALID_ARGUMENT");
    }
    if (key.length === 0 || key.length > maxKeyLength) {
      return jsonError(c, 400, `Key must be 1 to ${maxKeyLength} characters`, "INVALID_ARGUMENT");
    }
    const body = await readJsonBody(c);
    if (!body.ok) return body.response;
    const parsed = ExecuteBody.safeParse(body.value);
    if (!parsed.success) {
      const issue = parsed.error.issues[0];
      return jsonError(
        c,
        400,
        `Bad execute body: ${issue?.path.join(".") || "body"}: ${issue?.message}`,
        "INVALID_ARGUMENT",
      );
    }
    try {
      const { result, value } = await node.getMap<string, unknown>(map).executeOnKeyWithValue(
        key,
        parsed.data.processor,
        parsed.data.arg,
      );
      return writeAnswer(c, { result: result ?? null, value: value ?? null });
    } catch (err) {
      return errorResponse(c, err);
    }
  });
}
