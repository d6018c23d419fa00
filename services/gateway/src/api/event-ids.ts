import { randomFillSync } from "node:crypto";

/*
 * Ids for published events that come without one: random (version 4) UUIDs, as crypto.randomUUID makes them, but
 * written as text into a buffer and read out as one string. randomUUID builds each id from some twenty string
 * concatenations: about 500 bytes of garbage per id, the largest allocation of the gateway's Publish after the
 * request itself. Random bytes are drawn from the same CSPRNG, 256 ids' worth at a time.
 */

const IDS_PER_FILL = 256;
const random = Buffer.alloc(16 * IDS_PER_FILL);
let used = IDS_PER_FILL;
const text = Buffer.alloc(36);
const HEX = Buffer.from("0123456789abcdef", "latin1");
const DASH = 0x2d;

export function randomEventId(): string {
  if (used === IDS_PER_FILL) {
    randomFillSync(random);
    used = 0;
  }
  const at = 16 * used++;
  let p = 0;
  for (let i = 0; i < 16; i++) {
    if (i === 4 || i === 6 || i === 8 || i === 10) text[p++] = DASH;
    let b = random[at + i]!;
    // RFC 9562: version 4 in the high nibble of byte 6, variant 10 in the high bits of byte 8.
    if (i === 6) b = (b & 0x0f) | 0x40;
    else if (i === 8) b = (b & 0x3f) | 0x80;
    text[p++] = HEX[b >> 4]!;
    text[p++] = HEX[b & 0x0f]!;
  }
  return text.toString("latin1", 0, 36);
}
