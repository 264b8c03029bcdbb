// The VM lifecycle as the SDK sees it: /init as Wrenn's host sends it (no
// body) and as E2B's sends it (env vars replace, default user and workdir
// apply to SDK commands), and a Wrenn snapshot cycle (prepare, then the
// next SDK call is served at once while pre-snapshot streams are closed).
//
// /init and /snapshot/prepare change envd-wide state (env, keep-alives,
// connections), so these tests run their own envd on another port and
// leave the shared one untouched.
import { after, before, test } from 'node:test'
import assert from 'node:assert/strict'
import { Sandbox } from 'e2b'
import { DEBUG_ENVD_VERSION, REQUEST_TIMEOUT_MS, startPrivateEnvd } from './helpers.mjs'

const T = { timeout: 30_000 }
const PORT = 49991
const URL_BASE = `http://127.0.0.1:${PORT}`

let priv

before(async () => {
  priv = await startPrivateEnvd(PORT, ['--flavor', 'wrenn'])
})

after(() => priv?.stop())

function sandbox() {
  return new Sandbox({
    sandboxId: 'debug_sandbox_id',
    envdVersion: DEBUG_ENVD_VERSION,
    requestTimeoutMs: REQUEST_TIMEOUT_MS,
    debug: true,
    sandboxUrl: URL_BASE,
  })
}

async function post(path, body) {
  const init = { method: 'POST', signal: AbortSignal.timeout(REQUEST_TIMEOUT_MS) }
  if (body !== undefined) {
    init.headers = { 'Content-Type': 'application/json' }
    init.body = JSON.stringify(body)
  }
  const res = await fetch(`${URL_BASE}${path}`, init)
  return { res, text: await res.text() }
}

test('POST /init without a body (Wrenn host) answers 204, no-store, X-Envd-Version', T, async () => {
  const { res, text } = await post('/init')
  assert.equal(res.status, 204, text)
  assert.equal(text, '')
  assert.equal(res.headers.get('cache-control'), 'no-store')
  assert.ok(res.headers.get('x-envd-version'), 'X-Envd-Version missing')
})

test('/init envVars replace the user set; defaultWorkdir applies to SDK commands', T, async () => {
  const sbx = sandbox()
  let { res, text } = await post('/init', { envVars: { LC_A: '1', LC_B: '2' }, defaultUser: 'root', defaultWorkdir: '/tmp' })
  assert.equal(res.status, 204, text)
  let r = await sbx.commands.run('echo "$LC_A-$LC_B"; pwd', { timeoutMs: 10_000 })
  assert.equal(r.stdout, '1-2\n/tmp\n')
  ;({ res, text } = await post('/init', { envVars: { LC_A: '3' } }))
  assert.equal(res.status, 204, text)
  r = await sbx.commands.run('echo "$LC_A-$LC_B"', { timeoutMs: 10_000 })
  assert.equal(r.stdout, '3-\n') // LC_B is gone: replace, not merge (E20)
  ;({ res } = await post('/init', '{"envVars":'))
  assert.equal(res.status, 400)
})

test('snapshot cycle: prepare, then the next SDK call is served and pre-snapshot streams end', T, async () => {
  const sbx = sandbox()
  const handle = await sbx.commands.run('sleep 30', { background: true, timeoutMs: 0 })
  const { res, text } = await post('/snapshot/prepare')
  assert.equal(res.status, 204, text)
  // "Restore": the next request of any kind recovers and is served at once.
  const r = await sbx.commands.run('echo after-restore', { timeoutMs: 10_000 })
  assert.equal(r.stdout, 'after-restore\n')
  // The background command's stream was a pre-snapshot connection: envd
  // closed it, but the process itself lives on and is still listed.
  await assert.rejects(handle.wait())
  const listed = await sbx.commands.list()
  assert.ok(listed.some((p) => p.pid === handle.pid), 'background process not listed after restore')
  assert.equal(await sbx.commands.kill(handle.pid), true)
})
