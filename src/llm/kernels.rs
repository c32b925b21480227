//! Matrix kernels of our own where candle's fall short, behind [`Linear`], a drop-in for
//! candle's `QMatMul` that takes our path when one exists and candle's otherwise.
//!
//! Q4_1 (SmolLM2's format): candle 0.11.1 has only a scalar Q4_1 × Q8_1 dot product, which
//! spends 84% of SmolLM2's time. Here the activations are quantized to Q8_1 the way ggml's
//! x86 code does it (scale 127/max, ties rounded to even, block sum kept) and the dot product
//! is ggml's AVX2 algorithm: nibbles widened to bytes, `maddubs` into 16-bit pairs, summed to
//! 32-bit lanes, scaled and accumulated in f32, the block minimum added through the sum. A
//! portable version of the same arithmetic runs where AVX2 is missing and is the reference the
//! tests hold the SIMD version to.

use std::sync::Arc;

use candle_core::quantized::{GgmlDType, QMatMul, QTensor};
use candle_core::{Device, Module, Tensor};
use half::f16;
use rayon::prelude::*;

/// A weight matrix `(out, in)` applied as `x · Wᵀ`.
pub(crate) struct Linear {
    weights: Arc<QTensor>,
    candle: QMatMul,
    own: bool,
}

impl Linear {
    pub(crate) fn new(weights: Arc<QTensor>) -> candle_core::Result<Linear> {
        let candle = QMatMul::from_arc(Arc::clone(&weights))?;
        let own = weights.device().is_cpu()
            && weights.dtype() == GgmlDType::Q4_1
            && weights.shape().dims().len() == 2;
        Ok(Linear {
            weights,
            candle,
            own,
        })
    }

    pub(crate) fn forward(&self, x: &Tensor) -> candle_core::Result<Tensor> {
        if !self.own {
            return self.candle.forward(x);
        }
        let (rows, k) = self.weights.shape().dims2()?;
        let dims = x.dims().to_vec();
        let m = x.elem_count() / k;
        let input = x.flatten_all()?.to_vec1::<f32>()?;
        let bytes = self.weights.data()?;
        let blocks = q4_1_blocks(&bytes, rows, k)?;
        let out = matmul_q4_1(blocks, rows, k, &input, m);
        let mut out_dims = dims;
        if let Some(last) = out_dims.last_mut() {
            *last = rows;
        }
        Tensor::from_vec(out, out_dims, &Device::Cpu)
    }
}

/// ggml's `block_q4_1`: 32 weights as `d * q + m`, q in 0..16, low nibbles first.
#[repr(C)]
#[derive(Clone, Copy)]
pub(crate) struct BlockQ4_1 {
    d: f16,
    m: f16,
    qs: [u8; 16],
}

/// ggml's `block_q8_1`: 32 activations as `d * q`, with `s = d * Σq`.
#[repr(C)]
#[derive(Clone, Copy, Default)]
pub(crate) struct BlockQ8_1 {
    d: f16,
    s: f16,
    qs: [i8; 32],
}

const QK: usize = 32;

/// Views the raw bytes of a Q4_1 tensor as its blocks.
fn q4_1_blocks(bytes: &[u8], rows: usize, k: usize) -> candle_core::Result<&[BlockQ4_1]> {
    let size = std::mem::size_of::<BlockQ4_1>();
    let count = rows * (k / QK);
    if !k.is_multiple_of(QK) || bytes.len() != count * size {
        candle_core::bail!("Q4_1 tensor of {rows}x{k} has {} bytes", bytes.len());
    }
    if bytes
        .as_ptr()
        .align_offset(std::mem::align_of::<BlockQ4_1>())
        != 0
    {
        candle_core::bail!("Q4_1 tensor data is not aligned");
    }
    // SAFETY: BlockQ4_1 is repr(C), 20 bytes with alignment 2, every bit pattern is valid, and
    // the length and alignment were checked above.
    Ok(unsafe { std::slice::from_raw_parts(bytes.as_ptr().cast::<BlockQ4_1>(), count) })
}

/// Quantizes one row of `k` activations as ggml's x86 `quantize_row_q8_1` does.
pub(crate) fn quantize_q8_1(x: &[f32], out: &mut [BlockQ8_1]) {
    for (block, xs) in out.iter_mut().zip(x.chunks_exact(QK)) {
        let amax = xs.iter().fold(0f32, |a, v| a.max(v.abs()));
        let d = amax / 127.0;
        let id = if amax != 0.0 { 127.0 / amax } else { 0.0 };
        let mut sum = 0i32;
        for (q, &v) in block.qs.iter_mut().zip(xs) {
            let r = (v * id).round_ties_even() as i32;
            *q = r as i8;
            sum += r;
        }
        block.d = f16::from_f32(d);
        block.s = f16::from_f32(d * sum as f32);
    }
}

