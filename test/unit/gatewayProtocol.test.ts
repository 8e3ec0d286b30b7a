/**
 * The gateway's protocol pieces on their own: framing with its limits, the request/answer
 * bookkeeping the relay relies on (the extended-query skip rule included), the few messages it
 * encodes and decodes, and moving an error position to the client's text.
 */
import { serialize } from 'pg-protocol';
import { describe, expect, it } from 'vitest';
import { mapPosition, errorForOriginal } from '../../src/gateway/errorPosition.js';
import { textValue } from '../../src/gateway/inband.js';
import { FrameError, FrameReader } from '../../src/gateway/protocol/frames.js';
import {
  B,
  cancelRequest,
  commandComplete,
  errorResponse,
  extendedQuery,
  parameterDescription,
  parseMessage,
  parseStartup,
  readBind,
  readBindNames,
  readFields,
  readParameterDescription,
  readParse,
  rowDescription,
  readyForQuery,
  saslMechanisms,
  readSaslMechanisms,
  withStatementName,
} from '../../src/gateway/protocol/messages.js';
import { ResponseTracker, type RequestKind } from '../../src/gateway/protocol/responses.js';
import { beginStatement, insertWorthRouting, plainInsert } from '../../src/gateway/routedWrites.js';

const frame = (type: string, body: Buffer = Buffer.alloc(0)): Buffer => {
  const head = Buffer.alloc(5);
  head[0] = type.charCodeAt(0);
  head.writeInt32BE(body.length + 4, 1);
  return Buffer.concat([head, body]);
};

describe('FrameReader', () => {
  it('splits a stream cut anywhere into the frames it holds', () => {
    const frames = [serialize.query('SELECT 1'), serialize.parse({ name: 's', text: 'SELECT $1', types: [23] }), serialize.sync(), serialize.flush()];
    const all = Buffer.concat(frames);
    for (let cut = 0; cut <= all.length; cut += 1) {
      const reader = new FrameReader({ typed: true, maxMessageBytes: 1024 });
      reader.push(all.subarray(0, cut));
      const got: Buffer[] = [];
      for (let f = reader.next(); f !== undefined; f = reader.next()) got.push(f.bytes);
      reader.push(all.subarray(cut));
      for (let f = reader.next(); f !== undefined; f = reader.next()) got.push(f.bytes);
      expect(got.map((b) => b.toString('hex'))).toEqual(frames.map((b) => b.toString('hex')));
      expect(reader.pending).toBe(0);
    }
  });

  it('reads the untyped startup packet, then typed messages', () => {
    const reader = new FrameReader({ typed: false, maxMessageBytes: 1024 });
    reader.push(Buffer.concat([serialize.startup({ user: 'u', database: 'd' }), serialize.query('x')]));
    const startup = reader.next();
    expect(startup?.type).toBe(0);
    const packet = parseStartup(startup!.bytes);
    expect(packet).toMatchObject({ kind: 'startup', version: 196608 });
    expect(packet.kind === 'startup' && Object.fromEntries(packet.parameters)).toMatchObject({ user: 'u', database: 'd' });
    reader.typed = true;
    expect(reader.next()?.type).toBe('Q'.charCodeAt(0));
  });

  it('refuses lengths no message has, before waiting for the bytes they announce', () => {
    const tooBig = new FrameReader({ typed: true, maxMessageBytes: 100 });
    tooBig.push(Buffer.from([0x51, 0, 0, 0x10, 0]));
    expect(() => tooBig.next()).toThrow(FrameError);
    const tooSmall = new FrameReader({ typed: true, maxMessageBytes: 100 });
    tooSmall.push(Buffer.from([0x51, 0, 0, 0, 3]));
    expect(() => tooSmall.next()).toThrow(/invalid message length 3/);
    const startup = new FrameReader({ typed: false, maxMessageBytes: 100 });
    startup.push(Buffer.from([0, 1, 0, 0]));
    expect(() => startup.next()).toThrow(/startup packet length/);
  });

  it('hands over a run of whole frames up to the first one asked for', () => {
    const reader = new FrameReader({ typed: true, maxMessageBytes: 1024 });
    const rows = [frame('D', Buffer.from([0, 0])), frame('D', Buffer.from([0, 0]))];
    reader.push(Buffer.concat([...rows, frame('Z', Buffer.from('I')), frame('D')]));
    const run = reader.run((t) => t === B.DataRow);
    expect(run?.equals(Buffer.concat(rows))).toBe(true);
    expect(reader.next()?.type).toBe(B.ReadyForQuery);
  });
});

