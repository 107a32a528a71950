// CIDR allowlists: parsing, IPv4 and IPv6 matching, mapped addresses, zone ids, and denial of
// anything that is not an address.
import { describe, expect, it } from 'vitest';
import { CidrAllowlist, normalizeAddress, parseCidr } from '../../../src/keys/cidr';

describe('parseCidr', () => {
  it.each([
    ['10.0.0.0/8', { address: '10.0.0.0', prefix: 8, family: 'ipv4' }],
    ['192.168.1.0/24', { address: '192.168.1.0', prefix: 24, family: 'ipv4' }],
    ['0.0.0.0/0', { address: '0.0.0.0', prefix: 0, family: 'ipv4' }],
    ['10.1.2.3', { address: '10.1.2.3', prefix: 32, family: 'ipv4' }],
    ['10.1.2.3/32', { address: '10.1.2.3', prefix: 32, family: 'ipv4' }],
    ['2001:db8::/32', { address: '2001:db8::', prefix: 32, family: 'ipv6' }],
    ['::/0', { address: '::', prefix: 0, family: 'ipv6' }],
    ['::1', { address: '::1', prefix: 128, family: 'ipv6' }],
    ['2001:db8::1/128', { address: '2001:db8::1', prefix: 128, family: 'ipv6' }],
    [' 10.0.0.0/8 ', { address: '10.0.0.0', prefix: 8, family: 'ipv4' }],
  ])('parses %s', (text, parsed) => {
    expect(parseCidr(text)).toEqual(parsed);
  });

  it.each([
    '',
    '/8',
    '10.0.0.0/',
    '10.0.0.0/33',
    '10.0.0.0/-1',
    '10.0.0.0/8/8',
    '10.0.0.0/8.5',
    '10.0.0.0/1e1',
    '10.0.0.0/ 8',
    '10.0.0.256/8',
    '10.0.0/8',
    '2001:db8::/129',
    '2001:db8::/1000',
    '2001:db8:::1/64',
    'localhost',
    'example.com/24',
    '10.0.0.0-10.0.0.255',
    '*',
  ])('refuses "%s"', (text) => {
    expect(parseCidr(text)).toBeNull();
  });
});

describe('normalizeAddress', () => {
  it('strips the IPv4-mapped IPv6 form and a zone id', () => {
    expect(normalizeAddress('::ffff:10.1.2.3')).toBe('10.1.2.3');
    expect(normalizeAddress('::FFFF:10.1.2.3')).toBe('10.1.2.3');
    expect(normalizeAddress('fe80::1%eth0')).toBe('fe80::1');
    expect(normalizeAddress(' 10.1.2.3 ')).toBe('10.1.2.3');
    expect(normalizeAddress('2001:db8::1')).toBe('2001:db8::1');
  });

  it.each(['', 'nonsense', '10.1.2.3:8080', '[::1]', '10.1.2', '::ffff:10.1.2.300'])('is null for "%s"', (text) => {
    expect(normalizeAddress(text)).toBeNull();
  });
});

describe('CidrAllowlist', () => {
  it('an empty list allows every address, even an absent or invalid one', () => {
    const list = new CidrAllowlist([]);
    expect(list.empty).toBe(true);
    for (const a of ['10.1.2.3', '2001:db8::1', undefined, '', 'garbage']) expect(list.allows(a)).toBe(true);
  });

  it('IPv4 ranges: inside allowed, outside denied, boundaries exact', () => {
    const list = new CidrAllowlist(['10.0.0.0/8', '192.168.1.0/24']);
    expect(list.empty).toBe(false);
    for (const a of ['10.0.0.0', '10.1.2.3', '10.255.255.255', '192.168.1.0', '192.168.1.255']) expect(list.allows(a), a).toBe(true);
    for (const a of ['11.0.0.0', '9.255.255.255', '192.168.2.0', '192.168.0.255', '127.0.0.1']) expect(list.allows(a), a).toBe(false);
  });

  it('IPv6 ranges: inside allowed, outside denied', () => {
    const list = new CidrAllowlist(['2001:db8::/32']);
    expect(list.allows('2001:db8::1')).toBe(true);
    expect(list.allows('2001:db8:ffff:ffff::1')).toBe(true);
    expect(list.allows('2001:0DB8:0000::0001')).toBe(true);
    expect(list.allows('2001:db9::1')).toBe(false);
    expect(list.allows('::1')).toBe(false);
  });

  it('a bare address allows exactly that address', () => {
    const v4 = new CidrAllowlist(['203.0.113.7']);
    expect(v4.allows('203.0.113.7')).toBe(true);
    expect(v4.allows('203.0.113.8')).toBe(false);
    const v6 = new CidrAllowlist(['2001:db8::7']);
    expect(v6.allows('2001:db8::7')).toBe(true);
    expect(v6.allows('2001:db8::8')).toBe(false);
  });

  it('0.0.0.0/0 allows every IPv4 address; ::/0 every IPv6 address', () => {
    const v4 = new CidrAllowlist(['0.0.0.0/0']);
    for (const a of ['0.0.0.0', '1.2.3.4', '255.255.255.255', '::ffff:8.8.8.8']) expect(v4.allows(a), a).toBe(true);
    expect(v4.allows('2001:db8::1')).toBe(false);
    const v6 = new CidrAllowlist(['::/0']);
    for (const a of ['::', '::1', '2001:db8::1', 'fe80::1%eth0']) expect(v6.allows(a), a).toBe(true);
  });

  it('an IPv4 range does not match IPv6 addresses outside the mapped range', () => {
    const list = new CidrAllowlist(['10.0.0.0/8']);
    expect(list.allows('2001:db8::1')).toBe(false);
    expect(list.allows('::a01:203')).toBe(false);
  });

  it('an IPv4-mapped IPv6 address matches the IPv4 range (dotted and hex forms)', () => {
    const list = new CidrAllowlist(['10.0.0.0/8']);
    expect(list.allows('::ffff:10.1.2.3')).toBe(true);
    expect(list.allows('::FFFF:10.1.2.3')).toBe(true);
    expect(list.allows('::ffff:a01:203')).toBe(true);
    expect(list.allows('::ffff:11.1.2.3')).toBe(false);
  });

  it('an address with a zone id matches its range', () => {
    const list = new CidrAllowlist(['fe80::/10']);
    expect(list.allows('fe80::1%eth0')).toBe(true);
    expect(list.allows('fe80::1%25')).toBe(true);
    expect(list.allows('fe80::1')).toBe(true);
    expect(list.allows('fec0::1%eth0')).toBe(false);
  });

  it('a range written with host bits set covers the whole network', () => {
    const list = new CidrAllowlist(['10.1.2.3/8']);
    expect(list.allows('10.200.0.1')).toBe(true);
    expect(list.allows('11.0.0.1')).toBe(false);
  });

  it('an absent or invalid address is denied by a non-empty list', () => {
    const list = new CidrAllowlist(['0.0.0.0/0', '::/0']);
    for (const a of [undefined, '', ' ', 'garbage', '10.1.2.3:8080', '10.1.2', '[::1]', 'localhost', '999.1.1.1']) {
      expect(list.allows(a), String(a)).toBe(false);
    }
  });

  it.each([['10.0.0.0/33'], ['nonsense'], ['10.0.0.0/8', 'bad'], ['2001:db8::/200']])('refuses an invalid CIDR in %j', (...cidrs) => {
    expect(() => new CidrAllowlist(cidrs)).toThrow(/invalid CIDR/);
  });
});
