import { StringDecoder } from 'node:string_decoder'

/**
 * One dispatched Server-Sent Event (WHATWG HTML "server-sent events", §9.2.6 interpreting an
 * event stream). `data` is undefined for a block that carried no data line: the standard does
 * not dispatch such a block, but an `id:` in it still moves the last event id, which is what a
 * resume point is made of.
 */
export interface SseEvent {
  /** The `event:` field, "message" when absent. */
  readonly event: string
  /** The `data:` lines joined with "\n"; undefined when the block had none. */
  readonly data: string | undefined
  /** The `id:` field of this block, undefined when it had none. */
  readonly id: string | undefined
}

/** Thrown when one event (or one line) grows beyond the parser's limit: a broken or hostile stream. */
export class SseEventTooLargeError extends Error {
  constructor(maxEventChars: number) {
    super(`an event stream event longer than ${maxEventChars} characters`)
    this.name = 'SseEventTooLargeError'
  }
}

/**
 * Incremental `text/event-stream` parser: feed it chunks as they arrive, get whole events back.
 * Lines end with LF, CRLF or CR (a CR at the end of a chunk waits for the next chunk to tell).
 * Comment lines (`: heartbeat`) and unknown fields are ignored; `retry:` is ignored because the
 * client chooses its own backoff. Memory is bounded by `maxEventChars` per pending event.
 */
export class SseParser {
  readonly #maxEventChars: number
  readonly #decoder = new StringDecoder('utf8')
  /** Text of the line not yet ended. */
  #partial = ''
  /** The previous chunk ended with CR: a LF starting this one belongs to that line end. */
  #skipLeadingLf = false
  #eventType = ''
  #dataLines: string[] = []
  #id: string | undefined
  /** Characters held in #dataLines and #partial, checked against the limit. */
  #pendingChars = 0

  constructor(maxEventChars: number) {
    this.#maxEventChars = maxEventChars
  }

  /** Parses a chunk and returns the events it completed, in order. */
  push(chunk: Buffer): SseEvent[] {
    let text = this.#decoder.write(chunk)
    if (this.#skipLeadingLf && text.startsWith('\n')) text = text.slice(1)
    this.#skipLeadingLf = false
    const events: SseEvent[] = []
    let start = 0
    for (;;) {
      const end = lineEnd(text, start)
      if (end === -1) break
      const line = this.#partial + text.slice(start, end)
      this.#partial = ''
      const event = this.#line(line)
      if (event !== undefined) events.push(event)
      let next = end + 1
      if (text[end] === '\r') {
        if (next === text.length) this.#skipLeadingLf = true
        else if (text[next] === '\n') next++
      }
      start = next
    }
    this.#partial += text.slice(start)
    if (this.#pendingChars + this.#partial.length > this.#maxEventChars) throw new SseEventTooLargeError(this.#maxEventChars)
    return events
  }

  #line(line: string): SseEvent | undefined {
    if (line === '') return this.#dispatch()
    if (line.startsWith(':')) return undefined
    const colon = line.indexOf(':')
    const field = colon === -1 ? line : line.slice(0, colon)
    let value = colon === -1 ? '' : line.slice(colon + 1)
    if (value.startsWith(' ')) value = value.slice(1)
    switch (field) {
      case 'event':
        this.#eventType = value
        break
      case 'data':
        this.#dataLines.push(value)
        this.#pendingChars += value.length + 1
        if (this.#pendingChars > this.#maxEventChars) throw new SseEventTooLargeError(this.#maxEventChars)
        break
      case 'id':
        // The standard ignores an id containing NUL.
        if (!value.includes('\0')) this.#id = value
        break
      default:
        break
    }
    return undefined
  }

  #dispatch(): SseEvent | undefined {
    const hadFields = this.#dataLines.length > 0 || this.#id !== undefined || this.#eventType !== ''
    const event: SseEvent = {
      event: this.#eventType === '' ? 'message' : this.#eventType,
      data: this.#dataLines.length === 0 ? undefined : this.#dataLines.join('\n'),
      id: this.#id,
    }
    this.#eventType = ''
    this.#dataLines = []
    this.#id = undefined
    this.#pendingChars = 0
    return hadFields ? event : undefined
  }
}

function lineEnd(text: string, from: number): number {
  for (let i = from; i < text.length; i++) {
    const c = text.charCodeAt(i)
    if (c === 0x0a || c === 0x0d) return i
  }
  return -1
}
