/**
 * Startup checks of the numeric options modules are built with: a bad one is a programming or
 * wiring error, so it stops construction with a RangeError naming the option.
 */
export function assertPositiveIntegers(values: Readonly<Record<string, number>>): void {
  for (const [name, value] of Object.entries(values)) {
    if (!Number.isSafeInteger(value) || value < 1) throw new RangeError(`${name} must be a positive integer, got ${value}`)
  }
}
