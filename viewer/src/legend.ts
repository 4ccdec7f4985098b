// Colour and legend: the colour-by column, the points' colours (hidden categories, faded non-selection), the legend.
import { categoryColour, pointColours, RAMP_CSS } from "./colors";
import { loadColumn } from "./data";
import { $, el } from "./dom";
import { requestDraw } from "./draw";
import { scatter, state } from "./state";

export async function setColour(name: string): Promise<void> {
  const index = state.index!;
  state.colour = index.columns.find((c) => c.name === name) ?? null;
  state.values = state.colour ? await loadColumn(state.colour) : null;
  state.hidden.clear();
  recolour();
  renderLegend();
}

export function recolour(): void {
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
