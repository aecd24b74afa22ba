import { spawn } from 'node:child_process'
import { once } from 'node:events'
import { closeSync, fsyncSync, mkdtempSync, openSync, rmSync, writeSync } from 'node:fs'
import net from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { open } from 'lmdb'
import { AcceptorJournal } from '../../lib/paxos/acceptor-journal.js'
import { JournalDirectory } from '../../lib/store/journal-files.js'

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
/** Lone LMDB commits and journal syncs timed, after a warm-up, each after a pause as a lone operation has. */
const COMMIT_SAMPLES = 300
const COMMIT_WARMUP = 30
const COMMIT_PAUSE_MS = 2
const COMMIT_VALUE_BYTES = 400
/** Echoes every chunk back; prints its port once listening. */
const ECHO_SERVER = `const s = require('node:net').createServer(c => { c.setNoDelay(true); c.on('data', d => c.write(d)) });
s.listen(0, '127.0.0.1', () => console.log(s.address().port))`

export interface Bounds {
  /** Median of a 4 KiB write + fsync in the data dirs' filesystem. */
  readonly fsyncP50Ms: number
  /** Median time for one byte to go to a loopback TCP peer in this process and back. */
  readonly loopbackRoundTripP50Ms: number
  /** 2 round trips + 2 fsyncs. */
  readonly casFloorMs: number
  /**
   * What separate processes pay, which the floor above does not: the median round trip to an
   * echo server in another process (each side sleeps in epoll between messages, as a node
   * between a lone operation's steps), ...
   */
  readonly processRoundTripP50Ms: number
  /** ... the median lone sync of the acceptor journal (one state appended, then durable), as an acceptor makes one ... */
  readonly journalSyncP50Ms: number
  /** ... and the median lone commit through lmdb-js (transaction with one put, then flushed), as a replica of a plain write makes one. */
  readonly lmdbCommitP50Ms: number
  /**
   * A lone one-round-trip CAS through a coordinator on those costs: client → coordinator →
   * acceptor and back (2 process round trips) + the acceptor's journal sync.
   */
  readonly loneCasFloorMs: number
}

export async function measureBounds(dir = tmpdir()): Promise<Bounds> {
  const fsyncP50Ms = median(timeFsyncs(dir))
  const loopbackRoundTripP50Ms = median(await timeRoundTrips(undefined))
  const processRoundTripP50Ms = median(await timeProcessRoundTrips())
  const journalSyncP50Ms = median(await timeJournalSyncs(dir))
  const lmdbCommitP50Ms = median(await timeLmdbCommits(dir))
  return {
    fsyncP50Ms, loopbackRoundTripP50Ms, casFloorMs: 2 * fsyncP50Ms + 2 * loopbackRoundTripP50Ms,
    processRoundTripP50Ms, journalSyncP50Ms, lmdbCommitP50Ms, loneCasFloorMs: 2 * processRoundTripP50Ms + journalSyncP50Ms,
  }
}

/** The daemon's own journal classes on a scratch directory, one state-sized record per sync. */
async function timeJournalSyncs(dir: string): Promise<number[]> {
  const scratch = mkdtempSync(join(dir, 'hearsay-journal-'))
  const files = new JournalDirectory(scratch)
  await files.list()
  const journal = new AcceptorJournal(files, files.create(1))
  const record = Buffer.alloc(COMMIT_VALUE_BYTES, 1)
  try {
    return await timeLone(async () => {
      journal.append(record)
      await journal.durable()
    })
  } finally {
    await journal.close()
    rmSync(scratch, { recursive: true, force: true })
  }
}

/** `operation` timed COMMIT_SAMPLES times after COMMIT_WARMUP, each after a pause as a lone operation has. */
async function timeLone(operation: (i: number) => Promise<void>): Promise<number[]> {
  const samples: number[] = []
  for (let i = 0; i < COMMIT_WARMUP + COMMIT_SAMPLES; i++) {
    await new Promise(resolve => setTimeout(resolve, COMMIT_PAUSE_MS))
    const started = performance.now()
    await operation(i)
    if (i >= COMMIT_WARMUP) samples.push(performance.now() - started)
  }
  return samples
}

async function timeProcessRoundTrips(): Promise<number[]> {
  const child = spawn(process.execPath, ['-e', ECHO_SERVER], { stdio: ['ignore', 'pipe', 'inherit'] })
  try {
    const [line] = await once(child.stdout, 'data') as [Buffer]
    return await timeRoundTrips(Number(line.toString().trim()))
  } finally {
    child.kill()
  }
}

async function timeLmdbCommits(dir: string): Promise<number[]> {
  const scratch = mkdtempSync(join(dir, 'hearsay-commit-'))
  const root = open({ path: scratch, noSubdir: false, maxDbs: 2, mapSize: 64 * 1024 * 1024 })
  const db = root.openDB<Uint8Array, Uint8Array>('probe', { keyEncoding: 'binary', encoding: 'binary' })
  const value = Buffer.alloc(COMMIT_VALUE_BYTES, 1)
  try {
    return await timeLone(async (i) => {
      await db.transaction(() => { void db.put(Buffer.from(`k${i % 64}`), value) })
      await db.flushed
    })
  } finally {
    await root.close()
    rmSync(scratch, { recursive: true, force: true })
  }
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

/** Round trips to the echo server at `port`, or to one in this process (undefined). */
async function timeRoundTrips(port: number | undefined): Promise<number[]> {
  let server: net.Server | undefined
  if (port === undefined) {
    server = net.createServer(socket => socket.on('data', data => socket.write(data)))
    server.listen(0, '127.0.0.1')
    await once(server, 'listening')
    port = (server.address() as net.AddressInfo).port
  }
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
    server?.close()
  }
  return samples
}

function median(samples: readonly number[]): number {
  const sorted = [...samples].sort((a, b) => a - b)
  return sorted[Math.floor(sorted.length / 2)] ?? 0
}
