/**
 * Seeded randomness (sfc32). Every random choice in protocol code goes through an injected
 * `Random`, so a simulation run is a pure function of its seed.
 */
export class Random {
  #a: number;
  #b: number;
  #c: number;
  #d: number;

  constructor(readonly seed: number) {
    this.#a = 0x9e3779b9;
    this.#b = 0x243f6a88;
    this.#c = 0xb7e15162;
    this.#d = seed >>> 0;
    for (let i = 0; i < 15; i++) this.next();
  }

  /** Uniform in [0, 1). */
  next(): number {
    let a = this.#a, b = this.#b, c = this.#c, d = this.#d;
    a |= 0;
    b |= 0;
    c |= 0;
    d |= 0;
    const t = (((a + b) | 0) + d) | 0;
    d = (d + 1) | 0;
    a = b ^ (b >>> 9);
    b = (c + (c << 3)) | 0;
    c = (c << 21) | (c >>> 11);
    c = (c + t) | 0;
    this.#a = a;
    this.#b = b;
    this.#c = c;
    this.#d = d;
    return (t >>> 0) / 4294967296;
  }

  /** Integer in [0, n). */
  int(n: number): number {
    return Math.floor(this.next() * n);
  }

  /** True with probability p. */
  chance(p: number): boolean {
    return this.next() < p;
  }

  /** A random element. */
  pick<T>(xs: readonly T[]): T {
    return xs[this.int(xs.length)];
  }

  /** Fisher–Yates shuffle in place; returns xs. */
  shuffle<T>(xs: T[]): T[] {
    for (let i = xs.length - 1; i > 0; i--) {
      const j = this.int(i + 1);
      [xs[i], xs[j]] = [xs[j], xs[i]];
    }
    return xs;
  }

  /** A new independent generator derived from this one. */
  fork(): Random {
    return new Random(Math.floor(this.next() * 2 ** 32));
  }

  /** A random id (hex). */
  id(len = 16): string {
    let s = "";
    while (s.length < len) s += Math.floor(this.next() * 2 ** 32).toString(16).padStart(8, "0");
    return s.slice(0, len);
  }
}

/** A Random seeded from the system's entropy, for running nodes. */
export function systemRandom(): Random {
  const b = new Uint32Array(1);
  crypto.getRandomValues(b);
  return new Random(b[0]);
}
