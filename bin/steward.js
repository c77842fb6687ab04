#!/usr/bin/env node
// Entry point: runs the TypeScript CLI through tsx so a checkout works without a build step.
import { register } from 'tsx/esm/api';

register();
await import('../client/cli.ts');
