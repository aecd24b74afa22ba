import type { Scenario } from './run.js'

/** The named scenarios of issue 11 (filled in below). */
export const SCENARIOS: readonly Scenario[] = []
