/**
 * The checks compiled from the zod schemas (src/wire/fast_check.ts) against zod itself, on
 * generated and mutated values of every registered message kind and every op body: whatever a
 * compiled check accepts, zod accepts, with an equal result (same fields stripped, same values).
 * What a compiled check rejects goes to zod, so validation accepts exactly what the schema does.
 * The generated values that zod accepts must also pass the compiled check (else it saves nothing).
 */
import { expect, test } from "bun:test";
import { z } from "zod";
import { Random } from "../src/core/random.ts";
import { bodySchemaOf, opNames } from "../src/map/operations.ts";
import { compileCheck, type FastCheck, markBytes, REJECT } from "../src/wire/fast_check.ts";
import { fastCheckOf, registeredKinds, schemaOf, validateMessage, w } from "../src/wire/message.ts";
import { randomValue } from "./support/arbitrary_message.ts";
import { HOT_KINDS } from "./support/codec_equivalence.ts";
import { mutate } from "./support/mutate_value.ts";
import "../src/node.ts";

const hints = { ids: ["a", "b", "x", "fuzzed", "k1"] };

// deno-lint-ignore no-explicit-any
const show = (v: unknown): string => (globalThis as any).Bun?.inspect(v) ?? String(v);

interface Tally {
  values: number;
  fastAccepted: number;
  zodAccepted: number;
  generatedMissed: string[];
}

/** Checks one value: a compiled accept must be zod's accept with an equal result. */
function compare(name: string, schema: z.ZodType, fast: FastCheck, v: unknown, generated: boolean, t: Tally) {
  t.values++;
  const f = fast(v);
  const r = schema.safeParse(v);
  if (r.success) t.zodAccepted++;
  if (f !== REJECT) {
    t.fastAccepted++;
    if (!r.success) throw new Error(`${name}: compiled check accepted what zod rejects: ${show(v)}`);
    expect(f).toStrictEqual(r.data);
  } else if (generated && r.success && t.generatedMissed.length < 5) {
    t.generatedMissed.push(`${name}: ${show(v).slice(0, 200)}`);
  }
}

test("compiled checks accept only what zod accepts, with zod's result, on every kind and op body", () => {
  const rng = new Random(16);
  const targets: Array<{ name: string; schema: z.ZodType; fast: FastCheck }> = [];
  for (const { kind, name } of registeredKinds()) {
    const fast = fastCheckOf(kind);
    if (fast) targets.push({ name, schema: schemaOf(kind)!, fast });
  }
  for (const op of Object.keys(opNames).map(Number)) {
    const b = bodySchemaOf(op);
    if (b?.fast) targets.push({ name: `body ${opNames[op]}`, schema: b.schema, fast: b.fast });
  }
  // Every hot kind compiles (the put and get path): requests, responses, backups and their acks.
  for (const hot of HOT_KINDS) {
    expect(targets.some((t) => t.name === hot)).toBe(true);
  }
  for (const hot of ["Get", "Put", "Set", "PutAll", "GetAll", "Remove", "Delete"]) {
    expect(targets.some((t) => t.name === `body ${hot}`)).toBe(true);
  }
  const tally: Tally = { values: 0, fastAccepted: 0, zodAccepted: 0, generatedMissed: [] };
  for (const { name, schema, fast } of targets) {
    for (let i = 0; i < 300; i++) {
      const v = randomValue(schema, rng, hints);
      compare(name, schema, fast, v, true, tally);
      let m = v;
      for (let j = 0; j < 1 + rng.int(3); j++) {
        m = mutate(m, rng);
        compare(name, schema, fast, m, false, tally);
      }
    }
  }
  console.log(`fast checks: ${targets.length} schemas, ${JSON.stringify({ ...tally, generatedMissed: undefined })}`);
  expect(tally.generatedMissed).toEqual([]);
  // Both sides of the comparison were exercised.
  expect(tally.fastAccepted).toBeGreaterThan(tally.values / 4);
  expect(tally.zodAccepted - tally.fastAccepted).toBeGreaterThanOrEqual(0);
  expect(tally.values - tally.zodAccepted).toBeGreaterThan(tally.values / 5);
});

test("validation with the compiled checks keeps zod's verdict and reason for what it rejects", () => {
  // A string of 200 code points in 400 UTF-16 units: the compiled check passes it to zod, which accepts it.
  const c = "😀".repeat(200);
  const ok = validateMessage({ t: 140, c, a: 0, p: 1, e: 0, op: 1, b: null, extra: 1 });
  expect(ok).toStrictEqual({ ok: true, msg: { t: 140, c, a: 0, p: 1, e: 0, op: 1, b: null } });
  const bad = validateMessage({ t: 140, c: "x", a: -1, p: 1, e: 0, op: 1, b: null });
  expect(bad.ok).toBe(false);
  expect(!bad.ok && bad.reason).toStartWith("invalid InvokeRequest:");
  // A required key must be present even when its schema accepts undefined (zod's rule).
  expect(validateMessage({ t: 140, c: "x", a: 0, p: 1, e: 0, op: 1 }).ok).toBe(false);
});

test("schemas with parts the compiler does not know are left to zod", () => {
  expect(compileCheck(z.string().email())).toBeNull();
  expect(compileCheck(z.number().int().default(3))).toBeNull();
  expect(compileCheck(z.object({ a: z.string() }).strict())).toBeNull();
  expect(compileCheck(z.union([z.string(), z.number()]))).toBeNull();
  expect(compileCheck(z.instanceof(Uint8Array))).toBeNull();
  expect(compileCheck(markBytes(z.instanceof(Uint8Array), 4))).not.toBeNull();
  expect(compileCheck(z.object({ k: w.bytes(4) }))!({ k: new Uint8Array(5) })).toBe(REJECT);
});
