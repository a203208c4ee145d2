// Lane ownership. The outbox is split into LANE_COUNT lanes by a hash of the aggregate id
// (a generated column), so every event of one aggregate lives in one lane. A relay publishes
// only lanes it holds a session-level advisory lock for, so at most one relay publishes a
// given aggregate at any time, in id order: that is what keeps per-aggregate order with
// several relays. Locks live on one dedicated connection: if the relay dies (even kill -9)
// Postgres drops the session and the lanes become free for the others.
//
// Balancing without a registry table: each relay also holds one "member" lock; the number
// of member locks in pg_locks is the number of live relays, and each aims at
// ceil(LANE_COUNT / members) lanes, releasing extras between batches.
import { EventEmitter } from 'node:events';
import pg from 'pg';
import type { Logger } from '@kvary/platform/logging';
import { OUTBOX_CHANNEL } from '@kvary/outbox/writer';
import { RELAY_SESSION_OPTIONS } from './config.js';

export const LANE_COUNT = 64; // must match the generated `lane` column of kes_outbox_events
const LOCK_NS_MEMBER = 72_431;
const LOCK_NS_LANE = 72_432;
const MAX_MEMBERS = 1024;

export class LaneOwner extends EventEmitter {
  private client: pg.Client | undefined;
  private owned = new Set<number>();
  private alive = false;
  private memberSlot: number | undefined;
  members = 0;

  constructor(
    private readonly databaseUrl: string,
    private readonly logger: Logger,
    private readonly listen: boolean,
  ) {
    super();
  }

  /** Lanes this relay may publish now; empty while the lock session is down. */
  lanes(): number[] {
    return this.alive ? [...this.owned].sort((a, b) => a - b) : [];
  }

  isAlive(): boolean {
    return this.alive;
  }

  async connect(): Promise<void> {
    const client = new pg.Client({ connectionString: this.databaseUrl, application_name: 'kes-outbox-relay-locks', options: RELAY_SESSION_OPTIONS });
    const lost = (error?: Error) => {
      if (this.client !== client) return;
      // Every advisory lock died with the session: stop publishing at once.
      this.alive = false;
      this.owned.clear();
      this.memberSlot = undefined;
      this.client = undefined;
      this.logger.warn({ err: error }, 'lock session lost; lanes released');
      this.emit('lost');
    };
    client.on('error', lost);
    client.on('end', () => lost());
    client.on('notification', () => this.emit('notify'));
    await client.connect();
    this.client = client;
    if (this.listen) await client.query(`LISTEN ${OUTBOX_CHANNEL}`);
    for (let slot = 0; slot < MAX_MEMBERS; slot++) {
      const { rows } = await client.query<{ ok: boolean }>('SELECT pg_try_advisory_lock($1, $2) AS ok', [LOCK_NS_MEMBER, slot]);
      if (rows[0]?.ok) {
        this.memberSlot = slot;
        break;
      }
    }
    if (this.memberSlot === undefined) throw new Error(`more than ${MAX_MEMBERS} relays are running`);
    this.alive = true;
  }

  /**
   * Takes free lanes up to this relay's share and gives back the excess. Call only between
   * batches: a lane must never be released while a batch of it is in flight.
   */
  async rebalance(): Promise<void> {
    const client = this.client;
    if (!client || !this.alive) return;
    const { rows } = await client.query<{ members: number }>(
      `SELECT count(*)::int AS members FROM pg_locks
        WHERE locktype = 'advisory' AND granted AND classid = $1 AND objsubid = 2
          AND database = (SELECT oid FROM pg_database WHERE datname = current_database())`,
      [LOCK_NS_MEMBER],
    );
    this.members = Math.max(1, rows[0]?.members ?? 1);
    const target = Math.ceil(LANE_COUNT / this.members);
    if (this.owned.size > target) {
      const extra = [...this.owned].sort((a, b) => b - a).slice(0, this.owned.size - target);
      for (const lane of extra) {
        await client.query('SELECT pg_advisory_unlock($1, $2)', [LOCK_NS_LANE, lane]);
        this.owned.delete(lane);
      }
      this.logger.info({ released: extra.length, owned: this.owned.size, members: this.members }, 'released lanes');
    } else if (this.owned.size < target) {
      // Start at a random lane so relays starting together do not fight over the same ones.
      const start = Math.floor(Math.random() * LANE_COUNT);
      let taken = 0;
      for (let i = 0; i < LANE_COUNT && this.owned.size < target; i++) {
        const lane = (start + i) % LANE_COUNT;
        if (this.owned.has(lane)) continue;
        const res = await client.query<{ ok: boolean }>('SELECT pg_try_advisory_lock($1, $2) AS ok', [LOCK_NS_LANE, lane]);
        if (res.rows[0]?.ok) {
          this.owned.add(lane);
          taken++;
        }
      }
      if (taken) this.logger.info({ taken, owned: this.owned.size, members: this.members }, 'took lanes');
    }
  }

  /** Releases everything by ending the session (locks go with it). */
  async close(): Promise<void> {
    const client = this.client;
    this.client = undefined;
    this.alive = false;
    this.owned.clear();
    if (client) await client.end().catch(() => undefined);
  }
}
