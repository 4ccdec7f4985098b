// Side panels: a point's labels and ids, the image-and-neighbours detail, the selection summary with its CSV
// export, and the run's settings.
import { loadBuffer } from "./data";
import { $, el } from "./dom";
import { requestDraw } from "./draw";
import { recolour } from "./legend";
import { state } from "./state";
import { drawThumb } from "./thumbs";

const GRID_MAX = 240;

export function labelOf(row: number): string {
  const col = state.index!.columns.find((c) => c.name === "label");
  if (col && col.kind === "category" && state.labelValues) return col.categories[state.labelValues[row]];
  return "";
}

export function idOf(row: number): string { return state.ids ? state.ids[row] : `#${row}`; }

function thumbCanvas(row: number, onClick?: () => void): HTMLCanvasElement {
  const c = el("canvas");
  c.title = `${labelOf(row)} ${idOf(row)}`.trim();
  void drawThumb(state.index!.thumbs, row, c);
  if (onClick) c.onclick = onClick;
  return c;
}

export function showDetail(row: number): void {
  state.detail = row;
  const body = $<HTMLDivElement>("detail-body");
  body.replaceChildren();
  $<HTMLElement>("detail").hidden = false;
  const img = el("img", undefined, "large");
  img.alt = idOf(row);
  img.onerror = () => img.replaceWith(Object.assign(thumbCanvas(row), { className: "large" }));
  img.src = `image/${row}`;
  body.append(img, el("div", labelOf(row)), el("div", idOf(row), "muted"));
  const info = state.index!.neighbors;
  if (info && !state.neighbors) {
    void loadBuffer(info.file).then((buf) => {
      state.neighbors = new Uint32Array(buf);
      if (state.detail === row) showDetail(row);
    });
  }
  if (state.neighbors) {
    const k = info!.k;
    body.append(el("h3", `${k} nearest neighbours`));
    const grid = el("div", undefined, "grid");
    for (let j = 0; j < k; j++) {
      const nb = state.neighbors[row * k + j];
      grid.append(thumbCanvas(nb, () => showDetail(nb)));
    }
    body.append(grid);
  }
  requestDraw();
}

function csvCell(s: string): string { return /[",\n\r]/.test(s) ? `"${s.replace(/"/g, '""')}"` : s; }

export function showSelection(rows: number[]): void {
  state.selection = rows;
  recolour();
  const box = $<HTMLElement>("selection");
  const body = $<HTMLDivElement>("selection-body");
  body.replaceChildren();
  box.hidden = rows.length === 0;
  if (!rows.length) return;
  body.append(el("div", `${rows.length.toLocaleString()} points selected`));
  const counts = new Map<string, number>();
  for (const r of rows) { const l = labelOf(r) || "(no label)"; counts.set(l, (counts.get(l) ?? 0) + 1); }
  const table = el("table", undefined, "counts");
  for (const [label, count] of [...counts].sort((a, b) => b[1] - a[1])) {
    const tr = el("tr");
    tr.append(el("td", label), el("td", count.toLocaleString()));
    table.append(tr);
  }
  const csv = el("button", "export ids as CSV");
  csv.id = "export-csv";
  csv.onclick = () => {
    const lines = ["id,label", ...rows.map((r) => `${csvCell(idOf(r))},${csvCell(labelOf(r))}`)];
    const a = el("a");
    a.href = URL.createObjectURL(new Blob([lines.join("\n") + "\n"], { type: "text/csv" }));
    a.download = "selection.csv";
    a.click();
  };
  const clear = el("button", "clear");
  clear.onclick = () => showSelection([]);
  body.append(table, csv, clear);
  if (state.index!.thumbs) {
    const grid = el("div", undefined, "grid");
    for (const r of rows.slice(0, GRID_MAX)) grid.append(thumbCanvas(r, () => showDetail(r)));
    body.append(grid);
    if (rows.length > GRID_MAX) body.append(el("div", `first ${GRID_MAX} shown`, "muted"));
  }
}

export function renderSettings(): void {
  const index = state.index!;
  const dl = $<HTMLDListElement>("settings");
  dl.replaceChildren();
  const rows: [string, unknown][] = [["points", index.n.toLocaleString()], ...Object.entries(index.settings),
    ["random weights", index.random_weights ? "yes" : "no"]];
  for (const [k, v] of Object.entries(index.metrics[state.current] ?? {})) {
    rows.push([`${state.current} ${k}`, typeof v === "number" ? Number(v.toPrecision(4)) : v]);
  }
  for (const [k, v] of rows) {
    if (v === null || v === undefined || typeof v === "object") continue;
    dl.append(el("dt", k), el("dd", String(v)));
  }
}
