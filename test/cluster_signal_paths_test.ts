/**
 * SignalPaths (src/cluster/signal_paths.ts): which signaling endpoints a member opens so that
 * no member is stranded when its seed dies, driven tick by tick over plain connections (the
 * simulator's and a node's are the same shape; here they are records the test flips).
 */
import { describe, expect, test } from "bun:test";
import { type EndpointConnection, SignalPaths } from "../src/cluster/signal_paths.ts";
import type { MemberInfo } from "../src/cluster/view.ts";
import { silentLogger } from "../src/core/log.ts";

interface Conn extends EndpointConnection {
  connected: boolean;
  listed: string[];
  closed: boolean;
}

const conn = (listed: string[]): Conn => ({
  connected: true,
  listed,
  closed: false,
  peers() {
    return this.listed;
  },
  close() {
    this.closed = true;
  },
});

const member = (id: string): MemberInfo => ({
  id,
  name: id,
  runtime: "sim",
  joinedAt: 1,
  lite: false,
  incarnation: 0,
  urls: [`mem://${id}`],
});

/** A member "d" with a join-URL connection and its own endpoint, members b and c, and a clock the test moves. */
function setup() {
  const world = {
    now: 0,
    linked: new Set<string>(),
    seedServer: conn(["b", "c"]),
    ownEndpoint: conn([]),
    opened: new Map<string, Conn>(),
    retried: [] as string[],
    serverLost: [] as string[],
    /** Connections to the endpoint of a member suspected here. */
    suspect: new Set<Conn>(),
  };
  const paths = new SignalPaths<Conn>({
    self: "d",
    log: silentLogger,
    members: () => ["b", "c", "d"].map(member),
    isLinked: (id) => world.linked.has(id),
    fixed: () => [world.seedServer, world.ownEndpoint],
    suspectServer: (c) => world.suspect.has(c),
    open: (url) => {
      const c = conn([url.slice("mem://".length)]);
      world.opened.set(url, c);
      return Promise.resolve(c);
    },
    retryLink: (id, serverLost) => {
      world.retried.push(id);
      if (serverLost) world.serverLost.push(id);
    },
    now: () => world.now,
  });
  const tick = async (ms: number) => {
    world.now += ms;
    paths.tick();
    await Promise.resolve();
  };
  return { world, paths, tick };
}

describe("SignalPaths", () => {
  test("opens the own endpoint of a member no open server lists (the seed's died), then asks to link", async () => {
    const { world, paths, tick } = setup();
    await tick(250);
    expect(world.opened.size).toBe(0); // the seed's server lists b and c
    world.seedServer.connected = false; // the seed died with its server
    await tick(250);
    expect([...world.opened.keys()].sort()).toEqual(["mem://b", "mem://c"]);
    expect(world.retried.sort()).toEqual(["b", "c"]);
    // Attempts through the dead server are given up however young.
    expect(world.serverLost.sort()).toEqual(["b", "c"]);
    expect(paths.endpointOf("b")).toBe(world.opened.get("mem://b")!);
  });

  test("asks to link at once when an unlinked member is reached through another server", async () => {
    const { world, tick } = setup();
    await tick(250);
    world.seedServer.connected = false;
    world.ownEndpoint.listed = ["b"]; // b registered at this member's own endpoint
    await tick(250);
    // b through the endpoint it moved to; c once its own endpoint opened.
    expect(world.retried).toEqual(["b", "c"]);
    expect([...world.opened.keys()]).toEqual(["mem://c"]);
  });

  test("a member still unlinked 1.5 s while another server lists it gets a path to its own endpoint", async () => {
    const { world, paths, tick } = setup();
    world.linked.add("c");
    await tick(250);
    await tick(1000);
    expect(world.opened.size).toBe(0);
    await tick(600);
    expect([...world.opened.keys()]).toEqual(["mem://b"]);
    expect(paths.endpointOf("b")).toBe(world.opened.get("mem://b")!);
    expect(world.retried).toEqual(["b"]);
    // Its server is alive: an attempt through it is left alone unless it is old.
    expect(world.serverLost).toEqual([]);
  });

  test("a signal goes back the way its peer's last signal came, not into a server that froze", () => {
    const { world, paths } = setup();
    world.ownEndpoint.listed = ["b"];
    // The seed froze: its WebSocket stays open and its peer list stale, so it still lists b.
    expect(paths.route("b")).toBe(world.seedServer);
    paths.arrived("b", world.ownEndpoint);
    expect(paths.route("b")).toBe(world.ownEndpoint);
    // Suspected here, the seed's server is no route at all.
    paths.arrived("b", world.seedServer);
    world.suspect.add(world.seedServer);
    expect(paths.route("b")).toBe(world.ownEndpoint);
  });

  test("an attempt signalled through a server that closes is made again once a live route exists", async () => {
    const { world, paths, tick } = setup();
    world.linked.add("c");
    paths.sent("b", world.seedServer);
    world.seedServer.connected = false;
    await tick(250);
    // No live route to b yet: its own endpoint is being opened, which retries when it opens.
    expect(world.serverLost).toEqual(["b"]);
    world.retried.length = 0;
    world.serverLost.length = 0;
    paths.sent("b", world.seedServer);
    world.ownEndpoint.listed = ["b"];
    await tick(250);
    expect(world.serverLost).toEqual(["b"]);
  });

  test("a path to a member's own endpoint retries an attempt whose signal went through another server", async () => {
    const { world, paths, tick } = setup();
    world.linked.add("c");
    world.suspect.add(world.seedServer); // the seed is suspected: its server is no route to b
    paths.sent("b", world.seedServer);
    await tick(250);
    expect([...world.opened.keys()]).toEqual(["mem://b"]);
    expect(world.serverLost).toEqual(["b"]);
    expect(paths.route("b")).toBe(world.opened.get("mem://b")!);
  });

  test("a path closes 5 s after its member is linked directly", async () => {
    const { world, tick } = setup();
    world.seedServer.connected = false;
    await tick(250);
    const b = world.opened.get("mem://b")!;
    world.linked.add("b");
    await tick(250);
    await tick(4_900);
    expect(b.closed).toBe(false);
    await tick(250);
    expect(b.closed).toBe(true);
  });
});
