/**
 * SCRAM-SHA-256 verifiers computed client-side, as psql's \password does: the plaintext never
 * travels in an ALTER ROLE statement (where log_statement could record it), and one verifier set
 * on every node makes a role's credentials identical across the cluster.
 * @see https://www.postgresql.org/docs/current/sasl-authentication.html
 * @see RFC 5802, RFC 7677
 */
import { createHash, createHmac, pbkdf2Sync, randomBytes, timingSafeEqual } from 'node:crypto';
import { saslprep } from './saslprep.js';

const ITERATIONS = 4096;
/** PostgreSQL accepts up to INT_MAX, but past this every login would take seconds: not a verifier to check. */
const MAX_ITERATIONS = 10_000_000;
const BASE64 = '[A-Za-z0-9+/]+={0,2}';
const VERIFIER = new RegExp(`^SCRAM-SHA-256\\$(\\d{1,10}):(${BASE64})\\$(${BASE64}):(${BASE64})$`);

function keys(password: string, salt: Buffer, iterations: number): { storedKey: Buffer; serverKey: Buffer } {
  const salted = pbkdf2Sync(saslprep(password), salt, iterations, 32, 'sha256');
  const clientKey = createHmac('sha256', salted).update('Client Key').digest();
  return {
    storedKey: createHash('sha256').update(clientKey).digest(),
    serverKey: createHmac('sha256', salted).update('Server Key').digest(),
  };
}

export function scramVerifier(password: string, salt: Buffer = randomBytes(16), iterations = ITERATIONS): string {
  const { storedKey, serverKey } = keys(password, salt, iterations);
  return `SCRAM-SHA-256$${iterations}:${salt.toString('base64')}$${storedKey.toString('base64')}:${serverKey.toString('base64')}`;
}

/** Whether `verifier` (from pg_authid.rolpassword) accepts `password`; false for anything malformed. */
export function verifierMatches(verifier: string | null | undefined, password: string): boolean {
  const match = VERIFIER.exec(verifier ?? '');
  if (match === null) return false;
  const [, iterations, salt, stored, server] = match as unknown as [string, string, string, string, string];
  if (Number(iterations) < 1 || Number(iterations) > MAX_ITERATIONS) return false;
  const expected = keys(password, Buffer.from(salt, 'base64'), Number(iterations));
  const storedKey = Buffer.from(stored, 'base64');
  const serverKey = Buffer.from(server, 'base64');
  return (
    storedKey.length === expected.storedKey.length &&
    serverKey.length === expected.serverKey.length &&
    timingSafeEqual(storedKey, expected.storedKey) &&
    timingSafeEqual(serverKey, expected.serverKey)
  );
}
