import t from 'tap'
import { existsSync, mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join, resolve } from 'node:path'
import { repoRoot, startCluster, waitFor, type Daemon } from '../helpers/daemon.js'

/**
 * The dashboard in a real browser: Debian's Chromium, headless, driven by playwright-core over
 * one three-node cluster shared by every step. Skipped only where Chromium is not installed.
 * HEARSAY_DASHBOARD_SCREENSHOTS=docs/img refreshes the screenshots in docs/operations.md.
 */

const CHROMIUM = process.env.HEARSAY_CHROMIUM ?? '/usr/bin/chromium'
const CHROMIUM_ARGS = ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync']
/** Membership a little faster than the LAN defaults, so a killed member is dead sooner. */
const FAST = { membership: { probeIntervalMs: 500, probeTimeoutMs: 200, gossipIntervalMs: 100, pushPullIntervalMs: 5000 } }
const TOKEN = 'dashboard-test-token'
/** Detection with FAST: suspicion after one failed probe, then the suspicion timeout (well under this). */
const DETECTION_TIMEOUT_MS = 30_000
const screenshots = process.env.HEARSAY_DASHBOARD_SCREENSHOTS
/** The page's document, inside functions playwright runs in the browser (tsconfig has no DOM lib). */
declare const document: {
  querySelectorAll(selector: string): { readonly length: number }
  querySelector(selector: string): { getAttribute(name: string): string | null } | null
}

if (!existsSync(CHROMIUM)) {
  t.plan(0, `Chromium is not installed at ${CHROMIUM} (apt-get install -y chromium, or set HEARSAY_CHROMIUM): the dashboard browser test cannot run`)
} else {
  t.test('the dashboard in Chromium against a three-node cluster', async (t) => {
    const { chromium } = await import('playwright-core')
    const cluster = await startCluster(3, () => ({ ...FAST, api: { token: TOKEN } }))
    t.teardown(() => cluster.stop())
    const [first, , third] = cluster.nodes as [Daemon, Daemon, Daemon]
    const auth = { authorization: `Bearer ${TOKEN}` }
    await waitFor('three alive members on node-1', 30_000, async () => {
      const rows = await (await fetch(`${first.url}/members`, { headers: auth })).json() as { state: string }[]
      return rows.length === 3 && rows.every((m) => m.state === 'alive')
    })
    const operations = Array.from({ length: 40 }, (_, i) => ({ op: 'put', key: `fruit/${['apple', 'banana', 'cherry', 'damson'][i % 4]}-${i}`, value: Buffer.from(`{"ripe":${i % 3 === 0},"n":${i}}`).toString('base64') }))
    t.equal((await fetch(`${first.url}/batch`, { method: 'POST', body: JSON.stringify({ ops: operations }), headers: auth })).status, 200, 'forty keys written')
    t.equal((await fetch(`${first.url}/admin/sync`, { method: 'POST', headers: auth })).status, 200, 'one anti-entropy round for the round log')

    const userDataDir = mkdtempSync(join(tmpdir(), 'hearsay-chromium-'))
    const context = await chromium.launchPersistentContext(userDataDir, { executablePath: CHROMIUM, headless: true, args: CHROMIUM_ARGS, viewport: { width: 1360, height: 900 } })
    t.teardown(async () => { await context.close(); rmSync(userDataDir, { recursive: true, force: true }) })
    const page = await context.newPage()
    const pageErrors: string[] = []
    page.on('pageerror', (error) => pageErrors.push(error.message))
    // The 401 that makes the page ask for the token is logged as a failed load: not a script error.
    page.on('console', (message) => { if (message.type() === 'error' && !/^Failed to load resource: .* 401/.test(message.text())) pageErrors.push(message.text()) })

    await t.test('the page asks for the token, then shows three members', async (t) => {
      await page.goto(`${first.url}/`)
      await page.locator('#token-dialog:not([hidden])').waitFor({ timeout: 10_000 })
      await page.fill('#token-input', TOKEN)
      await page.click('#token-form button')
      await page.waitForFunction(() => document.querySelectorAll('[data-member-id][data-state="alive"]').length === 3, undefined, { timeout: 15_000 })
      t.same(await page.$$eval('[data-member-id]', (cards) => cards.map((c) => c.getAttribute('data-name')).sort()), ['node-1', 'node-2', 'node-3'])
      t.equal(await page.locator('#live.on').count(), 1, 'the event stream is live')
      t.equal(await page.locator('.matrix tbody tr').count(), 3, 'each member reports how it sees the others')
      if (screenshots !== undefined) await page.screenshot({ path: resolve(repoRoot, screenshots, 'dashboard.png'), fullPage: true })
    })

    await t.test('the key browser finds a written key and shows each replica\'s version', async (t) => {
      await page.fill('#prefix', 'fruit/cherry')
      await page.click('#scan-form button')
      const row = page.locator('.key-row[data-key="fruit/cherry-2"]')
      await row.waitFor({ timeout: 10_000 })
      t.equal(await page.locator('.key-row').count(), 10, 'ten keys with that prefix')
      await row.click()
      await page.locator('#detail-value').waitFor({ timeout: 10_000 })
      t.equal(await page.textContent('#detail-value'), '{"ripe":false,"n":2}')
      await page.waitForFunction(() => document.querySelectorAll('.replica-row').length === 3, undefined, { timeout: 10_000 })
      t.equal(await page.locator('.replica-row .fresh').count(), 3, 'all three replicas hold the newest version')
      if (screenshots !== undefined) await page.locator('.browser').screenshot({ path: resolve(repoRoot, screenshots, 'dashboard-keys.png') })
    })

    await t.test('a member killed with SIGKILL shows as dead within the detection time', async (t) => {
      await third.stop('SIGKILL')
      await page.waitForFunction(() => document.querySelector('[data-name="node-3"]')?.getAttribute('data-state') === 'dead', undefined, { timeout: DETECTION_TIMEOUT_MS })
      t.equal(await page.locator('[data-member-id][data-state="alive"]').count(), 2)
      t.match(await page.textContent('[data-name="node-3"] .card-error') ?? '', /dead/, 'its card says why it has no fresh summary')
      if (screenshots !== undefined) await page.screenshot({ path: resolve(repoRoot, screenshots, 'dashboard-dead.png'), fullPage: true })
    })

    t.same(pageErrors, [], 'no script errors on the page')
  })
}
