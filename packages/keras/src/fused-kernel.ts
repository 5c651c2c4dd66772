/**
 * The fused trainer's WebAssembly kernel (kernel/mlp.c, built into mlp-wasm.ts): the module,
 * compiled once; an instance with its exports checked by kind and its memory laid out for a
 * network and a largest batch; and the tfjs weights packed into the kernel's padded layout and back.
 */
import { MLP_WASM_BASE64 } from "./mlp-wasm.js";

/** The slice of the WebAssembly JS API used here (the workspace's type libraries omit it). */
declare const WebAssembly: {
  Module: new (bytes: Uint8Array) => object;
  Instance: new (module: object, imports: object) => { exports: Record<string, unknown> };
};

export interface KernelExports {
  memory: { buffer: ArrayBuffer; grow(pages: number): number };
  __heap_base: { value: number };
  param_count(d: number, h: number): number;
  grad(x: number, y: number, n: number, d: number, h: number, scale: number, w: number, g: number, scratch: number): number;
  add_into(a: number, b: number, n: number): void;
  adam(
    w: number,
    g: number,
    m: number,
    v: number,
    n: number,
    lr: number,
    beta1: number,
    beta2: number,
    eps: number,
    c1: number,
    c2: number,
  ): void;
  forward(x: number, y: number, n: number, d: number, h: number, w: number, out: number, scratch: number): number;
}

/** The kernel's exports, each checked to be of its kind (a rebuilt kernel that lost one fails here, by name). */
function kernelExports(exports: Record<string, unknown>): KernelExports {
  const { memory, __heap_base: heapBase } = exports;
  if (!isMemory(memory)) throw new Error("fused kernel: no exported memory");
  if (!isGlobal(heapBase)) throw new Error("fused kernel: no exported __heap_base");
  const fn = (name: string): ((...args: number[]) => number) => {
    const f = exports[name];
    if (!isKernelFunction(f)) throw new Error(`fused kernel: no exported function ${name}`);
    return f;
  };
  return {
    memory,
    __heap_base: heapBase,
    param_count: fn("param_count"),
    grad: fn("grad"),
    add_into: fn("add_into"),
    adam: fn("adam"),
    forward: fn("forward"),
  };
}

function isMemory(v: unknown): v is KernelExports["memory"] {
  return (
    typeof v === "object" && v !== null && "buffer" in v && v.buffer instanceof ArrayBuffer && "grow" in v && typeof v.grow === "function"
  );
}

function isGlobal(v: unknown): v is KernelExports["__heap_base"] {
  return typeof v === "object" && v !== null && "value" in v && typeof v.value === "number";
}

/** Every kernel function takes numbers (i32, f32, pointers) and returns a number or nothing. */
function isKernelFunction(v: unknown): v is (...args: number[]) => number {
  return typeof v === "function";
}

/** Layer 1's 30 units padded to 32 lanes (kernel/mlp.c's P1). */
const P1 = 32;
/** A batch's fixed chunk count: the gradient is always the sum of these chunks' gradients, in order. */
export const CHUNKS = 2;

let moduleCache: object | undefined;
export function kernelModule(): object {
  moduleCache ??= new WebAssembly.Module(Buffer.from(MLP_WASM_BASE64, "base64"));
  return moduleCache;
}

export const pad4 = (n: number) => (n + 3) & ~3;

/** One kernel instance with its memory laid out for a network and a largest batch. */
export class Kernel {
  readonly k: KernelExports;
  readonly np: number;
  readonly p2: number;
  /** Byte offsets in the kernel's memory. */
  readonly w: number;
  readonly g: number[];
  readonly m: number;
  readonly v: number;
  readonly scratch: number;
  readonly x: number;
  readonly y: number;
  readonly out: number;

  constructor(
    readonly d: number,
    readonly h: number,
    readonly maxRows: number,
  ) {
    this.k = kernelExports(new WebAssembly.Instance(kernelModule(), {}).exports);
    this.np = this.k.param_count(d, h);
    this.p2 = pad4(h);
    let at = (this.k.__heap_base.value + 15) & ~15;
    const take = (floats: number) => {
      const here = at;
      at += pad4(floats) * 4;
      return here;
    };
    this.w = take(this.np);
    this.g = Array.from({ length: CHUNKS }, () => take(this.np));
    this.m = take(this.np);
    this.v = take(this.np);
    this.scratch = take(3 * this.p2 + P1 * this.p2 + P1);
    this.x = take(maxRows * d);
    this.y = take(maxRows);
    this.out = take(maxRows);
    const have = this.k.memory.buffer.byteLength;
    if (at > have) this.k.memory.grow(Math.ceil((at - have) / 65536));
  }

  f32(offset: number, length: number): Float32Array {
    return new Float32Array(this.k.memory.buffer, offset, length);
  }
}

/**
 * The tfjs weights (kernel [D,30], bias [30], kernel [30,H], bias [H], kernel [H,1], bias [1])
 * packed into the kernel's padded layout, and back.
 */
export function packWeights(weights: Float32Array[], d: number, h: number, into: Float32Array): void {
  const p2 = pad4(h);
  const [w1, b1, w2, b2, w3, b3] = weights;
  into.fill(0);
  for (let i = 0; i < d; i++) for (let j = 0; j < 30; j++) into[i * P1 + j] = w1[i * 30 + j];
  let o = d * P1;
  for (let j = 0; j < 30; j++) into[o + j] = b1[j];
  o += P1;
  for (let j = 0; j < 30; j++) for (let k = 0; k < h; k++) into[o + j * p2 + k] = w2[j * h + k];
  o += P1 * p2;
  for (let k = 0; k < h; k++) into[o + k] = b2[k];
  o += p2;
  for (let k = 0; k < h; k++) into[o + k] = w3[k];
  o += p2;
  into[o] = b3[0];
}

export function unpackWeights(from: Float32Array, d: number, h: number): Float32Array[] {
  const p2 = pad4(h);
  const w1 = new Float32Array(d * 30);
  const b1 = new Float32Array(30);
  const w2 = new Float32Array(30 * h);
  const b2 = new Float32Array(h);
  const w3 = new Float32Array(h);
  for (let i = 0; i < d; i++) for (let j = 0; j < 30; j++) w1[i * 30 + j] = from[i * P1 + j];
  let o = d * P1;
  for (let j = 0; j < 30; j++) b1[j] = from[o + j];
  o += P1;
  for (let j = 0; j < 30; j++) for (let k = 0; k < h; k++) w2[j * h + k] = from[o + j * p2 + k];
  o += P1 * p2;
  for (let k = 0; k < h; k++) b2[k] = from[o + k];
  o += p2;
  for (let k = 0; k < h; k++) w3[k] = from[o + k];
  o += p2;
  return [w1, b1, w2, b2, w3, Float32Array.of(from[o])];
}
