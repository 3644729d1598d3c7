import { describe, expect, test } from "bun:test";
import { bucketCounts, parseJitDump } from "../bench/perf_jit.ts";

/** A jitdump as JavaScriptCore writes it: a 40-byte header, then records. */
function jitDump(pid: number, loads: Array<{ addr: bigint; size: bigint; name: string }>, tail = new Uint8Array()) {
  const parts: Uint8Array[] = [];
  const header = new DataView(new ArrayBuffer(40));
  header.setUint32(0, 0x4a695444, true);
  header.setUint32(4, 1, true);
  header.setUint32(8, 40, true);
  header.setUint32(12, 62, true);
  header.setUint32(20, pid, true);
  header.setBigUint64(24, 123n, true);
  parts.push(new Uint8Array(header.buffer));
  for (const l of loads) {
    const name = new TextEncoder().encode(l.name + "\0");
    const code = new Uint8Array(Number(l.size));
    const size = 56 + name.length + code.length;
    const rec = new DataView(new ArrayBuffer(56));
    rec.setUint32(0, 0, true); // JIT_CODE_LOAD
    rec.setUint32(4, size, true);
    rec.setUint32(16, pid, true);
    rec.setBigUint64(24, l.addr, true);
    rec.setBigUint64(32, l.addr, true);
    rec.setBigUint64(40, l.size, true);
    parts.push(new Uint8Array(rec.buffer), name, code);
  }
  parts.push(tail);
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const p of parts) (out.set(p, at), at += p.length);
  return out;
}

describe("perf_jit", () => {
  test("a jitdump's code loads become perf map lines; a record cut short ends the file", () => {
    // A record header claiming more bytes than remain (a process killed while writing).
    const cut = new Uint8Array(16);
    new DataView(cut.buffer).setUint32(4, 4096, true);
    const d = parseJitDump(jitDump(4242, [
      { addr: 0x7f0000001000n, size: 0x80n, name: "JSC-DFG: serve#AbCdEf" },
      { addr: 0x7f0000002000n, size: 0x10n, name: "JSC-Thunk: DefaultCall" },
    ], cut));
    expect(d.pid).toBe(4242);
    expect(d.time).toBe(123n);
    expect(d.lines).toEqual(["7f0000001000 80 JSC-DFG: serve#AbCdEf", "7f0000002000 10 JSC-Thunk: DefaultCall"]);
  });

  test("not a jitdump: refused", () => {
    expect(() => parseJitDump(new Uint8Array(64))).toThrow("not a jitdump file");
  });

  test("samples go to the first bucket whose function is on the stack; other threads and processes apart", () => {
    const script = [
      "bun.exe 10/10 ",
      "\t    ffffffff81000000 __x64_sys_sendmmsg ([kernel.kallsyms])",
      "\t    7f00000010 JSC-FTL: transmitOnce#Aa (/tmp/perf-10.map)",
      "\t    7f00000020 JSC-DFG: onFrame#Bb (/tmp/perf-10.map)",
      "",
      "bun.exe 10/10 ",
      "\t    7f00000030 JSC-DFG: applyEntry#Cc (/tmp/perf-10.map)",
      "\t    7f00000020 JSC-DFG: onFrame#Bb (/tmp/perf-10.map)",
      "\t    7f00000040 JSC-FTL: handleData#Dd (/tmp/perf-10.map)",
      "",
      "bun.exe 10/10 ",
      "\t    5555 [unknown] (/x/bun.exe)",
      "\t    7f00000050 JSC-DFG: #Ee (/tmp/perf-10.map)",
      "",
      "HeapHelper 10/11 ",
      "\t    5556 [unknown] (/x/bun.exe)",
      "",
      "bun.exe 99/99 ",
      "\t    7f00000030 JSC-DFG: applyEntry#Cc (/tmp/perf-99.map)",
      "",
    ].join("\n");
    const c = bucketCounts(script, new Set([10]));
    expect(c.total).toBe(4);
    const share = (prefix: string) => [...c.byBucket].filter(([b]) => b.startsWith(prefix)).map(([, n]) => n);
    expect(share("werift send path")).toEqual([1]);
    expect(share("Shoal:")).toEqual([1]);
    expect(share("JavaScript elsewhere")).toEqual([1]);
    expect(share("other thread: HeapHelper")).toEqual([1]);
    expect(c.leaves.get("kernel under transmitOnce")).toBe(1);
    expect(c.leaves.get("js under applyEntry")).toBe(1);
    expect(c.leaves.get("native under (anonymous)")).toBe(1);
  });
});
