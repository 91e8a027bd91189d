/**
 * tfjs treats a seed of 0 as no seed at all (a fresh random draw in every process), so a model whose seed
 * works out to 0 would differ between the director and each envoy. Every seed handed to a tfjs initializer
 * or random op goes through here; 0 maps to a fixed seed no other layer uses (layer offsets stay below 1000).
 */
const INSTEAD_OF_ZERO = 999_983;

export function tfSeed(n: number): number {
  return n === 0 ? INSTEAD_OF_ZERO : n;
}
