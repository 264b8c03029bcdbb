// Shared helpers for the SDK tests. Not a test file itself: it defines no tests.
//
// The E2B JS SDK runs in "debug mode" here: no E2B API is contacted, and the
// Sandbox object talks straight to envd at http://localhost:49983 (see
// ../README.md). run.sh sets E2B_DEBUG=true; createSandbox() also passes
// `debug: true`, so the tests work without the variable too.

import { spawn } from 'node:child_process'
import { readdirSync, readFileSync, readlinkSync } from 'node:fs'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { Sandbox } from 'e2b'

/** The envd port the SDK uses in debug mode (fixed in the SDK). */
export const ENVD_PORT = 49983

/** Base URL of envd for raw HTTP calls (the SDK itself uses localhost). */
export const ENVD_URL = process.env.E2B_SANDBOX_URL || `http://localhost:${ENVD_PORT}`

/** envd version the SDK assumes in debug mode (all feature gates open). */
export const DEBUG_ENVD_VERSION = '99.99.99'

/** Default per-request timeout for SDK calls in these tests. */
export const REQUEST_TIMEOUT_MS = 10_000

/**
 * The optional access token, from env ENVD_ACCESS_TOKEN ("" counts as unset).
 * When set, createSandbox() first gives it to envd through POST /init, then
 * makes a Sandbox that sends it as X-Access-Token and signs file URLs with it.
 */
export function accessToken() {
  const t = process.env.ENVD_ACCESS_TOKEN
  return t ? t : undefined
}

let initDone

/**
 * POST /init {accessToken} once per process, so a secured envd knows the
 * token. Harmless to repeat: envd allows /init when the body's token equals
 * the current one. In --isnotfc mode a token, once set, cannot be cleared.
 */
export function initAccessToken(token = accessToken()) {
  if (!token) return Promise.resolve()
  initDone ??= (async () => {
    const res = await fetch(`${ENVD_URL}/init`, {
      method: 'POST',
      headers: { 'Content-Type': 'application/json', 'X-Access-Token': token },
      body: JSON.stringify({ accessToken: token }),
      signal: AbortSignal.timeout(REQUEST_TIMEOUT_MS),
    })
    if (res.status !== 204 && res.status !== 200) {
      initDone = undefined
      throw new Error(`POST /init with ENVD_ACCESS_TOKEN answered ${res.status}: ${await res.text()}`)
    }
  })()
  return initDone
}

/**
 * A debug-mode Sandbox pointed at the local envd.
 *
 * Without a token this is exactly the public path: Sandbox.create({debug:true})
 * returns new Sandbox({sandboxId:'debug_sandbox_id', envdVersion:'99.99.99',
 * ...config}) without any network call. Debug-mode create()/connect() never
 * pass an envdAccessToken, so with a token we call the (TS-hidden, JS-public)
 * constructor with the same options plus envdAccessToken.
 *
 * @param {object} [opts] extra SandboxOpts (e.g. requestTimeoutMs, logger)
 * @param {string} [opts.accessToken] overrides ENVD_ACCESS_TOKEN; null forces none
 */
export async function createSandbox(opts = {}) {
  const { accessToken: tokenOpt, ...rest } = opts
  const token = tokenOpt === null ? undefined : (tokenOpt ?? accessToken())
  const sandboxOpts = { requestTimeoutMs: REQUEST_TIMEOUT_MS, ...rest, debug: true }
  if (!token) return Sandbox.create(sandboxOpts)
  await initAccessToken(token)
  return new Sandbox({
    sandboxId: 'debug_sandbox_id',
    envdVersion: DEBUG_ENVD_VERSION,
    ...sandboxOpts,
    envdAccessToken: token,
  })
}

let tempCounter = 0

/**
 * Make a fresh, unique directory under the OS temp dir and return its path.
 * envd runs on the same machine (--isnotfc) and sees the same filesystem, so
 * tests can hand this path to the SDK and also check it with node:fs.
 * Given the test context `t`, the directory is removed after that test.
 */
