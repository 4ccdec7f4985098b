// The run's prepared data: index.json and little-endian binary arrays (see dinoscope/server/viewer_data.py).

export interface MapInfo {
  name: string;
  file: string;
  disk: boolean;
  bounds: [number, number, number, number];
  hierarchy?: { lines: number[][]; leaves: { name: string; x: number; y: number }[] } | null;
}

export interface CategoryColumn { name: string; kind: "category"; file: string; categories: string[]; counts: number[] }
export interface NumberColumn { name: string; kind: "number"; file: string; min: number; max: number }
export type Column = CategoryColumn | NumberColumn;

export interface ThumbInfo { size: number; cols: number; per_atlas: number; files: string[] }

export interface Index {
  title: string;
  n: number;
  random_weights: boolean;
  settings: Record<string, unknown>;
  metrics: Record<string, Record<string, unknown>>;
  maps: MapInfo[];
  columns: Column[];
  neighbors: { file: string; k: number } | null;
  ids: string;
  thumbs: ThumbInfo | null;
}

async function fetchOk(url: string): Promise<Response> {
  const res = await fetch(url);
  if (!res.ok) throw new Error(`${url}: HTTP ${res.status}`);
  return res;
}

export async function loadIndex(): Promise<Index> {
  return (await fetchOk("data/index.json")).json();
}

const cache = new Map<string, Promise<ArrayBuffer>>();

/** One binary file of the data folder, fetched once. */
export function loadBuffer(file: string): Promise<ArrayBuffer> {
  let p = cache.get(file);
  if (!p) {
    p = fetchOk(`data/${file}`).then((r) => r.arrayBuffer());
    cache.set(file, p);
  }
  return p;
}

export async function loadMap(info: MapInfo): Promise<Float32Array> {
  return new Float32Array(await loadBuffer(info.file));
}

export async function loadColumn(col: Column): Promise<Uint16Array | Float32Array> {
  const buf = await loadBuffer(col.file);
  return col.kind === "category" ? new Uint16Array(buf) : new Float32Array(buf);
}

export async function loadIds(index: Index): Promise<string[]> {
  return (await fetchOk(`data/${index.ids}`)).json();
}
