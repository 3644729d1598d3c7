/**
 * Member ids bound to certificates (SECURITY.md, "Member ids are bound to certificates"):
 * the check of a signed description against the certificate its sender's id joined with,
 * each member's one DTLS certificate, and real WebRTC transports refusing a process that
 * holds the secret and links under a listed member's id, while that member's link works on.
 */
import { afterEach, describe, expect, test } from "bun:test";
import { checkIdBinding } from "../src/signaling/descriptions.ts";
import { createDtlsIdentity, type DtlsIdentity } from "../src/transport/webrtc.ts";
import { Kind } from "../src/wire/kinds.ts";
import type { Message } from "../src/wire/message.ts";
import { until } from "./support/until.ts";
import { WebRtcNodes } from "./support/webrtc_nodes.ts";
import "../src/transport/messages.ts";

describe("checkIdBinding", () => {
  const d = { from: "b", fp: ["sha-256 AA:BB", "sha-1 CC"] };

  test("an unbound id, or a bound one whose certificate is among the signed fingerprints, passes", () => {
    expect(checkIdBinding(d, undefined)).toBeNull();
    expect(checkIdBinding(d, "sha-256 AA:BB")).toBeNull();
    expect(checkIdBinding(d, "sha-1 CC")).toBeNull();
  });

  test("a bound id signed for another certificate is refused with AUTH_FAILED", () => {
    const r = checkIdBinding(d, "sha-256 AA:BC");
    expect(r?.code).toBe("AUTH_FAILED");
    expect(r?.reason).toContain("member b joined with another DTLS certificate");
    expect(checkIdBinding({ from: "b", fp: [] }, "sha-256 AA:BB")?.code).toBe("AUTH_FAILED");
  });
});

describe("a process with the secret linking under a listed member's id", () => {
  const nodes = new WebRtcNodes();
  afterEach(() => nodes.close());

  test("each identity is its own certificate, in the SDP's normalised form", async () => {
    const [x, y] = await Promise.all([createDtlsIdentity(), createDtlsIdentity()]);
    expect(x.fingerprint).toMatch(/^sha-256 ([0-9A-F]{2}:){31}[0-9A-F]{2}$/);
    expect(y.fingerprint).not.toBe(x.fingerprint);
  });

  test("is refused and counted; the member's own link keeps working", async () => {
    const ids: Record<string, DtlsIdentity> = { a: await createDtlsIdentity(), b: await createDtlsIdentity() };
    const refused: string[] = [];
    const binding = { fingerprintOf: (id: string) => ids[id]?.fingerprint, refused: (id: string) => refused.push(id) };
    const a = await nodes.node("a", { dtls: ids.a });
    const b = await nodes.node("b", { dtls: ids.b });
    a.bindIds(binding);
    b.bindIds(binding);
    expect(a.fingerprint).toBe(ids.a.fingerprint);
    const got: Message[] = [];
    a.setHandlers({ message: (_from, m) => void got.push(m), linkUp() {}, linkDown() {} });
    await b.connect("a"); // the offer (checked by a) and the answer (checked by b) carry the bound certificates
    expect(refused).toEqual([]);

    // Another process holding the secret, with its own certificate, registers as "b" and offers to a.
    const impostor = await nodes.node("b", { dtls: await createDtlsIdentity() });
    const err = await impostor.connect("a").then(() => null, (e: Error) => e);
    expect(err?.message).toContain("joined with another DTLS certificate");
    expect(refused).toEqual(["b"]);
    expect(a.signalingCounters().refused).toBe(1);
    expect(a.signalingCounters().lastRefusal).toContain("member b joined with another DTLS certificate");

    // The real b's link was not replaced.
    expect(a.isLinked("b")).toBe(true);
    b.send("a", { t: Kind.TestEcho, seq: 7, reply: false });
    await until(() => got.length > 0, 5_000, "b's link stopped carrying messages");
    expect(got).toEqual([{ t: Kind.TestEcho, seq: 7, reply: false }]);
  }, 60_000);
});
