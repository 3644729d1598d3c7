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

/** The client and sequence number of a call id, or null for an id of another form. */
export function parseCallId(id: string): { client: string; seq: number } | null {
  const i = id.lastIndexOf("/");
  if (i <= 0 || i === id.length - 1 || id.length - i - 1 > 10) return null;
  const tail = id.slice(i + 1);
  if (!/^[0-9a-z]+$/.test(tail)) return null;
  return { client: id.slice(0, i), seq: parseInt(tail, 36) };
}

/** The member a client (an invoker) runs on. */
export function memberOfClient(client: string): string {
  const i = client.lastIndexOf("/");
  return i < 0 ? client : client.slice(0, i);
}
