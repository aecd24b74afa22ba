/**
 * A small toolkit for turning untrusted decoded MessagePack values into typed ones. Every
 * function either returns the value typed or throws a MalformedBodyError whose message is one
 * line naming the field, so protocol modules write validators as plain expressions and the
 * transport logs the reason before closing the link. Nothing here trusts a prototype: objects
 * are read through own properties only.
 */

export class MalformedBodyError extends Error {
  constructor(reason: string) {
    super(reason)
    this.name = 'MalformedBodyError'
  }
}

export type Validator<T> = (value: unknown, what: string) => T

function fail(reason: string): never {
  throw new MalformedBodyError(reason)
}

/** A plain object (a MessagePack map); arrays, byte strings and extension values are not. */
export function expectObject(value: unknown, what: string): Readonly<Record<string, unknown>> {
  if (typeof value !== 'object' || value === null || Array.isArray(value) || value instanceof Uint8Array) {
    fail(`${what} is not a map`)
  }
  const prototype: unknown = Object.getPrototypeOf(value)
  if (prototype !== Object.prototype && prototype !== null) fail(`${what} is not a map`)
  return value as Record<string, unknown>
}

/** The own property `name` of a validated object; undefined when absent. */
export function field(object: Readonly<Record<string, unknown>>, name: string): unknown {
  return Object.hasOwn(object, name) ? object[name] : undefined
}

/** A string of at most maxChars UTF-16 code units (and at least minChars). */
export function expectString(value: unknown, what: string, maxChars: number, minChars = 0): string {
  if (typeof value !== 'string') fail(`${what} is not a string`)
  if (value.length > maxChars) fail(`${what} has ${value.length} characters, more than ${maxChars}`)
  if (value.length < minChars) fail(`${what} has ${value.length} characters, fewer than ${minChars}`)
  return value
}

/** A non-negative safe integer no greater than max. */
export function expectUint(value: unknown, what: string, max = Number.MAX_SAFE_INTEGER): number {
  if (typeof value !== 'number' || !Number.isSafeInteger(value) || value < 0) fail(`${what} is not a non-negative integer`)
  if (value > max) fail(`${what} is ${value}, more than ${max}`)
  return value
}

export function expectBoolean(value: unknown, what: string): boolean {
  if (typeof value !== 'boolean') fail(`${what} is not a boolean`)
  return value
}

/** A MessagePack byte string of at most maxBytes (and at least minBytes). */
export function expectBytes(value: unknown, what: string, maxBytes: number, minBytes = 0): Uint8Array {
  if (!(value instanceof Uint8Array)) fail(`${what} is not a byte string`)
  if (value.byteLength > maxBytes) fail(`${what} has ${value.byteLength} bytes, more than ${maxBytes}`)
  if (value.byteLength < minBytes) fail(`${what} has ${value.byteLength} bytes, fewer than ${minBytes}`)
  return value
}

/** An array of at most maxItems entries, each checked by `item` (named `what[i]` in reasons). */
export function expectArray<T>(value: unknown, what: string, maxItems: number, item: Validator<T>): T[] {
  if (!Array.isArray(value)) fail(`${what} is not an array`)
  if (value.length > maxItems) fail(`${what} has ${value.length} entries, more than ${maxItems}`)
  return value.map((entry, index) => item(entry, `${what}[${index}]`))
}

/** One of a fixed set of strings. */
export function expectOneOf<const T extends string>(value: unknown, what: string, allowed: readonly T[]): T {
  if (typeof value !== 'string' || !(allowed as readonly string[]).includes(value)) {
    fail(`${what} is not one of ${allowed.join(', ')}`)
  }
  return value as T
}

/** Runs `check` on the value unless it is absent (undefined or nil). */
export function optional<T>(value: unknown, what: string, check: Validator<T>): T | undefined {
  return value === undefined || value === null ? undefined : check(value, what)
}
