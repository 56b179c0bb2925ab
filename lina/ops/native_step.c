/* One decoding step of the Lina-Speech LM in plain C: the native CPU path of lina/ops/native.py.
 *
 * Same computation as lina/ops/fused_step.py (step_flat), over the same packed weights: every matrix
 * is read once per step ([in, out] row-major, shared by all batch rows), and everything between the
 * matrix products runs in one pass. A matrix that is exactly int8 codes times one scale per output
 * column (the embedded model, stored that way) may be given as those codes: the product is then
 * scale[n] * sum_i x[i] * code[i, n], the same number up to float rounding, from a quarter of the bytes.
 * Compiled at run time (`cc -O3`), called with ctypes; lina/ops/native.py checks every shape, dtype
 * and layout before a call.
 */
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

enum { PER_BLOCK = 17 };
/* dims: B, d, dk, dv, H, hidden, r, W, n_enc, n_dec, Tx, V, positions batch (1 or B) */
enum { D_B, D_D, D_DK, D_DV, D_H, D_HID, D_R, D_W, D_ENC, D_DEC, D_TX, D_V, D_PB, N_DIMS };

typedef struct {
    int64_t B, d, dk, dv, H, hid, r, W, Tx, V, pb;
    float ln_eps;
} Dims;

static float silu(float x) { return x / (1.0f + expf(-x)); }

static void layer_norm(const float *x, int64_t n, const float *w, const float *b, float eps, float *out) {
    float mean = 0.0f, var = 0.0f;
    for (int64_t i = 0; i < n; i++) mean += x[i];
    mean /= (float)n;
    for (int64_t i = 0; i < n; i++) { float t = x[i] - mean; var += t * t; }
    float inv = 1.0f / sqrtf(var / (float)n + eps);
    for (int64_t i = 0; i < n; i++) out[i] = (x[i] - mean) * inv * w[i] + b[i];
}

/* y[b, :] (+)= bias + x[b, :] @ W for B rows; W is [in, out] row-major; x rows `xs` apart, y rows `ys`.
 * With `scale`, W is int8 codes and the product is scale[n] * (x @ codes)[n], summed in `acc` [B, out]. */
static void matmul(int64_t B, int64_t in, int64_t out, const float *restrict x, int64_t xs, const void *W,
                   const float *restrict scale, const float *restrict bias, float *restrict y, int64_t ys,
                   int accumulate, float *restrict acc) {
    float *sum = scale ? acc : y;
    int64_t sums = scale ? out : ys;
    for (int64_t b = 0; b < B; b++) {
        float *yb = sum + b * sums;
        if (!accumulate || scale) {
            if (bias && !scale) memcpy(yb, bias, (size_t)out * sizeof(float));
            else memset(yb, 0, (size_t)out * sizeof(float));
        } else if (bias) {
            for (int64_t n = 0; n < out; n++) yb[n] += bias[n];
        }
    }
    int64_t i = 0;
    if (scale) {
        const int8_t *C = W;
        for (; i + 4 <= in; i += 4) {
            const int8_t *restrict c0 = C + i * out, *restrict c1 = c0 + out, *restrict c2 = c1 + out,
                         *restrict c3 = c2 + out;
            for (int64_t b = 0; b < B; b++) {
                const float *xb = x + b * xs + i;
                float x0 = xb[0], x1 = xb[1], x2 = xb[2], x3 = xb[3], *restrict yb = sum + b * sums;
                for (int64_t n = 0; n < out; n++)
                    yb[n] += x0 * (float)c0[n] + x1 * (float)c1[n] + x2 * (float)c2[n] + x3 * (float)c3[n];
            }
        }
        for (; i < in; i++)
            for (int64_t b = 0; b < B; b++) {
                float x0 = x[b * xs + i], *yb = sum + b * sums;
                for (int64_t n = 0; n < out; n++) yb[n] += x0 * (float)C[i * out + n];
            }
        for (int64_t b = 0; b < B; b++) {
            float *yb = y + b * ys, *sb = sum + b * sums;
            for (int64_t n = 0; n < out; n++)
                yb[n] = (accumulate ? yb[n] : 0.0f) + (bias ? bias[n] : 0.0f) + scale[n] * sb[n];
        }
        return;
    }
    const float *F = W;
    for (; i + 8 <= in; i += 8) {
        const float *restrict w0 = F + i * out;
        for (int64_t b = 0; b < B; b++) {
            const float *xb = x + b * xs + i;
            float *restrict yb = y + b * ys;
            for (int64_t n = 0; n < out; n++)
                yb[n] += xb[0] * w0[n] + xb[1] * w0[out + n] + xb[2] * w0[2 * out + n] + xb[3] * w0[3 * out + n]
                       + xb[4] * w0[4 * out + n] + xb[5] * w0[5 * out + n] + xb[6] * w0[6 * out + n]
                       + xb[7] * w0[7 * out + n];
        }
    }
    for (; i < in; i++)
        for (int64_t b = 0; b < B; b++) {
            float x0 = x[b * xs + i], *yb = y + b * ys;
            for (int64_t n = 0; n < out; n++) yb[n] += x0 * F[i * out + n];
        }
}

