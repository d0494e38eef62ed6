/**
 * `@mqkit/nestjs`: mqkit in NestJS. `MqkitModule.forRoot({ url })` / `forRootAsync()` connect one
 * client (inject it with `@InjectMqkit()` or `@Inject(Client)`), `@Subscribe(topic, { group })`
 * methods are found and started at bootstrap, and everything closes on Nest's shutdown hooks.
 * The terminus health indicator is in `@mqkit/nestjs/terminus`.
 */
export { MqkitModule } from './module.ts';
export { MqkitLifecycle } from './lifecycle.ts';
export { Subscribe, InjectMqkit, SUBSCRIBE_METADATA, type SubscribeMethodOptions, type SubscribeOptionsInput, type SubscribeTopicInput } from './subscribe.ts';
export { MQKIT_OPTIONS, type MqkitOptions, type MqkitModuleOptions, type MqkitModuleAsyncOptions } from './options.ts';
