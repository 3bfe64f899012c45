import { existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { isAbsolute, resolve } from 'node:path';
import { binariesIn, binariesPresent, ensureBinaries } from './binaries.js';
import {
  builtinUsers,
  randomToken,
  renderKubeconfig,
  renderTokenFile,
  serviceAccountKeyPair,
  validateExtraUsers,
  type StaticUser,
} from './credentials.js';
import { apiserverArgs, controllerManagerArgs, etcdArgs, schedulerArgs, type Ports } from './flags.js';
import { COMPONENTS, layoutOf, type Component, type Layout } from './layout.js';
import { freePorts } from './ports.js';
import { httpGet } from './probe.js';
import { isOurs, killNow, killOnExit, liveByPidFile, readPid, spawnDetached, stopProcess } from './processes.js';
import { readVersions } from './versions.js';
import { apiserverKubeletClientArgs, writeNodePki, type NodePki } from './node-pki.js';

export type { Component } from './layout.js';

export interface ExtraUser {
  /** User name as the API server sees it (RBAC subjects of kind User). */
  readonly name: string;
  readonly groups?: readonly string[];
}

export interface StartControlPlaneOptions {
  /** State directory: kubeconfig, pki, etcd data, logs, pid files. Created if missing. */
  readonly dir: string;
  /** Directory holding `kube` and `etcd`; default: the versioned cache (built when missing). */
  readonly binDir?: string;
  /** Extra static-token users; each gets `DIR/users/<name>.kubeconfig`. */
  readonly users?: readonly ExtraUser[];
  /** kube-controller-manager `--controllers`; default `['*']` (all default-on controllers). */
  readonly controllers?: readonly string[];
  /**
   * Keep the processes when this Node process exits (`virtops testenv up`). Default false:
   * an exit hook SIGKILLs them if `stop()` was never called.
   */
  readonly detached?: boolean;
  /** Build and startup progress lines. */
  readonly onProgress?: (line: string) => void;
  /** Per component readiness timeout; default 120 s (the first API server start migrates etcd). */
  readonly readyTimeoutMs?: number;
  /**
   * Keep kube-apiserver's ServiceAccount admission plugin on, so Pods get their service
   * account token volume (for Pods that talk to the API server under a kubelet node, e.g. the
   * install manifests' controller and agent). Default false: without a kubelet no Pod needs it.
   */
  readonly serviceAccountAdmission?: boolean;
}

/** What a running control plane looks like from outside; persisted as DIR/testenv.json. */
export interface ControlPlaneInfo {
  readonly dir: string;
  readonly binDir: string;
  /** gitVersion the API server reports, e.g. v1.37.2. */
  readonly kubernetesVersion: string;
  readonly etcdVersion: string;
  readonly apiServerUrl: string;
  /** Admin (system:masters) kubeconfig. */
  readonly kubeconfigPath: string;
  /** Admin bearer token. */
  readonly token: string;
  /** PEM bundle verifying the API server's serving certificate. */
  readonly caFile: string;
  readonly etcdUrl: string;
  readonly ports: Ports;
  /** Static-token users (built-in and extra), each with its own kubeconfig. */
  readonly users: readonly (StaticUser & { readonly kubeconfigPath: string })[];
  /** Certificates for node agents' console endpoint (node-pki.ts). */
  readonly nodePki: NodePki;
  /** How each component is (re)started. */
  readonly commands: Readonly<Record<Component, { readonly binary: string; readonly args: readonly string[] }>>;
}

export interface StopComponentOptions {
  readonly signal?: 'SIGTERM' | 'SIGKILL';
  readonly graceMs?: number;
}

export interface ControlPlane extends ControlPlaneInfo {
  /** Stops every process (SIGTERM, SIGKILL after a grace period); idempotent. */
  stop(): Promise<void>;
  /**
   * Stops one component (e.g. the API server, to test recovery); its pid file goes away.
   * SIGTERM first: kube-apiserver drains open watches for up to `graceMs` (default 10 s)
   * before it is killed; `{ signal: 'SIGKILL' }` simulates a crash and returns at once.
   */
  stopComponent(component: Component, options?: StopComponentOptions): Promise<void>;
  /** Starts a stopped component again with its original flags and waits until it is healthy. */
  startComponent(component: Component): Promise<void>;
  /** Current pid of each running component. */
  pids(): Partial<Record<Component, number>>;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** A pid belongs to this testenv when its command line mentions DIR/. */
const markerOf = (dir: string) => `${dir}/`;

/**
 * Starts etcd, kube-apiserver, kube-controller-manager and kube-scheduler on loopback with
 * free ports, writes DIR/kubeconfig (admin) and waits until all four are healthy.
 * Every start begins from an empty etcd; DIR's other contents are left alone.
 */
export async function startControlPlane(options: StartControlPlaneOptions): Promise<ControlPlane> {
  const dir = checkedDir(options.dir);
  const extraUsers = options.users ?? [];
  const controllers = options.controllers ?? ['*'];
  const userErrors = validateExtraUsers(extraUsers, builtinUsers().map((u) => u.name));
  if (controllers.length === 0 || controllers.some((c) => !/^-?[a-z*][a-z0-9-]*$/.test(c))) {
    userErrors.push(`controllers: ${JSON.stringify(controllers)} must be kube-controller-manager controller names like "*" or "-nodelifecycle"`);
  }
  if (userErrors.length > 0) throw new Error(`startControlPlane: ${userErrors.join('; ')}`);
  const running = runningComponents(dir);
  if (running.length > 0) {
    throw new Error(`${dir}: a control plane is already running there (${running.join(', ')}); stop it first: virtops testenv down --dir ${dir}`);
  }
  const progress = options.onProgress ?? (() => {});

  let binDir = options.binDir;
  if (binDir !== undefined) {
    if (!binariesPresent(binDir)) throw new Error(`binDir ${binDir}: kube and etcd not found there; omit binDir to build them into the cache`);
  } else {
    binDir = (await ensureBinaries({ onProgress: progress })).binDir;
  }
  const bins = binariesIn(binDir);
  const versions = readVersions();
  const l = layoutOf(dir);

  // Fresh state each start: old etcd data, certs and tokens must not leak into this run.
  for (const path of [l.etcdData, l.pki, l.logs, `${dir}/users`, l.state, l.kubeconfig]) rmSync(path, { recursive: true, force: true });
  for (const path of [l.pki, l.apiserverCertDir, l.logs, `${dir}/users`]) mkdirSync(path, { recursive: true, mode: 0o700 });

  const [etcdClient, etcdPeer, apiserver, controllerManager, scheduler] = await freePorts(5);
  const ports: Ports = { etcdClient, etcdPeer, apiserver, controllerManager, scheduler };
  const apiServerUrl = `https://127.0.0.1:${ports.apiserver}`;

  const users = [...builtinUsers(), ...extraUsers.map((u) => ({ name: u.name, groups: [...(u.groups ?? [])], token: randomToken() }))].map((u) => ({
    ...u,
    kubeconfigPath: kubeconfigPathFor(l, u.name),
  }));
  writeFileSync(l.tokenFile, renderTokenFile(users), { mode: 0o600 });
  const keys = serviceAccountKeyPair();
  writeFileSync(l.serviceAccountKey, keys.privateKeyPem, { mode: 0o600 });
  writeFileSync(l.serviceAccountPub, keys.publicKeyPem);
  for (const u of users) {
    writeFileSync(u.kubeconfigPath, renderKubeconfig({ server: apiServerUrl, caFile: l.apiserverCert, user: u.name, token: u.token }), { mode: 0o600 });
  }
  const admin = users.find((u) => u.name === 'admin')!;
  const nodePki = writeNodePki(l.pki);

  const info: ControlPlaneInfo = {
    dir,
    binDir,
    kubernetesVersion: versions.kubernetes,
    etcdVersion: versions.etcd,
    apiServerUrl,
    kubeconfigPath: l.kubeconfig,
    token: admin.token,
    caFile: l.apiserverCert,
    etcdUrl: `http://127.0.0.1:${ports.etcdClient}`,
    ports,
    users,
    nodePki,
    commands: {
      etcd: { binary: bins.etcd, args: etcdArgs(l, ports) },
      'kube-apiserver': {
        binary: bins.kube,
        args: [...apiserverArgs(l, ports).filter((a) => !(options.serviceAccountAdmission && a === '--disable-admission-plugins=ServiceAccount')), ...apiserverKubeletClientArgs(nodePki)],
      },
      'kube-controller-manager': { binary: bins.kube, args: controllerManagerArgs(l, ports, controllers) },
      'kube-scheduler': { binary: bins.kube, args: schedulerArgs(l, ports) },
    },
  };
  writeFileSync(l.state, JSON.stringify(info, null, 2) + '\n', { mode: 0o600 });

  if (!options.detached) killedOnExit.add(dir);
  try {
    for (const component of COMPONENTS) {
      progress(`starting ${component} ...`);
      await startComponentFromInfo(info, component, options.readyTimeoutMs);
    }
  } catch (err) {
    await stopControlPlane(dir);
    throw err;
  }
  progress(`control plane ready: ${apiServerUrl} (kubeconfig ${l.kubeconfig})`);
  return handleFor(info);
}

/** Stops every process of the control plane in DIR (reverse start order); no-op if none. */
export async function stopControlPlane(dir: string, graceMs?: number): Promise<void> {
  const abs = resolve(dir);
  const l = layoutOf(abs);
  for (const component of [...COMPONENTS].reverse()) await stopProcess(l.pidFile(component), markerOf(abs), { graceMs });
  killedOnExit.delete(abs);
}

/**
 * Makes this process's exit take the control plane in DIR with it, though another process
 * (e.g. a test worker, with `detached`) started it: the vitest global setup adopts the one its
 * files start lazily, so a run cut short leaves no process behind.
 */
export function killControlPlaneOnExit(dir: string): void {
  killedOnExit.add(resolve(dir));
}

/** Reads DIR/testenv.json of a control plane started by this or another process. */
export function readControlPlane(dir: string): ControlPlaneInfo | undefined {
  const l = layoutOf(resolve(dir));
  if (!existsSync(l.state)) return undefined;
  return JSON.parse(readFileSync(l.state, 'utf8')) as ControlPlaneInfo;
}

/** A handle on a control plane started elsewhere (e.g. by the vitest global setup). */
export function attachControlPlane(dir: string): ControlPlane {
  const info = readControlPlane(dir);
  if (info === undefined) throw new Error(`${resolve(dir)}: no testenv.json; start one with virtops testenv up --dir ${dir}`);
  return handleFor(info);
}

/** Components of DIR whose pid file names a live process of this testenv. */
export function runningComponents(dir: string): Component[] {
  const abs = resolve(dir);
  return liveByPidFile(COMPONENTS, layoutOf(abs).pidFile, markerOf(abs));
}

function handleFor(info: ControlPlaneInfo): ControlPlane {
  const l = layoutOf(info.dir);
  return {
    ...info,
    stop: () => stopControlPlane(info.dir),
    stopComponent: (c, o = {}) => stopProcess(l.pidFile(c), markerOf(info.dir), o),
    startComponent: async (c) => {
      if (runningComponents(info.dir).includes(c)) throw new Error(`${c} is already running in ${info.dir}`);
      await startComponentFromInfo(info, c);
    },
    pids: () => {
      const out: Partial<Record<Component, number>> = {};
      for (const c of runningComponents(info.dir)) out[c] = readPid(l.pidFile(c));
      return out;
    },
  };
}

async function startComponentFromInfo(info: ControlPlaneInfo, component: Component, timeoutMs = 120_000): Promise<void> {
  const l = layoutOf(info.dir);
  const { binary, args } = info.commands[component];
  const pid = spawnDetached({ binary, args, logFile: l.log(component), pidFile: l.pidFile(component) });
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (!isOurs(pid, markerOf(info.dir))) {
      throw new Error(`${component} exited during startup; last log lines (${l.log(component)}):\n${tailOf(l.log(component))}`);
    }
    if (await healthy(info, component)) return;
    if (Date.now() > deadline) {
      throw new Error(`${component} not healthy after ${timeoutMs} ms; last log lines (${l.log(component)}):\n${tailOf(l.log(component))}`);
    }
    await sleep(200);
  }
}

async function healthy(info: ControlPlaneInfo, component: Component): Promise<boolean> {
  switch (component) {
    case 'etcd': {
      const res = await httpGet(`${info.etcdUrl}/health`);
      return res?.status === 200 && res.body.includes('"health":"true"');
    }
    case 'kube-apiserver': {
      // The serving cert (and its CA) appear in the cert dir once the server has generated them.
      if (!existsSync(info.caFile)) return false;
      const res = await httpGet(`${info.apiServerUrl}/readyz`, { ca: readFileSync(info.caFile, 'utf8'), token: info.token });
      return res?.status === 200;
    }
    case 'kube-controller-manager': {
      // /healthz passes before the controllers run; their own checks appear once all have
      // started (until then an API server outage makes the controller-manager exit).
      const res = await httpGet(`https://127.0.0.1:${info.ports.controllerManager}/healthz?verbose`);
      return res?.status === 200 && /^\[\+\][a-z0-9-]+-controller ok$/m.test(res.body);
    }
    case 'kube-scheduler':
      return (await httpGet(`https://127.0.0.1:${info.ports.scheduler}/healthz`))?.status === 200;
  }
}

function kubeconfigPathFor(l: Layout, user: string): string {
  if (user === 'admin') return l.kubeconfig;
  if (user === 'system:kube-controller-manager') return l.componentKubeconfig('kube-controller-manager');
  if (user === 'system:kube-scheduler') return l.componentKubeconfig('kube-scheduler');
  return l.userKubeconfig(user.replace(/:/g, '_'));
}

function tailOf(file: string, lines = 25): string {
  try {
    return readFileSync(file, 'utf8').trimEnd().split('\n').slice(-lines).join('\n');
  } catch {
    return '(no log)';
  }
}

function checkedDir(dir: string): string {
  if (typeof dir !== 'string' || dir.trim() === '') throw new Error('dir: required; pass the directory that will hold the control plane state');
  const abs = isAbsolute(dir) ? dir : resolve(dir);
  if (abs === '/') throw new Error('dir: "/" is not allowed; pass a dedicated directory such as /tmp/virtops-testenv');
  mkdirSync(abs, { recursive: true });
  return abs.replace(/\/+$/, '');
}

// Leave no process behind: whatever this Node process started and did not stop dies with it.
const killedOnExit = killOnExit((d) => {
  const l = layoutOf(d);
  for (const c of [...COMPONENTS].reverse()) killNow(l.pidFile(c), markerOf(d));
});
