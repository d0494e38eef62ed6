import { BadRequestException, Body, Controller, Get, HttpCode, Inject, Post } from '@nestjs/common';
import { HealthCheck, HealthCheckService, type HealthCheckResult } from '@nestjs/terminus';
import { MqkitHealthIndicator } from '@mqkit/nestjs/terminus';
import { OrdersService } from './orders.service.ts';
import { newOrderSchema, type Names, type Order } from './orders.ts';
import { NAMES } from './tokens.ts';

/** `POST /orders`: validates the body and places the order (201 with the order). */
@Controller('orders')
export class OrdersController {
  readonly #orders: OrdersService;

  constructor(@Inject(OrdersService) orders: OrdersService) {
    this.#orders = orders;
  }

  @Post()
  @HttpCode(201)
  async create(@Body() body: unknown): Promise<Order> {
    const parsed = newOrderSchema.safeParse(body);
    if (!parsed.success) throw new BadRequestException(parsed.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`));
    return this.#orders.place(parsed.data);
  }
}

/** `GET /health`: 200 while the broker answers (the order topic exists), 503 otherwise. */
@Controller('health')
export class HealthController {
  readonly #health: HealthCheckService;
  readonly #mq: MqkitHealthIndicator;
  readonly #names: Names;

  constructor(@Inject(HealthCheckService) health: HealthCheckService, @Inject(MqkitHealthIndicator) mq: MqkitHealthIndicator, @Inject(NAMES) names: Names) {
    this.#health = health;
    this.#mq = mq;
    this.#names = names;
  }

  @Get()
  @HealthCheck()
  check(): Promise<HealthCheckResult> {
    return this.#health.check([() => this.#mq.check('broker', { topic: this.#names.orderCreated })]);
  }
}
