/**
 * renderDomain: the converter's object notation → XML text. A property test parses the
 * text back and expects the tree it came from, for any text in attributes and elements
 * (markup characters and entity-like text included), and fixed cases pin the layout.
 */
import { describe, expect, test } from 'vitest';
import fc from 'fast-check';
import { XMLParser } from 'fast-xml-parser';
import { renderDomain, type XmlNode, type XmlValue } from '../../../launcher/convert/xml.js';

const parser = new XMLParser({ ignoreAttributes: false, attributeNamePrefix: '@', textNodeName: '#', parseTagValue: false, parseAttributeValue: false, trimValues: true });

/** What the parser gives back for a tree: text as strings, absent values dropped, one-element lists as the element, empty elements as ''. */
function expected(v: XmlValue): unknown {
  if (v === undefined) return undefined;
  if (typeof v === 'string' || typeof v === 'number') return String(v);
  if (Array.isArray(v)) {
    const items = v.map(expected);
    return items.length === 1 ? items[0] : items;
  }
  const out: Record<string, unknown> = {};
  for (const [k, x] of Object.entries(v)) {
    if (x === undefined || (Array.isArray(x) && x.length === 0)) continue;
    out[k] = expected(x);
  }
  const keys = Object.keys(out);
  if (keys.length === 0) return '';
  // An element with only text (no attributes) parses as the text itself.
  if (keys.length === 1 && keys[0] === '#') return out['#'];
  return out;
}

// Text as the parser keeps it (trimmed, non-empty): markup characters and entity-like text included.
const text = fc
  .oneof(fc.string({ minLength: 1 }), fc.constantFrom('a&b', '&amp;', '&A;', '<x/>', '"q"', "it's", ']]>', '1 > 0'), fc.integer().map(String))
  .map((s) => s.trim())
  .filter((s) => s.length > 0);
const value = fc.oneof(text, fc.integer());
const elementName = fc.constantFrom('disk', 'source', 'target', 'driver', 'name');
const attributeName = fc.constantFrom('@type', '@dev', '@file', '@name');

const node: fc.Arbitrary<XmlNode> = fc.letrec<{ node: XmlNode }>((tie) => ({
  node: fc
    .tuple(
      fc.dictionary(attributeName, fc.option(value, { nil: undefined }), { maxKeys: 2 }),
      fc.option(value, { nil: undefined }),
      fc.dictionary(elementName, fc.oneof({ maxDepth: 3 }, value, tie('node'), fc.array(tie('node'), { maxLength: 3 }), fc.constant(undefined)), { maxKeys: 3 }),
    )
    // libvirt's domain XML has no mixed content: an element holds text or children.
    .map(([attributes, body, children]): XmlNode => ({ ...attributes, ...(body === undefined ? children : { '#': body }) })),
})).node;

describe('renderDomain', () => {
  test('parses back to the tree it was rendered from', () => {
    fc.assert(
      fc.property(node, (tree) => {
        expect(parser.parse(renderDomain({ domain: tree }))).toEqual({ domain: expected(tree) });
      }),
      { numRuns: 2000 },
    );
  });

  test('indents by two spaces, closes empty elements, escapes markup and ends with a newline', () => {
    const xml = renderDomain({
      domain: { '@type': 'qemu', name: 'a&b', memory: { '@unit': 'KiB', '#': 131072 }, devices: { disk: [{ source: { '@file': '/x"<y' } }, { source: { '@file': '/z' } }], acpi: {}, absent: undefined } },
    });
    expect(xml).toBe(
      [
        '<domain type="qemu">',
        '  <name>a&amp;b</name>',
        '  <memory unit="KiB">131072</memory>',
        '  <devices>',
        '    <disk>',
        '      <source file="/x&quot;&lt;y"/>',
        '    </disk>',
        '    <disk>',
        '      <source file="/z"/>',
        '    </disk>',
        '    <acpi/>',
        '  </devices>',
        '</domain>',
        '',
      ].join('\n'),
    );
  });
});
