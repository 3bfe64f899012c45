/**
 * The dashboard app: overview (/), VM page (/vms/:ns/:name), diff (/diff), console
 * (/console/:ns/:name). Preact: React's model in ~4 KB gzip, so the overview paints from a
 * small script; plain TS would mean hand-written DOM diffing for the live list.
 */
import '@xterm/xterm/css/xterm.css';
import './styles.css';
import { render } from 'preact';
import { useEffect, useMemo, useRef, useState } from 'preact/hooks';
import { age, useLive, useNow, type Row, type Summary } from './live.js';
import { PushChart, StatusChart, STATUS_COLORS } from './charts.js';
import { ApiError, get, post, vmPath } from './api.js';

// ---- routing ---------------------------------------------------------------------------

function usePath(): string {
  const [path, setPath] = useState(location.pathname);
  useEffect(() => {
    const on = (): void => setPath(location.pathname);
    addEventListener('popstate', on);
    return () => removeEventListener('popstate', on);
  }, []);
  return path;
}

function navigate(to: string): void {
  history.pushState(null, '', to);
  dispatchEvent(new PopStateEvent('popstate'));
  document.getElementById('main')?.focus();
}

/** Same-page navigation for plain left clicks on local links; everything else as usual. */
function onLinkClick(e: MouseEvent): void {
  const a = (e.target as HTMLElement).closest('a');
  if (!a || e.defaultPrevented || e.button !== 0 || e.metaKey || e.ctrlKey || e.shiftKey || a.target || a.origin !== location.origin || a.hash) return;
  e.preventDefault();
  navigate(a.pathname);
}

function App() {
  const path = usePath();
  let page;
  let m: RegExpExecArray | null;
  if ((m = /^\/vms\/([^/]+)\/([^/]+)$/.exec(path))) page = <VmPage ns={decodeURIComponent(m[1]!)} name={decodeURIComponent(m[2]!)} />;
  else if ((m = /^\/console\/([^/]+)\/([^/]+)$/.exec(path))) page = <ConsolePage ns={decodeURIComponent(m[1]!)} name={decodeURIComponent(m[2]!)} />;
  else if (path === '/diff') page = <DiffPage />;
  else page = <Overview />;
  useEffect(() => {
    document.title = path === '/' ? 'virtops' : `${path.split('/').filter(Boolean).map(decodeURIComponent).join(' / ')} — virtops`;
  }, [path]);
  return (
    <div onClick={onLinkClick}>
      <header class="top">
        <a href="/" class="brand">virtops</a>
        <nav aria-label="Main">
          <a href="/" aria-current={path === '/' ? 'page' : undefined}>Overview</a>
          <a href="/diff" aria-current={path === '/diff' ? 'page' : undefined}>Diff</a>
        </nav>
        <button type="button" class="link" onClick={() => void post('/api/v1/logout').finally(() => location.assign('/login'))}>Sign out</button>
      </header>
      <main id="main" tabIndex={-1}>{page}</main>
    </div>
  );
}

// ---- overview --------------------------------------------------------------------------

function short(sha: string | null | undefined): string {
  return sha ? sha.slice(0, 12) : '(none)';
}

function RevisionPanel({ s }: { s: Summary | undefined }) {
  if (!s) return <p class="muted">Waiting for the first state…</p>;
  return (
    <section aria-labelledby="rev-h" class="panel">
      <h2 id="rev-h">Applied revision</h2>
      {s.revision ? (
        <p data-testid="applied">
          <code title={s.revision}>{short(s.revision)}</code>
          {s.commit ? <> <strong>{s.commit.subject}</strong> — {s.commit.author}, <time dateTime={s.commit.date}>{new Date(s.commit.date).toLocaleString()}</time></> : null}
          {s.appliedAt ? <span class="muted"> (applied <time dateTime={s.appliedAt}>{new Date(s.appliedAt).toLocaleTimeString()}</time>)</span> : null}
        </p>
      ) : <p>No revision applied yet.</p>}
      {s.refused ? (
        <div role="alert" class="refused" data-testid="refused">
          <h3>Commit <code>{short(s.refused.sha)}</code> was refused{s.refused.commit ? <>: “{s.refused.commit.subject}” by {s.refused.commit.author}</> : null}</h3>
          <p>Revision <code>{short(s.revision)}</code> keeps running. Why:</p>
          <ul>{s.refused.errors.map((e, i) => <li key={i}><code class="wrap">{e}</code></li>)}</ul>
        </div>
      ) : null}
      {s.sourceError ? <p role="alert" class="refused">The git source is failing ({s.sourceError.stage}): {s.sourceError.message}</p> : null}
    </section>
  );
}

