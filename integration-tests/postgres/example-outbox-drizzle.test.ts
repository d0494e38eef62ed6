/** The outbox-drizzle example (examples/outbox-drizzle) on the real PostgreSQL: see example-outbox.ts. */
import { outboxExampleSuite } from './example-outbox.ts';

outboxExampleSuite('outbox-drizzle', 'example_drizzle');
