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
