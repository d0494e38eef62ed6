/**
 * The NestJS order service: `MQ_URL=amqp://127.0.0.1:5672 DATABASE_URL=postgres://… pnpm start`.
 * Without DATABASE_URL orders, outbox and dedup marks stay in memory; MQ_URL defaults to
 * `memory://`. PORT (default 3000). CONSUME=false runs the API without the fulfilment consumer.
 */
import { redactUrl } from '@mqkit/core';
import { NestFactory } from '@nestjs/core';
import { AppModule } from './app.module.ts';

const mqUrl = process.env.MQ_URL ?? 'memory://';
const databaseUrl = process.env.DATABASE_URL;
const app = await NestFactory.create(
  AppModule.forRoot({ mqUrl, ...(databaseUrl ? { databaseUrl } : {}), consume: process.env.CONSUME !== 'false' }),
);
// SIGTERM/SIGINT run Nest's shutdown hooks: consumers drain, the relay stops, the client closes.
app.enableShutdownHooks();
await app.listen(Number(process.env.PORT ?? 3000));
console.log(`orders on ${await app.getUrl()}, broker ${redactUrl(mqUrl)}, ${databaseUrl ? `db ${redactUrl(databaseUrl)}` : 'in-memory store'}`);
