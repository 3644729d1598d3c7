import { describe, expect, test } from "bun:test";
import { parseFlags } from "../src/cli/flags.ts";
import { parseIceUrl } from "../src/cli/ice_url.ts";
import { nodeFlags, parseNodeArgs } from "../src/cli/node_args.ts";
import { isLoopbackHost, parseListenAddress } from "../src/http/listen_address.ts";

function ok(args: string[], env: Record<string, string> = {}) {
  const r = parseNodeArgs(args, env);
  if (!("options" in r)) throw new Error(`expected options, got ${JSON.stringify(r)}`);
  return r.options;
}

function err(args: string[], env: Record<string, string> = {}): string {
  const r = parseNodeArgs(args, env);
  if (!("error" in r)) throw new Error(`expected an error, got ${JSON.stringify(r)}`);
  return r.error;
}

describe("node command flags", () => {
  test("no flags gives the embedded default: cluster shoal on 127.0.0.1:5701", () => {
    expect(ok([])).toEqual({ cluster: "shoal", http: "127.0.0.1:5701" });
  });

  test("every flag maps onto NodeOptions", () => {
    const o = ok([
      "--name",
      "alpha",
      "--cluster",
      "prod",
      "--secret",
      "s3cret",
      "--join",
      "http://10.0.0.1:5701/",
      "--join",
      "https://b.example.org:8443",
      "--http",
      "0.0.0.0:0",
      "--ice",
      "stun:stun.example.org:3478",
      "--ice",
      "turn:alice:pa%40ss@turn.example.org:3478?transport=tcp",
      "--ice-host-address",
      "10.9.0.2",
      "--backup-count",
      "2",
      "--async-backup-count",
      "1",
      "--partition-count",
      "31",
      "--lite",
      "--token",
      "tok",
      "--slots",
      "8",
      "--log-level",
      "debug",
      "--merge-policy",
      "discard",
      "--min-cluster-size",
      "3",
    ]);
    expect(o).toEqual({
      name: "alpha",
      cluster: "prod",
      secret: "s3cret",
      join: ["http://10.0.0.1:5701", "https://b.example.org:8443"],
      http: "0.0.0.0:0",
      iceServers: [
        { urls: "stun:stun.example.org:3478" },
        { urls: "turn:turn.example.org:3478?transport=tcp", username: "alice", credential: "pa@ss" },
      ],
      iceAdditionalHostAddresses: ["10.9.0.2"],
      backupCount: 2,
      asyncBackupCount: 1,
      partitionCount: 31,
      lite: true,
      token: "tok",
      slots: 8,
      logLevel: "debug",
      mergePolicy: "discard",
      minClusterSize: 3,
    });
  });

  test("--flag=value works like --flag value, and --lite=false turns lite off", () => {
    const o = ok(["--backup-count=0", "--lite=false", "--http=127.0.0.1:0"]);
    expect(o.backupCount).toBe(0);
    expect(o.lite).toBe(false);
    expect(o.http).toBe("127.0.0.1:0");
  });

  test("every flag is also read from a SHOAL_ environment variable", () => {
    const o = ok([], {
      SHOAL_NAME: "envy",
      SHOAL_CLUSTER: "c2",
      SHOAL_SECRET: "from-env",
      SHOAL_JOIN: "http://127.0.0.1:1, http://127.0.0.1:2",
      SHOAL_HTTP: "[::1]:0",
      SHOAL_ICE: "stun:127.0.0.1:3478,turn:u:p@127.0.0.1",
      SHOAL_ICE_HOST_ADDRESS: "10.0.0.7",
      SHOAL_BACKUP_COUNT: "3",
      SHOAL_ASYNC_BACKUP_COUNT: "1",
      SHOAL_PARTITION_COUNT: "17",
      SHOAL_LITE: "1",
      SHOAL_TOKEN: "env-token",
      SHOAL_SLOTS: "2",
      SHOAL_LOG_LEVEL: "warn",
      SHOAL_MIN_CLUSTER_SIZE: "2",
    });
    expect(o).toEqual({
      name: "envy",
      cluster: "c2",
      secret: "from-env",
      join: ["http://127.0.0.1:1", "http://127.0.0.1:2"],
      http: "[::1]:0",
      iceServers: [{ urls: "stun:127.0.0.1:3478" }, { urls: "turn:127.0.0.1", username: "u", credential: "p" }],
      iceAdditionalHostAddresses: ["10.0.0.7"],
      backupCount: 3,
      asyncBackupCount: 1,
      partitionCount: 17,
      lite: true,
      token: "env-token",
      slots: 2,
      logLevel: "warn",
      minClusterSize: 2,
    });
  });

  test("flags win over environment variables; empty variables are ignored", () => {
    const o = ok(["--secret", "flag", "--backup-count", "1"], {
      SHOAL_SECRET: "env",
      SHOAL_BACKUP_COUNT: "4",
      SHOAL_NAME: "",
    });
    expect(o.secret).toBe("flag");
    expect(o.backupCount).toBe(1);
    expect(o.name).toBeUndefined();
  });

  test("--join given twice with the same URL is kept once", () => {
    expect(ok(["--join", "http://a:1", "--join", "http://a:1/"]).join).toEqual(["http://a:1"]);
  });

  test("--help and -h return the help text listing every flag and its env var", () => {
    for (const h of ["--help", "-h"]) {
      const r = parseNodeArgs(["--name", "x", h], {});
      expect("help" in r).toBe(true);
      const text = (r as { help: string }).help;
      for (const f of nodeFlags) expect(text).toContain(`--${f.name}`);
      expect(text).toContain("SHOAL_BACKUP_COUNT");
      expect(text).toContain("SHOAL_SECRET");
    }
  });

  test("unknown flags, stray arguments and missing values are errors", () => {
    expect(err(["--nope"])).toContain('Unknown flag "--nope"');
    expect(err(["-x"])).toContain('Unknown flag "-x"');
    expect(err(["extra"])).toContain('Unexpected argument "extra"');
    expect(err(["--name"])).toContain("Missing value for --name");
    expect(err(["--secret", "--lite"])).toContain("Missing value for --secret");
    expect(err(["--name="])).toContain("Missing value for --name");
  });

  test("bad numbers are errors naming the flag or variable", () => {
    expect(err(["--backup-count", "two"])).toContain('Invalid value "two" for --backup-count');
    expect(err(["--backup-count", "7"])).toContain("must be at most 6");
    expect(err(["--slots", "-1"])).toContain("must be at least 0");
    expect(err(["--slots", "1.5"])).toContain("expected a whole number");
    expect(err([], { SHOAL_SLOTS: "many" })).toContain("SHOAL_SLOTS");
    expect(err([], { SHOAL_LITE: "maybe" })).toContain("SHOAL_LITE");
    expect(err(["--backup-count", "4", "--async-backup-count", "3"])).toContain("at most 6");
    expect(err(["--job-history-minutes", "-5"])).toContain("must be at least 0");
  });

  test("--job-history-minutes and SHOAL_JOB_HISTORY_MINUTES set how long ended jobs are kept", () => {
    expect(ok(["--job-history-minutes", "30"]).jobHistoryMinutes).toBe(30);
    expect(ok([], { SHOAL_JOB_HISTORY_MINUTES: "0" }).jobHistoryMinutes).toBe(0);
    expect(ok([]).jobHistoryMinutes).toBeUndefined();
  });

  test("bad --log-level, --name and --cluster values are errors", () => {
    expect(err(["--log-level", "loud"])).toContain("expected one of debug, info, warn, error, silent");
    expect(err(["--name", "x".repeat(65)])).toContain("at most 64");
    expect(err(["--cluster", "a\nb"])).toContain("control characters");
  });

  test("bad --join URLs are errors", () => {
    expect(err(["--join", "not a url"])).toContain('Bad --join URL "not a url"');
    expect(err(["--join", "ftp://x:1"])).toContain("scheme must be http");
    expect(err(["--join", "http://u:p@x:1"])).toContain("credentials");
    expect(err(["--join", "http://x:1/?a=1"])).toContain("no query");
  });

  test("bad --http addresses are errors", () => {
    expect(err(["--http", "5701"])).toContain("expected HOST:PORT");
    expect(err(["--http", "127.0.0.1:70000"])).toContain("out of range");
    expect(err(["--http", "bad host:1"])).toContain("not a host name");
  });

  test("a non-loopback --http address without a token is refused", () => {
    expect(err(["--http", "0.0.0.0:5701"])).toContain("Refusing to serve HTTP on 0.0.0.0:5701 without a token");
    expect(err(["--http", ":5701"])).toContain("without a token");
    expect(err(["--http", "192.168.1.5:80"])).toContain("--token");
    expect(ok(["--http", "0.0.0.0:5701"], { SHOAL_TOKEN: "t" }).token).toBe("t");
    expect(ok(["--http", "localhost:0"]).http).toBe("localhost:0");
    expect(ok(["--http", "127.0.0.2:0"]).http).toBe("127.0.0.2:0");
  });

  test("security flags: --read-token, --open-metrics, --tls-cert/--tls-key/--tls-ca (flags and SHOAL_* env)", () => {
    expect(ok(["--token", "t", "--read-token", "r", "--open-metrics"])).toMatchObject({
      token: "t",
      readToken: "r",
      openMetrics: true,
    });
    expect(ok(["--tls-cert", "c.pem", "--tls-key", "k.pem", "--tls-ca", "ca.pem"])).toMatchObject({
      tlsCert: "c.pem",
      tlsKey: "k.pem",
      tlsCa: "ca.pem",
    });
    expect(
      ok([], { SHOAL_TOKEN: "t", SHOAL_READ_TOKEN: "r", SHOAL_TLS_CERT: "c", SHOAL_TLS_KEY: "k", SHOAL_TLS_CA: "a" }),
    ).toMatchObject({ token: "t", readToken: "r", tlsCert: "c", tlsKey: "k", tlsCa: "a" });
    expect(err(["--read-token", "r"])).toContain("--read-token needs --token");
    expect(err(["--token", "t", "--read-token", "t"])).toContain("must differ");
    expect(err(["--tls-cert", "c.pem"])).toContain("both --tls-cert FILE and --tls-key FILE");
    expect(err(["--tls-key", "k.pem"])).toContain("both");
    // TLS does not lift the token requirement off loopback: TLS hides the traffic, the token guards the data.
    expect(err(["--http", "0.0.0.0:5701", "--tls-cert", "c", "--tls-key", "k"])).toContain("without a token");
  });

  test("--http-allowed-host takes host names (a reverse proxy's public name), repeated", () => {
    expect(ok(["--http-allowed-host", "Grid.Example.com", "--http-allowed-host", "grid2"]).httpAllowedHosts).toEqual([
      "grid.example.com",
      "grid2",
    ]);
    expect(err(["--http-allowed-host", "https://grid.example.com"])).toContain("is not a host name");
  });

  test("--previous-secret (secret rotation) needs a different --secret, from flags or SHOAL_* env", () => {
    expect(ok(["--secret", "new", "--previous-secret", "old"])).toMatchObject({ secret: "new", previousSecret: "old" });
    expect(ok([], { SHOAL_SECRET: "new", SHOAL_PREVIOUS_SECRET: "old" })).toMatchObject({ previousSecret: "old" });
    const missing = err(["--previous-secret", "old-hunter2"]);
    expect(missing).toContain("--previous-secret needs --secret");
    expect(missing).not.toContain("hunter2");
    expect(err(["--secret", "same", "--previous-secret", "same"])).toContain("must differ");
  });

  test("bad --ice URLs are errors and do not echo the TURN password", () => {
    expect(err(["--ice", "http://x"])).toContain("expected stun:host:port or turn:user:pass@host:port");
    expect(err(["--ice", "turn:host:3478"])).toContain("TURN needs credentials");
    expect(err(["--ice", "stun:u:p@host"])).toContain("STUN URLs take no credentials");
    expect(err(["--ice", "stun:host:0"])).toContain("out of range");
    const e = err(["--ice", "turn:bob:hunter2@host:99999"]);
    expect(e).toContain("out of range");
    expect(e).not.toContain("hunter2");
  });
});