/* 1 if W [in, out] equals codes * scale[n] everywhere (the int8 form still matches the weights). */
int lina_check_int8(const float *restrict W, const int8_t *restrict codes, const float *restrict scale, int64_t in,
                    int64_t out) {
    int bad = 0;
    for (int64_t i = 0; i < in; i++) {
        const float *w = W + i * out;
        const int8_t *c = codes + i * out;
        for (int64_t n = 0; n < out; n++) bad |= w[n] != (float)c[n] * scale[n];
    }
    return !bad;
}

/* One GLA block on the residual stream x [B, d] (updated in place).
 * conv_in: q, k, v conv states, each a pointer + strides (batch, channel, time) in elements;
 * rec_in [B, H, Dk/H, Dv/H]; window_out [B, c, W]; rec_out like rec_in. */
#define MM(rows, in, out, x, xs, slot, bias, y, ys, accumulate) \
    matmul(rows, in, out, x, xs, wv[slot], sc[slot], bias, y, ys, accumulate, acc)

static void block(const Dims *D, const void *const *wv, const float *const *sc, float *x,
                  const float *const *conv_in, const int64_t *conv_strides, const float *rec_in, float *window_out,
                  float *rec_out, float *tmp, float *acc) {
    const float *const *w = (const float *const *)wv;
    const int64_t B = D->B, d = D->d, dk = D->dk, dv = D->dv, H = D->H, hid = D->hid, r = D->r, W = D->W;
    const int64_t c = 2 * dk + dv, np = c + dv + r, hk = dk / H, hv = dv / H;
    const float normalizer = *w[14], rms_c = *w[15], sqrt_dv = *w[16];
    float *h = tmp, *proj = h + B * d, *qkv = proj + B * np, *decay = qkv + B * c, *o = decay + B * dk,
          *ab = o + B * dv;
    for (int64_t b = 0; b < B; b++) layer_norm(x + b * d, d, w[0], w[1], D->ln_eps, h + b * d);
    MM(B, d, np, h, d, 2, NULL, proj, np, 0);
    for (int64_t b = 0; b < B; b++) {
        const float *pb = proj + b * np;
        /* short convolutions: window = the last W-1 inputs, then this one; conv kernels are [W, c] */
        for (int64_t ch = 0; ch < c; ch++) {
            int which = ch < dk ? 0 : (ch < 2 * dk ? 1 : 2);
            int64_t local = ch - (which == 0 ? 0 : (which == 1 ? dk : 2 * dk));
            const int64_t *st = conv_strides + 3 * which;
            const float *src = conv_in[which] + b * st[0] + local * st[1];
            float *win = window_out + (b * c + ch) * W, acc = 0.0f;
            for (int64_t t = 0; t < W - 1; t++) win[t] = src[t * st[2]];
            win[W - 1] = pb[ch];
            for (int64_t t = 0; t < W; t++) acc += win[t] * w[3][t * c + ch];
            qkv[b * c + ch] = silu(acc);
        }
    }
    /* forget gate: exp(logsigmoid(gate_up(gate_down(x))) / normalizer) */
    MM(B, r, dk, proj + c + dv, np, 4, w[5], decay, dk, 0);
    for (int64_t j = 0; j < B * dk; j++) {
        float z = decay[j];
        float ls = (z < 0.0f ? z : 0.0f) - log1pf(expf(-fabsf(z)));
        decay[j] = expf(ls / normalizer);
    }
    /* GLA recurrence S = diag(decay) S + k^T v and o = q S (scale folded into the norm), per head;
     * then RMSNorm per head and the output gate silu(g). */
    for (int64_t b = 0; b < B; b++) {
        const float *q = qkv + b * c, *k = q + dk, *v = q + 2 * dk, *g = proj + b * np + c;
        for (int64_t hh = 0; hh < H; hh++) {
            float *oh = o + b * dv + hh * hv;
            for (int64_t j = 0; j < hv; j++) oh[j] = 0.0f;
            for (int64_t i = 0; i < hk; i++) {
                int64_t row = ((b * H + hh) * hk + i) * hv;
                const float *s_in = rec_in + row;
                float *s_out = rec_out + row;
                float dec = decay[b * dk + hh * hk + i], ki = k[hh * hk + i], qi = q[hh * hk + i];
                const float *vh = v + hh * hv;
                for (int64_t j = 0; j < hv; j++) {
                    float s = s_in[j] * dec + ki * vh[j];
                    s_out[j] = s;
                    oh[j] += qi * s;
                }
            }
            float ss = 0.0f;
            for (int64_t j = 0; j < hv; j++) ss += oh[j] * oh[j];
            float scale = 1.0f / sqrtf(ss + rms_c) * sqrt_dv;
            for (int64_t j = 0; j < hv; j++) oh[j] = oh[j] * scale * w[6][j] * silu(g[hh * hv + j]);
        }
    }
    MM(B, dv, d, o, dv, 7, NULL, x, d, 1);
    for (int64_t b = 0; b < B; b++) layer_norm(x + b * d, d, w[8], w[9], D->ln_eps, h + b * d);
    MM(B, d, 2 * hid, h, d, 10, w[11], ab, 2 * hid, 0);
    for (int64_t b = 0; b < B; b++)
        for (int64_t j = 0; j < hid; j++) ab[b * 2 * hid + j] = silu(ab[b * 2 * hid + j]) * ab[b * 2 * hid + hid + j];
    MM(B, hid, d, ab, 2 * hid, 12, w[13], x, d, 1);
}

