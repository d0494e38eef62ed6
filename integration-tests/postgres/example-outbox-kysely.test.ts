/** The outbox-kysely example (examples/outbox-kysely) on the real PostgreSQL: see example-outbox.ts. */
import { outboxExampleSuite } from './example-outbox.ts';

outboxExampleSuite('outbox-kysely', 'example_kysely');
