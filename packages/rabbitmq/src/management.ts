/**
 * The few calls of RabbitMQ's management plugin HTTP API that the operations need and AMQP cannot
 * answer: which exchanges (topics) and group queues exist, and a queue's unacked count. Used only
 * by ops.ts, never on the publish or consume path. Node's own fetch: no client library for four GETs.
 */
import { MqError } from '@mqkit/core/driver';
import type { ConnectionSettings } from './options.ts';

/** The management listener's default port. */
const DEFAULT_PORT = 15672;
/** Per request: an operations call, not a hot path, but never hung. */
const REQUEST_TIMEOUT_MS = 5_000;
/** How long the default endpoint is given to answer before operations go without it. */
const PROBE_TIMEOUT_MS = 2_000;

/** One queue as the API reports it (fields mqkit reads). */
export interface QueueInfo {
  readonly name: string;
  readonly ready: number;
  readonly unacked: number;
  readonly consumers: number;
}

export class ManagementApi {
  readonly #base: string;
  readonly #auth: string;
  readonly #vhost: string;
  /** For messages: the base URL without credentials. */
  readonly where: string;

  private constructor(base: URL, user: string, password: string, vhost: string) {
    this.where = base.origin;
    this.#base = `${base.origin}${base.pathname.replace(/\/$/, '')}/api`;
    this.#auth = `Basic ${Buffer.from(`${user}:${password}`).toString('base64')}`;
    this.#vhost = encodeURIComponent(vhost);
  }

  /**
   * The API for these connection settings: `managementUrl` when given (it must answer: CONNECTION,
   * AUTH or REJECTED otherwise), else the AMQP host's port 15672 when it answers, else undefined.
   */
  static async open(settings: ConnectionSettings): Promise<ManagementApi | undefined> {
    const amqp = new URL(settings.amqpUrl);
    const user = decodeURIComponent(amqp.username) || 'guest';
    const password = decodeURIComponent(amqp.password) || 'guest';
    // AMQP's vhost is the path without its leading slash ('' = the default vhost '/').
    const vhost = decodeURIComponent(amqp.pathname.replace(/^\//, '')) || '/';
    if (!settings.options.management) return undefined;
    const explicit = settings.options.managementUrl;
    if (explicit !== undefined) {
      const url = new URL(explicit);
      const api = new ManagementApi(url, decodeURIComponent(url.username) || user, decodeURIComponent(url.password) || password, vhost);
      await api.#get('/overview', REQUEST_TIMEOUT_MS);
      return api;
    }
    const url = new URL(`${settings.tls ? 'https' : 'http'}://${amqp.hostname}:${DEFAULT_PORT}`);
    const api = new ManagementApi(url, user, password, vhost);
    try {
      await api.#get('/overview', PROBE_TIMEOUT_MS);
      return api;
    } catch {
      return undefined; // no plugin there (or not for us): AMQP alone
    }
  }

  /** Names of the vhost's topic exchanges mqkit could own (not the broker's `amq.*` or the default ''). */
  async topicExchanges(): Promise<string[]> {
    const list = (await this.#get(`/exchanges/${this.#vhost}?columns=name,type`)) as Array<{ name: string; type: string }>;
    return list.filter((x) => x.type === 'topic' && x.name !== '' && !x.name.startsWith('amq.')).map((x) => x.name);
  }

  /** The queues bound to `exchange` (mqkit binds each group queue `T.G` to exchange `T`). */
  async queuesBoundTo(exchange: string): Promise<string[]> {
    const list = (await this.#get(`/exchanges/${this.#vhost}/${encodeURIComponent(exchange)}/bindings/source`)) as Array<{ destination: string; destination_type: string }>;
    return [...new Set(list.filter((b) => b.destination_type === 'queue').map((b) => b.destination))];
  }

  /** A queue's counts; NOT_FOUND when it does not exist. */
  async queue(name: string): Promise<QueueInfo> {
    const q = (await this.#get(`/queues/${this.#vhost}/${encodeURIComponent(name)}`)) as {
      name: string;
      messages_ready?: number;
      messages_unacknowledged?: number;
      consumers?: number;
    };
    return { name: q.name, ready: q.messages_ready ?? 0, unacked: q.messages_unacknowledged ?? 0, consumers: q.consumers ?? 0 };
  }

  async #get(path: string, timeoutMs = REQUEST_TIMEOUT_MS): Promise<unknown> {
    let res: Response;
    try {
      res = await fetch(`${this.#base}${path}`, { headers: { authorization: this.#auth, accept: 'application/json' }, signal: AbortSignal.timeout(timeoutMs) });
    } catch (err) {
      throw new MqError('CONNECTION', `RabbitMQ management API at ${this.where} did not answer: ${(err as Error).message}`, { cause: err });
    }
    if (res.status === 401 || res.status === 403) {
      throw new MqError('AUTH', `RabbitMQ management API at ${this.where} refused the credentials (the user needs the management or monitoring tag)`);
    }
    if (res.status === 404) throw new MqError('NOT_FOUND', `RabbitMQ management API at ${this.where}: ${decodeURIComponent(path.split('?')[0]!)} does not exist`);
    if (!res.ok) throw new MqError('REJECTED', `RabbitMQ management API at ${this.where} answered ${res.status} for ${path.split('?')[0]}`);
    return res.json();
  }
}