/// `out[i][j] = x[i] · w[j]` for `m` rows of `k` activations against `rows` weight rows.
fn matmul_q4_1(w: &[BlockQ4_1], rows: usize, k: usize, x: &[f32], m: usize) -> Vec<f32> {
    let kb = k / QK;
    let mut xq = vec![BlockQ8_1::default(); m * kb];
    xq.par_chunks_mut(kb)
        .zip(x.par_chunks(k))
        .for_each(|(q, row)| quantize_q8_1(row, q));
    let dot = dot_fn();
    // Weight rows are split across threads; each thread streams its rows once for all of the
    // activation rows, so a prefill reads the weights once per chunk of rows.
    let mut out_t = vec![0f32; rows * m];
    const ROWS_PER_TASK: usize = 16;
    out_t
        .par_chunks_mut(ROWS_PER_TASK * m)
        .enumerate()
        .for_each(|(task, out)| {
            let first = task * ROWS_PER_TASK;
            for (r, out_row) in out.chunks_mut(m).enumerate() {
                let wrow = &w[(first + r) * kb..(first + r + 1) * kb];
                for (i, o) in out_row.iter_mut().enumerate() {
                    *o = dot(wrow, &xq[i * kb..(i + 1) * kb]);
                }
            }
        });
    if m == 1 {
        return out_t;
    }
    let mut out = vec![0f32; m * rows];
    for (j, col) in out_t.chunks(m).enumerate() {
        for (i, &v) in col.iter().enumerate() {
            out[i * rows + j] = v;
        }
    }
    out
}

type DotFn = fn(&[BlockQ4_1], &[BlockQ8_1]) -> f32;

fn dot_fn() -> DotFn {
    #[cfg(target_arch = "x86_64")]
    if std::arch::is_x86_feature_detected!("avx2") && std::arch::is_x86_feature_detected!("fma") {
        return |w, x| {
            // SAFETY: the CPU supports AVX2 and FMA, checked just above.
            unsafe { avx2::dot_q4_1_q8_1(w, x) }
        };
    }
    dot_q4_1_q8_1_portable
}

/// The reference arithmetic: per block, `d_w * d_x * Σ q_w q_x + m_w * s_x`.
pub(crate) fn dot_q4_1_q8_1_portable(w: &[BlockQ4_1], x: &[BlockQ8_1]) -> f32 {
    let mut sum = 0f32;
    for (wb, xb) in w.iter().zip(x) {
        let mut acc = 0i32;
        for j in 0..16 {
            acc += i32::from(wb.qs[j] & 0x0f) * i32::from(xb.qs[j]);
            acc += i32::from(wb.qs[j] >> 4) * i32::from(xb.qs[j + 16]);
        }
        sum += wb.d.to_f32() * xb.d.to_f32() * acc as f32 + wb.m.to_f32() * xb.s.to_f32();
    }
    sum
}

#[cfg(target_arch = "x86_64")]
mod avx2 {
    use std::arch::x86_64::*;

    use super::{BlockQ4_1, BlockQ8_1};

