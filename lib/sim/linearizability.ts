/**
 * A linearizability checker for histories of per-key register operations (compare-and-set,
 * counters, linearizable reads), used by the cluster tests of issue 13 and by the simulator's
 * oracle.
 *
 * The search is Wing & Gong's, with Lowe's memoisation, as Porcupine implements it (Athalye,
 * github.com/anishathalye/porcupine, checker.go): the history is a list of call and return entries
 * ordered by time; the search linearizes any call that comes before the first pending return,
 * backtracks when a return is reached whose call it could not place, and remembers every
 * (set of linearized operations, model state) it has been in so it never explores one twice.
 * Keys are independent registers, so each key's sub-history is checked on its own
 * (P-compositionality, Horn & Kroening 2015), which keeps every search small.
 *
 * An operation whose outcome is unknown (503 "outcome unknown", a timeout, a connection lost after
 * the request was sent) may have taken effect at any moment after its invocation, or never: as in
 * Knossos and Porcupine it gets an infinite return time and an unconstrained output, so the search
 * may place it anywhere after its call. Placing it after everything else is the same as "never",
 * so the search is done once every operation with a known outcome is placed.
 *
 * The search is bounded (`maxStepsPerKey`): running out of steps gives `inconclusive`, which is
 * not `not-linearizable`.
 */

export type Version = string

/** What a client asked for. `ifVersion: null` is `ifVersion=absent` (the key must not exist). */
export type RegisterInput =
  | { readonly kind: 'read' }
  | { readonly kind: 'write'; readonly value: string }
  | { readonly kind: 'cas'; readonly ifVersion: Version | null; readonly value: string }
  | { readonly kind: 'delete'; readonly ifVersion: Version }
  | { readonly kind: 'incr'; readonly by: bigint }

/**
 * What the client was told.
 * - `read`: the value and version a read returned; `value: null` (and `version: null`) is 404.
 * - `ok`: the change took effect and has this version (for `incr`, `value` is the new count).
 * - `fail`: 409, the condition did not hold and nothing changed; `currentVersion` when the answer
 *   named the current version (`null`: the key does not exist), undefined when it did not.
 * - `unknown`: it may or may not have taken effect.
 * Answers that prove nothing happened and say nothing about the state (400, a read's 503, a
 * refused connection) are not operations: leave them out of the history.
 */
export type RegisterOutput =
  | { readonly kind: 'read'; readonly value: string | null; readonly version: Version | null }
  | { readonly kind: 'ok'; readonly version: Version; readonly value?: string }
  | { readonly kind: 'fail'; readonly currentVersion?: Version | null }
  | { readonly kind: 'unknown' }

export interface Operation {
  readonly key: string
  /** Who sent it, and through which node (for explanations only). */
  readonly client: string | number
  readonly node?: string
  readonly input: RegisterInput
  readonly output: RegisterOutput
  /** When the request was sent and when its answer arrived, on one clock of the test (ms). */
  readonly invokedAtMs: number
  /** Ignored when the output is `unknown` (infinite). */
  readonly completedAtMs: number
}

/** The version of a key whose last change had an unknown outcome: some version nobody saw yet. */
export const UNSEEN_VERSION: unique symbol = Symbol('unseen version')

/** A key's register: absent is `value: null, version: null`. */
export interface RegisterState {
  readonly value: string | null
  readonly version: Version | null | typeof UNSEEN_VERSION
}

export const ABSENT: RegisterState = Object.freeze({ value: null, version: null })

const INTEGER = /^-?(0|[1-9][0-9]*)$/

/**
 * The register model: every state the key may be in after `input` answered with `output` in
 * `state`; empty when that answer is impossible. Several states only when the outcome is unknown
 * or a version nobody saw is involved (the model is nondeterministic there, as Porcupine's
 * NondeterministicModel allows).
 */
