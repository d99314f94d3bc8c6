import { pino, type Logger } from 'pino'

/** JSON lines to stderr (DESIGN.md "logs"). */
export function createLogger (level: string, name = 'bizra'): Logger {
  return pino({ name, level, base: undefined, timestamp: pino.stdTimeFunctions.isoTime }, pino.destination({ fd: 2, sync: false }))
}

export type { Logger }
