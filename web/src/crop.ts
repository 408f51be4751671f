// The crop box: a rectangle over the picture, drawn anew by dragging across the picture, moved by
// dragging it or with the arrow keys, resized by its corner handle or with + and −, and entered
// exactly in the X, Y, W, H fields. It keeps the model input's proportions, unless the model reads
// a box of any shape (face-api's pads it to a square): then it is free. Coordinates are pixels of
// the picture as decoded (EXIF orientation applied).

export interface Rect {
  x: number;
  y: number;
  w: number;
  h: number;
}

export interface CropElements {
  /** Positioned parent of the picture's canvas and of the box, the same size as the canvas. */
  frame: HTMLElement;
  box: HTMLElement;
  handle: HTMLElement;
  x: HTMLInputElement;
  y: HTMLInputElement;
  w: HTMLInputElement;
  h: HTMLInputElement;
}

const MIN = 2;

export class CropBox {
  private width = 1;
  private height = 1;
  private rect: Rect = { x: 0, y: 0, w: 1, h: 1 };
  /** Height over width of the model input, kept when drawing and resizing; null: any shape. */
  private aspect: number | null = 1;

  constructor(private readonly el: CropElements, private readonly onChange: (r: Rect) => void) {
    this.dragging(el.box, (start, dx, dy) => this.set({ ...start, x: start.x + dx, y: start.y + dy }, 'move'));
    this.dragging(el.handle, (start, dx, dy) => {
      if (this.aspect === null) return this.set({ ...start, w: start.w + dx, h: start.h + dy }, 'resize');
      const w = Math.max(start.w + dx, (start.h + dy) / this.aspect);
      this.set({ ...start, w, h: w * this.aspect }, 'resize');
    });
    this.dragging(el.frame, (_start, dx, dy, from) => this.draw(from, dx, dy));
    el.box.addEventListener('keydown', (e) => this.key(e));
    // The four numbers are applied together (on Enter, or when the focus leaves them), so that
    // a field is not clamped against the old box while the others are still being typed.
    const fields: EventTarget[] = [el.x, el.y, el.w, el.h];
    for (const input of [el.x, el.y, el.w, el.h]) {
      input.addEventListener('keydown', (e) => {
        if (e.key !== 'Enter') return;
        e.preventDefault();
        this.applyFields();
      });
      input.addEventListener('focusout', (e) => {
        if (!fields.includes(e.relatedTarget as EventTarget)) this.applyFields();
      });
    }
  }

  /** A new picture: the box becomes the largest centred rectangle of the model's proportions (a
   *  square when any shape goes). */
  reset(width: number, height: number, aspect: number | null): void {
    this.width = width;
    this.height = height;
    this.aspect = aspect;
    this.set(centred(width, height, aspect ?? 1), 'exact');
  }

  /** The model changed shape: the box is reset to its proportions. */
  setAspect(aspect: number | null): void {
    if (aspect === this.aspect) return;
    this.aspect = aspect;
    this.reset(this.width, this.height, aspect);
  }

  /** A box drawn from the picture pixel `from` by a drag of (dx, dy), either way; with fixed
   *  proportions, the longer side of the drag decides its size. */
  private draw(from: { x: number; y: number }, dx: number, dy: number): void {
    let w = Math.abs(dx), h = Math.abs(dy);
    // It stays inside the picture, on the side of `from` it was dragged to.
    const roomW = dx < 0 ? from.x : this.width - from.x, roomH = dy < 0 ? from.y : this.height - from.y;
    if (this.aspect === null) {
      w = Math.min(w, roomW);
      h = Math.min(h, roomH);
    } else {
      w = Math.max(w, h / this.aspect);
      h = w * this.aspect;
      const fit = Math.min(1, roomW / w, roomH / h);
      w *= fit;
      h *= fit;
    }
    if (w < MIN || h < MIN) return;
    this.set({ x: dx < 0 ? from.x - w : from.x, y: dy < 0 ? from.y - h : from.y, w, h }, 'resize');
  }

  /** The box the four fields say, kept inside the picture; fields that are not numbers are put back. */
  private applyFields(): void {
    const { x, y, w, h } = this.el;
    const r = { x: +x.value, y: +y.value, w: +w.value, h: +h.value };
    const numbers = [x, y, w, h].every((f) => f.value.trim() !== '') && Object.values(r).every(Number.isFinite);
    const same = r.x === this.rect.x && r.y === this.rect.y && r.w === this.rect.w && r.h === this.rect.h;
    if (numbers && !same) this.set(r, 'exact');
    else this.show();
  }

  get value(): Rect {
    return { ...this.rect };
  }

