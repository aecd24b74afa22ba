/**
 * Where an acceptor's promises and accepted values become durable first: an append-only journal
 * of (key, state) records, synced (fdatasync) before the acceptor answers, in segments that
 * AcceptorStore retires once their states are checkpointed into its LMDB database.
 *
 * Why not LMDB alone: a lone LMDB commit from lmdb-js costs two syncs and five hand-offs between
 * the main thread and its writer thread (0.7–0.85 ms on the benchmark machine), while one write
 * and one fdatasync of a small record cost 0.15–0.2 ms (docs/benchmarks.md "Session 6"). The
 * journal is what an answer waits for; LMDB gets the states later, many at once.
 *
 * Group commit: the records appended in one turn of the event loop (the batches of every peer
 * whose frames arrived together) share one write and one sync, which start after the turn's
 * other deferred work (`defer`, setImmediate in the daemon): the frames a proposer on this node
 * sends in the same turn, to remote acceptors, leave before its own acceptor's sync holds the
 * thread. A medium whose sync completes later (the simulator's) sends the records appended
 * meanwhile together in the next one. A write or sync that fails fails every
 * waiting and later call: the states in memory may be ahead of the disk from then on, and no
 * answer may rest on them (the node must restart, and replays what is durable).
 */

/** One segment being written: bytes go to the OS at write(), to the disk at sync(). */
export interface JournalSegment {
  readonly id: number
  /** Appends the chunks, in order, to the segment (not yet durable). Throws when it cannot. */
  write(chunks: readonly Uint8Array[]): void
  /** Makes every write before the call durable. */
  sync(): Promise<void>
  /** Releases the segment (after any sync in flight). */
  close(): Promise<void>
}

/** Where segments live: a directory of files for the daemon (lib/store/journal-files.ts), memory for the simulator. */
export interface JournalMedium {
  /** The segments there, oldest first, each with what it holds (a torn last record included). */
  list(): Promise<{ readonly id: number; readonly bytes: Uint8Array }[]>
  /** Creates segment `id`, empty, its existence durable. */
  create(id: number): JournalSegment
  /** Removes a segment that is no longer needed (closed first). */
  remove(id: number): Promise<void>
}

/** A record as replayed: the key and the state's bytes, in the layout AcceptorStore wrote. */
export interface JournalRecord { readonly key: string; readonly state: Uint8Array }

/** `[length u32 (of key length + key + state), xxh64 u64 of those bytes, key length u16, key UTF-8, state]`, big-endian. */
const HEADER_BYTES = 12
const KEY_LENGTH_BYTES = 2
/** Far above any record (a key of at most 64 KiB and a value of at most the frame limit); a length above it is a torn write. */
export const MAX_JOURNAL_RECORD_BYTES = 128 * 1024 * 1024

export type Checksum = (bytes: Uint8Array) => bigint

export function encodeJournalRecord(key: string, state: Uint8Array, checksum: Checksum): Buffer {
  const keyBytes = Buffer.from(key, 'utf8')
  if (keyBytes.byteLength > 0xffff) throw new RangeError(`key of ${keyBytes.byteLength} bytes is too long for the acceptor journal`)
  const body = KEY_LENGTH_BYTES + keyBytes.byteLength + state.byteLength
  const out = Buffer.allocUnsafe(HEADER_BYTES + body)
  out.writeUInt32BE(body, 0)
  out.writeUInt16BE(keyBytes.byteLength, HEADER_BYTES)
  out.set(keyBytes, HEADER_BYTES + KEY_LENGTH_BYTES)
  out.set(state, HEADER_BYTES + KEY_LENGTH_BYTES + keyBytes.byteLength)
  out.writeBigUInt64BE(checksum(out.subarray(HEADER_BYTES)), 4)
  return out
}

/**
 * The records of one segment, up to the first that is torn or does not match its checksum;
 * `validBytes` is where that one starts (the segment's length when all are whole). `torn` when
 * anything but zeros (space a file segment allocated ahead) follows. A segment is synced in full
 * before anything is written to the next one, so only a crash during a sync that nobody was
 * answered for leaves such a tail.
 */
export function readJournalRecords(bytes: Uint8Array, checksum: Checksum): { records: JournalRecord[]; validBytes: number; torn: boolean } {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength)
  const records: JournalRecord[] = []
  let at = 0
  while (at + HEADER_BYTES <= bytes.byteLength) {
    const body = view.getUint32(at)
    const end = at + HEADER_BYTES + body
    if (body < KEY_LENGTH_BYTES || body > MAX_JOURNAL_RECORD_BYTES || end > bytes.byteLength) break
    const content = bytes.subarray(at + HEADER_BYTES, end)
    if (checksum(content) !== view.getBigUint64(at + 4)) break
    const keyLength = view.getUint16(at + HEADER_BYTES)
    if (KEY_LENGTH_BYTES + keyLength > body) break
    const key = Buffer.from(content.subarray(KEY_LENGTH_BYTES, KEY_LENGTH_BYTES + keyLength)).toString('utf8')
    records.push({ key, state: content.subarray(KEY_LENGTH_BYTES + keyLength) })
    at = end
  }
  return { records, validBytes: at, torn: bytes.subarray(at).some((byte) => byte !== 0) }
}