function Counts({ counts, total }: { counts: Record<string, number>; total: number }) {
  return (
    <ul class="counts" aria-label="VMs by status">
      <li><strong>{total}</strong> VMs</li>
      {Object.entries(counts).sort().map(([s, n]) => (
        <li key={s} data-status={s}><span class="swatch" style={{ background: STATUS_COLORS[s] ?? '#6e7781' }} aria-hidden="true" />{s}: <strong>{n}</strong></li>
      ))}
    </ul>
  );
}

const ROW_H = 34;

/** The VM list: only the rows in view are in the DOM (1,000 VMs paint as fast as 20). */
function VmTable({ rows }: { rows: Row[] }) {
  const box = useRef<HTMLDivElement>(null);
  const [scroll, setScroll] = useState(0);
  const [height, setHeight] = useState(600);
  const now = useNow();
  useEffect(() => {
    const el = box.current!;
    const ro = new ResizeObserver(() => setHeight(el.clientHeight));
    ro.observe(el);
    return () => ro.disconnect();
  }, []);
  const first = Math.max(0, Math.floor(scroll / ROW_H) - 10);
  const last = Math.min(rows.length, Math.ceil((scroll + height) / ROW_H) + 10);
  return (
    <div class="vm-table" ref={box} onScroll={(e) => setScroll((e.currentTarget as HTMLDivElement).scrollTop)} style={{ height: `min(70vh, ${(rows.length + 1) * ROW_H + 4}px)` }}>
      <table aria-rowcount={rows.length + 1}>
        <caption class="sr-only">Virtual machines ({rows.length}); live</caption>
        <thead>
          <tr><th scope="col">Name</th><th scope="col">Namespace</th><th scope="col">Status</th><th scope="col">Ready</th><th scope="col">Revision</th><th scope="col">IP</th><th scope="col">Age</th><th scope="col">Override</th></tr>
        </thead>
        <tbody>
          {first > 0 ? <tr aria-hidden="true" style={{ height: `${first * ROW_H}px` }} /> : null}
          {rows.slice(first, last).map((r, i) => (
            <tr key={`${r.namespace}/${r.name}`} aria-rowindex={first + i + 2} data-vm={r.name} style={{ height: `${ROW_H}px` }}>
              <th scope="row"><a href={`/vms/${vmPath(r.namespace, r.name)}`}>{r.name}</a></th>
              <td>{r.namespace}</td>
              <td><span class="status" data-testid="status" style={{ borderColor: STATUS_COLORS[r.status] ?? '#6e7781' }}>{r.status}</span></td>
              <td>{r.ready ? 'True' : 'False'}</td>
              <td><code>{r.revision.slice(0, 12)}</code></td>
              <td>{r.ip || <span class="muted" title="no address reported">—</span>}</td>
              <td>{age(r.firstSeen, now)}</td>
              <td>{r.override ?? ''}</td>
            </tr>
          ))}
          {last < rows.length ? <tr aria-hidden="true" style={{ height: `${(rows.length - last) * ROW_H}px` }} /> : null}
        </tbody>
      </table>
    </div>
  );
}

