/** Writes a command's result: JSON with --json, else the human text. */
export function emit (json: boolean, data: unknown, human: string | (() => string)): void {
  if (json) {
    process.stdout.write(JSON.stringify(data) + '\n')
  } else {
    process.stdout.write((typeof human === 'function' ? human() : human) + '\n')
  }
}

export function passphrase (): string | undefined {
  const p = process.env.BIZRA_PASSPHRASE
  return p === undefined || p === '' ? undefined : p
}
