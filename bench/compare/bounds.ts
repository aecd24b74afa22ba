import { once } from 'node:events'
import { closeSync, fsyncSync, mkdtempSync, openSync, rmSync, writeSync } from 'node:fs'
import net from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'

/**
 * The floor under a CASPaxos change on this machine (issue 13: "p50 within 2 round trips + 2
 * fsyncs"): a prepare and an accept are each one round trip to a majority, and each acceptor
 * fsyncs its promise and its accepted value before it answers. Measured here so the bound is this
 * disk's and this loopback's, not a guess.
 */

/** fsyncs timed; the median is what the bound uses. */
const FSYNC_SAMPLES = 200
const FSYNC_WRITE_BYTES = 4096
/** Round trips timed over one loopback TCP connection, after a warm-up. */
const ROUND_TRIP_SAMPLES = 2000
const ROUND_TRIP_WARMUP = 200

export interface Bounds {
  /** Median of a 4 KiB write + fsync in the data dirs' filesystem. */
  readonly fsyncP50Ms: number
  /** Median time for one byte to go to a loopback TCP peer in this process and back. */
  readonly loopbackRoundTripP50Ms: number
  /** 2 round trips + 2 fsyncs. */
  readonly casFloorMs: number
}

export async function measureBounds(dir = tmpdir()): Promise<Bounds> {
  const fsyncP50Ms = median(timeFsyncs(dir))
  const loopbackRoundTripP50Ms = median(await timeRoundTrips())
  return { fsyncP50Ms, loopbackRoundTripP50Ms, casFloorMs: 2 * fsyncP50Ms + 2 * loopbackRoundTripP50Ms }
}

function timeFsyncs(dir: string): number[] {
  const scratch = mkdtempSync(join(dir, 'hearsay-fsync-'))
  const fd = openSync(join(scratch, 'probe'), 'w')
  const block = Buffer.alloc(FSYNC_WRITE_BYTES, 1)
  try {
    return Array.from({ length: FSYNC_SAMPLES }, () => {
      const started = performance.now()
      writeSync(fd, block, 0, block.length, 0)
      fsyncSync(fd)
      return performance.now() - started
    })
  } finally {
    closeSync(fd)
    rmSync(scratch, { recursive: true, force: true })
  }
}

async function timeRoundTrips(): Promise<number[]> {
  const server = net.createServer(socket => socket.on('data', data => socket.write(data)))
  server.listen(0, '127.0.0.1')
  await once(server, 'listening')
  const { port } = server.address() as net.AddressInfo
  const socket = net.connect(port, '127.0.0.1')
  socket.setNoDelay(true)
  await once(socket, 'connect')
  const samples: number[] = []
  try {
    for (let i = 0; i < ROUND_TRIP_WARMUP + ROUND_TRIP_SAMPLES; i++) {
      const started = performance.now()
      socket.write('x')
      await once(socket, 'data')
      if (i >= ROUND_TRIP_WARMUP) samples.push(performance.now() - started)
    }
  } finally {
    socket.destroy()
    server.close()
  }
  return samples
}

function median(samples: readonly number[]): number {
  const sorted = [...samples].sort((a, b) => a - b)
  return sorted[Math.floor(sorted.length / 2)] ?? 0
}
