// Progress of long work on stderr: a bar redrawn in place on a terminal, nothing otherwise
// (logs and --json output stay clean).
export class Progress {
  private readonly live: boolean;
  private last = 0;

  constructor(private readonly title: string, private readonly total: number, quiet = false, private readonly stream: NodeJS.WriteStream = process.stderr) {
    this.live = !quiet && Boolean(stream.isTTY);
  }

  /** `done` of `total`, with an optional note (the loss, the current class), made only when drawn. */
  update(done: number, note?: () => string): void {
    if (!this.live) return;
    const now = performance.now();
    if (now - this.last < 50 && done < this.total) return; // redraw at most 20 times a second
    this.last = now;
    const width = 30;
    const filled = Math.round((width * done) / this.total);
    this.stream.write(`\r${this.title} [${'#'.repeat(filled)}${'.'.repeat(width - filled)}] ${done}/${this.total} ${note?.() ?? ''}\x1b[K`);
  }

  done(): void {
    if (this.live) this.stream.write('\r\x1b[K');
  }
}
