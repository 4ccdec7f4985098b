// The dinoscope viewer: every point of every map of a run on a WebGL2 canvas, with the images under the cursor.
// Data and labels come from the run: they are only ever shown with textContent, never parsed as HTML.
import "./style.css";
import { pointColours, categoryColour, RAMP_CSS } from "./colors";
import { type Column, type Index, type MapInfo, loadBuffer, loadColumn, loadIds, loadIndex, loadMap } from "./data";
import { type Affine, Scatter, type View } from "./scatter";
import { Grid, insidePolygon } from "./spatial";
import { drawThumb } from "./thumbs";

const TRANSITION_MS = 700;
const HOVER_PX = 8;
const GRID_MAX = 240;

const $ = <T extends HTMLElement>(id: string) => document.getElementById(id) as T;
const el = <K extends keyof HTMLElementTagNameMap>(tag: K, text?: string, cls?: string): HTMLElementTagNameMap[K] => {
  const e = document.createElement(tag);
  if (text !== undefined) e.textContent = text;
  if (cls) e.className = cls;
  return e;
};

interface World { x: Float32Array; y: Float32Array; grid: Grid }

const state = {
  index: null as Index | null,
  coords: new Map<string, Float32Array>(),
  affine: new Map<string, Affine>(),
  world: null as World | null,
  current: "",
  from: "",
  transitionStart: 0,
  colour: null as Column | null,
  values: null as Uint16Array | Float32Array | null,
  labelValues: null as Uint16Array | null,
  hidden: new Set<number>(),
  alpha: new Uint8Array(0),
  view: { cx: 0, cy: 0, scale: 1 } as View,
  fitScale: 1,
  tool: "pan" as "pan" | "lasso" | "box",
  ids: null as string[] | null,
  neighbors: null as Uint32Array | null, // the kNN rows, fetched on the first click
  selection: [] as number[],
  hover: -1,
  detail: -1,
  lasso: null as [number, number][] | null,
  firstDrawn: false,
};

const stage = $<HTMLDivElement>("stage");
const overlay = $<HTMLCanvasElement>("overlay");
let scatter: Scatter;
let frameQueued = false;

function affineOf(info: MapInfo): Affine {
  if (info.disk) return { cx: 0, cy: 0, s: 1 };
  const [x0, y0, x1, y1] = info.bounds;
  return { cx: (x0 + x1) / 2, cy: (y0 + y1) / 2, s: 2 / Math.max(x1 - x0, y1 - y0, 1e-12) };
}

function mapInfo(name: string): MapInfo { return state.index!.maps.find((m) => m.name === name)!; }

async function ensureMap(name: string): Promise<void> {
  if (state.coords.has(name)) return;
  const info = mapInfo(name);
  const xy = await loadMap(info);
  state.coords.set(name, xy);
  state.affine.set(name, affineOf(info));
  scatter.setMap(name, xy);
}

function visible(i: number): boolean { return state.alpha[i] !== 0; }

function buildWorld(name: string): void {
  const xy = state.coords.get(name)!, a = state.affine.get(name)!, n = xy.length / 2;
  const x = new Float32Array(n), y = new Float32Array(n);
  for (let i = 0; i < n; i++) { x[i] = (xy[2 * i] - a.cx) * a.s; y[i] = (xy[2 * i + 1] - a.cy) * a.s; }
  state.world = { x, y, grid: new Grid(x, y, visible) };
}

// ---- coordinates: world (map after its affine) <-> CSS pixels of the stage ----
function toScreen(wx: number, wy: number): [number, number] {
  const v = state.view;
  return [(wx - v.cx) * v.scale + stage.clientWidth / 2, stage.clientHeight / 2 - (wy - v.cy) * v.scale];
}
function toWorld(sx: number, sy: number): [number, number] {
  const v = state.view;
  return [(sx - stage.clientWidth / 2) / v.scale + v.cx, (stage.clientHeight / 2 - sy) / v.scale + v.cy];
}

function fit(): void {
  state.fitScale = Math.min(stage.clientWidth, stage.clientHeight) / 2 * 0.92;
  state.view = { cx: 0, cy: 0, scale: state.fitScale };
  requestDraw();
}

function pointSize(): number {
  const n = state.index?.n ?? 1;
  const base = Math.max(1.5, Math.min(8, 18 / Math.pow(n, 0.22)));
  return base * Math.min(4, Math.sqrt(Math.max(1, state.view.scale / state.fitScale)));
}

// ---- drawing ----
function requestDraw(): void {
  if (frameQueued) return;
  frameQueued = true;
  requestAnimationFrame(frame);
}

