/**
 * testcontainers fallback: the same brokers as the native provisioning, as Docker containers.
 * Used only when a Docker engine is reachable and no MQKIT_* variable names the broker; started
 * lazily (only the requested brokers) and once per run, by the vitest globalSetup.
 *
 * Images can be overridden with MQKIT_<BROKER>_IMAGE (e.g. MQKIT_KAFKA_IMAGE). Brokers that
 * advertise their own address to clients (Kafka, RocketMQ's proxy, ElasticMQ's queue URLs) get a
 * host port chosen up front and bound 1:1, so the advertised address is the reachable one.
 */
import { createServer } from 'node:net';
import type * as testcontainers from 'testcontainers';
import type { BrokerEndpoints, BrokerName, ResolvedBroker } from './brokers.ts';

/** The same images as the repo's docker-compose.yml. */
export const CONTAINER_IMAGES = {
  kafka: process.env.MQKIT_KAFKA_IMAGE ?? 'apache/kafka:4.4.0',
  rabbitmq: process.env.MQKIT_RABBITMQ_IMAGE ?? 'rabbitmq:3.13-management',
  rocketmq: process.env.MQKIT_ROCKETMQ_IMAGE ?? 'apache/rocketmq:5.3.3',
  elasticmq: process.env.MQKIT_ELASTICMQ_IMAGE ?? 'softwaremill/elasticmq-native:1.7.1',
  moto: process.env.MQKIT_MOTO_IMAGE ?? 'motoserver/moto:5.2.5',
  postgres: process.env.MQKIT_POSTGRES_IMAGE ?? 'postgres:15',
  redis: process.env.MQKIT_REDIS_IMAGE ?? 'redis:7',
} as const;

/** Typed RocketMQ topics created in every RocketMQ container (same set as `pnpm brokers up rocketmq`). */
export const ROCKETMQ_SEED_TOPICS = [
  'mqkit-smoke:NORMAL',
  'mqkit-smoke-fifo:FIFO',
  'mqkit-smoke-delay:DELAY',
  'mqkit-smoke-tx:TRANSACTION',
  'mqkit-readiness:NORMAL',
] as const;

export interface StartedBroker<N extends BrokerName = BrokerName> {
  resolved: ResolvedBroker<N>;
  stop(): Promise<void>;
}

type Tc = typeof testcontainers;
type Started = Awaited<ReturnType<InstanceType<Tc['GenericContainer']>['start']>>;

async function freePort(): Promise<number> {
  return new Promise((res, rej) => {
    const srv = createServer();
    srv.once('error', rej);
    srv.listen(0, '127.0.0.1', () => {
      const addr = srv.address();
      const port = typeof addr === 'object' && addr ? addr.port : 0;
      srv.close(() => res(port));
    });
  });
}

async function hostOf(tc: Tc): Promise<string> {
  const client = await tc.getContainerRuntimeClient();
  return client.info.containerRuntime.host;
}

