/**
 * Queue and topic benchmark, in one process over the MemoryNetwork with the real clock
 * (bench/_memory_grid.ts: 3 data members + 1 lite client, backupCount 1, 271 partitions).
 *
 *   bun run bench/queue_topic.ts   |   deno run -A bench/queue_topic.ts
 *
 * Prints queue offer+poll pairs/s (16 producers and 16 consumers on one queue) and topic
 * messages/s delivered to 1 and to 10 subscribers (one publisher, 16 publishes in flight
 * through 16 topic objects), then one JSON line with the numbers.
 */
import { exit, runtimeVersion } from "../src/runtime/process.ts";
import { loadAverage } from "./_cluster.ts";
import { memoryGrids } from "./_memory_grid.ts";

const { grids, threeAndClient } = memoryGrids();
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const client = await threeAndClient();

// Queue: offer+poll pairs.
const PAIRS = 10_000;
const q = client.getQueue<number>("bench");
let offered = 0, polled = 0;
const tq = performance.now();
await Promise.all([
  ...Array.from({ length: 16 }, async () => {
    while (offered < PAIRS) await q.offer(offered++);
  }),
  ...Array.from({ length: 16 }, async () => {
    while (polled < PAIRS) if ((await q.poll({ timeoutMs: 1000 })) !== undefined) polled++;
  }),
]);
const pairs = PAIRS / ((performance.now() - tq) / 1000);

// Topic: messages/s delivered to n subscribers.
async function topicRate(subscribers: number, messages: number): Promise<number> {
  const name = `t${subscribers}`;
  const stop = new AbortController();
  let delivered = 0;
  const subs = Array.from({ length: subscribers }, async () => {
    for await (const e of client.getReliableTopic(name, { capacity: 100_000 }).subscribe({ signal: stop.signal })) {
      if ("message" in e) delivered++;
    }
  });
  await sleep(300);
  const t = performance.now();
  let next = 0;
  const pubs = Array.from({ length: 16 }, () => client.getReliableTopic(name, { capacity: 100_000 }));
  await Promise.all(pubs.map(async (p) => {
    while (next < messages) (next++, await p.publish("x".repeat(100)));
  }));
  while (delivered < messages * subscribers) await sleep(5);
  const rate = messages / ((performance.now() - t) / 1000);
  stop.abort();
  await Promise.allSettled(subs);
  return rate;
}
const to1 = await topicRate(1, 5000);
const to10 = await topicRate(10, 5000);

console.log(`runtime: ${runtimeVersion()}, load average ${loadAverage()}`);
console.log(`queue offer+poll pairs:            ${Math.round(pairs).toLocaleString("en-US")}/s`);
console.log(`topic messages to 1 subscriber:    ${Math.round(to1).toLocaleString("en-US")}/s`);
console.log(`topic messages to 10 subscribers:  ${Math.round(to10).toLocaleString("en-US")}/s (each)`);
console.log(JSON.stringify({ bench: "queue_topic", queuePairs: pairs, topicTo1: to1, topicTo10: to10 }));
for (const g of grids.values()) g.stop();
exit(0);
