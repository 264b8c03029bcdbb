// commands.* surfaces not covered in commands.test.mjs: timeouts (envd
// kills the process at Connect-Timeout-Ms, PROTOCOL.md 3.3.1), users other
// than root, default and missing cwd, stdin off by default, late connect
// after exit (30 s retention, 3.2), killing a foreground command, list
// details and concurrency.
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { existsSync } from 'node:fs'
import { CommandExitError } from 'e2b'
import { createSandbox } from './helpers.mjs'

const T = { timeout: 30_000 }

// Commands killed soon after they start run as nobody (no home, so no rc
// files): root's login shell may source rc files that take locks (pyenv
// rehash does), and a shell killed while holding one stalls every later
// root login shell on that machine for a minute.
const NO_RC = { user: 'nobody', cwd: '/' }

/** Resolves once fn() is truthy, polling every 50 ms for up to ms. */
async function eventually(fn, ms = 5000, what = 'condition') {
  const deadline = Date.now() + ms
  for (;;) {
    if (await fn()) return
    if (Date.now() > deadline) throw new Error(`${what} not reached within ${ms} ms`)
    await new Promise((r) => setTimeout(r, 50))
  }
}

test('foreground timeoutMs: TimeoutError, and envd kills the command', T, async () => {
  const sandbox = await createSandbox()
  const started = Date.now()
  await assert.rejects(
    sandbox.commands.run('sleep 30', { ...NO_RC, timeoutMs: 500 }),
    (err) => err.name === 'TimeoutError',
  )
  assert.ok(Date.now() - started < 10_000, 'the timeout ended the call')
  const h = await sandbox.commands.run('sleep 30', { ...NO_RC, background: true, timeoutMs: 700 })
  await assert.rejects(h.wait(), { name: 'TimeoutError' })
  // The deadline is also the process lifetime: envd SIGKILLs it.
  await eventually(async () => !(await sandbox.commands.list()).some((p) => p.pid === h.pid), 5000, 'process gone from list')
  await eventually(() => !existsSync(`/proc/${h.pid}`), 5000, 'process gone')
})

test('a command as another user: uid, HOME and cwd', T, async () => {
  const sandbox = await createSandbox()
  const r = await sandbox.commands.run('id -un; id -u; echo "$HOME|$USER"; pwd', { user: 'nobody', cwd: '/' })
  assert.equal(r.stdout, 'nobody\n65534\n/nonexistent|nobody\n/\n')
  // Without cwd the user's home is used, and nobody's does not exist.
  await assert.rejects(sandbox.commands.run('pwd', { user: 'nobody' }), (err) => {
    assert.equal(err.name, 'InvalidArgumentError')
    assert.match(err.message, /\/nonexistent.*does not exist/)
    return true
  })
  await assert.rejects(sandbox.commands.run('true', { user: 'no-such-user-envd' }), { name: 'AuthenticationError' })
})

test('default cwd is the home of the default user; a missing cwd is InvalidArgumentError', T, async () => {
  const sandbox = await createSandbox()
  assert.equal((await sandbox.commands.run('pwd')).stdout, '/root\n')
  await assert.rejects(sandbox.commands.run('pwd', { cwd: '/no/such/dir/envd' }), (err) => {
    assert.equal(err.name, 'InvalidArgumentError')
    assert.match(err.message, /cwd '\/no\/such\/dir\/envd' does not exist/)
    return true
  })
})

test('envs override the sandbox environment, which includes the flavour marker', T, async () => {
  const sandbox = await createSandbox()
  const r = await sandbox.commands.run('echo "$WRENN_SANDBOX$E2B_SANDBOX|$FOO|$HOME"', { envs: { FOO: 'a b', HOME: '/elsewhere' } })
  assert.equal(r.stdout, 'false|a b|/elsewhere\n')
})

test('stdin is off unless asked for: cat sees EOF, sendStdin is refused', T, async () => {
  const sandbox = await createSandbox()
  assert.equal((await sandbox.commands.run('cat; echo rc=$?')).stdout, 'rc=0\n')
  const h = await sandbox.commands.run('sleep 30', { ...NO_RC, background: true })
  try {
    await assert.rejects(h.sendStdin('x'), (err) => /stdin not enabled or closed/.test(err.message))
  } finally {
    await h.kill()
  }
})

