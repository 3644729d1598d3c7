/**
 * Call ids: `<client>/<seq>`, where the client is one invoker (`<member id>/<random>`, new
 * for every start of a member) and `seq` its call counter in base 36. Every request also
 * carries the client's watermark: every call of that client below it is answered (it will
 * never be retried), which lets a partition drop its dedupe records of those calls
 * (map/dedupe_records.ts).
 */

/** The id of call number `seq` of `client`. */
export function callId(client: string, seq: number): string {
  return `${client}/${seq.toString(36)}`;
}

/** A parsed call id (shared: never changed by its users). */
export interface ParsedCallId {
  readonly client: string;
  readonly seq: number;
}

// The last id parsed: a primary parses each write's id three times (dedupe lookup, watermark, record).
let lastId = "";
let lastParsed: ParsedCallId | null = null;

/** The client and sequence number of a call id, or null for an id of another form. */
export function parseCallId(id: string): ParsedCallId | null {
  if (id === lastId) return lastParsed;
  const i = id.lastIndexOf("/");
  let parsed: ParsedCallId | null = null;
  if (i > 0 && i < id.length - 1 && id.length - i - 1 <= 10) {
    let seq = 0;
    for (let j = i + 1; j < id.length; j++) {
      const ch = id.charCodeAt(j);
      // [0-9a-z]: base-36 digits, lower case only.
      const d = ch >= 48 && ch <= 57 ? ch - 48 : ch >= 97 && ch <= 122 ? ch - 87 : -1;
      if (d < 0) {
        seq = -1;
        break;
      }
      seq = seq * 36 + d;
    }
    if (seq >= 0) parsed = { client: id.slice(0, i), seq };
  }
  lastId = id;
  lastParsed = parsed;
  return parsed;
}

/** The member a client (an invoker) runs on. */
export function memberOfClient(client: string): string {
  const i = client.lastIndexOf("/");
  return i < 0 ? client : client.slice(0, i);
}
