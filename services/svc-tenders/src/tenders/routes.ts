// /api/v1/tenders: HTTP shell around TenderService. Roles are checked here (401/403 before any
// database work); row-level rights (buyer organisation, visibility) inside the service.
import type { FastifyReply, FastifyRequest } from 'fastify';
import type { FastifyPluginAsyncZod } from 'fastify-type-provider-zod';
import type pg from 'pg';
import { counter, type Registry } from '@kvary/platform/metrics';
import type { Pool } from '@kvary/platform/postgres';
import type { TokenVerifier } from '@kvary/identity/verifier';
import { authenticate, onlyFor, requireRole } from '../auth.js';
import { hashRequest, runCommand } from '../idempotency.js';
import { traceparentFor } from '../trace.js';
import {
  awardBody,
  bidSchema,
  cancelBody,
  commandHeaders,
  createTenderBody,
  emptyBody,
  listQuery,
  submitBidBody,
  tenderDetailSchema,
  tenderPageSchema,
  tenderParams,
  tenderSchema,
  updateTenderBody,
} from './schemas.js';
import type { EventContext, TenderService } from './service.js';

export interface TenderRoutesOptions {
  pool: Pool;
  service: TenderService;
  verifier: TokenVerifier;
  metrics: Registry;
}

const security = [{ bearerAuth: [] }];

