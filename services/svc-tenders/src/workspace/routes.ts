// GET /api/v1/workspace: the caller's slice of the workspace projection (their organisation and
// themselves). Read from the projection, so it trails the tender API by the consumer's lag.
import type { FastifyPluginAsyncZod } from 'fastify-type-provider-zod';
import { z } from 'zod';
import { TENDER_STATUSES } from '@kvary/contracts/tenders';
import { unauthorized } from '@kvary/platform/errors';
import { withTransaction, type Pool } from '@kvary/platform/postgres';
import type { TokenVerifier } from '@kvary/identity/verifier';
import { authenticate } from '../auth.js';
import { orgActivity, orgTenderCounts, userActivity, userTenderCounts, type StatusCounts } from './repository.js';

export interface WorkspaceRoutesOptions {
  pool: Pool;
  verifier: TokenVerifier;
  activityLimit: number;
}

const counts = z.object(Object.fromEntries(TENDER_STATUSES.map((s) => [s, z.number().int()])) as Record<keyof StatusCounts, z.ZodNumber>);
const activity = z.array(
  z.object({
    eventId: z.string(),
    type: z.string(),
    tenderId: z.string(),
    title: z.string().nullable(),
    summary: z.string(),
    actorId: z.string().nullable(),
    occurredAt: z.string(),
  }),
);

export const workspaceSchema = z.object({
  orgId: z.string().nullable(),
  userId: z.string(),
  /** The organisation's tenders (as buyer, or as a bidding supplier) by current status. */
  tendersByStatus: counts,
  /** The organisation's latest events, newest first. */
  recentActivity: activity,
  /** The same for the caller alone (tenders they acted on, their own events). */
  user: z.object({ tendersByStatus: counts, recentActivity: activity }),
  asOf: z.string(),
});

export const workspaceRoutes: FastifyPluginAsyncZod<WorkspaceRoutesOptions> = async (app, { pool, verifier, activityLimit }) => {
  app.addHook('onRequest', authenticate(verifier));

  app.get(
    '/',
    {
      schema: {
        summary: "The caller's workspace: tenders by status and recent activity, for their organisation and themselves",
        tags: ['workspace'],
        security: [{ bearerAuth: [] }],
        response: { 200: workspaceSchema },
      },
    },
    async (request) => {
      const identity = request.identity;
      if (!identity) throw unauthorized('a bearer access token is required');
      const { orgId, sub } = identity;
      // One snapshot for all four reads, so counts and activity agree with each other.
      return withTransaction(pool, async (client) => {
        await client.query('SET TRANSACTION ISOLATION LEVEL REPEATABLE READ READ ONLY');
        const empty = Object.fromEntries(TENDER_STATUSES.map((s) => [s, 0])) as StatusCounts;
        const [orgCounts, orgRecent, userCounts, userRecent] = [
          orgId ? await orgTenderCounts(client, orgId) : empty,
          orgId ? await orgActivity(client, orgId, activityLimit) : [],
          await userTenderCounts(client, sub),
          await userActivity(client, sub, activityLimit),
        ];
        return {
          orgId,
          userId: sub,
          tendersByStatus: orgCounts,
          recentActivity: orgRecent,
          user: { tendersByStatus: userCounts, recentActivity: userRecent },
          asOf: new Date().toISOString(),
        };
      });
    },
  );
};
