// Progress of long work on stderr, the same for every command: on a terminal, a bar redrawn in
// place with the count, the time so far and the time left; in a log or a pipe, where a bar would
// be a mess of carriage returns, a plain line every 10 s once the work has run that long (a short
// run prints nothing); nothing at all with --json or --quiet. stdout stays clean in every case.

export interface ProgressOptions {
  /** No output at all (--json, --quiet). */
  quiet?: boolean;
  /** What is counted ("images", "iterations"), shown after the count. */
  unit?: string;
  stream?: NodeJS.WriteStream;
  /** Milliseconds between two plain lines when the stream is not a terminal. */
  every?: number;
}

export class Progress {
  private readonly mode: 'bar' | 'lines' | 'off';
  private readonly stream: NodeJS.WriteStream;
  private readonly unit: string;
  private readonly every: number;
  private readonly start = performance.now();
  private last: number;
  private lines = 0;
  private current = 0;

  constructor(private readonly title: string, private readonly total: number, options: ProgressOptions = {}) {
    this.stream = options.stream ?? process.stderr;
    this.mode = options.quiet ? 'off' : this.stream.isTTY ? 'bar' : 'lines';
    this.unit = options.unit ? ` ${options.unit}` : '';
    this.every = options.every ?? 10_000;
    this.last = this.mode === 'lines' ? this.start : 0;
  }

  /** `done` of `total` (a fraction of one while a batch is under way), with an optional note
   *  (the loss, the current class), made only when shown. */
  update(done: number, note?: () => string): void {
    if (this.mode === 'off') return;
    this.current = done;
    const now = performance.now();
    if (this.mode === 'bar') {
      if (now - this.last < 50 && done < this.total) return; // redraw at most 20 times a second
      this.last = now;
      const width = 30;
      const filled = Math.round((width * Math.min(done, this.total)) / this.total);
      const extra = note ? ` · ${note()}` : '';
      this.stream.write(`\r${this.title} [${'#'.repeat(filled)}${'.'.repeat(width - filled)}] ${this.count(done)}${this.timing(now, done)}${extra}\x1b[K`);
      return;
    }
    if (now - this.last < this.every || done >= this.total) return;
    this.last = now;
    this.lines++;
    const percent = Math.floor((100 * done) / this.total);
    this.stream.write(`${this.title}: ${this.count(done)} (${percent} %)${this.timing(now, done)}${note ? ` · ${note()}` : ''}\n`);
  }

  done(): void {
    if (this.mode === 'bar') this.stream.write('\r\x1b[K');
    // A log that showed the work under way also shows its end.
    if (this.mode === 'lines' && this.lines > 0) this.stream.write(`${this.title}: ${this.count(Math.max(this.current, this.total))} in ${duration(performance.now() - this.start)}\n`);
  }

  private count(done: number): string {
    return `${Math.floor(done)}/${this.total}${this.unit}`;
  }

  /** " · 12 s · about 40 s left": the time left once there is something to go by. */
  private timing(now: number, done: number): string {
    const elapsed = now - this.start;
    const left = done > 0 && elapsed > 1000 && done < this.total ? ` · about ${duration((elapsed * (this.total - done)) / done)} left` : '';
    return ` · ${duration(elapsed)}${left}`;
  }
}

/** "8 s", "2 min 05 s", "1 h 03 min". */
export function duration(ms: number): string {
  const s = Math.round(ms / 1000);
  if (s < 60) return `${s} s`;
  if (s < 3600) return `${Math.floor(s / 60)} min ${String(s % 60).padStart(2, '0')} s`;
  return `${Math.floor(s / 3600)} h ${String(Math.floor(s / 60) % 60).padStart(2, '0')} min`;
}
