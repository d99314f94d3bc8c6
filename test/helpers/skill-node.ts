/**
 * A node in a child process with one extra skill that works until it is canceled, for tests
 * that kill a provider mid-task: `node test/helpers/skill-node.ts HOME SWARM_KEY BOOTSTRAP SKILL_ID`. Prints
 * `{"event":"ready",peerId}` once started and `{"event":"started",taskId}` when a task of
 * that skill begins.
 */
import { BizraNode } from '../../src/node/node.ts'

const [home, swarmKey, bootstrap, skill] = process.argv.slice(2)
const node = await BizraNode.start({
  home: home!,
  logger: false,
  ipc: false,
  config: { listen: ['/ip4/127.0.0.1/tcp/0'], bootstrap: [bootstrap!], api: null, swarmKey, heartbeatMs: 200 }
})
node.skills.register({ id: skill ?? 'slow', name: 'Slow', description: 'Works until canceled', tags: ['test'], inputModes: ['text/plain'], outputModes: ['text/plain'] }, async (_message, ctx) => {
  process.stdout.write(JSON.stringify({ event: 'started', taskId: ctx.taskId }) + '\n')
  await new Promise((_resolve, reject) => ctx.signal.addEventListener('abort', () => reject(ctx.signal.reason), { once: true }))
  return { parts: [{ text: 'unreachable' }] }
})
process.stdout.write(JSON.stringify({ event: 'ready', peerId: node.peerId }) + '\n')
process.on('SIGTERM', () => { void node.stop().then(() => process.exit(0)) })
