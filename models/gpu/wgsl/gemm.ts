import { prelude, RUN_STRUCT, type ShaderOptions } from './common.ts';

/**
 * General dense matmul for the small LoRA products of training (forward and backward):
 *   C (M, N) = alpha * op(A) (M, K) @ op(B) (K, N) + beta * C
 * op(A) = A stored (M, K) row-major, or with transA A stored (K, M) and read transposed;
 * op(B) = B stored (K, N), or with transB B stored (N, K). Row strides are the logical widths.
 * Math and accumulation in f32 whatever the storage types; with beta == 0, C is never read.
 *
 * Bindings: 0 run (Run), 1 gm (Gemm, 32 bytes: see gemmParams), 2 a, 3 b, 4 c (read_write).
 * Dispatch: gemmGrid(tile, M, N) workgroups of 256 threads. A dimension given as 'T' is run.T, read
 * by the kernel, so one bind group serves any T: size the grid from T at encode time (gemmDim), or
 * from the largest T (idle tiles exit at once).
 *
 * The LoRA cases (x (T, K), A (r, K), B (N, r), s = alpha / r), with pickGemmTile(M, N):
 *   xa (T, r)  = x A^T                 transB          M=T  N=r  K=K
 *   y  (T, N) += s * xa B^T             transB, beta 1  M=T  N=N  K=r
 *   dB (N, r) += s * dy^T xa            transA, beta 1  M=N  N=r  K=T
 *   dxa(T, r)  = s * dy B               -               M=T  N=r  K=N
 *   dA (r, K) += dxa^T x                transA, beta 1  M=r  N=K  K=T
 *   dx (T, K) += dxa A                  beta 1          M=T  N=K  K=r
 */
export interface GemmOptions extends ShaderOptions {
  transA: boolean;
  transB: boolean;
  /** Storage type of each operand: activations ('T', f16 with shader-f16) or f32. */
  a: 'T' | 'f32';
  b: 'T' | 'f32';
  c: 'T' | 'f32';
  /** Output tile per workgroup (powers of two, 256 <= m * n <= 4096), e.g. pickGemmTile(M, N); default 32x32. */
  tile?: GemmTile;
}

export interface GemmTile {
  m: number;
  n: number;
}

/** A size of the product: a number, or 'T' for the run's token count (run.T, read at dispatch). */
export type GemmDim = number | 'T';

/** C (M, N) = alpha op(A) (M, K) op(B) (K, N) + beta C; alpha defaults to 1, beta to 0. */
export interface GemmShape {
  M: GemmDim;
  N: GemmDim;
  K: GemmDim;
  alpha?: number;
  beta?: number;
}

/** Bits of Gemm.fromT: which of M, N, K the kernel takes from run.T. */
const FROM_T = { M: 1, N: 2, K: 4 } as const;

const THREADS = 256;
/** Workgroup memory budget for the two operand tiles (the WebGPU default limit is 16 KiB). */
const SMEM_BUDGET = 12 * 1024;
/** Products are summed in blocks of this many k before joining the total: rounding error then grows
 * with ~128 + K/128 additions instead of K (K = T or N up to 14336). */
const CHUNK = 128;

const isPow2 = (v: number) => Number.isInteger(v) && v > 0 && (v & (v - 1)) === 0;
const pow2ceil = (v: number) => 2 ** Math.ceil(Math.log2(Math.max(1, v)));

/**
 * A tile that fits the product's shape: when one side of C is a LoRA rank (<= 64), the tile is as
 * narrow as that side (so no thread computes padding) and long on the other, 4 outputs per thread.
 * Pass the largest M, N the pipeline will see (r is fixed per adapter, T varies).
 */
export function pickGemmTile(M: number, N: number): GemmTile {
  if (N <= 64 && N <= M) {
    const n = Math.max(4, pow2ceil(N));
    return { m: Math.min(256, Math.max(16, 1024 / n)), n };
  }
  if (M <= 64 && M < N) {
    const m = Math.max(4, pow2ceil(M));
    return { m, n: Math.min(256, Math.max(16, 1024 / m)) };
  }
  return { m: 32, n: 32 };
}

