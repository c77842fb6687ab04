/** Address maths for the firewall: CIDRs of both families, minimal source lists, operator wording. */
import { ApplicationFailure } from '@temporalio/common';

/** An IPv4 or IPv6 network, host bits cleared. */
export interface Cidr {
  readonly family: 4 | 6;
  readonly addr: bigint;
  readonly len: number;
}

export const WIDTH = { 4: 32, 6: 128 } as const;

export function parseIPv4(s: string): bigint | undefined {
  const parts = s.split('.');
  if (parts.length !== 4 || !parts.every((p) => /^(0|[1-9][0-9]{0,2})$/.test(p) && Number(p) <= 255)) return undefined;
  return parts.reduce((acc, p) => (acc << 8n) | BigInt(p), 0n);
}

export function parseIPv6(s: string): bigint | undefined {
  let text = s.toLowerCase();
  // A dotted IPv4 tail (::ffff:192.0.2.1) is two groups.
  const dotted = /^(.*:)([0-9]+\.[0-9]+\.[0-9]+\.[0-9]+)$/.exec(text);
  if (dotted) {
    const v4 = parseIPv4(dotted[2]!);
    if (v4 === undefined) return undefined;
    text = `${dotted[1]}${(v4 >> 16n).toString(16)}:${(v4 & 0xffffn).toString(16)}`;
  }
  const halves = text.split('::');
  if (halves.length > 2) return undefined;
  const split = (h: string) => (h === '' ? [] : h.split(':'));
  const left = split(halves[0]!);
  const right = halves.length === 2 ? split(halves[1]!) : [];
  const missing = 8 - left.length - right.length;
  if (halves.length === 2 ? missing < 1 : missing !== 0) return undefined;
  const groups = [...left, ...Array<string>(missing).fill('0'), ...right];
  if (!groups.every((g) => /^[0-9a-f]{1,4}$/.test(g))) return undefined;
  return groups.reduce((acc, g) => (acc << 16n) | BigInt(`0x${g}`), 0n);
}

/** Parses `192.0.2.0/24`, `192.0.2.7`, `2001:db8::/32`, `2001:db8::1`; undefined when it is none of these. */
export function parseCidr(source: string): Cidr | undefined {
  const m = /^([0-9a-fA-F:.]+)(?:\/([0-9]{1,3}))?$/.exec(source.trim());
  if (!m) return undefined;
  const family = m[1]!.includes(':') ? 6 : 4;
  const addr = family === 4 ? parseIPv4(m[1]!) : parseIPv6(m[1]!);
  const width = WIDTH[family];
  const len = m[2] === undefined ? width : Number(m[2]);
  if (addr === undefined || len > width) return undefined;
  const hostBits = BigInt(width - len);
  return { family, addr: (addr >> hostBits) << hostBits, len };
}

export function formatAddress(c: Cidr): string {
  if (c.family === 4) return [24n, 16n, 8n, 0n].map((shift) => String((c.addr >> shift) & 0xffn)).join('.');
  const groups = Array.from({ length: 8 }, (_, i) => Number((c.addr >> BigInt(112 - 16 * i)) & 0xffffn));
  // RFC 5952: compress the longest run of two or more zero groups (the first one on a tie).
  let best = { start: -1, len: 1 };
  for (let i = 0; i < 8;) {
    let j = i;
    while (j < 8 && groups[j] === 0) j++;
    if (j - i > best.len) best = { start: i, len: j - i };
    i = j === i ? i + 1 : j;
  }
  const hex = groups.map((g) => g.toString(16));
  if (best.start < 0) return hex.join(':');
  return `${hex.slice(0, best.start).join(':')}::${hex.slice(best.start + best.len).join(':')}`;
}

/** `192.0.2.0/24`; a single host without a prefix, as nft prints it. */
export function formatCidr(c: Cidr): string {
  return c.len === WIDTH[c.family] ? formatAddress(c) : `${formatAddress(c)}/${c.len}`;
}

export function covers(outer: Cidr, inner: Cidr): boolean {
  if (outer.family !== inner.family || outer.len > inner.len) return false;
  const shift = BigInt(WIDTH[outer.family] - outer.len);
  return outer.addr >> shift === inner.addr >> shift;
}

/** Sources of one rule, split by family; each list minimal (no duplicates, nothing inside another) and sorted. */
export interface Sources {
  readonly v4: readonly Cidr[];
  readonly v6: readonly Cidr[];
}

export function minimal(cidrs: readonly Cidr[]): Cidr[] {
  const sorted = [...cidrs].sort((a, b) => a.len - b.len || (a.addr < b.addr ? -1 : a.addr > b.addr ? 1 : 0));
  const kept: Cidr[] = [];
  for (const c of sorted) if (!kept.some((k) => covers(k, c))) kept.push(c);
  return kept.sort((a, b) => (a.addr < b.addr ? -1 : a.addr > b.addr ? 1 : a.len - b.len));
}

export function toSources(cidrs: readonly Cidr[]): Sources {
  return { v4: minimal(cidrs.filter((c) => c.family === 4)), v6: minimal(cidrs.filter((c) => c.family === 6)) };
}

export const isAny = (list: readonly Cidr[]) => list.length === 1 && list[0]!.len === 0;
export const isEmpty = (s: Sources) => s.v4.length === 0 && s.v6.length === 0;

/** Operator wording: `anywhere`, or the networks (`0.0.0.0/0` for any IPv4 when IPv6 is restricted). */
export function describeSources(s: Sources): string {
  if (isAny(s.v4) && isAny(s.v6)) return 'anywhere';
  const all = [...s.v4, ...s.v6].map(formatCidr);
  return all.length > 0 ? all.join(', ') : 'nowhere';
}

export function invalidSpec(message: string): never {
  throw ApplicationFailure.nonRetryable(`firewall: ${message}`, 'InvalidSpec');
}

export function specSources(sources: readonly string[], field: string): Sources {
  return toSources(
    sources.map((s) => parseCidr(s) ?? invalidSpec(`${field}: "${s}" is not an IP address or CIDR block`)),
  );
}
