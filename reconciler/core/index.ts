/** The reconciler's pure core, shared by the single-host and cluster modes. */
export * from './types.js';
export * from './run-strategy.js';
export * from './backoff.js';
export * from './canonical.js';
export * from './spec-change.js';
export * from './decide.js';
export * from './status.js';
export * from './inventory.js';
export * from './overrides.js';
export * from './reconcile-state.js';
export * from './launcher-phase.js';
export * from './events.js';
