/**
 * Call ids (src/invoke/call_id.ts): `parseCallId` reads back what `callId` wrote, and gives
 * exactly what the rule "`<client>/<1..10 base-36 digits, lower case>`" gives for any other
 * string (null when it does not fit), also when the same id is parsed again and again (the
 * parser remembers its last id).
 */
import { describe, expect, test } from "bun:test";
import { callId, parseCallId } from "../src/invoke/call_id.ts";

/** The rule, written the plain way. */
function reference(id: string): { client: string; seq: number } | null {
  const i = id.lastIndexOf("/");
  if (i <= 0 || i === id.length - 1 || id.length - i - 1 > 10) return null;
  const tail = id.slice(i + 1);
  if (!/^[0-9a-z]+$/.test(tail)) return null;
  return { client: id.slice(0, i), seq: parseInt(tail, 36) };
}

describe("parseCallId", () => {
  test("reads back every id callId writes, up to 10 base-36 digits", () => {
    const seqs = [0, 1, 35, 36, 1295, 1296, 2 ** 31, 2 ** 32 + 7, 36 ** 10 - 1];
    for (const client of ["m1/abc", "member-x/0z9", "a/b/c"]) {
      for (const seq of seqs) {
        expect(parseCallId(callId(client, seq))).toEqual({ client, seq });
        expect(parseCallId(callId(client, seq))).toEqual({ client, seq }); // parsed again: the remembered one
      }
    }
  });

  test("gives what the rule gives for ids of other forms", () => {
    const ids = [
      "",
      "/",
      "/1",
      "a/",
      "a",
      "a/1/",
      "a/B",
      "a/1A",
      "a/-1",
      "a/1.5",
      "a/ 1",
      "a/1 ",
      "a/{",
      "a/`",
      "a/:",
      "a//",
      "a/0123456789",
      "a/0123456789a",
      "a/zzzzzzzzzz",
      "a/zzzzzzzzzzz",
      "a/é",
      "a/1\u0000",
      "x/y/z",
    ];
    for (const id of ids) {
      expect(parseCallId(id)).toEqual(reference(id));
      expect(parseCallId(id)).toEqual(reference(id));
    }
    // Alternating ids: the remembered id never answers for another one.
    for (let i = 0; i < 200; i++) {
      const id = i % 3 === 0 ? `c${i % 7}/${(i * 7919).toString(36)}` : ids[i % ids.length];
      expect(parseCallId(id)).toEqual(reference(id));
    }
  });
});
