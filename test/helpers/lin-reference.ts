import type { RegisterInput, RegisterOutput, Version } from './linearizability.js'

/**
 * A sequential implementation of one key's register, for generating histories the checker must
 * accept: it gives out fresh versions that sort in order, as the API's do.
 */
export class ReferenceRegister {
  value: string | null = null
  version: Version | null = null
  private changes = 0

  constructor(private readonly key: string) {}

  apply(input: RegisterInput): RegisterOutput {
    switch (input.kind) {
      case 'read':
        return { kind: 'read', value: this.value, version: this.version }
      case 'write':
        return this.set(input.value)
      case 'cas':
        if (input.ifVersion === null ? this.value !== null : this.version !== input.ifVersion) return this.refuse()
        return this.set(input.value)
      case 'delete':
        if (this.version !== input.ifVersion) return this.refuse()
        this.value = null
        this.version = null
        return { kind: 'ok', version: this.nextVersion() }
      case 'incr': {
        const count = this.value === null ? 0n : /^-?(0|[1-9][0-9]*)$/.test(this.value) ? BigInt(this.value) : undefined
        if (count === undefined) return this.refuse()
        const out = this.set((count + input.by).toString())
        return { ...out, value: this.value! }
      }
    }
  }

  private set(value: string): RegisterOutput & { kind: 'ok' } {
    this.value = value
    this.version = this.nextVersion()
    return { kind: 'ok', version: this.version }
  }

  private refuse(): RegisterOutput {
    return { kind: 'fail', currentVersion: this.version }
  }

  private nextVersion(): Version {
    this.changes++
    return `${String(this.changes).padStart(8, '0')}-${this.key}`
  }
}
