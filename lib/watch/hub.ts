import type { RecordChange } from '../store/kv-store.js'
import { eventOf } from './event.js'
import type { Watcher } from './watcher.js'

/**
 * Live fan-out of the changes this node applies to the watchers whose prefix they fall under.
 * The hub holds no events itself: each watcher queues what it is offered within its own bound.
 */
export class WatchHub {
  readonly #watchers = new Set<Watcher>()

  get size(): number {
    return this.#watchers.size
  }

  watchers(): IterableIterator<Watcher> {
    return this.#watchers.values()
  }

  add(watcher: Watcher): void {
    this.#watchers.add(watcher)
  }

  remove(watcher: Watcher): boolean {
    return this.#watchers.delete(watcher)
  }

  /** A committed change from the store (GC collections, which are not changes a reader sees, excluded). */
  publish(change: RecordChange): void {
    if (change.current === undefined || this.#watchers.size === 0) return
    const logged = { event: eventOf(change.key, change.current), position: change.logged }
    for (const watcher of this.#watchers) {
      if (change.key.startsWith(watcher.prefix)) watcher.offerLocal(logged)
    }
  }
}
