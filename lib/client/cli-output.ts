import type { Writable } from 'node:stream'

/** The reader went away (`hearsay scan | head`): stop writing, nothing is wrong. */
export class OutputClosedError extends Error {
  constructor() {
    super('output closed')
    this.name = 'OutputClosedError'
  }
}

/** Writes respecting backpressure, so a long scan never piles up in memory. */
export async function writeOut(stream: Writable, chunk: string | Uint8Array): Promise<void> {
  if (stream.destroyed || stream.writableEnded) throw new OutputClosedError()
  if (stream.write(chunk)) return
  await new Promise<void>((resolve, reject) => {
    const onDrain = (): void => { cleanup(); resolve() }
    const onGone = (): void => { cleanup(); reject(new OutputClosedError()) }
    const cleanup = (): void => {
      stream.off('drain', onDrain)
      stream.off('close', onGone)
      stream.off('error', onGone)
    }
    stream.on('drain', onDrain)
    stream.on('close', onGone)
    stream.on('error', onGone)
  })
}

/** Left-aligned columns separated by two spaces; the last column is not padded. */
export function formatTable(header: readonly string[], rows: readonly (readonly string[])[]): string {
  const widths = header.map((title, column) => Math.max(title.length, ...rows.map(row => (row[column] ?? '').length)))
  const line = (cells: readonly string[]): string =>
    cells.map((cell, column) => column === cells.length - 1 ? cell : cell.padEnd(widths[column] ?? 0)).join('  ')
  return [header, ...rows].map(line).join('\n') + '\n'
}

/** Limits how deep nested status objects are flattened into dotted keys. */
const MAX_FLATTEN_DEPTH = 4

/** `key: value` lines; nested objects become dotted keys, arrays stay JSON. */
export function formatKeyValues(object: Readonly<Record<string, unknown>>): string {
  const lines: string[] = []
  const visit = (prefix: string, value: unknown, depth: number): void => {
    if (typeof value === 'object' && value !== null && !Array.isArray(value) && depth < MAX_FLATTEN_DEPTH) {
      for (const [name, inner] of Object.entries(value)) visit(prefix === '' ? name : `${prefix}.${name}`, inner, depth + 1)
      return
    }
    lines.push(`${prefix}: ${typeof value === 'string' ? value : JSON.stringify(value) ?? String(value)}`)
  }
  visit('', object, 0)
  return lines.map(line => line + '\n').join('')
}