function Overview() {
  const live = useLive();
  const [filter, setFilter] = useState('');
  const rows = useMemo(() => {
    const all = live.order.map((k) => live.rows.get(k)!);
    const f = filter.trim().toLowerCase();
    return f ? all.filter((r) => `${r.namespace}/${r.name} ${r.status}`.toLowerCase().includes(f)) : all;
  }, [live.version, filter]);
  const s = live.summary;
  return (
    <>
      <h1>Overview <span class={`live ${live.connected ? 'on' : 'off'}`} role="status">{live.connected ? 'live' : 'reconnecting…'}</span></h1>
      <RevisionPanel s={s} />
      {s ? <Counts counts={s.counts} total={s.total} /> : null}
      <section class="charts" aria-label="Charts">
        <PushChart pushes={live.pushes} />
        <StatusChart history={live.history} />
      </section>
      <section aria-labelledby="vms-h">
        <div class="row">
          <h2 id="vms-h">Virtual machines</h2>
          <label class="filter">Filter <input type="search" value={filter} onInput={(e) => setFilter((e.target as HTMLInputElement).value)} placeholder="name, namespace or status" /></label>
        </div>
        <VmTable rows={rows} />
      </section>
    </>
  );
}

// ---- VM page ---------------------------------------------------------------------------

interface VmView {
  namespace: string;
  name: string;
  firstSeen: string;
  revision?: string;
  inGit: boolean;
  status?: { printableStatus?: string; ready?: boolean; runStrategy?: string; conditions?: { type: string; status: string; reason?: string; message?: string; lastTransitionTime?: string }[] };
  override?: { action: string; at: number; revision: string };
  failure?: { reason: string; message: string };
  /** Cluster mode adds the launcher Pod and its node (and leaves pid and the files empty). */
  instance?: { uid: string; createdAt: string; pid?: number; domain: string; podDir: string; launcherLog: string; serialLog: string; pod?: string; node?: string; podPhase?: string };
  events: { type: string; reason: string; message: string; time?: number | string; firstTime?: number | string; count?: number }[];
}

interface SpecInfo {
  spec: null | { runStrategy?: string; cpu?: unknown; memory?: unknown; machine?: unknown; kernelBoot?: string; networks: string[]; disks: { name: string; bus?: string; kind: string; source: string; declared?: string }[]; labels: Record<string, string> };
  files: { path: string; bytes: number; allocated: number }[];
  revisionSeen: { sha: string; seenAt: string; commit: { subject: string; author: string; date: string } | null } | null;
}

interface Stage {
  label: string;
  at: number;
}

/**
 * The push → Running stages of the VM's last start: the commit (author time), the source
 * yielding the revision, then the reconcile's events (Creating, Started, Running).
 */
function pushStages(vm: VmView, spec: SpecInfo | undefined): Stage[] {
  const t = (x: number | string | undefined): number => (typeof x === 'number' ? x : Date.parse(String(x)));
  const ev = vm.events;
  const lastCreating = [...ev].reverse().find((e) => e.reason === 'Creating');
  if (!lastCreating) return [];
  const from = t(lastCreating.time);
  const after = (pred: (e: VmView['events'][number]) => boolean): number | undefined => ev.map((e) => ({ e, at: t(e.time) })).find((x) => x.at >= from && pred(x.e))?.at;
  const stages: Stage[] = [];
  const seen = spec?.revisionSeen;
  if (seen?.commit && t(seen.commit.date) <= from) stages.push({ label: `commit ${seen.sha.slice(0, 8)} authored`, at: t(seen.commit.date) });
  if (seen && t(seen.seenAt) <= from) stages.push({ label: 'revision seen by the source', at: t(seen.seenAt) });
  stages.push({ label: 'launcher starting', at: from });
  const started = after((e) => e.reason === 'Started');
  if (started !== undefined) stages.push({ label: 'domain started', at: started });
  const running = after((e) => e.reason === 'StatusChanged' && / → Running$/.test(e.message));
  if (running !== undefined) stages.push({ label: 'Running', at: running });
  return stages;
}

