// Password hashing with node:crypto scrypt, stored self-describing as
// `scrypt$<log2 N>$<r>$<p>$<salt b64>$<hash b64>` so the cost can change without a migration.
import { randomBytes, scrypt as scryptCallback, timingSafeEqual, type ScryptOptions } from 'node:crypto';

const KEY_LENGTH = 32;
const SALT_LENGTH = 16;
const R = 8;
const P = 1;
// N=2^17, r=8 needs 128 MiB; the default maxmem (32 MiB) would refuse it.
const MAXMEM = 256 * 1024 * 1024;

function scrypt(password: string, salt: Buffer, keyLength: number, options: ScryptOptions): Promise<Buffer> {
  return new Promise((resolve, reject) =>
    scryptCallback(password.normalize('NFC'), salt, keyLength, options, (error, key) => (error ? reject(error) : resolve(key))),
  );
}

export async function hashPassword(password: string, logN: number): Promise<string> {
  const salt = randomBytes(SALT_LENGTH);
  const hash = await scrypt(password, salt, KEY_LENGTH, { N: 2 ** logN, r: R, p: P, maxmem: MAXMEM });
  return `scrypt$${logN}$${R}$${P}$${salt.toString('base64')}$${hash.toString('base64')}`;
}

interface ParsedHash {
  logN: number;
  r: number;
  p: number;
  salt: Buffer;
  hash: Buffer;
}

const FORMAT = /^scrypt\$(\d{1,2})\$(\d{1,2})\$(\d)\$([A-Za-z0-9+/=]+)\$([A-Za-z0-9+/=]+)$/;

function parseHash(stored: string): ParsedHash | undefined {
  const m = FORMAT.exec(stored);
  if (!m) return undefined;
  const [logN, r, p] = [Number(m[1]), Number(m[2]), Number(m[3])];
  // Bounds keep a corrupted row from asking for gigabytes of memory.
  if (logN < 10 || logN > 20 || r < 1 || r > 16 || p < 1 || p > 4) return undefined;
  const hash = Buffer.from(m[5] ?? '', 'base64');
  if (hash.length < 16) return undefined;
  return { logN, r, p, salt: Buffer.from(m[4] ?? '', 'base64'), hash };
}

export interface PasswordCheck {
  ok: boolean;
  /** True when the stored hash used other parameters than today's: rehash after a success. */
  needsRehash: boolean;
}

export async function verifyPassword(password: string, stored: string, currentLogN: number): Promise<PasswordCheck> {
  const parsed = parseHash(stored);
  if (!parsed) return { ok: false, needsRehash: false };
  const candidate = await scrypt(password, parsed.salt, parsed.hash.length, {
    N: 2 ** parsed.logN,
    r: parsed.r,
    p: parsed.p,
    maxmem: MAXMEM,
  });
  const ok = timingSafeEqual(candidate, parsed.hash);
  return { ok, needsRehash: ok && (parsed.logN !== currentLogN || parsed.r !== R || parsed.p !== P) };
}

/**
 * A verifier that costs the same whether or not the account exists: unknown emails (and
 * accounts without a password) are checked against a dummy hash of the current cost, so
 * response time does not reveal which accounts exist.
 */
export class PasswordVerifier {
  private dummy: Promise<string> | undefined;

  constructor(readonly logN: number) {}

  hash(password: string): Promise<string> {
    return hashPassword(password, this.logN);
  }

  async verify(password: string, stored: string | null | undefined): Promise<PasswordCheck> {
    if (stored) return verifyPassword(password, stored, this.logN);
    this.dummy ??= hashPassword(randomBytes(16).toString('hex'), this.logN);
    await verifyPassword(password, await this.dummy, this.logN);
    return { ok: false, needsRehash: false };
  }
}
