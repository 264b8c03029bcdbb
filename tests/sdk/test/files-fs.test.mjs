// The filesystem RPCs through the SDK's files API: list, exists, getInfo,
// makeDir, rename, remove and watchDir (PROTOCOL.md 3.4).
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { lstat, mkdir, rm, symlink, writeFile, chmod } from 'node:fs/promises'
import { join } from 'node:path'
import { FileType, FilesystemEventType } from 'e2b'
import { createSandbox, makeTempDir } from './helpers.mjs'

const T = { timeout: 30_000 }

/** drwxr-xr-x style string of a stat result (plain files and directories). */
function permString(st) {
  const rwx = (bits) => (bits & 4 ? 'r' : '-') + (bits & 2 ? 'w' : '-') + (bits & 1 ? 'x' : '-')
  const m = st.mode & 0o777
  return (st.isDirectory() ? 'd' : '-') + rwx(m >> 6) + rwx(m >> 3) + rwx(m)
}

async function tree(t) {
  const dir = await makeTempDir(t, 'envd-sdk-fs')
  await mkdir(join(dir, 'a/b/c/d'), { recursive: true })
  await writeFile(join(dir, 'a/x.txt'), 'x')
  await writeFile(join(dir, 'a/b/y.txt'), 'yy')
  await writeFile(join(dir, 'f.txt'), 'hello')
  return dir
}

test('files.list honours depth 1 to 3 in lexical pre-order', T, async (t) => {
  const dir = await tree(t)
  const sandbox = await createSandbox()
  const rel = (entries) => entries.map((e) => e.path.slice(dir.length + 1))
  assert.deepEqual(rel(await sandbox.files.list(dir)), ['a', 'f.txt'])
  assert.deepEqual(rel(await sandbox.files.list(dir, { depth: 1 })), ['a', 'f.txt'])
  assert.deepEqual(rel(await sandbox.files.list(dir, { depth: 2 })), ['a', 'a/b', 'a/x.txt', 'f.txt'])
  assert.deepEqual(rel(await sandbox.files.list(dir, { depth: 3 })),
    ['a', 'a/b', 'a/b/c', 'a/b/y.txt', 'a/x.txt', 'f.txt'])
  const [a, f] = await sandbox.files.list(dir)
  assert.equal(a.type, FileType.DIR)
  assert.equal(a.name, 'a')
  assert.equal(f.type, FileType.FILE)
  assert.equal(f.size, 5)
})

test('files.list of a missing path or a file fails', T, async (t) => {
  const dir = await tree(t)
  const sandbox = await createSandbox()
  await assert.rejects(sandbox.files.list(join(dir, 'missing')), { name: 'FileNotFoundError' })
  await assert.rejects(sandbox.files.list(join(dir, 'f.txt')), { name: 'InvalidArgumentError' })
})

test('files.exists is true for files and directories, false when missing', T, async (t) => {
  const dir = await tree(t)
  const sandbox = await createSandbox()
  assert.equal(await sandbox.files.exists(join(dir, 'f.txt')), true)
  assert.equal(await sandbox.files.exists(join(dir, 'a/b')), true)
  assert.equal(await sandbox.files.exists(join(dir, 'nope')), false)
})

test('files.getInfo matches lstat', T, async (t) => {
  const dir = await tree(t)
  const file = join(dir, 'f.txt')
  await chmod(file, 0o640)
  const sandbox = await createSandbox()
  for (const path of [file, join(dir, 'a')]) {
    const info = await sandbox.files.getInfo(path)
    const st = await lstat(path)
    assert.equal(info.path, path)
    assert.equal(info.name, path.split('/').pop())
    assert.equal(info.type, st.isDirectory() ? FileType.DIR : FileType.FILE)
    assert.equal(info.size, st.size)
    assert.equal(info.mode, st.mode & 0o777)
    assert.equal(info.permissions, permString(st))
    assert.equal(info.owner, 'root')
    assert.equal(info.group, 'root')
    assert.ok(Math.abs(info.modifiedTime.getTime() - st.mtimeMs) < 1, `${info.modifiedTime.getTime()} vs ${st.mtimeMs}`)
    assert.equal(info.symlinkTarget, undefined)
  }
  await assert.rejects(sandbox.files.getInfo(join(dir, 'missing')), { name: 'FileNotFoundError' })
})

