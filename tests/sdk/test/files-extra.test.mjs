// files.* surfaces not covered in files-fs / files-transfer: relative and ~
// paths (resolved against the user's home, PROTOCOL.md 3.0), another user
// for every call, hidden files and symlinks in list, error answers for
// makeDir/rename/write, and watchDir preconditions and timeoutMs.
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { lstat, mkdir, readFile, readlink, rm, stat, symlink, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { FileType } from 'e2b'
import { createSandbox, makeTempDir } from './helpers.mjs'

const T = { timeout: 30_000 }

test('relative and ~ paths resolve against the user home', T, async (t) => {
  const sandbox = await createSandbox()
  const name = `envd-sdk-rel-${process.pid}-${Date.now()}`
  t.after(() => rm(join('/root', name), { recursive: true, force: true }))
  const info = await sandbox.files.write(`${name}/a.txt`, 'relative')
  assert.equal(info.path, `/root/${name}/a.txt`)
  assert.equal(await readFile(`/root/${name}/a.txt`, 'utf8'), 'relative')
  assert.equal(await sandbox.files.read(`~/${name}/a.txt`), 'relative')
  assert.equal((await sandbox.files.getInfo(`~/${name}`)).type, FileType.DIR)
  assert.deepEqual((await sandbox.files.list(name)).map((e) => e.path), [`/root/${name}/a.txt`])
  assert.equal(await sandbox.files.exists(`${name}/a.txt`), true)
  await sandbox.files.rename(`${name}/a.txt`, `~/${name}/b.txt`)
  assert.equal(await sandbox.files.exists(`/root/${name}/b.txt`), true)
  await sandbox.files.remove(name)
  assert.equal(await sandbox.files.exists(name), false)
  await assert.rejects(sandbox.files.read('~no-such-user-envd/x'), { name: 'InvalidArgumentError' })
})

test('every files call as another user: ownership and that user\'s home', T, async (t) => {
  const dir = await makeTempDir(t)
  const sandbox = await createSandbox()
  const opts = { user: 'nobody' }
  const path = join(dir, 'sub', 'n.txt')
  await sandbox.files.write(path, 'by nobody', opts)
  assert.equal((await stat(path)).uid, 65534)
  assert.equal((await stat(join(dir, 'sub'))).uid, 65534, 'created parents belong to the user')
  assert.equal(await sandbox.files.read(path, opts), 'by nobody')
  assert.equal((await sandbox.files.getInfo(path, opts)).owner, 'nobody')
  assert.equal(await sandbox.files.makeDir(join(dir, 'made'), opts), true)
  assert.equal((await stat(join(dir, 'made'))).uid, 65534)
  assert.deepEqual((await sandbox.files.list(dir, opts)).map((e) => e.name), ['made', 'sub'])
  // A relative path for nobody is under its home, /nonexistent.
  await assert.rejects(sandbox.files.read('x.txt', opts), (err) => {
    assert.equal(err.name, 'FileNotFoundError')
    assert.match(err.message, /\/nonexistent\/x\.txt/)
    return true
  })
})

test('list shows hidden files and symlinks with their resolved target', T, async (t) => {
  const dir = await makeTempDir(t)
  await writeFile(join(dir, '.hidden'), 'h')
  await mkdir(join(dir, 'real'))
  await symlink(join(dir, 'real'), join(dir, 'ln'))
  const sandbox = await createSandbox()
  const entries = await sandbox.files.list(dir)
  assert.deepEqual(entries.map((e) => e.name), ['.hidden', 'ln', 'real'])
  const ln = entries.find((e) => e.name === 'ln')
  assert.equal(ln.type, FileType.DIR)
  assert.equal(ln.symlinkTarget, join(dir, 'real'))
  // Listing through the link works and keeps the link in the paths.
  await writeFile(join(dir, 'real', 'in.txt'), '')
  assert.deepEqual((await sandbox.files.list(join(dir, 'ln'))).map((e) => e.path), [join(dir, 'ln', 'in.txt')])
  // Removing the link removes only the link.
  await sandbox.files.remove(join(dir, 'ln'))
  await assert.rejects(readlink(join(dir, 'ln')), { code: 'ENOENT' })
  assert.ok((await lstat(join(dir, 'real', 'in.txt'))).isFile())
})

test('makeDir over a file, rename over a file, write under a file', T, async (t) => {
  const dir = await makeTempDir(t)
  await writeFile(join(dir, 'f'), 'old')
  await writeFile(join(dir, 'g'), 'new')
  const sandbox = await createSandbox()
  await assert.rejects(sandbox.files.makeDir(join(dir, 'f')), { name: 'InvalidArgumentError' })
  const info = await sandbox.files.rename(join(dir, 'g'), join(dir, 'f'))
  assert.equal(info.path, join(dir, 'f'))
  assert.equal(await readFile(join(dir, 'f'), 'utf8'), 'new')
  await assert.rejects(sandbox.files.write(join(dir, 'f', 'under.txt'), 'x'))
  assert.equal(await readFile(join(dir, 'f'), 'utf8'), 'new')
})

test('watchDir of a file is InvalidArgumentError; timeoutMs ends the watch', T, async (t) => {
  const dir = await makeTempDir(t)
  await writeFile(join(dir, 'f'), '')
  const sandbox = await createSandbox()
  await assert.rejects(sandbox.files.watchDir(join(dir, 'f'), () => {}), { name: 'InvalidArgumentError' })
  let exited
  const exitedP = new Promise((r) => { exited = r })
  const started = Date.now()
  const handle = await sandbox.files.watchDir(dir, () => {}, { timeoutMs: 700, onExit: (err) => exited(err) })
  t.after(() => handle.stop())
  const err = await exitedP
  assert.equal(err?.name, 'TimeoutError')
  assert.ok(Date.now() - started < 10_000)
})
