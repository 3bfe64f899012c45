/** The git source: branch watching/polling, validated revisions, push webhooks. */
export * from './git-source.js';
export * from './manifests.js';
export * from './freshness.js';
export * from './sandbox.js';
export * from './webhook.js';
export * from './webhook-http.js';