describe("flag parser and helpers", () => {
  test("-- ends the flags; what follows is positional", () => {
    const r = parseFlags([{ name: "a", kind: "string", description: "" }], ["--a", "1", "--", "--b"], {});
    expect(r).toEqual({ kind: "ok", values: { a: "1" }, positionals: ["--b"] });
  });

  test("ICE URL forms", () => {
    expect(parseIceUrl("stun:1.2.3.4")).toEqual({ urls: "stun:1.2.3.4" });
    expect(parseIceUrl("stuns:[::1]:5349")).toEqual({ urls: "stuns:[::1]:5349" });
    expect(parseIceUrl("TURNS:a:b@t.example:5349")).toEqual({
      urls: "turns:t.example:5349",
      username: "a",
      credential: "b",
    });
    expect(parseIceUrl("turn:a:b:c@t:1")).toEqual({ urls: "turn:t:1", username: "a", credential: "b:c" });
  });

  test("listen addresses and loopback detection", () => {
    expect(parseListenAddress("127.0.0.1:5701")).toEqual({ host: "127.0.0.1", port: 5701 });
    expect(parseListenAddress("[::1]:0")).toEqual({ host: "::1", port: 0 });
    expect(parseListenAddress(":80")).toEqual({ host: "0.0.0.0", port: 80 });
    for (const h of ["127.0.0.1", "127.1.2.3", "::1", "localhost", "LOCALHOST", "::ffff:127.0.0.1"]) {
      expect(isLoopbackHost(h)).toBe(true);
    }
    for (const h of ["0.0.0.0", "::", "10.0.0.1", "example.org", "128.0.0.1"]) expect(isLoopbackHost(h)).toBe(false);
  });
});

