import { Packr } from 'msgpackr'

/**
 * MessagePack for stream frames, used by the server and the client alike. Encoding is one frame
 * at a time (its size is then known before it is queued); decoding takes a whole message, a
 * MessagePack sequence of frames.
 */

/** A message that is not a MessagePack sequence of at most `maxFrames` values. */
export class UndecodableMessageError extends Error {
  constructor(message: string) {
    super(message)
    this.name = 'UndecodableMessageError'
  }
}

const MAX_DETAIL_CHARS = 200

export class StreamCodec {
  // useRecords: false keeps maps plain MessagePack maps; int64AsType makes a 64-bit integer a
  // number (validation then refuses unsafe ones), never a BigInt.
  readonly #packr = new Packr({ useRecords: false, int64AsType: 'number' })

  encode(frame: readonly unknown[]): Buffer {
    return this.#packr.pack(frame)
  }

  /** The frames of one message; throws UndecodableMessageError. */
  decodeMessage(message: Uint8Array, maxFrames: number): unknown[] {
    if (message.byteLength === 0) throw new UndecodableMessageError('an empty message')
    const frames: unknown[] = []
    try {
      this.#packr.unpackMultiple(message, (frame: unknown) => {
        frames.push(frame)
        // Stop as soon as the bound is crossed rather than materialize the rest.
        return frames.length <= maxFrames
      })
    } catch (error) {
      const detail = error instanceof Error ? error.message : String(error)
      throw new UndecodableMessageError(`not MessagePack: ${detail.replace(/\s+/g, ' ').slice(0, MAX_DETAIL_CHARS)}`)
    }
    if (frames.length > maxFrames) throw new UndecodableMessageError(`a message of more than ${maxFrames} frames`)
    return frames
  }
}

/** Several encoded frames as one message body. */
export function joinFrames(frames: readonly Uint8Array[], totalBytes: number): Uint8Array {
  return frames.length === 1 ? frames[0] as Uint8Array : Buffer.concat(frames, totalBytes)
}