function frame(now: number): void {
  frameQueued = false;
  if (!state.current) return;
  let t = 1;
  if (state.from !== state.current) {
    t = Math.min(1, (now - state.transitionStart) / TRANSITION_MS);
    if (t >= 1) { state.from = state.current; document.body.dataset.mapShown = state.current; }
    else requestDraw();
  }
  const eased = t < 0.5 ? 2 * t * t : 1 - Math.pow(-2 * t + 2, 2) / 2;
  scatter.draw(state.from, state.affine.get(state.from)!, state.current, state.affine.get(state.current)!, eased,
    state.view, pointSize());
  drawOverlay(t);
  if (!state.firstDrawn) {
    scatter.gl.finish();
    state.firstDrawn = true;
    const w = window as unknown as { __dinoscopeFirstDraw: number };
    w.__dinoscopeFirstDraw = performance.now();
    document.body.dataset.firstDraw = String(w.__dinoscopeFirstDraw);
    document.body.dataset.mapShown = state.current;
    afterFirstDraw();
  }
}

function drawOverlay(t: number): void {
  const dpr = window.devicePixelRatio || 1;
  overlay.width = Math.round(stage.clientWidth * dpr);
  overlay.height = Math.round(stage.clientHeight * dpr);
  const ctx = overlay.getContext("2d")!;
  ctx.setTransform(dpr, 0, 0, dpr, 0, 0);
  const info = mapInfo(state.current);
  if (info.disk) {
    ctx.globalAlpha = t;
    const [cx, cy] = toScreen(0, 0);
    ctx.strokeStyle = "#555";
    ctx.lineWidth = 1;
    ctx.beginPath();
    ctx.arc(cx, cy, state.view.scale, 0, 2 * Math.PI);
    ctx.stroke();
    if (info.hierarchy) {
      ctx.strokeStyle = "rgba(40,40,40,.7)";
      for (const line of info.hierarchy.lines) {
        ctx.beginPath();
        for (let k = 0; k < line.length; k += 2) {
          const [sx, sy] = toScreen(line[k], line[k + 1]);
          if (k === 0) ctx.moveTo(sx, sy); else ctx.lineTo(sx, sy);
        }
        ctx.stroke();
      }
      ctx.font = "11px system-ui, sans-serif";
      ctx.textAlign = "center";
      for (const leaf of info.hierarchy.leaves) {
        const [sx, sy] = toScreen(leaf.x, leaf.y);
        ctx.fillStyle = "rgba(255,255,255,.8)";
        const w = ctx.measureText(leaf.name).width;
        ctx.fillRect(sx - w / 2 - 2, sy - 8, w + 4, 14);
        ctx.fillStyle = "#111";
        ctx.fillText(leaf.name, sx, sy + 3);
      }
    }
    ctx.globalAlpha = 1;
  }
  if (t >= 1 && state.world) {
    for (const [row, colour] of [[state.detail, "#d00"], [state.hover, "#000"]] as [number, string][]) {
      if (row < 0) continue;
      const [sx, sy] = toScreen(state.world.x[row], state.world.y[row]);
      ctx.strokeStyle = colour;
      ctx.lineWidth = 2;
      ctx.beginPath();
      ctx.arc(sx, sy, pointSize() / 2 + 4, 0, 2 * Math.PI);
      ctx.stroke();
    }
  }
  if (state.lasso && state.lasso.length > 1) {
    ctx.strokeStyle = "#d00";
    ctx.setLineDash([4, 3]);
    ctx.fillStyle = "rgba(220,0,0,.06)";
    ctx.beginPath();
    state.lasso.forEach(([x, y], k) => (k ? ctx.lineTo(x, y) : ctx.moveTo(x, y)));
    ctx.closePath();
    ctx.fill();
    ctx.stroke();
    ctx.setLineDash([]);
  }
}

// ---- colour and legend ----
async function setColour(name: string): Promise<void> {
  const index = state.index!;
  state.colour = index.columns.find((c) => c.name === name) ?? null;
  state.values = state.colour ? await loadColumn(state.colour) : null;
  state.hidden.clear();
  recolour();
  renderLegend();
}

function recolour(): void {
  const rgba = pointColours(state.index!.n, state.colour, state.values, state.hidden);
  if (state.selection.length) { // points outside the selection fade toward the background
    const chosen = new Uint8Array(state.index!.n);
    for (const r of state.selection) chosen[r] = 1;
    for (let i = 0; i < chosen.length; i++) {
      if (chosen[i]) continue;
      for (let c = 0; c < 3; c++) rgba[i * 4 + c] = 191 + (rgba[i * 4 + c] >> 2);
    }
  }
  state.alpha = new Uint8Array(state.index!.n);
  for (let i = 0; i < state.alpha.length; i++) state.alpha[i] = rgba[i * 4 + 3];
  scatter.setColours(rgba);
  requestDraw();
}

