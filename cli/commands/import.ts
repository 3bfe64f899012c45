import fs from 'node:fs/promises';
import path from 'node:path';
import type { Command } from 'commander';
import { VIRTOPS_ROOT, virtopsModules, type VirtopsPackageJson } from './init.js';

interface ImportFlags {
  out?: string;
  name?: string;
  dslModule?: string;
  force?: boolean;
}

/**
 * `virtops import FILE.yaml [--out FILE.ts] [--name ClassName] [--dsl-module SPEC] [--force]`:
 * KubeVirt VirtualMachine/VirtualMachineInstance manifests → DSL TypeScript. Code goes to
 * stdout or --out; every warning (fields carried as JSON patches, dropped cluster fields,
 * skipped documents, plain-text passwords) goes to stderr.
 */
export function registerImport(program: Command): void {
  program
    .command('import')
    .description('turn KubeVirt VirtualMachine/VirtualMachineInstance YAML into DSL TypeScript (- reads stdin)')
    .argument('<file>', 'manifest file (multi-document YAML or a kubectl List)')
    .option('--out <file.ts>', 'write the code here instead of stdout')
    .option('--name <ClassName>', 'class name of the generated chart (single VM only; default: the VM name in PascalCase)')
    .option('--dsl-module <specifier>', "module the code imports the DSL from (default: a relative path inside a virtops checkout, else the virtops package: 'virtops/dsl')")
    .option('--force', 'overwrite --out if it exists')
    .action(async (file: string, opts: ImportFlags) => {
      // The importer (and the DSL it checks against) loads only for this command.
      const { ImportError, importManifests } = await import('../../dsl/import/index.js');
      const text = file === '-' ? await readStdin() : await readInput(file);
      const out = opts.out === undefined ? undefined : path.resolve(opts.out);
      const dslModule = opts.dslModule ?? (out ? await dslModuleFor(out) : undefined) ?? (await packageDslModule(VIRTOPS_ROOT));
      const result = importManifests(text, { fileName: file === '-' ? 'stdin' : file, className: opts.name, dslModule });
      for (const w of result.warnings) process.stderr.write(`warning: ${w}\n`);
      if (!out) {
        process.stdout.write(result.code);
        return;
      }
      await fs.mkdir(path.dirname(out), { recursive: true });
      try {
        await fs.writeFile(out, result.code, { flag: opts.force ? 'w' : 'wx' });
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code === 'EEXIST') {
          throw new ImportError(`${opts.out} exists. Fix: pass --force to overwrite it, or choose another --out`);
        }
        throw err;
      }
      const names = result.virtualMachines.map((vm) => `${vm.className} (${vm.namespace}/${vm.name})`).join(', ');
      process.stderr.write(`wrote ${opts.out}: ${names}\n`);
    });
}

async function readInput(file: string): Promise<string> {
  try {
    return await fs.readFile(file, 'utf8');
  } catch (err) {
    const { ImportError } = await import('../../dsl/import/index.js');
    throw new ImportError(`${file}: ${(err as NodeJS.ErrnoException).code === 'ENOENT' ? 'no such file' : (err as Error).message}. Fix: pass the path of a KubeVirt manifest`);
  }
}

async function readStdin(): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const chunk of process.stdin) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks).toString('utf8');
}

/** How a project importing the virtops package at `root` reaches the DSL (see virtopsModules). */
async function packageDslModule(root: string): Promise<string | undefined> {
  try {
    return virtopsModules(JSON.parse(await fs.readFile(path.join(root, 'package.json'), 'utf8')) as VirtopsPackageJson).dslModule;
  } catch {
    return undefined;
  }
}

/**
 * Inside a virtops checkout (a package.json named `virtops` with dsl/index.ts), code imports
 * the DSL by relative path, like vms/*.ts do; in a project with virtops installed, the way
 * that installed copy allows (`virtops/dsl`, or a deep path while it has no `exports`).
 */
export async function dslModuleFor(outFile: string): Promise<string | undefined> {
  for (let dir = path.dirname(outFile); ; dir = path.dirname(dir)) {
    try {
      const pkg = JSON.parse(await fs.readFile(path.join(dir, 'package.json'), 'utf8')) as { name?: string };
      await fs.access(path.join(dir, 'dsl', 'index.ts'));
      if (pkg.name === 'virtops') {
        const rel = path.relative(path.dirname(outFile), path.join(dir, 'dsl', 'index.js')).split(path.sep).join('/');
        return rel.startsWith('.') ? rel : `./${rel}`;
      }
    } catch {
      const installed = await packageDslModule(path.join(dir, 'node_modules', 'virtops'));
      if (installed) return installed;
      // not here; keep walking up
    }
    if (path.dirname(dir) === dir) return undefined;
  }
}
