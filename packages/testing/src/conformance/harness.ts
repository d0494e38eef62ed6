import type { Capabilities, Client } from '@mqkit/core';

/** What a topic will be used for; adapters whose topics are typed (RocketMQ) create the right kind. */
export interface TopicNeeds {
  /** Keyed messages consumed in order (RocketMQ: FIFO topic; SQS: FIFO queue). */
  ordered?: boolean;
  /** Messages published with a delay (RocketMQ: DELAY topic). */
  delayed?: boolean;
  /** Published inside native transactions (RocketMQ: TRANSACTION topic). */
  transactional?: boolean;
}

/** How the conformance suite reaches an adapter. */
export interface ConformanceHarness {
  /** Adapter name in test titles. */
  readonly name: string;
  /**
   * What the adapter claims. Decides which scenarios run (a claimed capability is tested, an
   * unclaimed one skipped by name) and must equal what connected clients report.
   */
  readonly capabilities: Capabilities;
  /** Opens a new client (a new connection) to the broker under test. */
  connect(): Promise<Client>;
  /**
   * A fresh topic for one test, created with whatever the broker needs, plus its dead-letter topic
   * `${topic}-dlq`. @default a random name that needs no declaration
   */
  topic?(needs: TopicNeeds): Promise<string>;
  /** Timing of the broker under test. */
  readonly timing?: Partial<ConformanceTiming>;
  /** Scenario ids to skip on this adapter, each with the reason shown in the test title. */
  readonly skip?: Readonly<Record<string, string>>;
  /** The adapter implements `Driver.topology` (client.declare / verify). @default true */
  readonly topology?: boolean;
  /** Settings handed to every subscription (e.g. shorter visibility timeouts). */

  readonly subscribeOptions?: Readonly<Record<string, unknown>>;
}

/** Waits used by the scenarios, in ms. */
export interface ConformanceTiming {
  /** How long a published message may take to arrive. */
  deliveryMs: number;
  /** How long a message left unacked by a dead consumer may take to come back. */
  redeliveryMs: number;
  /** How long to watch for something that must not happen (a duplicate, an early delivery). */
  quietMs: number;
  /** Test timeout. */
  testMs: number;
  /** Delay used in delay tests (must exceed the adapter's delay precision). */
  delayMs: number;
}

export const DEFAULT_TIMING: ConformanceTiming = {
  deliveryMs: 10_000,
  redeliveryMs: 10_000,
  quietMs: 500,
  testMs: 30_000,
  delayMs: 1_000,
};

let counter = 0;

/** A topic name unique in this process run (parallel-safe across workers by a random part). */
export function uniqueName(prefix = 'mqkit-conf'): string {
  counter += 1;
  return `${prefix}-${process.pid}-${Date.now().toString(36)}-${Math.random().toString(36).slice(2, 8)}-${counter}`;
}
