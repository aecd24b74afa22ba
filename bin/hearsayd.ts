#!/usr/bin/env node
import { runDaemon } from '../lib/daemon.js'

process.exitCode = await runDaemon(process.argv.slice(2), process.env)
