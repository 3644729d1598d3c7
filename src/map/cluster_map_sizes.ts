/**
 * Every map of the cluster with its entry count, the same whichever member asks (a lite
 * member too): one MapSizes call per partition, answered by its primary. Listing names from
 * this member's own records named only the maps in the partitions it is primary of, and
 * sizing each map cost one call per partition per map; the sweep costs one call per
 * partition for all maps together.
 */
import type { Clock, Timer } from "../core/clock.ts";
import type { Invoker } from "../invoke/invoker.ts";
import { MAX_MAP_SIZES, OpCode } from "./operations.ts";

/** One map's entry count; `size` is null when some partition could not be counted. */
export interface MapSize {
  name: string;
  size: number | null;
}

export interface MapSizeSweepOptions {
  /** The first maps by name that are listed (at most 1,000). @default 64 */
  maxMaps?: number;
  /** Time allowed for the whole sweep. @default 1000 */
  timeoutMs?: number;
}

/** Partition calls of a sweep in flight at once (as a whole-map operation's fan-out). */
const FAN_OUT = 32;

/**
 * Sweeps every partition once (see the file comment). Each primary answers the first
 * `maxMaps` names of its partition in sorted order, so the first `maxMaps` names of the
 * cluster, and their whole counts, are among the answers. A partition that failed or did not
 * answer in time (a primary that predates MapSizes answers INVALID_ARGUMENT) may hold entries
 * of any map: every size is then null, the names found still listed.
 * @param invoker routes each call to the partition's primary
 * @param partitionCount partitions to sweep
 * @param clock times the sweep
 * @returns maps in name order, at most `maxMaps`
 */
export async function sweepMapSizes(
  invoker: Invoker,
  partitionCount: number,
  clock: Clock,
  opts: MapSizeSweepOptions = {},
): Promise<MapSize[]> {
  const maxMaps = Math.max(1, Math.min(opts.maxMaps ?? 64, MAX_MAP_SIZES));
  const sizes = new Map<string, number>();
  let answered = 0, next = 0, over = false;
  const worker = async () => {
    while (!over && next < partitionCount) {
      const p = next++;
      let r: unknown;
      try {
        r = await invoker.invoke(p, OpCode.MapSizes, { m: "", n: maxMaps }, false);
      } catch {
        continue; // counted as unanswered
      }
      if (over || !Array.isArray(r)) continue;
      const valid = r.every((e) =>
        Array.isArray(e) && typeof e[0] === "string" && Number.isSafeInteger(e[1]) && e[1] >= 0
      );
      if (!valid) continue;
      for (const [name, n] of r as Array<[string, number]>) sizes.set(name, (sizes.get(name) ?? 0) + n);
      answered++;
    }
  };
  let timer: Timer | undefined;
  const timeout = new Promise<void>((r) => (timer = clock.setTimer(opts.timeoutMs ?? 1000, r)));
  await Promise.race([Promise.all(Array.from({ length: Math.min(FAN_OUT, partitionCount) }, worker)), timeout]);
  timer?.cancel();
  // Calls still in flight finish on their own (at most FAN_OUT); no more start, none counts.
  over = true;
  const complete = answered === partitionCount;
  return [...sizes.keys()].sort().slice(0, maxMaps).map((name) => ({ name, size: complete ? sizes.get(name)! : null }));
}
