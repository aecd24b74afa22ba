import t, { type Test } from 'tap'
import { spawn, type ChildProcess } from 'node:child_process'
import { once } from 'node:events'
import { readFile, writeFile } from 'node:fs/promises'
import path from 'node:path'
import { fileURLToPath, pathToFileURL } from 'node:url'
import { KvStore } from '../../lib/store/kv-store.js'
import { DataDirLockedError, LOCK_FILE_NAME, lockDataDir } from '../../lib/store/lock.js'
import { TEST_MAP_SIZE_BYTES } from './fixture.js'
import { scriptCommand } from '../helpers/node-command.js'

/** A child runs our TypeScript through tap's loader, which takes a while on a busy machine. */
const CHILD_READY_TIMEOUT_MS = 60_000
const kvStoreUrl = pathToFileURL(path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../lib/store/kv-store.ts')).href

function open(dataDir: string): Promise<KvStore> {
  return KvStore.open({ dataDir, mapSizeBytes: TEST_MAP_SIZE_BYTES })
}

/** A node process holding the store open until its stdin closes; resolves once it is open. */
async function childHoldingStore(t: Test, dataDir: string): Promise<ChildProcess> {
  const script = `
    const { KvStore } = await import(${JSON.stringify(kvStoreUrl)})
    const store = await KvStore.open({ dataDir: ${JSON.stringify(dataDir)}, mapSizeBytes: ${TEST_MAP_SIZE_BYTES} })
    process.stdout.write('ready\\n')
    process.stdin.resume()
    process.stdin.on('end', () => store.close().then(() => process.exit(0)))
  `
  const command = scriptCommand(['--input-type=module', '-e', script])
  const child = spawn(command.command, command.args, { stdio: ['pipe', 'pipe', 'inherit'] })
  t.teardown(() => { if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL') })
  let output = ''
  child.stdout?.setEncoding('utf8')
  const ready = new Promise<void>((resolve, reject) => {
    child.stdout?.on('data', (chunk: string) => {
      output += chunk
      if (output.includes('ready\n')) resolve()
    })
    child.once('exit', code => reject(new Error(`child exited with ${code} before opening the store`)))
  })
  const timeout = new Promise<never>((_, reject) => setTimeout(() => reject(new Error('child did not open the store in time')), CHILD_READY_TIMEOUT_MS).unref())
  await Promise.race([ready, timeout])
  return child
}

/** The pid of a node process that has already exited. */
async function deadPid(): Promise<number> {
  const child = spawn(process.execPath, ['-e', ''], { stdio: 'ignore' })
  await once(child, 'exit')
  if (child.pid === undefined) throw new Error('no pid for the child')
  return child.pid
}

t.test('a second open of the same data dir in the same process is refused', async t => {
  const dataDir = t.testdir()
  const first = await open(dataDir)
  const refusal = await open(dataDir).then(() => undefined, (error: unknown) => error)
  t.type(refusal, DataDirLockedError)
  t.equal((refusal as Error).message, `data dir ${dataDir} is in use by another hearsayd (pid ${process.pid})`)
  await first.close()
  const again = await open(dataDir)
  t.ok(again, 'closing released the lock')
  await again.close()
})

t.test('an open in another process is refused, and its lock is taken over once it was killed', async t => {
  const dataDir = t.testdir()
  const child = await childHoldingStore(t, dataDir)
  const refusal = await open(dataDir).then(() => undefined, (error: unknown) => error)
  t.type(refusal, DataDirLockedError)
  t.equal((refusal as DataDirLockedError).pid, child.pid)
  const exited = once(child, 'exit')
  child.kill('SIGKILL')
  await exited
  t.equal((await readFile(path.join(dataDir, LOCK_FILE_NAME), 'utf8')).trim(), String(child.pid), 'a killed daemon leaves its pid file behind')
  const store = await open(dataDir)
  t.equal((await readFile(path.join(dataDir, LOCK_FILE_NAME), 'utf8')).trim(), String(process.pid))
  await store.close()
})

t.test('a pid file of a process that is gone is taken over', async t => {
  const dataDir = t.testdir()
  await writeFile(path.join(dataDir, LOCK_FILE_NAME), `${await deadPid()}\n`)
  const store = await open(dataDir)
  t.equal((await readFile(path.join(dataDir, LOCK_FILE_NAME), 'utf8')).trim(), String(process.pid))
  await store.close()
})

t.test('a pid file naming a live process that is not node (a reused pid) is taken over', async t => {
  const dataDir = t.testdir()
  const sleeper = spawn('sleep', ['60'], { stdio: 'ignore' })
  t.teardown(() => { sleeper.kill('SIGKILL') })
  await writeFile(path.join(dataDir, LOCK_FILE_NAME), `${sleeper.pid}\n`)
  const store = await open(dataDir)
  t.equal((await readFile(path.join(dataDir, LOCK_FILE_NAME), 'utf8')).trim(), String(process.pid))
  await store.close()
})

t.test('a pid file without a pid in it is taken over', async t => {
  const dataDir = t.testdir()
  await writeFile(path.join(dataDir, LOCK_FILE_NAME), 'not a pid')
  const lock = await lockDataDir(dataDir)
  t.equal((await readFile(lock.path, 'utf8')).trim(), String(process.pid))
  await lock.release()
})

t.test('release leaves a pid file alone that is no longer ours', async t => {
  const dataDir = t.testdir()
  const lock = await lockDataDir(dataDir)
  const otherPid = await deadPid()
  await writeFile(lock.path, `${otherPid}\n`)
  await lock.release()
  t.equal((await readFile(lock.path, 'utf8')).trim(), String(otherPid))
})
