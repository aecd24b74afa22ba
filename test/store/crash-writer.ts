/**
 * Child process of segment-index.test.ts: applies new keys (their segment index entries deferred),
 * says so on stdout once every apply is acknowledged, and waits to be killed with SIGKILL.
 * argv: data dir, key count.
 */
import { KvStore } from '../../lib/store/kv-store.js'
import { hlcAt, put, TEST_MAP_SIZE_BYTES, WALL_MS } from './fixture.js'

const [dataDir, count] = [process.argv[2] as string, Number(process.argv[3])]
const store = await KvStore.open({
  dataDir,
  mapSizeBytes: TEST_MAP_SIZE_BYTES,
  // Keys name their segment ("17/name" lies in segment 17), as in the test.
  segments: { segmentOf: (key) => Number(key.slice(0, key.indexOf('/'))), scheme: 'prefix' },
  nowMs: () => WALL_MS,
})
for (let i = 0; i < count; i++) await store.apply(`${i % 7}/k${i}`, put(`v${i}`, hlcAt(WALL_MS, i)))
process.stdout.write(`applied ${count}, ${store.segments?.deferredCount ?? 0} deferred\n`)
// Held open until the parent kills this process.
setInterval(() => undefined, 60_000)
