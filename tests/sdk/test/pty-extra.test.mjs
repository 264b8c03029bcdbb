// pty.* surfaces not covered in pty.test.mjs: cwd, envs and user; reattach
// with pty.connect; exit codes; timeoutMs; and the error answers the SDK
// maps (PROTOCOL.md 3.3.4-3.3.6).
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { CommandExitError } from 'e2b'
import { createSandbox, ptyOutput } from './helpers.mjs'

const T = { timeout: 30_000 }
const enc = new TextEncoder()

// Shells killed soon after they start run as nobody (no home, so no rc
// files): root's shell may source rc files that take locks (pyenv rehash
// does), and a shell killed while holding one stalls later root shells.
const NO_RC = { user: 'nobody', cwd: '/tmp' }

test('pty.create with cwd, envs and user', T, async () => {
  const sandbox = await createSandbox()
  const out = ptyOutput()
  const term = await sandbox.pty.create({
    cols: 80, rows: 24, cwd: '/tmp', envs: { FOO: 'bar' }, user: 'nobody', onData: (d) => out.onData(d),
  })
  try {
    await sandbox.pty.sendInput(term.pid, enc.encode('echo "U=$(id -un) P=$PWD F=$FOO L=$LANG"\n'))
    await out.waitFor(/U=nobody P=\/tmp F=bar L=C\.UTF-8/)
  } finally {
    await sandbox.pty.kill(term.pid)
  }
})

test('pty.connect reattaches after disconnect; the pty is listed', T, async () => {
  const sandbox = await createSandbox()
  const term = await sandbox.pty.create({ cols: 80, rows: 24, onData: () => {} })
  try {
    await term.disconnect()
    const listed = (await sandbox.commands.list()).find((p) => p.pid === term.pid)
    assert.ok(listed, 'pty listed')
    assert.equal(listed.cmd, '/bin/bash')
    assert.deepEqual(listed.args, ['-i', '-l'])
    assert.equal(listed.envs.TERM, 'xterm-256color')
    const out = ptyOutput()
    const again = await sandbox.pty.connect(term.pid, { onData: (d) => out.onData(d) })
    assert.equal(again.pid, term.pid)
    await sandbox.pty.sendInput(term.pid, enc.encode('echo "again-$((6*7))"\n'))
    await out.waitFor(/again-42/)
    await sandbox.pty.sendInput(term.pid, enc.encode('exit 3\n'))
    await assert.rejects(again.wait(), (err) => err instanceof CommandExitError && err.exitCode === 3)
  } finally {
    await sandbox.pty.kill(term.pid)
  }
})

test('pty timeoutMs ends the session and envd kills the shell', T, async () => {
  const sandbox = await createSandbox()
  const term = await sandbox.pty.create({ ...NO_RC, cols: 80, rows: 24, onData: () => {}, timeoutMs: 700 })
  await assert.rejects(term.wait(), { name: 'TimeoutError' })
  const deadline = Date.now() + 5000
  while ((await sandbox.commands.list()).some((p) => p.pid === term.pid)) {
    assert.ok(Date.now() < deadline, 'pty still listed 5 s after its deadline')
    await new Promise((r) => setTimeout(r, 50))
  }
})

test('pty errors: unknown pid, resize of a pipe process, stdin to a pty', T, async () => {
  const sandbox = await createSandbox()
  await assert.rejects(sandbox.pty.sendInput(99_999_999, enc.encode('x')), { name: 'NotFoundError' })
  await assert.rejects(sandbox.pty.resize(99_999_999, { cols: 10, rows: 10 }), { name: 'NotFoundError' })
  assert.equal(await sandbox.pty.kill(99_999_999), false)
  const plain = await sandbox.commands.run('sleep 30', { ...NO_RC, background: true, stdin: true })
  const term = await sandbox.pty.create({ ...NO_RC, cols: 80, rows: 24, onData: () => {} })
  try {
    await assert.rejects(sandbox.pty.resize(plain.pid, { cols: 10, rows: 10 }), (err) => /tty not assigned/.test(err.message))
    await assert.rejects(sandbox.pty.sendInput(plain.pid, enc.encode('x')), (err) => /tty not assigned/.test(err.message))
    await assert.rejects(sandbox.commands.sendStdin(term.pid, 'x'), (err) => /tty assigned/.test(err.message))
    await assert.rejects(sandbox.commands.closeStdin(term.pid), (err) => /Ctrl\+D/.test(err.message))
  } finally {
    await plain.kill()
    await sandbox.pty.kill(term.pid)
  }
})
