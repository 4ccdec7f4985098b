// The viewer's shared mutable state: the loaded run, the maps, the view transform, colours, selection, hover.
// Every other module reads and writes it here; nothing is kept in globals or copied.
import type { Column, Index, MapInfo } from "./data";
import { type Affine, Scatter, type View } from "./scatter";
import type { Grid } from "./spatial";

/** The current map's points after its affine, and a grid over them for hover and hit tests. */
export interface World { x: Float32Array; y: Float32Array; grid: Grid }

export const state = {
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

/** The WebGL2 scatter, made once the index is loaded (see initScatter). */
export let scatter: Scatter;
export function initScatter(canvas: HTMLCanvasElement): void { scatter = new Scatter(canvas); }

export function mapInfo(name: string): MapInfo { return state.index!.maps.find((m) => m.name === name)!; }

export function visible(i: number): boolean { return state.alpha[i] !== 0; }
