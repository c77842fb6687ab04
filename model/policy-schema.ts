/**
 * The zod schemas of the policy: the spec's `policy` section and the host facts host rules read. Apart from
 * policy.ts so workflows, which evaluate the policy, do not load zod: every workflow run evaluates its own copy of
 * the modules it imports.
 */
import { z } from 'zod';
import { BUILT_IN_IDS, DEFAULT_SEVERITY_THRESHOLD } from './policy';

export const policySeveritySchema = z.enum(['critical', 'high', 'medium', 'low']);
export type PolicySeverity = z.infer<typeof policySeveritySchema>;

/** What drift observes on a host that host rules read. Each part is optional: a rule that needs a missing one is skipped. */
export const hostFactsSchema = z
  .strictObject({
    sshd: z
      .record(z.string(), z.string())
      .optional()
      .describe('Effective sshd config as `sshd -T` prints it: lowercase keyword → value'),
    secretFiles: z
      .array(
        z.strictObject({
          path: z.string(),
          mode: z.string().regex(/^[0-7]{3,4}$/, 'must be an octal mode such as "0600"'),
          owner: z.string(),
          group: z.string(),
        }),
      )
      .optional()
      .describe('Files holding secrets, with their mode and owner'),
    gatewayToken: z
      .strictObject({ path: z.string(), length: z.number().int().min(0) })
      .optional()
      .describe('The gateway token file and the length of its content (never the content)'),
    openPorts: z
      .array(z.strictObject({ port: z.number().int().min(1).max(65535), protocol: z.enum(['tcp', 'udp']) }))
      .optional()
      .describe('Ports the firewall accepts inbound connections on'),
  })
  .meta({ title: 'Host facts', description: 'What drift observed on a host, as policy rules read it' });
export type HostFacts = z.infer<typeof hostFactsSchema>;
// ---------------------------------------------------------------------------------------------------------------
// The spec's `policy` section: user rules, disabled built-ins, threshold

const ruleIdSchema = z
  .string()
  .regex(
    /^[a-z0-9][a-z0-9._-]{0,99}$/,
    'must be lowercase letters, digits, ".", "_" and "-", such as "acme.gateway-bind"',
  );

/** Scalars a matcher compares with (`===`). */
const scalarSchema = z.union([z.string(), z.number(), z.boolean(), z.null()]);

const OPERATORS = ['equals', 'notEquals', 'in', 'notIn', 'matches', 'exists'] as const;

const isRegExp = (source: string) => {
  try {
    new RegExp(source);
    return true;
  } catch {
    return false;
  }
};

export const matcherSchema = z
  .strictObject({
    path: z
      .string()
      .regex(
        /^[^.[\]\s]+(\.[^.[\]\s]+|\[(\*|\d+)\])*$/,
        'must be a dotted path such as "gateway.bind" or "channels.*.accounts[*].dmPolicy"',
      )
      .describe('Dotted path; "*" matches one key or array index (or part of a key), "**" any depth'),
    equals: scalarSchema.optional().describe('Violated where the value is exactly this'),
    notEquals: scalarSchema.optional().describe('Violated where the value is present and not this'),
    in: z.array(scalarSchema).min(1).optional().describe('Violated where the value is one of these'),
    notIn: z.array(scalarSchema).min(1).optional().describe('Violated where the value is present and none of these'),
    matches: z
      .string()
      .refine(isRegExp, 'must be a valid regular expression')
      .optional()
      .describe('Violated where the value, as text, matches this regular expression'),
    exists: z.boolean().optional().describe('true: violated where the path is present; false: where it is missing'),
  })
  .refine(
    (m) => OPERATORS.filter((op) => m[op] !== undefined).length === 1,
    `must set exactly one of ${OPERATORS.join(', ')}`,
  )
  .meta({ title: 'Matcher', description: 'Where a user rule is violated. Comparisons apply only to present values' });
export type Matcher = z.infer<typeof matcherSchema>;

export const userRuleSchema = z
  .strictObject({
    id: ruleIdSchema,
    severity: policySeveritySchema,
    message: z.string().min(1).max(500),
    subject: z
      .enum(['openclaw', 'spec', 'host'])
      .default('openclaw')
      .describe('What `when.path` reads: the rendered or observed openclaw.json, steward.yaml, or host facts'),
    when: matcherSchema,
  })
  .meta({ title: 'Policy rule', description: "An operator's rule: a finding wherever `when` matches" });
export type UserRule = z.infer<typeof userRuleSchema>;

export const policySchema = z
  .strictObject({
    rules: z.array(userRuleSchema).default([]).describe('Rules of your own, evaluated with the built-in ones'),
    disable: z.array(z.string()).default([]).describe('Ids of built-in rules to turn off'),
    severityThreshold: policySeveritySchema
      .default(DEFAULT_SEVERITY_THRESHOLD)
      .describe('Findings below this severity are not reported, and do not refuse a spec'),
  })
  .superRefine((policy, ctx) => {
    policy.disable.forEach((id, i) => {
      if (!BUILT_IN_IDS.has(id))
        ctx.addIssue({ code: 'custom', path: ['disable', i], message: 'is not a built-in rule' });
    });
    const seen = new Set<string>();
    policy.rules.forEach(({ id }, i) => {
      const clash = BUILT_IN_IDS.has(id) ? 'is a built-in rule id' : seen.has(id) ? 'is used twice' : undefined;
      if (clash) ctx.addIssue({ code: 'custom', path: ['rules', i, 'id'], message: clash });
      seen.add(id);
    });
  })
  .meta({
    title: 'Policy',
    description:
      'Governance: a spec that violates a rule is refused before anything is applied; drift reports hosts that do',
  });
export type PolicyConfig = z.infer<typeof policySchema>;
export type PolicyConfigInput = z.input<typeof policySchema>;
