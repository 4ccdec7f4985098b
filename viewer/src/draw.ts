// Drawing: one frame per animation frame at most, the eased transition between maps, and the 2D overlay
// (the disk's outline and hierarchy, the hover and detail rings, the lasso).
import { pointSize, toScreen } from "./coords";
import { overlay, stage } from "./dom";
import { mapInfo, scatter, state } from "./state";

export const TRANSITION_MS = 700;

let frameQueued = false;
let firstDrawHook: () => void = () => {};

/** Run `hook` once, right after the first frame has been drawn. */
export function onFirstDraw(hook: () => void): void { firstDrawHook = hook; }

/** Reset the view so the whole map fits the stage, and redraw. */
export function fit(): void {
  state.fitScale = Math.min(stage.clientWidth, stage.clientHeight) / 2 * 0.92;
  state.view = { cx: 0, cy: 0, scale: state.fitScale };
  requestDraw();
}

export function requestDraw(): void {
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
    firstDrawHook();
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