/** Workgroups for C (M, N): x over N, y over M. */
export function gemmGrid(tile: GemmTile, M: number, N: number): [number, number, number] {
  return [Math.ceil(N / tile.n), Math.ceil(M / tile.m), 1];
}

/** The size `d` stands for at T tokens. @example gemmGrid(tile, gemmDim(shape.M, T), gemmDim(shape.N, T)) */
export function gemmDim(d: GemmDim, T: number): number {
  return d === 'T' ? T : d;
}

/**
 * The 32-byte Gemm uniform: M, N, K (0 where 'T'), fromT (bits of the 'T' dimensions), alpha, beta.
 * @example gemmParams({ M: 'T', N: r, K: inDim }) // xa (T, r) = x A^T for any T
 */
export function gemmParams(p: GemmShape): ArrayBuffer {
  const data = new ArrayBuffer(32);
  const u = new Uint32Array(data), f = new Float32Array(data);
  const size = (d: GemmDim) => (d === 'T' ? 0 : d);
  const fromT = (p.M === 'T' ? FROM_T.M : 0) | (p.N === 'T' ? FROM_T.N : 0) | (p.K === 'T' ? FROM_T.K : 0);
  u[0] = size(p.M); u[1] = size(p.N); u[2] = size(p.K); u[3] = fromT;
  f[4] = p.alpha ?? 1; f[5] = p.beta ?? 0;
  return data;
}

/** Thread layout tx * ty = 256 over the tile, each thread rm x rn outputs, as square as possible. */
function layout(tile: GemmTile): { tx: number; ty: number; rm: number; rn: number; bk: number } {
  const { m, n } = tile;
  if (!isPow2(m) || !isPow2(n) || m * n < THREADS || m * n > 16 * THREADS) {
    throw new Error(`gemm tile ${m}x${n}: need powers of two with 256 <= m * n <= 4096`);
  }
  let best: { tx: number; ty: number; rm: number; rn: number } | null = null;
  for (let tx = 1; tx <= THREADS; tx *= 2) {
    const ty = THREADS / tx;
    if (tx > n || ty > m) continue;
    const cand = { tx, ty, rm: m / ty, rn: n / tx };
    const skew = Math.abs(Math.log2(cand.rm / cand.rn));
    // Ties go to the wider tx: consecutive threads then store consecutive columns of C.
    if (!best || skew <= Math.abs(Math.log2(best.rm / best.rn))) best = cand;
  }
  if (!best) throw new Error(`gemm tile ${m}x${n}: no thread layout`);
  // k-depth of the operand tiles: as deep as the workgroup memory budget allows (rows padded by 1).
  let bk = 32;
  while (bk > 4 && bk * (m + n + 2) * 4 > SMEM_BUDGET) bk /= 2;
  return { ...best, bk };
}

