/*
 * The fused training step of the seed's network (Dense(30, relu) -> Dense(H, relu) -> Dense(1),
 * MSE, Adam) for WebAssembly with 128-bit SIMD: forward, backward and the gradient sums of a chunk
 * of a batch in one call, per sample, every layer vectorised across its output units.
 * Build: packages/keras/kernel/build.sh (clang --target=wasm32 -msimd128, no libc); the module's
 * bytes are committed in src/mlp-wasm.ts, so nothing is compiled at install or run time.
 *
 * Layout (floats, all offsets chosen by the caller): the parameters are one array so Adam runs
 * over it in a single pass and a replica receives it in one copy:
 *   W1 [D][P1]  b1 [P1]  W2 [P1][P2]  b2 [P2]  W3 [P2]  b3 [4]
 * with P1 = 32 (30 units padded) and P2 = H rounded up to 4. Padding weights are zero and stay
 * zero (their gradients are exactly zero: a padded unit's pre-activation is 0, relu'(0) = 0), so
 * no loop needs a remainder. Every sum runs in a fixed order, with no fused multiply-add (wasm
 * SIMD has none), so results depend only on the inputs: the same bits on every machine.
 */
#include <wasm_simd128.h>

#define P1 32
#define Q1 (P1 / 4)

static inline v128_t relu(v128_t a) { return wasm_f32x4_max(a, wasm_f32x4_splat(0.0f)); }
static inline float hsum(v128_t a) {
  return (wasm_f32x4_extract_lane(a, 0) + wasm_f32x4_extract_lane(a, 1)) + (wasm_f32x4_extract_lane(a, 2) + wasm_f32x4_extract_lane(a, 3));
}

/* Offsets of the parts of the parameter array (in floats). */
static inline int offB1(int d) { return d * P1; }
static inline int offW2(int d) { return offB1(d) + P1; }
static inline int offB2(int d, int p2) { return offW2(d) + P1 * p2; }
static inline int offW3(int d, int p2) { return offB2(d, p2) + p2; }
static inline int offB3(int d, int p2) { return offW3(d, p2) + p2; }

__attribute__((export_name("param_count"))) int param_count(int d, int h) {
  int p2 = (h + 3) & ~3;
  return offB3(d, p2) + 4;
}

/* Layer 1 of one sample into h1 (registers), stored to h1f for the scalar reads of layer 2. */
static inline void layer1(const float *x, int d, const float *w1, const float *b1, v128_t *h1, float *h1f) {
  for (int q = 0; q < Q1; q++) h1[q] = wasm_v128_load(b1 + 4 * q);
  for (int i = 0; i < d; i++) {
    v128_t xs = wasm_f32x4_splat(x[i]);
    const float *row = w1 + i * P1;
    for (int q = 0; q < Q1; q++) h1[q] = wasm_f32x4_add(h1[q], wasm_f32x4_mul(xs, wasm_v128_load(row + 4 * q)));
  }
  for (int q = 0; q < Q1; q++) {
    h1[q] = relu(h1[q]);
    wasm_v128_store(h1f + 4 * q, h1[q]);
  }
}

/* Layers 2 and 3: h2 into h2f, returns the output. */
static inline float layer23(const float *h1f, int p2, const float *w2, const float *b2, const float *w3, float b3, float *h2f) {
  v128_t o = wasm_f32x4_splat(0.0f);
  for (int k = 0; k < p2; k += 4) {
    v128_t acc = wasm_v128_load(b2 + k);
    for (int j = 0; j < 30; j++) acc = wasm_f32x4_add(acc, wasm_f32x4_mul(wasm_f32x4_splat(h1f[j]), wasm_v128_load(w2 + j * p2 + k)));
    acc = relu(acc);
    wasm_v128_store(h2f + k, acc);
    o = wasm_f32x4_add(o, wasm_f32x4_mul(acc, wasm_v128_load(w3 + k)));
  }
  return hsum(o) + b3;
}

/*
 * Gradient of (scale / 2) * sum of squared errors over samples [0, n) of x (n rows of d floats)
 * and y, written to g (zeroed first; same layout as w). scale is 2 / batch size, so the chunks
 * of a batch add up to the gradient of its mean squared error. scratch holds 3 * p2 + P1 * p2
 * floats. Returns the sum of squared errors (before the update), in double.
 */
