/**
 * Fans the one transport handler set out to the layers: each layer registers the kinds it
 * owns. A message of a kind nobody registered is counted and ignored.
 */
import { kindName, type Message } from "../wire/message.ts";
import type { NodeId, Transport } from "./transport.ts";

export type MessageHandler = (from: NodeId, msg: Message) => void;
export type LinkHandler = (peer: NodeId, up: boolean, reason?: string) => void;

export class MessageRouter {
  #byKind = new Map<number, MessageHandler>();
  #link: LinkHandler[] = [];
  unhandled = 0;
  handlerErrors = 0;
  onHandlerError: (kind: string, err: unknown) => void = () => {};

  constructor(readonly transport: Transport) {
    transport.setHandlers({
      message: (from, msg) => this.dispatch(from, msg),
      linkUp: (peer) => this.#link.forEach((h) => h(peer, true)),
      linkDown: (peer, reason) => this.#link.forEach((h) => h(peer, false, reason)),
    });
  }

  /** Registers the handler for one or more kinds. */
  on(kinds: number | number[], handler: MessageHandler): void {
    for (const k of Array.isArray(kinds) ? kinds : [kinds]) {
      if (this.#byKind.has(k)) throw new Error(`Cannot register ${kindName(k)}: already handled`);
      this.#byKind.set(k, handler);
    }
  }

  onLink(handler: LinkHandler): void {
    this.#link.push(handler);
  }

  dispatch(from: NodeId, msg: Message): void {
    const h = this.#byKind.get(msg.t);
    if (!h) {
      this.unhandled++;
      return;
    }
    try {
      h(from, msg);
    } catch (err) {
      // A handler bug must not take the transport down with it; it is counted and reported.
      this.handlerErrors++;
      this.onHandlerError(kindName(msg.t), err);
    }
  }
}