describe("per-map settings flags", () => {
  const files: Record<string, string> = {
    "maps.json": JSON.stringify({ "sessions*": { ttlMs: 60000, maxIdleMs: 5000 } }),
    "bad.json": "{nope",
    "wrong.json": JSON.stringify({ "sessions*": { ttl: 5 } }),
  };
  const read = (path: string) => {
    if (!(path in files)) throw new Error("no such file");
    return files[path];
  };

  test("--map-config and repeated --map make options.maps, flags overriding the file per field", () => {
    const r = parseNodeArgs(
      ["--map-config", "maps.json", "--map", "sessions*:ttlMs=1000", "--map", "cache:maxSizePerMember=20000"],
      {},
      read,
    );
    expect(r).toEqual({
      options: expect.objectContaining({
        maps: { "sessions*": { ttlMs: 1000, maxIdleMs: 5000 }, cache: { maxSizePerMember: 20000 } },
      }),
    });
  });

  const bad: Array<[string[], RegExp]> = [
    [["--map-config", "missing.json"], /Cannot read --map-config missing.json/],
    [["--map-config", "bad.json"], /Invalid --map-config bad.json: not JSON/],
    [["--map-config", "wrong.json"], /--map-config "sessions\*".*ttl/],
    [["--map", "cache:eviction=fifo"], /--map "cache" field eviction/],
    [["--map", "cache"], /expected NAME:key=value/],
  ];
  for (const [args, msg] of bad) {
    test(`refuses ${args.join(" ")} with a clear message`, () => {
      const r = parseNodeArgs(args, {}, read);
      expect("error" in r && r.error).toMatch(msg);
    });
  }
});
