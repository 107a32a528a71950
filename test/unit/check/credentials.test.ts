// Where the key is: configured headers (x-api-key; Authorization with Bearer or ApiKey, any case)
// and, when enabled, one query parameter. Two different keys are a conflict, never a choice.
import { describe, expect, it } from 'vitest';
import { findCredential, queryValues } from '../../../src/check/credentials';
import type { CheckInput } from '../../../src/check/request';

const DEFAULT_HEADERS = ['x-api-key', 'authorization'];

function input(headers: Record<string, string | string[]> = {}, path?: string): CheckInput {
  const map = new Map<string, string[]>();
  for (const [name, value] of Object.entries(headers)) map.set(name, Array.isArray(value) ? value : [value]);
  return { headers: map, path, contextExtensions: {} };
}

const found = (secret: string, headers: string[], inQuery = false) => ({ kind: 'found', secret, headers, inQuery });

describe('findCredential: headers', () => {
  it('no key anywhere → missing', () => {
    expect(findCredential(input(), DEFAULT_HEADERS)).toEqual({ kind: 'missing' });
    expect(findCredential(input({ accept: '*/*', 'x-token': 'K1234567890123456' }), DEFAULT_HEADERS)).toEqual({ kind: 'missing' });
  });

  it('x-api-key carries the key; surrounding space is dropped', () => {
    expect(findCredential(input({ 'x-api-key': 'kg_abc' }), DEFAULT_HEADERS)).toEqual(found('kg_abc', ['x-api-key']));
    expect(findCredential(input({ 'x-api-key': '  kg_abc \t' }), DEFAULT_HEADERS)).toEqual(found('kg_abc', ['x-api-key']));
  });

  it.each(['Bearer K1', 'bearer K1', 'BEARER K1', 'ApiKey K1', 'APIKEY K1', 'apikey K1', 'Bearer   K1  ', '  Bearer K1'])(
    'Authorization: "%s" carries K1',
    (value) => {
      expect(findCredential(input({ authorization: value }), DEFAULT_HEADERS)).toEqual(found('K1', ['authorization']));
    },
  );

  it.each(['Basic dXNlcjpwYXNzd29yZA==', 'Digest username="u"', 'Token K1', 'Bearer', 'BearerK1', 'K1', 'ApiKey', 'Bearer K1 K2', ''])(
    'Authorization: "%s" carries no key → missing',
    (value) => {
      expect(findCredential(input({ authorization: value }), DEFAULT_HEADERS)).toEqual({ kind: 'missing' });
    },
  );

  it('an empty x-api-key, or only commas, carries no key', () => {
    expect(findCredential(input({ 'x-api-key': '' }), DEFAULT_HEADERS)).toEqual({ kind: 'missing' });
    expect(findCredential(input({ 'x-api-key': ' , ,' }), DEFAULT_HEADERS)).toEqual({ kind: 'missing' });
  });

  it('two different keys in two headers → conflict', () => {
    expect(findCredential(input({ 'x-api-key': 'K1', authorization: 'Bearer K2' }), DEFAULT_HEADERS)).toEqual({ kind: 'conflict' });
  });

  it('a comma-merged value with two keys → conflict', () => {
    expect(findCredential(input({ 'x-api-key': 'k1, k2' }), DEFAULT_HEADERS)).toEqual({ kind: 'conflict' });
    expect(findCredential(input({ 'x-api-key': 'k1,k2' }), DEFAULT_HEADERS)).toEqual({ kind: 'conflict' });
    expect(findCredential(input({ authorization: 'Bearer k1, Bearer k2' }), DEFAULT_HEADERS)).toEqual({ kind: 'conflict' });
    expect(findCredential(input({ authorization: 'Bearer k1, ApiKey k2' }), DEFAULT_HEADERS)).toEqual({ kind: 'conflict' });
  });

  it('a comma-merged Authorization with one key scheme and a Basic credential carries that one key', () => {
    expect(findCredential(input({ authorization: 'Basic dXNlcjpw, Bearer K1' }), DEFAULT_HEADERS)).toEqual(found('K1', ['authorization']));
    // a bare token beside our scheme is a second key, not noise
    expect(findCredential(input({ authorization: 'Bearer K1, K2' }), DEFAULT_HEADERS)).toEqual({ kind: 'conflict' });
    expect(findCredential(input({ authorization: 'Bearer K1, K1' }), DEFAULT_HEADERS)).toEqual(found('K1', ['authorization']));
  });

  it('the same key in two headers is found once, and both headers are reported for removal', () => {
    expect(findCredential(input({ 'x-api-key': 'K1', authorization: 'Bearer K1' }), DEFAULT_HEADERS)).toEqual(
      found('K1', ['x-api-key', 'authorization']),
    );
  });

  it('the same key twice in one comma-merged value is found once', () => {
    expect(findCredential(input({ 'x-api-key': 'K1, K1' }), DEFAULT_HEADERS)).toEqual(found('K1', ['x-api-key']));
  });

  it('repeated header entries: the same key → found; different keys → conflict', () => {
    expect(findCredential(input({ 'x-api-key': ['K1', 'K1'] }), DEFAULT_HEADERS)).toEqual(found('K1', ['x-api-key']));
    expect(findCredential(input({ 'x-api-key': ['K1', 'K2'] }), DEFAULT_HEADERS)).toEqual({ kind: 'conflict' });
    expect(findCredential(input({ authorization: ['Basic abc', 'Bearer K1'] }), DEFAULT_HEADERS)).toEqual(found('K1', ['authorization']));
    expect(findCredential(input({ 'x-api-key': ['', 'K1'] }), DEFAULT_HEADERS)).toEqual(found('K1', ['x-api-key']));
  });

  it('a header that carried no key is not reported for removal', () => {
    expect(findCredential(input({ 'x-api-key': 'K1', authorization: 'Basic dXNlcjpw' }), DEFAULT_HEADERS)).toEqual(found('K1', ['x-api-key']));
  });

  it('only the configured headers are searched', () => {
    const req = input({ 'x-token': 'K1', 'x-api-key': 'K2', authorization: 'Bearer K3' });
    expect(findCredential(req, ['x-token'])).toEqual(found('K1', ['x-token']));
    expect(findCredential(input({ 'x-api-key': 'K2' }), ['authorization'])).toEqual({ kind: 'missing' });
  });

  it('a custom header is taken whole (no scheme), as x-api-key is', () => {
    expect(findCredential(input({ 'x-token': 'Bearer K1' }), ['x-token'])).toEqual(found('Bearer K1', ['x-token']));
  });
});

