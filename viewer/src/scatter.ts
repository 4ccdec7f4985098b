// The WebGL2 scatter: one vertex buffer per map, a colour buffer, and an animated blend between two maps.

const VERT = `#version 300 es
in vec2 aFrom;
in vec2 aTo;
in vec4 aColour;
uniform vec3 uFrom;   // centre x, centre y, scale: map coordinates -> world
uniform vec3 uTo;
uniform float uT;
uniform vec2 uCentre; // world point at the canvas centre
uniform float uScale; // device pixels per world unit
uniform vec2 uHalf;   // half the canvas in device pixels
uniform float uSize;
out vec4 vColour;
void main() {
  vec2 a = (aFrom - uFrom.xy) * uFrom.z;
  vec2 b = (aTo - uTo.xy) * uTo.z;
  vec2 w = mix(a, b, uT);
  gl_Position = aColour.a == 0.0 ? vec4(2.0, 2.0, 2.0, 1.0) : vec4((w - uCentre) * uScale / uHalf, 0.0, 1.0);
  gl_PointSize = uSize;
  vColour = aColour;
}`;

const FRAG = `#version 300 es
precision mediump float;
in vec4 vColour;
out vec4 outColour;
void main() {
  vec2 d = gl_PointCoord - 0.5;
  float r = dot(d, d);
  if (r > 0.25) discard;
  outColour = vec4(vColour.rgb, 0.85);
}`;

export interface Affine { cx: number; cy: number; s: number }
export interface View { cx: number; cy: number; scale: number }

function compile(gl: WebGL2RenderingContext, type: number, src: string): WebGLShader {
  const sh = gl.createShader(type)!;
  gl.shaderSource(sh, src);
  gl.compileShader(sh);
  if (!gl.getShaderParameter(sh, gl.COMPILE_STATUS)) throw new Error(gl.getShaderInfoLog(sh) ?? "shader error");
  return sh;
}

export class Scatter {
  readonly gl: WebGL2RenderingContext;
  private prog: WebGLProgram;
  private vao: WebGLVertexArrayObject;
  private colours: WebGLBuffer;
  private buffers = new Map<string, WebGLBuffer>();
  private loc: Record<string, WebGLUniformLocation | null> = {};
  n = 0;

  constructor(readonly canvas: HTMLCanvasElement) {
    const gl = canvas.getContext("webgl2", { antialias: false, preserveDrawingBuffer: true });
    if (!gl) throw new Error("this browser has no WebGL2; the viewer needs it");
    this.gl = gl;
    this.prog = gl.createProgram()!;
    gl.attachShader(this.prog, compile(gl, gl.VERTEX_SHADER, VERT));
    gl.attachShader(this.prog, compile(gl, gl.FRAGMENT_SHADER, FRAG));
    gl.bindAttribLocation(this.prog, 0, "aFrom");
    gl.bindAttribLocation(this.prog, 1, "aTo");
    gl.bindAttribLocation(this.prog, 2, "aColour");
    gl.linkProgram(this.prog);
    if (!gl.getProgramParameter(this.prog, gl.LINK_STATUS)) throw new Error(gl.getProgramInfoLog(this.prog) ?? "link");
    for (const u of ["uFrom", "uTo", "uT", "uCentre", "uScale", "uHalf", "uSize"]) {
      this.loc[u] = gl.getUniformLocation(this.prog, u);
    }
    this.vao = gl.createVertexArray()!;
    this.colours = gl.createBuffer()!;
  }

  /** Upload one map's coordinates (x, y interleaved) under its name. */
  setMap(name: string, xy: Float32Array): void {
    const gl = this.gl;
    const buf = this.buffers.get(name) ?? gl.createBuffer()!;
    gl.bindBuffer(gl.ARRAY_BUFFER, buf);
    gl.bufferData(gl.ARRAY_BUFFER, xy, gl.STATIC_DRAW);
    this.buffers.set(name, buf);
    this.n = xy.length / 2;
  }

  setColours(rgba: Uint8Array): void {
    const gl = this.gl;
    gl.bindBuffer(gl.ARRAY_BUFFER, this.colours);
    gl.bufferData(gl.ARRAY_BUFFER, rgba, gl.DYNAMIC_DRAW);
  }

  /** Resize the drawing buffer to the element's size in device pixels; returns the pixel ratio. */
  resize(): number {
    const dpr = window.devicePixelRatio || 1;
    const w = Math.max(1, Math.round(this.canvas.clientWidth * dpr));
    const h = Math.max(1, Math.round(this.canvas.clientHeight * dpr));
    if (this.canvas.width !== w || this.canvas.height !== h) {
      this.canvas.width = w;
      this.canvas.height = h;
    }
    return dpr;
  }

  draw(from: string, fromAff: Affine, to: string, toAff: Affine, t: number, view: View, size: number): void {
    const gl = this.gl;
    const dpr = this.resize();
    gl.viewport(0, 0, this.canvas.width, this.canvas.height);
    gl.clearColor(1, 1, 1, 1);
    gl.clear(gl.COLOR_BUFFER_BIT);
    gl.enable(gl.BLEND);
    gl.blendFunc(gl.SRC_ALPHA, gl.ONE_MINUS_SRC_ALPHA);
    gl.useProgram(this.prog);
    gl.bindVertexArray(this.vao);
    const attach = (loc: number, buf: WebGLBuffer, size: number, type: number, normalized: boolean) => {
      gl.bindBuffer(gl.ARRAY_BUFFER, buf);
      gl.enableVertexAttribArray(loc);
      gl.vertexAttribPointer(loc, size, type, normalized, 0, 0);
    };
    attach(0, this.buffers.get(from)!, 2, gl.FLOAT, false);
    attach(1, this.buffers.get(to)!, 2, gl.FLOAT, false);
    attach(2, this.colours, 4, gl.UNSIGNED_BYTE, true);
    gl.uniform3f(this.loc.uFrom, fromAff.cx, fromAff.cy, fromAff.s);
    gl.uniform3f(this.loc.uTo, toAff.cx, toAff.cy, toAff.s);
    gl.uniform1f(this.loc.uT, t);
    gl.uniform2f(this.loc.uCentre, view.cx, view.cy);
    gl.uniform1f(this.loc.uScale, view.scale * dpr);
    gl.uniform2f(this.loc.uHalf, this.canvas.width / 2, this.canvas.height / 2);
    gl.uniform1f(this.loc.uSize, size * dpr);
    gl.drawArrays(gl.POINTS, 0, this.n);
  }
}
