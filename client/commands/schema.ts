/** `steward schema`: the spec's JSON Schema, generated from the zod schema (input side: defaults are optional). */
import { z } from 'zod';
import { specSchema } from '../../model/schema';

export function jsonSchema(): unknown {
  return z.toJSONSchema(specSchema, { io: 'input', unrepresentable: 'any' });
}
