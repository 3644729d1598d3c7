/**
 * Test certificates made at test time with the openssl command line (never committed): a
 * private CA, a server certificate it signed for localhost and 127.0.0.1, and a second,
 * self-signed certificate that no CA vouches for. Everything lives in a temporary directory.
 */
import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";

export interface TestCerts {
  dir: string;
  /** The private CA's certificate (give it to --tls-ca). */
  ca: string;
  /** Server certificate and key signed by the CA. */
  cert: string;
  key: string;
  /** A self-signed server certificate and key (not signed by the CA). */
  selfCert: string;
  selfKey: string;
}

function openssl(args: string[], cwd: string): void {
  const r = Bun.spawnSync(["openssl", ...args], { cwd, stdout: "pipe", stderr: "pipe" });
  if (r.exitCode !== 0) throw new Error(`openssl ${args[0]} failed: ${r.stderr.toString()}`);
}

/** Whether the openssl command is installed. */
export function hasOpenssl(): boolean {
  try {
    return Bun.spawnSync(["openssl", "version"], { stdout: "pipe", stderr: "pipe" }).exitCode === 0;
  } catch {
    return false;
  }
}

/**
 * Generates the CA and both server certificates (EC P-256, valid one day).
 * @returns their file paths
 */
export function makeTestCerts(): TestCerts {
  const dir = mkdtempSync(join(tmpdir(), "shoal-tls-"));
  const ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"];
  openssl(
    ["req", "-x509", ...ec, "-keyout", "ca.key", "-out", "ca.pem", "-days", "1", "-subj", "/CN=Shoal test CA"],
    dir,
  );
  writeFileSync(
    join(dir, "server.ext"),
    "subjectAltName=DNS:localhost,IP:127.0.0.1\nbasicConstraints=CA:FALSE\nkeyUsage=digitalSignature\nextendedKeyUsage=serverAuth\n",
  );
  openssl(["req", ...ec, "-keyout", "server.key", "-out", "server.csr", "-subj", "/CN=localhost"], dir);
  openssl([
    "x509",
    "-req",
    "-in",
    "server.csr",
    "-CA",
    "ca.pem",
    "-CAkey",
    "ca.key",
    "-CAcreateserial",
    "-out",
    "server.pem",
    "-days",
    "1",
    "-extfile",
    "server.ext",
  ], dir);
  openssl([
    "req",
    "-x509",
    ...ec,
    "-keyout",
    "self.key",
    "-out",
    "self.pem",
    "-days",
    "1",
    "-subj",
    "/CN=localhost",
    "-addext",
    "subjectAltName=DNS:localhost,IP:127.0.0.1",
  ], dir);
  return {
    dir,
    ca: join(dir, "ca.pem"),
    cert: join(dir, "server.pem"),
    key: join(dir, "server.key"),
    selfCert: join(dir, "self.pem"),
    selfKey: join(dir, "self.key"),
  };
}
