/**
 * Remembers the last `capacity` event ids added (a ring: the oldest is forgotten first), to drop events a monitor's
 * replay pushes again. One add() per event both checks and remembers it.
 *
 * An id of one monitor is `idigi:<monitor>:<32 hex digits>[:<position>]` (mapping.ts: the hex digits are 128 bits of
 * a SHA-256 of the event's content). Such ids are kept as their 128 bits and position in typed arrays, found through
 * an open-addressing table: the same answers as a Set of the strings (the prefix is checked to be the monitor's own),
 * without keeping 100,000 strings alive. Kept as strings, every id outlived the young generation and was copied into
 * the old one: de-duplication cost the listener ~10 µs of its ~35 per event in bench:idigi, ~5 µs this way.
 * An id of any other shape is kept in a plain Set, so the class stays right for whatever it is given.
 */
export class RecentIds {
  /** Ring slot → the id's 128 bits (4 words per slot). */
  private readonly digests: Uint32Array;
  /** Ring slot → position + 1 (0: none). */
  private readonly positions: Uint32Array;
  /** Ring slot → 1 while the table points at it (a forgotten or never-filled slot is 0). */
  private readonly live: Uint8Array;
  /** Open addressing with linear probing: ring slot + 1, or 0 for an empty bucket. */
  private readonly table: Int32Array;
  private readonly mask: number;
  private next = 0;
  /** `idigi:<monitor>:` of the first id seen: ids with another prefix go to `others`. */
  private prefix: string | undefined;
  /** Ids not of the digest shape, with their own ring order. */
  private readonly others = new Set<string>();
  private readonly otherRing: Array<string | undefined> = [];
  private otherNext = 0;
  // Scratch for the id being looked at (no allocation per call).
  private readonly key = new Uint32Array(5);

  constructor(readonly capacity: number) {
    const slots = Math.max(0, Math.floor(capacity));
    this.digests = new Uint32Array(slots * 4);
    this.positions = new Uint32Array(slots);
    this.live = new Uint8Array(slots);
    // At most half full: probes stay short.
    let size = 2;
    while (size < slots * 2) size *= 2;
    this.table = new Int32Array(slots === 0 ? 0 : size);
    this.mask = size - 1;
  }

  has(id: string): boolean {
    if (this.capacity === 0) return false;
    if (!this.parse(id)) return this.others.has(id);
    return this.find() >= 0;
  }

  /** Remembers `id`; false when it is remembered already (nothing changes), true when it was not. */
  add(id: string): boolean {
    if (this.capacity === 0) return true;
    if (!this.parse(id)) return this.addOther(id);
    if (this.find() >= 0) return false;
    const slot = this.next;
    this.next = (this.next + 1) % this.capacity;
    if (this.live[slot] === 1) this.evict(slot);
    const k = this.key;
    const d = this.digests;
    const o = slot * 4;
    d[o] = k[0]!;
    d[o + 1] = k[1]!;
    d[o + 2] = k[2]!;
    d[o + 3] = k[3]!;
    this.positions[slot] = k[4]!;
    this.live[slot] = 1;
    let b = this.home(k[0]!, k[4]!);
    while (this.table[b] !== 0) b = (b + 1) & this.mask;
    this.table[b] = slot + 1;
    return true;
  }

  /** Forgets an id that was added but never stored (its ring slot is reused later). */
  forget(id: string): void {
    if (this.capacity === 0) return;
    if (!this.parse(id)) {
      this.others.delete(id);
      return;
    }
    const b = this.find();
    if (b < 0) return;
    this.live[this.table[b]! - 1] = 0;
    this.remove(b);
  }

  /** Reads an id of the digest shape into `key`; false for any other shape. */
  private parse(id: string): boolean {
    const end = id.length;
    let digestEnd = end;
    let position = 0;
    const lastColon = id.lastIndexOf(":");
    if (lastColon < 0) return false;
    if (end - lastColon - 1 !== 32) {
      // `…:<digest>:<position>`: a position of at most 9 digits.
      const digits = end - lastColon - 1;
      if (digits < 1 || digits > 9) return false;
      let p = 0;
      for (let i = lastColon + 1; i < end; i++) {
        const c = id.charCodeAt(i) - 48;
        if (c < 0 || c > 9) return false;
        p = p * 10 + c;
      }
      position = p + 1;
      digestEnd = lastColon;
      if (digestEnd < 33 || id.charCodeAt(digestEnd - 33) !== 58) return false;
    }
    const digestStart = digestEnd - 32;
    if (this.prefix === undefined) this.prefix = id.slice(0, digestStart);
    else if (digestStart !== this.prefix.length || !id.startsWith(this.prefix)) return false;
    const k = this.key;
    for (let w = 0; w < 4; w++) {
      let v = 0;
      for (let i = digestStart + w * 8, e = i + 8; i < e; i++) {
        const c = id.charCodeAt(i);
        // Lower-case only, as mapping.ts writes them: an upper-case spelling is another string, so another id.
        const d = c >= 48 && c <= 57 ? c - 48 : c >= 97 && c <= 102 ? c - 87 : -1;
        if (d < 0) return false;
        v = (v << 4) | d;
      }
      k[w] = v >>> 0;
    }
    k[4] = position;
    return true;
  }

  /** The bucket holding `key`, or -1. */
  private find(): number {
    const k = this.key;
    let b = this.home(k[0]!, k[4]!);
    for (;;) {
      const s = this.table[b]!;
      if (s === 0) return -1;
      if (this.equals(s - 1)) return b;
      b = (b + 1) & this.mask;
    }
  }

  private equals(slot: number): boolean {
    const k = this.key;
    const d = this.digests;
    const o = slot * 4;
    return d[o] === k[0] && d[o + 1] === k[1] && d[o + 2] === k[2] && d[o + 3] === k[3] && this.positions[slot] === k[4];
  }

  /** The digest bits are uniform already: the first word, mixed with the position, picks the bucket. */
  private home(word: number, position: number): number {
    return ((word ^ Math.imul(position, 0x9e3779b1)) >>> 0) & this.mask;
  }

  /** Takes the oldest id's slot out of the table before the ring reuses it. */
  private evict(slot: number): void {
    let b = this.home(this.digests[slot * 4]!, this.positions[slot]!);
    while (this.table[b] !== slot + 1) b = (b + 1) & this.mask;
    this.live[slot] = 0;
    this.remove(b);
  }

  /** Empties bucket `b` and shifts back the entries after it that probed past it (no tombstones). */
  private remove(b: number): void {
    let hole = b;
    let j = b;
    for (;;) {
      j = (j + 1) & this.mask;
      const s = this.table[j]!;
      if (s === 0) break;
      const h = this.home(this.digests[(s - 1) * 4]!, this.positions[s - 1]!);
      // The entry at j may move into the hole unless its home lies cyclically in (hole, j].
      const stays = hole <= j ? h > hole && h <= j : h > hole || h <= j;
      if (!stays) {
        this.table[hole] = s;
        hole = j;
      }
    }
    this.table[hole] = 0;
  }

  private addOther(id: string): boolean {
    if (this.others.has(id)) return false;
    const oldest = this.otherRing[this.otherNext];
    if (oldest !== undefined) this.others.delete(oldest);
    this.otherRing[this.otherNext] = id;
    this.otherNext = (this.otherNext + 1) % this.capacity;
    this.others.add(id);
    return true;
  }
}