test('files.getInfo of a symlink reports the target type and resolved target', T, async (t) => {
  const dir = await tree(t)
  await symlink(join(dir, 'a'), join(dir, 'link'))
  const sandbox = await createSandbox()
  const info = await sandbox.files.getInfo(join(dir, 'link'))
  assert.equal(info.type, FileType.DIR)
  assert.equal(info.symlinkTarget, join(dir, 'a'))
  assert.equal(info.permissions, 'Lrwxrwxrwx')
})

test('files.makeDir creates parents, owned by the user; false when it exists', T, async (t) => {
  const dir = await makeTempDir(t, 'envd-sdk-fs')
  const sandbox = await createSandbox()
  const target = join(dir, 'p/q/r')
  assert.equal(await sandbox.files.makeDir(target, { user: 'www-data' }), true)
  const st = await lstat(target)
  assert.ok(st.isDirectory())
  assert.equal(st.uid, 33)
  assert.equal((await lstat(join(dir, 'p'))).uid, 33)
  assert.equal((await sandbox.files.getInfo(target)).owner, 'www-data')
  assert.equal(await sandbox.files.makeDir(target), false)
})

test('files.rename moves and creates parents; a missing source is not found', T, async (t) => {
  const dir = await tree(t)
  const sandbox = await createSandbox()
  const info = await sandbox.files.rename(join(dir, 'f.txt'), join(dir, 'new/place/g.txt'))
  assert.equal(info.path, join(dir, 'new/place/g.txt'))
  assert.equal(info.name, 'g.txt')
  assert.equal(info.size, 5)
  assert.equal(await sandbox.files.exists(join(dir, 'f.txt')), false)
  await assert.rejects(sandbox.files.rename(join(dir, 'ghost'), join(dir, 'x')), { name: 'FileNotFoundError' })
})

test('files.remove deletes recursively and ignores missing paths', T, async (t) => {
  const dir = await tree(t)
  const sandbox = await createSandbox()
  await sandbox.files.remove(join(dir, 'a'))
  assert.equal(await sandbox.files.exists(join(dir, 'a')), false)
  await sandbox.files.remove(join(dir, 'a')) // already gone: no error
  assert.deepEqual((await sandbox.files.list(dir)).map((e) => e.name), ['f.txt'])
})

/** Collects watch events; until(pred) resolves when one matches. */
function collector() {
  const events = []
  const waiters = []
  return {
    events,
    onEvent(ev) {
      events.push(ev)
      for (const w of waiters) if (w.pred(ev)) w.resolve(ev)
    },
    until(pred, ms = 10_000) {
      const hit = events.find(pred)
      if (hit) return Promise.resolve(hit)
      return new Promise((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error(`no matching event; got ${JSON.stringify(events)}`)), ms)
        waiters.push({ pred, resolve: (ev) => { clearTimeout(timer); resolve(ev) } })
      })
    },
  }
}

test('watchDir reports create, write, rename and remove with relative names', T, async (t) => {
  const dir = await makeTempDir(t, 'envd-sdk-fs')
  const sandbox = await createSandbox()
  const c = collector()
  const handle = await sandbox.files.watchDir(dir, c.onEvent)
  t.after(() => handle.stop())
  await writeFile(join(dir, 'w.txt'), 'data')
  await c.until((e) => e.name === 'w.txt' && e.type === FilesystemEventType.WRITE)
  await sandbox.files.rename(join(dir, 'w.txt'), join(dir, 'v.txt'))
  await c.until((e) => e.name === 'v.txt' && e.type === FilesystemEventType.CREATE)
  await rm(join(dir, 'v.txt'))
  await c.until((e) => e.name === 'v.txt' && e.type === FilesystemEventType.REMOVE)
  assert.ok(c.events.some((e) => e.name === 'w.txt' && e.type === FilesystemEventType.CREATE))
  assert.ok(c.events.some((e) => e.name === 'w.txt' && e.type === FilesystemEventType.RENAME))
  assert.ok(c.events.every((e) => e.entry === undefined))
})

