// `npm --prefix services/svc-tenders run replay:kes-dlq -- [--from-beginning] [--max-messages N]
// [--execute] [--event-type T] [--operator NAME] [--reason TEXT]`: lists (dry run, the default) or
// re-publishes dead-lettered messages to their original topic.
//
// Progress lives in the consumer group KES_DLQ_REPLAY_GROUP (default kes-dlq-replay), which is
// never joined: messages are read by a throwaway reader group positioned with seek() on a range
// computed from the admin API, and progress is written with admin.setOffsets — so a dry run can
// never move it. Execute runs one at a time (a Postgres advisory lock), so two operators never
// replay the same message twice.
import { randomUUID } from 'node:crypto';
import { Partitioners, type Admin, type IHeaders, type Kafka, type KafkaMessage, type Producer } from 'kafkajs';
import { loadConfig } from '@kvary/platform/config';
import { createKafka, parseBrokers } from '@kvary/platform/kafka';
import { createPool, type Pool, type PoolClient } from '@kvary/platform/postgres';
import { toolsConfigSchema, type ToolsConfig } from '../config.js';
import { DLQ_HEADERS } from '../workspace/consumer.js';
import { nonEmpty, nonNegativeInteger, operatorName, parseCommandLine, runTool, within } from './cli.js';

const TOOL = 'replay:kes-dlq';
export const REPLAY_COUNT_HEADER = 'kes-replay-count';

const USAGE = `Usage: npm --prefix services/svc-tenders run replay:kes-dlq -- [options]

Lists dead-lettered KES messages (dry run, the default) or re-publishes them to their original
topic with key, value and original headers (kes-dlq-* removed, ${REPLAY_COUNT_HEADER} incremented).

Options:
  --max-messages N    messages to read (default 50)
  --from-beginning    start at the earliest DLQ offset instead of the saved progress
  --execute           re-publish, record progress and write audit rows (kes_dlq_replays)
  --event-type T      only replay messages whose ce_type is T; on --execute the others are
                      skipped AND progress moves past them (they are not offered again unless
                      --from-beginning is used)
  --operator NAME     who runs this (default: $USER)
  --reason TEXT       why (default "operator replay")
  --help              this text

A message already replayed KES_DLQ_MAX_REPLAYS times (default 3) is refused (listed as skipped).
Environment: KAFKA_BROKERS, DATABASE_URL (execute only), KES_DLQ_TOPIC, KES_DLQ_REPLAY_GROUP,
KES_DLQ_MAX_REPLAYS, KES_TOOL_TIMEOUT_MS.
Exit codes: 0 done, 1 infrastructure unreachable or failed, 2 bad arguments.`;

interface Item {
  partition: number;
  offset: string;
  key: string | null;
  eventId: string | null;
  ceType: string | null;
  reason: string | null;
  error: string | null;
  attempts: number | null;
  replayCount: number;
  originalTopic: string | null;
  action: 'replay' | 'skip';
  skipReason?: string;
}

function header(headers: IHeaders | undefined, name: string): string | null {
  const value = headers?.[name];
  if (value === undefined) return null;
  return (Array.isArray(value) ? value[0] : value)?.toString() ?? null;
}

function describe(partition: number, m: KafkaMessage, eventType: string | undefined, maxReplays: number): Item {
  const attempts = header(m.headers, DLQ_HEADERS.attempts);
  const replayCount = Number(header(m.headers, REPLAY_COUNT_HEADER) ?? '0') || 0;
  const item: Item = {
    partition,
    offset: m.offset,
    key: m.key?.toString() ?? null,
    eventId: header(m.headers, 'ce_id'),
    ceType: header(m.headers, 'ce_type'),
    reason: header(m.headers, DLQ_HEADERS.reason),
    error: header(m.headers, DLQ_HEADERS.errorMessage),
    attempts: attempts === null ? null : Number(attempts),
    replayCount,
    originalTopic: header(m.headers, DLQ_HEADERS.originalTopic),
    action: 'replay',
  };
  if (eventType !== undefined && item.ceType !== eventType) return { ...item, action: 'skip', skipReason: `event type is not ${eventType}` };
  if (replayCount >= maxReplays) return { ...item, action: 'skip', skipReason: `already replayed ${replayCount} time(s) (limit ${maxReplays})` };
  if (!item.originalTopic) return { ...item, action: 'skip', skipReason: `no ${DLQ_HEADERS.originalTopic} header` };
  return item;
}

/** The message as it is re-published: original headers without kes-dlq-*, replay counter + 1. */
export function replayHeaders(headers: IHeaders | undefined, replayCount: number): IHeaders {
  const out: IHeaders = {};
  for (const [name, value] of Object.entries(headers ?? {})) {
    if (value === undefined || name.startsWith('kes-dlq-') || name === REPLAY_COUNT_HEADER) continue;
    out[name] = value;
  }
  out[REPLAY_COUNT_HEADER] = String(replayCount + 1);
  return out;
}

interface Range {
  start: bigint;
  end: bigint;
}

