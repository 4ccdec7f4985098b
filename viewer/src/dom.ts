// DOM helpers and the stage's elements. `el` sets text with textContent only: run data is never parsed as HTML.
export const $ = <T extends HTMLElement>(id: string) => document.getElementById(id) as T;
export const el = <K extends keyof HTMLElementTagNameMap>(tag: K, text?: string, cls?: string): HTMLElementTagNameMap[K] => {
  const e = document.createElement(tag);
  if (text !== undefined) e.textContent = text;
  if (cls) e.className = cls;
  return e;
};

export const stage = $<HTMLDivElement>("stage");
export const overlay = $<HTMLCanvasElement>("overlay");
