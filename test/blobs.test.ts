/**
 * Blob transfers on a provisioned nats-server (TLS, nkeys, per-identity permissions): big payloads through
 * the default 1 MiB limit, one offer serving its receivers, encryption on the wire, and who cannot fetch.
 */
import test from 'ava';
import { randomBytes } from 'node:crypto';
import { pack, unpack } from 'msgpackr';
import { Logger } from '../ts/core/log.ts';
import type { Bus } from '../ts/core/transport/bus.ts';
import { connectBus } from '../ts/core/transport/connection.ts';
import { chunkBytesFor, fetchBlob, offerBlob } from '../ts/core/transport/blobs.ts';
import { subjects } from '../ts/core/subjects.ts';
import { provisionLocalFederation, type LocalSecureFederation } from '../ts/local/provisioned.ts';
import { tempDir } from './helpers/paths.ts';

let fed: LocalSecureFederation;
let owner: Bus;
let reader: Bus;
let other: Bus;

const join = (name: string) => connectBus({ url: fed.provisioned.natsUrl, kit: fed.provisioned.kits[name] }, name, new Logger(name, 'error'));

test.before(async () => {
  fed = await provisionLocalFederation({ dir: tempDir(), federation: 'fed', envoys: ['reader', 'other'] });
  [owner, reader, other] = await Promise.all([join('director'), join('reader'), join('other')]);
});
test.after.always(async () => {
  await Promise.all([owner, reader, other].map((b) => b?.close()));
  await fed?.nats.stop();
});

test('a 9 MB payload crosses a server with the default 1 MiB max_payload, byte for byte', async (t) => {
  t.is(owner.nc.info?.max_payload, 1024 * 1024, 'the server keeps its default limit');
  const payload = randomBytes(9 * 1024 * 1024 + 123);
  const blob = offerBlob(owner, payload, ['reader'], chunkBytesFor(owner));
  const ref = blob.refFor('reader');
  t.true(ref.chunks >= 9);
  let progressCalls = 0;
  const received = await fetchBlob(reader, ref, { onProgress: () => progressCalls++ });
  blob.close();
  t.is(progressCalls, ref.chunks);
  t.true(Buffer.from(received).equals(payload));
});

test('one offered blob serves each of its receivers (a global model to every envoy)', async (t) => {
  const payload = randomBytes(3 * 1024 * 1024);
  const blob = offerBlob(owner, payload, ['reader', 'other'], 256 * 1024);
  const [a, b] = await Promise.all([fetchBlob(reader, blob.refFor('reader')), fetchBlob(other, blob.refFor('other'))]);
  blob.close();
  t.true(Buffer.from(a).equals(payload));
  t.true(Buffer.from(b).equals(payload));
});

test('the bytes on the wire are ciphertext: the NATS server never sees the payload', async (t) => {
  const payload = Buffer.alloc(200_000, 7); // an easily recognised plaintext
  const blob = offerBlob(owner, payload, ['reader'], 64 * 1024);
  const ref = blob.refFor('reader');
  t.truthy(ref.key, 'a secure federation encrypts every blob');
  // What travels: request chunk 0 as the receiver does and look at the bytes that come back.
  const subject = subjects.blob('fed', 'director', 'reader', ref.id);
  const { bytes } = await reader.trust.wrap({ subject, kind: 'blob_chunk', to: 'director', seal: false }, pack({ index: 0 }));
  const chunk = unpack((await reader.nc.request(subject, bytes, { timeout: 5000 })).data) as { data: Uint8Array };
  t.is(chunk.data.length, 64 * 1024);
  const sevens = chunk.data.filter((b) => b === 7).length;
  t.true(sevens < chunk.data.length / 50, `${sevens} of ${chunk.data.length} bytes are the plaintext's`);
  await t.throwsAsync(fetchBlob(reader, { ...ref, key: undefined }, { retries: 0 }), { message: /not encrypted, which a secure federation never accepts/ });
  await t.throwsAsync(fetchBlob(reader, { ...ref, key: randomBytes(32) }), { message: /does not decrypt with its key/ });
  t.true(Buffer.from(await fetchBlob(reader, ref)).equals(payload));
  blob.close();
});

test('a blob offered to one receiver cannot be fetched by another participant', async (t) => {
  const payload = randomBytes(4000);
  const blob = offerBlob(owner, payload, ['reader'], 1000);
  const ref = blob.refFor('reader');
  t.throws(() => blob.refFor('other'), { message: /not offered to other/ });
  // `other` asks on its own subject for the blob: nobody offers it there.
  await t.throwsAsync(fetchBlob(other, ref, { timeoutMs: 1000, retries: 0 }), { message: /fetching blob .* failed/ });
  // Nor may it publish on reader's subject (the server's permissions refuse it).
  const errors: string[] = [];
  void (async () => { for await (const s of other.nc.status()) errors.push(String(s.data)); })();
  other.nc.publish(subjects.blob('fed', 'director', 'reader', ref.id), new Uint8Array([1]));
  await other.nc.flush();
  await new Promise((r) => setTimeout(r, 300));
  t.true(errors.some((e) => /PERMISSIONS_VIOLATION/.test(e)), errors.join(', '));
  t.true(Buffer.from(await fetchBlob(reader, ref)).equals(payload), 'the receiver still gets it');
  blob.close();
});

test('a blob whose owner is gone fails with a clear error, not a hang', async (t) => {
  const blob = offerBlob(owner, randomBytes(1000), ['reader'], 500);
  const ref = blob.refFor('reader');
  blob.close();
  await owner.flush();
  const error = await t.throwsAsync(fetchBlob(reader, ref, { timeoutMs: 500, retries: 0 }));
  t.regex(error!.message, /fetching blob .* chunk \d\/\d+ failed: nobody offers it/);
});

test('a payload altered in transit fails its SHA-256 check', async (t) => {
  const payload = randomBytes(2000);
  const blob = offerBlob(owner, payload, ['reader'], 1000);
  const error = await t.throwsAsync(fetchBlob(reader, { ...blob.refFor('reader'), sha256: 'f'.repeat(64) }));
  blob.close();
  t.regex(error!.message, /failed its SHA-256 check/);
});

test('a ref whose size does not fit its chunks, or that is too large, is refused before any fetch', async (t) => {
  const blob = offerBlob(owner, randomBytes(2000), ['reader'], 1000);
  const ref = blob.refFor('reader');
  await t.throwsAsync(fetchBlob(reader, { ...ref, chunks: 1 }), { message: /cannot hold 2\d+ bytes/ });
  await t.throwsAsync(fetchBlob(reader, ref, { maxBytes: 100 }), { message: /more than the 100 accepted/ });
  blob.close();
});