export function step(state: RegisterState, input: RegisterInput, output: RegisterOutput): RegisterState[] {
  if (output.kind === 'unknown') return stepUnknown(state, input)
  switch (input.kind) {
    case 'read': {
      if (output.kind !== 'read' || output.value !== state.value) return []
      const seen = observeVersion(state, output.version)
      return seen === undefined ? [] : [seen]
    }
    case 'write':
      if (output.kind === 'ok') return [{ value: input.value, version: output.version }]
      // A plain write refused (409 on a strong key) changes nothing.
      return output.kind === 'fail' ? [state] : []
    case 'cas':
    case 'delete': {
      const next = (version: Version): RegisterState => input.kind === 'cas' ? { value: input.value, version } : ABSENT
      if (output.kind === 'ok') {
        const matched = matchCondition(state, input.ifVersion)
        return matched === undefined ? [] : [next(output.version)]
      }
      if (output.kind !== 'fail') return []
      if (!mayFailCondition(state, input.ifVersion)) return []
      if (output.currentVersion === undefined) return [state]
      if (output.currentVersion === input.ifVersion) return []
      const seen = observeVersion(state, output.currentVersion)
      return seen === undefined ? [] : [seen]
    }
    case 'incr': {
      const count = counterValue(state)
      if (output.kind === 'ok') {
        if (count === undefined || output.value === undefined || !INTEGER.test(output.value)) return []
        const value = (count + input.by).toString()
        return value === output.value ? [{ value, version: output.version }] : []
      }
      if (output.kind !== 'fail' || count !== undefined) return []
      if (output.currentVersion === undefined) return [state]
      const seen = observeVersion(state, output.currentVersion)
      return seen === undefined ? [] : [seen]
    }
  }
}

function stepUnknown(state: RegisterState, input: RegisterInput): RegisterState[] {
  switch (input.kind) {
    case 'read':
      return [state]
    case 'write':
      return [{ value: input.value, version: UNSEEN_VERSION }]
    case 'cas':
    case 'delete': {
      const applied: RegisterState = input.kind === 'cas' ? { value: input.value, version: UNSEEN_VERSION } : ABSENT
      const matched = matchCondition(state, input.ifVersion)
      if (matched === undefined) return [state]
      return mayFailCondition(state, input.ifVersion) ? [applied, state] : [applied]
    }
    case 'incr': {
      const count = counterValue(state)
      return count === undefined ? [state] : [{ value: (count + input.by).toString(), version: UNSEEN_VERSION }]
    }
  }
}

/** The state with its version seen as `version`, or undefined when it cannot be that version. */
function observeVersion(state: RegisterState, version: Version | null): RegisterState | undefined {
  if (state.version === UNSEEN_VERSION) return version === null ? undefined : { value: state.value, version }
  return state.version === version ? state : undefined
}

/** The state in which `ifVersion` holds (binding an unseen version), or undefined. */
function matchCondition(state: RegisterState, ifVersion: Version | null): RegisterState | undefined {
  if (ifVersion === null) return state.value === null ? state : undefined
  if (state.value === null) return undefined
  return observeVersion(state, ifVersion)
}

/** Whether `ifVersion` may fail to hold (an unseen version may be anything but the seen ones). */
function mayFailCondition(state: RegisterState, ifVersion: Version | null): boolean {
  if (ifVersion === null) return state.value !== null
  return state.value === null || state.version === UNSEEN_VERSION || state.version !== ifVersion
}

function counterValue(state: RegisterState): bigint | undefined {
  if (state.value === null) return 0n
  return INTEGER.test(state.value) ? BigInt(state.value) : undefined
}

function stateKey(state: RegisterState): string {
  const value = state.value === null ? '-' : `+${state.value}`
  const version = state.version === null ? '-' : state.version === UNSEEN_VERSION ? '?' : `+${state.version}`
  return `${version}\u0000${value}`
}

export function describeState(state: RegisterState): string {
  if (state.value === null) return 'absent'
  const version = state.version === UNSEEN_VERSION ? 'a version not yet seen' : `version ${String(state.version)}`
  return `${JSON.stringify(state.value)} at ${version}`
}

export function describeOperation(op: Operation, originMs = 0): string {
  const input = op.input
  const call = input.kind === 'read' ? 'read'
    : input.kind === 'write' ? `write(${JSON.stringify(input.value)})`
      : input.kind === 'cas' ? `cas(ifVersion=${input.ifVersion ?? 'absent'}, ${JSON.stringify(input.value)})`
        : input.kind === 'delete' ? `delete(ifVersion=${input.ifVersion})`
          : `incr(by=${input.by})`
  const out = op.output
  const answer = out.kind === 'unknown' ? 'outcome unknown'
    : out.kind === 'read' ? (out.value === null ? 'absent' : `${JSON.stringify(out.value)} at ${out.version ?? '?'}`)
      : out.kind === 'ok' ? `ok ${out.value !== undefined ? `${out.value} ` : ''}at ${out.version}`
        : `409${out.currentVersion === undefined ? '' : ` (current ${out.currentVersion ?? 'absent'})`}`
  const from = (op.invokedAtMs - originMs).toFixed(1)
  const to = out.kind === 'unknown' ? '∞' : (op.completedAtMs - originMs).toFixed(1)
  return `client ${op.client}${op.node === undefined ? '' : ` via ${op.node}`}: ${call} → ${answer} [${from} ms, ${to} ms]`
}

