/**
 * The converter's intermediate form: plain objects in a small object notation (`'@attr'`
 * for attributes, `'#'` for text, arrays for repeated elements, `undefined` for absent).
 * Each concern returns such a fragment, which keeps it pure and easy to compare in table
 * tests; only `renderDomain` turns the assembled tree into text.
 *
 * fast-xml-parser's builder writes it (xmlbuilder2 did until 2026-12: loading it cost a
 * launcher ~30 ms of CPU per start against ~5 ms, BENCHMARKS.md "launcher CPU").
 */
import { XMLBuilder } from 'fast-xml-parser';

export type XmlValue = string | number | XmlNode | XmlNode[] | undefined;
export interface XmlNode {
  [key: string]: XmlValue;
}

const builder = new XMLBuilder({
  ignoreAttributes: false,
  attributeNamePrefix: '@',
  textNodeName: '#',
  format: true,
  indentBy: '  ',
  suppressEmptyNode: true,
});

/** Serialises a `{ domain: ... }` tree. Attribute/child order follows insertion order, so output is deterministic. */
export function renderDomain(root: XmlNode): string {
  return builder.build(root) as string;
}

/** libvirt's on/off and yes/no attribute spellings. */
export const onOff = (b: boolean): 'on' | 'off' => (b ? 'on' : 'off');
export const yesNo = (b: boolean): 'yes' | 'no' => (b ? 'yes' : 'no');
