import { createHash } from 'node:crypto'
import { createReadStream, createWriteStream, promises as fs } from 'node:fs'
import { join } from 'node:path'
import { pipeline } from 'node:stream/promises'
import { open } from 'lmdb'

/**
 * Snapshots of one node's store (`GET /snapshot`, `hearsay snapshot save`, `hearsayd --restore`).
 *
 * A snapshot is LMDB's compacting copy of the environment (mdb_env_copy2, one read transaction,
 * so every database is from the same moment) framed for transport:
 *
 *   "HEARSAY-SNAPSHOT\n" | header length (uint32 BE) | header (JSON) | data.mdb | SHA-256
 *
 * The SHA-256 covers everything before it, so a truncated or damaged file is refused before a
 * byte of it reaches a data directory.
 */

export const SNAPSHOT_MAGIC = Buffer.from('HEARSAY-SNAPSHOT\n', 'ascii')
/** Bumped when the layout or the store's record format changes incompatibly. */
export const SNAPSHOT_FORMAT = 1
/** A header is a few hundred bytes; anything near this is not a hearsay snapshot. */
const MAX_HEADER_BYTES = 64 * 1024
const LENGTH_BYTES = 4
const DIGEST_BYTES = 32
/** The databases whose entry counts a header reports (lib/store/kv-store.ts opens them). */
const COUNTED_DATABASES = ['kv', 'hints', 'meta'] as const
const DATA_FILE = 'data.mdb'

export interface SnapshotHeader {
  readonly format: number
  readonly nodeId: string
  readonly nodeName: string
  readonly partitions: number
  readonly hearsayVersion: string
  readonly createdAtMs: number
  /** Bytes of the LMDB data file that follow the header. */
  readonly dataBytes: number
  /** Entries per database at the snapshot's moment: kv (records, tombstones included), hints, meta. */
  readonly records: Readonly<Record<string, number>>
}

/** A snapshot file or stream that cannot be used; the message says why and what to do. */
export class SnapshotError extends Error {
  constructor(message: string) {
    super(message)
    this.name = 'SnapshotError'
  }
}

/** A snapshot made on disk, ready to stream: prefix, then the data file, then the digest. */
export interface PreparedSnapshot {
  readonly header: SnapshotHeader
  /** Total bytes of the framed snapshot. */
  readonly totalBytes: number
  chunks(): AsyncIterable<Buffer>
  /** Removes the temporary copy; safe to call more than once. */
  discard(): Promise<void>
}

export interface SnapshotSource {
  /** LMDB's copy into an empty directory (RootDatabase.backup with compaction). */
  backup(directory: string): Promise<void>
  readonly nodeId: string
  readonly nodeName: string
  readonly partitions: number
  readonly hearsayVersion: string
  readonly nowMs: () => number
}

/** Copies the store into `workDir` (created, and removed by discard()) and frames it. */
export async function prepareSnapshot(source: SnapshotSource, workDir: string): Promise<PreparedSnapshot> {
  await fs.rm(workDir, { recursive: true, force: true })
  await fs.mkdir(workDir, { recursive: true })
  const discard = (): Promise<void> => fs.rm(workDir, { recursive: true, force: true })
  try {
    await source.backup(workDir)
    const dataPath = join(workDir, DATA_FILE)
    const dataBytes = (await fs.stat(dataPath)).size
    const records = await countRecords(workDir)
    const header: SnapshotHeader = {
      format: SNAPSHOT_FORMAT, nodeId: source.nodeId, nodeName: source.nodeName, partitions: source.partitions,
      hearsayVersion: source.hearsayVersion, createdAtMs: source.nowMs(), dataBytes, records,
    }
    const prefix = framePrefix(header)
    return {
      header,
      totalBytes: prefix.length + dataBytes + DIGEST_BYTES,
      async *chunks() {
        const hash = createHash('sha256').update(prefix)
        yield prefix
        for await (const chunk of createReadStream(dataPath)) {
          hash.update(chunk as Buffer)
          yield chunk as Buffer
        }
        yield hash.digest()
      },
      discard,
    }
  } catch (error) {
    await discard()
    throw error
  }
}

function framePrefix(header: SnapshotHeader): Buffer {
  const json = Buffer.from(JSON.stringify(header), 'utf8')
  const length = Buffer.alloc(LENGTH_BYTES)
  length.writeUInt32BE(json.length)
  return Buffer.concat([SNAPSHOT_MAGIC, length, json])
}