export class AcceptorJournalFailedError extends Error {
  constructor(cause: unknown) {
    super(`the acceptor journal could not be written (${cause instanceof Error ? cause.message : String(cause)}); linearizable operations fail on this node until it restarts`, { cause })
    this.name = 'AcceptorJournalFailedError'
  }
}

interface Group {
  readonly promise: Promise<void>
  readonly resolve: () => void
  readonly reject: (error: unknown) => void
}

function openGroup(): Group {
  let resolve!: () => void
  let reject!: (error: unknown) => void
  const promise = new Promise<void>((res, rej) => { resolve = res; reject = rej })
  // A group nobody waits for (its records' callers went away) must not surface as unhandled.
  promise.catch(() => undefined)
  return { promise, resolve, reject }
}

export class AcceptorJournal {
  readonly #medium: JournalMedium
  #segment: JournalSegment
  /** Bytes appended to the current segment (written or pending). */
  #segmentBytes = 0
  /** Segments rotated out, kept until their states are checkpointed elsewhere. */
  readonly #retired: JournalSegment[] = []
  /** Records appended and not yet written, and the group waiting for them. */
  #pending: Uint8Array[] = []
  #next: Group | undefined
  /** The group whose sync is in flight. */
  #syncing: Group | undefined
  #startScheduled = false
  #failed: AcceptorJournalFailedError | undefined

  readonly #defer: (task: () => void) => void

  /**
   * `segment`: the new, empty segment to append to (its id above every one the medium held);
   * `defer` runs a task after the current turn (the node's defer; setImmediate by default).
   */
  constructor(medium: JournalMedium, segment: JournalSegment, defer: (task: () => void) => void = setImmediate) {
    this.#medium = medium
    this.#segment = segment
    this.#defer = defer
  }

  /** Bytes appended since the last rotation. */
  get segmentBytes(): number {
    return this.#segmentBytes
  }

  get failed(): AcceptorJournalFailedError | undefined {
    return this.#failed
  }

  /** Queues a record for the next sync; throws once the journal failed. */
  append(record: Uint8Array): void {
    if (this.#failed !== undefined) throw this.#failed
    this.#pending.push(record)
    this.#segmentBytes += record.byteLength
    this.#next ??= openGroup()
    if (this.#syncing === undefined && !this.#startScheduled) {
      this.#startScheduled = true
      this.#defer(() => {
        this.#startScheduled = false
        if (this.#syncing === undefined) this.#start()
      })
    }
  }

  /** Resolves once every record appended before the call is durable; rejects once the journal failed. */
  durable(): Promise<void> {
    if (this.#failed !== undefined) return Promise.reject(this.#failed)
    return (this.#next ?? this.#syncing)?.promise ?? Promise.resolve()
  }

  /**
   * Later records go to a new segment; the ones so far stay in retired segments until
   * releaseRetired(). The new segment is written only after every earlier sync completed.
   */
  rotate(): void {
    if (this.#failed !== undefined) throw this.#failed
    const next = this.#medium.create(this.#segment.id + 1)
    this.#retired.push(this.#segment)
    this.#segment = next
    this.#segmentBytes = 0
  }

  /** Removes the segments rotated out before the call (their states are durable elsewhere now). */
  async releaseRetired(): Promise<void> {
    const retired = this.#retired.splice(0)
    for (const segment of retired) {
      await segment.close()
      await this.#medium.remove(segment.id)
    }
  }

  /** Waits for what is appended to be durable, then closes the current segment (kept: the next open replays it). */
  async close(): Promise<void> {
    await this.durable().catch(() => undefined)
    for (const segment of this.#retired) await segment.close()
    await this.#segment.close()
  }

  #start(): void {
    const group = this.#next
    if (group === undefined) return
    const chunks = this.#pending
    this.#pending = []
    this.#next = undefined
    this.#syncing = group
    let sync: Promise<void>
    try {
      this.#segment.write(chunks)
      sync = this.#segment.sync()
    } catch (error) {
      this.#fail(error)
      return
    }
    sync.then(() => {
      this.#syncing = undefined
      group.resolve()
      if (this.#next !== undefined) this.#start()
    }, (error: unknown) => { this.#fail(error) })
  }

  #fail(cause: unknown): void {
    this.#failed ??= new AcceptorJournalFailedError(cause)
    for (const group of [this.#syncing, this.#next]) group?.reject(this.#failed)
    this.#syncing = undefined
    this.#next = undefined
    this.#pending = []
  }
}
