// Periodic retention of svc-tenders' bookkeeping tables: idempotency keys, the consumer inbox
// and the workspace activity list. Each job deletes in batches; one run at a time.
import type { Logger } from '@kvary/platform/logging';
import type { Pool } from '@kvary/platform/postgres';
import { purgeIdempotencyKeys } from './idempotency.js';
import { purgeInbox, trimActivity } from './workspace/repository.js';

export interface RetentionSettings {
  IDEMPOTENCY_RETENTION_HOURS: number;
  CONSUMER_INBOX_RETENTION_HOURS: number;
  WORKSPACE_ACTIVITY_KEEP: number;
  RETENTION_INTERVAL_MS: number;
}

/** Runs every job once; a failing job is logged and does not stop the others. */
export async function runRetention(pool: Pool, settings: RetentionSettings, logger: Logger): Promise<Record<string, number>> {
  const jobs: Record<string, () => Promise<number>> = {
    idempotencyKeys: () => purgeIdempotencyKeys(pool, settings.IDEMPOTENCY_RETENTION_HOURS),
    consumerInbox: () => purgeInbox(pool, settings.CONSUMER_INBOX_RETENTION_HOURS),
    workspaceActivity: () => trimActivity(pool, settings.WORKSPACE_ACTIVITY_KEEP),
  };
  const deleted: Record<string, number> = {};
  for (const [name, job] of Object.entries(jobs)) {
    try {
      deleted[name] = await job();
    } catch (error) {
      logger.warn({ err: error, job: name }, 'retention job failed');
    }
  }
  if (Object.values(deleted).some((n) => n > 0)) logger.info({ deleted }, 'retention removed expired rows');
  return deleted;
}

/** Schedules runRetention; stop() waits for a run in progress. */
export function startRetention(pool: Pool, settings: RetentionSettings, logger: Logger): { stop: () => Promise<void> } {
  let running: Promise<unknown> = Promise.resolve();
  const timer = setInterval(() => {
    running = running.then(() => runRetention(pool, settings, logger));
  }, settings.RETENTION_INTERVAL_MS);
  timer.unref();
  return {
    stop: async () => {
      clearInterval(timer);
      await running;
    },
  };
}