describe('messages', () => {
  it('reads Parse and Bind as clients send them, and renames a Bind keeping its bytes', () => {
    const parse = readParse(serialize.parse({ name: 'st', text: 'SELECT $1::int', types: [23] }));
    expect(parse).toEqual({ name: 'st', text: 'SELECT $1::int', paramTypes: [23] });
    const bindBytes = serialize.bind({ portal: 'p', statement: 'st', values: ['7', null, Buffer.from([1, 2])] });
    const bind = readBind(bindBytes);
    expect(bind.portal).toBe('p');
    expect(bind.statement).toBe('st');
    expect(bind.values.map((v) => v?.toString('hex') ?? null)).toEqual([Buffer.from('7').toString('hex'), null, '0102']);
    expect(bind.formats).toEqual([0, 0, 1]);
    const renamed = readBind(withStatementName(bindBytes, 'st/hypershard:1'));
    expect({ ...renamed, statement: 'st' }).toEqual(bind);
    expect(renamed.statement).toBe('st/hypershard:1');
    expect(parseMessage('st', 'SELECT $1::int', [23]).equals(serialize.parse({ name: 'st', text: 'SELECT $1::int', types: [23] }))).toBe(true);
  });

  it('reads a Bind\'s names alone, and its text values as strings when asked, bytes that are not UTF-8 left as bytes', () => {
    const invalid = Buffer.from([0x61, 0xc3, 0x28]);
    const bindBytes = serialize.bind({ portal: '', statement: 'ins', values: ['42', 'zürich', null, Buffer.from([0, 0, 0, 9])] });
    expect(readBindNames(bindBytes)).toEqual({ portal: '', statement: 'ins' });
    const bind = readBind(bindBytes, 'utf8');
    expect(bind.values).toEqual(['42', 'zürich', null, Buffer.from([0, 0, 0, 9])]);
    expect(bind.formats).toEqual([0, 0, 0, 1]);
    // A text value whose bytes are not UTF-8 (written by hand: the serializer would encode a string).
    const raw = Buffer.concat([Buffer.from('B'), Buffer.alloc(4), Buffer.from('\0ins\0'), Buffer.from([0, 0, 0, 1]), Buffer.alloc(4), invalid, Buffer.from([0, 0])]);
    raw.writeInt32BE(raw.length - 1, 1);
    raw.writeInt32BE(invalid.length, 5 + 5 + 2 + 2);
    const bytes = readBind(raw, 'utf8').values[0];
    expect(Buffer.isBuffer(bytes) && bytes.equals(invalid)).toBe(true);
    expect(readBind(raw).values[0]).toEqual(invalid);
  });

  it('asks for a statement\'s results in given formats as node-postgres would frame it, and reads parameter types back', () => {
    const asked = extendedQuery('SELECT 1', [1, 0]);
    const expected = Buffer.concat([
      serialize.parse({ text: 'SELECT 1' }),
      // Bind: portal, statement, no parameter formats, no values, two result formats.
      Buffer.from([0x42, 0, 0, 0, 16, 0, 0, 0, 0, 0, 0, 0, 2, 0, 1, 0, 0]),
      serialize.describe({ type: 'P', name: '' }),
      serialize.execute({ portal: '', rows: 0 }),
      serialize.sync(),
    ]);
    expect(asked.equals(expected)).toBe(true);
    expect(readParameterDescription(parameterDescription([23, 1184, 4_000_000_000]))).toEqual([23, 1184, 4_000_000_000]);
    // A column in binary says so in its description (the last int16).
    const description = rowDescription([{ name: 'x', type: 23, size: 4, modifier: -1, format: 1 }]);
    expect(description.readInt16BE(description.length - 2)).toBe(1);
  });

  it('encodes errors, completions and cancel requests as PostgreSQL does', () => {
    const error = errorResponse({ code: '08P01', message: 'bad', severity: 'FATAL' });
    expect(Object.fromEntries(readFields(error))).toEqual({ S: 'FATAL', V: 'FATAL', C: '08P01', M: 'bad' });
    expect(commandComplete('INSERT 0 3').toString('latin1')).toBe('C\0\0\0\x0fINSERT 0 3\0');
    expect(readyForQuery(0x49).equals(Buffer.from([0x5a, 0, 0, 0, 5, 0x49]))).toBe(true);
    const cancel = cancelRequest(4242, Buffer.from([1, 2, 3, 4]));
    expect(cancel.equals(serialize.cancel(4242, 0x01020304))).toBe(true);
    expect(parseStartup(cancelRequest(7, Buffer.alloc(32, 9)))).toEqual({ kind: 'cancel', pid: 7, key: Buffer.alloc(32, 9) });
  });

  it('rewrites the SASL offer without the channel-bound mechanism', () => {
    const offer = saslMechanisms(['SCRAM-SHA-256-PLUS', 'SCRAM-SHA-256']);
    expect(readSaslMechanisms(offer)).toEqual(['SCRAM-SHA-256-PLUS', 'SCRAM-SHA-256']);
  });
});

