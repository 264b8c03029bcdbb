// pty.* of the E2B JS SDK against envd (PROTOCOL.md 3.1 PTY mode, 3.3.6).
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { createSandbox, ptyOutput } from './helpers.mjs'

const T = { timeout: 30_000 }
const enc = new TextEncoder()

test('pty.create, sendInput, resize and kill', T, async () => {
  const sandbox = await createSandbox()
  const out = ptyOutput()
  const term = await sandbox.pty.create({ cols: 80, rows: 24, onData: (d) => out.onData(d), timeoutMs: 20_000 })
  assert.ok(term.pid > 0)
  await sandbox.pty.sendInput(term.pid, enc.encode('echo "S=$(stty size) T=$TERM"\n'))
  await out.waitFor(/S=24 80 T=xterm-256color/)
  await sandbox.pty.resize(term.pid, { cols: 100, rows: 30 })
  await sandbox.pty.sendInput(term.pid, enc.encode('echo "R=$(stty size)"\n'))
  await out.waitFor(/R=30 100/)
  assert.equal(await sandbox.pty.kill(term.pid), true)
  const res = await term.wait().catch((e) => e)
  assert.equal(res.exitCode, -1)
})

test('pty: Ctrl-C interrupts the foreground job', T, async () => {
  const sandbox = await createSandbox()
  const out = ptyOutput()
  const term = await sandbox.pty.create({ cols: 80, rows: 24, onData: (d) => out.onData(d), timeoutMs: 20_000 })
  await sandbox.pty.sendInput(term.pid, enc.encode(`sh -c 'echo RE""ADY; exec sleep 1000'\n`))
  await out.waitFor(/READY\r\n/)
  await sandbox.pty.sendInput(term.pid, enc.encode('\x03'))
  await sandbox.pty.sendInput(term.pid, enc.encode('echo "after-$?"\n'))
  await out.waitFor(/after-130/)
  await sandbox.pty.sendInput(term.pid, enc.encode('exit 0\n'))
  const res = await term.wait()
  assert.equal(res.exitCode, 0)
})