function renderLegend(): void {
  const box = $<HTMLDivElement>("legend");
  box.replaceChildren();
  const col = state.colour;
  if (!col) { box.append(el("div", `${state.index!.n.toLocaleString()} points`, "muted")); return; }
  if (col.kind === "number") {
    const ramp = el("div", undefined, "ramp");
    ramp.style.background = RAMP_CSS;
    const ends = el("div", `${col.min.toPrecision(3)} … ${col.max.toPrecision(3)}`, "muted");
    box.append(el("div", col.name), ramp, ends);
    return;
  }
  col.categories.forEach((name, i) => {
    const item = el("div", undefined, "item");
    item.dataset.category = String(i);
    const sw = el("span", undefined, "swatch");
    sw.style.background = categoryColour(i, name);
    item.append(sw, el("span", name, "name"), el("span", col.counts[i].toLocaleString(), "count"));
    item.title = "click to hide or show";
    item.onclick = () => {
      if (state.hidden.has(i)) state.hidden.delete(i); else state.hidden.add(i);
      item.classList.toggle("off", state.hidden.has(i));
      recolour();
    };
    box.append(item);
  });
}

// ---- maps ----
async function showMap(name: string, animate = true): Promise<void> {
  await ensureMap(name);
  state.from = animate && state.current ? state.current : name;
  state.current = name;
  state.transitionStart = performance.now();
  state.hover = -1;
  $<HTMLDivElement>("tooltip").hidden = true;
  buildWorld(name);
  for (const b of document.querySelectorAll<HTMLButtonElement>("#maps button")) {
    b.classList.toggle("active", b.dataset.map === name);
  }
  renderSettings();
  requestDraw();
  if (state.from === name) document.body.dataset.mapShown = name;
  else await new Promise<void>((resolve) => setTimeout(resolve, TRANSITION_MS + 50));
}

// ---- side panels ----
function labelOf(row: number): string {
  const col = state.index!.columns.find((c) => c.name === "label");
  if (col && col.kind === "category" && state.labelValues) return col.categories[state.labelValues[row]];
  return "";
}

function idOf(row: number): string { return state.ids ? state.ids[row] : `#${row}`; }

function thumbCanvas(row: number, onClick?: () => void): HTMLCanvasElement {
  const c = el("canvas");
  c.title = `${labelOf(row)} ${idOf(row)}`.trim();
  void drawThumb(state.index!.thumbs, row, c);
  if (onClick) c.onclick = onClick;
  return c;
}

