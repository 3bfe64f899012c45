/**
 * What `virtops synth --watch` (synth/watch.ts), its worker (synth/watch-worker.ts) and the
 * VirtopsApp running inside that worker share. Kept apart from app.ts so the CLI side loads
 * neither cdk8s nor the app.
 */

/**
 * globalThis key of the YAML cache the watch worker installs: JSON text of one document →
 * the YAML cdk8s wrote for it. VirtopsApp.synth serves unchanged documents from it, so a
 * re-synthesis in the long-lived worker serializes only what changed (YAML serialization is
 * most of a synth). A Symbol.for key, so any copy of synth/app.ts (a project's own
 * node_modules/virtops) finds it.
 */
export const YAML_CACHE_KEY = Symbol.for('virtops.synth.watch.yamlCache');

export type YamlCache = Map<string, string>;

/** Parent → worker. */
export type WatchRequest = { type: 'synth'; generation: number; staging: string };

/** Worker → parent, one per request (and `ready` once at start). */
export type WatchReply =
  | { type: 'ready' }
  | {
    type: 'result';
    generation: number;
    /** Output file → sha256 of its content, for every file the app wrote into `staging`. */
    files?: Record<string, string>;
    objects?: number;
    /** The app failed or wrote invalid manifests: the message names each problem. */
    error?: string;
    /** Resident set after this run; the parent replaces a worker that grew too large. */
    rss: number;
    /** Milliseconds: app run (import + synth), validation; CPU time of the whole run. */
    appMs: number;
    validateMs: number;
    cpuMs: number;
  };