describe('ResponseTracker', () => {
  const run = (requests: RequestKind[], answers: string[]): { forwarded: string; done: string[] } => {
    const tracker = new ResponseTracker();
    const done: string[] = [];
    for (const [i, kind] of requests.entries()) tracker.sent({ kind, onDone: (o) => done.push(`${i}:${kind}:${o}`) });
    let forwarded = '';
    for (const a of answers) if (tracker.received(a.charCodeAt(0), frame(a)) !== null) forwarded += a;
    expect(tracker.idle).toBe(true);
    return { forwarded, done };
  };

  it('ends each extended request on its own completion message', () => {
    const { done } = run(['parse', 'bind', 'describe-portal', 'execute', 'sync'], ['1', '2', 'T', 'D', 'D', 'C', 'Z']);
    expect(done).toEqual(['0:parse:done', '1:bind:done', '2:describe-portal:done', '3:execute:done', '4:sync:done']);
  });

  it('after an extended error, skips every request up to the Sync (the backend answers none of them)', () => {
    const { done } = run(['parse', 'bind', 'execute', 'sync', 'parse', 'sync'], ['E', 'Z', '1', 'Z']);
    expect(done).toEqual(['0:parse:error', '1:bind:skipped', '2:execute:skipped', '3:sync:done', '4:parse:done', '5:sync:done']);
  });

  it('keeps a simple query open through its errors and results until ReadyForQuery', () => {
    const { done, forwarded } = run(['query', 'query'], ['T', 'D', 'C', 'E', 'Z', 'I', 'Z']);
    expect(done).toEqual(['0:query:error', '1:query:done']);
    expect(forwarded).toBe('TDCEZIZ');
  });

  it('follows COPY inside an execute, and a describe of a statement in two messages', () => {
    const { done } = run(['describe-statement', 'execute', 'execute', 'sync'], ['t', 'n', 'H', 'd', 'd', 'c', 'C', 'G', 'C', 'Z']);
    expect(done).toEqual(['0:describe-statement:done', '1:execute:done', '2:execute:done', '3:sync:done']);
  });

  it("routes the gateway's own answers away from the client, notices of a request included", () => {
    const tracker = new ResponseTracker();
    tracker.sent({ kind: 'parse', route: () => null });
    tracker.sent({ kind: 'sync' });
    expect(tracker.received(B.NoticeResponse, frame('N'))).toBeNull();
    expect(tracker.received(B.ParseComplete, frame('1'))).toBeNull();
    expect(tracker.received(B.ParameterStatus, frame('S'))).not.toBeNull();
    expect(tracker.received(B.ReadyForQuery, frame('Z', Buffer.from('I')))).not.toBeNull();
  });

  it('marks requests sent while the backend skips as skipped at once', () => {
    const tracker = new ResponseTracker();
    const outcomes: string[] = [];
    tracker.sent({ kind: 'execute' });
    tracker.received(B.ErrorResponse, frame('E'));
    expect(tracker.skipping).toBe(true);
    tracker.sent({ kind: 'parse', onDone: (o) => outcomes.push(o) });
    tracker.sent({ kind: 'query', onDone: (o) => outcomes.push(o) });
    expect(outcomes).toEqual(['skipped', 'skipped']);
    tracker.sent({ kind: 'sync' });
    tracker.received(B.ReadyForQuery, frame('Z', Buffer.from('I')));
    expect(tracker.skipping).toBe(false);
  });
});

describe('error positions', () => {
  const original = 'SELECT max(nosuch) FROM metrics WHERE time > now()';
  const sent = 'SELECT max(_hs.p0) FROM (SELECT max(nosuch) AS p0 FROM _hypershard.metrics_s0 AS metrics) AS _hs';
  it('moves a position to the same token in the client text when it is there once', () => {
    const at = sent.indexOf('nosuch') + 1;
    expect(mapPosition(at, original, sent)).toBe(original.indexOf('nosuch') + 1);
    const error = errorResponse({ code: '42703', message: 'column "nosuch" does not exist' });
    const withPosition = Buffer.concat([error.subarray(0, error.length - 1), Buffer.from(`P${at}\0\0`)]);
    withPosition.writeInt32BE(withPosition.length - 1, 1);
    expect(readFields(errorForOriginal(withPosition, original, sent)).get('P')).toBe(String(original.indexOf('nosuch') + 1));
  });

  it('drops a position whose token is not in the client text, or is there more than once', () => {
    expect(mapPosition(sent.indexOf('_hypershard') + 1, original, sent)).toBeUndefined();
    expect(mapPosition(sent.indexOf('max') + 1, 'SELECT max(a), max(b) FROM t', sent)).toBeUndefined();
    expect(mapPosition(0, original, sent)).toBeUndefined();
  });

  it('counts positions in characters, as PostgreSQL does', () => {
    expect(mapPosition(3, "SELECT 'ü', nosuch", 'x nosuch')).toBe(13);
  });
});

