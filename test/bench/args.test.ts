import t from 'tap'
import { UsageError } from '../../lib/client/command.js'
import {
  DEFAULT_CONCURRENCY, DEFAULT_DURATION_MS, DEFAULT_KEY_BYTES, DEFAULT_KEY_COUNT, DEFAULT_PLOT_FILE,
  DEFAULT_SAMPLE_EVERY, DEFAULT_SETTLE_MS, DEFAULT_VALUE_BYTES, DEFAULT_WARMUP_MS, parseBenchArgs,
} from '../../lib/bench/args.js'
import { benchKey, minimumKeyBytes } from '../../lib/bench/keys.js'

t.test('no options gives the documented defaults: 64 in flight for 10 s, 16 B keys, 100 B values, 1:1', async t => {
  t.same(parseBenchArgs({}), {
    concurrency: DEFAULT_CONCURRENCY,
    durationMs: DEFAULT_DURATION_MS,
    warmupMs: DEFAULT_WARMUP_MS,
    keyBytes: DEFAULT_KEY_BYTES,
    valueBytes: DEFAULT_VALUE_BYTES,
    keys: DEFAULT_KEY_COUNT,
    mix: { put: 1, get: 1 },
    w: undefined,
    r: undefined,
    watchers: 0,
  })
  t.equal(DEFAULT_CONCURRENCY, 64)
  t.equal(DEFAULT_DURATION_MS, 10_000)
})

t.test('every option is read with its unit', async t => {
  const settings = parseBenchArgs({
    concurrency: '8', duration: '2m', warmup: '5s', 'key-bytes': '32', 'value-bytes': '1000', keys: '500', mix: '3:1', w: 'all', r: '2',
  })
  t.same(settings, {
    concurrency: 8, durationMs: 120_000, warmupMs: 5000, keyBytes: 32, valueBytes: 1000, keys: 500, mix: { put: 3, get: 1 }, w: 'all', r: 2, watchers: 0,
  })
  t.equal(parseBenchArgs({ duration: '500ms' }).durationMs, 500)
  t.equal(parseBenchArgs({ duration: '15' }).durationMs, 15_000, 'a bare number is seconds, as in wrk -d')
  t.equal(parseBenchArgs({ warmup: '3' }).warmupMs, 3000, '--warmup too')
  t.equal(parseBenchArgs({ warmup: '0' }).warmupMs, 0, 'no warm-up is a warm-up of 0')
  t.equal(parseBenchArgs({ sweep: 'w=1', settle: '2' }).sweep?.settleMs, 2000, '--settle too')
  t.equal(parseBenchArgs({ duration: '1h' }).durationMs, 3_600_000)
})

t.test('--rate asks for an open loop; --concurrency bounds what it has in flight', async t => {
  const settings = parseBenchArgs({ rate: '500', concurrency: '16', duration: '5' })
  t.equal(settings.ratePerSecond, 500)
  t.equal(settings.concurrency, 16)
  t.equal(settings.durationMs, 5000)
  t.equal(parseBenchArgs({}).ratePerSecond, undefined, 'closed loop unless asked')
})

t.test('--watchers N adds N watches to a single run', async t => {
  t.equal(parseBenchArgs({ watchers: '100', mix: '1:0' }).watchers, 100)
})

t.test('--ops replaces the duration', async t => {
  const settings = parseBenchArgs({ ops: '200' })
  t.equal(settings.ops, 200)
  t.equal(settings.durationMs, undefined)
  t.equal(settings.warmupMs, 0, 'no warm-up unless asked, so --ops N runs exactly N recorded operations')
})

t.test('--sweep lists write levels and brings its own defaults', async t => {
  const settings = parseBenchArgs({ sweep: 'w=1,2,quorum,all', mix: '1:0' })
  t.same(settings.sweep, { levels: [1, 2, 'quorum', 'all'], plotFile: DEFAULT_PLOT_FILE, settleMs: DEFAULT_SETTLE_MS, sampleEvery: DEFAULT_SAMPLE_EVERY })
  const custom = parseBenchArgs({ sweep: 'w=3, 1', plot: 'out/w.svg', settle: '1s', 'sample-every': '5' })
  t.same(custom.sweep, { levels: [3, 1], plotFile: 'out/w.svg', settleMs: 1000, sampleEvery: 5 })
})

t.test('--mix cas and --mix incr run linearizable operations only', async t => {
  t.equal(parseBenchArgs({ mix: 'cas' }).mix, 'cas')
  t.equal(parseBenchArgs({ mix: 'incr', keys: '64' }).mix, 'incr')
})

