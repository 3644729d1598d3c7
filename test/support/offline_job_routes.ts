/**
 * The job REST routes on a real hono app over a JobService with no cluster behind it: a
 * member alone on a memory network, in virtual time, whose maps must not be touched. For
 * tests of what the routes refuse before any map access.
 */
import { Hono } from "hono";
import { VirtualClock } from "../../src/core/clock.ts";
import { silentLogger } from "../../src/core/log.ts";
import { Random } from "../../src/core/random.ts";
import type { ClusterView } from "../../src/cluster/view.ts";
import { JobService } from "../../src/jobs/job_service.ts";
import { mountJobRoutes } from "../../src/jobs/job_routes.ts";
import { MemoryNetwork } from "../../src/transport/memory.ts";
import { MessageRouter } from "../../src/transport/router.ts";

/**
 * Builds the app.
 * @returns the app, and the names of the maps the service asked for (each such request also throws)
 */
export function offlineJobRoutes(): { app: Hono; touched: string[] } {
  const clock = new VirtualClock();
  const rng = new Random(1);
  const router = new MessageRouter(new MemoryNetwork({ clock, rng }).attach("n1"));
  const view: ClusterView = {
    self: "n1",
    members: () => [],
    member: () => undefined,
    listed: () => false,
    master: () => undefined,
    isMaster: () => false,
    masterEpoch: 0,
    memberListVersion: 0,
    joined: false,
    subscribe: () => () => {},
  };
  const touched: string[] = [];
  const service = new JobService({
    self: "n1",
    view,
    getMap: (name) => {
      touched.push(name);
      throw new Error("no map access expected");
    },
    router,
    transport: router.transport,
    clock,
    rng,
    log: silentLogger,
  });
  const app = new Hono();
  mountJobRoutes(app, service);
  return { app, touched };
}
