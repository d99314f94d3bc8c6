#!/usr/bin/env node
// Entry point of the `bizra` command. Plain JavaScript so that it can explain itself on a
// Node.js too old to run the TypeScript sources (which need type stripping, Node >= 22.6).
const [major, minor] = process.versions.node.split('.').map(Number)
if (major < 22 || (major === 22 && minor < 6)) {
  process.stderr.write(`bizra: needs Node.js >= 22.6 (this is ${process.version}); run it through npm (npm run bizra -- ..., npx bizra ...), which uses the Node 24 the project pins\n`)
  process.exit(2)
}
// Type stripping is on by default from Node 23.6; on 22.6+ it needs this flag set before the import.
if (major === 22 || (major === 23 && minor < 6)) {
  process.stderr.write('bizra: on Node 22 run with NODE_OPTIONS=--experimental-strip-types (or use npm, which uses Node 24)\n')
}
const { main } = await import('../src/cli/main.ts')
process.exitCode = await main(process.argv.slice(2))
