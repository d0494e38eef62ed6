import { Client, connect } from '@mqkit/core';
import { configError } from '@mqkit/core/driver';
import { Module, type DynamicModule, type Provider } from '@nestjs/common';
import { DiscoveryModule } from '@nestjs/core';
import { MqkitLifecycle } from './lifecycle.ts';
import { MQKIT_OPTIONS, parseMqkitOptions, type MqkitModuleAsyncOptions, type MqkitModuleOptions, type MqkitOptions } from './options.ts';

/** The client provider: connects once the options are known, before any provider needing it. */
const clientProvider: Provider = {
  provide: Client,
  useFactory: (options: MqkitOptions) => {
    const { consume: _consume, closeTimeoutMs: _closeTimeoutMs, ...config } = options;
    return connect(config);
  },
  inject: [MQKIT_OPTIONS],
};

/**
 * mqkit in a Nest application: one connected {@link Client} (inject it with `@InjectMqkit()` or
 * `@Inject(Client)`), the `@Subscribe` methods of every provider and controller started at
 * bootstrap, and everything closed on Nest's shutdown hooks (`app.close()`, or a signal with
 * `app.enableShutdownHooks()`).
 *
 * ```ts
 * @Module({ imports: [MqkitModule.forRoot({ url: process.env.MQ_URL!, isGlobal: true })] })
 * export class AppModule {}
 * ```
 */
@Module({})
export class MqkitModule {
  /** Connects with fixed options. Invalid options throw CONFIG here, naming the field. */
  static forRoot(options: MqkitModuleOptions): DynamicModule {
    const { isGlobal, ...rest } = options ?? ({} as MqkitModuleOptions);
    if (isGlobal !== undefined && typeof isGlobal !== 'boolean') throw configError('MqkitModule.forRoot.isGlobal: must be a boolean');
    const parsed = parseMqkitOptions(rest, 'MqkitModule.forRoot');
    return dynamicModule(isGlobal, [], { provide: MQKIT_OPTIONS, useValue: parsed });
  }

  /**
   * Connects with options from a factory (e.g. `ConfigService`):
   * `forRootAsync({ imports: [ConfigModule], inject: [ConfigService], useFactory: (c) => ({ url: c.get('MQ_URL') }) })`.
   */
  static forRootAsync(options: MqkitModuleAsyncOptions): DynamicModule {
    if (typeof options?.useFactory !== 'function') throw configError('MqkitModule.forRootAsync: useFactory must be a function returning the options');
    return dynamicModule(options.isGlobal, options.imports ?? [], {
      provide: MQKIT_OPTIONS,
      // Nest passes the `inject`ed providers, in order.
      useFactory: async (...args: never[]) => parseMqkitOptions(await options.useFactory(...args), 'MqkitModule.forRootAsync'),
      inject: options.inject ?? [],
    });
  }

}

function dynamicModule(isGlobal: boolean | undefined, imports: NonNullable<MqkitModuleAsyncOptions['imports']>, optionsProvider: Provider): DynamicModule {
  return {
    module: MqkitModule,
    global: isGlobal === true,
    imports: [DiscoveryModule, ...imports],
    providers: [optionsProvider, clientProvider, MqkitLifecycle],
    exports: [Client],
  };
}
