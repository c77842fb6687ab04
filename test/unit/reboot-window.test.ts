import { describe, expect, it } from 'vitest';
import { inRebootWindow, nextRebootWindow, parseRebootWindow } from '../../model/reboot-window';
import { specSchema } from '../../model/schema';
import { validate, ValidationError } from '../../model/validate';

const at = (iso: string) => new Date(iso);
// 2026-12-06 is a Sunday.

describe('the reboot window', () => {
  it('opens every day, or on the named days, from its start up to (not including) its end, in UTC', () => {
    const daily = parseRebootWindow('02:00-04:00');
    expect(inRebootWindow(daily, at('2026-12-09T02:00:00Z'))).toBe(true);
    expect(inRebootWindow(daily, at('2026-12-09T03:59:59Z'))).toBe(true);
    expect(inRebootWindow(daily, at('2026-12-09T04:00:00Z'))).toBe(false);
    expect(inRebootWindow(daily, at('2026-12-09T01:59:00Z'))).toBe(false);
    const weekend = parseRebootWindow('sat,sun 02:00-04:00');
    expect(inRebootWindow(weekend, at('2026-12-06T03:00:00Z'))).toBe(true);
    expect(inRebootWindow(weekend, at('2026-12-07T03:00:00Z'))).toBe(false);
  });

  it('crosses midnight: the morning part belongs to the day before', () => {
    const w = parseRebootWindow('sat 23:30-00:30');
    expect(inRebootWindow(w, at('2026-12-05T23:45:00Z'))).toBe(true); // Saturday evening
    expect(inRebootWindow(w, at('2026-12-06T00:15:00Z'))).toBe(true); // Sunday morning, after Saturday
    expect(inRebootWindow(w, at('2026-12-06T23:45:00Z'))).toBe(false); // Sunday evening
    expect(inRebootWindow(w, at('2026-12-05T00:15:00Z'))).toBe(false); // Saturday morning, after Friday
  });

  it('says when it next opens', () => {
    expect(nextRebootWindow(parseRebootWindow('02:00-04:00'), at('2026-12-06T12:00:00Z'))).toBe(
      '2026-12-07T02:00:00.000Z',
    );
    expect(nextRebootWindow(parseRebootWindow('sat 02:00-04:00'), at('2026-12-06T12:00:00Z'))).toBe(
      '2026-12-12T02:00:00.000Z',
    );
    expect(nextRebootWindow(parseRebootWindow('sun 13:00-14:00'), at('2026-12-06T12:00:00Z'))).toBe(
      '2026-12-06T13:00:00.000Z',
    );
  });

  it('is refused by the spec when malformed or empty, naming the field', () => {
    const spec = (rebootWindow: string) =>
      validate(specSchema, { version: 1, hosts: [{ name: 'h', address: '127.0.0.1' }], harden: { rebootWindow } }, 't');
    expect(spec('sun,sat 01:00-02:30').harden.rebootWindow).toBe('sun,sat 01:00-02:30');
    for (const bad of ['25:00-02:00', 'sunday 01:00-02:00', '01:00-01:00', '01:00-02:00; reboot', 'sun 1:00-2:00']) {
      let err: unknown;
      try {
        spec(bad);
      } catch (e) {
        err = e;
      }
      expect(err, bad).toBeInstanceOf(ValidationError);
      expect((err as ValidationError).message, bad).toContain('harden.rebootWindow');
    }
    expect(() => parseRebootWindow('01:00-01:00')).toThrow(/empty/);
  });
});
