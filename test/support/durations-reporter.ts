/**
 * A vitest reporter that keeps each test file's time, hooks included (`beforeAll` setup is where integration files
 * spend minutes), in `.steward/test-durations.json` for the CI summary (scripts/test-summary.ts). The JSON reporter's
 * file times start at the first test and leave the setup out.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { relative, resolve } from 'node:path';
import type { Reporter, TestModule } from 'vitest/node';

export const DURATIONS_FILE = '.steward/test-durations.json';

export interface FileDurations {
  readonly file: string;
  readonly project: string;
  readonly state: string;
  /** Import, collection and harness set-up of the file, before its hooks run. */
  readonly loadMs: number;
  /** Its tests and hooks. */
  readonly runMs: number;
  /** Its tests alone. */
  readonly testsMs: number;
  readonly tests: number;
  /** When the file started and ended, in ms since the run started (shows how the files shared the lanes). */
  readonly startMs: number;
  readonly endMs: number;
}

export default class DurationsReporter implements Reporter {
  private readonly files: FileDurations[] = [];
  private readonly runStarted = Date.now();
  private readonly started = new Map<string, number>();

  onTestModuleStart(module: TestModule): void {
    this.started.set(module.moduleId, Date.now());
  }

  onTestModuleEnd(module: TestModule): void {
    const d = module.diagnostic();
    const tests = [...module.children.allTests()];
    this.files.push({
      file: relative(process.cwd(), module.moduleId),
      project: module.project.name,
      state: module.state(),
      loadMs: Math.round(d.environmentSetupDuration + d.prepareDuration + d.collectDuration + d.setupDuration),
      runMs: Math.round(d.duration),
      testsMs: Math.round(tests.reduce((sum, t) => sum + (t.diagnostic()?.duration ?? 0), 0)),
      tests: tests.length,
      startMs: (this.started.get(module.moduleId) ?? Date.now()) - this.runStarted,
      endMs: Date.now() - this.runStarted,
    });
  }

  onTestRunEnd(): void {
    const runId = (globalThis as { stewardTestRunId?: string }).stewardTestRunId;
    mkdirSync(resolve('.steward'), { recursive: true });
    writeFileSync(resolve(DURATIONS_FILE), `${JSON.stringify({ runId, files: this.files }, null, 2)}\n`);
  }
}
