// Point queries in world coordinates: nearest visible point (a uniform grid) and points inside a polygon.

export class Grid {
  private cellStart: Uint32Array;
  private order: Uint32Array;
  private x0: number; private y0: number; private cell: number; private side: number;

  constructor(private x: Float32Array, private y: Float32Array, private visible: (i: number) => boolean) {
    const n = x.length;
    let x0 = Infinity, y0 = Infinity, x1 = -Infinity, y1 = -Infinity;
    for (let i = 0; i < n; i++) {
      if (x[i] < x0) x0 = x[i]; if (x[i] > x1) x1 = x[i];
      if (y[i] < y0) y0 = y[i]; if (y[i] > y1) y1 = y[i];
    }
    this.side = Math.max(1, Math.min(1024, Math.ceil(Math.sqrt(n / 4))));
    this.x0 = x0; this.y0 = y0;
    this.cell = Math.max(x1 - x0, y1 - y0, 1e-9) / this.side * (1 + 1e-6);
    const cells = this.side * this.side;
    const key = new Uint32Array(n);
    this.cellStart = new Uint32Array(cells + 1);
    for (let i = 0; i < n; i++) {
      key[i] = this.cellOf(x[i], y[i]);
      this.cellStart[key[i] + 1]++;
    }
    for (let c = 0; c < cells; c++) this.cellStart[c + 1] += this.cellStart[c];
    const fill = this.cellStart.slice(0, cells);
    this.order = new Uint32Array(n);
    for (let i = 0; i < n; i++) this.order[fill[key[i]]++] = i;
  }

  private clampCell(v: number): number { return Math.min(this.side - 1, Math.max(0, Math.floor(v))); }
  private cellOf(x: number, y: number): number {
    return this.clampCell((y - this.y0) / this.cell) * this.side + this.clampCell((x - this.x0) / this.cell);
  }

  /** The visible point nearest (x, y) within `radius` world units, or -1. */
  nearest(x: number, y: number, radius: number): number {
    let best = -1, bestD = radius * radius;
    const cx0 = this.clampCell((x - radius - this.x0) / this.cell), cx1 = this.clampCell((x + radius - this.x0) / this.cell);
    const cy0 = this.clampCell((y - radius - this.y0) / this.cell), cy1 = this.clampCell((y + radius - this.y0) / this.cell);
    for (let cy = cy0; cy <= cy1; cy++) {
      for (let cx = cx0; cx <= cx1; cx++) {
        const c = cy * this.side + cx;
        for (let k = this.cellStart[c]; k < this.cellStart[c + 1]; k++) {
          const i = this.order[k];
          const dx = this.x[i] - x, dy = this.y[i] - y, d = dx * dx + dy * dy;
          if (d <= bestD && this.visible(i)) { bestD = d; best = i; }
        }
      }
    }
    return best;
  }
}

/** Rows of the visible points inside the polygon (even-odd rule), in row order. */
export function insidePolygon(x: Float32Array, y: Float32Array, poly: [number, number][],
                              visible: (i: number) => boolean): number[] {
  if (poly.length < 3) return [];
  let x0 = Infinity, y0 = Infinity, x1 = -Infinity, y1 = -Infinity;
  for (const [px, py] of poly) { x0 = Math.min(x0, px); x1 = Math.max(x1, px); y0 = Math.min(y0, py); y1 = Math.max(y1, py); }
  const out: number[] = [];
  for (let i = 0; i < x.length; i++) {
    const px = x[i], py = y[i];
    if (px < x0 || px > x1 || py < y0 || py > y1 || !visible(i)) continue;
    let inside = false;
    for (let a = 0, b = poly.length - 1; a < poly.length; b = a++) {
      const [ax, ay] = poly[a], [bx, by] = poly[b];
      if ((ay > py) !== (by > py) && px < ((bx - ax) * (py - ay)) / (by - ay) + ax) inside = !inside;
    }
    if (inside) out.push(i);
  }
  return out;
}
