// GET /api/v1/context: what the gateway resolved for the caller (locale, scope, roles, the
// routes of the permission table it may call) plus its workspace projection from svc-tenders.
// A failing projection never fails the request: it is reported next to a null workspace.
import type { FastifyReply, FastifyRequest } from 'fastify';
import type { Role } from '@kvary/identity/roles';
import { contextMessage } from './i18n.js';
import { permittedRoutes } from './permissions.js';

export interface ContextDeps {
  tendersUrl: string;
  fetch: typeof fetch;
  timeoutMs: number;
}

export interface WorkspaceError {
  code: 'WORKSPACE_NOT_FOUND' | 'UPSTREAM_STATUS' | 'UPSTREAM_UNAVAILABLE' | 'UPSTREAM_TIMEOUT';
  upstream: 'svc-tenders';
  status?: number;
}

export function contextHandler(deps: ContextDeps) {
  return async (request: FastifyRequest, _reply: FastifyReply) => {
    const { locale, identity, traceparent } = request.gateway;
    const roles: Role[] | null = identity ? identity.roles : null;
    const scope = identity === null ? 'GUEST' : roles?.length ? roles.join(',') : 'AUTHENTICATED';
    let workspace: unknown = null;
    let workspaceError: WorkspaceError | undefined;
    if (identity) {
      try {
        const response = await deps.fetch(`${deps.tendersUrl}/api/v1/workspace`, {
          headers: {
            authorization: `Bearer ${identity.token}`,
            accept: 'application/json',
            'accept-language': locale,
            'x-request-id': request.id,
            traceparent,
          },
          signal: AbortSignal.timeout(deps.timeoutMs),
        });
        if (response.ok) workspace = await response.json();
        else {
          await response.body?.cancel();
          workspaceError = {
            code: response.status === 404 ? 'WORKSPACE_NOT_FOUND' : 'UPSTREAM_STATUS',
            upstream: 'svc-tenders',
            status: response.status,
          };
        }
      } catch (error) {
        const timedOut = (error as Error).name === 'TimeoutError';
        request.log.warn({ err: error }, 'workspace projection unavailable');
        workspaceError = { code: timedOut ? 'UPSTREAM_TIMEOUT' : 'UPSTREAM_UNAVAILABLE', upstream: 'svc-tenders' };
      }
    }
    return {
      locale,
      scope,
      roles: roles ?? ['GUEST'],
      user: identity ? { sub: identity.sub, orgId: identity.orgId } : null,
      permittedRoutes: permittedRoutes(identity),
      workspace,
      ...(workspaceError ? { workspaceError } : {}),
      message: contextMessage(locale, roles),
    };
  };
}
