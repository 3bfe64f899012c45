/** virtops' construct library: typed KubeVirt VirtualMachines on cdk8s. */
export * from './size.js';
export * from './names.js';
export * from './cloud-init.js';
export * from './access-credentials.js';
export * from './volume.js';
export * from './data-volume.js';
export * from './disk.js';
export * from './network.js';
export * from './service.js';
export * from './firmware.js';
export * from './clock.js';
export * from './features.js';
export * from './validate.js';
export * from './virtual-machine.js';
export * from './instancetype.js';
export * from './pool.js';
export * from './common-instancetypes.js';
