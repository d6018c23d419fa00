/**
 * A message as plain data to compare with another made by protobuf-es: properties holding undefined dropped (a hand-built
 * message declares its unset fields, protobuf-es leaves them out; an unset oneof's `case` is undefined in both), and
 * bytes as a plain Uint8Array (a Buffer is one, but toStrictEqual tells them apart).
 */
export function comparableMessage<T>(value: T): T {
  if (ArrayBuffer.isView(value)) return new Uint8Array(value.buffer, value.byteOffset, value.byteLength) as T;
  if (Array.isArray(value)) return value.map(comparableMessage) as T;
  if (typeof value !== "object" || value === null) return value;
  return Object.fromEntries(
    Object.entries(value)
      .filter(([, v]) => v !== undefined)
      .map(([k, v]) => [k, comparableMessage(v)]),
  ) as T;
}
