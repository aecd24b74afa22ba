import { InvalidReplyError } from './errors.js'

/**
 * The JSON answers of the HTTP API (DESIGN.md "HTTP client API"), checked on arrival so a
 * wrong answer fails here with the field named, not later as `undefined` in a caller.
 */

export interface WriteReply {
  readonly key: string
  /** Version string; sorts like the version itself. */
  readonly version: string
  /** Replicas that made the write durable before the answer. */
  readonly acks: number
  /** Acks the write level needed. */
  readonly w: number
}

/** A linearizable compare-and-set's answer: the key's new version. */
export interface CasReply {
  readonly key: string
  readonly version: string
}

/** An incr's answer: the counter's new value (a decimal integer string) and version. */
export interface IncrReply {
  readonly key: string
  readonly value: string
  readonly version: string
}

export interface ScanItem {
  readonly key: string
  readonly value: Buffer
  readonly version: string
}

export interface ScanPage {
  readonly items: readonly ScanItem[]
  /** Pass as `after` for the next page; null when this page is the last. */
  readonly next: string | null
}

export interface BatchResult {
  readonly key: string
  readonly version: string
  readonly acks: number
}

export interface HealthReply {
  readonly status: string
  readonly id: string
  readonly name: string
}

export type MemberState = 'alive' | 'suspect' | 'dead' | 'left'

export interface MemberReply {
  readonly id: string
  readonly name: string
  readonly peer: string
  readonly api: string
  readonly state: MemberState
  readonly incarnation: number
}

const MEMBER_STATES: ReadonlySet<string> = new Set(['alive', 'suspect', 'dead', 'left'])
const BASE64_PATTERN = /^[A-Za-z0-9+/]*={0,2}$/

export function parseJson(node: string, body: Buffer): unknown {
  try {
    return JSON.parse(body.toString('utf8'))
  } catch {
    throw new InvalidReplyError(node, 'a body that is not JSON')
  }
}

/** Reads fields of one JSON object and names the offending field when one is wrong. */
class Fields {
  constructor(private readonly node: string, private readonly what: string, private readonly object: Record<string, unknown>) {}

  static of(node: string, what: string, value: unknown): Fields {
    if (typeof value !== 'object' || value === null || Array.isArray(value)) throw new InvalidReplyError(node, `${what} that is not a JSON object`)
    return new Fields(node, what, value as Record<string, unknown>)
  }

  string(name: string): string {
    const value = this.object[name]
    if (typeof value !== 'string') throw this.wrong(name, 'a string')
    return value
  }

  count(name: string): number {
    const value = this.object[name]
    if (typeof value !== 'number' || !Number.isSafeInteger(value) || value < 0) throw this.wrong(name, 'a non-negative integer')
    return value
  }

  base64(name: string): Buffer {
    const text = this.string(name)
    if (text.length % 4 !== 0 || !BASE64_PATTERN.test(text)) throw this.wrong(name, 'base64')
    return Buffer.from(text, 'base64')
  }

  array(name: string): unknown[] {
    const value = this.object[name]
    if (!Array.isArray(value)) throw this.wrong(name, 'an array')
    return value
  }

  get(name: string): unknown {
    return this.object[name]
  }

  private wrong(name: string, expected: string): InvalidReplyError {
    return new InvalidReplyError(this.node, `${this.what} whose "${name}" is not ${expected}`)
  }
}

export function parseWriteReply(node: string, json: unknown): WriteReply {
  const f = Fields.of(node, 'a write reply', json)
  return { key: f.string('key'), version: f.string('version'), acks: f.count('acks'), w: f.count('w') }
}

export function parseCasReply(node: string, json: unknown): CasReply {
  const f = Fields.of(node, 'a compare-and-set reply', json)
  return { key: f.string('key'), version: f.string('version') }
}

export function parseIncrReply(node: string, json: unknown): IncrReply {
  const f = Fields.of(node, 'an incr reply', json)
  const value = f.string('value')
  if (!/^-?[0-9]+$/.test(value)) throw new InvalidReplyError(node, `an incr reply whose value ${JSON.stringify(value)} is not a decimal integer`)
  return { key: f.string('key'), value, version: f.string('version') }
}

export function parseScanPage(node: string, json: unknown): ScanPage {
  const f = Fields.of(node, 'a scan page', json)
  const items = f.array('items').map(item => {
    const i = Fields.of(node, 'a scan item', item)
    return { key: i.string('key'), value: i.base64('value'), version: i.string('version') }
  })
  const next = f.get('next')
  if (next !== null && typeof next !== 'string') throw new InvalidReplyError(node, 'a scan page whose "next" is neither a string nor null')
  return { items, next }
}

export function parseBatchReply(node: string, json: unknown): BatchResult[] {
  return Fields.of(node, 'a batch reply', json).array('results').map(result => {
    const r = Fields.of(node, 'a batch result', result)
    return { key: r.string('key'), version: r.string('version'), acks: r.count('acks') }
  })
}

export function parseHealth(node: string, json: unknown): HealthReply {
  const f = Fields.of(node, 'a health reply', json)
  return { status: f.string('status'), id: f.string('id'), name: f.string('name') }
}

export function parseMembers(node: string, json: unknown): MemberReply[] {
  if (!Array.isArray(json)) throw new InvalidReplyError(node, 'a member list that is not a JSON array')
  return json.map(member => {
    const f = Fields.of(node, 'a member', member)
    const state = f.string('state')
    if (!MEMBER_STATES.has(state)) throw new InvalidReplyError(node, `a member whose "state" is ${JSON.stringify(state)}`)
    return {
      id: f.string('id'),
      name: f.string('name'),
      peer: f.string('peer'),
      api: f.string('api'),
      state: state as MemberState,
      incarnation: f.count('incarnation'),
    }
  })
}

export function parseObject(node: string, what: string, json: unknown): Record<string, unknown> {
  Fields.of(node, what, json)
  return json as Record<string, unknown>
}

/** One change a watch delivers (DESIGN.md "watches"): a put's new value, or a delete. */
export interface WatchEvent {
  readonly key: string
  /** The new value; null for a delete. */
  readonly value: Buffer | null
  /** Version string of the change; sorts like the version itself. */
  readonly version: string
  readonly deleted: boolean
}

const VERSION_PATTERN = /^\d{16}-[0-9a-f]{16}$/

export function isVersionString(text: string): boolean {
  return VERSION_PATTERN.test(text)
}

/** The data of one `change` event of a watch stream. */
export function parseWatchChange(node: string, json: unknown): WatchEvent {
  const f = Fields.of(node, 'a watch change', json)
  const key = f.string('key')
  const version = f.string('version')
  if (!isVersionString(version)) throw new InvalidReplyError(node, `a watch change whose "version" is not a version string (${JSON.stringify(version.slice(0, 40))})`)
  const deleted = f.get('deleted')
  if (typeof deleted !== 'boolean') throw new InvalidReplyError(node, 'a watch change whose "deleted" is not a boolean')
  const value = deleted || f.get('value') === null ? null : f.base64('value')
  if (!deleted && value === null) throw new InvalidReplyError(node, 'a watch change that is neither deleted nor carries a value')
  return { key, value, version, deleted }
}
