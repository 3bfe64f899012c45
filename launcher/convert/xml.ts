/**
 * The converter's intermediate form: plain objects in xmlbuilder2's object notation
 * (`'@attr'` for attributes, `'#'` for text, arrays for repeated elements). Each concern
 * returns such a fragment, which keeps it pure and easy to compare in table tests; only
 * `renderDomain` turns the assembled tree into text.
 */
import { create } from 'xmlbuilder2';

export type XmlValue = string | number | XmlNode | XmlNode[] | undefined;
export interface XmlNode {
  [key: string]: XmlValue;
}

/** Serialises a `{ domain: ... }` tree. Attribute/child order follows insertion order, so output is deterministic. */
export function renderDomain(root: XmlNode): string {
  return create(root).end({ prettyPrint: true, headless: true }) + '\n';
}

/** libvirt's on/off and yes/no attribute spellings. */
export const onOff = (b: boolean): 'on' | 'off' => (b ? 'on' : 'off');
export const yesNo = (b: boolean): 'yes' | 'no' => (b ? 'yes' : 'no');