export async function makeTempDir(t, prefix = 'envd-sdk') {
  tempCounter += 1
  const dir = await mkdtemp(join(tmpdir(), `${prefix}-${process.pid}-${tempCounter}-`))
  if (t?.after) t.after(() => rm(dir, { recursive: true, force: true }))
  return dir
}

/**
 * Test options for a test that is expected to fail until the daemon has the
 * named feature. It still runs and shows up as "# TODO <reason>" in the
 * report (it is not skipped), but its failure does not fail the run.
 * Set ENVD_SDK_STRICT=1 to treat these tests as normal ones.
 */
export function pending(reason) {
  if (process.env.ENVD_SDK_STRICT === '1') return {}
  return { todo: `pending: ${reason}` }
}

/** The envd binary: $ENVD_BIN, else the one listening on 49983 in this netns. */
export function envdBinary() {
  if (process.env.ENVD_BIN) return process.env.ENVD_BIN
  const myNet = readlinkSync('/proc/self/ns/net')
  for (const pid of readdirSync('/proc')) {
    if (!/^\d+$/.test(pid)) continue
    try {
      const args = readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0')
      const port = args.indexOf('--port')
      if (port < 0 || args[port + 1] !== '49983' || readlinkSync(`/proc/${pid}/ns/net`) !== myNet) continue
      return readlinkSync(`/proc/${pid}/exe`)
    } catch {
      // the process went away, or is not ours to read
    }
  }
  return undefined
}

/**
 * Starts a private envd (the same binary) on 127.0.0.1:port with extra
 * flags, for tests that change envd-wide state, and waits for /health.
 * stop() kills it by its PID (we started it) and removes its run dir.
 */
export async function startPrivateEnvd(port, args = []) {
  const bin = envdBinary()
  if (!bin) throw new Error('cannot find the envd binary: run through run.sh or set ENVD_BIN')
  const runDir = await mkdtemp(join(tmpdir(), 'envd-sdk-private-'))
  const child = spawn(bin, ['--isnotfc', '--no-cgroups', '--listen-addr', '127.0.0.1',
    '--port', String(port), '--run-dir', runDir, ...args], { stdio: ['ignore', 'pipe', 'pipe'] })
  let output = ''
  const keep = (d) => { output = (output + d).slice(-4000) }
  child.stdout.on('data', keep)
  child.stderr.on('data', keep)
  const stop = async () => {
    if (child.exitCode === null) {
      const exited = new Promise((r) => child.once('exit', r))
      child.kill('SIGKILL')
      await exited
    }
    await rm(runDir, { recursive: true, force: true })
  }
  const deadline = Date.now() + 10_000
  for (;;) {
    try {
      const res = await fetch(`http://127.0.0.1:${port}/health`)
      await res.arrayBuffer()
      if (res.ok) return { stop, output: () => output }
    } catch {
      // not listening yet
    }
    if (child.exitCode !== null || Date.now() > deadline) {
      await stop()
      throw new Error(`private envd did not start:\n${output}`)
    }
    await new Promise((r) => setTimeout(r, 50))
  }
}

/** Collects PTY output as text; waitFor(re) resolves once the text matches. */
export function ptyOutput() {
  const dec = new TextDecoder()
  let text = ''
  let waiters = []
  return {
    onData(d) {
      text += dec.decode(d, { stream: true })
      waiters = waiters.filter((w) => (w.re.test(text) ? (w.resolve(text), false) : true))
    },
    waitFor(re, ms = 10_000) {
      if (re.test(text)) return Promise.resolve(text)
      return new Promise((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error(`timed out waiting for ${re}; got ${JSON.stringify(text)}`)), ms)
        waiters.push({ re, resolve: (v) => { clearTimeout(timer); resolve(v) } })
      })
    },
  }
}