    #[target_feature(enable = "avx2,fma")]
    pub(super) unsafe fn dot_q4_1_q8_1(w: &[BlockQ4_1], x: &[BlockQ8_1]) -> f32 {
        let mut acc = _mm256_setzero_ps();
        let mut mins = 0f32;
        let low = _mm256_set1_epi8(0x0f);
        let ones = _mm256_set1_epi16(1);
        for (wb, xb) in w.iter().zip(x) {
            mins += wb.m.to_f32() * xb.s.to_f32();
            let scale = _mm256_set1_ps(wb.d.to_f32() * xb.d.to_f32());
            // SAFETY: qs are 16 and 32 bytes long; unaligned loads.
            let packed = unsafe { _mm_loadu_si128(wb.qs.as_ptr().cast()) };
            let nibbles = _mm256_insertf128_si256::<1>(
                _mm256_castsi128_si256(packed),
                _mm_srli_epi16::<4>(packed),
            );
            let qw = _mm256_and_si256(nibbles, low);
            let qx = unsafe { _mm256_loadu_si256(xb.qs.as_ptr().cast()) };
            let pairs = _mm256_maddubs_epi16(qw, qx);
            let sums = _mm256_madd_epi16(pairs, ones);
            acc = _mm256_fmadd_ps(scale, _mm256_cvtepi32_ps(sums), acc);
        }
        let hi = _mm256_extractf128_ps::<1>(acc);
        let quad = _mm_add_ps(hi, _mm256_castps256_ps128(acc));
        let pair = _mm_add_ps(quad, _mm_movehl_ps(quad, quad));
        let one = _mm_add_ss(pair, _mm_movehdup_ps(pair));
        _mm_cvtss_f32(one) + mins
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn random(n: usize, seed: u64) -> Vec<f32> {
        let mut s = seed | 1;
        (0..n)
            .map(|_| {
                s ^= s << 13;
                s ^= s >> 7;
                s ^= s << 17;
                (s >> 40) as f32 / (1u64 << 23) as f32 - 1.0
            })
            .collect()
    }

    fn q4_1_tensor(rows: usize, k: usize) -> Arc<QTensor> {
        let w = Tensor::from_vec(random(rows * k, 7), (rows, k), &Device::Cpu).unwrap();
        Arc::new(QTensor::quantize(&w, GgmlDType::Q4_1).unwrap())
    }

    #[test]
    fn simd_dot_equals_the_portable_arithmetic() {
        let (rows, k) = (8, 256);
        let t = q4_1_tensor(rows, k);
        let bytes = t.data().unwrap();
        let w = q4_1_blocks(&bytes, rows, k).unwrap();
        let x = random(k, 99);
        let mut xq = vec![BlockQ8_1::default(); k / QK];
        quantize_q8_1(&x, &mut xq);
        let dot = dot_fn();
        for r in 0..rows {
            let row = &w[r * 8..(r + 1) * 8];
            let (a, b) = (dot(row, &xq), dot_q4_1_q8_1_portable(row, &xq));
            assert!(
                (a - b).abs() <= 1e-4 * b.abs().max(1.0),
                "row {r}: {a} vs {b}"
            );
        }
    }

    #[test]
    fn q8_1_quantization_rounds_like_ggml() {
        let mut x = vec![0f32; 32];
        x[0] = 127.0; // scale 1
        x[1] = 2.5; // tie: to even (2), not away from zero (3)
        x[2] = -3.5; // tie: to -4
        x[3] = 0.49;
        let mut q = [BlockQ8_1::default()];
        quantize_q8_1(&x, &mut q);
        assert_eq!(&q[0].qs[..4], &[127, 2, -4, 0]);
        assert_eq!(q[0].d.to_f32(), 1.0);
        assert_eq!(q[0].s.to_f32(), 125.0);
        let mut zero = [BlockQ8_1::default()];
        quantize_q8_1(&[0.0; 32], &mut zero);
        assert_eq!(zero[0].qs, [0; 32]);
    }

    /// Our path against candle's (scalar Q4_1 × Q8_1 with its own quantization) on decode and
    /// prefill shapes: the same function up to activation rounding.
    #[test]
    fn linear_matches_candle_within_quantization_noise() {
        let (rows, k) = (48, 512);
        let t = q4_1_tensor(rows, k);
        let ours = Linear::new(Arc::clone(&t)).unwrap();
        assert!(ours.own);
        let candle = QMatMul::from_arc(t).unwrap();
        for m in [1, 3, 17] {
            let x = Tensor::from_vec(random(m * k, m as u64), (m, k), &Device::Cpu).unwrap();
            let a = ours.forward(&x).unwrap();
            let b = candle.forward(&x).unwrap();
            assert_eq!(a.dims(), b.dims());
            let (a, b) = (
                a.flatten_all().unwrap().to_vec1::<f32>().unwrap(),
                b.flatten_all().unwrap().to_vec1::<f32>().unwrap(),
            );
            let scale = b.iter().fold(0f32, |s, v| s.max(v.abs()));
            let diff = a
                .iter()
                .zip(&b)
                .fold(0f32, |d, (x, y)| d.max((x - y).abs()));
            assert!(
                diff < 0.02 * scale,
                "m={m}: {diff} against values up to {scale}"
            );
        }
    }

    #[test]
    fn other_types_use_candle() {
        let w = Tensor::from_vec(random(32 * 64, 3), (32, 64), &Device::Cpu).unwrap();
        let q = Arc::new(QTensor::quantize(&w, GgmlDType::Q8_0).unwrap());
        assert!(!Linear::new(q).unwrap().own);
    }
}
