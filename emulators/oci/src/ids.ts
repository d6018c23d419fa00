/** OCIDs and short ids. Deterministic per emulator seed, so a test run reads the same way twice. */
import { createHash } from "node:crypto";

const ALPHABET = "abcdefghijklmnopqrstuvwxyz234567";

/** Lower-case base32 of sha256(seed), `length` characters: the shape of an OCID's unique part. */
export function base32Id(seed: string, length: number): string {
  const digest = createHash("sha256").update(seed).digest();
  let out = "";
  let bits = 0;
  let value = 0;
  for (const byte of digest) {
    value = (value << 8) | byte;
    bits += 8;
    while (bits >= 5 && out.length < length) {
      out += ALPHABET[(value >>> (bits - 5)) & 31];
      bits -= 5;
    }
    if (out.length >= length) break;
  }
  return out;
}

export class OcidFactory {
  private n = 0;
  constructor(
    private readonly seed: string,
    private readonly region: string,
  ) {}

  /** e.g. `ocid1.iotdigitaltwininstance.oc1.eu-frankfurt-1.<60 chars>`. */
  next(type: string): string {
    this.n++;
    return `ocid1.${type}.oc1.${this.region}.${base32Id(`${this.seed}/${type}/${this.n}`, 60)}`;
  }
}
