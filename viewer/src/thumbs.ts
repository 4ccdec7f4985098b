// Thumbnails from the atlases in thumbs/, each atlas loaded the first time one of its images is shown.
import type { ThumbInfo } from "./data";

const atlases = new Map<number, Promise<HTMLImageElement>>();

function atlas(info: ThumbInfo, a: number): Promise<HTMLImageElement> {
  let p = atlases.get(a);
  if (!p) {
    p = new Promise((resolve, reject) => {
      const img = new Image();
      img.onload = () => resolve(img);
      img.onerror = () => reject(new Error(`thumbs/${info.files[a]} did not load`));
      img.src = `thumbs/${info.files[a]}`;
    });
    atlases.set(a, p);
  }
  return p;
}

/** Draw point `row`'s thumbnail into `canvas` (sized to one cell); resolves true when drawn. */
export async function drawThumb(info: ThumbInfo | null, row: number, canvas: HTMLCanvasElement): Promise<boolean> {
  if (!info) return false;
  const a = Math.floor(row / info.per_atlas), j = row % info.per_atlas;
  const img = await atlas(info, a);
  canvas.width = info.size;
  canvas.height = info.size;
  const ctx = canvas.getContext("2d")!;
  ctx.drawImage(img, (j % info.cols) * info.size, Math.floor(j / info.cols) * info.size, info.size, info.size,
    0, 0, info.size, info.size);
  canvas.dataset.row = String(row);
  return true;
}