  private set(r: Rect, how: 'move' | 'resize' | 'exact'): void {
    let { x, y, w, h } = r;
    const aspect = this.aspect;
    if (how === 'resize' && aspect !== null) {
      // Keep the proportions: shrink both sides until the box fits right and below.
      const fit = Math.min(1, (this.width - x) / w, (this.height - y) / h);
      w = Math.max(MIN, Math.floor(w * fit));
      h = Math.max(MIN, Math.round(w * aspect));
      if (x + w > this.width || y + h > this.height) return;
    } else if (how === 'resize') {
      x = Math.round(x);
      y = Math.round(y);
      w = clamp(Math.round(w), MIN, this.width - x);
      h = clamp(Math.round(h), MIN, this.height - y);
      if (x + w > this.width || y + h > this.height) return;
    } else {
      w = clamp(Math.round(w), 1, this.width);
      h = clamp(Math.round(h), 1, this.height);
    }
    x = clamp(Math.round(x), 0, this.width - w);
    y = clamp(Math.round(y), 0, this.height - h);
    const changed = x !== this.rect.x || y !== this.rect.y || w !== this.rect.w || h !== this.rect.h;
    this.rect = { x, y, w, h };
    this.show();
    if (changed || how === 'exact') this.onChange(this.value);
  }

  private show(): void {
    const { x, y, w, h } = this.rect;
    const s = this.el.box.style;
    s.left = `${(100 * x) / this.width}%`;
    s.top = `${(100 * y) / this.height}%`;
    s.width = `${(100 * w) / this.width}%`;
    s.height = `${(100 * h) / this.height}%`;
    this.el.box.setAttribute('aria-label', `Crop box: ${w}×${h} pixels at (${x}, ${y}) of ${this.width}×${this.height}`);
    for (const [input, v, max] of [[this.el.x, x, this.width - 1], [this.el.y, y, this.height - 1], [this.el.w, w, this.width], [this.el.h, h, this.height]] as const) {
      input.value = String(v);
      input.max = String(max);
    }
  }

  private key(e: KeyboardEvent): void {
    const step = e.shiftKey ? 10 : 1;
    const r = this.rect;
    const moves: Record<string, [number, number]> = { ArrowLeft: [-step, 0], ArrowRight: [step, 0], ArrowUp: [0, -step], ArrowDown: [0, step] };
    if (moves[e.key]) {
      this.set({ ...r, x: r.x + moves[e.key][0], y: r.y + moves[e.key][1] }, 'move');
    } else if (e.key === '+' || e.key === '=' || e.key === '-' || e.key === '_') {
      const grow = e.key === '+' || e.key === '=' ? step : -step;
      const w = Math.max(MIN, r.w + 2 * grow);
      const h = Math.max(MIN, Math.round(w * (this.aspect ?? r.h / r.w)));
      // Grow or shrink around the centre, then keep inside the picture.
      const fit = Math.min(1, this.width / w, this.height / h);
      const fw = Math.floor(w * fit), fh = Math.floor(h * fit);
      this.set({ x: r.x + (r.w - fw) / 2, y: r.y + (r.h - fh) / 2, w: fw, h: fh }, 'exact');
    } else {
      return;
    }
    e.preventDefault();
  }

  /** Pointer dragging on `target`, in picture pixels from where it started (`from`). */
  private dragging(target: HTMLElement, move: (start: Rect, dx: number, dy: number, from: { x: number; y: number }) => void): void {
    target.addEventListener('pointerdown', (e) => {
      if (e.button !== 0) return;
      e.preventDefault();
      e.stopPropagation();
      target.setPointerCapture(e.pointerId);
      this.el.box.focus({ preventScroll: true });
      const start = this.value;
      const bounds = this.el.frame.getBoundingClientRect();
      const sx = this.width / bounds.width, sy = this.height / bounds.height;
      const x0 = e.clientX, y0 = e.clientY;
      const from = { x: (x0 - bounds.left) * sx, y: (y0 - bounds.top) * sy };
      const onMove = (m: PointerEvent) => move(start, (m.clientX - x0) * sx, (m.clientY - y0) * sy, from);
      const onUp = () => {
        target.removeEventListener('pointermove', onMove);
        target.removeEventListener('pointerup', onUp);
        target.removeEventListener('pointercancel', onUp);
      };
      target.addEventListener('pointermove', onMove);
      target.addEventListener('pointerup', onUp);
      target.addEventListener('pointercancel', onUp);
    });
  }
}

function clamp(v: number, lo: number, hi: number): number {
  return Math.min(hi, Math.max(lo, v));
}

/** The largest rectangle of proportions h/w = aspect that fits, centred. */
export function centred(width: number, height: number, aspect: number): Rect {
  let w = width, h = Math.round(width * aspect);
  if (h > height) {
    h = height;
    w = Math.round(height / aspect);
  }
  w = clamp(w, 1, width);
  h = clamp(h, 1, height);
  return { x: Math.floor((width - w) / 2), y: Math.floor((height - h) / 2), w, h };
}
