// kafkajs client factory from config (logs routed to pino) and idempotent topic creation.
import { Kafka, logLevel, type Admin, type ITopicConfig, type KafkaConfig, type logCreator } from 'kafkajs';
import type { Logger } from 'pino';

export interface KafkaSettings {
  brokers: string[];
  clientId: string;
  connectionTimeoutMs?: number;
  requestTimeoutMs?: number;
  /** Retries of the client's own connection/metadata retry loop. */
  retries?: number;
  logger?: Logger;
}

const levelNames: Record<number, 'error' | 'warn' | 'info' | 'debug'> = {
  [logLevel.ERROR]: 'error',
  [logLevel.WARN]: 'warn',
  [logLevel.INFO]: 'info',
  [logLevel.DEBUG]: 'debug',
};

function pinoLogCreator(logger: Logger): logCreator {
  return () =>
    ({ level, log }) => {
      const { message, ...extra } = log;
      logger[levelNames[level] ?? 'info']({ kafka: extra }, message);
    };
}

export function createKafka(settings: KafkaSettings): Kafka {
  const config: KafkaConfig = {
    clientId: settings.clientId,
    brokers: settings.brokers,
    connectionTimeout: settings.connectionTimeoutMs ?? 3000,
    requestTimeout: settings.requestTimeoutMs ?? 30000,
    retry: { retries: settings.retries ?? 5, initialRetryTime: 200, maxRetryTime: 5000 },
    logLevel: settings.logger ? logLevel.WARN : logLevel.NOTHING,
  };
  if (settings.logger) config.logCreator = pinoLogCreator(settings.logger.child({ component: 'kafkajs' }));
  return new Kafka(config);
}

export function parseBrokers(value: string): string[] {
  return value
    .split(',')
    .map((b) => b.trim())
    .filter(Boolean);
}

export interface TopicSpec {
  topic: string;
  numPartitions?: number;
  replicationFactor?: number;
  configEntries?: { name: string; value: string }[];
}

/**
 * Creates the topics that do not exist yet; safe to call any number of times, also
 * concurrently (a TOPIC_ALREADY_EXISTS race counts as success). Returns the created names.
 */
export async function ensureTopics(admin: Admin, specs: TopicSpec[]): Promise<string[]> {
  const existing = new Set(await admin.listTopics());
  const missing: ITopicConfig[] = specs
    .filter((s) => !existing.has(s.topic))
    .map((s) => ({
      topic: s.topic,
      numPartitions: s.numPartitions ?? 1,
      replicationFactor: s.replicationFactor ?? 1,
      configEntries: s.configEntries ?? [],
    }));
  if (missing.length === 0) return [];
  try {
    await admin.createTopics({ topics: missing, waitForLeaders: true });
  } catch (error) {
    const nested = (error as { errors?: { type?: string }[] }).errors ?? [];
    const onlyExists = nested.length > 0 && nested.every((e) => e.type === 'TOPIC_ALREADY_EXISTS');
    if (!onlyExists && (error as { type?: string }).type !== 'TOPIC_ALREADY_EXISTS') throw error;
  }
  return missing.map((m) => m.topic);
}
