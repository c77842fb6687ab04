/**
 * The shipped Prometheus alert rules (ops/prometheus/steward-alerts.yml), checked with Debian's promtool: they load,
 * every alert has its unit tests (steward-alerts.test.yml: each fires on the series it is about and stays quiet on
 * healthy ones), the tests pass, and the metric names they read are the ones the workflows emit (model/metrics.ts).
 * drift.test.ts shows one firing in a real Prometheus that scrapes a worker.
 */
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { DRIFT_CHECKED, DRIFT_FOUND, DRIFT_RESOURCES, LAST_SUCCESS, OPERATIONS } from '../../model/metrics';

const DIR = fileURLToPath(new URL('../../ops/prometheus/', import.meta.url));
const RULES = `${DIR}steward-alerts.yml`;
const TESTS = `${DIR}steward-alerts.test.yml`;

function promtool(...args: string[]): string {
  return execFileSync('promtool', args, { cwd: DIR, encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
}

describe('the shipped alert rules', () => {
  const rules = (
    parse(readFileSync(RULES, 'utf8')) as { groups: { rules: { alert: string; expr: string }[] }[] }
  ).groups.flatMap((g) => g.rules);

  it('load in promtool', () => {
    expect(promtool('check', 'rules', RULES)).toMatch(/SUCCESS: 4 rules found/);
  });

  it('fire as their unit tests say, and every alert has one that fires', () => {
    expect(promtool('test', 'rules', TESTS)).toMatch(/SUCCESS/);
    const tested = parse(readFileSync(TESTS, 'utf8')) as {
      tests: { alert_rule_test: { alertname: string; exp_alerts: unknown[] }[] }[];
    };
    const firing = new Set(
      tested.tests.flatMap((t) => t.alert_rule_test.filter((a) => a.exp_alerts.length > 0).map((a) => a.alertname)),
    );
    expect([...firing].sort()).toEqual(rules.map((r) => r.alert).sort());
  });

  it("read only the metrics steward emits, under the exporter's names", () => {
    const emitted = [`${OPERATIONS}_total`, `${DRIFT_FOUND}_total`, DRIFT_RESOURCES, DRIFT_CHECKED, LAST_SUCCESS];
    const read = rules.flatMap((r) => r.expr.match(/steward_[a-z_]+/g) ?? []);
    expect(read.length).toBeGreaterThan(0);
    for (const name of read) expect(emitted).toContain(name);
  });
});
