/**
 * PlainApiObject (dsl/plain-api-object.ts) renders exactly the JSON cdk8s' own
 * ApiObject.toJson renders, for every kind of value cdk8s' resolvers treat differently, for
 * the VMs and launcher Pods VirtopsApp synthesizes, and for arbitrary JSON; with custom
 * resolvers it steps aside.
 */
import fc from 'fast-check';
import { ApiObject, App, Chart, JsonPatch, Lazy, type IResolver, type ResolutionContext } from 'cdk8s';
import { describe, expect, it } from 'vitest';
import { PlainApiObject, plainApiObjectJson } from '../../../dsl/plain-api-object.js';
import { CloudConfig, Size, UserData, VirtualMachine, Volume } from '../../../dsl/index.js';
import { VirtopsApp } from '../../../synth/app.js';
import { Cirros } from '../../../vms/cirros.js';
import { KubevirtSmokeFedora } from '../../../vms/kubevirt-smoke-fedora.js';
import { TestGuest } from '../../../vms/test-guest.js';

const OUT = '/nonexistent/virtops-plain-api-object-never-written';
const cdk8sJson = (o: ApiObject): unknown => ApiObject.prototype.toJson.call(o);

/** A union value as cdk8s' generated imports make them (IntOrString, Quantity). */
class Union {
  private constructor(public readonly value: string | number) {}
  static of(v: string | number): Union {
    return new Union(v);
  }
}

class Opaque {
  readonly x = 1;
}

function objectWith(spec: unknown, app = new App({ outdir: OUT })): PlainApiObject {
  const chart = new Chart(app, 'c', { namespace: 'ns', labels: { team: 'a' } });
  return new PlainApiObject(chart, 'o', { apiVersion: 'example.com/v1', kind: 'Thing', metadata: { name: 'thing', annotations: { a: 'b' } }, spec } as never);
}

