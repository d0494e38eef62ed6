import { Client, type Delivery, type Subscription } from '@mqkit/core';
import { configError } from '@mqkit/core/driver';
import {
  Inject,
  Injectable,
  Logger,
  type BeforeApplicationShutdown,
  type OnApplicationBootstrap,
  type OnApplicationShutdown,
} from '@nestjs/common';
import { DiscoveryService, MetadataScanner } from '@nestjs/core';
import { MQKIT_OPTIONS, type MqkitOptions } from './options.ts';
import { subscriptionsOf, type SubscribeMethodOptions } from './subscribe.ts';

/** A `@Subscribe` method found at bootstrap, with the instance it is bound to. */
interface Found {
  readonly instance: object;
  readonly method: string;
  readonly topic: string;
  readonly options: SubscribeMethodOptions;
  readonly name: string;
}

/**
 * Starts the `@Subscribe` handlers once every module is initialised, and shuts mqkit down on
 * Nest's lifecycle: `beforeApplicationShutdown` closes the subscriptions (no new deliveries,
 * running handlers finish, up to `closeTimeoutMs`), `onApplicationShutdown` closes the client
 * (pending publishes drained, then disconnect). So the HTTP server (closed between the two) can
 * still publish while it drains, and your own providers can still use their resources in
 * handlers until `beforeApplicationShutdown` is over.
 */
@Injectable()
export class MqkitLifecycle implements OnApplicationBootstrap, BeforeApplicationShutdown, OnApplicationShutdown {
  readonly #client: Client;
  readonly #options: MqkitOptions;
  readonly #discovery: DiscoveryService;
  readonly #scanner: MetadataScanner;
  readonly #logger = new Logger('Mqkit');
  #subscriptions: Subscription[] = [];

  constructor(
    @Inject(Client) client: Client,
    @Inject(MQKIT_OPTIONS) options: MqkitOptions,
    @Inject(DiscoveryService) discovery: DiscoveryService,
    @Inject(MetadataScanner) scanner: MetadataScanner,
  ) {
    this.#client = client;
    this.#options = options;
    this.#discovery = discovery;
    this.#scanner = scanner;
  }

  /** The subscriptions started at bootstrap (empty with `consume: false`). */
  get subscriptions(): readonly Subscription[] {
    return this.#subscriptions;
  }

  async onApplicationBootstrap(): Promise<void> {
    const found = this.#discover();
    if (this.#options.consume === false) return;
    try {
      for (const f of found) {
        const handler = (delivery: Delivery): Promise<void> | void => (f.instance as Record<string, (d: Delivery) => Promise<void> | void>)[f.method]!(delivery);
        let subscription: Subscription;
        try {
          subscription = await this.#client.subscribe(f.topic, { ...f.options, handler });
        } catch (err) {
          // Name the method: core's error names the option, not where it was written.
          if (err instanceof Error) err.message = `@Subscribe('${f.topic}') on ${f.name}: ${err.message}`;
          throw err;
        }
        this.#subscriptions.push(subscription);
        this.#logger.log(`${f.name} consumes ${f.topic} as ${subscription.group}`);
      }
    } catch (err) {
      // Nest runs no shutdown hook when bootstrap fails: do not leave consumers and sockets open.
      await this.#client.close({ timeoutMs: 0 }).catch(() => {});
      throw err;
    }
  }

  async beforeApplicationShutdown(): Promise<void> {
    const subscriptions = this.#subscriptions;
    this.#subscriptions = [];
    await Promise.all(subscriptions.map((s) => s.close(this.#closeOptions())));
  }

  async onApplicationShutdown(): Promise<void> {
    await this.#client.close(this.#closeOptions());
  }

  #closeOptions(): { timeoutMs?: number } {
    return this.#options.closeTimeoutMs === undefined ? {} : { timeoutMs: this.#options.closeTimeoutMs };
  }

  /** Every `@Subscribe` on a provider or controller, validated before anything subscribes. */
  #discover(): Found[] {
    const found: Found[] = [];
    const seen = new Set<object>();
    for (const wrapper of [...this.#discovery.getProviders(), ...this.#discovery.getControllers()]) {
      const instance: unknown = wrapper.instance;
      if (typeof instance !== 'object' || instance === null || seen.has(instance)) continue;
      seen.add(instance); // an alias (useExisting) is the same instance: subscribe once
      const prototype = Object.getPrototypeOf(instance) as object | null;
      if (prototype === null) continue;
      for (const method of this.#scanner.getAllMethodNames(prototype)) {
        const metadata = subscriptionsOf((prototype as Record<string, unknown>)[method]);
        if (metadata.length === 0) continue;
        const name = `${instance.constructor.name}.${method}`;
        if (!wrapper.isDependencyTreeStatic()) {
          throw configError(`@Subscribe on ${name}: request-scoped providers cannot subscribe (no request runs a consumer); make it a singleton`);
        }
        for (const entry of metadata) {
          const topic: unknown = typeof entry.topic === 'function' ? entry.topic(instance) : entry.topic;
          if (typeof topic !== 'string' || topic.length === 0) throw configError(`@Subscribe on ${name}: the topic function must return a non-empty string`);
          const options: unknown = typeof entry.options === 'function' ? entry.options(instance) : entry.options;
          if (typeof options !== 'object' || options === null) {
            throw configError(`@Subscribe('${topic}') on ${name}: the options function must return the options (with group)`);
          }
          found.push({ instance, method, topic, options: options as SubscribeMethodOptions, name });
        }
      }
    }
    return found;
  }
}
