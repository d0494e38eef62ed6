/**
 * The README quickstart from the packed tarballs (#22): `scripts/packaging-test.mjs --quickstart`
 * runs it in a fresh npm project outside the workspace, where the tarballs are installed with plain
 * npm (the project the packaging test left, when packed from the same sources; else it packs and
 * installs first, about a minute). It connects with the URL alone and `topology: 'create'`, uses
 * a new topic, publishes 10 and receives each once, on memory:// and on every real broker.
 */
import { execFile } from 'node:child_process';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { beforeAll, expect, it } from 'vitest';
import { requireBroker } from '../src/endpoints.ts';
import { REPO_ROOT } from '../src/resolve.ts';
import { EMULATOR_CREDENTIALS } from '../sqs/harness.ts';

const script = join(REPO_ROOT, 'scripts', 'packaging-test.mjs');

async function quickstart(url: string): Promise<string> {
  const { stdout } = await promisify(execFile)(process.execPath, [script, '--quickstart', url], {
    cwd: REPO_ROOT,
    timeout: 400_000,
    maxBuffer: 16 * 1024 * 1024,
    // MQ_URL alone: the SQS emulators take any credentials, found by the AWS SDK's provider chain.
    env: { ...process.env, AWS_ACCESS_KEY_ID: process.env.AWS_ACCESS_KEY_ID ?? EMULATOR_CREDENTIALS.accessKeyId, AWS_SECRET_ACCESS_KEY: process.env.AWS_SECRET_ACCESS_KEY ?? EMULATOR_CREDENTIALS.secretAccessKey },
  });
  return stdout;
}

/** Packs and installs once, if the kept project is stale, before the per-broker runs time out on it. */
beforeAll(async () => {
  expect(await quickstart('memory://')).toMatch(/quickstart OK on memory:\/\/: memory: 10\/10 received, each once/);
}, 420_000);

const { brokers } = requireBroker('kafka');
const rabbit = requireBroker('rabbitmq').url;
const { endpoints, namesrv } = requireBroker('rocketmq');
const sqs = requireBroker('sqs');
const redis = requireBroker('redis').url;

const cases: Array<[string, string, string]> = [
  ['memory', 'memory://', 'memory'],
  ['kafka', `kafka://${brokers}`, 'kafka'],
  ['rabbitmq', rabbit, 'rabbitmq'],
  ['rocketmq', `rocketmq://${endpoints.split(';').join(',')}${namesrv ? `?namesrv=${namesrv}` : ''}`, 'rocketmq'],
  ['sqs + sns (moto)', `sqs://?region=${sqs.region}&endpoint=${encodeURIComponent(sqs.snsEndpoint)}`, 'sqs'],
  ['sqs alone (ElasticMQ, sns=false)', `sqs://?region=${sqs.region}&endpoint=${encodeURIComponent(sqs.endpoint)}&sns=false`, 'sqs'],
  ['redis streams', redis, 'redis-streams'],
];

for (const [name, url, adapter] of cases) {
  it(`the packed quickstart on ${name}: 10 published, each received once`, async () => {
    const out = await quickstart(url);
    expect(out).toMatch(new RegExp(`quickstart OK on .*: ${adapter}: 10/10 received, each once`));
  }, 400_000);
}
