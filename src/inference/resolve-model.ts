import { statSync } from 'node:fs'
import { isAbsolute, join, resolve } from 'node:path'
import { FileError } from '../util/fs.ts'

/**
 * The file a model name stands for: a path as given (anything with a slash), else
 * `<dir>/<name>` or `<dir>/<name>.gguf`. Throws FileError naming what was looked for.
 */
export function resolveModelFile (dir: string, nameOrPath: string): string {
  const candidates = isAbsolute(nameOrPath) || nameOrPath.includes('/')
    ? [resolve(nameOrPath)]
    : [join(dir, nameOrPath), join(dir, `${nameOrPath}.gguf`)]
  for (const c of candidates) {
    try {
      if (statSync(c).isFile()) return c
    } catch {
      // try the next spelling
    }
  }
  throw new FileError(candidates[candidates.length - 1]!, `no such model file (models live in ${dir}; list them with: bizra models list)`)
}