async function countRecords(directory: string): Promise<Record<string, number>> {
  const copy = open({ path: directory, noSubdir: false, maxDbs: 8, readOnly: true })
  try {
    const counts: Record<string, number> = {}
    for (const name of COUNTED_DATABASES) {
      const stats = copy.openDB({ name, keyEncoding: 'binary', encoding: 'binary' }).getStats() as { entryCount: number }
      counts[name] = stats.entryCount
    }
    return counts
  } finally {
    await copy.close()
  }
}

/** Parses and checks the header at the start of `prefix` (which must hold at least all of it). */
export function parseHeader(prefix: Buffer, what: string): { header: SnapshotHeader; dataOffset: number } | undefined {
  if (prefix.length < SNAPSHOT_MAGIC.length + LENGTH_BYTES) return undefined
  if (!prefix.subarray(0, SNAPSHOT_MAGIC.length).equals(SNAPSHOT_MAGIC)) throw new SnapshotError(`${what} is not a hearsay snapshot (it does not start with ${JSON.stringify(SNAPSHOT_MAGIC.toString('ascii').trim())})`)
  const headerBytes = prefix.readUInt32BE(SNAPSHOT_MAGIC.length)
  if (headerBytes > MAX_HEADER_BYTES) throw new SnapshotError(`${what} has a ${headerBytes}-byte header, more than ${MAX_HEADER_BYTES}: the file is damaged`)
  const dataOffset = SNAPSHOT_MAGIC.length + LENGTH_BYTES + headerBytes
  if (prefix.length < dataOffset) return undefined
  let parsed: unknown
  try {
    parsed = JSON.parse(prefix.subarray(SNAPSHOT_MAGIC.length + LENGTH_BYTES, dataOffset).toString('utf8'))
  } catch {
    throw new SnapshotError(`${what} has a header that is not JSON: the file is damaged`)
  }
  return { header: checkHeader(parsed, what), dataOffset }
}

function checkHeader(value: unknown, what: string): SnapshotHeader {
  const header = value as Partial<SnapshotHeader> | null
  if (typeof header !== 'object' || header === null) throw new SnapshotError(`${what} has a header that is not an object: the file is damaged`)
  if (header.format !== SNAPSHOT_FORMAT) {
    throw new SnapshotError(`${what} is snapshot format ${String(header.format)} (written by hearsay ${String(header.hearsayVersion)}); this hearsayd reads format ${SNAPSHOT_FORMAT} only: restore it with a matching hearsay version`)
  }
  const integer = (field: keyof SnapshotHeader): number => {
    const n = header[field]
    if (typeof n !== 'number' || !Number.isSafeInteger(n) || n < 0) throw new SnapshotError(`${what} has no valid ${field} in its header: the file is damaged`)
    return n
  }
  const text = (field: keyof SnapshotHeader): string => {
    const s = header[field]
    if (typeof s !== 'string' || s.length > 256) throw new SnapshotError(`${what} has no valid ${field} in its header: the file is damaged`)
    return s
  }
  const records = header.records
  if (typeof records !== 'object' || records === null) throw new SnapshotError(`${what} has no record counts in its header: the file is damaged`)
  return {
    format: SNAPSHOT_FORMAT, nodeId: text('nodeId'), nodeName: text('nodeName'), partitions: integer('partitions'),
    hearsayVersion: text('hearsayVersion'), createdAtMs: integer('createdAtMs'), dataBytes: integer('dataBytes'),
    records: Object.fromEntries(Object.entries(records).filter(([, n]) => typeof n === 'number')) as Record<string, number>,
  }
}

/** Reads a snapshot file through, checking its framing and checksum; returns its header. */
export async function verifySnapshotFile(file: string): Promise<SnapshotHeader> {
  return (await readSnapshot(file, undefined)).header
}

export interface RestoreOptions {
  /** The data directory to fill: it must be missing or empty. */
  readonly dataDir: string
  /** This node's `partitions`: a snapshot of a cluster with another Q is refused. */
  readonly partitions: number
  /** This hearsayd's version: a snapshot written by a newer minor or another major one is refused. */
  readonly hearsayVersion: string
}

/**
 * Fills an empty data directory from a snapshot file. The data is written to a temporary file
 * beside its final name while it is hashed, and renamed only once the checksum matches: a
 * damaged file leaves the directory as it was.
 */
