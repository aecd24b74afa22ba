import xxhash from 'xxhash-wasm'

/**
 * xxh64 as every protocol hash of hearsay uses it (placement, Merkle digests): seed 0, one
 * WebAssembly instance per process. Instantiating it is the only asynchronous step, so callers
 * await this once at start-up and hash synchronously afterwards.
 */
export const XXH64_SEED = 0n

export type Xxh64 = Pick<Awaited<ReturnType<typeof xxhash>>, 'h64' | 'h64Raw'>

let instance: ReturnType<typeof xxhash> | undefined

export async function loadXxh64(): Promise<Xxh64> {
  instance ??= xxhash()
  return instance
}
