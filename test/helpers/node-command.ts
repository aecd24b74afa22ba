/**
 * How tests start node processes of their own (daemons, CLI runs, scripts) without tap's
 * process-info loader; a module of its own so unit tests can use it without the daemon helpers'
 * imports.
 */

/**
 * The command that runs `node args…` for a daemon or CLI process a test starts, without tap's
 * process-info loader. Every test process carries it (`--import=…@tapjs/processinfo…` in
 * NODE_OPTIONS), and it hooks spawn() to put itself back into every child's NODE_OPTIONS: in a
 * child it runs module hooks on a thread of their own and hooks require(), ~0.3 s more per CLI
 * run and per daemon start on this machine, for records of a bundled daemon that no one reads
 * (coverage is off). `env` (coreutils) sets the cleaned NODE_OPTIONS and execs node in its own
 * place: same pid, so signals reach the node process itself.
 */
export function nodeCommand(args: readonly string[]): { command: string; args: string[] } {
  const options = process.env.NODE_OPTIONS
  if (options === undefined || !options.includes('@tapjs/processinfo')) return { command: process.execPath, args: [...args] }
  const kept = (options.match(/"[^"]*"|\S+/g) ?? []).filter((option) => !option.includes('@tapjs/processinfo')).join(' ')
  return { command: 'env', args: [...(kept === '' ? ['-u', 'NODE_OPTIONS'] : [`NODE_OPTIONS=${kept}`]), process.execPath, ...args] }
}

/** nodeCommand for a TypeScript script run with this test process's own loaders (tsx), less tap's. */
export function scriptCommand(args: readonly string[]): { command: string; args: string[] } {
  return nodeCommand([...process.execArgv.filter((arg) => !arg.includes('@tapjs/processinfo')), ...args])
}

/** nodeCommand as one argument list, for a program that runs another (`ip netns exec NS …`). */
export function nodeArgv(args: readonly string[]): string[] {
  const { command, args: rest } = nodeCommand(args)
  return [command, ...rest]
}
