import { describe, expect, test } from "bun:test";
import {
  backupCountProblem,
  canonicalMapsConfig,
  mapConfigDifference,
  mapConfigJoinSetting,
  MapConfigs,
  mapsConfigDigest,
  mapsConfigFromCli,
  matchPattern,
  parseMapFlag,
  parseMapsConfig,
  partitionBackups,
  patternMatches,
  uniformBackups,
} from "../src/map/map_config.ts";

describe("map name patterns", () => {
  const table: Array<[string, string, boolean]> = [
    ["sessions", "sessions", true],
    ["sessions", "sessions1", false],
    ["sessions*", "sessions", true],
    ["sessions*", "sessions-eu", true],
    ["sessions*", "session", false],
    ["*-cache", "users-cache", true],
    ["*-cache", "users-cache2", false],
    ["a*z", "az", true],
    ["a*z", "abcz", true],
    ["a*z", "a", false],
    ["*", "anything", true],
    ["ab*ba", "aba", false],
  ];
  for (const [p, name, want] of table) {
    test(`"${p}" ${want ? "matches" : "does not match"} "${name}"`, () => expect(patternMatches(p, name)).toBe(want));
  }

  test("an exact name beats every wildcard, the longest literal part wins, default is the fallback", () => {
    const ps = ["*", "sess*", "sessions*", "sessions", "default", "*-eu"];
    expect(matchPattern(ps, "sessions")).toBe("sessions");
    expect(matchPattern(ps, "sessions-us")).toBe("sessions*");
    expect(matchPattern(ps, "sessX")).toBe("sess*");
    expect(matchPattern(ps, "other")).toBe("*");
    expect(matchPattern(["default", "x*"], "other")).toBe("default");
    expect(matchPattern(["x*"], "other")).toBeNull();
  });

  test("two wildcard patterns with as many literal characters make a name ambiguous", () => {
    expect(() => matchPattern(["ab*", "*cd"], "abcd")).toThrow(/"ab\*" and "\*cd" match it equally well/);
    expect(matchPattern(["ab*", "*cd"], "abxx")).toBe("ab*");
  });
});

describe("maps config validation", () => {
  test("valid settings pass and resolve with defaults filled in", () => {
    const c = new MapConfigs({ "sessions*": { ttlMs: 60_000, maxSizePerMember: 100 } });
    expect(c.resolve("sessions-1")).toEqual({
      pattern: "sessions*",
      backupCount: null,
      asyncBackupCount: null,
      ttlMs: 60_000,
      maxIdleMs: 0,
      maxSizePerMember: 100,
      maxBytesPerMember: 0,
      eviction: "lru",
      minClusterSize: null,
    });
    expect(c.resolve("other").pattern).toBeNull();
    expect(c.resolve("other").eviction).toBe("none");
  });

  const bad: Array<[string, unknown, RegExp]> = [
    ["unknown field", { "s*": { ttl: 5 } }, /"s\*".*ttl/],
    ["negative ttl", { "s*": { ttlMs: -1 } }, /"s\*" field ttlMs/],
    ["fractional size", { "s*": { maxSizePerMember: 1.5 } }, /maxSizePerMember/],
    ["two stars", { "a*b*": {} }, /at most one \*/],
    ["too many backups", { m: { backupCount: 4, asyncBackupCount: 3 } }, /at most 6/],
    ["limit without policy", { m: { maxSizePerMember: 10, eviction: "none" } }, /"m" field eviction: a size limit/],
    ["bad policy", { m: { eviction: "fifo" } }, /eviction/],
    ["not an object", [1, 2], /Invalid/],
  ];
  for (const [what, input, msg] of bad) {
    test(`refuses ${what} with a message naming it`, () => {
      const r = parseMapsConfig(input);
      expect("error" in r && r.error).toMatch(msg);
      expect(() => new MapConfigs(input)).toThrow(RangeError);
    });
  }
});