__attribute__((export_name("grad"))) double grad(const float *x, const float *y, int n, int d, int h, float scale, const float *w, float *g, float *scratch) {
  int p2 = (h + 3) & ~3;
  const float *w1 = w, *b1 = w + offB1(d), *w2 = w + offW2(d), *b2 = w + offB2(d, p2), *w3 = w + offW3(d, p2);
  float b3 = w[offB3(d, p2)];
  float *gw1 = g, *gb1 = g + offB1(d), *gw2 = g + offW2(d), *gb2 = g + offB2(d, p2), *gw3 = g + offW3(d, p2);
  int np = param_count(d, h);
  for (int i = 0; i < np; i += 4) wasm_v128_store(g + i, wasm_f32x4_splat(0.0f));
  float *h2f = scratch, *dh2f = scratch + p2, *h1f = scratch + 2 * p2, *w2t = scratch + 2 * p2 + P1;
  /* W2 transposed ([p2][P1]): the backward pass to layer 1 then runs across layer 1's units. */
  for (int j = 0; j < P1; j++)
    for (int k = 0; k < p2; k++) w2t[k * P1 + j] = w2[j * p2 + k];
  float gb3 = 0.0f;
  double sse = 0.0;
  v128_t h1[Q1], dh1[Q1];
  for (int s = 0; s < n; s++) {
    const float *xs = x + s * d;
    layer1(xs, d, w1, b1, h1, h1f);
    float out = layer23(h1f, p2, w2, b2, w3, b3, h2f);
    float err = out - y[s];
    sse += (double)err * (double)err;
    float dout = scale * err;
    gb3 += dout;
    v128_t dov = wasm_f32x4_splat(dout);
    for (int k = 0; k < p2; k += 4) {
      v128_t h2 = wasm_v128_load(h2f + k);
      v128_t dh2 = wasm_v128_and(wasm_f32x4_mul(dov, wasm_v128_load(w3 + k)), wasm_f32x4_gt(h2, wasm_f32x4_splat(0.0f)));
      wasm_v128_store(gw3 + k, wasm_f32x4_add(wasm_v128_load(gw3 + k), wasm_f32x4_mul(dov, h2)));
      wasm_v128_store(gb2 + k, wasm_f32x4_add(wasm_v128_load(gb2 + k), dh2));
      wasm_v128_store(dh2f + k, dh2);
      for (int j = 0; j < 30; j++) {
        float *p = gw2 + j * p2 + k;
        wasm_v128_store(p, wasm_f32x4_add(wasm_v128_load(p), wasm_f32x4_mul(wasm_f32x4_splat(h1f[j]), dh2)));
      }
    }
    for (int q = 0; q < Q1; q++) dh1[q] = wasm_f32x4_splat(0.0f);
    for (int k = 0; k < h; k++) {
      v128_t sk = wasm_f32x4_splat(dh2f[k]);
      const float *row = w2t + k * P1;
      for (int q = 0; q < Q1; q++) dh1[q] = wasm_f32x4_add(dh1[q], wasm_f32x4_mul(sk, wasm_v128_load(row + 4 * q)));
    }
    for (int q = 0; q < Q1; q++) {
      dh1[q] = wasm_v128_and(dh1[q], wasm_f32x4_gt(h1[q], wasm_f32x4_splat(0.0f)));
      wasm_v128_store(gb1 + 4 * q, wasm_f32x4_add(wasm_v128_load(gb1 + 4 * q), dh1[q]));
    }
    for (int i = 0; i < d; i++) {
      v128_t xv = wasm_f32x4_splat(xs[i]);
      float *row = gw1 + i * P1;
      for (int q = 0; q < Q1; q++) wasm_v128_store(row + 4 * q, wasm_f32x4_add(wasm_v128_load(row + 4 * q), wasm_f32x4_mul(xv, dh1[q])));
    }
  }
  g[offB3(d, p2)] = gb3;
  return sse;
}

/* a += b over n floats (n a multiple of 4): the chunks' gradients, summed in chunk order. */
__attribute__((export_name("add_into"))) void add_into(float *a, const float *b, int n) {
  for (int i = 0; i < n; i += 4) wasm_v128_store(a + i, wasm_f32x4_add(wasm_v128_load(a + i), wasm_v128_load(b + i)));
}

/*
 * One Adam step, in TensorFlow.js' arithmetic (tfjs-core AdamOptimizer): m and v updated, then
 * w += -lr * (m / c1) / (sqrt(v / c2) + eps) with c1 = 1 - beta1^t, c2 = 1 - beta2^t.
 */
__attribute__((export_name("adam"))) void adam(float *w, const float *g, float *m, float *v, int n, float lr, float beta1, float beta2, float eps, float c1, float c2) {
  v128_t b1 = wasm_f32x4_splat(beta1), nb1 = wasm_f32x4_splat(1.0f - beta1);
  v128_t b2 = wasm_f32x4_splat(beta2), nb2 = wasm_f32x4_splat(1.0f - beta2);
  v128_t vc1 = wasm_f32x4_splat(c1), vc2 = wasm_f32x4_splat(c2), ve = wasm_f32x4_splat(eps), nlr = wasm_f32x4_splat(-lr);
  for (int i = 0; i < n; i += 4) {
    v128_t gi = wasm_v128_load(g + i);
    v128_t mi = wasm_f32x4_add(wasm_f32x4_mul(wasm_v128_load(m + i), b1), wasm_f32x4_mul(gi, nb1));
    v128_t vi = wasm_f32x4_add(wasm_f32x4_mul(wasm_v128_load(v + i), b2), wasm_f32x4_mul(wasm_f32x4_mul(gi, gi), nb2));
    wasm_v128_store(m + i, mi);
    wasm_v128_store(v + i, vi);
    v128_t step = wasm_f32x4_div(wasm_f32x4_div(mi, vc1), wasm_f32x4_add(wasm_f32x4_sqrt(wasm_f32x4_div(vi, vc2)), ve));
    wasm_v128_store(w + i, wasm_f32x4_add(wasm_f32x4_mul(step, nlr), wasm_v128_load(w + i)));
  }
}

/* Predictions of samples [0, n) into out; returns the sum of squared errors against y (when y is not 0). */
__attribute__((export_name("forward"))) double forward(const float *x, const float *y, int n, int d, int h, const float *w, float *out, float *scratch) {
  int p2 = (h + 3) & ~3;
  const float *w1 = w, *b1 = w + offB1(d), *w2 = w + offW2(d), *b2 = w + offB2(d, p2), *w3 = w + offW3(d, p2);
  float b3 = w[offB3(d, p2)];
  float *h2f = scratch, *h1f = scratch + 2 * p2;
  v128_t h1[Q1];
  double sse = 0.0;
  for (int s = 0; s < n; s++) {
    layer1(x + s * d, d, w1, b1, h1, h1f);
    float o = layer23(h1f, p2, w2, b2, w3, b3, h2f);
    if (out) out[s] = o;
    if (y) {
      float e = o - y[s];
      sse += (double)e * (double)e;
    }
  }
  return sse;
}
