// Flavour parity: the suite runs once per host flavour (make test-sdk runs
// run.sh with --flavor wrenn and --flavor e2b and sets ENVD_SDK_FLAVOR). The
// SDK must work with both /health answers (PROTOCOL.md 4.1, 6 row 1); this
// file checks that the flavour asked for is the one running.
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { createSandbox, ENVD_URL, REQUEST_TIMEOUT_MS } from './helpers.mjs'

function tokenHeader() {
  const t = process.env.ENVD_ACCESS_TOKEN
  return t ? { 'X-Access-Token': t } : {}
}

test('the running flavour answers /health and names its variables as specified', { timeout: 15_000 }, async () => {
  await createSandbox() // sends /init with the token first, when there is one
  const envs = await (await fetch(`${ENVD_URL}/envs`, { headers: tokenHeader(), signal: AbortSignal.timeout(REQUEST_TIMEOUT_MS) })).json()
  const flavor = 'WRENN_SANDBOX' in envs ? 'wrenn' : 'e2b'
  assert.ok(flavor === 'wrenn' ? !('E2B_SANDBOX' in envs) : 'E2B_SANDBOX' in envs, JSON.stringify(envs))
  if (process.env.ENVD_SDK_FLAVOR) assert.equal(flavor, process.env.ENVD_SDK_FLAVOR)
  const res = await fetch(`${ENVD_URL}/health`, { signal: AbortSignal.timeout(REQUEST_TIMEOUT_MS) })
  const body = await res.text()
  assert.equal(res.headers.get('cache-control'), 'no-store')
  if (flavor === 'wrenn') {
    assert.equal(res.status, 200)
    assert.match(res.headers.get('content-type'), /^application\/json/)
    assert.ok(JSON.parse(body).version, `version in ${body}`)
  } else {
    assert.equal(res.status, 204)
    assert.equal(body, '')
  }
  if (process.env.ENVD_ACCESS_TOKEN) {
    // Secure mode for the whole run: the gate really is closed.
    const open = await fetch(`${ENVD_URL}/envs`, { signal: AbortSignal.timeout(REQUEST_TIMEOUT_MS) })
    await open.arrayBuffer()
    assert.equal(open.status, 401)
  }
  const sandbox = await createSandbox()
  assert.equal(await sandbox.isRunning(), true)
  const marker = flavor === 'wrenn' ? 'WRENN_SANDBOX' : 'E2B_SANDBOX'
  assert.equal((await sandbox.commands.run(`echo "$${marker}"`)).stdout, 'false\n')
})
