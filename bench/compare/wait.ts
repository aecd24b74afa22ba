const POLL_INTERVAL_MS = 100

/**
 * Polls `check` until it returns true, throwing after `timeoutMs` with the last reason it failed.
 * `alive` lets a wait fail at once when the process it waits for has already died.
 */
export async function waitUntil(
  what: string,
  timeoutMs: number,
  check: () => Promise<boolean>,
  alive: () => string | undefined = () => undefined,
): Promise<void> {
  const deadline = Date.now() + timeoutMs
  let lastReason = 'not ready'
  for (;;) {
    const death = alive()
    if (death !== undefined) throw new Error(`${what}: ${death}`)
    try {
      if (await check()) return
    } catch (error) {
      lastReason = error instanceof Error ? error.message : String(error)
    }
    if (Date.now() > deadline) throw new Error(`${what}: not ready within ${timeoutMs} ms (last: ${lastReason})`)
    await new Promise(resolve => setTimeout(resolve, POLL_INTERVAL_MS))
  }
}
