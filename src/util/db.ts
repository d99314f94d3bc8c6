/**
 * The part of a level database the stores use: a `Level` (LevelDB on disk) and a
 * `MemoryLevel` (tests, the simulator) both fit. A structural interface of our own, because
 * abstract-level's class types (their hooks) make a Level assignable to AbstractLevel or not
 * depending on the order in which tsc happens to check files.
 */
export interface Range {
  gt?: string
  gte?: string
  lt?: string
  lte?: string
  limit?: number
  reverse?: boolean
}

export type BatchOp = { type: 'put', key: string, value: string } | { type: 'del', key: string }

export interface KeyValueDb {
  get (key: string): Promise<string | undefined>
  put (key: string, value: string, options?: { sync?: boolean }): Promise<void>
  del (key: string, options?: { sync?: boolean }): Promise<void>
  batch (ops: BatchOp[], options?: { sync?: boolean }): Promise<void>
  iterator (range?: Range): AsyncIterable<[string, string]>
  keys (range?: Range): AsyncIterable<string>
  values (range?: Range): AsyncIterable<string>
}