export const tenderRoutes: FastifyPluginAsyncZod<TenderRoutesOptions> = async (app, { pool, service, verifier, metrics }) => {
  app.addHook('onRequest', authenticate(verifier));

  const commands = counter(metrics, {
    name: 'svc_tenders_commands_total',
    help: 'Tender commands by command and outcome (ok, replayed, rejected, failed)',
    labelNames: ['command', 'outcome'],
  });

  /**
   * Runs one command in one transaction. POSTs honour Idempotency-Key, scoped to the user and
   * the route; the request hash covers the path parameters and the body.
   */
  async function execute(
    request: FastifyRequest,
    reply: FastifyReply,
    command: string,
    okStatus: number,
    run: (client: pg.PoolClient, ctx: EventContext) => Promise<unknown>,
  ) {
    const userId = request.identity?.sub ?? 'anonymous';
    const key = request.method === 'POST' ? request.headers['idempotency-key'] : undefined;
    const scope =
      typeof key === 'string'
        ? {
            userId,
            route: `${request.method} ${request.routeOptions.url ?? request.url}`,
            key,
            requestHash: hashRequest({ params: request.params, body: request.body }),
          }
        : undefined;
    const ctx: EventContext = { traceparent: traceparentFor(request.headers.traceparent), requestId: request.id };
    try {
      const result = await runCommand(pool, scope, async (client) => ({ statusCode: okStatus, body: await run(client, ctx) }));
      commands.inc({ command, outcome: result.replayed ? 'replayed' : 'ok' });
      if (result.replayed) reply.header('idempotent-replayed', 'true');
      return reply.status(result.statusCode).send(result.body);
    } catch (error) {
      const status = (error as { statusCode?: number }).statusCode;
      commands.inc({ command, outcome: status !== undefined && status < 500 ? 'rejected' : 'failed' });
      throw error;
    }
  }

  app.post(
    '/',
    {
      preValidation: onlyFor('PROCUREMENT_OFFICER'),
      schema: {
        summary: 'Create a draft tender',
        tags: ['tenders'],
        security,
        headers: commandHeaders,
        body: createTenderBody,
        response: { 201: tenderSchema },
      },
    },
    async (request, reply) => {
      const actor = requireRole(request, 'PROCUREMENT_OFFICER');
      return execute(request, reply, 'create', 201, (client, ctx) => service.create(client, actor, request.body, ctx));
    },
  );

  app.patch(
    '/:id',
    {
      preValidation: onlyFor('PROCUREMENT_OFFICER'),
      schema: {
        summary: 'Update a draft tender',
        tags: ['tenders'],
        security,
        params: tenderParams,
        body: updateTenderBody,
        response: { 200: tenderSchema },
      },
    },
    async (request, reply) => {
      const actor = requireRole(request, 'PROCUREMENT_OFFICER');
      return execute(request, reply, 'update', 200, (client, ctx) => service.update(client, actor, request.params.id, request.body, ctx));
    },
  );

  app.post(
    '/:id/publish',
    {
      preValidation: onlyFor('PROCUREMENT_OFFICER'),
      schema: {
        summary: 'Publish a draft tender',
        tags: ['tenders'],
        security,
        headers: commandHeaders,
        params: tenderParams,
        body: emptyBody,
        response: { 200: tenderSchema },
      },
    },
    async (request, reply) => {
      const actor = requireRole(request, 'PROCUREMENT_OFFICER');
      return execute(request, reply, 'publish', 200, (client, ctx) => service.publish(client, actor, request.params.id, ctx));
    },
  );

  app.post(
    '/:id/bids',
    {
      preValidation: onlyFor('SUPPLIER'),
      schema: {
        summary: 'Submit a bid on a published tender (sealed until the tender closes)',
        tags: ['bids'],
        security,
        headers: commandHeaders,
        params: tenderParams,
        body: submitBidBody,
        response: { 201: bidSchema },
      },
    },
    async (request, reply) => {
      const actor = requireRole(request, 'SUPPLIER');
      return execute(request, reply, 'submitBid', 201, (client, ctx) => service.submitBid(client, actor, request.params.id, request.body, ctx));
    },
  );

  app.post(
    '/:id/close',
    {
      preValidation: onlyFor('PROCUREMENT_OFFICER'),
      schema: {
        summary: 'Close bidding on a published tender',
        tags: ['tenders'],
        security,
        headers: commandHeaders,
        params: tenderParams,
        body: emptyBody,
        response: { 200: tenderSchema },
      },
    },
    async (request, reply) => {
      const actor = requireRole(request, 'PROCUREMENT_OFFICER');
      return execute(request, reply, 'close', 200, (client, ctx) => service.close(client, actor, request.params.id, ctx));
    },
  );

  app.post(
    '/:id/award',
    {
      preValidation: onlyFor('PROCUREMENT_OFFICER'),
      schema: {
        summary: 'Award a closed tender to one of its bids',
        tags: ['tenders'],
        security,
        headers: commandHeaders,
        params: tenderParams,
        body: awardBody,
        response: { 200: tenderSchema },
      },
    },
    async (request, reply) => {
      const actor = requireRole(request, 'PROCUREMENT_OFFICER');
      return execute(request, reply, 'award', 200, (client, ctx) => service.award(client, actor, request.params.id, request.body.bidId, ctx));
    },
  );

  app.post(
    '/:id/cancel',
    {
      preValidation: onlyFor('PROCUREMENT_OFFICER'),
      schema: {
        summary: 'Cancel a tender that is not awarded yet',
        tags: ['tenders'],
        security,
        headers: commandHeaders,
        params: tenderParams,
        body: cancelBody,
        response: { 200: tenderSchema },
      },
    },
    async (request, reply) => {
      const actor = requireRole(request, 'PROCUREMENT_OFFICER');
      return execute(request, reply, 'cancel', 200, (client, ctx) => service.cancel(client, actor, request.params.id, request.body.reason, ctx));
    },
  );

  app.get(
    '/:id',
    {
      schema: {
        summary: 'One tender with the bids the caller may see (no token: GUEST)',
        tags: ['tenders'],
        params: tenderParams,
        response: { 200: tenderDetailSchema },
      },
    },
    async (request) => service.get(pool, { orgId: request.identity?.orgId ?? null }, request.params.id),
  );

  app.get(
    '/',
    {
      schema: {
        summary: 'Tenders the caller may see, newest first, keyset-paginated (no token: GUEST)',
        tags: ['tenders'],
        querystring: listQuery,
        response: { 200: tenderPageSchema },
      },
    },
    async (request) => service.list(pool, { orgId: request.identity?.orgId ?? null }, request.query),
  );
};
