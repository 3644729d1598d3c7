/**
 * Encoding what an application hands the map layer (keys, values, queue items, topic
 * messages, processor arguments). cbor-x refuses a function, a symbol or anything holding one
 * with a bare `Error("Unknown type: function")`, and a cyclic object overflows the stack: an
 * application switching on `code` could not tell either from a crash, so such input is a
 * `ShoalError` `INVALID_ARGUMENT` naming what could not be encoded (found by an internal review).
 */
import { ShoalError } from "../core/errors.ts";
import { encodeValue } from "../wire/codec.ts";

/**
 * Encodes `value` for the wire and the record stores.
 * @param value what the caller passed
 * @param what what it is, for the message: "the map key", "the queue item", …
 * @returns its CBOR encoding
 * @throws {ShoalError} `INVALID_ARGUMENT` when CBOR cannot encode it
 * @example
 * ```ts
 * import { encodeInput } from "./encode_input.ts";
 * encodeInput({ a: 1 }, "the map value"); // bytes
 * try {
 *   encodeInput(() => 1, "the map value");
 * } catch (e) {
 *   console.log((e as Error).message); // Cannot encode the map value: it is or holds a function, which CBOR cannot encode
 * }
 * ```
 */
export function encodeInput(value: unknown, what: string): Uint8Array {
  try {
    return encodeValue(value);
  } catch (e) {
    throw new ShoalError("INVALID_ARGUMENT", `Cannot encode ${what}: ${reasonOf(e)}`, { cause: e });
  }
}

/** Why cbor-x refused, in the caller's terms. */
function reasonOf(e: unknown): string {
  const msg = e instanceof Error ? e.message : String(e);
  // V8 and JavaScriptCore both say "Maximum call stack size exceeded" when the encoder recursed without end.
  if (e instanceof RangeError && /call stack/i.test(msg)) return "it refers to itself or nests too deeply";
  const type = /^Unknown type: (\w+)/.exec(msg)?.[1];
  return type ? `it is or holds a ${type}, which CBOR cannot encode` : msg;
}
