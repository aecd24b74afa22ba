import { closeSync, fdatasyncSync, fsyncSync, openSync, writeSync, writevSync } from 'node:fs'
import { mkdir, readdir, readFile, unlink } from 'node:fs/promises'
import { join } from 'node:path'
import type { JournalMedium, JournalSegment } from '../paxos/acceptor-journal.js'

/**
 * A segment file grows by this much of zeros ahead of its records: a write into space the file
 * already has changes no metadata, so its fdatasync flushes the data alone instead of also
 * waiting for a commit of the filesystem's journal (ext4: 260 against 400 µs on the benchmark
 * machine, docs/benchmarks.md "Session 6"). Replay reads zeros after the last record as free space.
 */
export const SEGMENT_ALLOCATION_BYTES = 1024 * 1024
const ZEROS = Buffer.alloc(SEGMENT_ALLOCATION_BYTES)

/** `0000000000000001.journal`: sorting the names sorts the segments. */
const SEGMENT_NAME = /^(\d{16})\.journal$/

/**
 * The acceptor journal's segments as files of one directory in the data dir (the daemon's
 * JournalMedium). Writes go straight to the file (no buffering of ours), into space allocated
 * ahead (SEGMENT_ALLOCATION_BYTES), and syncs are `fdatasync` on the calling thread.
 */
export class JournalDirectory implements JournalMedium {
  readonly #directory: string

  constructor(directory: string) {
    this.#directory = directory
  }

  async list(): Promise<{ id: number; bytes: Uint8Array }[]> {
    await mkdir(this.#directory, { recursive: true })
    const ids = (await readdir(this.#directory)).flatMap((name) => {
      const match = SEGMENT_NAME.exec(name)
      return match === null ? [] : [Number(match[1])]
    }).sort((a, b) => a - b)
    return Promise.all(ids.map(async (id) => ({ id, bytes: await readFile(this.#path(id)) })))
  }

  create(id: number): JournalSegment {
    const fd = openSync(this.#path(id), 'wx')
    // The new name must survive a crash as well as what is written under it.
    const directory = openSync(this.#directory, 'r')
    try { fsyncSync(directory) } finally { closeSync(directory) }
    return new JournalFile(id, fd)
  }

  async remove(id: number): Promise<void> {
    await unlink(this.#path(id))
  }

  #path(id: number): string {
    return join(this.#directory, `${String(id).padStart(16, '0')}.journal`)
  }
}

class JournalFile implements JournalSegment {
  readonly id: number
  readonly #fd: number
  #position = 0
  /** Bytes of the file: records, then zeros. */
  #allocated = 0
  #closed = false

  constructor(id: number, fd: number) {
    this.id = id
    this.#fd = fd
  }

  write(chunks: readonly Uint8Array[]): void {
    if (this.#closed) throw new Error(`journal segment ${this.id} is closed`)
    const total = chunks.reduce((sum, chunk) => sum + chunk.byteLength, 0)
    while (this.#position + total > this.#allocated) {
      if (writeSync(this.#fd, ZEROS, 0, ZEROS.byteLength, this.#allocated) !== ZEROS.byteLength) throw new Error(`short write allocating journal segment ${this.id}`)
      this.#allocated += ZEROS.byteLength
    }
    const written = writevSync(this.#fd, chunks as Uint8Array[], this.#position)
    // A short write (a full disk) leaves a torn record that replay stops at; nothing after it may follow.
    if (written !== total) throw new Error(`short write to journal segment ${this.id}: ${written} of ${total} bytes`)
    this.#position += total
  }

  sync(): Promise<void> {
    if (this.#closed) return Promise.reject(new Error(`journal segment ${this.id} is closed`))
    // On the main thread: a lone accept answered 0.45 ms after it arrived against 1.0 ms with
    // fdatasync on libuv's pool (its hand-offs and wake-ups cost more than the sync; in-process
    // bench/acceptor-batch.ts, docs/benchmarks.md "Session 6"). The loop waits for the disk
    // meanwhile, once per turn whatever the turn's accepts.
    try {
      fdatasyncSync(this.#fd)
      return Promise.resolve()
    } catch (error) {
      return Promise.reject(error)
    }
  }

  async close(): Promise<void> {
    if (this.#closed) return
    this.#closed = true
    closeSync(this.#fd)
  }
}
