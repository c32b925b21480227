//! ggml's vectorised math functions, reproduced to the bit: its `expf` polynomial, its SiLU, and
//! the reduction tree of `_mm512_reduce_add_ps`. Where llama.cpp computes with these rather than
//! libm, we do too, so that values quantized to 8 bits for the next matmul round the same way.
//! The AVX-512 versions are what ggml runs on the machines this project is measured on; the
//! portable ones give the same bits and are what the tests hold the SIMD ones to.

#[cfg(target_arch = "x86_64")]
use std::arch::x86_64::*;

/// ggml's AVX-512 `expf` (`ggml_v_expf`), one lane: a degree-5 polynomial on the remainder of
/// `x / ln 2`, scaled by the power of two; used by its tiled softmax.
pub(crate) fn ggml_expf(x: f32) -> f32 {
    let round = f32::from_bits(0x4b40_0000); // 1.5 * 2^23
    let z = x.mul_add(f32::from_bits(0x3fb8_aa3b), round);
    let n = z - round;
    let b = (-n).mul_add(
        f32::from_bits(0x35bf_be8e),
        (-n).mul_add(f32::from_bits(0x3f31_7200), x),
    );
    if n.abs() > 192.0 {
        return if n <= 0.0 { 0.0 } else { f32::INFINITY };
    }
    let u = b * b;
    let j = f32::from_bits(0x3c07_2010)
        .mul_add(b, f32::from_bits(0x3d2b_9f17))
        .mul_add(
            u,
            f32::from_bits(0x3e2a_af33).mul_add(b, f32::from_bits(0x3eff_fedb)),
        )
        .mul_add(u, f32::from_bits(0x3f7f_fff6).mul_add(b, 1.0));
    // `vscalefps`: one rounding of j * 2^n, also where the result is subnormal.
    (j as f64 * 2f64.powi(n as i32)) as f32
}

/// `_mm512_reduce_add_ps` as GCC and clang expand it: halves added pairwise, 16 → 8 → 4 → 2 → 1.
pub(crate) fn reduce16(v: &[f32; 16]) -> f32 {
    let t: [f32; 8] = std::array::from_fn(|i| v[i + 8] + v[i]);
    let u: [f32; 4] = std::array::from_fn(|i| t[i + 4] + t[i]);
    (u[0] + u[2]) + (u[1] + u[3])
}

/// `ggml_v_expf` for AVX-512, instruction for instruction.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f,fma")]
pub(crate) fn expf_avx512(x: __m512) -> __m512 {
    let r = _mm512_set1_ps(f32::from_bits(0x4b40_0000));
    let z = _mm512_fmadd_ps(x, _mm512_set1_ps(f32::from_bits(0x3fb8_aa3b)), r);
    let n = _mm512_sub_ps(z, r);
    let b = _mm512_fnmadd_ps(
        n,
        _mm512_set1_ps(f32::from_bits(0x35bf_be8e)),
        _mm512_fnmadd_ps(n, _mm512_set1_ps(f32::from_bits(0x3f31_7200)), x),
    );
    let d = _mm512_cmp_ps_mask::<_CMP_GT_OQ>(_mm512_abs_ps(n), _mm512_set1_ps(192.0));
    let u = _mm512_mul_ps(b, b);
    let j = _mm512_fmadd_ps(
        _mm512_fmadd_ps(
            _mm512_fmadd_ps(
                _mm512_set1_ps(f32::from_bits(0x3c07_2010)),
                b,
                _mm512_set1_ps(f32::from_bits(0x3d2b_9f17)),
            ),
            u,
            _mm512_fmadd_ps(
                _mm512_set1_ps(f32::from_bits(0x3e2a_af33)),
                b,
                _mm512_set1_ps(f32::from_bits(0x3eff_fedb)),
            ),
        ),
        u,
        _mm512_fmadd_ps(
            _mm512_set1_ps(f32::from_bits(0x3f7f_fff6)),
            b,
            _mm512_set1_ps(1.0),
        ),
    );
    let res = _mm512_scalef_ps(j, n);
    if d == 0 {
        return res;
    }
    let zero = _mm512_setzero_ps();
    let alt = _mm512_mask_blend_ps(
        _mm512_cmp_ps_mask::<_CMP_LE_OQ>(n, zero),
        _mm512_set1_ps(f32::INFINITY),
        zero,
    );
    _mm512_mask_blend_ps(d, res, alt)
}

/// SwiGLU of one row pair as ggml's `ggml_vec_swiglu_f32` computes it on AVX-512:
/// `x / (1 + expf(-x)) * g` with ggml's `expf` in blocks of 16, libm's for the remainder.
pub(crate) fn swiglu_row(x: &[f32], g: &[f32], y: &mut [f32]) {
    let whole = x.len() / 16 * 16;
    #[cfg(target_arch = "x86_64")]
    if std::arch::is_x86_feature_detected!("avx512f") && std::arch::is_x86_feature_detected!("fma")
    {
        // SAFETY: the features were just checked.
        unsafe { swiglu_avx512(&x[..whole], &g[..whole], &mut y[..whole]) };
        swiglu_tail(&x[whole..], &g[whole..], &mut y[whole..]);
        return;
    }
    for ((y, &x), &g) in y[..whole].iter_mut().zip(&x[..whole]).zip(&g[..whole]) {
        *y = x / (1.0 + ggml_expf(-x)) * g;
    }
    swiglu_tail(&x[whole..], &g[whole..], &mut y[whole..]);
}

fn swiglu_tail(x: &[f32], g: &[f32], y: &mut [f32]) {
    for ((y, &x), &g) in y.iter_mut().zip(x).zip(g) {
        *y = x / (1.0 + (-x).exp()) * g;
    }
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f,fma")]
unsafe fn swiglu_avx512(x: &[f32], g: &[f32], y: &mut [f32]) {
    let n = x.len().min(g.len()).min(y.len()) / 16 * 16;
    let one = _mm512_set1_ps(1.0);
    for i in (0..n).step_by(16) {
        // SAFETY: i + 16 <= n, within every slice.
        unsafe {
            let xv = _mm512_loadu_ps(x.as_ptr().add(i));
            let e = expf_avx512(_mm512_sub_ps(_mm512_setzero_ps(), xv));
            let silu = _mm512_div_ps(xv, _mm512_add_ps(one, e));
            let gv = _mm512_loadu_ps(g.as_ptr().add(i));
            _mm512_storeu_ps(y.as_mut_ptr().add(i), _mm512_mul_ps(silu, gv));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn swiglu_simd_equals_the_portable_arithmetic() {
        let x: Vec<f32> = (0..160).map(|i| (i as f32 - 80.0) * 0.37).collect();
        let g: Vec<f32> = (0..160).map(|i| 1.0 - i as f32 * 0.011).collect();
        let mut fast = vec![0f32; 160];
        swiglu_row(&x, &g, &mut fast);
        for (i, ((&x, &g), &y)) in x.iter().zip(&g).zip(&fast).enumerate() {
            let portable = x / (1.0 + ggml_expf(-x)) * g;
            assert_eq!(y.to_bits(), portable.to_bits(), "{i}: {x}");
            let exact = x as f64 / (1.0 + (-x as f64).exp()) * g as f64;
            assert!(
                (y as f64 - exact).abs() <= 1e-5 * exact.abs().max(1.0),
                "{i}"
            );
        }
    }
}
