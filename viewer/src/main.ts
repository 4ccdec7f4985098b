// The dinoscope viewer: every point of every map of a run on a WebGL2 canvas, with the images under the cursor.
// Data and labels come from the run: they are only ever shown with textContent, never parsed as HTML.
//
// This module starts the app; the rest is split by job: state.ts (shared mutable state), dom.ts, coords.ts,
// draw.ts, legend.ts, maps.ts, panels.ts and pointer.ts.
import "./style.css";
import { toScreen } from "./coords";
import { loadColumn, loadIds, loadIndex } from "./data";
import { $, el, stage } from "./dom";
import { fit, onFirstDraw } from "./draw";
import { setColour } from "./legend";
import { ensureMap, showMap } from "./maps";
import { idOf } from "./panels";
import { bindPointer, setTool } from "./pointer";
import { initScatter, state } from "./state";

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
  initScatter($<HTMLCanvasElement>("gl"));
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

onFirstDraw(() => void afterFirstDraw());

main().catch((err: unknown) => {
  const msg = el("div", `The viewer could not start: ${err instanceof Error ? err.message : String(err)}`, "banner");
  msg.id = "error";
  document.body.prepend(msg);
});