test('handle.closeStdin ends input; onStderr streams stderr', T, async () => {
  const sandbox = await createSandbox()
  const errs = []
  const h = await sandbox.commands.run('cat >&2', { background: true, stdin: true, onStderr: (d) => errs.push(d) })
  await h.sendStdin('to stderr\n')
  await h.closeStdin()
  const r = await h.wait()
  assert.equal(r.stderr, 'to stderr\n')
  assert.equal(errs.join(''), 'to stderr\n')
  assert.equal(r.stdout, '')
})

test('connect after the command exited still gives its result (retention)', T, async () => {
  const sandbox = await createSandbox()
  const h = await sandbox.commands.run('echo gone; exit 4', { background: true })
  await assert.rejects(h.wait(), (err) => err instanceof CommandExitError && err.exitCode === 4)
  const again = await sandbox.commands.connect(h.pid)
  await assert.rejects(again.wait(), (err) => {
    assert.ok(err instanceof CommandExitError, `got ${err}`)
    assert.equal(err.exitCode, 4)
    assert.equal(err.stdout, '', 'no replay of earlier output')
    return true
  })
})

test('connect to an unknown pid is NotFoundError', T, async () => {
  const sandbox = await createSandbox()
  await assert.rejects(sandbox.commands.connect(99_999_999), (err) => {
    assert.equal(err.name, 'NotFoundError')
    assert.match(err.message, /process with pid 99999999 not found/)
    return true
  })
})

test('killing a foreground command from another call ends it with signal: killed', T, async () => {
  const sandbox = await createSandbox()
  let ready
  const isReady = new Promise((r) => { ready = r })
  const running = sandbox.commands.run('echo ready; exec sleep 30', { onStdout: () => ready() })
  // Handle the rejection from the start: it may come while kill() is still
  // awaited, and a rejection unhandled for a tick fails the test.
  const outcome = running.then(() => { throw new Error('the killed command resolved') }, (err) => err)
  await isReady
  const me = (await sandbox.commands.list()).find((p) => p.args[2] === 'echo ready; exec sleep 30')
  assert.ok(me, 'the foreground command is listed')
  assert.equal(await sandbox.commands.kill(me.pid), true)
  await assert.rejects(outcome.then((err) => { throw err }), (err) => {
    assert.ok(err instanceof CommandExitError, `got ${err}`)
    assert.equal(err.exitCode, -1)
    assert.equal(err.error, 'signal: killed')
    assert.equal(err.stdout, 'ready\n')
    return true
  })
})

test('list reports cmd, args, envs and cwd as requested', T, async () => {
  const sandbox = await createSandbox()
  const h = await sandbox.commands.run('sleep 30', { ...NO_RC, background: true, cwd: '/tmp', envs: { LISTED: 'yes' } })
  try {
    const me = (await sandbox.commands.list()).find((p) => p.pid === h.pid)
    assert.ok(me)
    assert.equal(me.cmd, '/bin/bash')
    assert.deepEqual(me.args, ['-l', '-c', 'sleep 30'])
    assert.deepEqual(me.envs, { LISTED: 'yes' })
    assert.equal(me.cwd, '/tmp')
    assert.equal(me.tag, undefined)
  } finally {
    await h.kill()
  }
})

test('eight concurrent commands keep their output apart', T, async () => {
  const sandbox = await createSandbox()
  const runs = Array.from({ length: 8 }, (_, i) =>
    sandbox.commands.run(`for n in $(seq 1 500); do echo c${i}-$n; done`))
  const results = await Promise.all(runs)
  results.forEach((r, i) => {
    const lines = r.stdout.trimEnd().split('\n')
    assert.equal(lines.length, 500)
    assert.ok(lines.every((l, n) => l === `c${i}-${n + 1}`), `command ${i} got foreign or reordered lines`)
  })
})
