import type { ConnectConfig, CloseOptions } from '@mqkit/core';
import { parseOptions } from '@mqkit/core/driver';
import type { InjectionToken, ModuleMetadata, OptionalFactoryDependency } from '@nestjs/common';
import { z } from 'zod';

/** Options of {@link MqkitModule}: what `connect()` takes, and how the module runs subscriptions. */
export interface MqkitOptions extends ConnectConfig {
  /**
   * Start the `@Subscribe` handlers found at bootstrap. `false` in processes that only publish
   * (an API node, a one-off job). @default true
   */
  consume?: boolean;
  /**
   * At shutdown, how long to wait for running handlers (and then pending publishes) before
   * abandoning them: unacked messages are redelivered. @default 10000
   */
  closeTimeoutMs?: CloseOptions['timeoutMs'];
}

/** `MqkitModule.forRoot()`: the options, and whether the module is global. */
export interface MqkitModuleOptions extends MqkitOptions {
  /** Register the module globally: the client is injectable everywhere without importing it. @default false */
  isGlobal?: boolean;
}

/** `MqkitModule.forRootAsync()`: options computed by a factory with injected dependencies. */
export interface MqkitModuleAsyncOptions extends Pick<ModuleMetadata, 'imports'> {
  /** Returns the options, e.g. from `ConfigService`; may be async. */
  useFactory: (...args: never[]) => MqkitOptions | Promise<MqkitOptions>;
  /** Tokens passed to `useFactory`, in order. */
  inject?: Array<InjectionToken | OptionalFactoryDependency>;
  /** Register the module globally. @default false */
  isGlobal?: boolean;
}

/** Injection token of the validated {@link MqkitOptions}. */
export const MQKIT_OPTIONS = Symbol.for('@mqkit/nestjs:options');

const isObject = (v: unknown): boolean => typeof v === 'object' && v !== null;

/**
 * The module's own keys are checked here; connect()'s nested options (publish, topology, topics,
 * adapter options) are checked by connect() itself, so they are only typed loosely here. Unknown
 * keys are refused: a misspelt option must not be silently ignored.
 */
const optionsSchema = z
  .object({
    url: z.string().min(1),
    adapters: z.array(z.custom((v) => isObject(v), 'must be an adapter')).optional(),
    options: z.record(z.string(), z.unknown()).optional(),
    logger: z.custom((v) => isObject(v), 'must be a logger').optional(),
    meterProvider: z.custom((v) => isObject(v), 'must be a MeterProvider').optional(),
    tracerProvider: z.custom((v) => isObject(v), 'must be a TracerProvider').optional(),
    publish: z.record(z.string(), z.unknown()).optional(),
    topology: z.string().optional(),
    topics: z.array(z.unknown()).optional(),
    consume: z.boolean().optional(),
    closeTimeoutMs: z.number().int().min(0).optional(),
  })
  .strict();

/** Validates {@link MqkitOptions}; CONFIG naming the field (never a value: the URL may hold a password). */
export function parseMqkitOptions(value: unknown, where: string): MqkitOptions {
  parseOptions(optionsSchema, value, where);
  return value as MqkitOptions;
}
