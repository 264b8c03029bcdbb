// commands.* of the E2B JS SDK against envd's process.Process service
// (PROTOCOL.md 3.1-3.3). Each test starts its own processes.
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { CommandExitError } from 'e2b'
import { createSandbox } from './helpers.mjs'

const T = { timeout: 30_000 }

test('commands.run returns stdout, stderr and exit code', T, async () => {
  const sandbox = await createSandbox()
  const r = await sandbox.commands.run('echo out; echo err >&2', { timeoutMs: 10_000 })
  assert.equal(r.exitCode, 0)
  assert.equal(r.stdout, 'out\n')
  assert.equal(r.stderr, 'err\n')
})

test('commands.run with a non-zero exit throws CommandExitError', T, async () => {
  const sandbox = await createSandbox()
  await assert.rejects(
    sandbox.commands.run('echo partial; exit 3', { timeoutMs: 10_000 }),
    (err) => {
      assert.ok(err instanceof CommandExitError, `got ${err}`)
      assert.equal(err.exitCode, 3)
      assert.equal(err.error, 'exit status 3')
      assert.equal(err.stdout, 'partial\n')
      return true
    },
  )
})

test('commands.run with cwd, envs and user', T, async () => {
  const sandbox = await createSandbox()
  const r = await sandbox.commands.run('pwd; echo "$FOO $USER $HOME"; id -u', {
    cwd: '/tmp', envs: { FOO: 'bar' }, user: 'root', timeoutMs: 10_000,
  })
  assert.equal(r.stdout, '/tmp\nbar root /root\n0\n')
})

test('commands.run streams output through callbacks', T, async () => {
  const sandbox = await createSandbox()
  const chunks = []
  const r = await sandbox.commands.run('for i in 1 2 3; do echo line$i; done', {
    onStdout: (d) => chunks.push(d), timeoutMs: 10_000,
  })
  assert.equal(chunks.join(''), 'line1\nline2\nline3\n')
  assert.equal(r.stdout, 'line1\nline2\nline3\n')
})

test('large output arrives intact', T, async () => {
  const sandbox = await createSandbox()
  const r = await sandbox.commands.run('head -c 3000000 /dev/zero | tr "\\0" a', { timeoutMs: 20_000 })
  assert.equal(r.stdout.length, 3_000_000)
  assert.ok(/^a+$/.test(r.stdout))
})

test('background command: wait, list and kill', T, async () => {
  const sandbox = await createSandbox()
  const quick = await sandbox.commands.run('sleep 0.2; echo done', { background: true, timeoutMs: 10_000 })
  assert.ok(quick.pid > 0)
  const res = await quick.wait()
  assert.equal(res.exitCode, 0)
  assert.equal(res.stdout, 'done\n')

  const slow = await sandbox.commands.run('sleep 1000', { background: true, timeoutMs: 0 })
  const listed = await sandbox.commands.list()
  const me = listed.find((p) => p.pid === slow.pid)
  assert.ok(me, 'background process is listed')
  assert.equal(me.cmd, '/bin/bash')
  assert.deepEqual(me.args, ['-l', '-c', 'sleep 1000'])
  assert.equal(await slow.kill(), true)
  await assert.rejects(slow.wait(), (err) => {
    assert.ok(err instanceof CommandExitError, `got ${err}`)
    assert.equal(err.exitCode, -1)
    assert.equal(err.error, 'signal: killed')
    return true
  })
  assert.equal(await sandbox.commands.kill(slow.pid), false, 'killing a gone process reports false')
})

test('sendStdin and closeStdin', T, async () => {
  const sandbox = await createSandbox()
  const h = await sandbox.commands.run('cat', { background: true, stdin: true, timeoutMs: 10_000 })
  await sandbox.commands.sendStdin(h.pid, 'hello ')
  await h.sendStdin('world\n')
  await sandbox.commands.closeStdin(h.pid)
  const r = await h.wait()
  assert.equal(r.stdout, 'hello world\n')
})

test('connect reattaches to a running command', T, async () => {
  const sandbox = await createSandbox()
  const h = await sandbox.commands.run('sleep 0.5; echo late; exit 4', { background: true, timeoutMs: 10_000 })
  await h.disconnect()
  const seen = []
  const again = await sandbox.commands.connect(h.pid, { onStdout: (d) => seen.push(d), timeoutMs: 10_000 })
  await assert.rejects(again.wait(), (err) => err instanceof CommandExitError && err.exitCode === 4)
  assert.equal(seen.join(''), 'late\n')
})

test('a missing command exits 127 with a message', T, async () => {
  const sandbox = await createSandbox()
  await assert.rejects(
    sandbox.commands.run('no-such-command-envd-sdk', { timeoutMs: 10_000 }),
    (err) => err instanceof CommandExitError && err.exitCode === 127 && /not found/.test(err.stderr),
  )
})
