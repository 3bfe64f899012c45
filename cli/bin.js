#!/usr/bin/env node
// Entry point for the `virtops` command: runs the TypeScript CLI through tsx so the
// repository needs no separate build step.
import { register } from 'tsx/esm/api';
register();
await import('./main.ts');