export interface CheckOptions {
  /** Search steps allowed per key before the answer is `inconclusive`. */
  readonly maxStepsPerKey?: number
  /** Operations of the linearizable prefix shown before the failing point. */
  readonly contextOps?: number
}

export const DEFAULT_MAX_STEPS_PER_KEY = 2_000_000
const DEFAULT_CONTEXT_OPS = 6

export type KeyVerdict =
  | { readonly verdict: 'linearizable'; readonly key: string; readonly ops: number; readonly steps: number }
  | { readonly verdict: 'inconclusive'; readonly key: string; readonly ops: number; readonly steps: number }
  | { readonly verdict: 'not-linearizable'; readonly key: string; readonly ops: number; readonly steps: number; readonly explanation: string }

export interface LinearizabilityResult {
  /** `not-linearizable` if any key is; else `inconclusive` if any key's search ran out of steps. */
  readonly verdict: 'linearizable' | 'not-linearizable' | 'inconclusive'
  readonly keys: readonly KeyVerdict[]
  /** The explanations of the keys that are not linearizable, one paragraph each. */
  readonly explanation: string
}

/** Checks each key's sub-history on its own; see the file comment. */
export function checkLinearizable(ops: readonly Operation[], options: CheckOptions = {}): LinearizabilityResult {
  const byKey = new Map<string, Operation[]>()
  for (const op of ops) {
    const list = byKey.get(op.key)
    if (list === undefined) byKey.set(op.key, [op])
    else list.push(op)
  }
  const originMs = ops.reduce((min, op) => Math.min(min, op.invokedAtMs), Infinity)
  const keys = [...byKey.keys()].sort().map((key) => checkKey(key, byKey.get(key)!, options, originMs))
  const failed = keys.filter((k) => k.verdict === 'not-linearizable')
  const verdict = failed.length > 0 ? 'not-linearizable' : keys.some((k) => k.verdict === 'inconclusive') ? 'inconclusive' : 'linearizable'
  const explanation = failed.map((k) => k.verdict === 'not-linearizable' ? k.explanation : '').join('\n\n')
  return { verdict, keys, explanation }
}

/** A call or return in the doubly linked list the search lifts entries out of. */
interface Entry {
  readonly op: number
  /** The return entry of a call; null on a return. */
  readonly match: Entry | null
  prev: Entry | null
  next: Entry | null
}

/** One point of the depth-first search: the state reached and the operations that may go next. */
interface Frame {
  readonly state: RegisterState
  /** Calls before the first pending return: known outcomes first, then unknown ones. */
  readonly candidates: readonly Entry[]
  /** The candidate being tried, and the states its step allows. */
  index: number
  states: readonly RegisterState[] | undefined
  /** The next of `states` to try. */
  choice: number
  /** The candidate placed to reach the frame above, undone when that frame is exhausted. */
  placed: Entry | undefined
}

/** Memo of the (linearized set, state) pairs visited; the set's Zobrist hash picks the bucket. */
class VisitedSet {
  private readonly buckets = new Map<string, Uint32Array[]>()

  /** Adds the pair; false when it was there already. */
  add(hashLow: number, hashHigh: number, bits: Uint32Array, state: RegisterState): boolean {
    const key = `${hashLow}:${hashHigh}:${stateKey(state)}`
    const bucket = this.buckets.get(key)
    if (bucket === undefined) {
      this.buckets.set(key, [bits.slice()])
      return true
    }
    if (bucket.some((seen) => equalBits(seen, bits))) return false
    bucket.push(bits.slice())
    return true
  }
}

function equalBits(a: Uint32Array, b: Uint32Array): boolean {
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false
  return true
}

/** mulberry32: the hash words only need to be well spread, and the same on every run. */
function zobristWords(count: number): Uint32Array {
  const words = new Uint32Array(count)
  let seed = 0x9e3779b9
  for (let i = 0; i < count; i++) {
    seed = (seed + 0x6d2b79f5) >>> 0
    let z = seed
    z = Math.imul(z ^ (z >>> 15), z | 1)
    z ^= z + Math.imul(z ^ (z >>> 7), z | 61)
    words[i] = (z ^ (z >>> 14)) >>> 0
  }
  return words
}

function inputSignature(input: RegisterInput): string {
  switch (input.kind) {
    case 'read': return 'read'
    case 'write': return `write\u0000${input.value}`
    case 'cas': return `cas\u0000${input.ifVersion ?? ''}\u0000${input.ifVersion === null ? 'absent' : ''}\u0000${input.value}`
    case 'delete': return `delete\u0000${input.ifVersion}`
    case 'incr': return `incr\u0000${input.by}`
  }
}

