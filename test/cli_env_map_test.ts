/**
 * README "Running nodes": every `node` flag is also an environment variable SHOAL_<FLAG>.
 * `--map NAME:K=V,...` takes comma-separated settings, but the parser split every list flag's
 * variable on commas, so SHOAL_MAP could not carry the README's own example
 * `sessions*:ttlMs=60000,eviction=lru` (found by an internal review). SHOAL_MAP separates maps
 * with `;`.
 */
import { describe, expect, test } from "bun:test";
import { parseNodeArgs } from "../src/cli/node_args.ts";

describe("SHOAL_MAP (the --map flag as an environment variable)", () => {
  test("the README's --map example works as SHOAL_MAP, as it does as a flag", () => {
    const value = "sessions*:ttlMs=60000,eviction=lru";
    const viaFlag = parseNodeArgs(["--map", value], {});
    expect(viaFlag).toMatchObject({ options: { maps: { "sessions*": { ttlMs: 60000, eviction: "lru" } } } });
    const viaEnv = parseNodeArgs([], { SHOAL_MAP: value });
    expect(viaEnv).toEqual(viaFlag);
  });

  test("a map with two settings from SHOAL_MAP keeps both", () => {
    const r = parseNodeArgs([], { SHOAL_MAP: "cache:maxSizePerMember=20000,eviction=lfu" });
    expect(r).toMatchObject({ options: { maps: { cache: { maxSizePerMember: 20000, eviction: "lfu" } } } });
  });

  test("SHOAL_MAP separates maps with semicolons", () => {
    const r = parseNodeArgs([], { SHOAL_MAP: "a*:ttlMs=1000,eviction=lru; b:maxSizePerMember=5" });
    expect(r).toMatchObject({
      options: { maps: { "a*": { ttlMs: 1000, eviction: "lru" }, b: { maxSizePerMember: 5 } } },
    });
  });
});
