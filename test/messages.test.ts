import test from 'ava';
import { pack } from 'msgpackr';
import { decode, encode, MessageError, TrainTaskSchema, ShardDescriptorSchema, HeartbeatSchema } from '../ts/core/messages.ts';
import { ModelSpecSchema, TrainingSchema } from '../ts/core/config/experiment.ts';
import { buildModel } from '../ts/core/model.ts';
import { checkFits, decodeWeights, encodeWeights, readWeights, writeWeights } from '../ts/core/weights.ts';

const task = {
  experiment: 'e1', run_id: 'abc', round: 2, task_id: '4f9a2c9e-3f5e-4b8e-9c1d-2a7b6e5d4c3b',
  model: ModelSpecSchema.parse({ width: 4 }), training: TrainingSchema.parse({}),
  weights: { id: 'b1'.repeat(16), owner: 'director', bytes: 10, chunks: 1, chunk_bytes: 10, sha256: 'a'.repeat(64) }, max_update_norm: 25,
};

test('a training task survives a msgpack round trip unchanged', (t) => {
  t.deepEqual(decode(TrainTaskSchema, encode(TrainTaskSchema, task), 'training task'), task);
});

test('a message that is not msgpack is rejected, naming the message kind', (t) => {
  const error = t.throws(() => decode(HeartbeatSchema, new Uint8Array([0xc1, 0xff, 0x00]), 'heartbeat'));
  t.true(error instanceof MessageError);
  t.regex(error!.message, /malformed heartbeat/);
});

test('a message with a wrong or missing field names the field', (t) => {
  const error = t.throws(() => decode(TrainTaskSchema, pack({ ...task, round: 'two' }), 'training task'));
  t.regex(error!.message, /malformed training task: round: /);
  const missing = t.throws(() => decode(ShardDescriptorSchema, pack({ envoy: 'x' }), 'shard descriptor'));
  t.regex(missing!.message, /description/);
});

test('a name that is not one subject token is refused wherever it appears (CR/LF, dots, wildcards)', (t) => {
  for (const bad of ['a\r\nPUB x 1', 'a.b', 'a*', '>', 'a b', '', 'x'.repeat(65)]) {
    t.throws(() => decode(HeartbeatSchema, pack({ envoy: bad, busy: false }), 'heartbeat'), { instanceOf: MessageError }, JSON.stringify(bad));
    t.throws(() => decode(TrainTaskSchema, pack({ ...task, experiment: bad }), 'training task'), { instanceOf: MessageError });
  }
});

test('an error reply names where a message was wrong without repeating what was sent', (t) => {
  const secret = 'PATIENT-NAME-'.repeat(20);
  const error = t.throws(() => decode(TrainTaskSchema, pack({ ...task, training: { ...task.training, optimizer: secret } }), 'training task')) as MessageError;
  t.regex(error.brief, /malformed training task: training\.optimizer/);
  t.false(error.brief.includes('PATIENT'), error.brief);
  t.true(error.brief.length <= 300);
});

test('a task carries no subject of the sender\'s choosing: result and blob subjects are derived by the receiver', (t) => {
  t.throws(() => decode(TrainTaskSchema, pack({ ...task, result_subject: 'evil.subject' }), 'training task'), { message: /result_subject/ });
  t.throws(() => decode(TrainTaskSchema, pack({ ...task, weights: { ...task.weights, subject: 'evil.subject' } }), 'training task'), { message: /subject/ });
});

test('an unexpected extra field is rejected rather than silently carried', (t) => {
  const error = t.throws(() => decode(HeartbeatSchema, pack({ envoy: 'a', busy: false, weights: [1, 2] }), 'heartbeat'));
  t.regex(error!.message, /weights/);
});

test('model weights round-trip through their wire format bit for bit', (t) => {
  const model = buildModel(ModelSpecSchema.parse({ width: 4, seed: 3 }));
  const weights = readWeights(model);
  const back = decodeWeights(encodeWeights(weights));
  t.deepEqual(back.manifest, weights.manifest);
  t.deepEqual(Array.from(back.values), Array.from(weights.values));
  const other = buildModel(ModelSpecSchema.parse({ width: 4, seed: 4 }));
  t.notDeepEqual(Array.from(readWeights(other).values), Array.from(weights.values), 'seeds give different initial weights');
  writeWeights(other, back);
  t.deepEqual(Array.from(readWeights(other).values), Array.from(weights.values));
});

test('the same seed gives the same initial weights', (t) => {
  const a = readWeights(buildModel(ModelSpecSchema.parse({ width: 4, seed: 9 })));
  const b = readWeights(buildModel(ModelSpecSchema.parse({ width: 4, seed: 9 })));
  t.deepEqual(Array.from(a.values), Array.from(b.values));
});

test('weights for another architecture are refused with the first mismatching tensor named', (t) => {
  const small = readWeights(buildModel(ModelSpecSchema.parse({ width: 4 })));
  const big = buildModel(ModelSpecSchema.parse({ width: 8 }));
  t.regex(t.throws(() => checkFits(big, small))!.message, /tensor 0 is conv0\/kernel \[3,3,1,4\], the model expects conv0\/kernel \[3,3,1,8\]/);
  t.regex(t.throws(() => decodeWeights(new Uint8Array([1, 2, 3])))!.message, /weights payload/);
});
