/**
 * The installed CLI's version fast path (cli/bin.js → versionFastPath) prints exactly what
 * the full CLI's `version` command prints, for every spelling it answers, and leaves every
 * other argv to commander. (test/integration/package/ compares both paths of the installed
 * package too, through VIRTOPS_NO_FAST_PATH.)
 */
import { afterEach, describe, expect, it, vi } from 'vitest';
import { buildProgram } from '../../../cli/main.js';
import { buildInfo, versionFastPath, type BuildInfo } from '../../../cli/commands/version.js';

/** stdout of `virtops <argv>` through commander (the full path), in this process. */
async function fullPathOutput(argv: string[]): Promise<string> {
  let out = '';
  vi.spyOn(process.stdout, 'write').mockImplementation((chunk: string | Uint8Array) => {
    out += chunk.toString();
    return true;
  });
  try {
    await buildProgram().exitOverride().parseAsync(['node', 'virtops', ...argv]);
  } finally {
    vi.restoreAllMocks();
  }
  return out;
}

afterEach(() => vi.restoreAllMocks());

describe('versionFastPath', () => {
  it.each([
    [['version'], ['version']],
    [['--version'], ['version']],
    [['-V'], ['version']],
    [['version', '-o', 'json'], ['version', '-o', 'json']],
    [['version', '-ojson'], ['version', '-o', 'json']],
    [['version', '--output', 'json'], ['version', '--output', 'json']],
    [['version', '--output=json'], ['version', '--output=json']],
  ])('%j prints what the full CLI prints for %j', async (fast, full) => {
    const text = versionFastPath(fast);
    expect(text).toBeDefined();
    expect(text).toBe(await fullPathOutput(full));
  });

  it.each([[[]], [['get', 'vms']], [['version', '--help']], [['version', '-o', 'yaml']], [['version', 'extra']], [['--version', 'get']], [['-V', '-o', 'json']], [['--help']]])(
    '%j is left to commander',
    (argv) => {
      expect(versionFastPath(argv, () => {
        throw new Error('must not read build info');
      })).toBeUndefined();
    },
  );

  it('formats the build info it is given (a fake, as an installed build-info.json would hold)', () => {
    const fake: BuildInfo = { version: '9.8.7', commit: 'c0ffee', kubevirtApi: 'kubevirt.io/v1', kubevirtOpenApi: { title: 'KubeVirt API', version: null, sha256: 'abcd' } };
    expect(versionFastPath(['-V'], () => fake)).toBe('virtops 9.8.7\ncommit: c0ffee\nKubeVirt API: kubevirt.io/v1 (schema: vendored KubeVirt API OpenAPI subset, sha256 abcd)\n');
    expect(JSON.parse(versionFastPath(['version', '-o', 'json'], () => fake)!)).toEqual(fake);
    expect(buildInfo().kubevirtApi).toBe('kubevirt.io/v1');
  });
});
