/**
 * untilStopped (cli/stop-signal.ts) in a real child process with real signals. The child runs
 * an execa subprocess while it stops, as `up` does with git: execa's signal-exit re-raises a
 * signal that has no other listener, which killed `up` mid-stop while its handlers were gone.
 */
import { execa } from 'execa';
import { describe, expect, it } from 'vitest';

const MODULE = new URL('../../../cli/stop-signal.ts', import.meta.url).pathname;

/** A child that, on its first signal, takes `stopMs` to stop while `sleep` runs under execa, then prints "stopped" and exits 0. */
function child(stopMs: number) {
  const script = `
    import { execa } from 'execa';
    import { untilStopped } from ${JSON.stringify(MODULE)};
    const log = { info: (o, m) => console.log(m), warn: (o, m) => console.log(m) };
    let sleeper;
    const done = untilStopped(async () => {
      await new Promise((r) => setTimeout(r, ${stopMs}));
      sleeper.kill();
      await sleeper;
    }, log);
    // Started after the handlers, as git is in up: signal-exit's listener comes after ours.
    sleeper = execa('sleep', ['30'], { reject: false });
    console.log('ready');
    await done;
    console.log('stopped');
    process.exit(0);
  `;
  return execa(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', script], { reject: false, all: true, forceKillAfterDelay: false });
}

async function ready(proc: ReturnType<typeof child>): Promise<void> {
  await new Promise<void>((resolve, reject) => {
    let out = '';
    proc.all!.on('data', (b: Buffer) => {
      out += b.toString();
      if (out.includes('ready')) resolve();
    });
    void proc.then(() => reject(new Error(`child exited before ready:\n${out}`)));
  });
}

describe('untilStopped', () => {
  it('a signal while a child process runs: the stop finishes and the process exits 0', async () => {
    const proc = child(500);
    await ready(proc);
    proc.kill('SIGTERM');
    const r = await proc;
    expect(r.signal, r.all).toBeUndefined();
    expect(r.exitCode, r.all).toBe(0);
    expect(r.all).toMatch(/signal received[\s\S]*stopped/);
  }, 30_000);

  it('a second signal while stopping exits at once with code 1', async () => {
    const proc = child(20_000);
    await ready(proc);
    proc.kill('SIGINT');
    await new Promise((r) => setTimeout(r, 300));
    proc.kill('SIGINT');
    const r = await proc;
    expect(r.exitCode, r.all).toBe(1);
    expect(r.all).toMatch(/second signal while stopping: exiting now/);
    expect(r.all).not.toMatch(/stopped/);
  }, 30_000);
});
