/** The key a compiled schema is stored under: a hash of the schema as ajv receives it. */
import { createHash } from 'node:crypto';

export function schemaKey(schema: unknown): string {
  return createHash('sha256').update(JSON.stringify(schema)).digest('hex').slice(0, 32);
}