function bytes(n: number): string {
  const u = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let i = 0;
  while (n >= 1024 && i < u.length - 1) {
    n /= 1024;
    i++;
  }
  return `${n.toFixed(i ? 1 : 0)} ${u[i]}`;
}

const when = (t: number | string | undefined): string => (t === undefined ? '' : new Date(t).toLocaleString());
const ACTIONS = ['start', 'stop', 'restart', 'pause', 'unpause'] as const;

function VmPage({ ns, name }: { ns: string; name: string }) {
  const live = useLive();
  const [vm, setVm] = useState<VmView | undefined>();
  const [spec, setSpec] = useState<SpecInfo | undefined>();
  const [error, setError] = useState('');
  const [notice, setNotice] = useState('');
  const [busy, setBusy] = useState(false);
  const row = live.rows.get(`${ns}/${name}`);
  // Refetch the full view whenever the live row of this VM changes.
  const rowSig = row ? JSON.stringify(row) : '';
  useEffect(() => {
    get<VmView>(`/api/v1/vms/${vmPath(ns, name)}`).then(setVm, (e: Error) => setError(e.message));
    get<SpecInfo>(`/api/v1/dashboard/vms/${vmPath(ns, name)}`).then(setSpec, () => undefined);
  }, [ns, name, rowSig]);
  async function act(action: string): Promise<void> {
    setBusy(true);
    setError('');
    try {
      const v = await post<VmView>(`/api/v1/vms/${vmPath(ns, name)}/${action}`);
      setVm(v);
      setNotice(`${action} requested: override “${v.override?.action ?? action}” recorded at ${when(v.override?.at)}; it holds until a commit changes this VM.`);
    } catch (e) {
      setError(e instanceof ApiError ? e.message : String(e));
    } finally {
      setBusy(false);
    }
  }
  if (error && !vm) return <p role="alert" class="error">{error}</p>;
  if (!vm) return <p class="muted">Loading {ns}/{name}…</p>;
  const st = vm.status;
  const stages = pushStages(vm, spec);
  const events = [...vm.events].sort((a, b) => Date.parse(String(a.time ?? 0)) - Date.parse(String(b.time ?? 0)) || Number(a.time) - Number(b.time));
  return (
    <>
      <h1>{vm.name} <span class="muted">in {vm.namespace}</span></h1>
      <dl class="facts">
        <dt>Status</dt><dd data-testid="vm-status">{vm.inGit ? st?.printableStatus ?? 'Unknown' : 'Pruning'}</dd>
        <dt>Ready</dt><dd>{st?.ready ? 'True' : 'False'}</dd>
        <dt>Revision</dt><dd><code>{vm.revision ?? '(none)'}</code></dd>
        <dt>Run strategy</dt><dd>{st?.runStrategy ?? spec?.spec?.runStrategy ?? ''}</dd>
        <dt>Override</dt><dd data-testid="override">{vm.override ? <>{vm.override.action} (requested {when(vm.override.at)}; cleared by the next commit that changes this VM)</> : 'none: git rules'}</dd>
        {vm.instance ? <><dt>Instance</dt><dd><code>{vm.instance.uid}</code>, domain <code>{vm.instance.domain}</code>, created {when(vm.instance.createdAt)}</dd></> : null}
        {vm.instance?.node !== undefined ? <><dt>Launcher Pod</dt><dd data-testid="launcher-pod"><code>{vm.instance.pod || '(none yet)'}</code>{vm.instance.podPhase ? ` (${vm.instance.podPhase})` : ''} on node <code>{vm.instance.node || '(unscheduled)'}</code></dd></> : null}
        {vm.instance && vm.instance.node === undefined ? <><dt>Launcher Pod</dt><dd>pid {vm.instance.pid ?? '?'}, dir <code class="wrap">{vm.instance.podDir}</code>, log <code class="wrap">{vm.instance.launcherLog}</code>, serial log <code class="wrap">{vm.instance.serialLog}</code></dd></> : null}
        {vm.failure ? <><dt>Failure</dt><dd class="error">{vm.failure.reason}: {vm.failure.message}</dd></> : null}
      </dl>
      <div class="actions" role="group" aria-label="Actions (each records an override)">
        {ACTIONS.map((a) => <button key={a} type="button" disabled={busy} onClick={() => void act(a)}>{a[0]!.toUpperCase() + a.slice(1)}</button>)}
        <a class="button" href={`/console/${vmPath(ns, name)}`}>Console</a>
      </div>
      {notice ? <p role="status" class="notice" data-testid="notice">{notice}</p> : null}
      {error ? <p role="alert" class="error">{error}</p> : null}
      {spec?.spec ? (
        <section aria-labelledby="spec-h">
          <h2 id="spec-h">Spec</h2>
          <dl class="facts">
            <dt>CPU</dt><dd><code>{JSON.stringify(spec.spec.cpu ?? {})}</code></dd>
            <dt>Memory</dt><dd><code>{JSON.stringify(spec.spec.memory ?? {})}</code></dd>
            {spec.spec.kernelBoot ? <><dt>Kernel boot</dt><dd><code class="wrap">{spec.spec.kernelBoot}</code></dd></> : null}
            <dt>Networks</dt><dd>{spec.spec.networks.join(', ') || 'none'}</dd>
            <dt>Labels</dt><dd>{Object.entries(spec.spec.labels).map(([k, v]) => `${k}=${v}`).join(', ') || 'none'}</dd>
          </dl>
          <h3>Disks</h3>
          <table>
            <thead><tr><th scope="col">Name</th><th scope="col">Bus</th><th scope="col">Volume</th><th scope="col">Source</th><th scope="col">Declared size</th></tr></thead>
            <tbody>{spec.spec.disks.map((d) => <tr key={d.name}><th scope="row">{d.name}</th><td>{d.bus ?? ''}</td><td>{d.kind}</td><td><code class="wrap">{d.source}</code></td><td>{d.declared ?? ''}</td></tr>)}</tbody>
          </table>
          {spec.files.length ? (
            <table>
              <caption>Disk files of the running instance</caption>
              <thead><tr><th scope="col">File</th><th scope="col">Size</th><th scope="col">On disk</th></tr></thead>
              <tbody>{spec.files.map((f) => <tr key={f.path}><td><code class="wrap">{f.path}</code></td><td>{bytes(f.bytes)}</td><td>{bytes(f.allocated)}</td></tr>)}</tbody>
            </table>
          ) : null}
        </section>
      ) : null}
      <section aria-labelledby="cond-h">
        <h2 id="cond-h">Conditions</h2>
        <table>
          <thead><tr><th scope="col">Type</th><th scope="col">Status</th><th scope="col">Reason</th><th scope="col">Message</th><th scope="col">Since</th></tr></thead>
          <tbody>{(st?.conditions ?? []).map((c) => <tr key={c.type}><th scope="row">{c.type}</th><td>{c.status}</td><td>{c.reason ?? ''}</td><td>{c.message ?? ''}</td><td>{c.lastTransitionTime ? when(c.lastTransitionTime) : ''}</td></tr>)}</tbody>
        </table>
      </section>
      {stages.length > 1 ? (
        <section aria-labelledby="stages-h">
          <h2 id="stages-h">Last start: push → Running</h2>
          <ol class="stages" data-testid="stages">
            {stages.map((s, i) => (
              <li key={i}><strong>{s.label}</strong> <time dateTime={new Date(s.at).toISOString()}>{new Date(s.at).toLocaleTimeString()}</time>{i > 0 ? <span class="muted"> (+{((s.at - stages[i - 1]!.at) / 1000).toFixed(1)} s)</span> : null}</li>
            ))}
          </ol>
          <p class="muted">Total {((stages.at(-1)!.at - stages[0]!.at) / 1000).toFixed(1)} s.</p>
        </section>
      ) : null}
      <section aria-labelledby="ev-h">
        <h2 id="ev-h">Events</h2>
        <ol class="timeline">
          {events.map((e, i) => (
            <li key={i} class={e.type === 'Warning' ? 'warn' : ''}>
              <time>{when(e.time)}</time> <strong>{e.reason}</strong>{e.count && e.count > 1 ? ` ×${e.count}` : ''} — {e.message}
            </li>
          ))}
        </ol>
      </section>
    </>
  );
}

