/**
 * WebRTC transports for tests, linked through one signaling server on loopback: each
 * `node(id)` is a transport with its own signaling client (cluster "c", secret "s3cret",
 * 10 s connect timeout unless `extra` says otherwise, no-op handlers until the test sets
 * its own). `close()` closes them all, for `afterEach`.
 */
import { SignalingClient } from "../../src/signaling/client.ts";
import { createSignalingServer, type SignalingServer } from "../../src/signaling/server.ts";
import { WebRtcTransport, type WebRtcTransportOptions } from "../../src/transport/webrtc.ts";

export class WebRtcNodes {
  server: SignalingServer | null = null;
  readonly #transports: WebRtcTransport[] = [];
  readonly #clients: SignalingClient[] = [];

  /** A transport for member `self`, registered with the signaling server. */
  async node(self: string, extra: Partial<WebRtcTransportOptions> = {}): Promise<WebRtcTransport> {
    this.server ??= await createSignalingServer({ port: 0 });
    const sc = new SignalingClient({ url: this.server.url, cluster: "c", self });
    await sc.start();
    this.#clients.push(sc);
    const t = new WebRtcTransport({
      self,
      cluster: "c",
      secret: "s3cret",
      signaling: sc,
      connectTimeoutMs: 10_000,
      ...extra,
    });
    t.setHandlers({ message() {}, linkUp() {}, linkDown() {} });
    this.#transports.push(t);
    return t;
  }

  /** Closes every transport, client and the server. */
  async close(): Promise<void> {
    await Promise.all(this.#transports.splice(0).map((t) => t.close()));
    for (const c of this.#clients.splice(0)) c.close();
    await this.server?.close();
    this.server = null;
  }
}