t.test('bad input is a usage error that names the option', async t => {
  const cases: [Record<string, string>, RegExp][] = [
    [{ concurrency: '0' }, /--concurrency must be a whole number from 1 to/],
    [{ concurrency: 'many' }, /--concurrency must be a whole number/],
    [{ concurrency: '20000' }, /--concurrency must be a whole number from 1 to 10000/],
    [{ duration: '10' + 'x' }, /--duration must be a positive duration: a bare number of seconds/],
    [{ duration: '-5s' }, /--duration must be a positive duration/],
    [{ duration: '0' }, /--duration must be a positive duration/],
    [{ duration: '1.5' }, /--duration must be a positive duration/],
    [{ duration: '100000' }, /--duration must be at most 86400s \(a bare number is seconds; for milliseconds write 100000ms\)/],
    [{ warmup: 'soon' }, /--warmup must be a bare number of seconds/],
    [{ rate: '0' }, /--rate must be a whole number from 1 to 1000000/],
    [{ rate: 'fast' }, /--rate must be a whole number/],
    [{ duration: '3d' }, /--duration must be at most 86400s/],
    [{ duration: '10s', ops: '5' }, /give --duration or --ops, not both/],
    [{ ops: '1.5' }, /--ops must be a whole number/],
    [{ 'key-bytes': '2000' }, /--key-bytes must be a whole number from 1 to 1024/],
    [{ 'key-bytes': '4' }, /--key-bytes 4 is too short to number 100000 keys; use at least 5/],
    [{ 'value-bytes': '0' }, /--value-bytes must be a whole number from 1 to 1048576/],
    [{ keys: '0' }, /--keys must be a whole number from 1/],
    [{ mix: '1' }, /--mix must be PUT:GET/],
    [{ mix: '1:-1' }, /--mix must be PUT:GET/],
    [{ mix: '0:0' }, /--mix 0:0 runs nothing/],
    [{ mix: '5000:1' }, /--mix must be PUT:GET with whole numbers up to 1000/],
    [{ w: 'most' }, /--w must be one, quorum, all or a number/],
    [{ r: '0' }, /--r must be one, quorum, all or a number/],
    [{ sweep: '1,2,3' }, /--sweep must look like w=1,2,3/],
    [{ sweep: 'r=1,2' }, /--sweep must look like w=1,2,3/],
    [{ sweep: 'w=1,,2' }, /--sweep w must be one, quorum, all or a number/],
    [{ sweep: 'w=1,2,1' }, /--sweep lists w=1 twice/],
    [{ sweep: 'w=' + Array.from({ length: 17 }, (_, i) => i + 1).join(',') }, /at most 16 write levels/],
    [{ sweep: 'w=1,2', w: '2' }, /leave out --w/],
    [{ sweep: 'w=1,2', mix: '0:1' }, /--mix needs writes/],
    [{ mix: 'cass' }, /--mix must be PUT:GET .*or cas or incr/],
    [{ mix: 'cas', w: 'all' }, /--w does not apply to --mix cas: linearizable operations always need a majority/],
    [{ mix: 'incr', r: '1' }, /--r does not apply to --mix incr/],
    [{ mix: 'cas', sweep: 'w=1,2' }, /--sweep does not apply to --mix cas/],
    [{ plot: 'x.svg' }, /--plot applies only with --sweep/],
    [{ settle: '1s' }, /--settle applies only with --sweep/],
    [{ 'sample-every': '3' }, /--sample-every applies only with --sweep/],
    [{ sweep: 'w=1', settle: '2h' }, /--settle must be at most 60s/],
    [{ sweep: 'w=1', plot: ' ' }, /--plot needs a file name/],
    [{ sweep: 'w=1', 'sample-every': '0' }, /--sample-every must be a whole number/],
    [{ watchers: '0' }, /--watchers must be a whole number from 1 to 10000/],
    [{ watchers: 'lots' }, /--watchers must be a whole number/],
    [{ watchers: '5', sweep: 'w=1,2' }, /--watchers measures one run; leave out --sweep/],
    [{ watchers: '5', mix: '0:1' }, /--watchers watches the puts of the load, so --mix needs writes/],
  ]
  for (const [options, message] of cases) {
    t.throws(() => parseBenchArgs(options), message, JSON.stringify(options))
    try {
      parseBenchArgs(options)
    } catch (err) {
      t.type(err, UsageError, `${JSON.stringify(options)} is a usage error (exit code 2)`)
    }
  }
})

t.test('keys are exactly key-bytes long, distinct per index and the same every time', async t => {
  t.equal(benchKey(42, 16, 100_000), 'bench/0000000042')
  t.equal(benchKey(42, 7, 100_000), 'be00042', 'the prefix gives way to the number')
  t.equal(benchKey(99_999, 5, 100_000), '99999')
  t.equal(benchKey(0, 1, 1), '0')
  t.equal(minimumKeyBytes(100_000), 5)
  const keys = new Set<string>()
  for (let index = 0; index < 1000; index++) {
    const key = benchKey(index, 8, 1000)
    t.equal(Buffer.byteLength(key), 8)
    keys.add(key)
  }
  t.equal(keys.size, 1000)
  t.throws(() => benchKey(1000, 8, 1000), RangeError)
  t.throws(() => benchKey(0, 2, 1000), RangeError)
})
