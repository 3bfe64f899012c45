/** The JSON shape of the core/v1 Pod fields that launcher Pods use (plain data, as emitted). */
import type { ObjectMeta } from '../api/kubevirt.js';

export interface EnvVar {
  name: string;
  value?: string;
  valueFrom?: { fieldRef: { apiVersion?: string; fieldPath: string } };
}

export interface VolumeMount {
  name: string;
  mountPath: string;
  readOnly?: boolean;
  mountPropagation?: 'HostToContainer';
  /** A sub-directory of the volume named by `$(VAR)`s of the container's env (kubelet expands it). */
  subPathExpr?: string;
}

export interface ResourceList {
  cpu?: string;
  memory?: string;
  'ephemeral-storage'?: string;
}

export interface Container {
  name: string;
  image: string;
  imagePullPolicy?: 'Always' | 'IfNotPresent' | 'Never';
  command: string[];
  args?: string[];
  env?: EnvVar[];
  resources: { requests: ResourceList; limits?: ResourceList };
  securityContext?: Record<string, unknown>;
  volumeMounts?: VolumeMount[];
}

export interface PodVolume {
  name: string;
  emptyDir?: Record<string, never>;
  persistentVolumeClaim?: { claimName: string; readOnly?: boolean };
  hostPath?: { path: string; type?: string };
  secret?: { secretName?: string; optional?: boolean };
  configMap?: { name?: string; optional?: boolean };
}

export interface PodSpec {
  restartPolicy: 'Never';
  terminationGracePeriodSeconds: number;
  automountServiceAccountToken: boolean;
  hostname?: string;
  subdomain?: string;
  priorityClassName?: string;
  schedulerName?: string;
  nodeSelector: Record<string, string>;
  tolerations?: Record<string, unknown>[];
  affinity?: Record<string, unknown>;
  securityContext?: Record<string, unknown>;
  initContainers: Container[];
  containers: Container[];
  volumes: PodVolume[];
  imagePullSecrets?: { name: string }[];
}

export interface PodManifest {
  apiVersion: 'v1';
  kind: 'Pod';
  metadata: ObjectMeta & { name: string };
  spec: PodSpec;
}