describe('findCredential: query parameter', () => {
  it('is off by default: a key in the URL is not taken', () => {
    expect(findCredential(input({}, '/orders?api_key=K1'), DEFAULT_HEADERS)).toEqual({ kind: 'missing' });
  });

  it('is taken when configured, and marked inQuery', () => {
    expect(findCredential(input({}, '/orders?api_key=K1'), DEFAULT_HEADERS, 'api_key')).toEqual(found('K1', [], true));
    expect(findCredential(input({}, '/orders?a=1&api_key=K1&b=2'), DEFAULT_HEADERS, 'api_key')).toEqual(found('K1', [], true));
  });

  it('only the configured parameter name counts (exact, case-sensitive)', () => {
    expect(findCredential(input({}, '/o?key=K1&API_KEY=K2&api_key2=K3'), DEFAULT_HEADERS, 'api_key')).toEqual({ kind: 'missing' });
  });

  it('is percent-decoded', () => {
    expect(findCredential(input({}, '/o?api_key=kg_a%2Bb%2Fc%3D'), DEFAULT_HEADERS, 'api_key')).toEqual(found('kg_a+b/c=', [], true));
    expect(findCredential(input({}, '/o?api%5Fkey=K1'), DEFAULT_HEADERS, 'api_key')).toEqual(found('K1', [], true));
  });

  it('"+" decodes to a space (form encoding), "%2B" to a plus', () => {
    expect(queryValues('/o?api_key=a+b', 'api_key')).toEqual(['a b']);
    expect(queryValues('/o?api_key=a%2Bb', 'api_key')).toEqual(['a+b']);
  });

  it('an undecodable value is kept as sent (it will be malformed), never dropped', () => {
    expect(queryValues('/o?api_key=abc%ZZdef', 'api_key')).toEqual(['abc%ZZdef']);
    expect(queryValues('/o?api_key=%E0%A4%A', 'api_key')).toEqual(['%E0%A4%A']);
    expect(findCredential(input({}, '/o?api_key=abc%ZZ'), DEFAULT_HEADERS, 'api_key')).toEqual(found('abc%ZZ', [], true));
  });

  it('an undecodable parameter name is not the configured one', () => {
    expect(queryValues('/o?api_key%ZZ=K1', 'api_key')).toEqual([]);
  });

  it('an empty value or a bare name carries no key', () => {
    expect(findCredential(input({}, '/o?api_key='), DEFAULT_HEADERS, 'api_key')).toEqual({ kind: 'missing' });
    expect(findCredential(input({}, '/o?api_key'), DEFAULT_HEADERS, 'api_key')).toEqual({ kind: 'missing' });
    expect(findCredential(input({}, '/o?api_key=&api_key=K1'), DEFAULT_HEADERS, 'api_key')).toEqual(found('K1', [], true));
  });

  it('no path, or a path without a query → missing', () => {
    expect(findCredential(input({}), DEFAULT_HEADERS, 'api_key')).toEqual({ kind: 'missing' });
    expect(findCredential(input({}, '/orders'), DEFAULT_HEADERS, 'api_key')).toEqual({ kind: 'missing' });
  });

  it('two different values → conflict; the same value twice → found', () => {
    expect(findCredential(input({}, '/o?api_key=K1&api_key=K2'), DEFAULT_HEADERS, 'api_key')).toEqual({ kind: 'conflict' });
    expect(findCredential(input({}, '/o?api_key=K1&api_key=K1'), DEFAULT_HEADERS, 'api_key')).toEqual(found('K1', [], true));
  });

  it('the same key in a header and in the query → found once, inQuery, header reported', () => {
    expect(findCredential(input({ 'x-api-key': 'K1' }, '/o?api_key=K1'), DEFAULT_HEADERS, 'api_key')).toEqual(found('K1', ['x-api-key'], true));
  });

  it('different keys in a header and in the query → conflict', () => {
    expect(findCredential(input({ authorization: 'Bearer K1' }, '/o?api_key=K2'), DEFAULT_HEADERS, 'api_key')).toEqual({ kind: 'conflict' });
  });

  it('a fragment ends the query', () => {
    expect(queryValues('/o?api_key=K1#frag', 'api_key')).toEqual(['K1']);
    expect(queryValues('/o?x=1#api_key=K1', 'api_key')).toEqual([]);
    expect(findCredential(input({}, '/o?api_key=K1#section'), DEFAULT_HEADERS, 'api_key')).toEqual(found('K1', [], true));
  });

  it('a "?" inside the fragment does not start a query', () => {
    // RFC 3986: the query is between the first "?" and "#"; a "?" after "#" belongs to the fragment.
    expect(queryValues('/o#section?api_key=K1', 'api_key')).toEqual([]);
    expect(findCredential(input({}, '/o#section?api_key=K1'), DEFAULT_HEADERS, 'api_key')).toEqual({ kind: 'missing' });
  });
});
