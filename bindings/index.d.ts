// Hand-written declarations for the Rust addon loaded by bindings/native.cjs.
// Messages are MessagePack Buffers (readable with msgpackr; field names are
// camelCase, byte fields are Buffers, u32 vectors are little-endian bytes).
// Errors are thrown as `Error` with message "[Code] human text", where Code is
// one of SecAggErrorCode.

export type SecAggErrorCode =
  | 'InvalidParameters'
  | 'WrongRound'
  | 'WrongStage'
  | 'UnknownClient'
  | 'NotANeighbour'
  | 'Duplicate'
  | 'WrongRecipient'
  | 'ShareAuthentication'
  | 'InvalidShare'
  | 'Malformed'
  | 'NonContributoryKey'
  | 'TooFew'
  | 'ConflictingSecretRequest'
  | 'LengthMismatch'
  | 'InputOutOfRange'
  | 'Decode'
  | 'Encode';

/** Parameters every participant of one aggregation round must agree on. */
export interface RoundConfig {
  experimentId: string;
  /** Non-negative integer. */
  round: number;
  /** All client ids selected for the round (u32, distinct). */
  cohort: number[];
  /** Neighbours per client: even, or >= cohort.length - 1 for full SecAgg. */
  neighbours: number;
  /** Shares needed to reconstruct a client's secrets, 1..=neighbours. */
  threshold: number;
  /** Aggregation modulus 2^bits, 1..=32; use the Quantizer's bits. */
  bits: number;
  vectorLen: number;
  /** 32 bytes, determines the neighbour graph. */
  graphSeed: Buffer;
}

/** A message for one client. */
export interface Outgoing {
  recipient: number;
  message: Buffer;
}

export interface AggregateResult {
  /** Sum of the included clients' inputs mod 2^bits. */
  sum: Uint32Array;
  /** Clients whose inputs are in the sum: pass included.length as nSummands. */
  included: number[];
  /** Clients that dropped after sharing keys (their masks were removed). */
  dropped: number[];
}

/** Clip to [-clip, clip] + unbiased stochastic rounding into [0, levels]. */
export class Quantizer {
  /** Sums of up to maxSummands quantized vectors never wrap mod 2^bits. */
  constructor(clip: number, bits: number, maxSummands: number);
  /** Float width of one quantization step (2 * clip / levels). */
  readonly step: number;
  /** Largest code of one element. */
  readonly levels: number;
  readonly bits: number;
  /** Worst-case |error| per coordinate of dequantizeSum(_, n) (n * step + f32 rounding). */
  errorBound(n: number): number;
  /** seed: 32 bytes for deterministic rounding; omitted = OS randomness. */
  quantize(values: Float32Array, seed?: Buffer | null): Uint32Array;
  /** Decode the sum (mod 2^bits) of nSummands quantized vectors. */
  dequantizeSum(sum: Uint32Array, nSummands: number): Float32Array;
}

/** Client side of one round; call the stages in order. */
export class SecAggClient {
  /** seed (32 bytes) only for reproducible tests; omitted = OS randomness. */
  constructor(config: RoundConfig, clientId: number, seed?: Buffer | null);
  readonly clientId: number;
  /** Stage 0 -> AdvertiseKeys. */
  advertiseKeys(): Buffer;
  /** Stage 1: KeysBroadcast -> ShareKeys. */
  shareKeys(keysBroadcast: Buffer): Buffer;
  /** Stage 2: ShareBundle + quantized input (each < 2^bits) -> MaskedInput. Off-thread. */
  maskedInput(shareBundle: Buffer, input: Uint32Array): Promise<Buffer>;
  /** Stage 3: UnmaskRequest -> UnmaskResponse (answered at most once). */
  unmask(unmaskRequest: Buffer): Buffer;
}

/** Director side of one round. receive* throw on bad messages; drop that client. */
export class SecAggServer {
  constructor(config: RoundConfig);
  receiveAdvertise(message: Buffer): void;
  /** Close stage 0 -> KeysBroadcast per client that advertised. */
  finishAdvertise(): Outgoing[];
  receiveShareKeys(message: Buffer): void;
  /** Close stage 1 -> ShareBundle per client that shared keys. */
  finishShareKeys(): Outgoing[];
  /** Adds the masked vector to the running sum. */
  receiveMaskedInput(message: Buffer): void;
  /** Close stage 2 -> UnmaskRequest per client that sent input; later inputs are refused. */
  finishMaskedInput(): Outgoing[];
  /** Verifies every revealed share ([InvalidShare] names the culprit). */
  receiveUnmaskResponse(message: Buffer): void;
  /** Reconstruct secrets, remove masks. Off-thread. */
  finish(): Promise<AggregateResult>;
}

/** Sorted neighbour ids of clientId in the round's graph. */
export function neighboursOf(config: RoundConfig, clientId: number): number[];

/** First len words of the PRG mask of a 32-byte seed (AES-256-CTR, zero IV, LE words). */
export function expandMask(seed: Buffer, len: number): Uint32Array;

export interface MaskTerm {
  seed: Buffer;
  op: 'add' | 'sub';
}

/** Apply masks to a copy of sum and reduce mod 2^bits, off-thread. */
export function unmaskAggregate(sum: Uint32Array, terms: MaskTerm[], bits: number): Promise<Uint32Array>;

export interface ShamirShare {
  /** Holder id; the share is f(holder + 1). */
  holder: number;
  /** 32-byte canonical Ristretto255 scalar. */
  share: Buffer;
}

export interface ShamirSharing {
  /** Feldman commitments (compressed Ristretto points), threshold of them. */
  commitments: Buffer[];
  shares: ShamirShare[];
}

/** Deterministic verifiable split of a 32-byte canonical scalar among holders 0..n-1. */
export function shamirSplit(secret: Buffer, threshold: number, n: number, seed: Buffer): ShamirSharing;

/** Reconstruct from >= threshold shares; throws [InvalidShare] on a wrong share. */
export function shamirReconstruct(commitments: Buffer[], shares: ShamirShare[]): Buffer;