/** Starts the container(s) for one broker and returns its endpoint. */
export async function startBrokerContainer<N extends BrokerName>(name: N, tried: string[]): Promise<StartedBroker<N>> {
  const tc = await import('testcontainers');
  const { GenericContainer, Wait } = tc;
  const started: Started[] = [];
  const stop = async () => {
    await Promise.allSettled(started.map((c) => c.stop({ timeout: 5_000 })));
  };
  const done = <M extends BrokerName>(endpoint: BrokerEndpoints[M], main: Started): StartedBroker<M> => ({
    resolved: { name: name as unknown as M, endpoint, source: 'testcontainers', tried, containerId: main.getId() },
    stop,
  });
  try {
    switch (name) {
      case 'kafka': {
        const host = await hostOf(tc);
        const port = await freePort();
        const c = await new GenericContainer(CONTAINER_IMAGES.kafka)
          .withExposedPorts({ container: 9092, host: port })
          .withEnvironment({
            KAFKA_NODE_ID: '1',
            KAFKA_PROCESS_ROLES: 'broker,controller',
            KAFKA_LISTENERS: 'PLAINTEXT://:9092,CONTROLLER://:9093',
            KAFKA_ADVERTISED_LISTENERS: `PLAINTEXT://${host}:${port}`,
            KAFKA_CONTROLLER_LISTENER_NAMES: 'CONTROLLER',
            KAFKA_LISTENER_SECURITY_PROTOCOL_MAP: 'CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT',
            KAFKA_CONTROLLER_QUORUM_VOTERS: '1@localhost:9093',
            KAFKA_INTER_BROKER_LISTENER_NAME: 'PLAINTEXT',
            KAFKA_OFFSETS_TOPIC_REPLICATION_FACTOR: '1',
            KAFKA_OFFSETS_TOPIC_NUM_PARTITIONS: '1',
            KAFKA_TRANSACTION_STATE_LOG_REPLICATION_FACTOR: '1',
            KAFKA_TRANSACTION_STATE_LOG_MIN_ISR: '1',
            KAFKA_TRANSACTION_STATE_LOG_NUM_PARTITIONS: '1',
            KAFKA_SHARE_COORDINATOR_STATE_TOPIC_REPLICATION_FACTOR: '1',
            KAFKA_SHARE_COORDINATOR_STATE_TOPIC_MIN_ISR: '1',
            KAFKA_MIN_INSYNC_REPLICAS: '1',
            KAFKA_DEFAULT_REPLICATION_FACTOR: '1',
            KAFKA_NUM_PARTITIONS: '1',
            KAFKA_GROUP_INITIAL_REBALANCE_DELAY_MS: '0',
            KAFKA_AUTO_CREATE_TOPICS_ENABLE: 'true',
            KAFKA_HEAP_OPTS: '-Xms128m -Xmx512m',
          })
          .withWaitStrategy(Wait.forLogMessage(/Kafka Server started/))
          .withStartupTimeout(180_000)
          .start();
        started.push(c);
        return done<'kafka'>({ brokers: `${host}:${port}` }, c) as unknown as StartedBroker<N>;
      }
      case 'rabbitmq': {
        const c = await new GenericContainer(CONTAINER_IMAGES.rabbitmq)
          .withExposedPorts(5672, 15672)
          .withEnvironment({ RABBITMQ_DEFAULT_USER: 'guest', RABBITMQ_DEFAULT_PASS: 'guest' })
          .withWaitStrategy(Wait.forLogMessage(/Server startup complete/))
          .withStartupTimeout(120_000)
          .start();
        started.push(c);
        // The management API (the image's plugin) on its mapped port: the operations read unacked counts there.
        const management = encodeURIComponent(`http://${c.getHost()}:${c.getMappedPort(15672)}`);
        return done<'rabbitmq'>({ url: `amqp://guest:guest@${c.getHost()}:${c.getMappedPort(5672)}?managementUrl=${management}` }, c) as unknown as StartedBroker<N>;
      }
      case 'rocketmq': {
        const host = await hostOf(tc);
        const grpc = await freePort();
        const home = `/home/rocketmq/rocketmq-${CONTAINER_IMAGES.rocketmq.split(':')[1] ?? '5.3.3'}`;
        const proxyConf = JSON.stringify({
          rocketMQClusterName: 'DefaultCluster',
          namesrvAddr: '127.0.0.1:9876',
          grpcServerPort: grpc,
          minInvisibleTimeMillsForRecv: 1000,
          grpcClientConsumerMinLongPollingTimeoutMillis: 1000,
        });
        const brokerConf = [
          'brokerClusterName=DefaultCluster',
          'brokerName=broker-a',
          'brokerId=0',
          'brokerIP1=127.0.0.1',
          'autoCreateTopicEnable=false',
          'autoCreateSubscriptionGroup=true',
          'transactionCheckInterval=3000',
          'transactionTimeOut=3000',
          'transactionOpBatchInterval=500',
          'recallMessageEnable=true',
        ].join('\n');
        const c = await new GenericContainer(CONTAINER_IMAGES.rocketmq)
          .withExposedPorts({ container: grpc, host: grpc })
          .withCopyContentToContainer([
            { content: proxyConf, target: `${home}/conf/rmq-proxy.json` },
            { content: brokerConf, target: '/tmp/mqkit-broker.conf' },
          ])
          .withEnvironment({ JAVA_OPT_EXT: '-Xms256m -Xmx512m -XX:MaxDirectMemorySize=256m' })
          .withCommand([
            'sh',
            '-c',
            `cd ${home}/bin && (sh mqnamesrv > /tmp/namesrv.out 2>&1 &) && sleep 3 && ` +
              `exec sh mqbroker -n 127.0.0.1:9876 --enable-proxy -c /tmp/mqkit-broker.conf`,
          ])
          .withWaitStrategy(Wait.forLogMessage(/rocketmq-proxy startup successfully/))
          .withStartupTimeout(240_000)
          .start();
        started.push(c);
        await createTopicsInContainer(c, home, ROCKETMQ_SEED_TOPICS);
        return done<'rocketmq'>({ endpoints: `${host}:${grpc}` }, c) as unknown as StartedBroker<N>;
      }
      case 'sqs': {
        const host = await hostOf(tc);
        const port = await freePort();
        const conf = [
          'include classpath("application.conf")',
          `node-address { protocol = http, host = "${host}", port = ${port}, context-path = "" }`,
          'rest-sqs { enabled = true, bind-port = 9324, bind-hostname = "0.0.0.0", sqs-limits = strict }',
          'rest-stats { enabled = false }',
          'generate-node-address = false',
          'queues {}',
          'aws { region = us-east-1, accountId = "000000000000" }',
        ].join('\n');
        const [emq, moto] = await Promise.all([
          new GenericContainer(CONTAINER_IMAGES.elasticmq)
            .withExposedPorts({ container: 9324, host: port })
            .withCopyContentToContainer([{ content: conf, target: '/opt/elasticmq.conf' }])
            .withWaitStrategy(Wait.forListeningPorts())
            .withStartupTimeout(120_000)
            .start(),
          new GenericContainer(CONTAINER_IMAGES.moto)
            .withExposedPorts(5000)
            .withWaitStrategy(Wait.forListeningPorts())
            .withStartupTimeout(120_000)
            .start(),
        ]);
        started.push(emq, moto);
        return done<'sqs'>(
          {
            endpoint: `http://${host}:${port}`,
            snsEndpoint: `http://${moto.getHost()}:${moto.getMappedPort(5000)}`,
            region: 'us-east-1',
          },
          emq,
        ) as unknown as StartedBroker<N>;
      }
      case 'postgres': {
        const c = await new GenericContainer(CONTAINER_IMAGES.postgres)
          .withExposedPorts(5432)
          .withEnvironment({ POSTGRES_HOST_AUTH_METHOD: 'trust', POSTGRES_DB: 'mqkit' })
          .withCommand(['postgres', '-c', 'fsync=off', '-c', 'full_page_writes=off', '-c', 'synchronous_commit=off', '-c', 'max_connections=200'])
          .withWaitStrategy(Wait.forLogMessage(/database system is ready to accept connections/, 2))
          .withStartupTimeout(120_000)
          .start();
        started.push(c);
        return done<'postgres'>({ url: `postgres://postgres@${c.getHost()}:${c.getMappedPort(5432)}/mqkit` }, c) as unknown as StartedBroker<N>;
      }
      case 'redis': {
        const c = await new GenericContainer(CONTAINER_IMAGES.redis)
          .withExposedPorts(6379)
          .withWaitStrategy(Wait.forLogMessage(/Ready to accept connections/))
          .withStartupTimeout(60_000)
          .start();
        started.push(c);
        return done<'redis'>({ url: `redis://${c.getHost()}:${c.getMappedPort(6379)}` }, c) as unknown as StartedBroker<N>;
      }
    }
    throw new Error(`no container recipe for ${String(name)}`);
  } catch (e) {
    await stop();
    throw new Error(`starting ${name} with testcontainers failed: ${(e as Error).message}`, { cause: e });
  }
}