/* softmax(alpha * query . keys[t] + bias[t]) over t -> att [Tx]; keys rows via strides (t, d). */
static void attend(const Dims *D, const float *query, const float *keys, int64_t ts, int64_t ds, const float *bias,
                   float alpha, float *att) {
    float top = -INFINITY, sum = 0.0f;
    for (int64_t t = 0; t < D->Tx; t++) {
        float acc = 0.0f;
        for (int64_t j = 0; j < D->d; j++) acc += query[j] * keys[t * ts + j * ds];
        att[t] = alpha * acc + bias[t];
        if (att[t] > top) top = att[t];
    }
    for (int64_t t = 0; t < D->Tx; t++) { att[t] = expf(att[t] - top); sum += att[t]; }
    for (int64_t t = 0; t < D->Tx; t++) att[t] /= sum;
}

/* Returns 0, 1 for a token out of range, 2 when memory runs out.
 * states_in: per block conv_q, conv_k, conv_v, recurrent (contiguous); conv_strides: per block
 * 3 x (batch, channel, time). windows_out [L, B, c, W] and rec_out [L, B, H, Dk/H, Dv/H] receive the new
 * states (L blocks: encoder, position net, decoder). ctx_strides: keys, values, positions as
 * (batch, time, channel) each. weights: the packed weights in PackedModel order; scales: for each
 * one, NULL, or the column scales when that matrix is given as int8 codes. */
