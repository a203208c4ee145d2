// Locale resolution: `ka` is the default and authoritative language, `en` is supported.
// Order: query parameter `lang` (or `locale`) > cookie `kes_locale` > Accept-Language > `ka`.
export const LOCALES = ['ka', 'en'] as const;
export type Locale = (typeof LOCALES)[number];
export const DEFAULT_LOCALE: Locale = 'ka';
export const LOCALE_COOKIE = 'kes_locale';

export type LocaleSource = 'query' | 'cookie' | 'accept-language' | 'default';

/** `en`, `EN`, `en-US`, `en_GB` -> `en`; anything unsupported -> undefined. */
export function toLocale(value: unknown): Locale | undefined {
  if (typeof value !== 'string') return undefined;
  const primary = value.trim().toLowerCase().split(/[-_]/)[0];
  return (LOCALES as readonly string[]).includes(primary ?? '') ? (primary as Locale) : undefined;
}

/** The best supported language of an Accept-Language header by q-value (ties: header order). */
export function fromAcceptLanguage(header: string | undefined): Locale | undefined {
  if (!header) return undefined;
  const ranges = header
    .split(',')
    .map((part, index) => {
      const [tag = '', ...params] = part.trim().split(';');
      const q = params.map((p) => /^\s*q\s*=\s*([0-9.]+)\s*$/i.exec(p)?.[1]).find((v) => v !== undefined);
      const weight = q === undefined ? 1 : Number(q);
      return { tag: tag.trim(), weight: Number.isFinite(weight) ? Math.min(weight, 1) : 0, index };
    })
    .filter((r) => r.tag && r.weight > 0)
    .sort((a, b) => b.weight - a.weight || a.index - b.index);
  for (const range of ranges) {
    if (range.tag === '*') return DEFAULT_LOCALE;
    const locale = toLocale(range.tag);
    if (locale) return locale;
  }
  return undefined;
}

export interface LocaleInputs {
  query?: Record<string, unknown>;
  cookie?: string;
  acceptLanguage?: string;
}

export function resolveLocale(inputs: LocaleInputs): { locale: Locale; source: LocaleSource } {
  const fromQuery = toLocale(first(inputs.query?.lang)) ?? toLocale(first(inputs.query?.locale));
  if (fromQuery) return { locale: fromQuery, source: 'query' };
  const fromCookie = toLocale(inputs.cookie);
  if (fromCookie) return { locale: fromCookie, source: 'cookie' };
  const fromHeader = fromAcceptLanguage(inputs.acceptLanguage);
  if (fromHeader) return { locale: fromHeader, source: 'accept-language' };
  return { locale: DEFAULT_LOCALE, source: 'default' };
}

function first(value: unknown): unknown {
  return Array.isArray(value) ? value[0] : value;
}
