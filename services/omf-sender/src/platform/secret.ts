const REDACTED = "[redacted]";
const inspectCustom = Symbol.for("nodejs.util.inspect.custom");

/**
 * A credential that never prints itself: JSON, string conversion and `util.inspect` all show `[redacted]`.
 * Only `reveal()` returns the value, and only the code that puts it on the wire calls it.
 */
export class Secret {
  readonly #value: string;

  constructor(value: string) {
    this.#value = value;
  }

  reveal(): string {
    return this.#value;
  }

  get isEmpty(): boolean {
    return this.#value.length === 0;
  }

  toJSON(): string {
    return REDACTED;
  }

  toString(): string {
    return REDACTED;
  }

  [inspectCustom](): string {
    return REDACTED;
  }
}

export function isSecret(value: unknown): value is Secret {
  return value instanceof Secret;
}
