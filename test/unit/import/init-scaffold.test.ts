/** The pure part of `virtops init`: rendering the scaffold from templates/init/. */
import { describe, expect, it } from 'vitest';
import { projectNameProblem, readTemplates, scaffoldFiles, virtopsModules, virtopsSpec } from '../../../cli/commands/init.js';

const pkg = {
  name: 'virtops',
  version: '0.3.1',
  exports: { './dsl': {}, './synth': {} },
  dependencies: { cdk8s: '2.70.106', 'cdk8s-plus-33': '2.5.57', constructs: '10.8.1', yaml: '2.9.1', tsx: '4.23.15' },
  devDependencies: { '@types/node': '^20.19.0', typescript: '5.9.3', vitest: '4.1.12' },
};

describe('virtops init: scaffold rendering', () => {
  it('renders every template, renames dotfiles, fills placeholders and pins versions; virtops by a version range', async () => {
    const files = scaffoldFiles({ name: 'my-vms', virtops: { range: '^0.3.1' }, virtopsPackage: pkg, templates: await readTemplates() });
    expect([...files.keys()].sort()).toEqual([
      '.github/workflows/virtops.yml', '.gitignore', '.gitlab-ci.yml', 'README.md', 'cdk8s.yaml', 'ci/check-dist.sh', 'package.json', 'test/vms.test.ts', 'tsconfig.json', 'vitest.config.ts',
      'vms/app.ts', 'vms/hello.ts', 'vms/main.ts',
    ]);
    for (const [file, text] of files) expect(text, file).not.toMatch(/\{\{\w+\}\}/);
    // Nothing points at a virtops checkout: the scaffold is an ordinary npm project.
    expect(files.get('package.json')).not.toContain('file:');
    // Freshness is the repository's CI's job (the reconciler runs no repository code).
    expect(files.get('ci/check-dist.sh')).toMatch(/npm ci .*\n\s*npx virtops synth --check\n(#.*\n)*npm test\n$/);
    expect(files.get('.github/workflows/virtops.yml')).toContain('run: sh ci/check-dist.sh');
    expect(files.get('.gitlab-ci.yml')).toContain('- sh ci/check-dist.sh');
    expect(files.get('vms/hello.ts')).toContain("from 'virtops/dsl'");
    expect(files.get('vms/app.ts')).toContain("from 'virtops/synth'");
    expect(files.get('README.md')).toContain('(`^0.3.1`)');
    const json = JSON.parse(files.get('package.json')!) as Record<string, Record<string, string>>;
    expect(json.dependencies).toEqual({ cdk8s: '2.70.106', 'cdk8s-plus-33': '2.5.57', constructs: '10.8.1', yaml: '2.9.1', virtops: '^0.3.1' });
    expect(json.devDependencies).toEqual({ '@types/node': '^20.19.0', tsx: '4.23.15', typescript: '5.9.3', vitest: '4.1.12' });
    expect(json.type).toBe('module');
  });

  it('--virtops-from: an absolute file: spec; a directory also gets install-links in .npmrc', async () => {
    const templates = await readTemplates();
    const tarball = scaffoldFiles({ name: 'x', virtops: { from: '/srv/virtops-0.3.1.tgz', kind: 'tarball' }, virtopsPackage: pkg, templates });
    expect(JSON.parse(tarball.get('package.json')!).dependencies.virtops).toBe('file:/srv/virtops-0.3.1.tgz');
    expect(tarball.has('.npmrc')).toBe(false);
    const dir = scaffoldFiles({ name: 'x', virtops: { from: '/srv/virtops', kind: 'dir' }, virtopsPackage: pkg, templates });
    expect(JSON.parse(dir.get('package.json')!).dependencies.virtops).toBe('file:/srv/virtops');
    expect(dir.get('.npmrc')).toContain('install-links=true');
    expect(virtopsSpec({ range: '^1.2.0' })).toBe('^1.2.0');
  });

  it('imports from the package exports once virtops declares them', () => {
    expect(virtopsModules({ exports: { './dsl': './dsl/index.ts', './synth': './synth/app.ts' } })).toEqual({ dslModule: 'virtops/dsl', synthModule: 'virtops/synth' });
    expect(virtopsModules({})).toEqual({ dslModule: 'virtops/dsl/index.js', synthModule: 'virtops/synth/app.js' });
  });

  it('rejects unknown placeholders and unpinnable packages', () => {
    expect(() => scaffoldFiles({ name: 'x', virtops: { range: '^1.0.0' }, virtopsPackage: pkg, templates: new Map([['a', '{{nope}}']]) })).toThrow(/unknown placeholder \{\{nope\}\}/);
    expect(() => scaffoldFiles({ name: 'x', virtops: { range: '^1.0.0' }, virtopsPackage: { dependencies: {} }, templates: new Map() })).toThrow(/does not list cdk8s/);
  });

  it.each([['my-vms', undefined], ['vms.example_1', undefined], ['My-VMs', 'lower-case'], ['-x', 'starting with'], ['', 'starting with']])(
    'project name %j', (name, problem) => {
      const got = projectNameProblem(name);
      if (problem === undefined) expect(got).toBeUndefined();
      else expect(got).toContain(problem);
    },
  );
});
