// File transfer through the SDK: files.write / files.read over GET and POST
// /files (PROTOCOL.md 4.8, 4.9), gzip both ways and X-Metadata-* metadata.
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { createHash, randomBytes } from 'node:crypto'
import { mkdir, readFile, stat, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { FilesystemEventType } from 'e2b'
import { createSandbox, ENVD_URL, makeTempDir } from './helpers.mjs'

const T = { timeout: 60_000 }

const sha256 = (buf) => createHash('sha256').update(buf).digest('hex')

/** A web ReadableStream yielding `chunks` in order. */
function streamOf(chunks) {
  let i = 0
  return new ReadableStream({
    pull(controller) {
      if (i < chunks.length) controller.enqueue(chunks[i++])
      else controller.close()
    },
  })
}

async function collect(stream) {
  const parts = []
  for await (const chunk of stream) parts.push(Buffer.from(chunk))
  return Buffer.concat(parts)
}

test('text write and read round trip, overwrite replaces content', T, async (t) => {
  const dir = await makeTempDir(t)
  const sandbox = await createSandbox()
  const path = join(dir, 'hello.txt')
  const info = await sandbox.files.write(path, 'Hello, envd!\n')
  assert.equal(info.path, path)
  assert.equal(info.name, 'hello.txt')
  assert.equal(info.type, 'file')
  assert.equal(info.metadata, undefined)
  assert.equal(await readFile(path, 'utf8'), 'Hello, envd!\n')
  assert.equal(await sandbox.files.read(path), 'Hello, envd!\n')
  await sandbox.files.write(path, 'short')
  assert.equal(await sandbox.files.read(path), 'short')
  await sandbox.files.write(path, '')
  assert.equal(await sandbox.files.read(path), '')
})

test('bytes, blob and stream reads return the exact bytes', T, async (t) => {
  const dir = await makeTempDir(t)
  const sandbox = await createSandbox()
  const data = randomBytes(1 << 20)
  const path = join(dir, 'random.bin')
  await sandbox.files.write(path, new Uint8Array(data))
  assert.equal(sha256(await readFile(path)), sha256(data))
  const bytes = await sandbox.files.read(path, { format: 'bytes' })
  assert.ok(bytes instanceof Uint8Array)
  assert.equal(sha256(bytes), sha256(data))
  const blob = await sandbox.files.read(path, { format: 'blob' })
  assert.equal(sha256(Buffer.from(await blob.arrayBuffer())), sha256(data))
  const stream = await sandbox.files.read(path, { format: 'stream' })
  assert.equal(sha256(await collect(stream)), sha256(data))
  // A Blob and an ArrayBuffer as input.
  await sandbox.files.write(path, new Blob([data.subarray(0, 1000)]))
  assert.equal(sha256(await readFile(path)), sha256(data.subarray(0, 1000)))
  await sandbox.files.write(path, data.buffer.slice(data.byteOffset, data.byteOffset + 10))
  assert.deepEqual(await readFile(path), data.subarray(0, 10))
})

test('a ReadableStream uploads as a raw stream', T, async (t) => {
  const dir = await makeTempDir(t)
  const sandbox = await createSandbox()
  const chunks = Array.from({ length: 64 }, () => randomBytes(64 * 1024))
  const path = join(dir, 'streamed.bin')
  const info = await sandbox.files.write(path, streamOf(chunks))
  assert.equal(info.path, path)
  assert.equal(sha256(await readFile(path)), sha256(Buffer.concat(chunks)))
})

test('50 MiB write and read keep every byte', { timeout: 120_000 }, async (t) => {
  const dir = await makeTempDir(t)
  const sandbox = await createSandbox({ requestTimeoutMs: 60_000 })
  const data = randomBytes(50 << 20)
  const path = join(dir, 'big.bin')
  await sandbox.files.write(path, new Uint8Array(data), { requestTimeoutMs: 60_000 })
  assert.equal((await stat(path)).size, 50 << 20)
  assert.equal(sha256(await readFile(path)), sha256(data))
  const back = await sandbox.files.read(path, { format: 'bytes', requestTimeoutMs: 60_000 })
  assert.equal(back.length, data.length)
  assert.equal(sha256(back), sha256(data))
  const streamed = await sandbox.files.read(path, { format: 'stream', requestTimeoutMs: 60_000 })
  assert.equal(sha256(await collect(streamed)), sha256(data))
})

test('unicode names and nested new directories', T, async (t) => {
  const dir = await makeTempDir(t)
  const sandbox = await createSandbox()
  const path = join(dir, 'ünï/çødé/文件 夹', 'файл 🚀.txt')
  const info = await sandbox.files.write(path, 'unicode ✓')
  assert.equal(info.path, path)
  assert.equal(info.name, 'файл 🚀.txt')
  assert.equal(await readFile(path, 'utf8'), 'unicode ✓')
  assert.equal(await sandbox.files.read(path), 'unicode ✓')
  assert.ok((await stat(join(dir, 'ünï/çødé'))).isDirectory())
  // Names with quotes, spaces, semicolons and percent signs survive.
  const odd = join(dir, `we"ird; name%20 'x'.txt`)
  await sandbox.files.write(odd, 'odd')
  assert.equal(await readFile(odd, 'utf8'), 'odd')
  assert.equal(await sandbox.files.read(odd), 'odd')
})

test('multi-file write returns one entry per file, in order', T, async (t) => {
  const dir = await makeTempDir(t)
  const sandbox = await createSandbox()
  const files = [
    { path: join(dir, 'one.txt'), data: 'one' },
    { path: join(dir, 'sub/two.bin'), data: new Uint8Array([0, 1, 2, 255]) },
    { path: join(dir, 'sub/déeper/三 three.txt'), data: new Blob(['three']) },
  ]
  const infos = await sandbox.files.write(files)
  assert.deepEqual(infos.map((i) => i.path), files.map((f) => f.path))
  assert.deepEqual(infos.map((i) => i.type), ['file', 'file', 'file'])
  assert.equal(await readFile(files[0].path, 'utf8'), 'one')
  assert.deepEqual([...(await readFile(files[1].path))], [0, 1, 2, 255])
  assert.equal(await readFile(files[2].path, 'utf8'), 'three')
  // writeFiles is the same call.
  const again = await sandbox.files.writeFiles([{ path: join(dir, 'four.txt'), data: '4' }])
  assert.equal(again.length, 1)
  assert.equal(await readFile(join(dir, 'four.txt'), 'utf8'), '4')
})

test('gzip upload and gzip download', T, async (t) => {
  const dir = await makeTempDir(t)
  const sandbox = await createSandbox()
  const text = 'compressible line\n'.repeat(100_000)
  const path = join(dir, 'gz.txt')
  const info = await sandbox.files.write(path, text, { gzip: true })
  assert.equal(info.path, path)
  assert.equal(await readFile(path, 'utf8'), text)
  assert.equal(await sandbox.files.read(path, { gzip: true }), text)
  const bytes = await sandbox.files.read(path, { gzip: true, format: 'bytes' })
  assert.equal(Buffer.from(bytes).toString('utf8'), text)
  // Raw check: the answer really is gzip, without Content-Length.
  const res = await fetch(`${ENVD_URL}/files?path=${encodeURIComponent(path)}`, {
    headers: { 'Accept-Encoding': 'gzip', ...tokenHeader() },
  })
  assert.equal(res.status, 200)
  assert.equal(res.headers.get('content-encoding'), 'gzip')
  assert.equal(res.headers.get('vary'), 'Accept-Encoding')
  assert.equal(await res.text(), text) // fetch decodes it
  // Streams with gzip go as a compressed octet-stream.
  const streamed = join(dir, 'gz-stream.bin')
  const chunk = randomBytes(300_000)
  await sandbox.files.write(streamed, streamOf([chunk, chunk]), { gzip: true })
  assert.equal(sha256(await readFile(streamed)), sha256(Buffer.concat([chunk, chunk])))
})

function tokenHeader() {
  const t = process.env.ENVD_ACCESS_TOKEN
  return t ? { 'X-Access-Token': t } : {}
}

test('metadata is stored, returned and replaced on overwrite', T, async (t) => {
  const dir = await makeTempDir(t)
  const sandbox = await createSandbox()
  const path = join(dir, 'meta.txt')
  const metadata = { author: 'mish', purpose: 'upload' }
  const info = await sandbox.files.write(path, 'with metadata', { metadata })
  assert.deepEqual(info.metadata, metadata)
  assert.deepEqual((await sandbox.files.getInfo(path)).metadata, metadata)
  const octet = await sandbox.files.write(path, 'octet', { metadata: { k: 'v' }, useOctetStream: true })
  assert.deepEqual(octet.metadata, { k: 'v' })
  assert.deepEqual((await sandbox.files.getInfo(path)).metadata, { k: 'v' })
  const cleared = await sandbox.files.write(path, 'plain')
  assert.equal(cleared.metadata, undefined)
  assert.equal((await sandbox.files.getInfo(path)).metadata, undefined)
  const infos = await sandbox.files.write(
    [{ path: join(dir, 'm1'), data: '1' }, { path: join(dir, 'm2'), data: '2' }],
    { metadata: { source: 'suite' } },
  )
  for (const i of infos) {
    assert.deepEqual(i.metadata, { source: 'suite' })
    assert.deepEqual((await sandbox.files.getInfo(i.path)).metadata, { source: 'suite' })
  }
  // Over the 4096-byte budget: refused before anything is written.
  await assert.rejects(
    sandbox.files.write(join(dir, 'too-big'), 'x', { metadata: { k: 'v'.repeat(5000) } }),
    { name: 'InvalidArgumentError' },
  )
  await assert.rejects(stat(join(dir, 'too-big')), { code: 'ENOENT' })
})

test('read errors: missing file, directory, device', T, async (t) => {
  const dir = await makeTempDir(t)
  const sandbox = await createSandbox()
  await assert.rejects(sandbox.files.read(join(dir, 'missing.txt')), (err) => {
    assert.equal(err.name, 'FileNotFoundError')
    assert.match(err.message, /does not exist/)
    return true
  })
  await assert.rejects(sandbox.files.read(dir), { name: 'InvalidArgumentError' })
  await assert.rejects(sandbox.files.read('/dev/zero'), { name: 'InvalidArgumentError' })
  await mkdir(join(dir, 'adir'))
  await assert.rejects(sandbox.files.write(join(dir, 'adir'), 'x'), { name: 'InvalidArgumentError' })
  await writeFile(join(dir, 'afile'), 'x')
  await assert.rejects(sandbox.files.read(join(dir, 'afile'), { user: 'no-such-user' }), { name: 'AuthenticationError' })
})

test('user option: files are owned by the user', T, async (t) => {
  const dir = await makeTempDir(t)
  const sandbox = await createSandbox()
  const path = join(dir, 'root-owned.txt')
  await sandbox.files.write(path, 'r', { user: 'root' })
  const st = await stat(path)
  assert.equal(st.uid, 0)
  assert.equal(await sandbox.files.read(path, { user: 'root' }), 'r')
})

// E2B's SDK watch tests wait for a WRITE event under the file's own name
// after files.write; the temp-file-and-rename upload must still give one.
test('watchDir sees a WRITE event for the file files.write replaced', T, async (t) => {
  const dir = await makeTempDir(t)
  const sandbox = await createSandbox()
  const path = join(dir, 'watched.txt')
  await sandbox.files.write(path, 'first')
  let resolveWrite
  const sawWrite = new Promise((resolve) => { resolveWrite = resolve })
  const handle = await sandbox.files.watchDir(dir, (event) => {
    if (event.type === FilesystemEventType.WRITE && event.name === 'watched.txt') resolveWrite()
  })
  try {
    await sandbox.files.write(path, 'second')
    await sawWrite
  } finally {
    await handle.stop()
  }
  assert.equal(await readFile(path, 'utf8'), 'second')
})
