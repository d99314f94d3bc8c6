/**
 * Child process of the kill -9 test (test/integration/dag.test.ts): appends whole task chains
 * to a LevelDB, one to three tasks per round, until killed, and prints the number of sessions
 * written after every round. A round's tasks go either in one appendMany (one atomic batch) or
 * as concurrent appendMany calls, one per task, which the store group-commits into a shared
 * batch. Resumes where an earlier (killed) run left off.
 *
 * usage: node test/helpers/dag-writer.ts DB_DIR SEED
 */
import { Level } from 'level'
import { SessionDag, type AppendEntry } from '../../src/state/store.ts'
import type { SessionState } from '../../src/state/dag.ts'
import { mulberry32 } from './random.ts'

const [dir, seed] = process.argv.slice(2)
if (dir === undefined || seed === undefined) throw new Error('usage: dag-writer.ts DB_DIR SEED')
const rand = mulberry32(Number(seed))
const dag = new SessionDag(new Level<string, string>(dir))

// sessions on disk (what is reported), and the number the next one is named with: concurrent
// appends may share a batch or not, so a kill can leave a gap in the numbering
const existing = await dag.sessions()
let written = existing.length
let next = existing.reduce((max, name) => Math.max(max, Number(name.slice('task-'.length)) + 1), 0)
let lastHead = next > 0 ? (await dag.head(`task-${next - 1}`))?.hash : undefined

for (;;) {
  const perTask: AppendEntry[][] = []
  const tasks = 1 + Math.floor(rand() * 3)
  for (let t = 0; t < tasks; t++) {
    const entries: AppendEntry[] = []
    perTask.push(entries)
    const session = `task-${next + t}`
    const states: SessionState[] = ['init', 'active', 'computing']
    if (rand() < 0.3) states.push('active', 'computing') // a retry
    states.push('validated', 'committed')
    // the first task of a batch sometimes branches off the previous batch's last task
    const branchFrom = t === 0 && lastHead !== undefined && rand() < 0.3 ? [lastHead] : undefined
    states.forEach((state, i) => {
      const filler = 'x'.repeat(Math.floor(rand() * 4096)) // varies the batch size
      entries.push({ session, state, payload: { session, step: i, filler }, parents: i === 0 ? branchFrom : undefined })
    })
  }
  const together = rand() < 0.5
  const nodes = together
    ? await dag.appendMany(perTask.flat())
    : (await Promise.all(perTask.map(async entries => dag.appendMany(entries)))).flat()
  written += tasks
  next += tasks
  lastHead = nodes.at(-1)!.hash
  process.stdout.write(`${written}\n`)
}
