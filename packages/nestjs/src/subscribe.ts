import { Client, type SubscribeOptions } from '@mqkit/core';
import { configError } from '@mqkit/core/driver';
import { Inject } from '@nestjs/common';

/** What `@Subscribe` takes besides the topic: core's subscribe options without the handler. */
export type SubscribeMethodOptions<T = unknown> = Omit<SubscribeOptions<T>, 'handler'>;

/**
 * The options, or a function of the provider instance returning them, called at bootstrap: for
 * options that come from injection, e.g. `(self: Shipping) => ({ group: 'shipping',
 * middleware: [idempotent(self.dedup)] })`.
 */
export type SubscribeOptionsInput<I, T = unknown> = SubscribeMethodOptions<T> | ((instance: I) => SubscribeMethodOptions<T>);

/** The topic, or a function of the provider instance returning it (e.g. from injected config). */
export type SubscribeTopicInput<I> = string | ((instance: I) => string);

/** @internal one `@Subscribe` on a method, as stored (the instance type is the decorator's business). */
export interface SubscribeMetadata {
  readonly topic: string | ((instance: object) => unknown);
  readonly options: object | ((instance: object) => unknown);
}

/** Metadata key on the method (a string, so that two copies of this package still agree). */
export const SUBSCRIBE_METADATA = '@mqkit/nestjs:subscribe';

/**
 * Consumes `topic` with the decorated method, bound to its provider (or controller) instance.
 * Found at bootstrap in every module; handler semantics are core's: resolve to ack, throw to
 * retry with backoff and then dead-letter.
 *
 * ```ts
 * @Injectable()
 * class Billing {
 *   @Subscribe('orders', { group: 'billing', retry: { maxAttempts: 5 } })
 *   async bill(delivery: Delivery<Order>) { … }
 * }
 * ```
 *
 * The topic and the options may be functions of the instance, called at bootstrap, for values
 * that come from injection (config, a dedup store). A method may carry several `@Subscribe`s
 * (several topics or groups). Request-scoped providers
 * cannot subscribe (there is no request); bootstrap fails with CONFIG naming them.
 */
export function Subscribe<I = object, T = unknown>(topic: SubscribeTopicInput<I>, options: SubscribeOptionsInput<I, T>) {
  if (typeof topic !== 'function' && (typeof topic !== 'string' || topic.length === 0)) {
    throw configError('@Subscribe: the topic must be a non-empty string or a function returning it');
  }
  const shown = typeof topic === 'string' ? `'${topic}'` : '…';
  if (typeof options !== 'function' && (typeof options !== 'object' || options === null)) {
    throw configError(`@Subscribe(${shown}): the second argument must be the options (with group) or a function returning them`);
  }
  return (target: I, key: string | symbol, descriptor: PropertyDescriptor): void => {
    const method: unknown = descriptor.value;
    if (typeof method !== 'function') throw configError(`@Subscribe(${shown}): ${String(key)} is not a method`);
    const list = (Reflect.getMetadata(SUBSCRIBE_METADATA, method) as SubscribeMetadata[] | undefined) ?? [];
    Reflect.defineMetadata(SUBSCRIBE_METADATA, [...list, { topic, options } as SubscribeMetadata], method);
  };
}

/** The `@Subscribe`s on a method (none: empty). */
export function subscriptionsOf(method: unknown): readonly SubscribeMetadata[] {
  if (typeof method !== 'function') return [];
  return (Reflect.getMetadata(SUBSCRIBE_METADATA, method) as SubscribeMetadata[] | undefined) ?? [];
}

/**
 * Injects the module's mqkit {@link Client}: `constructor(@InjectMqkit() mq: Client)`. The same
 * as `@Inject(Client)`; with `emitDecoratorMetadata` a parameter typed `Client` needs neither.
 */
export const InjectMqkit = (): PropertyDecorator & ParameterDecorator => Inject(Client);
