import { configError, type Adapter, type Logger } from '@mqkit/core/driver';
import { createKafkajsSeam } from './client/kafkajs.ts';
import { createPlatformaticSeam } from './client/platformatic.ts';
import type { KafkaClientSeam } from './client/seam.ts';
import { KafkaDriver } from './driver.ts';
import { parseKafkaUrl, safeUrlForErrors, type KafkaSettings } from './options.ts';

/** The client library chosen by `client` (URL `?client=` or the typed option). */
export function createSeam(settings: KafkaSettings, logger: Logger, url: string): KafkaClientSeam {
  if (settings.client === 'platformatic') return createPlatformaticSeam(settings, logger);
  if (settings.groupProtocol === 'consumer') {
    throw configError("kafka: groupProtocol 'consumer' (KIP-848) needs client 'platformatic'; kafkajs only speaks the classic protocol", safeUrlForErrors(url));
  }
  return createKafkajsSeam(settings, logger);
}

/**
 * The `kafka://` adapter, over @platformatic/kafka or kafkajs (`client`, see README):
 * `connect('kafka://h1:9092,h2:9092?clientId=orders', { adapters: [kafka()] })`.
 * Connects an idempotent producer (acks = all) before resolving, so a wrong address fails here.
 */
export function kafka(): Adapter {
  return {
    schemes: ['kafka'],
    async create(url, options, context) {
      const settings = parseKafkaUrl(url, options);
      const seam = createSeam(settings, context.logger, url);
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
