import { closeSync, fsyncSync, linkSync, openSync, readFileSync, unlinkSync, writeSync } from 'node:fs'
import { randomBytes } from 'node:crypto'
import { dirname } from 'node:path'

/** A user-facing error about one file: the message names the file and what is wrong with it. */
export class FileError extends Error {
  static override readonly name: string = 'FileError'
  override readonly name: string = 'FileError'
  readonly path: string

  constructor (path: string, problem: string) {
    super(`${path}: ${problem}`)
    this.path = path
  }
}

/**
 * Writes `data` to `path` only if `path` does not exist, atomically: the bytes go to a
 * temporary file that is fsynced and then hard-linked into place, so a crash leaves either
 * no file or the whole file, and an existing file is never touched.
 */
export function writeFileExclusive (path: string, data: string | Uint8Array, mode = 0o600): void {
  const tmp = `${path}.tmp-${process.pid}-${randomBytes(4).toString('hex')}`
  const fd = openSync(tmp, 'wx', mode)
  try {
    const bytes = typeof data === 'string' ? Buffer.from(data) : data
    let off = 0
    while (off < bytes.length) off += writeSync(fd, bytes, off)
    fsyncSync(fd)
  } finally {
    closeSync(fd)
  }
  try {
    linkSync(tmp, path)
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'EEXIST') {
      throw new FileError(path, 'already exists; refusing to overwrite it')
    }
    throw err
  } finally {
    unlinkSync(tmp)
  }
  fsyncDir(dirname(path))
}

function fsyncDir (dir: string): void {
  let fd: number | undefined
  try {
    fd = openSync(dir, 'r')
    fsyncSync(fd)
  } catch {
    // some filesystems do not allow fsync on a directory; the link itself is done
  } finally {
    if (fd !== undefined) closeSync(fd)
  }
}

/** Reads a UTF-8 file, turning ENOENT/EACCES/EISDIR into a FileError naming the file. */
export function readTextFile (path: string, what = 'file'): string {
  try {
    return readFileSync(path, 'utf8')
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code
    if (code === 'ENOENT') throw new FileError(path, `${what} not found`)
    if (code === 'EACCES') throw new FileError(path, `${what} is not readable (permission denied)`)
    if (code === 'EISDIR') throw new FileError(path, `${what} is a directory`)
    throw new FileError(path, `cannot read ${what}: ${(err as Error).message}`)
  }
}