async function createTopicsInContainer(c: Started, home: string, topics: readonly string[]): Promise<void> {
  await Promise.all(topics.map((t) => execMqadminUpdateTopic(c.getId(), home, t)));
}

function rocketmqHome(): string {
  return `/home/rocketmq/rocketmq-${CONTAINER_IMAGES.rocketmq.split(':')[1] ?? '5.3.3'}`;
}

async function execMqadminUpdateTopic(containerId: string, home: string, spec: string): Promise<void> {
  const [topic, type] = spec.split(':');
  if (!topic || !type) throw new Error(`topic spec must be NAME:TYPE, got "${spec}"`);
  const tc = await import('testcontainers');
  const client = await tc.getContainerRuntimeClient();
  const container = client.container.getById(containerId);
  const args = ['-n', '127.0.0.1:9876', '-c', 'DefaultCluster', '-t', topic, '-a', `+message.type=${type}`];
  const r = await client.container.exec(container, ['sh', `${home}/bin/mqadmin`, 'updateTopic', ...args]);
  if (r.exitCode !== 0) throw new Error(`mqadmin updateTopic ${spec} failed (${r.exitCode}): ${r.output.slice(-500)}`);
}

/** Creates typed topics in a RocketMQ container started by {@link startBrokerContainer}. */
export async function createRocketmqTopicsInContainer(containerId: string, specs: readonly string[]): Promise<void> {
  await Promise.all(specs.map((s) => execMqadminUpdateTopic(containerId, rocketmqHome(), s)));
}
