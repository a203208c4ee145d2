// The gateway's message catalogue: every error code it answers with, and the context message,
// in Georgian (authoritative) and English.
import { AppError } from '@kvary/platform/errors';
import type { Role } from '@kvary/identity/roles';
import type { Locale } from './locale.js';
import type { Upstream } from './permissions.js';

type Params = Record<string, string | number>;
type Message = string | ((params: Params) => string);

const SERVICE_NAMES: Record<Upstream, Record<Locale, string>> = {
  'svc-auth': { ka: 'ავტორიზაციის სერვისი', en: 'auth service' },
  'svc-tenders': { ka: 'ტენდერების სერვისი', en: 'tenders service' },
  gateway: { ka: 'შლუზი', en: 'gateway' },
};

export const GATEWAY_MESSAGES = {
  UNAUTHORIZED: { ka: 'საჭიროა ავტორიზაცია', en: 'authentication required' },
  INVALID_TOKEN: { ka: 'წვდომის ტოკენი არასწორია ან ვადაგასულია', en: 'the access token is not valid' },
  FORBIDDEN: {
    ka: (p) => `ამ მოქმედებისთვის საჭიროა როლი: ${p.roles}`,
    en: (p) => `this action needs the role ${p.roles}`,
  },
  ROUTE_NOT_PERMITTED: {
    ka: (p) => (p.status === 405 ? `მეთოდი ${p.method} ამ მისამართზე დაშვებული არ არის` : `მისამართი ${p.path} არ არსებობს`),
    en: (p) => (p.status === 405 ? `method ${p.method} is not allowed on this route` : `no route ${p.path}`),
  },
  UPSTREAM_UNAVAILABLE: {
    ka: (p) => `${p.service} მიუწვდომელია`,
    en: (p) => `${p.service} is unavailable`,
  },
  UPSTREAM_TIMEOUT: {
    ka: (p) => `${p.service} დროულად არ პასუხობს`,
    en: (p) => `${p.service} did not answer in time`,
  },
  AUTH_UNAVAILABLE: { ka: 'ტოკენის შესამოწმებელი გასაღებები მიუწვდომელია', en: 'the keys to verify access tokens are unavailable' },
  CSRF_REJECTED: {
    ka: 'მოთხოვნის წყარო (Origin) დაშვებული არ არის (CSRF დაცვა)',
    en: 'the request origin is not allowed (CSRF protection)',
  },
  RATE_LIMITED: {
    ka: (p) => `ძალიან ბევრი მოთხოვნა; სცადეთ ხელახლა ${p.seconds} წამში`,
    en: (p) => `too many requests; retry in ${p.seconds} s`,
  },
  PAYLOAD_TOO_LARGE: {
    ka: (p) => `მოთხოვნის სხეული ${p.limit} ბაიტზე დიდია`,
    en: (p) => `the request body is larger than ${p.limit} bytes`,
  },
  UNSUPPORTED_MEDIA_TYPE: { ka: 'მხოლოდ JSON მიიღება', en: 'only JSON bodies are accepted' },
  INVALID_JSON: { ka: 'მოთხოვნის JSON არასწორია', en: 'the request body is not valid JSON' },
  BAD_REQUEST: { ka: 'არასწორი მოთხოვნა', en: 'bad request' },
  DOCS_READ_ONLY: {
    ka: 'დოკუმენტაციის პორტალი მხოლოდ წასაკითხადაა; რედაქტირება გამორთულია',
    en: 'documentation portal is read-only; editing and mutation endpoints are disabled',
  },
  DOCS_NOT_AVAILABLE: { ka: 'დოკუმენტაციის პორტალი ჯერ არ არის ჩართული', en: 'the documentation portal is not installed yet' },
  INTERNAL: { ka: 'სერვერის შიდა შეცდომა', en: 'internal server error' },
} satisfies Record<string, Record<Locale, Message>>;

export type GatewayErrorCode = keyof typeof GATEWAY_MESSAGES;

export function isGatewayErrorCode(code: string): code is GatewayErrorCode {
  return Object.hasOwn(GATEWAY_MESSAGES, code);
}

export function message(code: GatewayErrorCode, locale: Locale, params: Params = {}): string {
  const entry: Message = GATEWAY_MESSAGES[code][locale];
  return typeof entry === 'function' ? entry(params) : entry;
}

export function serviceName(upstream: Upstream, locale: Locale): string {
  return SERVICE_NAMES[upstream][locale];
}

/** An error the gateway answers itself; its message is already in the caller's language. */
export class GatewayError extends AppError {
  override readonly code: GatewayErrorCode;
  constructor(code: GatewayErrorCode, localizedMessage: string, statusCode: number, details?: Record<string, unknown>) {
    super(code, localizedMessage, { statusCode, details });
    this.name = 'GatewayError';
    this.code = code;
  }
}

export function gatewayError(
  code: GatewayErrorCode,
  statusCode: number,
  locale: Locale,
  params: Params = {},
  details?: Record<string, unknown>,
): GatewayError {
  return new GatewayError(code, message(code, locale, params), statusCode, details);
}

const ROLE_NAMES: Record<Role, Record<Locale, string>> = {
  GUEST: { ka: 'სტუმარი', en: 'Guest' },
  SUPPLIER: { ka: 'მიმწოდებელი', en: 'Supplier' },
  PROCUREMENT_OFFICER: { ka: 'შესყიდვების ოფიცერი', en: 'Procurement officer' },
  CHAIN_OFFICER: { ka: 'მოვლენათა ჯაჭვის ოფიცერი', en: 'Chain officer' },
  DOCUMENT_CUSTODIAN: { ka: 'დოკუმენტების მეურვე', en: 'Document custodian' },
  GOVERNANCE_ADMIN: { ka: 'მმართველობის ადმინისტრატორი', en: 'Governance admin' },
};

const SIGNED_IN: Record<Locale, string> = { ka: 'ავტორიზებული მომხმარებელი', en: 'Signed in' };

/** "Resolving locale, route permissions, and workspace projection. Current scope: Guest". */
export function contextMessage(locale: Locale, roles: readonly Role[] | null): string {
  const scope =
    roles === null ? ROLE_NAMES.GUEST[locale] : roles.length ? roles.map((r) => ROLE_NAMES[r][locale]).join(', ') : SIGNED_IN[locale];
  return locale === 'ka'
    ? `ენის, მისამართების ნებართვებისა და სამუშაო სივრცის პროექციის განსაზღვრა. მიმდინარე არე: ${scope}`
    : `Resolving locale, route permissions, and workspace projection. Current scope: ${scope}`;
}
