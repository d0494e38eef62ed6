/**
 * Classification of AWS SDK errors into mqkit error codes. The SDK is configured not to retry
 * (core's reliable sender does), so every transient failure must come out `retryable`.
 */
import { connectionErrnoIn, isConnectionErrno, MqError, type ErrorCode } from '@mqkit/core/driver';

const NOT_FOUND = new Set([
  'QueueDoesNotExist',
  'AWS.SimpleQueueService.NonExistentQueue',
  'NonExistentQueue',
  'NotFound',
  'NotFoundException',
  'ResourceNotFoundException',
]);

const AUTH = new Set([
  'AccessDenied',
  'AccessDeniedException',
  'AuthorizationError',
  'InvalidClientTokenId',
  'InvalidSecurity',
  'SignatureDoesNotMatch',
  'UnrecognizedClientException',
  'ExpiredToken',
  'ExpiredTokenException',
  'MissingAuthenticationToken',
  'IncompleteSignature',
  'CredentialsProviderError',
  'KMSAccessDeniedException',
]);

const TOO_LARGE = new Set(['BatchRequestTooLong', 'MessageTooLong', 'AWS.SimpleQueueService.BatchRequestTooLong', 'RequestEntityTooLarge']);

const INVALID = new Set([
  'InvalidMessageContents',
  'InvalidParameterValue',
  'InvalidParameterValueException',
  'InvalidParameter',
  'InvalidParameterException',
  'InvalidAttributeName',
  'InvalidAttributeValue',
  'InvalidBatchEntryId',
  'BatchEntryIdsNotDistinct',
  'EmptyBatchRequest',
  'TooManyEntriesInBatchRequest',
  'UnsupportedOperation',
  'ValidationError',
  'ValidationException',
  'MissingParameter',
]);

const TRANSIENT = new Set([
  'ThrottlingException',
  'Throttling',
  'RequestThrottled',
  'ThrottledException',
  'TooManyRequestsException',
  'ServiceUnavailable',
  'ServiceUnavailableException',
  'InternalError',
  'InternalFailure',
  'InternalErrorException',
  'KMSThrottlingException',
  'KmsThrottled',
  'KMSInternalException',
  'RequestTimeout',
  'RequestTimeoutException',
]);

interface AwsLikeError {
  name?: unknown;
  code?: unknown;
  message?: unknown;
  $fault?: unknown;
  $retryable?: unknown;
  $metadata?: { httpStatusCode?: number };
  cause?: unknown;
}

function networkCode(err: unknown, depth = 0): string | undefined {
  if (depth > 4 || typeof err !== 'object' || err === null) return undefined;
  const e = err as AwsLikeError;
  if (typeof e.code === 'string' && isConnectionErrno(e.code)) return e.code;
  if (typeof e.message === 'string') {
    const named = connectionErrnoIn(e.message);
    if (named) return named;
    if (/socket hang up/.test(e.message)) return 'ECONNRESET';
  }
  if (Array.isArray((err as { errors?: unknown }).errors)) {
    for (const inner of (err as { errors: unknown[] }).errors) {
      const found = networkCode(inner, depth + 1);
      if (found) return found;
    }
  }
  return networkCode(e.cause, depth + 1);
}

/** The mqkit code for an AWS error name (the `Code` of a batch entry or an exception's `name`). */
export function codeForAwsName(name: string): ErrorCode | undefined {
  if (NOT_FOUND.has(name)) return 'NOT_FOUND';
  if (AUTH.has(name)) return 'AUTH';
  if (TOO_LARGE.has(name)) return 'TOO_LARGE';
  if (INVALID.has(name)) return 'INVALID_MESSAGE';
  if (TRANSIENT.has(name)) return 'NOT_CONFIRMED';
  return undefined;
}

/**
 * Turns anything the SDK threw into an {@link MqError}. `what` names the operation for the
 * message (e.g. `SendMessageBatch to orders`); messages from AWS carry no secrets, but the
 * request (which might) is never included.
 */
