// Point colours: a categorical palette, a viridis ramp for numbers, grey for missing values; hidden = alpha 0.
import type { Column } from "./data";

const PALETTE = [
  "#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22", "#17becf",
  "#aec7e8", "#ffbb78", "#98df8a", "#ff9896", "#c5b0d5", "#c49c94", "#f7b6d2", "#c7c7c7", "#dbdb8d", "#9edae5",
];
const VIRIDIS = ["#440154", "#482878", "#3e4989", "#31688e", "#26828e", "#1f9e89", "#35b779", "#6ece58", "#b5de2b", "#fde725"];
const MISSING: [number, number, number] = [190, 190, 190];

function rgb(hex: string): [number, number, number] {
  const v = parseInt(hex.slice(1), 16);
  return [(v >> 16) & 255, (v >> 8) & 255, v & 255];
}

export function categoryColour(i: number, name: string): string {
  return name === "(none)" || name === "(other)" ? "#bebebe" : PALETTE[i % PALETTE.length];
}

export const RAMP_CSS = `linear-gradient(to right, ${VIRIDIS.join(", ")})`;

function ramp(t: number): [number, number, number] {
  const x = Math.min(1, Math.max(0, t)) * (VIRIDIS.length - 1);
  const i = Math.min(VIRIDIS.length - 2, Math.floor(x));
  const a = rgb(VIRIDIS[i]), b = rgb(VIRIDIS[i + 1]), f = x - i;
  return [a[0] + (b[0] - a[0]) * f, a[1] + (b[1] - a[1]) * f, a[2] + (b[2] - a[2]) * f];
}

/** RGBA bytes per point for a column (or one colour when there is none); points of hidden categories get alpha 0. */
export function pointColours(n: number, col: Column | null, values: Uint16Array | Float32Array | null,
                             hidden: Set<number>): Uint8Array {
  const out = new Uint8Array(n * 4);
  if (!col || !values) {
    for (let i = 0; i < n; i++) out.set([31, 119, 180, 255], i * 4);
    return out;
  }
  if (col.kind === "category") {
    const table = col.categories.map((name, i) => [...rgb(categoryColour(i, name)), hidden.has(i) ? 0 : 255]);
    for (let i = 0; i < n; i++) out.set(table[values[i]], i * 4);
    return out;
  }
  const span = col.max - col.min || 1;
  for (let i = 0; i < n; i++) {
    const v = values[i];
    const c = Number.isFinite(v) ? ramp((v - col.min) / span) : MISSING;
    out[i * 4] = c[0]; out[i * 4 + 1] = c[1]; out[i * 4 + 2] = c[2]; out[i * 4 + 3] = 255;
  }
  return out;
}
