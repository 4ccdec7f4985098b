// Coordinates: world (a map after its affine) <-> CSS pixels of the stage, and the point size at the current zoom.
import { stage } from "./dom";
import { state } from "./state";

export function toScreen(wx: number, wy: number): [number, number] {
  const v = state.view;
  return [(wx - v.cx) * v.scale + stage.clientWidth / 2, stage.clientHeight / 2 - (wy - v.cy) * v.scale];
}
export function toWorld(sx: number, sy: number): [number, number] {
  const v = state.view;
  return [(sx - stage.clientWidth / 2) / v.scale + v.cx, (stage.clientHeight / 2 - sy) / v.scale + v.cy];
}

export function pointSize(): number {
  const n = state.index?.n ?? 1;
  const base = Math.max(1.5, Math.min(8, 18 / Math.pow(n, 0.22)));
  return base * Math.min(4, Math.sqrt(Math.max(1, state.view.scale / state.fitScale)));
}
