// `npm --prefix services/svc-tenders run replay:kes-outbox-poison -- [--max-rows N] [--execute]
// [--id ID] [--event-type T] [--aggregate-id A] [--reason TEXT] [--operator NAME]`: lists poison
// outbox rows (dry run, the default) or puts them back to pending with an audit row each.
import { loadConfig } from '@kvary/platform/config';
import { createPool, withTransaction, type Pool } from '@kvary/platform/postgres';
import { toolsConfigSchema } from '../config.js';
import { nonEmpty, nonNegativeInteger, operatorName, parseCommandLine, positiveInteger, runTool, within } from './cli.js';

const TOOL = 'replay:kes-outbox-poison';

const USAGE = `Usage: npm --prefix services/svc-tenders run replay:kes-outbox-poison -- [options]

Lists poison rows of kes_outbox_events (dry run, the default) or, with --execute, puts them back
to pending (attempts 0, last_error cleared, due now) and writes one kes_outbox_replays audit row
each, in one transaction. Rows are taken with FOR UPDATE SKIP LOCKED: two concurrent executes
never take the same row.

Options:
  --max-rows N        rows to take, oldest first (default 50)
  --id ID             only the outbox row with this id
  --event-type T      only this event type (e.g. kvary.tenders.tender.created, with or without .vN)
  --aggregate-id A    only rows of this aggregate
  --execute           apply (default: dry run, changes nothing)
  --reason TEXT       why, for the audit row (default "operator replay")
  --operator NAME     who, for the audit row (default: $USER)
  --help              this text

Environment: DATABASE_URL, KES_TOOL_TIMEOUT_MS.
Exit codes: 0 done, 1 database unreachable or failed, 2 bad arguments.`;

interface PoisonRow {
  id: string;
  event_id: string;
  aggregate_id: string;
  event_type: string;
  attempts: number;
  last_error: string | null;
}

interface Filters {
  id: number | undefined;
  eventType: string | undefined;
  aggregateId: string | undefined;
  limit: number;
}

/** The poison-row selection shared by dry run and execute ($1..$4 = id, type, aggregate, limit). */
function selection(filters: Filters, lock: boolean): { text: string; values: unknown[] } {
  return {
    text: `SELECT id::text, event_id::text, aggregate_id, event_type, attempts, last_error
           FROM kes_outbox_events
           WHERE status = 'poison'
             AND ($1::bigint IS NULL OR id = $1)
             AND ($2::text IS NULL OR event_type = $2 OR event_type || '.v' || event_version = $2)
             AND ($3::text IS NULL OR aggregate_id = $3)
           ORDER BY id
           LIMIT $4${lock ? ' FOR UPDATE SKIP LOCKED' : ''}`,
    values: [filters.id ?? null, filters.eventType ?? null, filters.aggregateId ?? null, filters.limit],
  };
}

async function main(): Promise<void> {
  const args = parseCommandLine(process.argv.slice(2), {
    'max-rows': { type: 'string' },
    execute: { type: 'boolean' },
    id: { type: 'string' },
    'event-type': { type: 'string' },
    'aggregate-id': { type: 'string' },
    reason: { type: 'string' },
    operator: { type: 'string' },
    help: { type: 'boolean' },
  });
  if (args.help) {
    console.log(USAGE);
    return;
  }
  const filters: Filters = {
    limit: nonNegativeInteger('--max-rows', args['max-rows'], 50),
    id: positiveInteger('--id', args.id),
    eventType: nonEmpty('--event-type', args['event-type']),
    aggregateId: nonEmpty('--aggregate-id', args['aggregate-id']),
  };
  const reason = nonEmpty('--reason', args.reason) ?? 'operator replay';
  const operatorArg = nonEmpty('--operator', args.operator);
  const execute = args.execute === true;

  const config = loadConfig(toolsConfigSchema);
  const operator = operatorName(operatorArg, config);
  const dbHost = new URL(config.DATABASE_URL).host;
  const pool: Pool = createPool({ connectionString: config.DATABASE_URL, max: 1, applicationName: TOOL });
  try {
    await within(pool.query('SELECT 1'), config.KES_TOOL_TIMEOUT_MS, `Postgres at ${dbHost} did not answer within ${config.KES_TOOL_TIMEOUT_MS} ms`).catch(
      (error: Error) => {
        throw new Error(`Postgres at ${dbHost} is unreachable: ${error.message}`);
      },
    );

    let rows: PoisonRow[];
    if (execute) {
      rows = await withTransaction(pool, async (client) => {
        const picked = await client.query<PoisonRow>(selection(filters, true));
        const ids = picked.rows.map((r) => r.id);
        if (ids.length === 0) return [];
        await client.query(
          `UPDATE kes_outbox_events SET status = 'pending', attempts = 0, next_attempt_at = clock_timestamp(), last_error = NULL
           WHERE id = ANY($1::bigint[])`,
          [ids],
        );
        await client.query(
          `INSERT INTO kes_outbox_replays (outbox_id, event_id, operator, reason, previous_error, previous_attempts)
           SELECT r.id, r.event_id, $2, $3, r.last_error, r.attempts
           FROM jsonb_to_recordset($1::jsonb) AS r(id bigint, event_id uuid, last_error text, attempts int)`,
          [JSON.stringify(picked.rows), operator, reason],
        );
        return picked.rows;
      });
    } else {
      rows = (await pool.query<PoisonRow>(selection(filters, false))).rows;
    }

    const mode = execute ? 'execute' : 'dry-run';
    const where = [
      filters.id !== undefined ? `id ${filters.id}` : '',
      filters.eventType ? `type ${filters.eventType}` : '',
      filters.aggregateId ? `aggregate ${filters.aggregateId}` : '',
    ].filter(Boolean);
    console.log(`${TOOL} ${mode} on ${dbHost} (max ${filters.limit} rows${where.length ? `, ${where.join(', ')}` : ''})`);
    for (const r of rows) {
      console.log(
        `  #${r.id} event=${r.event_id} aggregate=${r.aggregate_id} type=${r.event_type} attempts=${r.attempts} ` +
          `error=${JSON.stringify(r.last_error ?? '')}${execute ? ' -> pending' : ''}`,
      );
    }
    console.log(
      execute
        ? `${rows.length} poison row(s) put back to pending and audited (operator ${operator}, reason ${JSON.stringify(reason)}).`
        : `${rows.length} poison row(s) listed. Nothing changed (dry run; add --execute).`,
    );
    console.log(
      JSON.stringify({
        ok: true,
        mode,
        listed: rows.length,
        replayed: execute ? rows.length : 0,
        skipped: 0,
        operator: execute ? operator : undefined,
        reason: execute ? reason : undefined,
        rows: rows.map((r) => ({
          id: r.id,
          eventId: r.event_id,
          aggregateId: r.aggregate_id,
          eventType: r.event_type,
          attempts: r.attempts,
          lastError: r.last_error,
        })),
      }),
    );
  } finally {
    await pool.end().catch(() => undefined);
  }
}

await runTool(TOOL, main);
process.exit(process.exitCode ?? 0);
