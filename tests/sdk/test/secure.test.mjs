// A secure sandbox: the access token set through POST /init guards every
// route and RPC (PROTOCOL.md 5.2), /files also takes signed URLs from
// uploadUrl()/downloadUrl() (5.4), and /init only changes the token as 5.3
// allows.
//
// A token cannot be cleared again in --isnotfc mode, so these tests run
// their own envd (the same binary, found through the one run.sh started in
// this network namespace, or $ENVD_BIN) on another port, and leave the
// shared one untouched.
import { after, before, test } from 'node:test'
import assert from 'node:assert/strict'
import { readFile, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { Sandbox, getSignature } from 'e2b'
import { DEBUG_ENVD_VERSION, makeTempDir, REQUEST_TIMEOUT_MS, startPrivateEnvd } from './helpers.mjs'

const T = { timeout: 30_000 }
const PORT = 49987
const URL_BASE = `http://localhost:${PORT}`
const TOKEN = '0f1e2d3c4b5a69788796a5b4c3d2e1f00f1e2d3c4b5a69788796a5b4c3d2e1f0'
const GATE = { code: 401, message: 'unauthorized access, please provide a valid access token or method signing if supported' }

let priv

before(async () => {
  priv = await startPrivateEnvd(PORT)
  const res = await init({ accessToken: TOKEN })
  assert.equal(res.status, 204, `first /init: ${res.status} ${await res.text()}`)
})

after(() => priv?.stop())

function init(body, headers = {}) {
  return fetch(`${URL_BASE}/init`, {
    method: 'POST',
    headers: { 'Content-Type': 'application/json', ...headers },
    body: JSON.stringify(body),
    signal: AbortSignal.timeout(REQUEST_TIMEOUT_MS),
  })
}

function sandboxWith(token) {
  return new Sandbox({
    sandboxId: 'debug_sandbox_id', envdVersion: DEBUG_ENVD_VERSION, debug: true,
    sandboxUrl: URL_BASE, requestTimeoutMs: REQUEST_TIMEOUT_MS, envdAccessToken: token,
  })
}

test('routes and RPCs refuse requests without the token; /health stays open', T, async () => {
  for (const [method, path] of [['GET', '/envs'], ['GET', '/metrics'], ['POST', '/files/compose'], ['POST', '/process.Process/List']]) {
    for (const headers of [{}, { 'X-Access-Token': 'wrong' }]) {
      const res = await fetch(`${URL_BASE}${path}`, { method, headers: { 'Content-Type': 'application/json', ...headers }, body: method === 'POST' ? '{}' : undefined })
      assert.equal(res.status, 401, `${method} ${path}`)
      assert.deepEqual(await res.json(), GATE)
    }
    const ok = await fetch(`${URL_BASE}${path}`, { method, headers: { 'Content-Type': 'application/json', 'X-Access-Token': TOKEN }, body: method === 'POST' ? '{}' : undefined })
    await ok.arrayBuffer()
    assert.notEqual(ok.status, 401, `${method} ${path} with the token`)
  }
  const health = await fetch(`${URL_BASE}/health`)
  await health.arrayBuffer()
  assert.ok(health.ok)
})

test('the SDK without or with a wrong token gets AuthenticationError', T, async (t) => {
  const dir = await makeTempDir(t)
  await writeFile(join(dir, 'f.txt'), 'secret')
  for (const token of [undefined, 'wrong-token']) {
    const sandbox = sandboxWith(token)
    await assert.rejects(sandbox.files.read(join(dir, 'f.txt')), { name: 'AuthenticationError' })
    await assert.rejects(sandbox.files.write(join(dir, 'g.txt'), 'x'), { name: 'AuthenticationError' })
    await assert.rejects(sandbox.files.list(dir), { name: 'AuthenticationError' })
    await assert.rejects(sandbox.commands.run('echo hi'), { name: 'AuthenticationError' })
  }
  await assert.rejects(readFile(join(dir, 'g.txt')), { code: 'ENOENT' })
})

test('the SDK with the token works', T, async (t) => {
  const dir = await makeTempDir(t)
  const sandbox = sandboxWith(TOKEN)
  await sandbox.files.write(join(dir, 'a.txt'), 'with token')
  assert.equal(await sandbox.files.read(join(dir, 'a.txt')), 'with token')
  assert.deepEqual((await sandbox.files.list(dir)).map((e) => e.name), ['a.txt'])
  const r = await sandbox.commands.run(`cat ${join(dir, 'a.txt')}`)
  assert.equal(r.stdout, 'with token')
})

test('uploadUrl and downloadUrl work without the token header', T, async (t) => {
  const dir = await makeTempDir(t)
  const sandbox = sandboxWith(TOKEN)
  for (const opts of [{}, { user: 'root' }, { useSignatureExpiration: 60 }, { user: 'root', useSignatureExpiration: 60 }]) {
    const path = join(dir, `signed-${Object.keys(opts).join('-') || 'plain'}.txt`)
    const up = await sandbox.uploadUrl(path, opts)
    assert.match(up, /[?&]signature=v1_/)
    const form = new FormData()
    form.append('file', new Blob([`content ${path}`]), path)
    const res = await fetch(up, { method: 'POST', body: form })
    assert.equal(res.status, 200, await res.clone().text())
    assert.equal((await res.json())[0].path, path)
    const down = await fetch(await sandbox.downloadUrl(path, opts))
    assert.equal(down.status, 200)
    assert.equal(await down.text(), `content ${path}`)
  }
})

test('signed URLs are refused when tampered, expired, or used for another operation', T, async (t) => {
  const dir = await makeTempDir(t)
  const path = join(dir, 'target.txt')
  await writeFile(path, 'x')
  const sandbox = sandboxWith(TOKEN)
  const expectRefused = async (url, message, method = 'GET') => {
    const res = await fetch(url, method === 'GET' ? {} : { method, headers: { 'Content-Type': 'application/octet-stream' }, body: 'y' })
    assert.equal(res.status, 401, url)
    assert.equal((await res.json()).message, message)
  }
  const good = new URL(await sandbox.downloadUrl(path, { user: 'root' }))
  const otherPath = new URL(good)
  otherPath.searchParams.set('path', join(dir, 'other.txt'))
  await expectRefused(otherPath, 'invalid signature')
  const otherUser = new URL(good)
  otherUser.searchParams.delete('username')
  await expectRefused(otherUser, 'invalid signature')
  // Flip the first signature character (to a different one: 1 in 64
  // signatures already starts with any given letter).
  await expectRefused(good.toString().replace(/signature=v1_(.)/, (_, c) => `signature=v1_${c === 'A' ? 'B' : 'A'}`), 'invalid signature')
  // The read signature does not authorise a write.
  await expectRefused(good.toString(), 'invalid signature', 'POST')
  const unsigned = new URL(good)
  unsigned.searchParams.delete('signature')
  await expectRefused(unsigned, 'missing signature query parameter')
  // Expired: signed by the SDK's own helper with a past expiration.
  const sig = await getSignature({ path, operation: 'read', user: undefined, expirationInSeconds: -30, envdAccessToken: TOKEN })
  const expired = `${URL_BASE}/files?path=${encodeURIComponent(path)}&signature=${encodeURIComponent(sig.signature)}&signature_expiration=${sig.expiration}`
  await expectRefused(expired, 'signature is already expired')
  // A wrong header token is not rescued by a valid signature.
  const res = await fetch(good, { headers: { 'X-Access-Token': 'wrong' } })
  assert.equal(res.status, 401)
  assert.equal((await res.json()).message, 'access token present in header but does not match')
})

test('/init changes the token only as PROTOCOL.md 5.3 allows', T, async () => {
  let res = await init({})
  assert.equal(res.status, 401)
  assert.equal(await res.text(), 'access token reset not authorized\n')
  res = await init({ accessToken: 'another-token' })
  assert.equal(res.status, 401)
  assert.equal(await res.text(), 'access token validation failed\n')
  res = await init({ accessToken: TOKEN })
  assert.equal(res.status, 204)
  // The token is unchanged: the old one still opens the gate.
  res = await fetch(`${URL_BASE}/envs`, { headers: { 'X-Access-Token': TOKEN } })
  assert.equal(res.status, 200)
  await res.arrayBuffer()
})

test('without a token, signed URLs are neither needed nor possible', T, async (t) => {
  const open = new Sandbox({ sandboxId: 'debug_sandbox_id', envdVersion: DEBUG_ENVD_VERSION, debug: true })
  await assert.rejects(open.uploadUrl('/tmp/x', { useSignatureExpiration: 10 }), { name: 'InvalidArgumentError' })
  const url = await open.downloadUrl('/tmp/x')
  assert.doesNotMatch(url, /signature/)
})