export function classifyAwsError(err: unknown, what: string): MqError {
  if (err instanceof MqError) return err;
  const e = (typeof err === 'object' && err !== null ? err : {}) as AwsLikeError;
  const name = typeof e.name === 'string' ? e.name : 'Error';
  const text = typeof e.message === 'string' && e.message.length > 0 ? e.message : name;
  const message = `${what} failed: ${name}: ${text}`;
  const details = { awsError: name, ...(e.$metadata?.httpStatusCode ? { httpStatus: e.$metadata.httpStatusCode } : {}) };
  // The adapter aborts calls only through its own deadlines (requestTimeoutMs), so an aborted
  // request is a timeout: the outcome is unknown and trying again is right.
  if (name === 'TimeoutError' || name === 'RequestTimeout' || name === 'TimeoutException' || name === 'AbortError') {
    return new MqError('TIMEOUT', message, { cause: err, details });
  }
  const net = networkCode(err);
  if (net) return new MqError(net === 'ETIMEDOUT' ? 'TIMEOUT' : 'CONNECTION', message, { cause: err, details: { ...details, errno: net } });
  const code = codeForAwsName(name);
  if (code) return new MqError(code, message, { cause: err, details });
  const status = e.$metadata?.httpStatusCode;
  if (e.$retryable !== undefined || e.$fault === 'server' || (status !== undefined && (status >= 500 || status === 429))) {
    return new MqError('NOT_CONFIRMED', message, { cause: err, details, retryable: true });
  }
  if (status === 403) return new MqError('AUTH', message, { cause: err, details });
  if (status === 404) return new MqError('NOT_FOUND', message, { cause: err, details });
  if (e.$fault === 'client' || (status !== undefined && status >= 400)) return new MqError('REJECTED', message, { cause: err, details });
  return new MqError('INTERNAL', message, { cause: err, details });
}

/**
 * {@link classifyAwsError} for declaring calls (CreateQueue, SetQueueAttributes, CreateTopic,
 * Subscribe, …): a parameter AWS refuses there comes from the adapter's or subscription's
 * configuration (e.g. a redrive maxReceiveCount beyond 1,000), so it is CONFIG, not INVALID_MESSAGE.
 */
export function classifyDeclareError(err: unknown, what: string): MqError {
  const error = classifyAwsError(err, what);
  if (SNS_CALL.test(what) && NO_SUCH_ACTION.has(String(error.details.awsError))) {
    // An SQS-only endpoint (ElasticMQ, the usual local stand-in) answers SNS calls like this.
    return new MqError('CONFIG', `sqs: the endpoint does not serve SNS (${error.message}). Topics are SNS topics by default (sns=true, one queue per group: fan-out); ${SNS_HINT}`, {
      cause: err,
      details: error.details,
    });
  }
  if (error.code !== 'INVALID_MESSAGE') return error;
  return new MqError('CONFIG', error.message, { cause: err, details: error.details });
}

/** SNS operations the adapter calls while declaring. */
const SNS_CALL = /^(CreateTopic|Subscribe|ListSubscriptionsByTopic|SetSubscriptionAttributes|ListTopics|GetTopicAttributes)\b/;

/** How an endpoint says it has no such operation (query and JSON protocols, emulators). */
const NO_SUCH_ACTION = new Set(['InvalidAction', 'UnknownOperationException', 'UnknownOperation', 'NotImplemented', 'InvalidAction.NotSupported']);

/** What to do on an endpoint without SNS. */
export const SNS_HINT = 'connect with sns=false (sqs://?…&sns=false: a topic is one queue whose groups compete, no fan-out), or point the snsEndpoint option at an SNS endpoint';

/** One failed entry of a batch call (`Failed[]` of SendMessageBatch, PublishBatch, DeleteMessageBatch, …). */
export interface BatchFailure {
  readonly Code?: string | undefined;
  readonly Message?: string | undefined;
  readonly SenderFault?: boolean | undefined;
}

/**
 * The error for one failed batch entry. SQS marks caller mistakes with `SenderFault`; anything
 * the service blames on itself is worth another try.
 */
export function classifyBatchFailure(failure: BatchFailure, what: string): MqError {
  const name = failure.Code ?? 'Unknown';
  const message = `${what} failed: ${name}${failure.Message ? `: ${failure.Message}` : ''}`;
  const details = { awsError: name, senderFault: failure.SenderFault === true };
  const code = codeForAwsName(name);
  if (code && code !== 'NOT_CONFIRMED') return new MqError(code, message, { details });
  if (failure.SenderFault === true && code !== 'NOT_CONFIRMED') return new MqError('REJECTED', message, { details });
  return new MqError('NOT_CONFIRMED', message, { details, retryable: true });
}
