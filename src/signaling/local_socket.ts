/**
 * An in-process socket between a member's signaling client and its own signaling hub. A
 * member registers in its own `/signal` room so that members joining through its address
 * can reach it; doing that through the network would need its own certificate to verify
 * for its own bind address (`https://0.0.0.0:…` never does), so it goes through this
 * in-memory pair instead: same hub code path, no network, no TLS.
 */
import { WSContext } from "hono/ws";
import type { SignalingHub } from "./server.ts";

/** The subset of `WebSocket` the signaling client uses. */
export type ClientSocket = Pick<WebSocket, "readyState" | "send" | "close"> & {
  binaryType: BinaryType;
  onopen: ((ev: Event) => void) | null;
  onmessage: ((ev: MessageEvent) => void) | null;
  onerror: ((ev: Event) => void) | null;
  onclose: ((ev: CloseEvent) => void) | null;
};

/**
 * Opens a socket to `hub` in this process. Messages are delivered in order, each in its
 * own microtask, like a network socket's events.
 * @param hub the member's own hub
 * @returns the client end
 */
export function localSocket(hub: SignalingHub): ClientSocket {
  const events = hub.events("local");
  let state: 0 | 1 | 2 | 3 = 0;
  const finish = (code: number, reason: string, fromClient: boolean) => {
    if (state === 3) return;
    state = 3;
    queueMicrotask(() => {
      if (fromClient) events.onClose();
      client.onclose?.(new CloseEvent("close", { code, reason }));
    });
  };
  const server = new WSContext({
    send: (data) => {
      if (state !== 1) return;
      queueMicrotask(() => {
        if (state === 1) client.onmessage?.(new MessageEvent("message", { data }));
      });
    },
    close: (code, reason) => {
      // The hub closes the socket: it forgets it, then the client sees the close.
      events.onClose();
      finish(code ?? 1000, reason ?? "", false);
    },
    get readyState() {
      return state;
    },
    url: null,
    protocol: "",
    raw: undefined,
  });
  const client: ClientSocket = {
    binaryType: "arraybuffer",
    get readyState() {
      return state;
    },
    onopen: null,
    onmessage: null,
    onerror: null,
    onclose: null,
    send(data) {
      if (state !== 1) throw new DOMException("Cannot send: the socket is not open", "InvalidStateError");
      queueMicrotask(() => {
        if (state === 1) events.onMessage(new MessageEvent("message", { data }), server);
      });
    },
    close(code?: number, reason?: string) {
      finish(code ?? 1000, reason ?? "", true);
    },
  } as ClientSocket;
  queueMicrotask(() => {
    if (state !== 0) return;
    state = 1;
    events.onOpen(new Event("open"), server);
    if (state === 1) client.onopen?.(new Event("open"));
  });
  return client;
}
