// Each test file's workers and CLI runs get a known-hosts file of their own (common/known-hosts.ts): a key one file
// trusted on first use never meets another file's host on a reused port, and the developer's own file is never touched.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll } from 'vitest';
import { KNOWN_HOSTS_ENV } from '../../common/known-hosts';

const dir = mkdtempSync(join(tmpdir(), 'steward-known-hosts-'));
process.env[KNOWN_HOSTS_ENV] = join(dir, 'known_hosts');
afterAll(() => rmSync(dir, { recursive: true, force: true }));
