/** Dealing a secure round into sub-cohorts, and finding the envoy that spoils its sub-cohort round after round. */
import test from 'ava';
import { dealSubCohorts, SubCohortWatch } from '../ts/director/round/sub-cohorts.ts';

const TEN = 'abcdefghij'.split('');

test('sub-cohorts are disjoint, cover the round and are at least the size', (t) => {
  for (const [n, size, groups] of [[10, 3, 3], [9, 3, 3], [4, 2, 2], [5, 3, 1], [2, 3, 1], [10, 0, 1]] as const) {
    const envoys = TEN.slice(0, n);
    const dealt = dealSubCohorts(envoys, size);
    t.is(dealt.length, groups, `${n} envoys in sub-cohorts of ${size}`);
    t.deepEqual(dealt.flat().sort(), envoys);
    if (groups > 1) t.true(dealt.every((g) => g.length >= size && g.length <= size + 1), JSON.stringify(dealt));
  }
});

test('the partners change from round to round', (t) => {
  const partnersOfA = new Set<string>();
  for (let i = 0; i < 20; i++) dealSubCohorts(TEN, 3).find((g) => g.includes('a'))!.forEach((e) => partnersOfA.add(e));
  t.true(partnersOfA.size > 4, `a met ${[...partnersOfA].join(', ')}`);
});

test('suspects are dealt apart, the most suspected first', (t) => {
  const suspicion = (e: string) => ({ c: 2, f: 1, i: 1 } as Record<string, number>)[e] ?? 0;
  for (let i = 0; i < 20; i++) {
    const dealt = dealSubCohorts(TEN, 3, suspicion);
    for (const g of dealt) t.true(g.filter((e) => suspicion(e) > 0).length <= 1, JSON.stringify(dealt));
  }
});

test('the watch excludes the envoy in a refused sub-cohort round after round, and clears its partners', (t) => {
  const watch = new SubCohortWatch(3);
  t.deepEqual(watch.record([{ members: ['a', 'b', 'j'], refused: 'too large' }, { members: ['c', 'd', 'e'] }]), []);
  t.is(watch.suspicion('a'), 1);
  t.deepEqual(watch.record([{ members: ['c', 'j', 'f'], refused: 'too large' }, { members: ['a', 'g', 'h'] }, { members: ['b', 'd', 'e'] }]), []);
  t.is(watch.suspicion('a'), 0, 'a sub-cohort that passes clears its members');
  t.is(watch.suspicion('j'), 2);
  const excluded = watch.record([{ members: ['j', 'd', 'h'], refused: 'too large' }, { members: ['c', 'a', 'b'] }]);
  t.deepEqual(excluded.map((e) => e.envoy), ['j']);
  t.regex(excluded[0].reason, /refused in 3 rounds in a row/);
  t.true(watch.isExcluded('j'));
  t.false(watch.isExcluded('d'));
});

test('one secure sum of the whole round tells the watch nothing', (t) => {
  const watch = new SubCohortWatch(1);
  t.deepEqual(watch.record([{ members: ['a', 'b', 'c'], refused: 'too large' }]), []);
  t.is(watch.suspicion('a'), 0);
});

test("each hospital's policy judges its own sub-cohort: sums of two are refused by a default envoy (at least three)", async (t) => {
  const { startTestFederation } = await import('./helpers/federation.ts');
  const { ExperimentSchema } = await import('../ts/core/config/experiment.ts');
  const envoys = ['a', 'b', 'c', 'd'];
  const fed = await startTestFederation({ envoys, protectedDefaults: true, privacy: {}, experiment: { name: 'warmup', rounds: 1, model: { width: 4, seed: 1 } } });
  t.teardown(() => fed.stop());
  const config = ExperimentSchema.parse({ ...fed.config, name: 'pairs', rounds: 1, min_envoys_to_start: 4, secagg: { enabled: true, sub_cohort_size: 2 } });
  const { final } = await fed.run(undefined, config);
  t.is(final.type, 'failed');
  t.regex(final.message!, /cannot run: 4 of 4 envoys refuse it by their privacy policy/);
  t.regex(final.message!, /secure_aggregation\.min_cohort: a secure sum of 2 hospitals, fewer than 3/);
  t.regex(fed.log('director'), /secure aggregation in 2 sub-cohorts/);
});