export function gemmWgsl(o: GemmOptions): string {
  const tile = o.tile ?? { m: 32, n: 32 };
  const { tx, ty, rm, rn, bk } = layout(tile);
  const BM = tile.m, BN = tile.n;
  // Shared tiles are k-major (at[k][m], bt[k][n]) so the inner loop reads a thread's m / n
  // values at a stride of ty / tx; rows padded by one word so transposing loads spread over banks.
  const SA = BM + 1, SB = BN + 1;
  // Global loads walk the operand's contiguous dimension with consecutive threads (coalesced).
  const loadA = o.transA
    ? `let mm = e % ${BM}u; let kk = e / ${BM}u; let m = m0 + mm; let k = k0 + kk;
      var v = 0.0;
      if (m < M && k < K) { v = f32(a[k * M + m]); }`
    : `let kk = e % ${bk}u; let mm = e / ${bk}u; let m = m0 + mm; let k = k0 + kk;
      var v = 0.0;
      if (m < M && k < K) { v = f32(a[m * K + k]); }`;
  const loadB = o.transB
    ? `let kk = e % ${bk}u; let nn = e / ${bk}u; let n = n0 + nn; let k = k0 + kk;
      var v = 0.0;
      if (n < N && k < K) { v = f32(b[n * K + k]); }`
    : `let nn = e % ${BN}u; let kk = e / ${BN}u; let n = n0 + nn; let k = k0 + kk;
      var v = 0.0;
      if (n < N && k < K) { v = f32(b[k * N + n]); }`;
  const chunkTiles = Math.max(1, CHUNK / bk);
  return `${prelude(o)}${RUN_STRUCT}
struct Gemm { M: u32, N: u32, K: u32, fromT: u32, alpha: f32, beta: f32, p0: u32, p1: u32 }
alias TA = ${o.a};
alias TB = ${o.b};
alias TC = ${o.c};
@group(0) @binding(0) var<uniform> run: Run;
@group(0) @binding(1) var<uniform> gm: Gemm;
@group(0) @binding(2) var<storage, read> a: array<TA>;
@group(0) @binding(3) var<storage, read> b: array<TB>;
@group(0) @binding(4) var<storage, read_write> c: array<TC>;
// tile ${BM}x${BN}, ${tx}x${ty} threads of ${rm}x${rn} outputs, k-depth ${bk}
var<workgroup> at: array<f32, ${bk * SA}>; // [k][m]
var<workgroup> bt: array<f32, ${bk * SB}>; // [k][n]

@compute @workgroup_size(${THREADS})
fn main(@builtin(workgroup_id) wid: vec3u, @builtin(local_invocation_index) li: u32) {
  let M = select(gm.M, run.T, (gm.fromT & ${FROM_T.M}u) != 0u);
  let N = select(gm.N, run.T, (gm.fromT & ${FROM_T.N}u) != 0u);
  let K = select(gm.K, run.T, (gm.fromT & ${FROM_T.K}u) != 0u);
  let n0 = wid.x * ${BN}u;
  let m0 = wid.y * ${BM}u;
  if (m0 >= M || n0 >= N) { return; } // grid sized for the largest T: whole idle tiles leave early
  let tx = li % ${tx}u;
  let ty = li / ${tx}u;
  var acc: array<f32, ${rm * rn}>;
  var part: array<f32, ${rm * rn}>;
  let tiles = (K + ${bk - 1}u) / ${bk}u;
  for (var t = 0u; t < tiles; t++) {
    let k0 = t * ${bk}u;
    for (var e = li; e < ${BM * bk}u; e += ${THREADS}u) {
      ${loadA}
      at[kk * ${SA}u + mm] = v;
    }
    for (var e = li; e < ${BN * bk}u; e += ${THREADS}u) {
      ${loadB}
      bt[kk * ${SB}u + nn] = v;
    }
    workgroupBarrier();
    for (var kk = 0u; kk < ${bk}u; kk++) {
      var av: array<f32, ${rm}>;
      for (var i = 0u; i < ${rm}u; i++) { av[i] = at[kk * ${SA}u + ty + ${ty}u * i]; }
      for (var j = 0u; j < ${rn}u; j++) {
        let bv = bt[kk * ${SB}u + tx + ${tx}u * j];
        for (var i = 0u; i < ${rm}u; i++) { part[i * ${rn}u + j] += av[i] * bv; }
      }
    }
    workgroupBarrier();
    // Blocked summation: long reductions (T or N up to 14336) keep f32 accuracy.
    if ((t + 1u) % ${chunkTiles}u == 0u || t + 1u == tiles) {
      for (var i = 0u; i < ${rm * rn}u; i++) { acc[i] += part[i]; part[i] = 0.0; }
    }
  }
  for (var i = 0u; i < ${rm}u; i++) {
    let m = m0 + ty + ${ty}u * i;
    for (var j = 0u; j < ${rn}u; j++) {
      let n = n0 + tx + ${tx}u * j;
      if (m < M && n < N) {
        var v = gm.alpha * acc[i * ${rn}u + j];
        if (gm.beta != 0.0) { v += gm.beta * f32(c[m * N + n]); }
        c[m * N + n] = TC(v);
      }
    }
  }
}
`;
}
