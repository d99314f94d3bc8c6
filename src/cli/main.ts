import { UsageError } from './args.ts'
import { FileError } from '../util/fs.ts'
import { ConstitutionError } from '../governance/constitution.ts'
import * as init from './commands/init.ts'
import * as start from './commands/start.ts'
import * as identity from './commands/identity.ts'
import * as swarmKey from './commands/swarm-key.ts'
import * as envelope from './commands/envelope.ts'
import * as gates from './commands/gates.ts'
import * as swarm from './commands/swarm.ts'
import * as pattern from './commands/pattern.ts'
import * as proof from './commands/proof.ts'
import * as task from './commands/task.ts'
import * as models from './commands/models.ts'
import * as infer from './commands/infer.ts'
import * as sim from './commands/sim.ts'
import { status, peers, dial } from './commands/control.ts'
import { NodeNotRunningError, IpcRemoteError } from '../node/ipc.ts'

interface Command {
  usage: string
  run: (argv: string[]) => Promise<number>
}

const COMMANDS: Record<string, Command> = {
  init,
  start,
  status,
  peers,
  dial,
  identity,
  'swarm-key': swarmKey,
  swarm,
  envelope,
  gates,
  pattern,
  proof,
  agents: task.agents,
  models,
  task,
  infer,
  sim
}

const HELP = `bizra — a sovereign node of the BIZRA federation

Every command takes --home DIR (default $BIZRA_HOME, else ./.bizra) and --json.
Set BIZRA_PASSPHRASE to create or unlock an encrypted identity.

${Object.values(COMMANDS).map(c => c.usage).join('\n')}
`

/** Runs the CLI; returns the exit code. Errors the user can fix are one line on stderr, exit 2. */
export async function main (argv: string[]): Promise<number> {
  const [name, ...rest] = argv
  if (name === undefined || name === '--help' || name === '-h' || name === 'help') {
    process.stdout.write(HELP)
    return name === undefined ? 2 : 0
  }
  const command = COMMANDS[name]
  if (command === undefined) {
    process.stderr.write(`bizra: unknown command "${name}" (see bizra --help)\n`)
    return 2
  }
  if (rest.includes('--help') || rest.includes('-h')) {
    process.stdout.write(command.usage + '\n')
    return 0
  }
  try {
    return await command.run(rest)
  } catch (err) {
    if (err instanceof UsageError || err instanceof FileError || err instanceof ConstitutionError || err instanceof NodeNotRunningError || err instanceof IpcRemoteError) {
      process.stderr.write(`bizra: ${err.message.replace(/\n/g, ' ')}\n`)
      return 2
    }
    if (process.env.BIZRA_DEBUG !== undefined) process.stderr.write(`${(err as Error)?.stack ?? String(err)}\n`)
    process.stderr.write(`bizra: internal error: ${(err as Error)?.message ?? String(err)} (set BIZRA_DEBUG=1 for a stack trace)\n`)
    return 1
  }
}
