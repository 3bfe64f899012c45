/** launcher/convert: VMI → libvirt domain XML (pure). */
export { convertVmi, type ConversionResult } from './convert.js';
export { ConversionError } from './errors.js';
export type { ConversionContext, MaterializedVolume, NetworkAttachment, Emulation } from './context.js';
export { METADATA_NS, METADATA_PREFIX, identityOf, type Identity } from './identity.js';
export { serialSocketPath, serialLogPath, MAX_SOCKET_PATH } from './console.js';
export { vncSocketPath, GUEST_AGENT_CHANNEL } from './devices.js';
export { nodeContext, vmiDir, DEFAULT_STATE_DIR, type NodeLayoutOptions } from './node-layout.js';
export { ovmfFirmware } from '../firmware-files.js';
export { parseQuantity, ceilQuantity, compareQuantities, QuantityError } from './quantity.js';