export async function restoreSnapshot(file: string, options: RestoreOptions): Promise<SnapshotHeader> {
  const entries = await fs.readdir(options.dataDir).catch((error: NodeJS.ErrnoException) => {
    if (error.code === 'ENOENT') return [] as string[]
    throw new SnapshotError(`cannot read the data directory ${options.dataDir}: ${error.message}`)
  })
  if (entries.length > 0) {
    throw new SnapshotError(`the data directory ${options.dataDir} is not empty (${entries.slice(0, 3).join(', ')}${entries.length > 3 ? ', …' : ''}); restore only into an empty or missing directory — move the old one aside first`)
  }
  const header = await verifySnapshotFile(file)
  checkCompatible(header, options, file)
  await fs.mkdir(options.dataDir, { recursive: true })
  const target = join(options.dataDir, DATA_FILE)
  const partial = `${target}.restoring`
  try {
    await readSnapshot(file, partial)
    // Durable before it takes the name LMDB opens: a crash now leaves no half-written data.mdb.
    const written = await fs.open(partial, 'r+')
    try { await written.sync() } finally { await written.close() }
    await fs.rename(partial, target)
  } catch (error) {
    await fs.rm(partial, { force: true })
    throw error
  }
  return header
}

function checkCompatible(header: SnapshotHeader, options: RestoreOptions, file: string): void {
  if (header.partitions !== options.partitions) {
    throw new SnapshotError(`${file} is of a cluster with ${header.partitions} partitions, this node is configured with partitions = ${options.partitions}; partitions is fixed per cluster: set it to ${header.partitions} or use a snapshot of this cluster`)
  }
  const [ourMajor, ourMinor] = versionParts(options.hearsayVersion)
  const [theirMajor, theirMinor] = versionParts(header.hearsayVersion)
  if (ourMajor !== undefined && theirMajor !== undefined && (theirMajor !== ourMajor || (theirMinor ?? 0) > (ourMinor ?? 0))) {
    throw new SnapshotError(`${file} was written by hearsay ${header.hearsayVersion}, which this hearsayd ${options.hearsayVersion} cannot read: restore it with hearsay ${theirMajor}.${theirMinor ?? 0} or newer of the same major version`)
  }
}

function versionParts(version: string): [number | undefined, number | undefined] {
  const match = /^(\d+)\.(\d+)/.exec(version)
  return match === null ? [undefined, undefined] : [Number(match[1]), Number(match[2])]
}

/** One pass over the file: frame, header, data (to `dataTarget` when given) and checksum. */
async function readSnapshot(file: string, dataTarget: string | undefined): Promise<{ header: SnapshotHeader }> {
  let size: number
  try {
    size = (await fs.stat(file)).size
  } catch (error) {
    throw new SnapshotError(`cannot read ${file}: ${(error as Error).message}`)
  }
  const handle = await fs.open(file, 'r')
  let parsed: { header: SnapshotHeader; dataOffset: number } | undefined
  try {
    const head = Buffer.alloc(Math.min(size, SNAPSHOT_MAGIC.length + LENGTH_BYTES + MAX_HEADER_BYTES))
    await handle.read(head, 0, head.length, 0)
    parsed = parseHeader(head, file)
  } finally {
    await handle.close()
  }
  if (parsed === undefined) throw new SnapshotError(`${file} ends inside its header (${size} bytes): the file is truncated`)
  const { header, dataOffset } = parsed
  const expected = dataOffset + header.dataBytes + DIGEST_BYTES
  if (size !== expected) {
    throw new SnapshotError(`${file} is ${size} bytes but its header promises ${expected}: the file is ${size < expected ? 'truncated' : 'damaged'}; save the snapshot again`)
  }
  const hash = createHash('sha256')
  const hashed = createReadStream(file, { start: 0, end: dataOffset + header.dataBytes - 1 })
  if (dataTarget === undefined) {
    for await (const chunk of hashed) hash.update(chunk as Buffer)
  } else {
    let position = 0
    await pipeline(hashed, async function* (source: AsyncIterable<Buffer>) {
      for await (const chunk of source) {
        hash.update(chunk)
        const start = Math.max(0, dataOffset - position)
        position += chunk.length
        if (start < chunk.length) yield chunk.subarray(start)
      }
    }, createWriteStream(dataTarget, { flags: 'wx' }))
  }
  const digest = Buffer.alloc(DIGEST_BYTES)
  const tail = await fs.open(file, 'r')
  try {
    await tail.read(digest, 0, DIGEST_BYTES, size - DIGEST_BYTES)
  } finally {
    await tail.close()
  }
  if (!hash.digest().equals(digest)) throw new SnapshotError(`${file} does not match its checksum: the file is damaged; save the snapshot again`)
  return { header }
}
