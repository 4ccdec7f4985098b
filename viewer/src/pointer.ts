// Pointer: the tool buttons, hover and its tooltip, pan, wheel zoom, lasso and box selection, click for detail.
import { pointSize, toWorld } from "./coords";
import { $, stage } from "./dom";
import { requestDraw } from "./draw";
import { idOf, labelOf, showDetail, showSelection } from "./panels";
import { insidePolygon } from "./spatial";
import { state, visible } from "./state";
import { drawThumb } from "./thumbs";

const HOVER_PX = 8;

export function setTool(tool: typeof state.tool): void {
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

export function bindPointer(): void {
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
