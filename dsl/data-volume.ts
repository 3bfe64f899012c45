/**
 * CDI DataVolumes (`cdi.kubevirt.io/v1beta1`): a claim filled once from an HTTP(S) URL, a
 * registry image or another claim, or blank. `new DataVolume(...)` writes one to dist/ (its
 * claim outlives every VM; deleted when the DataVolume leaves git);
 * `dataVolumeTemplate(...)` makes an entry for a VM's `dataVolumeTemplates` (the claim goes
 * with that VM). Either is used from a VM with `Volume.fromDataVolume(name)`.
 *
 * CDI has no checksum field; virtops reads `virtops.io/checksum: sha256:<hex>` from the
 * DataVolume's annotations (`checksum` here), and refuses an import whose download differs.
 */
import { ApiObject } from 'cdk8s';
import { Construct } from 'constructs';
import { CHECKSUM_ANNOTATION, planImport, type DataVolumeSpec } from '../api/datavolume.js';
import type { Size } from './size.js';

export class DataVolumeSource {
  /** Download a disk image (qcow2, raw, vmdk, vdi, vhd(x)) over HTTP(S); `checksum`: `sha256:<hex>` or `sha512:<hex>`. */
  public static http(url: string, options: { readonly checksum?: string } = {}): DataVolumeSource {
    return new DataVolumeSource({ http: { url } }, options.checksum);
  }

  /** A containerDisk-style image (the disk under /disk/), e.g. `quay.io/containerdisks/fedora:40`. */
  public static registry(image: string): DataVolumeSource {
    return new DataVolumeSource({ registry: { url: image.startsWith('docker://') ? image : `docker://${image}` } });
  }

  /** A copy of another claim (or DataVolume) of this namespace, or of `namespace`. */
  public static clone(claim: string, options: { readonly namespace?: string } = {}): DataVolumeSource {
    return new DataVolumeSource({ pvc: { name: claim, ...(options.namespace ? { namespace: options.namespace } : {}) } });
  }

  /** An empty raw disk of the DataVolume's size. */
  public static blank(): DataVolumeSource {
    return new DataVolumeSource({ blank: {} });
  }

  private constructor(readonly source: NonNullable<DataVolumeSpec['source']>, readonly checksum?: string) {}
}

export interface DataVolumeProps {
  readonly source: DataVolumeSource;
  /** The claim's size (`storage.resources.requests.storage`). @default - the image's own size (not for blank) */
  readonly size?: Size;
  /** @default - the construct id */
  readonly name?: string;
  readonly labels?: Readonly<Record<string, string>>;
}

function dataVolumeBody(name: string, props: DataVolumeProps): { metadata: Record<string, unknown>; spec: DataVolumeSpec } {
  const annotations = props.source.checksum ? { [CHECKSUM_ANNOTATION]: props.source.checksum } : undefined;
  return {
    metadata: { name, ...(props.labels ? { labels: { ...props.labels } } : {}), ...(annotations ? { annotations } : {}) },
    spec: { source: structuredClone(props.source.source), storage: props.size ? { resources: { requests: { storage: props.size.toQuantity() } } } : {} },
  };
}

function problems(name: string, namespace: string, props: DataVolumeProps, at: string): string[] {
  const body = dataVolumeBody(name, props);
  const r = planImport({ metadata: body.metadata as { name: string }, spec: body.spec }, namespace, at);
  return 'issues' in r ? r.issues.map((i) => `${i.path}: ${i.message}${i.fix ? ` (fix: ${i.fix})` : ''}`) : [];
}

/** An entry for `VirtualMachineProps.dataVolumeTemplates`: a DataVolume made for, and deleted with, the VM. */
export function dataVolumeTemplate(name: string, props: DataVolumeProps): Record<string, unknown> {
  const found = problems(name, 'default', props, '/spec/dataVolumeTemplates/*/spec');
  if (found.length) throw new Error(`dataVolumeTemplate ${name}: ${found.join('; ')}`);
  return dataVolumeBody(name, props);
}

export class DataVolume extends Construct {
  public readonly apiObject: ApiObject;
  public readonly name: string;

  constructor(scope: Construct, id: string, props: DataVolumeProps) {
    super(scope, id);
    this.name = props.name ?? id;
    const body = dataVolumeBody(this.name, props);
    this.apiObject = new ApiObject(this, 'Resource', { apiVersion: 'cdi.kubevirt.io/v1beta1', kind: 'DataVolume', metadata: body.metadata, spec: body.spec });
    this.node.addValidation({ validate: () => problems(this.name, this.apiObject.metadata.namespace ?? 'default', props, '/spec') });
  }
}