function sameState(a: RegisterState, b: RegisterState): boolean {
  return a.value === b.value && a.version === b.version
}

function checkKey(key: string, ops: readonly Operation[], options: CheckOptions, originMs: number): KeyVerdict {
  const maxSteps = options.maxStepsPerKey ?? DEFAULT_MAX_STEPS_PER_KEY
  const n = ops.length
  const isUnknown = (i: number): boolean => ops[i]!.output.kind === 'unknown'
  const returnTime = (op: Operation): number => op.output.kind === 'unknown' ? Infinity : op.completedAtMs
  for (const op of ops) {
    if (op.output.kind !== 'unknown' && !(op.completedAtMs >= op.invokedAtMs)) {
      throw new Error(`${describeOperation(op, originMs)} on key ${JSON.stringify(key)} completed before it was invoked: fix the recorder's clock`)
    }
  }

  // Calls before returns at equal times: operations that touch in time count as concurrent.
  const events = ops.flatMap((op, i) => [{ i, call: true, at: op.invokedAtMs }, { i, call: false, at: returnTime(op) }])
  events.sort((a, b) => a.at - b.at || (a.call === b.call ? a.i - b.i : a.call ? -1 : 1))
  const head: Entry = { op: -1, match: null, prev: null, next: null }
  const returns = ops.map((_, i): Entry => ({ op: i, match: null, prev: null, next: null }))
  let tail = head
  for (const event of events) {
    const entry: Entry = event.call ? { op: event.i, match: returns[event.i]!, prev: tail, next: null } : returns[event.i]!
    entry.prev = tail
    tail.next = entry
    tail = entry
  }

  const lift = (entry: Entry): void => {
    entry.prev!.next = entry.next
    if (entry.next !== null) entry.next.prev = entry.prev
    const ret = entry.match!
    ret.prev!.next = ret.next
    if (ret.next !== null) ret.next.prev = ret.prev
  }
  const unlift = (entry: Entry): void => {
    const ret = entry.match!
    ret.prev!.next = ret
    if (ret.next !== null) ret.next.prev = ret
    entry.prev!.next = entry
    if (entry.next !== null) entry.next.prev = entry
  }

  const zobrist = zobristWords(2 * n)
  const bits = new Uint32Array(Math.ceil(n / 32))
  let hashLow = 0
  let hashHigh = 0
  const toggle = (i: number): void => {
    bits[i >>> 5]! ^= 1 << (i & 31)
    hashLow = (hashLow ^ zobrist[2 * i]!) >>> 0
    hashHigh = (hashHigh ^ zobrist[2 * i + 1]!) >>> 0
  }
  const visited = new VisitedSet()

  const signatures = ops.map((op) => inputSignature(op.input))
  /**
   * Known outcomes are tried before unknown ones: an unknown operation is best placed only where
   * something needs it, since leaving it unplaced keeps every option open. Of several unplaced
   * unknown operations with the same input (say, three `incr(by=1)`), only the first is tried:
   * both are already invoked and neither has an answer or a return time, so swapping them in any
   * linearization gives another — without this the search would try every subset of them.
   */
  const frameAt = (state: RegisterState): Frame => {
    const known: Entry[] = []
    const unknown: Entry[] = []
    const unknownInputs = new Set<string>()
    for (let entry = head.next; entry !== null && entry.match !== null; entry = entry.next) {
      if (!isUnknown(entry.op)) {
        // An operation that fits without changing the state (a read, a 409) goes next and nothing
        // else is tried here: a linearization that places it later stays one with it moved here,
        // since it was invoked before any pending operation answered (real-time order holds) and
        // it changes nothing (every step after sees the same state).
        const op = ops[entry.op]!
        if (step(state, op.input, op.output).some((s) => sameState(s, state))) {
          return { state, candidates: [entry], index: 0, states: [state], choice: 0, placed: undefined }
        }
        known.push(entry)
      } else if (!unknownInputs.has(signatures[entry.op]!)) {
        unknownInputs.add(signatures[entry.op]!)
        unknown.push(entry)
      }
    }
    return { state, candidates: known.concat(unknown), index: 0, states: undefined, choice: 0, placed: undefined }
  }

  let remainingKnown = ops.filter((op) => op.output.kind !== 'unknown').length
  const frames: Frame[] = [frameAt(ABSENT)]
  let deepest: { ops: number[]; state: RegisterState } = { ops: [], state: ABSENT }
  let steps = 0

  for (;;) {
    if (remainingKnown === 0) return { verdict: 'linearizable', key, ops: n, steps }
    const frame = frames[frames.length - 1]!
    let next: RegisterState | undefined
    while (next === undefined && frame.index < frame.candidates.length) {
      if (++steps > maxSteps) return { verdict: 'inconclusive', key, ops: n, steps }
      const entry = frame.candidates[frame.index]!
      const op = ops[entry.op]!
      if (frame.states === undefined) {
        const states = step(frame.state, op.input, op.output)
        // Placing an unknown operation as a no-op is never better than leaving it unplaced: it can
        // still be a no-op at the end, or take effect later.
        frame.states = isUnknown(entry.op) ? states.filter((s) => !sameState(s, frame.state)) : states
        frame.choice = 0
      }
      toggle(entry.op)
      while (frame.choice < frame.states.length) {
        const candidate = frame.states[frame.choice++]!
        if (visited.add(hashLow, hashHigh, bits, candidate)) { next = candidate; break }
      }
      if (next !== undefined) break
      toggle(entry.op)
      frame.index++
      frame.states = undefined
    }
    if (next !== undefined) {
      const entry = frame.candidates[frame.index]!
      lift(entry)
      if (!isUnknown(entry.op)) remainingKnown--
      frame.placed = entry
      frames.push(frameAt(next))
      if (frames.length - 1 > deepest.ops.length) deepest = { ops: frames.slice(0, -1).map((f) => f.placed!.op), state: next }
      continue
    }
    // Every candidate here is impossible or leads only to visited points: go back one placement.
    frames.pop()
    const parent = frames[frames.length - 1]
    if (parent === undefined) {
      return { verdict: 'not-linearizable', key, ops: n, steps, explanation: explain(key, ops, deepest, options.contextOps ?? DEFAULT_CONTEXT_OPS, originMs) }
    }
    const placed = parent.placed!
    unlift(placed)
    toggle(placed.op)
    if (!isUnknown(placed.op)) remainingKnown++
    parent.placed = undefined
  }
}

