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
  DOCS_INVALID_ID: {
    ka: 'დოკუმენტის იდენტიფიკატორი არასწორია: დასაშვებია მხოლოდ პატარა ლათინური ასოები, ციფრები და დეფისი',
    en: 'invalid document id: only lower-case letters, digits and hyphens are allowed',
  },
  DOCS_INVALID_QUERY: {
    ka: (p) => `დოკუმენტაციის მოთხოვნის პარამეტრი ${p.name} არასწორია; დასაშვებია მხოლოდ lang და locale`,
    en: (p) => `invalid documentation query parameter ${p.name}; only lang and locale are accepted`,
  },
  DOCS_NOT_FOUND: {
    ka: (p) => `დოკუმენტი „${p.id}“ ვერ მოიძებნა`,
    en: (p) => `no document "${p.id}"`,
  },
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

const LOCALE_NAMES: Record<Locale, Record<Locale, string>> = {
  ka: { ka: 'ქართული', en: 'Georgian' },
  en: { ka: 'ინგლისური', en: 'English' },
};

/** What the documentation portal tells a reader, in the reader's language. */
export const DOCS_NOTICES = {
  READ_ONLY: {
    ka: 'დოკუმენტაციის პორტალი მხოლოდ წასაკითხადაა. რედაქტირებისა და ცვლილების ენდპოინტები გამორთულია.',
    en: 'Documentation portal is read-only. Editing and mutation endpoints are disabled.',
  },
  GEORGIAN_PREVAILS: {
    ka: (p) =>
      `ეს არის დოკუმენტის ${p.language} თარგმანი, მოწოდებული მოხერხებულობისთვის. Kvary-ის პლატფორმა თავდაპირველად ქართულად არის შექმნილი; ` +
      'არსებობს ამ დოკუმენტის ქართული ვერსია და ინტერპრეტაციისას უპირატესობა ქართულ ვერსიას ენიჭება.',
    en: (p) =>
      `This is the ${p.language} translation, provided for convenience. Kvary platform is originally created in Georgian; ` +
      'a Georgian version of this document exists, and the Georgian version prevails for wording and interpretation.',
  },
  TRANSLATION_MISSING: {
    ka: (p) => `ამ დოკუმენტს ${p.requested} ვერსია არ აქვს; ნაჩვენებია ${p.language} ვერსია.`,
    en: (p) => `This document has no ${p.requested} version; showing the ${p.language} version.`,
  },
} satisfies Record<string, Record<Locale, Message>>;

export type DocsNotice = keyof typeof DOCS_NOTICES;

/** A portal notice; `language`/`requested` params are locales, named in the reader's language. */
export function docsNotice(notice: DocsNotice, locale: Locale, locales: { language?: Locale; requested?: Locale } = {}): string {
  const params: Params = {};
  if (locales.language) params.language = LOCALE_NAMES[locales.language][locale];
  if (locales.requested) params.requested = LOCALE_NAMES[locales.requested][locale];
  const entry: Message = DOCS_NOTICES[notice][locale];
  return typeof entry === 'function' ? entry(params) : entry;
}