/**
 * Reads [start, end) of each partition (at most `limit` per partition) with a throwaway group
 * that never commits. Returns the messages in (partition, offset) order.
 */
async function readRanges(
  kafka: Kafka,
  admin: Admin,
  topic: string,
  ranges: Map<number, Range>,
  limit: number,
  timeoutMs: number,
): Promise<{ partition: number; message: KafkaMessage }[]> {
  const wanted = [...ranges].filter(([, r]) => r.start < r.end);
  if (wanted.length === 0 || limit === 0) return [];
  const groupId = `kes-dlq-replay-reader-${randomUUID()}`;
  const consumer = kafka.consumer({ groupId, allowAutoTopicCreation: false, maxWaitTimeInMs: 200 });
  const got = new Map<number, { partition: number; message: KafkaMessage }[]>();
  const done = new Set<number>();
  let finish!: () => void;
  const finished = new Promise<void>((resolve) => (finish = resolve));
  try {
    await consumer.connect();
    await consumer.subscribe({ topics: [topic], fromBeginning: true });
    await consumer.run({
      autoCommit: false,
      eachBatch: async ({ batch }) => {
        const range = ranges.get(batch.partition);
        if (!range || done.has(batch.partition)) return;
        const list = got.get(batch.partition) ?? [];
        got.set(batch.partition, list);
        for (const message of batch.messages) {
          const offset = BigInt(message.offset);
          // The reader may start at the earliest offset before seek() takes effect.
          if (offset < range.start) continue;
          if (offset < range.end) list.push({ partition: batch.partition, message });
          if (offset + 1n >= range.end || list.length >= limit) {
            done.add(batch.partition);
            break;
          }
        }
        if (wanted.every(([p]) => done.has(p))) finish();
      },
    });
    for (const [partition, range] of wanted) consumer.seek({ topic, partition, offset: range.start.toString() });
    await within(finished, timeoutMs, `timed out after ${timeoutMs} ms reading ${topic}`);
  } finally {
    await consumer.disconnect().catch(() => undefined);
    await admin.deleteGroups([groupId]).catch(() => undefined);
  }
  return wanted.flatMap(([p]) => got.get(p) ?? []);
}

