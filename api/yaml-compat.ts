/**
 * YAML that every reader of virtops' output reads back as written.
 *
 * The yaml package writes a string plain (unquoted) unless the schema it writes with would
 * read that plain text as something else. Our YAML has readers with other schemas:
 * - kubectl and the Kubernetes API machinery (sigs.k8s.io/yaml: YAML 1.1) and cloud-init
 *   (PyYAML: YAML 1.1): `yes`, `on`, `017`, `1:20`, `2001-12-14` are not strings there;
 * - the git source and the CLI (the yaml package, YAML 1.2 core schema) and synth's own
 *   validation (js-yaml's core schema): `0o17` is 15 there, and js-yaml also reads `+0o7`,
 *   `-0x1` and `1_000` as numbers;
 * - `<<` is a merge key in YAML 1.1 and `=` PyYAML's "value" tag, which safe_load refuses.
 *
 * So cdk8s' writer (YAML 1.1) alone wrote the label value `"0o17"` plain, and the git source
 * read it as the number 15. `UNAMBIGUOUS` lists, as the yaml package's `compat` option, the
 * schemas of all those readers: the writer then quotes any string one of them would misread,
 * and writes everything else exactly as before. test/unit/api/yaml-compat.test.ts reads the
 * output back with each reader.
 */
import jsYaml from 'js-yaml';
import { Schema, stringify, type CreateNodeOptions, type DocumentOptions, type SchemaOptions, type ToStringOptions } from 'yaml';

/** js-yaml's implicit core types (null, bool, int, float); not in its typings. */
const jsYamlImplicit = (jsYaml.CORE_SCHEMA as unknown as { compiledImplicit: Array<{ resolve(data: string): boolean }> }).compiledImplicit;

/**
 * A tag that only tells the yaml package's stringifier "this plain text is not a string to
 * some reader": it quotes a string when a default tag's `test` matches (stringifyString.js),
 * and a compat tag is never used to read.
 */
const misreadElsewhere = {
  tag: 'tag:virtops.io,2026:misread-elsewhere',
  default: true,
  test: {
    test: (text: string): boolean => /^(?:<<|=)$/.test(text) || jsYamlImplicit.some((type) => type.resolve(text)),
  } as unknown as RegExp,
  resolve: (text: string): string => text,
};

/** The yaml package's `compat` tags: YAML 1.1, YAML 1.2 core and js-yaml's core schema. */
const UNAMBIGUOUS: NonNullable<SchemaOptions['compat']> = [
  ...new Schema({ schema: 'yaml-1.1' }).tags,
  ...new Schema({ schema: 'core' }).tags,
  misreadElsewhere,
];

type StringifyOptions = DocumentOptions & SchemaOptions & CreateNodeOptions & ToStringOptions;

/**
 * `options` for the yaml package's `stringify`, so that its text reads back the same in
 * every reader above. Writing YAML 1.1, the writer would also turn the string `<<` into a
 * merge key (written plain); without that tag it is a string, and quoted.
 */
export function unambiguous(options: StringifyOptions): StringifyOptions {
  return { ...options, compat: UNAMBIGUOUS, customTags: (tags) => tags.filter((t) => (typeof t === 'string' ? t !== 'merge' : t.tag !== 'tag:yaml.org,2002:merge')) };
}

/** The yaml package's `stringify(value)` (its defaults, YAML 1.2), quoting what a YAML 1.1 reader would misread. */
export function toYaml(value: unknown, options: StringifyOptions = {}): string {
  return stringify(value, unambiguous(options));
}
