// Port forwarding seen from outside (PROTOCOL.md 7.4, BEHAVIOR.md 6): a
// server that a command started through the SDK listens on 127.0.0.1 only,
// and envd mirrors it onto the guest address 169.254.0.21 (the default
// --forward-addr). The test gives that address to lo, so it runs only in
// run.sh's own network namespace (envd-sdk-<pid>), never on a host.

import { test } from 'node:test'
import assert from 'node:assert/strict'
import { execFileSync } from 'node:child_process'
import { createSandbox } from './helpers.mjs'

const FORWARD_ADDR = '169.254.0.21'

function inRunShNamespace() {
  try {
    const ns = execFileSync('ip', ['netns', 'identify'], { encoding: 'utf8' }).trim()
    return /^envd-sdk-\d+$/.test(ns)
  } catch {
    return false
  }
}

function addForwardAddress() {
  try {
    execFileSync('ip', ['addr', 'add', `${FORWARD_ADDR}/32`, 'dev', 'lo'], { stdio: 'pipe' })
  } catch (e) {
    if (!String(e.stderr).includes('exists')) throw e
  }
}

async function fetchText(url) {
  const res = await fetch(url, { signal: AbortSignal.timeout(1000) })
  return res.text()
}

/** Polls until fn resolves (or, with wantFailure, rejects) or ms pass. */
async function within(ms, fn, wantFailure = false) {
  const deadline = Date.now() + ms
  let last
  for (;;) {
    try {
      last = await fn()
      if (!wantFailure) return last
    } catch (e) {
      if (wantFailure) return e
      last = e
    }
    if (Date.now() > deadline) throw new Error(`not within ${ms} ms: ${last}`)
    await new Promise((r) => setTimeout(r, 50))
  }
}

test(
  'a loopback server started through the SDK is forwarded, and stops being forwarded when it exits',
  { skip: !inRunShNamespace() && 'needs the network namespace run.sh creates' },
  async (t) => {
    addForwardAddress()
    const sbx = await createSandbox()
    const port = 20000 + (process.pid % 20000)
    const script = `require('http').createServer((q, s) => s.end('hello ' + q.url)).listen(${port}, '127.0.0.1')`
    const server = await sbx.commands.run(`${process.execPath} -e "${script}"`, { background: true })
    t.after(() => server.kill().catch(() => {}))

    // Direct access works at once; the forward appears within a scan or two.
    assert.equal(await within(5000, () => fetchText(`http://127.0.0.1:${port}/direct`)), 'hello /direct')
    assert.equal(await within(3000, () => fetchText(`http://${FORWARD_ADDR}:${port}/fwd`)), 'hello /fwd')

    await server.kill()
    await within(5000, () => fetchText(`http://${FORWARD_ADDR}:${port}/gone`), true)
  },
)
