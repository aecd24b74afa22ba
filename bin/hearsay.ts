#!/usr/bin/env node
import { runCli } from '../lib/client/cli.js'

// `hearsay scan | head` closes the pipe early; runCli stops writing, so the error needs no crash.
process.stdout.on('error', () => {})
process.stderr.on('error', () => {})

process.exitCode = await runCli(process.argv.slice(2), {
  stdin: process.stdin,
  stdout: process.stdout,
  stderr: process.stderr,
  env: process.env,
  onInterrupt(listener) {
    process.on('SIGINT', listener)
    return () => { process.off('SIGINT', listener) }
  },
})
