// CIDR allowlists: parsing (IPv4 and IPv6) and matching a client address against them.
import net from 'node:net';

export interface ParsedCidr {
  address: string;
  prefix: number;
  family: 'ipv4' | 'ipv6';
}

/** Parses "10.0.0.0/8", "2001:db8::/32" or a bare address (a /32 or /128). Null when invalid. */
export function parseCidr(text: string): ParsedCidr | null {
  const [addr, bits, extra] = text.trim().split('/');
  if (extra !== undefined || !addr) return null;
  const version = net.isIP(addr);
  if (version === 0) return null;
  const max = version === 4 ? 32 : 128;
  const prefix = bits === undefined ? max : Number(bits);
  if (bits !== undefined && !/^\d{1,3}$/.test(bits)) return null;
  if (!Number.isInteger(prefix) || prefix < 0 || prefix > max) return null;
  return { address: addr, prefix, family: version === 4 ? 'ipv4' : 'ipv6' };
}

/** Strips an IPv4-mapped IPv6 form (::ffff:1.2.3.4) and a zone id, so both families compare. */
export function normalizeAddress(address: string): string | null {
  let a = address.trim();
  const zone = a.indexOf('%');
  if (zone >= 0) a = a.slice(0, zone);
  const mapped = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/i.exec(a);
  if (mapped) a = mapped[1];
  return net.isIP(a) === 0 ? null : a;
}

/** A compiled allowlist; `allows` is false for anything that is not a valid address. */
export class CidrAllowlist {
  private readonly list = new net.BlockList();
  readonly empty: boolean;

  constructor(cidrs: readonly string[]) {
    for (const text of cidrs) {
      const c = parseCidr(text);
      if (!c) throw new Error(`invalid CIDR "${text}"`);
      this.list.addSubnet(c.address, c.prefix, c.family);
    }
    this.empty = cidrs.length === 0;
  }

  allows(address: string | undefined): boolean {
    if (this.empty) return true;
    if (!address) return false;
    const a = normalizeAddress(address);
    if (!a) return false;
    return this.list.check(a, net.isIP(a) === 4 ? 'ipv4' : 'ipv6');
  }
}