test('watchDir recursive sees new subdirectories; non-recursive does not', T, async (t) => {
  const dir = await makeTempDir(t, 'envd-sdk-fs')
  const sandbox = await createSandbox()
  const rec = collector()
  const flat = collector()
  const h1 = await sandbox.files.watchDir(dir, rec.onEvent, { recursive: true })
  const h2 = await sandbox.files.watchDir(dir, flat.onEvent, { recursive: false })
  t.after(() => { h1.stop(); h2.stop() })
  await mkdir(join(dir, 'sub/deeper'), { recursive: true })
  await writeFile(join(dir, 'sub/deeper/inner.txt'), 'x')
  await writeFile(join(dir, 'top.txt'), 'x')
  await rec.until((e) => e.name === 'sub/deeper/inner.txt' && e.type === FilesystemEventType.CREATE)
  await flat.until((e) => e.name === 'top.txt' && e.type === FilesystemEventType.CREATE)
  assert.ok(flat.events.some((e) => e.name === 'sub' && e.type === FilesystemEventType.CREATE))
  assert.ok(flat.events.every((e) => !e.name.includes('/')), JSON.stringify(flat.events))
})

test('watchDir includeEntry attaches entry info to create and write events', T, async (t) => {
  const dir = await makeTempDir(t, 'envd-sdk-fs')
  const sandbox = await createSandbox()
  const c = collector()
  const handle = await sandbox.files.watchDir(dir, c.onEvent, { includeEntry: true })
  t.after(() => handle.stop())
  await writeFile(join(dir, 'e.txt'), 'abc')
  const ev = await c.until((e) => e.name === 'e.txt' && e.type === FilesystemEventType.WRITE && e.entry?.size === 3)
  assert.equal(ev.entry.path, join(dir, 'e.txt'))
  assert.equal(ev.entry.type, FileType.FILE)
  await rm(join(dir, 'e.txt'))
  const removed = await c.until((e) => e.name === 'e.txt' && e.type === FilesystemEventType.REMOVE)
  assert.equal(removed.entry, undefined)
})

test('watchDir stop() ends delivery', T, async (t) => {
  const dir = await makeTempDir(t, 'envd-sdk-fs')
  const sandbox = await createSandbox()
  const c = collector()
  let exited
  const exitedP = new Promise((resolve) => { exited = resolve })
  const handle = await sandbox.files.watchDir(dir, c.onEvent, { onExit: (err) => exited(err) })
  await writeFile(join(dir, 'before.txt'), '')
  await c.until((e) => e.name === 'before.txt')
  await handle.stop()
  await exitedP
  const n = c.events.length
  await writeFile(join(dir, 'after.txt'), '')
  // A second watch proves the event happened and was delivered elsewhere.
  const probe = collector()
  const h2 = await sandbox.files.watchDir(dir, probe.onEvent)
  t.after(() => h2.stop())
  await writeFile(join(dir, 'after2.txt'), '')
  await probe.until((e) => e.name === 'after2.txt')
  assert.equal(c.events.length, n, `events after stop(): ${JSON.stringify(c.events.slice(n))}`)
})

test('watchDir of a missing directory fails with not found', T, async (t) => {
  const dir = await makeTempDir(t, 'envd-sdk-fs')
  const sandbox = await createSandbox()
  await assert.rejects(sandbox.files.watchDir(join(dir, 'missing'), () => {}), { name: 'FileNotFoundError' })
})
