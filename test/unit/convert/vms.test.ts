/**
 * Every VirtualMachine in vms/ converts to domain XML that libvirt's schema accepts, with
 * the node layout context `virtops domain-xml` uses.
 */
import { execFileSync } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseAllDocuments } from 'yaml';
import { vmiFromVm, type VirtualMachine } from '../../../api/kubevirt.js';
import { convertVmi, nodeContext } from '../../../launcher/convert/index.js';
import { schemaProblems } from './helpers.js';

const root = fileURLToPath(new URL('../../../', import.meta.url));
let outDir: string;
const vms: VirtualMachine[] = [];

describe('vms/ → domain XML', () => {
  beforeAll(() => {
    outDir = mkdtempSync(join(tmpdir(), 'virtops-vms-synth-'));
    execFileSync('npx', ['tsx', 'vms/main.ts'], { cwd: root, env: { ...process.env, CDK8S_OUTDIR: outDir }, stdio: 'pipe' });
    for (const file of readdirSync(outDir).filter((f) => f.endsWith('.yaml')).sort()) {
      for (const doc of parseAllDocuments(readFileSync(join(outDir, file), 'utf8')) as ReturnType<typeof parseAllDocuments> & unknown[]) {
        const obj = doc.toJS() as { kind?: string } | null;
        if (obj?.kind === 'VirtualMachine') vms.push(obj as VirtualMachine);
      }
    }
  }, 120_000);
  afterAll(() => {
    if (outDir && existsSync(outDir)) rmSync(outDir, { recursive: true, force: true });
  });

  it('synth produced VirtualMachines', () => {
    expect(vms.length).toBeGreaterThan(0);
  });

  it.each(['tcg', 'kvm'] as const)('each VM converts and validates under %s', (emulation) => {
    for (const vm of vms) {
      const vmi = vmiFromVm(vm, '5f0e9a52-0000-4000-8000-000000000000');
      const { xml } = convertVmi(vmi, nodeContext(vmi, { emulation, stateDir: '/var/lib/virtops' }));
      expect(schemaProblems(xml), `${vm.metadata.namespace}/${vm.metadata.name}`).toBeUndefined();
      expect(xml).toContain(`<name>${vmi.metadata.namespace}_${vm.metadata.name}</name>`);
    }
  });
});
