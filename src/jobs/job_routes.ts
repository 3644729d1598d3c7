/**
 * The job REST routes, framework-free: each route is a method, a hono-style path and a
 * `(Request, params) → Response` handler, so the HTTP layer mounts them on its app
 * (`mountJobRoutes(app, service)` does it for any app with hono's `on(method, path, handler)`).
 *
 * - `POST /jobs` → 201 `{id}`; 400 with a message for a bad body; 409 for an id already used by another job
 * - `GET /jobs` → `[{id, name, status}]`
 * - `GET /jobs/:id` → `{id, name, status, tasks: [{id, state, worker, attempt, recordsWritten}], error?}` or 404
 * - `POST /jobs/:id/cancel` → 202 `{id, status}` or 404
 * - SeaTunnel REST v2 reads: `GET /overview`, `/running-jobs`, `/job-info/:jobId`, `/finished-jobs/:state`
 */
import { ShoalError } from "../core/errors.ts";
import { depthOf, maxJsonDepth, unstorable } from "../core/json_value.ts";
import { JobIdSchema } from "./job_definition.ts";
import type { JobService } from "./job_service.ts";
import { finishedJobs, finishedStates, jobInfo, overview, runningJobs } from "./seatunnel_api.ts";

/** Largest accepted request body. */
export const maxJobBodyBytes = 64 * 1024;

export interface JobRoute {
  method: "GET" | "POST";
  /** Hono-style path, e.g. `/jobs/:id`. */
  path: string;
  handle(req: Request, params: Record<string, string>): Promise<Response>;
}

/** JSON response helper. */
function json(body: unknown, status = 200): Response {
  return new Response(JSON.stringify(body), { status, headers: { "content-type": "application/json; charset=utf-8" } });
}

function errorResponse(err: unknown): Response {
  if (err instanceof ShoalError) {
    const status = err.code === "INVALID_ARGUMENT"
      ? 400
      : err.code === "NOT_FOUND"
      ? 404
      : err.code === "CONFLICT"
      ? 409
      : err.code === "TIMEOUT" || err.code === "UNREACHABLE" || err.code === "MEMBER_GONE" || err.code === "MIGRATING"
      ? 503
      : 500;
    return json({ error: err.message, code: err.code }, status);
  }
  // No internals in an error body (SECURITY.md): an unexpected error is reported by its code only.
  return json({ error: "internal error", code: "INTERNAL" }, 500);
}

async function readJson(req: Request): Promise<{ ok: true; body: unknown } | { ok: false; res: Response }> {
  const len = Number(req.headers.get("content-length") ?? "0");
  if (len > maxJobBodyBytes) {
    return { ok: false, res: json({ error: `body larger than ${maxJobBodyBytes} bytes` }, 413) };
  }
  const text = await req.text();
  if (new TextEncoder().encode(text).byteLength > maxJobBodyBytes) {
    return { ok: false, res: json({ error: `body larger than ${maxJobBodyBytes} bytes` }, 413) };
  }
  let body: unknown;
  try {
    body = JSON.parse(text);
  } catch {
    return { ok: false, res: json({ error: "body is not valid JSON" }, 400) };
  }
  const bad = depthOf(body) > maxJsonDepth ? `nests deeper than ${maxJsonDepth} levels` : unstorable(body);
  return bad ? { ok: false, res: json({ error: `body ${bad}`, code: "INVALID_ARGUMENT" }, 400) } : { ok: true, body };
}

function validId(id: string | undefined): id is string {
  return JobIdSchema.safeParse(id).success;
}

/** The job routes of `service`. */
export function jobRoutes(service: JobService): JobRoute[] {
  const guard = (h: JobRoute["handle"]): JobRoute["handle"] => async (req, params) => {
    try {
      return await h(req, params);
    } catch (err) {
      return errorResponse(err);
    }
  };
  return [
    {
      method: "POST",
      path: "/jobs",
      handle: guard(async (req) => {
        const r = await readJson(req);
        if (!r.ok) return r.res;
        if (typeof r.body !== "object" || r.body === null || Array.isArray(r.body)) {
          return json({ error: "body must be a JSON object" }, 400);
        }
        const { id, ...def } = r.body as Record<string, unknown>;
        if (id !== undefined && (typeof id !== "string" || !validId(id))) {
          return json({ error: "id: job id may hold only letters, digits, '.', '_' and '-' (1–100 characters)" }, 400);
        }
        const jobId = await service.submit(def, id as string | undefined);
        return json({ id: jobId }, 201);
      }),
    },
    { method: "GET", path: "/jobs", handle: guard(async () => json(await service.list())) },
    {
      method: "GET",
      path: "/jobs/:id",
      handle: guard(async (_req, p) => {
        const info = validId(p.id) ? await service.get(p.id) : undefined;
        return info ? json(info) : json({ error: `no job ${p.id}` }, 404);
      }),
    },
    {
      method: "POST",
      path: "/jobs/:id/cancel",
      handle: guard(async (_req, p) => {
        if (!validId(p.id)) return json({ error: `no job ${p.id}` }, 404);
        const status = await service.cancel(p.id);
        return json({ id: p.id, status }, 202);
      }),
    },
    { method: "GET", path: "/overview", handle: guard(async () => json(await overview(service))) },
    { method: "GET", path: "/running-jobs", handle: guard(async () => json(await runningJobs(service))) },
    {
      method: "GET",
      path: "/job-info/:jobId",
      handle: guard(async (_req, p) => json(validId(p.jobId) ? await jobInfo(service, p.jobId) : { jobId: p.jobId })),
    },
    { method: "GET", path: "/finished-jobs", handle: guard(async () => json(await finishedJobs(service))) },
    {
      method: "GET",
      path: "/finished-jobs/:state",
      handle: guard(async (_req, p) => {
        const state = p.state.toUpperCase();
        if (!(finishedStates as readonly string[]).includes(state)) {
          return json({ error: `state must be one of ${finishedStates.join(", ")}` }, 400);
        }
        return json(await finishedJobs(service, state));
      }),
    },
  ];
}

/** The part of a hono app `mountJobRoutes` uses. */
export interface RouteHost {
  // deno-lint-ignore no-explicit-any
  on(method: string, path: string, handler: (c: any) => Response | Promise<Response>): unknown;
}

/**
 * Mounts the job routes on a hono app.
 * @example
 * ```ts
 * const app = new Hono();
 * mountJobRoutes(app, jobService);
 * ```
 */
export function mountJobRoutes(app: RouteHost, service: JobService): void {
  for (const r of jobRoutes(service)) {
    app.on(
      r.method,
      r.path,
      (c: { req: { raw: Request; param(): Record<string, string> } }) => r.handle(c.req.raw, c.req.param()),
    );
  }
}
