/**
 * The signaling server's WebSocket protocol: JSON text messages, validated with zod on
 * both ends. A client says `hello` (room = roomId(cluster), its member id), gets `welcome`
 * with the ids already in the room, then `peers` whenever the room changes, and exchanges
 * `signal` messages whose opaque `payload` the server relays to one member of the room.
 */
import { z } from "zod";

/** Version of this socket protocol, sent in hello. */
export const SOCKET_PROTOCOL_VERSION = 1;
/** Largest socket message accepted (bytes of JSON text). */
export const MAX_SOCKET_MESSAGE_BYTES = 64 * 1024;
/** Most members listed in one room. */
export const MAX_ROOM_MEMBERS = 256;

const id = z.string().min(1).max(128);

export const ClientHello = z.object({
  type: z.literal("hello"),
  v: z.literal(SOCKET_PROTOCOL_VERSION),
  room: z.string().regex(/^[0-9a-f]{16,64}$/),
  id,
});
export const ClientSignal = z.object({ type: z.literal("signal"), to: id, payload: z.unknown() });
/** Anything a client may send. */
export const ClientMessage = z.discriminatedUnion("type", [ClientHello, ClientSignal]);

export const ServerWelcome = z.object({ type: z.literal("welcome"), id, peers: z.array(id).max(MAX_ROOM_MEMBERS) });
export const ServerPeers = z.object({ type: z.literal("peers"), peers: z.array(id).max(MAX_ROOM_MEMBERS) });
export const ServerSignal = z.object({ type: z.literal("signal"), from: id, payload: z.unknown() });
export const ServerError = z.object({
  type: z.literal("error"),
  code: z.string().max(32),
  reason: z.string().max(300),
});
/** Anything the server may send. */
export const ServerMessage = z.discriminatedUnion("type", [ServerWelcome, ServerPeers, ServerSignal, ServerError]);

export type ClientMessage = z.infer<typeof ClientMessage>;
export type ServerMessage = z.infer<typeof ServerMessage>;

/**
 * Parses one socket message. Never throws.
 * @returns the validated message, or null when it is not valid JSON of the schema
 */
export function parseSocketMessage<T>(schema: z.ZodType<T>, data: unknown): T | null {
  let text: string;
  if (typeof data === "string") text = data;
  else if (data instanceof ArrayBuffer || ArrayBuffer.isView(data)) {
    const bytes = data instanceof ArrayBuffer
      ? new Uint8Array(data)
      : new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
    if (bytes.byteLength > MAX_SOCKET_MESSAGE_BYTES) return null;
    text = new TextDecoder().decode(bytes);
  } else return null;
  if (text.length > MAX_SOCKET_MESSAGE_BYTES) return null;
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch {
    return null;
  }
  const r = schema.safeParse(raw);
  return r.success ? r.data : null;
}
