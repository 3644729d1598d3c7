/**
 * `shutdown()` called twice at once (a signal handler and `await using`, say): the second call
 * returned at once, before the first had moved the data off and closed the member (found by an
 * internal review). It now waits for the same shutdown.
 */
import { expect, test } from "bun:test";
import { startNode } from "../src/node.ts";

test("a second shutdown() resolves only once the first has finished", async () => {
  const node = await startNode({ secret: "s", http: "127.0.0.1:0", logLevel: "silent", partitionCount: 7 });
  let firstDone = false;
  const first = node.shutdown().then(() => (firstDone = true));
  await node.shutdown();
  expect(firstDone).toBe(true);
  await first;
  await node.shutdown(); // and later calls resolve too
}, 60_000);