function showDetail(row: number): void {
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

function showSelection(rows: number[]): void {
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

function renderSettings(): void {
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

// ---- pointer ----
function setTool(tool: typeof state.tool): void {
  state.tool = tool;
  for (const t of ["pan", "lasso", "box"]) $<HTMLButtonElement>(`tool-${t}`).classList.toggle("active", t === tool);
}

function updateHover(sx: number, sy: number): void {
  if (!state.world) return;
  const [wx, wy] = toWorld(sx, sy);
  const row = state.world.grid.nearest(wx, wy, HOVER_PX / state.view.scale + pointSize() / 2 / state.view.scale);
  const tip = $<HTMLDivElement>("tooltip");
  if (row !== state.hover) { state.hover = row; requestDraw(); }
  if (row < 0) { tip.hidden = true; return; }
  tip.hidden = false;
  tip.dataset.row = String(row);
  tip.style.left = `${Math.min(sx + 14, stage.clientWidth - 230)}px`;
  tip.style.top = `${Math.min(sy + 14, stage.clientHeight - 110)}px`;
  const canvas = tip.querySelector("canvas")!;
  canvas.hidden = !state.index!.thumbs;
  if (canvas.dataset.row !== String(row)) void drawThumb(state.index!.thumbs, row, canvas);
  tip.querySelector<HTMLElement>(".label")!.textContent = labelOf(row);
  tip.querySelector<HTMLElement>(".id")!.textContent = idOf(row);
}

function finishLasso(): void {
  const poly = state.lasso;
  state.lasso = null;
  if (!poly || poly.length < 3 || !state.world) { requestDraw(); return; }
  const world = poly.map(([x, y]) => toWorld(x, y));
  showSelection(insidePolygon(state.world.x, state.world.y, world, visible));
  requestDraw();
}

function bindPointer(): void {
  let drag: { x: number; y: number; cx: number; cy: number; moved: boolean; mode: string } | null = null;
  stage.addEventListener("pointerdown", (e) => {
    stage.setPointerCapture(e.pointerId);
    const mode = e.shiftKey ? "lasso" : state.tool;
    drag = { x: e.offsetX, y: e.offsetY, cx: state.view.cx, cy: state.view.cy, moved: false, mode };
    if (mode !== "pan") state.lasso = [[e.offsetX, e.offsetY]];
  });
  stage.addEventListener("pointermove", (e) => {
    if (!drag) { updateHover(e.offsetX, e.offsetY); return; }
    const dx = e.offsetX - drag.x, dy = e.offsetY - drag.y;
    if (Math.abs(dx) + Math.abs(dy) > 3) drag.moved = true;
    if (drag.mode === "pan") {
      state.view.cx = drag.cx - dx / state.view.scale;
      state.view.cy = drag.cy + dy / state.view.scale;
    } else if (drag.mode === "box") {
      state.lasso = [[drag.x, drag.y], [e.offsetX, drag.y], [e.offsetX, e.offsetY], [drag.x, e.offsetY]];
    } else {
      const last = state.lasso![state.lasso!.length - 1];
      if (Math.hypot(e.offsetX - last[0], e.offsetY - last[1]) >= 3) state.lasso!.push([e.offsetX, e.offsetY]);
    }
    requestDraw();
  });
  stage.addEventListener("pointerup", (e) => {
    const d = drag;
    drag = null;
    if (!d) return;
    if (d.mode !== "pan" && d.moved) { finishLasso(); return; }
    state.lasso = null;
    if (!d.moved) {
      updateHover(e.offsetX, e.offsetY);
      if (state.hover >= 0) showDetail(state.hover);
    }
    requestDraw();
  });
  stage.addEventListener("pointerleave", () => { state.hover = -1; $<HTMLDivElement>("tooltip").hidden = true; requestDraw(); });
  stage.addEventListener("wheel", (e) => {
    e.preventDefault();
    const [wx, wy] = toWorld(e.offsetX, e.offsetY);
    state.view.scale *= Math.exp(-e.deltaY * 0.0015);
    const [nx, ny] = toWorld(e.offsetX, e.offsetY);
    state.view.cx += wx - nx;
    state.view.cy += wy - ny;
    requestDraw();
  }, { passive: false });
  new ResizeObserver(() => requestDraw()).observe(stage);
}

// ---- start ----
async function afterFirstDraw(): Promise<void> {
  const index = state.index!;
  const label = index.columns.find((c) => c.name === "label");
  const [ids, labels] = await Promise.all([loadIds(index), label ? loadColumn(label) : Promise.resolve(null)]);
  state.ids = ids;
  state.labelValues = labels as Uint16Array | null;
  document.body.dataset.ready = "1";
}

async function main(): Promise<void> {
  const index = await loadIndex();
  state.index = index;
  document.title = `${index.title} · dinoscope`;
  $("title").textContent = `dinoscope · ${index.title}`;
  $("banner").hidden = !index.random_weights;
  $("status").textContent = `${index.n.toLocaleString()} points`;
  scatter = new Scatter($<HTMLCanvasElement>("gl"));
  const maps = $("maps");
  for (const m of index.maps) {
    const b = el("button", m.name);
    b.dataset.map = m.name;
    b.onclick = () => void showMap(m.name);
    maps.append(b);
  }
  const select = $<HTMLSelectElement>("colour");
  select.append(new Option("(none)", ""));
  for (const c of index.columns) select.append(new Option(c.name, c.name));
  const first = index.columns.find((c) => c.name === "label") ?? index.columns.find((c) => c.name === "cluster");
  select.value = first?.name ?? "";
  select.onchange = () => void setColour(select.value);
  for (const t of ["pan", "lasso", "box"] as const) $(`tool-${t}`).onclick = () => setTool(t);
  $("reset").onclick = fit;
  bindPointer();
  const initial = index.maps[0].name;
  await Promise.all([ensureMap(initial), setColour(select.value)]);
  fit();
  await showMap(initial, false);
}

const api = {
  /** Page coordinates (CSS px) of a point of the current map. */
  screenOf(row: number): [number, number] {
    const r = stage.getBoundingClientRect();
    const [sx, sy] = toScreen(state.world!.x[row], state.world!.y[row]);
    return [r.left + sx, r.top + sy];
  },
  selection(): string[] { return state.selection.map(idOf); },
  setMap: (name: string) => showMap(name),
};
(window as unknown as { __dinoscope: typeof api }).__dinoscope = api;

main().catch((err: unknown) => {
  const msg = el("div", `The viewer could not start: ${err instanceof Error ? err.message : String(err)}`, "banner");
  msg.id = "error";
  document.body.prepend(msg);
});
