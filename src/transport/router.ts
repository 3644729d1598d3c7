/**
 * Fans the one transport handler set out to the layers: each layer registers the kinds it
 * owns. A message of a kind nobody registered is counted and ignored.
 */
import type { z } from "zod";
import { kindName, type Message } from "../wire/message.ts";
import type { NodeId, Transport } from "./transport.ts";

export type MessageHandler = (from: NodeId, msg: Message) => void;

/** A message schema made by `defineMessage`: an object whose `t` is a kind literal. */
export type MessageSchema = z.ZodObject<{ t: z.ZodLiteral<number> } & z.ZodRawShape>;
export type LinkHandler = (peer: NodeId, up: boolean, reason?: string) => void;

export class MessageRouter {
  #byKind = new Map<number, MessageHandler>();
  #link: LinkHandler[] = [];
  unhandled = 0;
  handlerErrors = 0;
  onHandlerError: (kind: string, err: unknown) => void = () => {};
  /** Frames being delivered (nested when a handler delivers one itself). */
  #frameDepth = 0;
  /** Work deferred to the end of the frame being delivered (afterFrame). */
  #afterFrame: Array<() => void> = [];

  constructor(readonly transport: Transport) {
    transport.setHandlers({
      message: (from, msg) => this.dispatch(from, msg),
      linkUp: (peer) => this.#link.forEach((h) => h(peer, true)),
      linkDown: (peer, reason) => this.#link.forEach((h) => h(peer, false, reason)),
      frame: (deliver) => this.frame(deliver),
    });
  }

  /**
   * Delivers one frame's messages (`deliver` dispatches each), then runs what their handlers
   * deferred with {@link afterFrame}.
   */
  frame(deliver: () => void): void {
    this.#frameDepth++;
    try {
      deliver();
    } finally {
      if (--this.#frameDepth === 0 && this.#afterFrame.length > 0) this.#runAfterFrame();
    }
  }

  /**
   * Defers `fn` to the end of the frame being delivered, so that the replies of the frame's
   * messages leave together. @returns false (and does nothing) outside a frame's delivery:
   * the caller then does the work at once.
   */
  afterFrame(fn: () => void): boolean {
    if (this.#frameDepth === 0) return false;
    this.#afterFrame.push(fn);
    return true;
  }

  #runAfterFrame(): void {
    const fns = this.#afterFrame;
    this.#afterFrame = [];
    for (const fn of fns) {
      try {
        fn();
      } catch (err) {
        this.handlerErrors++;
        this.onHandlerError("afterFrame", err);
      }
    }
  }

  /**
   * Registers the handler for one message schema. The transport validated the message
   * against exactly this schema before dispatch, so the handler gets the parsed, typed
   * message (`z.infer` of the schema) with no cast.
   *
   * @example
   * ```ts ignore
   * router.on(JobTaskDone, (from, msg) => coordinator.onDone(from, msg));
   * ```
   */
  on<S extends MessageSchema>(schema: S, handler: (from: NodeId, msg: z.infer<S>) => void): void;
  /** Registers one handler for several kinds (a layer's own dispatcher switches on `msg.t`). */
  on(kinds: number | number[], handler: MessageHandler): void;
  on(what: number | number[] | MessageSchema, handler: (from: NodeId, msg: never) => void): void {
    const kinds = typeof what === "number" ? [what] : Array.isArray(what) ? what : [what.shape.t.value as number];
    for (const k of kinds) {
      if (this.#byKind.has(k)) throw new Error(`Cannot register ${kindName(k)}: already handled`);
      this.#byKind.set(k, handler as MessageHandler);
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