int lina_step(const int64_t *dims, float ln_eps, const void *const *weights, const float *const *scales,
              const int64_t *token,
              const float *const *states_in, const int64_t *conv_strides, float *windows_out, float *rec_out,
              const float *keys, const float *values, const float *positions, const int64_t *ctx_strides,
              const float *bias, float *logits, float *alignment) {
    Dims D = {dims[D_B], dims[D_D], dims[D_DK], dims[D_DV], dims[D_H], dims[D_HID], dims[D_R], dims[D_W],
              dims[D_TX], dims[D_V], dims[D_PB], ln_eps};
    const int64_t n_enc = dims[D_ENC], n_dec = dims[D_DEC], B = D.B, d = D.d, Tx = D.Tx;
    const int64_t np = 2 * D.dk + 2 * D.dv + D.r;
    const int64_t window_size = B * (2 * D.dk + D.dv) * D.W, rec_size = B * D.H * (D.dk / D.H) * (D.dv / D.H);
    const int64_t g = (n_enc + 1 + n_dec) * PER_BLOCK;
    const float *const *glob = (const float *const *)(weights + g);
    const void *const *wv = weights + g;
    const float *const *sc = scales + g;
    for (int64_t b = 0; b < B; b++)
        if (token[b] < 0 || token[b] >= D.V) return 1;
    int64_t widest = D.V > np ? D.V : np;
    if (2 * D.hid > widest) widest = 2 * D.hid;
    size_t tmp_floats = (size_t)(B * (2 * d + np + 2 * D.dk + D.dv + D.dk + D.dv + 2 * D.hid) + Tx + 2 * B * d
                                 + B * widest);
    float *x = malloc(tmp_floats * sizeof(float));
    if (!x) return 2;
    float *query = x + B * d, *att = query + B * d, *acc = att + Tx, *tmp = acc + B * widest;
    for (int64_t b = 0; b < B; b++) memcpy(x + b * d, glob[0] + token[b] * d, (size_t)d * sizeof(float));
    for (int64_t i = 0; i < n_enc + 1 + n_dec; i++) {
        const void *const *w = weights + i * PER_BLOCK;
        const float *const *ws = scales + i * PER_BLOCK;
        const float *const *s = states_in + 4 * i;
        const int64_t *cs = conv_strides + 9 * i;
        float *win = windows_out + i * window_size, *rec = rec_out + i * rec_size;
        if (i != n_enc) {
            block(&D, w, ws, x, s, cs, s[3], win, rec, tmp, acc);
            continue;
        }
        /* Blind cross-attention around the position net (block n_enc). */
        const float alpha = 1.0f / sqrtf((float)d);
        const int64_t *ks = ctx_strides, *vs = ctx_strides + 3, *ps = ctx_strides + 6;
        MM(B, d, d, x, d, 1, glob[2], tmp, d, 0);
        for (int64_t b = 0; b < B; b++) {
            const float *pos = positions + (D.pb == 1 ? 0 : b) * ps[0];
            layer_norm(tmp + b * d, d, glob[3], glob[4], ln_eps, query + b * d);
            attend(&D, query + b * d, keys + b * ks[0], ks[1], ks[2], bias + b * Tx, alpha, att);
            memcpy(alignment + b * 2 * Tx, att, (size_t)Tx * sizeof(float));
            for (int64_t j = 0; j < d; j++) {
                float acc = 0.0f;
                for (int64_t t = 0; t < Tx; t++) acc += att[t] * pos[t * ps[1] + j * ps[2]];
                query[b * d + j] = acc;
            }
        }
        block(&D, w, ws, query, s, cs, s[3], win, rec, tmp, acc);
        for (int64_t b = 0; b < B; b++) {
            const float *pos = positions + (D.pb == 1 ? 0 : b) * ps[0];
            attend(&D, query + b * d, pos, ps[1], ps[2], bias + b * Tx, alpha, att);
            memcpy(alignment + b * 2 * Tx + Tx, att, (size_t)Tx * sizeof(float));
            for (int64_t j = 0; j < d; j++) {
                float acc = 0.0f;
                for (int64_t t = 0; t < Tx; t++) acc += att[t] * values[b * vs[0] + t * vs[1] + j * vs[2]];
                x[b * d + j] += acc;
            }
        }
    }
    MM(B, d, D.V, x, d, 5, NULL, logits, D.V, 0);
    free(x);
    return 0;
}
