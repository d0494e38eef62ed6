/** The real brokers (and side services) the integration suites can ask for. */
export const BROKERS = ['kafka', 'rabbitmq', 'rocketmq', 'sqs', 'postgres', 'redis'] as const;
export type BrokerName = (typeof BROKERS)[number];

export function isBrokerName(name: string): name is BrokerName {
  return (BROKERS as readonly string[]).includes(name);
}

/**
 * Endpoint shapes, the same as `<repo>/.mqkit/endpoints.json` written by `pnpm brokers up`.
 * `kafka.brokers` is a comma-separated list (see {@link kafkaBrokerList}).
 */
export interface BrokerEndpoints {
  kafka: { brokers: string };
  rabbitmq: { url: string };
  /** `endpoints` is the gRPC proxy (host:port); `namesrv` is informational. */
  rocketmq: { endpoints: string; namesrv?: string };
  /** `endpoint`: an SQS-only emulator (ElasticMQ). `snsEndpoint`: SNS plus its own SQS (moto). */
  sqs: { endpoint: string; snsEndpoint: string; region: string };
  postgres: { url: string };
  redis: { url: string };
}

/** Where an endpoint came from. */
export type EndpointSource = 'env' | 'testcontainers' | 'native';

export interface ResolvedBroker<N extends BrokerName = BrokerName> {
  name: N;
  endpoint: BrokerEndpoints[N];
  source: EndpointSource;
  /** Human-readable trail of what resolution looked at, for error messages. */
  tried: string[];
  /** Set when `source` is 'testcontainers' (the main container, e.g. for `docker exec`). */
  containerId?: string;
}

export type ResolvedEndpoints = { [N in BrokerName]?: ResolvedBroker<N> };

export function kafkaBrokerList(e: BrokerEndpoints['kafka']): string[] {
  return e.brokers
    .split(',')
    .map((s) => s.trim())
    .filter(Boolean);
}

/** AWS SDK v3 client settings for the local emulators (the credentials are dummies they accept). */
export function awsClientConfig(endpoint: string, region: string) {
  return {
    endpoint,
    region,
    credentials: { accessKeyId: 'test', secretAccessKey: 'test' },
  };
}