/**
 * The longest linearizable prefix the search found, its last few operations, the state after it,
 * and the operations that could go next (those invoked before the earliest pending completion),
 * none of which the model allows there or which all lead to dead ends.
 */
function explain(key: string, ops: readonly Operation[], deepest: { ops: number[]; state: RegisterState }, contextOps: number, originMs: number): string {
  const placed = new Set(deepest.ops)
  const pending = ops.map((op, i) => ({ op, i })).filter(({ i }) => !placed.has(i))
  const deadlineMs = pending.reduce((min, { op }) => op.output.kind === 'unknown' ? min : Math.min(min, op.completedAtMs), Infinity)
  const next = pending.filter(({ op }) => op.invokedAtMs <= deadlineMs)
  const lines = [
    `key ${JSON.stringify(key)}: not linearizable (${ops.length} operations; the longest linearizable prefix has ${deepest.ops.length}).`,
  ]
  if (deepest.ops.length > 0) {
    const shown = deepest.ops.slice(-contextOps)
    lines.push(`  last ${shown.length} of that prefix, in the order they took effect:`)
    for (const i of shown) lines.push(`    ${describeOperation(ops[i]!, originMs)}`)
  }
  lines.push(`  state then: ${describeState(deepest.state)}`)
  lines.push(`  next must be one of these (invoked before the earliest pending answer at ${(deadlineMs - originMs).toFixed(1)} ms), and none fits:`)
  for (const { op } of next) {
    const allowed = step(deepest.state, op.input, op.output).length > 0
    lines.push(`    ${describeOperation(op, originMs)}${allowed ? ' (fits here, but leads to a dead end)' : ' (impossible in that state)'}`)
  }
  return lines.join('\n')
}

/**
 * Issue 13's counter rule: after K acknowledged increments and U unknown ones (summing `by`), a
 * linearizable read of the counter gives a value in [K, K+U]. Returns a problem, or undefined.
 */
export function checkCounter(ops: readonly Operation[], key: string, finalValue: string | null): string | undefined {
  let acknowledged = 0n
  let unknown = 0n
  for (const op of ops) {
    if (op.key !== key || op.input.kind !== 'incr') continue
    if (op.output.kind === 'ok') acknowledged += op.input.by
    else if (op.output.kind === 'unknown') unknown += op.input.by
  }
  const final = finalValue === null ? 0n : BigInt(finalValue)
  if (final < acknowledged || final > acknowledged + unknown) {
    return `counter ${JSON.stringify(key)} ends at ${final}, outside [K, K+U] = [${acknowledged}, ${acknowledged + unknown}] (K acknowledged, U unknown increments)`
  }
  return undefined
}