describe('in-band query parameters', () => {
  it('are sent in PostgreSQL\'s text form, objects as their JSON as node-postgres sends them, never "[object Object]"', () => {
    expect([null, undefined, 'a', 12, 12n, true, false].map(textValue)).toEqual([null, null, 'a', '12', '12', 't', 'f']);
    expect(textValue(new Date('2024-06-01T00:00:00Z'))).toBe('2024-06-01T00:00:00.000Z');
    expect(textValue(Buffer.from([0, 255]))).toBe('\\x00ff');
    expect(textValue({ a: [1, 'x'] })).toBe('{"a":[1,"x"]}');
    expect(textValue(['a"b', null, ['c\\d']])).toBe('{"a\\"b",NULL,{"c\\\\d"}}');
  });
});


describe('which INSERTs the gateway routes', () => {
  const values = (n: number): string => `INSERT INTO metrics VALUES ${Array.from({ length: n }, (_, i) => `(now(), ${i}, 1)`).join(', ')}`;
  it('any ON CONFLICT (postgres_fdw refuses them); not plain INSERTs, other statements or text that does not parse', () => {
    expect(insertWorthRouting(`/* batch */ -- of rows\n ${values(3)} ON CONFLICT DO NOTHING`)).toBe(true);
    expect(insertWorthRouting('INSERT INTO metrics AS m VALUES (now(), 1, 1) ON CONFLICT (device_id, time) DO UPDATE SET cpu = m.cpu + 1')).toBe(true);
    expect(insertWorthRouting(values(1000))).toBe(false);
    expect(insertWorthRouting('insert into metrics (time, device_id) select * from unnest($1::timestamptz[], $2::int[])')).toBe(false);
    expect(insertWorthRouting(`${values(60)} ON CONFLICT DO NOTHING; SELECT 1`)).toBe(false);
    expect(insertWorthRouting('INSERT INTO metrics VALUES ( ON CONFLICT')).toBe(false);
    expect(insertWorthRouting(`SELECT 'INSERT INTO metrics VALUES (1) ON CONFLICT DO NOTHING'`)).toBe(false);
  });
});

describe('plain INSERTs the gateway passes on without parsing', () => {
  it('one INSERT … VALUES of constants; not one that selects, sets a setting, upserts, or is followed by another statement', () => {
    expect(plainInsert("INSERT INTO metrics VALUES ('2026-01-01', 1, 2.5), ('2026-01-01', 2, NULL);")).toBe(true);
    expect(plainInsert("-- batch\n/* x */ insert into metrics (time, device_id) values ('2026-01-01', 1)")).toBe(true);
    expect(plainInsert('INSERT INTO metrics SELECT * FROM staging')).toBe(false);
    expect(plainInsert('INSERT INTO metrics VALUES ((SELECT max(time) FROM metrics), 1)')).toBe(false);
    expect(plainInsert("INSERT INTO t VALUES (set_config('search_path', 'x', false))")).toBe(false);
    expect(plainInsert("INSERT INTO metrics VALUES ('2026-01-01', 1) ON CONFLICT DO NOTHING")).toBe(false);
    expect(plainInsert("INSERT INTO metrics VALUES ('2026-01-01', 1); SET search_path = x")).toBe(false);
    expect(plainInsert("UPDATE metrics SET cpu = 1")).toBe(false);
  });
});

describe('a BEGIN before a held batch of INSERTs', () => {
  it('is a statement that only opens a block, as pgjdbc and psycopg send it; nothing after it', () => {
    for (const text of ['BEGIN', 'begin;', '  BEGIN ISOLATION LEVEL REPEATABLE READ', 'START TRANSACTION READ WRITE', 'begin transaction']) expect(beginStatement(text), text).toBe(true);
    for (const text of ['BEGIN; INSERT INTO metrics VALUES (1)', 'BEGINNING', 'COMMIT', 'SELECT 1', 'START', '/* x */ BEGIN']) expect(beginStatement(text), text).toBe(false);
  });
});
