import { z } from 'zod';
import { MqError } from './errors.ts';

const SECRET_PARAM = /pass|secret|token|key|credential|sig|auth/i;

/**
 * A URL safe to log or put in an error: the password and any secret-looking query parameter
 * replaced by `***`.
 */
export function redactUrl(url: string | URL): string {
  let parsed: URL;
  try {
    parsed = typeof url === 'string' ? new URL(url) : new URL(url.href);
  } catch {
    return '<unparseable url>';
  }
  if (parsed.password) parsed.password = '***';
  for (const name of [...parsed.searchParams.keys()]) {
    if (SECRET_PARAM.test(name)) parsed.searchParams.set(name, '***');
  }
  return parsed.href.replace(/%2A%2A%2A/g, '***');
}

/**
 * A CONFIG error naming what is wrong. The URL is shown without its credentials and without its
 * query: an unknown or mistyped parameter may hold a secret under a harmless-looking name.
 */
export function configError(message: string, url?: string | URL, cause?: unknown): MqError {
  const shown = url === undefined ? undefined : withoutQuery(redactUrl(url));
  return new MqError('CONFIG', shown === undefined ? message : `${message} (${shown})`, {
    cause: cause instanceof z.ZodError ? undefined : cause,
    details: shown === undefined ? {} : { url: shown },
  });
}

function withoutQuery(url: string): string {
  const i = url.search(/[?#]/);
  return i < 0 ? url : url.slice(0, i);
}

/**
 * Validates an adapter's options: URL query parameters merged under explicit options (explicit
 * wins), checked against `schema`. Errors list the offending option names and never their values,
 * which may be secrets.
 */
export function parseUrlOptions<S extends z.ZodType>(
  schema: S,
  url: URL,
  options: Readonly<Record<string, unknown>>,
): z.output<S> {
  const fromQuery: Record<string, unknown> = {};
  for (const [name, value] of url.searchParams) fromQuery[name] = value;
  const result = schema.safeParse({ ...fromQuery, ...options });
  if (result.success) return result.data;
  const problems = result.error.issues
    .map((issue) => `${issue.path.join('.') || '(options)'}: ${issue.code === 'unrecognized_keys' ? issue.message : issue.message.replace(/received .*/i, 'invalid value')}`)
    .join('; ');
  throw configError(`invalid ${url.protocol.replace(':', '')} options: ${problems}`, url, result.error);
}

/**
 * Validates an option object a user passed to a call (`subscribe`, `retry`, `idempotent`, the
 * outbox relay, `close`, `publish`, …) against its zod schema: the one way every such object is
 * checked. Unknown keys are rejected when the schema is strict. Throws CONFIG naming each
 * offending field (`where.field: problem`) and never echoing its value, which may be a secret.
 */
export function parseOptions<S extends z.ZodType>(schema: S, value: unknown, where: string): z.output<S> {
  const result = schema.safeParse(value);
  if (result.success) return result.data;
  throw configError(`${where}: ${describeIssues(result.error, where)}`);
}

/** `field: problem` for each issue of a zod error, values left out. */
export function describeIssues(error: z.ZodError, where = ''): string {
  return error.issues
    .map((issue) => {
      const path = issue.path.map(String).join('.');
      const field = path ? (where ? `${where.replace(/\(.*$/, '')}.${path}` : path) : where || '(options)';
      const message = issue.code === 'unrecognized_keys' ? issue.message : issue.message.replace(/,? ?received .*/i, '');
      return `${field}: ${message}`;
    })
    .join('; ');
}

/** A zod number schema for a count or a duration that may also be `Infinity` (unlimited). */
export const unlimitedInt = (min: number): z.ZodType<number> =>
  // z.number() alone rejects Infinity (zod 4): accept it as a literal first.
  z.union([z.literal(Number.POSITIVE_INFINITY), z.number()]).refine((n) => n === Number.POSITIVE_INFINITY || (Number.isInteger(n) && n >= min), {
    message: `must be an integer >= ${min}, or Infinity`,
  });