describe("canonical summary and digest", () => {
  test("order and implicit defaults do not change the digest; any field does", () => {
    const a = { "s*": { ttlMs: 10, maxSizePerMember: 5 }, m: {} };
    const b = { m: { ttlMs: 0 }, "s*": { maxSizePerMember: 5, ttlMs: 10, eviction: "lru" as const } };
    expect(canonicalMapsConfig(a)).toBe(canonicalMapsConfig(b));
    expect(mapsConfigDigest(a)).toBe(mapsConfigDigest(b));
    expect(mapsConfigDigest(a)).toMatch(/^[0-9a-f]{64}$/);
    expect(mapsConfigDigest({ ...a, m: { maxIdleMs: 1 } })).not.toBe(mapsConfigDigest(a));
    expect(mapsConfigDigest({})).not.toBe(mapsConfigDigest({ m: {} }));
  });

  test("the difference names the map pattern and the field", () => {
    const here = canonicalMapsConfig({ "sessions*": { ttlMs: 1000 }, x: {} });
    expect(mapConfigDifference(here, here)).toBeNull();
    expect(mapConfigDifference(here, canonicalMapsConfig({ "sessions*": { ttlMs: 2000 }, x: {} }), "member b"))
      .toBe('map config "sessions*": ttlMs is 1000 on this member but 2000 on member b');
    expect(mapConfigDifference(here, canonicalMapsConfig({ "sessions*": { ttlMs: 1000 } }), "b"))
      .toBe('map config "x" is set on this member but not on b');
    expect(mapConfigDifference(here, canonicalMapsConfig({ "sessions*": { ttlMs: 1000, backupCount: 2 }, x: {} }), "b"))
      .toBe('map config "sessions*": backupCount is the node default on this member but 2 on b');
    expect(mapConfigDifference(here, "{not json", "b")).toMatch(/malformed/);
  });
});

describe("CLI map flags", () => {
  test("--map NAME:key=value,... parses numbers and the policy", () => {
    expect(parseMapFlag("sessions*:ttlMs=60000,eviction=lfu,maxSizePerMember=20000")).toEqual({
      pattern: "sessions*",
      settings: { ttlMs: 60000, eviction: "lfu", maxSizePerMember: 20000 },
    });
  });

  const bad: Array<[string, RegExp]> = [
    ["sessions", /expected NAME:key=value/],
    ["s:", /no settings/],
    ["s:ttlMs", /not key=value/],
    ["s:ttl=5", /unknown setting "ttl"/],
    ["s:ttlMs=5s", /whole number/],
    ["s:ttlMs=5,ttlMs=6", /given twice/],
  ];
  for (const [flag, msg] of bad) {
    test(`refuses --map ${flag}`, () => expect(parseMapFlag(flag)).toEqual({ error: expect.stringMatching(msg) }));
  }

  test("flags override the file field by field and are validated together", () => {
    const r = mapsConfigFromCli({ "s*": { ttlMs: 5, maxIdleMs: 7 } }, [
      "s*:ttlMs=9",
      "m:eviction=random,maxSizePerMember=3",
    ]);
    expect(r).toEqual({ maps: { "s*": { ttlMs: 9, maxIdleMs: 7 }, m: { eviction: "random", maxSizePerMember: 3 } } });
    expect(mapsConfigFromCli(undefined, ["m:eviction=fifo"])).toEqual({
      error: expect.stringMatching(/--map "m" field eviction/),
    });
    expect(mapsConfigFromCli({ m: { bogus: 1 } }, [])).toEqual({ error: expect.stringMatching(/--map-config "m"/) });
    expect(mapsConfigFromCli(undefined, ["m:ttlMs=1", "m:maxIdleMs=2"])).toEqual({
      error: expect.stringMatching(/given twice/),
    });
  });
});

