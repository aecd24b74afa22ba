/**
 * The second half of `npm run build`: after tsc has emitted dist/, esbuild bundles each program in
 * bin/ with the library code and the pure-JS packages it imports into one ES module, written over
 * tsc's dist/bin/<name>.js (the path `npm start`, the bin links and the systemd unit run). Node's
 * module loader resolving, reading and compiling ~150 small files was most of the daemon's
 * start-up (docs/benchmarks.md, issue 15); one file removes that. dist/lib/ stays as tsc emitted
 * it, for the benches and tools that import it.
 */
import { build, type Plugin } from 'esbuild'
import { isBuiltin } from 'node:module'
import { dirname, resolve } from 'node:path'
import { fileURLToPath } from 'node:url'

/** Run from dist/build/bundle.js: the repository root is two levels up. */
const repoRoot = resolve(dirname(fileURLToPath(import.meta.url)), '../..')

/** The programs bundled, as bin/<name>.ts → dist/bin/<name>.js. */
const PROGRAMS = ['hearsayd', 'hearsay'] as const

/**
 * Loaded from node_modules at run time, not bundled: lmdb finds its native addon beside its own
 * files, and shares msgpackr with us (one copy, not two); bufferutil and utf-8-validate are ws's
 * optional native helpers, absent unless installed.
 */
const EXTERNAL_PACKAGES = ['lmdb', 'msgpackr', 'bufferutil', 'utf-8-validate']

/**
 * The bundled CommonJS packages (convict, pino, ws, ...) call require() for Node's built-ins, and
 * lib/ loads a few packages lazily with createRequire; an ES module has no `require` of its own.
 */
const REQUIRE_BANNER = "import { createRequire as __bundleCreateRequire } from 'node:module'; const require = __bundleCreateRequire(import.meta.url);"

/**
 * Node's built-in modules and the external packages, where lib/ imports them, are loaded with
 * require() instead of `import`. An ES module import of a built-in builds its ES facade by reading
 * every export once, and node:tls's `rootCertificates` getter then parses Mozilla's whole CA
 * bundle: ~25 ms of start-up (more under load) for a list the daemon never reads; require() hands
 * over the CommonJS exports as they are. lmdb and msgpackr publish one prebuilt CommonJS file
 * each (dist/*.cjs) beside their ES module sources, which import ~20 files through the ES
 * module loader. Each such import becomes a one-line CommonJS module of the bundle.
 */
const requireAtRunTime: Plugin = {
  name: 'require-at-run-time',
  setup(build) {
    build.onResolve({ filter: /^(node:)?[a-z_/-]+$/ }, args =>
      args.kind === 'import-statement' && (isBuiltin(args.path) || EXTERNAL_PACKAGES.includes(args.path)) ? { path: args.path, namespace: 'require' } : undefined)
    build.onLoad({ filter: /.*/, namespace: 'require' }, args =>
      ({ contents: `module.exports = require(${JSON.stringify(args.path)})`, loader: 'js' }))
  },
}

await build({
  absWorkingDir: repoRoot,
  entryPoints: PROGRAMS.map(name => ({ in: `bin/${name}.ts`, out: name })),
  outdir: 'dist/bin',
  bundle: true,
  platform: 'node',
  format: 'esm',
  target: 'node20',
  external: EXTERNAL_PACKAGES,
  banner: { js: REQUIRE_BANNER },
  plugins: [requireAtRunTime],
  // Stack traces map back to lib/*.ts with `node --enable-source-maps`; the sources themselves
  // are in the repository, so the map does not carry them.
  sourcemap: 'linked',
  sourcesContent: false,
  // Not minified: without source maps, a stack trace still names functions and readable lines.
  minify: false,
  logLevel: 'warning',
})