// ---- diff page -------------------------------------------------------------------------

interface DiffEntry {
  vm: string;
  change: string;
  actions: { type: string; reason: string }[];
  lines?: { op: ' ' | '+' | '-'; text: string }[];
}

function DiffPage() {
  const [d, setD] = useState<{ applied?: string; next?: string; entries: DiffEntry[]; note?: string } | undefined>();
  const [error, setError] = useState('');
  const load = (): void => void get<{ applied?: string; next?: string; entries: DiffEntry[]; note?: string }>('/api/v1/dashboard/diff').then(setD, (e: Error) => setError(e.message));
  useEffect(load, []);
  if (error) return <p role="alert" class="error">{error}</p>;
  if (!d) return <p class="muted">Computing what the next reconcile would do…</p>;
  const changing = d.entries.filter((e) => e.change !== 'unchanged' || e.actions.some((a) => a.type !== 'none'));
  return (
    <>
      <div class="row"><h1>Diff</h1><button type="button" onClick={load}>Refresh</button></div>
      <p>Applied <code>{short(d.applied)}</code>{d.next && d.next !== d.applied ? <>, next <code>{short(d.next)}</code></> : ' (the source holds no newer revision)'}. {changing.length} of {d.entries.length} VMs would change.</p>
      {d.note ? <p class="muted" data-testid="diff-note">{d.note}</p> : null}
      {d.entries.map((e) => (
        <section key={e.vm} class="diff-entry" aria-label={`${e.vm}: ${e.change}`}>
          <h2><a href={`/vms/${e.vm.split('/').map(encodeURIComponent).join('/')}`}>{e.vm}</a> <span class={`change ${e.change}`}>{e.change}</span></h2>
          <ul>{e.actions.map((a, i) => <li key={i}><strong>{a.type}</strong>: {a.reason}</li>)}</ul>
          {e.lines?.length ? <pre class="diff">{e.lines.map((l, i) => <span key={i} class={l.op === '+' ? 'add' : l.op === '-' ? 'del' : ''}>{l.op} {l.text}{'\n'}</span>)}</pre> : null}
        </section>
      ))}
    </>
  );
}

// ---- console page ----------------------------------------------------------------------

function ConsolePage({ ns, name }: { ns: string; name: string }) {
  const box = useRef<HTMLDivElement>(null);
  const [state, setState] = useState('loading');
  useEffect(() => {
    let handle: { dispose(): void } | undefined;
    let gone = false;
    void import('./console.js').then(({ openConsole }) => {
      if (!gone) handle = openConsole(box.current!, ns, name, setState);
    });
    return () => {
      gone = true;
      handle?.dispose();
    };
  }, [ns, name]);
  return (
    <>
      <h1>Console of <a href={`/vms/${vmPath(ns, name)}`}>{name}</a> <span class="muted" role="status" data-testid="console-state">{state}</span></h1>
      <p class="muted">Serial console (ttyS0). Everyone viewing this VM's console sees the same output and may type.</p>
      <div class="terminal" ref={box} aria-label={`Serial console of ${ns}/${name}`} data-testid="terminal" />
    </>
  );
}

const root = document.getElementById('root')!;
root.textContent = ''; // the "Loading…" placeholder (Preact would keep it beside the app)
render(<App />, root);
