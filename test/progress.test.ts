// Progress on stderr: a bar on a terminal, plain periodic lines elsewhere, nothing when quiet.
import { describe, expect, it, vi } from 'vitest';
import { duration, Progress } from '../src/cli/progress.js';

function stream(isTTY: boolean) {
  const written: string[] = [];
  return { written, stream: { isTTY, write: (s: string) => written.push(s) } as unknown as NodeJS.WriteStream };
}

describe('Progress', () => {
  it('draws a bar in place on a terminal, with the count, the time and the time left', () => {
    vi.useFakeTimers({ toFake: ['performance'] });
    try {
      const { written, stream: s } = stream(true);
      const p = new Progress('pgd', 200, { stream: s, unit: 'images' });
      vi.advanceTimersByTime(4000);
      p.update(50.5, () => 'note');
      expect(written.at(-1)).toBe(`\rpgd [########......................] 50/200 images · 4 s · about 12 s left · note\x1b[K`);
      p.done();
      expect(written.at(-1)).toBe('\r\x1b[K');
    } finally {
      vi.useRealTimers();
    }
  });

  it('writes a plain line every so often elsewhere, none for a short run, and the end after lines', () => {
    vi.useFakeTimers({ toFake: ['performance'] });
    try {
      const short = stream(false);
      const quick = new Progress('cw', 10, { stream: short.stream, unit: 'images' });
      quick.update(5);
      quick.done();
      expect(short.written).toEqual([]);

      const { written, stream: s } = stream(false);
      const p = new Progress('cw', 10, { stream: s, unit: 'images', every: 10_000 });
      vi.advanceTimersByTime(10_000);
      p.update(4);
      vi.advanceTimersByTime(5000);
      p.update(6); // too soon for another line
      vi.advanceTimersByTime(5000);
      p.update(8);
      p.done();
      expect(written).toEqual([
        'cw: 4/10 images (40 %) · 10 s · about 15 s left\n',
        'cw: 8/10 images (80 %) · 20 s · about 5 s left\n',
        'cw: 10/10 images in 20 s\n',
      ]);
      expect(written.join('')).not.toContain('\r');
    } finally {
      vi.useRealTimers();
    }
  });

  it('says nothing when quiet', () => {
    const { written, stream: s } = stream(true);
    const p = new Progress('x', 3, { stream: s, quiet: true });
    p.update(1);
    p.done();
    expect(written).toEqual([]);
  });

  it('writes durations in seconds, minutes or hours', () => {
    expect([duration(400), duration(59_400), duration(125_000), duration(3_780_000)]).toEqual(['0 s', '59 s', '2 min 05 s', '1 h 03 min']);
  });
});
