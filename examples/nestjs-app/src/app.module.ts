import { Client, type ConnectOptions } from '@mqkit/core';
import { MqkitModule } from '@mqkit/nestjs';
import { MqkitHealthIndicator } from '@mqkit/nestjs/terminus';
import { Module, type DynamicModule } from '@nestjs/common';
import { TerminusModule } from '@nestjs/terminus';
import { Carrier, Fulfilment } from './fulfilment.ts';
import { MemoryOrderStore, ORDER_STORE } from './order-store.ts';
import { HealthController, OrdersController } from './orders.controller.ts';
import { OrdersService } from './orders.service.ts';
import { DEFAULT_NAMES, type Names } from './orders.ts';
import { NAMES } from './tokens.ts';

/** How the app runs (from the environment in main.ts, from the tests directly). */
export interface AppConfig {
  /** Broker URL: `memory://`, `amqp://…`, `kafka://…` (the adapter package is found from the scheme). */
  mqUrl: string;
  /** Adapters to use; by default the one for MQ_URL's scheme is loaded from its package. */
  adapters?: ConnectOptions['adapters'];
  /** Adapter options (e.g. SQS credentials for an emulator). */
  mqOptions?: ConnectOptions['options'];
  /** PostgreSQL for orders, the outbox and the dedup marks; without it everything stays in memory. */
  databaseUrl?: string;
  /** Prefix of the PostgreSQL tables. @default 'shop_' */
  tablePrefix?: string;
  /** Topic and group names. @default order.created / fulfilment */
  names?: Partial<Names>;
  /** Run the fulfilment consumer in this process. @default true */
  consume?: boolean;
}

/** The application: orders API, outbox relay, fulfilment consumer, health check. */
@Module({})
export class AppModule {
  static forRoot(config: AppConfig): DynamicModule {
    return {
      module: AppModule,
      imports: [
        MqkitModule.forRoot({
          url: config.mqUrl,
          ...(config.adapters ? { adapters: config.adapters } : {}),
          ...(config.mqOptions ? { options: config.mqOptions } : {}),
          consume: config.consume ?? true,
          closeTimeoutMs: 10_000,
        }),
        TerminusModule,
      ],
      controllers: [OrdersController, HealthController],
      providers: [
        { provide: NAMES, useValue: { ...DEFAULT_NAMES, ...config.names } },
        {
          provide: ORDER_STORE,
          inject: [Client],
          // pg is loaded only when a database is configured.
          useFactory: async (client: Client) =>
            config.databaseUrl
              ? new (await import('./pg-order-store.ts')).PgOrderStore(client, config.databaseUrl, config.tablePrefix)
              : new MemoryOrderStore(client),
        },
        OrdersService,
        Carrier,
        Fulfilment,
        MqkitHealthIndicator,
      ],
    };
  }
}