describe('PlainApiObject', () => {
  it('renders what cdk8s renders for every value its resolvers treat differently', () => {
    const o = objectWith({
      plain: { b: 2, a: 1, nested: [{ z: true, y: null, x: undefined }, null, 3, 'str', []] },
      empty: {},
      emptyList: [],
      lazy: Lazy.any({ produce: () => ({ d: Lazy.any({ produce: () => [1, Lazy.any({ produce: () => 'deep' })] }), c: undefined }) }),
      token: { resolve: () => ({ resolved: 'by token', n: Union.of(5) }) },
      union: Union.of('1Gi'),
      unions: [Union.of(80), Union.of('http')],
      zero: 0,
      falsy: false,
      blank: '',
    });
    o.addJsonPatch(JsonPatch.add('/spec/patched', { by: 'patch' }));
    const fast = plainApiObjectJson(o);
    expect(fast).toBeDefined();
    expect(JSON.stringify(o.toJson())).toBe(JSON.stringify(cdk8sJson(o)));
    expect(JSON.stringify(fast)).toContain('"patched":{"by":"patch"}');
  });

  it('renders metadata as cdk8s does: empty maps and lists dropped, Lazy and token values, extra fields', () => {
    const app = new App({ outdir: OUT });
    const chart = new Chart(app, 'c', { namespace: 'ns' });
    const o = new PlainApiObject(chart, 'o', {
      apiVersion: 'v1', kind: 'Thing',
      metadata: { name: 'thing', annotations: {}, finalizers: [], generateName: Lazy.any({ produce: () => 'gen-' }), extraEmpty: {}, extraList: [], nested: { keep: 1, drop: {} } },
    } as never);
    o.metadata.addLabel('z', 'last');
    o.metadata.addLabel('a', 'first');
    o.metadata.add('fromToken', { resolve: () => ({ b: Union.of('x'), a: [] }) });
    o.metadata.add('emptyByLazy', Lazy.any({ produce: () => [] }));
    o.metadata.addOwnerReference({ apiVersion: 'v1', kind: 'Owner', name: 'o', uid: 'u' });
    expect(plainApiObjectJson(o)).toBeDefined();
    expect(JSON.stringify(o.toJson())).toBe(JSON.stringify(cdk8sJson(o)));
    for (const sort of ['1', undefined]) {
      if (sort) process.env.CDK8S_DISABLE_SORT = sort;
      try {
        expect(JSON.stringify(o.toJson())).toBe(JSON.stringify(cdk8sJson(o)));
      } finally {
        delete process.env.CDK8S_DISABLE_SORT;
      }
    }
    const bare = new PlainApiObject(chart, 'bare', { apiVersion: 'v1', kind: 'Thing', metadata: { name: 'bare', labels: {} } } as never);
    expect(JSON.stringify(bare.toJson())).toBe(JSON.stringify(cdk8sJson(bare)));
  });

  it('renders arbitrary JSON in metadata as cdk8s does, keys in any script and any number sorted as cdk8s sorts them', () => {
    const keys = fc.string({ unit: 'binary' });
    fc.assert(
      fc.property(fc.dictionary(keys, fc.jsonValue(), { maxKeys: 40 }), fc.dictionary(keys, fc.string(), { maxKeys: 40 }), (extra, labels) => {
        const chart = new Chart(new App({ outdir: OUT }), 'c');
        const o = new PlainApiObject(chart, 'o', { apiVersion: 'v1', kind: 'Thing', metadata: { ...extra, name: 'n', labels } } as never);
        expect(JSON.stringify(o.toJson())).toBe(JSON.stringify(cdk8sJson(o)));
      }),
      { seed: 0x91a1_0002, numRuns: 300 },
    );
  });

  it('keeps key order when CDK8S_DISABLE_SORT is set, as cdk8s does', () => {
    const o = objectWith({ b: 1, a: { d: 1, c: 2 } });
    process.env.CDK8S_DISABLE_SORT = '1';
    try {
      expect(JSON.stringify(o.toJson())).toBe(JSON.stringify(cdk8sJson(o)));
    } finally {
      delete process.env.CDK8S_DISABLE_SORT;
    }
  });

  it('fails as cdk8s fails on a value it cannot render, naming the construct', () => {
    const o = objectWith({ bad: new Opaque() });
    expect(() => o.toJson()).toThrow(/Failed serializing construct at path 'c\/o'.*non-simple object of type 'Opaque'/);
    expect(() => cdk8sJson(o)).toThrow(/non-simple object of type 'Opaque'/);
  });

  it("steps aside for an app with custom resolvers: they see every value, as in cdk8s", () => {
    const upper: IResolver = { resolve: (ctx: ResolutionContext) => (typeof ctx.value === 'string' && ctx.value !== ctx.value.toUpperCase() ? ctx.replaceValue(ctx.value.toUpperCase()) : undefined) };
    const o = objectWith({ a: 'x' }, new App({ outdir: OUT, resolvers: [upper] }));
    expect(plainApiObjectJson(o)).toBeUndefined();
    expect(o.toJson()).toEqual(cdk8sJson(o));
    expect((o.toJson() as { spec: unknown }).spec).toEqual({ a: 'X' });
  });

  it('renders arbitrary JSON as cdk8s does', () => {
    fc.assert(
      fc.property(fc.jsonValue(), (spec) => {
        const o = objectWith(spec);
        expect(JSON.stringify(o.toJson())).toBe(JSON.stringify(cdk8sJson(o)));
      }),
      { seed: 0x91a1_0001, numRuns: 300 },
    );
  });

  it("renders VirtopsApp's VMs and launcher Pods as cdk8s does (examples, cloud-init, patches)", () => {
    const app = new VirtopsApp({ outdir: OUT });
    new Cirros(app);
    new KubevirtSmokeFedora(app);
    new TestGuest(app);
    const chart = new Chart(app, 'fleet', { namespace: 'bench' });
    const vm = new VirtualMachine(chart, 'vm-1', { name: 'vm-1', memory: { guest: Size.mebibytes(300) }, labels: { tier: 'web' } });
    vm.addDisk('rootdisk', Volume.fromContainerDisk('quay.io/containerdisks/fedora:40'), { bootOrder: 1 });
    vm.addDisk('cloudinitdisk', Volume.fromCloudInitNoCloud({ userData: UserData.fromCloudConfig(new CloudConfig({ hostname: 'vm-1', runcmd: ['echo hi'] })) }));
    vm.apiObject.addJsonPatch(JsonPatch.add('/metadata/annotations', { 'example.com/patched': 'yes' }));
    (app as unknown as { attachLauncherPods(): number }).attachLauncherPods();
    // (instanceof matches every ApiObject: cdk8s defines Symbol.hasInstance.)
    const objects = app.node.findAll().filter((c): c is PlainApiObject => Object.prototype.isPrototypeOf.call(PlainApiObject.prototype, c));
    expect(objects.length).toBeGreaterThanOrEqual(8); // 4 VMs, 4 launcher Pods
    for (const o of objects) {
      expect(plainApiObjectJson(o), o.node.path).toBeDefined();
      expect(JSON.stringify(o.toJson()), o.node.path).toBe(JSON.stringify(cdk8sJson(o)));
    }
  });
});
