import type { JournalMedium, JournalSegment } from '../paxos/acceptor-journal.js'

interface SegmentState {
  /** What was written, in write order (joined only when read: appends stay linear in the segment). */
  chunks: Uint8Array[]
  /** Bytes written. */
  length: number
  /** How many of those bytes a sync made durable: a crash keeps only those. */
  synced: number
}

function joined(state: SegmentState): Buffer {
  return Buffer.concat(state.chunks, state.length)
}

/**
 * The acceptor journal's medium in memory, for simulations: it outlives a simulated crash like a
 * data dir, and a crash keeps of each segment only what was synced (a stricter crash than a
 * killed process, whose written bytes would survive in the page cache: every answer must rest
 * on a completed sync). A segment created before the crash refuses writes after it.
 */
export class MemoryJournal implements JournalMedium {
  readonly #segments = new Map<number, SegmentState>()
  /** Bumped by crash(): segments of an older generation belong to the dead node. */
  #generation = 0
  /** When set, the next sync fails with it (a failing disk, for tests). */
  failNextSync: Error | undefined
  /**
   * How a sync takes time: called with the sync's completion, which it runs later (the simulator
   * runs it on the node's clock, so a crash can fall between an append and its sync). Absent: a
   * sync completes at once.
   */
  syncDelay: ((done: () => void) => void) | undefined

  async list(): Promise<{ id: number; bytes: Uint8Array }[]> {
    return [...this.#segments.entries()].sort(([a], [b]) => a - b).map(([id, state]) => ({ id, bytes: joined(state) }))
  }

  create(id: number): JournalSegment {
    if (this.#segments.has(id)) throw new Error(`journal segment ${id} exists`)
    const state: SegmentState = { chunks: [], length: 0, synced: 0 }
    this.#segments.set(id, state)
    const generation = this.#generation
    const alive = (): void => {
      if (generation !== this.#generation) throw new Error('the node crashed')
    }
    return {
      id,
      write: (chunks) => {
        alive()
        for (const chunk of chunks) {
          // A copy, as a file holds what was written whatever the caller does with its buffer after.
          state.chunks.push(Buffer.from(chunk))
          state.length += chunk.byteLength
        }
      },
      sync: async () => {
        alive()
        const failure = this.failNextSync
        if (failure !== undefined) {
          this.failNextSync = undefined
          throw failure
        }
        const target = state.length
        const delay = this.syncDelay
        if (delay !== undefined) await new Promise<void>((resolve) => delay(resolve))
        alive()
        state.synced = Math.max(state.synced, target)
      },
      close: async () => undefined,
    }
  }

  async remove(id: number): Promise<void> {
    this.#segments.delete(id)
  }

  /** The node died: unsynced bytes are lost, and its segments refuse later writes. */
  crash(): void {
    this.#generation++
    for (const state of this.#segments.values()) {
      state.chunks = [joined(state).subarray(0, state.synced)]
      state.length = state.synced
    }
  }

  /** Bytes held over all segments (tests). */
  get bytes(): number {
    let total = 0
    for (const state of this.#segments.values()) total += state.length
    return total
  }
}
