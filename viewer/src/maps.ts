// Maps: fetching a map's points on first use, its affine into the unit square, and switching the shown map.
import { type MapInfo, loadMap } from "./data";
import { $ } from "./dom";
import { requestDraw, TRANSITION_MS } from "./draw";
import { renderSettings } from "./panels";
import type { Affine } from "./scatter";
import { Grid } from "./spatial";
import { mapInfo, scatter, state, visible } from "./state";

function affineOf(info: MapInfo): Affine {
  if (info.disk) return { cx: 0, cy: 0, s: 1 };
  const [x0, y0, x1, y1] = info.bounds;
  return { cx: (x0 + x1) / 2, cy: (y0 + y1) / 2, s: 2 / Math.max(x1 - x0, y1 - y0, 1e-12) };
}

export async function ensureMap(name: string): Promise<void> {
  if (state.coords.has(name)) return;
  const info = mapInfo(name);
  const xy = await loadMap(info);
  state.coords.set(name, xy);
  state.affine.set(name, affineOf(info));
  scatter.setMap(name, xy);
}

function buildWorld(name: string): void {
  const xy = state.coords.get(name)!, a = state.affine.get(name)!, n = xy.length / 2;
  const x = new Float32Array(n), y = new Float32Array(n);
  for (let i = 0; i < n; i++) { x[i] = (xy[2 * i] - a.cx) * a.s; y[i] = (xy[2 * i + 1] - a.cy) * a.s; }
  state.world = { x, y, grid: new Grid(x, y, visible) };
}

export async function showMap(name: string, animate = true): Promise<void> {
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
