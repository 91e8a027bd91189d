import test from 'ava';
import { randomBytes } from 'node:crypto';
import { connectNats, type NatsConnection } from '../ts/core/transport/connection.ts';
import { chunkBytesFor, fetchBlob, offerBlob } from '../ts/core/transport/blobs.ts';
import { natsForTests, type LocalNats } from './helpers/nats.ts';

let nats: LocalNats;
let owner: NatsConnection;
let reader: NatsConnection;

test.before(async () => {
  nats = await natsForTests();
  owner = await connectNats(nats.url, 'owner');
  reader = await connectNats(nats.url, 'reader');
});
test.after.always(async () => {
  await owner?.close();
  await reader?.close();
  await nats?.stop();
});

test('a 9 MB payload crosses a server with the default 1 MiB max_payload, byte for byte', async (t) => {
  t.is(owner.info?.max_payload, 1024 * 1024, 'the server keeps its default limit');
  const payload = randomBytes(9 * 1024 * 1024 + 123);
  const blob = offerBlob(owner, 'fed', payload, chunkBytesFor(owner));
  t.true(blob.ref.chunks >= 9);
  let progressCalls = 0;
  const received = await fetchBlob(reader, blob.ref, { onProgress: () => progressCalls++ });
  blob.close();
  t.is(progressCalls, blob.ref.chunks);
  t.true(Buffer.from(received).equals(payload));
});

test('one offered blob serves several readers (a global model to every envoy)', async (t) => {
  const payload = randomBytes(3 * 1024 * 1024);
  const blob = offerBlob(owner, 'fed', payload, 256 * 1024);
  const [a, b] = await Promise.all([fetchBlob(reader, blob.ref), fetchBlob(owner, blob.ref)]);
  blob.close();
  t.true(Buffer.from(a).equals(payload));
  t.true(Buffer.from(b).equals(payload));
});

test('a blob whose owner is gone fails with a clear error, not a hang', async (t) => {
  const blob = offerBlob(owner, 'fed', randomBytes(1000), 500);
  blob.close();
  await owner.flush();
  const error = await t.throwsAsync(fetchBlob(reader, blob.ref, { timeoutMs: 500, retries: 0 }));
  t.regex(error!.message, /fetching blob .* chunk \d\/2 failed/);
});

test('a payload altered in transit fails its SHA-256 check', async (t) => {
  const payload = randomBytes(2000);
  const blob = offerBlob(owner, 'fed', payload, 1000);
  const error = await t.throwsAsync(fetchBlob(reader, { ...blob.ref, sha256: 'f'.repeat(64) }));
  blob.close();
  t.regex(error!.message, /failed its SHA-256 check/);
});
