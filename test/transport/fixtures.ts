import { FRAME_TYPES, FrameRegistry, type FrameType } from '../../lib/codec/frames.js'
import { expectObject, expectString, expectUint, field } from '../../lib/codec/validate.js'
import { asNodeId } from '../../lib/clock/version.js'
import type { PeerIdentity } from '../../lib/transport/transport.js'

/**
 * Message types that exist only in tests, so transport tests do not depend on what the
 * protocol modules happen to define: an echo request with its reply, and a one-way note.
 */
export const MAX_TEXT_CHARS = 1 << 20

function textBody(name: string) {
  return (value: unknown) => {
    const body = expectObject(value, name)
    return { text: expectString(field(body, 'text'), `${name}.text`, MAX_TEXT_CHARS), n: expectUint(field(body, 'n'), `${name}.n`) }
  }
}

export interface TextBody { readonly text: string; readonly n: number }

export const TEST_FRAME_TYPES: readonly FrameType[] = [
  { code: 0x70, name: 'test.echo', kind: 'request', validate: textBody('test.echo') },
  { code: 0x71, name: 'test.echoed', kind: 'reply', validate: textBody('test.echoed') },
  { code: 0x72, name: 'test.note', kind: 'oneway', validate: textBody('test.note') },
  { code: 0x73, name: 'test.slow', kind: 'request', validate: textBody('test.slow') },
]

export const testRegistry = new FrameRegistry([...FRAME_TYPES, ...TEST_FRAME_TYPES])

export function identity(index: number, port = 7000 + index): PeerIdentity {
  return {
    id: asNodeId(index.toString(16).padStart(16, '0')),
    name: `node-${index}`,
    peer: `127.0.0.1:${port}`,
    api: `127.0.0.1:${port + 1000}`,
  }
}
