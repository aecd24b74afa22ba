import fc from 'fast-check'

/**
 * Shared fast-check arbitraries for the property-based fuzz tests (issue 17): values MessagePack
 * can carry, with the shapes that broke error paths before — maps whose toString or valueOf is
 * not a function, huge and unsafe numbers, byte strings — mixed into ordinary ones.
 */

/** Number of runs per property in `npm test`; `npm run fuzz` drives the live node instead. */
export const FUZZ_RUNS = Number(process.env.HEARSAY_FUZZ_RUNS ?? 300)

const hostileKeys = ['toString', 'valueOf', '__proto__', 'constructor', 'hasOwnProperty', 'then', 'length', 'key', 'value', 'id', 'code', 'body', 'type', 'name', 'peer', 'entries', 'members', 'prefix', 'limit']

/** A leaf MessagePack value: numbers at the edges, strings, byte strings, nil, booleans. */
export const leaf: fc.Arbitrary<unknown> = fc.oneof(
  fc.integer(),
  fc.constantFrom(0, -1, 1, 2 ** 32, 2 ** 53 - 1, 2 ** 53, -(2 ** 53), Number.MAX_VALUE, 0.5, -0.5, NaN, Infinity, -Infinity),
  fc.double(),
  fc.string({ maxLength: 40 }),
  fc.string({ unit: 'binary', maxLength: 20 }),
  fc.uint8Array({ maxLength: 64 }),
  fc.constantFrom(null, true, false),
)

/** Any value up to a small depth, maps keyed by names protocol code reads (or must never call). */
export const msgpackValue: fc.Arbitrary<unknown> = fc.letrec<{ value: unknown }>(tie => ({
  value: fc.oneof(
    { depthSize: 'small', withCrossShrink: true },
    leaf,
    fc.array(tie('value'), { maxLength: 6 }),
    fc.dictionary(fc.oneof(fc.constantFrom(...hostileKeys), fc.string({ maxLength: 8 })), tie('value'), { maxKeys: 6 }),
  ),
})).value
