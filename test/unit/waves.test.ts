/** Rollouts in waves: `--waves` parsed, hosts cut into waves, flags and the spec's `rollout` combined. */
import { describe, expect, it } from 'vitest';
import { rolloutOf } from '../../client/operation-command';
import { UsageError } from '../../client/errors';
import { rolloutSchema } from '../../model/schema';
import { parseWaves, waveCheck, waveGroups } from '../../model/waves';

const hosts = (n: number) => Array.from({ length: n }, (_, i) => `h${i + 1}`);

describe('waves', () => {
  it('parses counts and percentages, and says which entry is wrong', () => {
    expect(parseWaves('1,25%, 100%')).toEqual([1, '25%', '100%']);
    expect(() => parseWaves('1,0')).toThrow('entry 2 ("0") a count must be 1 or more');
    expect(() => parseWaves('1,150%')).toThrow('entry 2 ("150%") must be a host count');
    expect(() => parseWaves('1,,2')).toThrow('entry 2 ("")');
    expect(() => parseWaves('one')).toThrow('entry 1 ("one")');
  });

  it('cuts hosts in order; the last wave takes the rest; no empty waves', () => {
    expect(waveGroups(hosts(5), [1, 2, 2])).toEqual([['h1'], ['h2', 'h3'], ['h4', 'h5']]);
    expect(waveGroups(hosts(10), [1, '25%', '100%'])).toEqual([['h1'], ['h2', 'h3', 'h4'], hosts(10).slice(4)]);
    expect(waveGroups(hosts(10), [1, 2])).toEqual([['h1'], hosts(10).slice(1)]);
    expect(waveGroups(hosts(2), [1, 5, 5])).toEqual([['h1'], ['h2']]);
    expect(waveGroups(hosts(3), ['1%', '100%'])).toEqual([['h1'], ['h2', 'h3']]);
    expect(waveGroups(hosts(3), [])).toEqual([hosts(3)]);
  });

  it('--waves and --bake over the spec; the spec only for runs that apply; bad flags named', () => {
    const spec = { rollout: rolloutSchema.parse({ waves: [1, '50%'], bake: '5min' }) };
    expect(rolloutOf({}, spec, 'apply')).toEqual({ waves: [1, '50%'], bakeMs: 300_000 });
    expect(rolloutOf({}, spec, 'plan')).toEqual({});
    expect(rolloutOf({ waves: '2,2' }, spec, 'plan')).toEqual({ waves: [2, 2] });
    expect(rolloutOf({ waves: '2,2', bake: '30s' }, { rollout: rolloutSchema.parse({}) }, 'apply')).toEqual({
      waves: [2, 2],
      bakeMs: 30_000,
    });
    expect(() => rolloutOf({ waves: '1,x' }, spec, 'apply')).toThrow(UsageError);
    expect(() => rolloutOf({ waves: '1,x' }, spec, 'apply')).toThrow('--waves "1,x": entry 2 ("x")');
    expect(() => rolloutOf({ waves: '1', bake: 'soon' }, spec, 'apply')).toThrow('--bake "soon": must be a duration');
    expect(() => rolloutOf({ bake: '1min' }, { rollout: rolloutSchema.parse({}) }, 'apply')).toThrow(
      '--bake needs waves',
    );
  });

  it("--verify-waves, or the spec's rollout.verify with its waves; never without waves", () => {
    const spec = { rollout: rolloutSchema.parse({ waves: [1, '100%'], verify: true }) };
    expect(rolloutOf({}, spec, 'apply')).toEqual({ waves: [1, '100%'], verifyWaves: true });
    expect(rolloutOf({ waves: '2,2' }, spec, 'apply')).toEqual({ waves: [2, 2] });
    expect(rolloutOf({ waves: '2,2', verifyWaves: true }, spec, 'apply')).toEqual({ waves: [2, 2], verifyWaves: true });
    expect(() => rolloutOf({ verifyWaves: true }, { rollout: rolloutSchema.parse({}) }, 'apply')).toThrow(
      '--verify-waves needs waves',
    );
    expect(() => rolloutOf({ waves: '1,1', verifyWaves: true }, spec, 'plan')).toThrow('not with --plan');
    expect(rolloutSchema.safeParse({ verify: true }).error?.issues[0]).toMatchObject({ path: ['verify'] });
    expect(waveCheck('deploy')).toEqual({ workflowType: 'verifyHost', expectsNoChanges: false });
    expect(waveCheck('harden')).toEqual({ workflowType: 'hardenHost', expectsNoChanges: true });
  });

  it('the spec refuses a bake without waves and sizes that are neither counts nor shares', () => {
    expect(rolloutSchema.safeParse({ bake: '5min' }).error?.issues[0]).toMatchObject({ path: ['bake'] });
    expect(rolloutSchema.safeParse({ waves: [0] }).error?.issues[0]?.message).toBe('a count must be 1 or more');
    expect(rolloutSchema.safeParse({ waves: ['101%'] }).success).toBe(false);
  });
});
