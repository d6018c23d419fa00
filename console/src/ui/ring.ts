/**
 * The newest `capacity` items of a stream, oldest first: a push when full overwrites the oldest in place, so keeping
 * the last 20,000 rows of a live stream costs nothing per item (a splice off the front of an array moves them all).
 */
export class RingBuffer<T> {
  readonly #items: Array<T | undefined>;
  /** Index in #items of the oldest item. */
  #start = 0;
  #length = 0;

  constructor(readonly capacity: number) {
    if (!Number.isInteger(capacity) || capacity < 1) throw new RangeError(`ring buffer capacity ${capacity}: a whole number from 1`);
    this.#items = new Array(capacity);
  }

  get length(): number {
    return this.#length;
  }

  /** Adds `item` as the newest; when full, the oldest falls off. */
  push(item: T): void {
    if (this.#length < this.capacity) {
      this.#items[(this.#start + this.#length) % this.capacity] = item;
      this.#length++;
    } else {
      this.#items[this.#start] = item;
      this.#start = (this.#start + 1) % this.capacity;
    }
  }

  /** The item `i` places from the oldest (0 is the oldest), or undefined outside 0 … length - 1. */
  at(i: number): T | undefined {
    if (!Number.isInteger(i) || i < 0 || i >= this.#length) return undefined;
    return this.#items[(this.#start + i) % this.capacity];
  }

  /** A copy of the items, oldest first. */
  toArray(): T[] {
    const end = this.#start + this.#length;
    if (end <= this.capacity) return this.#items.slice(this.#start, end) as T[];
    return [...this.#items.slice(this.#start), ...this.#items.slice(0, end - this.capacity)] as T[];
  }

  clear(): void {
    this.#items.fill(undefined);
    this.#start = 0;
    this.#length = 0;
  }
}
