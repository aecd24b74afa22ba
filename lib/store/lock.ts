import { randomBytes } from 'node:crypto'
import { promises as fs } from 'node:fs'
import path from 'node:path'

/**
 * LMDB happily lets several processes share an environment, so two daemons pointed at the same
 * data dir would both run with the same node id. A pid file in the data dir prevents that.
 *
 * The pid file is created atomically and exclusively: the pid is written to a private temp file
 * first and then hard-linked into place (link fails with EEXIST like O_EXCL does), so a reader
 * never sees a half-written pid file. A pid file whose process is gone, or is not a node
 * process (the pid was reused), is stale and taken over.
 *
 * Known limit: two daemons taking over the same stale file in the same instant can both
 * succeed; an operator starting two daemons on one dir at once is not a case worth a daemon.
 */

export const LOCK_FILE_NAME = 'hearsayd.pid'
/** Stale pid files removed before giving up; each round is one race lost to another starter. */
const MAX_LOCK_ATTEMPTS = 3

export class DataDirLockedError extends Error {
  constructor(readonly dataDir: string, readonly pid: number) {
    super(`data dir ${dataDir} is in use by another hearsayd (pid ${pid})`)
    this.name = 'DataDirLockedError'
  }
}

export interface DataDirLock {
  /** Path of the pid file. */
  readonly path: string
  /** Removes the pid file if it is still ours; safe to call twice. */
  release(): Promise<void>
}

export async function lockDataDir(dataDir: string): Promise<DataDirLock> {
  const lockPath = path.join(dataDir, LOCK_FILE_NAME)
  const tempPath = path.join(dataDir, `.${LOCK_FILE_NAME}.${process.pid}.${randomBytes(4).toString('hex')}`)
  await fs.writeFile(tempPath, `${process.pid}\n`, { flag: 'wx' })
  try {
    for (let attempt = 1; attempt <= MAX_LOCK_ATTEMPTS; attempt++) {
      try {
        await fs.link(tempPath, lockPath)
        return { path: lockPath, release: () => releaseLock(lockPath) }
      } catch (error) {
        if (errorCode(error) !== 'EEXIST') throw error
      }
      const holder = await readHolderPid(lockPath)
      if (holder !== undefined && await isLiveNodeProcess(holder)) throw new DataDirLockedError(dataDir, holder)
      await fs.rm(lockPath, { force: true })
    }
    throw new Error(`could not lock data dir ${dataDir}: its pid file ${lockPath} kept reappearing`)
  } finally {
    await fs.rm(tempPath, { force: true })
  }
}

async function releaseLock(lockPath: string): Promise<void> {
  if (await readHolderPid(lockPath) === process.pid) await fs.rm(lockPath, { force: true })
}

/** The pid in the file; undefined when the file is gone or does not hold a pid. */
async function readHolderPid(lockPath: string): Promise<number | undefined> {
  let text: string
  try {
    text = await fs.readFile(lockPath, 'utf8')
  } catch (error) {
    if (errorCode(error) === 'ENOENT') return undefined
    throw error
  }
  const trimmed = text.trim()
  if (!/^[1-9][0-9]{0,9}$/.test(trimmed)) return undefined
  return Number(trimmed)
}

async function isLiveNodeProcess(pid: number): Promise<boolean> {
  if (pid === process.pid) return true
  try {
    process.kill(pid, 0)
  } catch (error) {
    // EPERM: alive, owned by another user.
    if (errorCode(error) !== 'EPERM') return false
  }
  let commandLine: string
  try {
    commandLine = await fs.readFile(`/proc/${pid}/cmdline`, 'utf8')
  } catch (error) {
    // ENOENT: it exited meanwhile. Anything else: no /proc here, so assume the worst.
    return errorCode(error) !== 'ENOENT'
  }
  const [program = '', ...args] = commandLine.split('\0')
  return /node/i.test(path.basename(program)) || args.some(arg => /hearsay/i.test(arg))
}

function errorCode(error: unknown): string | undefined {
  return (error as NodeJS.ErrnoException | undefined)?.code
}
