import { NestFactory } from '@nestjs/core';
import type { INestApplication } from '@nestjs/common';
import { AppModule, type AppConfig } from './app.module.ts';
import { Carrier } from './fulfilment.ts';
import { ORDER_STORE, type OrderStore } from './order-store.ts';
import type { NewOrder } from './orders.ts';

/** The app listening on a free port, as the unit and integration tests drive it. */
export interface RunningApp {
  readonly app: INestApplication;
  readonly url: string;
  readonly store: OrderStore;
  readonly carrier: Carrier;
  post(order: NewOrder | Record<string, unknown>): Promise<{ status: number; body: unknown }>;
  health(): Promise<{ status: number; body: unknown }>;
}

export async function startApp(config: AppConfig): Promise<RunningApp> {
  const app = await NestFactory.create(AppModule.forRoot(config), { logger: false, abortOnError: false });
  await app.listen(0, '127.0.0.1');
  const url = await app.getUrl();
  const call = async (path: string, init?: RequestInit) => {
    const res = await fetch(`${url}${path}`, init);
    return { status: res.status, body: await res.json() };
  };
  return {
    app,
    url,
    store: app.get<OrderStore>(ORDER_STORE),
    carrier: app.get(Carrier),
    post: (order) => call('/orders', { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(order) }),
    health: () => call('/health'),
  };
}

export const anOrder = (customerId = 'c-1'): NewOrder => ({ customerId, items: [{ sku: 'book', quantity: 2, priceCents: 1_250 }] });