describe("per-map backup counts", () => {
  test("a pattern's counts (the node's where unset) total at most 6; more is refused naming the map", () => {
    const node = { backupCount: 1, asyncBackupCount: 0 };
    expect(backupCountProblem({ "s*": { backupCount: 2, ttlMs: 5 } }, node)).toBeNull();
    expect(backupCountProblem({ "s*": { backupCount: 6 } }, { backupCount: 1, asyncBackupCount: 1 })).toMatch(
      /"s\*": backupCount 6 plus asyncBackupCount 1 .* exceeds 6/,
    );
    expect(() => new MapConfigs({ m: { asyncBackupCount: 6 } }, node)).toThrow(/"m"/);
  });

  test("the partition table holds replicas for the map with the most; uniform only when every map has the node's", () => {
    const node = { backupCount: 1, asyncBackupCount: 0 };
    expect(partitionBackups({}, node)).toEqual(node);
    expect(partitionBackups({ a: { backupCount: 0 }, b: { backupCount: 2 } }, node)).toEqual({
      backupCount: 2,
      asyncBackupCount: 0,
    });
    expect(partitionBackups({ a: { backupCount: 0, asyncBackupCount: 3 } }, node)).toEqual({
      backupCount: 1,
      asyncBackupCount: 2,
    });
    expect(uniformBackups({ a: { backupCount: 1, ttlMs: 5 } }, node)).toBe(true);
    expect(uniformBackups({ a: { backupCount: 0 } }, node)).toBe(false);
  });
});

describe("join setting", () => {
  test("carries the canonical summary (or its digest when long), comparable with mapConfigDifference", () => {
    const a = mapConfigJoinSetting({ "s*": { ttlMs: 1 } });
    const b = mapConfigJoinSetting({ "s*": { ttlMs: 2 } });
    expect(a.field.key).toBe("mc");
    expect(mapConfigDifference(a.value, b.value, "the joiner")).toBe(
      'map config "s*": ttlMs is 1 on this member but 2 on the joiner',
    );
    const many = Object.fromEntries(Array.from({ length: 200 }, (_, i) => [`map-${i}-*`, { ttlMs: i }]));
    expect(mapConfigJoinSetting(many).value).toBe(`sha256:${mapsConfigDigest(many)}`);
  });
});

describe("per-map split-brain protection (minClusterSize)", () => {
  test("a map's override wins over the member-wide setting; unset follows it; 0 turns it off for that map", () => {
    const c = new MapConfigs({
      "orders*": { minClusterSize: 3 },
      "cache*": { minClusterSize: 0 },
      other: { ttlMs: 5 },
    });
    expect(c.minClusterSizeFor("orders-eu", 0)).toBe(3);
    expect(c.minClusterSizeFor("orders-eu", 2)).toBe(3);
    expect(c.minClusterSizeFor("cache-1", 3)).toBe(0);
    expect(c.minClusterSizeFor("other", 3)).toBe(3);
    expect(c.minClusterSizeFor("unmatched", 2)).toBe(2);
    expect(c.resolve("other").minClusterSize).toBeNull();
    // Leases are kept when any map asks for protection, even with the member-wide setting off.
    expect(c.maxMinClusterSize).toBe(3);
    expect(new MapConfigs({ m: { ttlMs: 1 } }).maxMinClusterSize).toBe(0);
  });

  test("an ambiguous name gets the member-wide setting (its operations fail on the name anyway)", () => {
    const c = new MapConfigs({ "a*": { minClusterSize: 3 }, "*b": { minClusterSize: 0 } });
    expect(() => c.resolve("ab")).toThrow(RangeError);
    expect(c.minClusterSizeFor("ab", 2)).toBe(2);
  });

  test("is validated, compared at join naming the field, and given on the command line", () => {
    expect(parseMapsConfig({ m: { minClusterSize: -1 } })).toEqual({
      error: expect.stringMatching(/"m" field minClusterSize/),
    });
    expect(parseMapsConfig({ m: { minClusterSize: 2.5 } })).toEqual({ error: expect.stringMatching(/minClusterSize/) });
    expect(parseMapsConfig({ m: { minClusterSize: 1025 } })).toEqual({
      error: expect.stringMatching(/minClusterSize/),
    });
    const a = mapConfigJoinSetting({ "orders*": { minClusterSize: 3 } });
    const b = mapConfigJoinSetting({ "orders*": {} });
    expect(a.value).not.toBe(b.value);
    expect(a.field.explain(b.value, a.value)).toBe(
      'map config "orders*": minClusterSize is the node default on this member but 3 on the cluster',
    );
    expect(mapsConfigFromCli(undefined, ["orders*:minClusterSize=3"])).toEqual({
      maps: { "orders*": { minClusterSize: 3 } },
    });
  });
});
