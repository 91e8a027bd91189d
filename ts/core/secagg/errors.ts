/** Addon errors ("[Code] text") restated so that the log says which stage and which envoy failed. */
export class SecAggProtocolError extends Error {
  override name = 'SecAggProtocolError';
  constructor(message: string, readonly code?: string) { super(message); }
}

export function protocolError(context: string, error: unknown): SecAggProtocolError {
  const message = (error as Error)?.message ?? String(error);
  const code = /^\[(\w+)\]/.exec(message)?.[1];
  return new SecAggProtocolError(`${context}: ${message}`, code);
}

export function asBuffer(bytes: Uint8Array): Buffer {
  return Buffer.isBuffer(bytes) ? bytes : Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
}
