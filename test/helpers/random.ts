/** The seeded PRNG every randomised test and benchmark uses, so each replays. */
export { mulberry32 } from '../../src/util/random.ts'
