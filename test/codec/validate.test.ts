import t from 'tap'
import {
  MalformedBodyError, expectArray, expectBoolean, expectBytes, expectObject, expectOneOf, expectString, expectUint, field, optional,
} from '../../lib/codec/validate.js'

t.test('expectObject accepts plain maps only', async t => {
  t.same(expectObject({ a: 1 }, 'x'), { a: 1 })
  t.same(expectObject(Object.create(null), 'x'), {})
  for (const bad of [null, undefined, 1, 'a', [], new Uint8Array(1), new Map(), new Date(0)]) {
    t.throws(() => expectObject(bad, 'body'), MalformedBodyError, `rejects ${Object.prototype.toString.call(bad)}`)
  }
})

t.test('field reads own properties only', async t => {
  const object = expectObject(JSON.parse('{"a":1,"__proto__":{"b":2}}'), 'x')
  t.equal(field(object, 'a'), 1)
  t.equal(field(object, 'b'), undefined, 'a property of the prototype is not a field')
  t.equal(field(object, 'toString'), undefined)
})

t.test('expectString bounds the length and names the field', async t => {
  t.equal(expectString('abc', 'name', 3), 'abc')
  t.throws(() => expectString('abcd', 'hello.name', 3), { message: 'hello.name has 4 characters, more than 3' })
  t.throws(() => expectString('', 'name', 3, 1), /fewer than 1/)
  t.throws(() => expectString(5, 'name', 3), /name is not a string/)
})

t.test('expectUint accepts non-negative safe integers up to a bound', async t => {
  t.equal(expectUint(0, 'n'), 0)
  t.equal(expectUint(Number.MAX_SAFE_INTEGER, 'n'), Number.MAX_SAFE_INTEGER)
  t.throws(() => expectUint(11, 'n', 10), /more than 10/)
  for (const bad of [-1, 1.5, Number.MAX_SAFE_INTEGER + 1, NaN, Infinity, '1', 1n]) {
    t.throws(() => expectUint(bad, 'n'), MalformedBodyError, `rejects ${String(bad)}`)
  }
})

t.test('expectBytes, expectBoolean, expectOneOf', async t => {
  t.same(expectBytes(new Uint8Array([1, 2]), 'b', 2), new Uint8Array([1, 2]))
  t.throws(() => expectBytes(new Uint8Array(3), 'b', 2), /more than 2/)
  t.throws(() => expectBytes(new Uint8Array(1), 'b', 4, 4), /fewer than 4/)
  t.throws(() => expectBytes('ab', 'b', 2), /not a byte string/)
  t.equal(expectBoolean(false, 'f'), false)
  t.throws(() => expectBoolean(0, 'f'), /not a boolean/)
  t.equal(expectOneOf('b', 'k', ['a', 'b']), 'b')
  t.throws(() => expectOneOf('c', 'k', ['a', 'b']), { message: 'k is not one of a, b' })
})

t.test('expectArray bounds entries and checks each one with its index', async t => {
  t.same(expectArray([1, 2], 'list', 2, expectUint), [1, 2])
  t.throws(() => expectArray([1, 2, 3], 'list', 2, expectUint), /list has 3 entries, more than 2/)
  t.throws(() => expectArray([1, 'x'], 'list', 5, expectUint), { message: 'list[1] is not a non-negative integer' })
  t.throws(() => expectArray({ length: 1 }, 'list', 5, expectUint), /not an array/)
})

t.test('optional skips absent values and checks present ones', async t => {
  t.equal(optional(undefined, 'o', expectUint), undefined)
  t.equal(optional(null, 'o', expectUint), undefined)
  t.equal(optional(3, 'o', expectUint), 3)
  t.throws(() => optional('x', 'o', expectUint), MalformedBodyError)
})