async function main(): Promise<void> {
  const args = parseCommandLine(process.argv.slice(2), {
    'from-beginning': { type: 'boolean' },
    'max-messages': { type: 'string' },
    execute: { type: 'boolean' },
    'event-type': { type: 'string' },
    operator: { type: 'string' },
    reason: { type: 'string' },
    help: { type: 'boolean' },
  });
  if (args.help) {
    console.log(USAGE);
    return;
  }
  const maxMessages = nonNegativeInteger('--max-messages', args['max-messages'], 50);
  const eventType = nonEmpty('--event-type', args['event-type']);
  const operatorArg = nonEmpty('--operator', args.operator);
  const reason = nonEmpty('--reason', args.reason) ?? 'operator replay';
  const execute = args.execute === true;
  const fromBeginning = args['from-beginning'] === true;

  const config: ToolsConfig = loadConfig(toolsConfigSchema);
  const operator = operatorName(operatorArg, config);
  const topic = config.KES_DLQ_TOPIC;
  const group = config.KES_DLQ_REPLAY_GROUP;
  const brokers = parseBrokers(config.KAFKA_BROKERS);
  const timeoutMs = config.KES_TOOL_TIMEOUT_MS;
  const kafka = createKafka({ brokers, clientId: 'replay-kes-dlq', retries: 1, connectionTimeoutMs: 3000, requestTimeoutMs: timeoutMs });
  const admin = kafka.admin({ retry: { retries: 1 } });
  let pool: Pool | undefined;
  let lockClient: PoolClient | undefined;
  let producer: Producer | undefined;
  try {
    await within(admin.connect(), timeoutMs, `Kafka at ${brokers.join(',')} did not answer within ${timeoutMs} ms`).catch((error: Error) => {
      throw new Error(`Kafka at ${brokers.join(',')} is unreachable: ${error.message}`);
    });
    const existing = await within(admin.listTopics(), timeoutMs, `Kafka at ${brokers.join(',')} did not answer within ${timeoutMs} ms`).catch(
      (error: Error) => {
        throw new Error(`Kafka at ${brokers.join(',')} is unreachable: ${error.message}`);
      },
    );
    if (!existing.includes(topic)) throw new Error(`DLQ topic ${topic} does not exist on ${brokers.join(',')}`);

    if (execute) {
      pool = createPool({ connectionString: config.DATABASE_URL, max: 2, applicationName: TOOL });
      const dbHost = new URL(config.DATABASE_URL).host;
      lockClient = await within(pool.connect(), timeoutMs, `Postgres at ${dbHost} did not answer within ${timeoutMs} ms`).catch(
        (error: Error) => {
          throw new Error(`Postgres at ${dbHost} is unreachable: ${error.message}`);
        },
      );
      // One execute at a time per topic and group: the next one waits and then starts after our progress.
      await lockClient.query('SELECT pg_advisory_lock(hashtextextended($1, 0))', [`replay:kes-dlq:${group}:${topic}`]);
      producer = kafka.producer({
      idempotent: true,
      maxInFlightRequests: 1,
      allowAutoTopicCreation: false,
      createPartitioner: Partitioners.DefaultPartitioner,
    });
      await producer.connect();
    }

    const ends = await admin.fetchTopicOffsets(topic);
    const saved = new Map<number, bigint>();
    const [committed] = await admin.fetchOffsets({ groupId: group, topics: [topic] });
    for (const p of committed?.partitions ?? []) if (BigInt(p.offset) >= 0n) saved.set(p.partition, BigInt(p.offset));
    const ranges = new Map<number, Range>();
    for (const end of ends.sort((a, b) => a.partition - b.partition)) {
      const low = BigInt(end.low);
      const progress = fromBeginning ? undefined : saved.get(end.partition);
      // Saved progress below the low-water mark (retention removed messages) starts at the low mark.
      const start = progress !== undefined && progress > low ? progress : low;
      ranges.set(end.partition, { start, end: BigInt(end.high) });
    }
    const read = await readRanges(kafka, admin, topic, ranges, maxMessages, Math.max(timeoutMs, 15_000));
    const selected = read.slice(0, maxMessages);
    const items = selected.map(({ partition, message }) => describe(partition, message, eventType, config.KES_DLQ_MAX_REPLAYS));

    let replayed = 0;
    if (execute && producer && lockClient) {
      const progress = new Map<number, bigint>();
      try {
        for (const [index, item] of items.entries()) {
          const message = selected[index]!.message;
          if (item.action === 'replay') {
            await producer.send({
              topic: item.originalTopic!,
              acks: -1,
              messages: [{ key: message.key, value: message.value, headers: replayHeaders(message.headers, item.replayCount) }],
            });
            await lockClient.query(
              `INSERT INTO kes_dlq_replays (dlq_topic, dlq_partition, dlq_offset, event_id, ce_type, original_topic, dlq_reason,
                 replay_count, progress_group, operator, reason)
               VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)`,
              [
                topic,
                item.partition,
                item.offset,
                item.eventId && /^[0-9a-f-]{36}$/i.test(item.eventId) ? item.eventId : null,
                item.ceType,
                item.originalTopic,
                item.reason,
                item.replayCount + 1,
                group,
                operator,
                reason,
              ],
            );
            replayed++;
          }
          // Progress moves past replayed and skipped messages alike, never backwards (--from-beginning).
          const next = BigInt(item.offset) + 1n;
          if (next > (progress.get(item.partition) ?? saved.get(item.partition) ?? -1n)) progress.set(item.partition, next);
        }
      } finally {
        // Also after a failure part-way: what was re-published is recorded as done. One commit for
        // all partitions (admin.setOffsets briefly joins the group, which costs seconds per call).
        // A crash before this line re-offers those messages next time; the consumer's inbox makes a
        // second replay of an event harmless.
        if (progress.size > 0) {
          await admin.setOffsets({
            groupId: group,
            topic,
            partitions: [...progress].map(([partition, offset]) => ({ partition, offset: offset.toString() })),
          });
        }
      }
    }

    const skipped = items.filter((i) => i.action === 'skip').length;
    const mode = execute ? 'execute' : 'dry-run';
    console.log(
      `${TOOL} ${mode} on ${topic} (progress group ${group}, ${fromBeginning ? 'from the beginning' : 'from saved progress'})`,
    );
    for (const i of items) {
      const what = i.action === 'skip' ? `skipped: ${i.skipReason}` : execute ? `replayed to ${i.originalTopic}` : `would replay to ${i.originalTopic}`;
      console.log(
        `  p${i.partition} @${i.offset} key=${i.key ?? '-'} event=${i.eventId ?? '-'} type=${i.ceType ?? '-'} ` +
          `reason=${i.reason ?? '-'} attempts=${i.attempts ?? '-'} replays=${i.replayCount} error=${JSON.stringify(i.error ?? '')} -> ${what}`,
      );
    }
    console.log(
      execute
        ? `${items.length} listed, ${replayed} replayed, ${skipped} skipped (operator ${operator}).`
        : `${items.length} listed, ${items.length - skipped} would be replayed, ${skipped} skipped. Nothing changed (dry run; add --execute).`,
    );
    console.log(
      JSON.stringify({
        ok: true,
        mode,
        topic,
        group,
        fromBeginning,
        listed: items.length,
        replayed,
        wouldReplay: execute ? 0 : items.length - skipped,
        skipped,
        items,
      }),
    );
  } finally {
    await producer?.disconnect().catch(() => undefined);
    lockClient?.release();
    await pool?.end().catch(() => undefined);
    await admin.disconnect().catch(() => undefined);
  }
}

await runTool(TOOL, main);
// kafkajs may keep reconnect timers alive after a failure; the result is already printed.
process.exit(process.exitCode ?? 0);
