import type { Adapter } from '@mqkit/core/driver';
import { createKafkajsSeam } from './client/kafkajs.ts';
import { KafkaDriver } from './driver.ts';
import { parseKafkaUrl, safeUrlForErrors } from './options.ts';

/**
 * The `kafka://` adapter over kafkajs:
 * `connect('kafka://h1:9092,h2:9092?clientId=orders', { adapters: [kafka()] })`.
 * Connects an idempotent producer (acks = all) before resolving, so a wrong address fails here.
 */
export function kafka(): Adapter {
  return {
    schemes: ['kafka'],
    async create(url, options, context) {
      const settings = parseKafkaUrl(url, options);
      const seam = createKafkajsSeam(settings, context.logger);
      let producer;
      try {
        producer = await seam.producer();
      } catch (err) {
        const e = seam.classify(err, { url: safeUrlForErrors(url) });
        throw e;
      }
      return new KafkaDriver(seam, producer, settings, context.logger);
    },
  };
}

/** Alias of {@link kafka}: the name `connect()` looks for when it loads `@mqkit/kafka` by scheme. */
export const adapter = kafka;
