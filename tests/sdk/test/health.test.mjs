// Smoke test: the SDK in debug mode reaches envd at all.
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { createSandbox, ENVD_URL, REQUEST_TIMEOUT_MS } from './helpers.mjs'

test('GET /health answers 2xx (raw fetch)', { timeout: 15_000 }, async () => {
  const res = await fetch(`${ENVD_URL}/health`, { signal: AbortSignal.timeout(REQUEST_TIMEOUT_MS) })
  await res.arrayBuffer()
  assert.ok(res.status === 200 || res.status === 204, `unexpected status ${res.status}`)
})

test('debug sandbox targets localhost:49983 and reports running', { timeout: 15_000 }, async () => {
  const sandbox = await createSandbox()
  assert.equal(sandbox.sandboxId, 'debug_sandbox_id')
  assert.equal(sandbox.getHost(49983), 'localhost:49983')
  // isRunning() is GET /health: any 2xx is true, 502 is false, anything
  // else throws. A 200 must carry a JSON body (or Content-Length: 0).
  assert.equal(await sandbox.isRunning(), true)
})

// Needs the process.Process service (Start, server-streaming over Connect JSON).
test(
  'commands.run("echo hi") returns stdout and exit code 0',
  { timeout: 20_000 },
  async () => {
    const sandbox = await createSandbox()
    const result = await sandbox.commands.run('echo hi', { timeoutMs: 10_000 })
    assert.equal(result.exitCode, 0)
    assert.equal(result.stdout, 'hi\n')
    assert.equal(result.stderr, '')
  },
)
