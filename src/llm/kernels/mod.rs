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
//!
//! Q4_0, Q5_0 and Q8_0: the activations are quantized to Q8_0 as ggml does, and the products
//! do ggml's arithmetic bit for bit (`vec_dot` and llamafile's tinyBLAS round alike: per
//! block `acc = fma(d_w · d_x, lanes, acc)` on eight i32 lanes, then `hsum_float_8`; candle
//! does the same for Q4_0 and Q8_0 but sums Q5_0 in scalar order).
//!
//! Q4_K and Q6_K: [`kquants`] applies them with the arithmetic of llama.cpp's CPU kernels
//! (repacked Q4_K, `vec_dot`, and the tiled kernel for batches), never making candle's
//! f32-scaled copy of every such matrix; Q4_K matrices are interleaved eight rows at a time
//! once at load, in place of their GGUF blocks, and prefill runs sixteen rows per register
//! where the CPU has AVX-512.
//!
//! Attention: [`flash`] computes llama.cpp's CPU flash attention on an f16 cache (the default),
//! [`attention`] candle's attention arithmetic on an f32 cache; both on candle's worker pool.
//! RMSNorm, RoPE and SwiGLU ([`rms_norm_ggml`], [`rope_ggml`], [`swiglu_ggml`], with ggml's
//! `expf` from `math`) round as ggml's CPU code rounds them: a last bit is enough to flip an
//! activation's 8-bit rounding in the next product.
//!
//! What makes these fast besides SIMD: block scales are converted from f16 by F16C inside
//! the register (the half crate makes a call per value), a weight row is taken against four
//! activation rows at once during prefill, and all the work runs on candle's own worker pool
//! so that no second pool competes with its spinning workers.

use std::sync::Arc;

use candle_core::quantized::{GgmlDType, QMatMul, QTensor, k_quants};
use candle_core::{Device, Module, Tensor};
use half::f16;

/// A weight matrix `(out, in)` applied as `x · Wᵀ`.
pub(crate) struct Linear {
    path: LinearPath,
}

enum LinearPath {
    /// The GGUF blocks, applied by candle's `QMatMul` or by our kernel `own`.
    Blocks {
        weights: Arc<QTensor>,
        candle: QMatMul,
        own: Option<OwnPath>,
    },
    /// Q4_K weights interleaved once at load ([`kquants::Q4KInterleaved`]) in place of the
    /// GGUF blocks, which are dropped; only for weights nothing else holds (a tied embedding
    /// table keeps its blocks and takes [`OwnPath::KQuants`]).
    #[cfg(target_arch = "x86_64")]
    Q4KInterleaved(kquants::Q4KInterleaved),
}

/// The weight types with a path of our own.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum OwnPath {
    /// Our Q4_1 x Q8_1 kernel.
    Q4_1,
    /// Q4_0, Q5_0 and Q8_0 weights: the activations quantized to Q8_0 as ggml's x86 code does
    /// (candle rounds them differently), then candle's dot product of the pair (the portable
    /// fallback; candle's Q5_0 sums in another order than ggml's).
    Q8_0Activations(GgmlDType),
    /// The same with our SIMD dot products ([`avx2`]): chosen once, where the CPU has AVX2,
    /// FMA and F16C.
    #[cfg(target_arch = "x86_64")]
    Q8_0Simd(GgmlDType),
    /// Q4_K and Q6_K on their GGUF blocks with ggml's arithmetic ([`kquants`]), chosen where
    /// the CPU has AVX2, FMA and F16C.
    #[cfg(target_arch = "x86_64")]
    KQuants(GgmlDType),
}

impl Linear {
    pub(crate) fn new(weights: Arc<QTensor>) -> candle_core::Result<Linear> {
        let eligible = weights.device().is_cpu() && weights.shape().dims().len() == 2;
        let own = match weights.dtype() {
            _ if !eligible => None,
            GgmlDType::Q4_1 => Some(OwnPath::Q4_1),
            #[cfg(target_arch = "x86_64")]
            t @ (GgmlDType::Q4_0 | GgmlDType::Q5_0 | GgmlDType::Q8_0) if has_avx2_f16c() => {
                Some(OwnPath::Q8_0Simd(t))
            }
            t @ (GgmlDType::Q4_0 | GgmlDType::Q5_0 | GgmlDType::Q8_0) => {
                Some(OwnPath::Q8_0Activations(t))
            }
            #[cfg(target_arch = "x86_64")]
            t @ (GgmlDType::Q4K | GgmlDType::Q6K)
                if has_avx2_f16c()
                    && weights
                        .shape()
                        .dims2()
                        .ok()
                        .is_some_and(|(_, k)| kquants::applies(t, k)) =>
            {
                Some(OwnPath::KQuants(t))
            }
            _ => None,
        };
        #[cfg(target_arch = "x86_64")]
        if own == Some(OwnPath::KQuants(GgmlDType::Q4K))
            && Arc::strong_count(&weights) == 1
            && weights
                .shape()
                .dims2()
                .is_ok_and(|(rows, k)| kquants::interleaves(rows, k))
        {
            let (rows, k) = weights.shape().dims2()?;
            let interleaved = kquants::Q4KInterleaved::new(&weights.data()?, rows, k)?;
            return Ok(Linear {
                path: LinearPath::Q4KInterleaved(interleaved),
            });
        }
        let candle = QMatMul::from_arc(Arc::clone(&weights))?;
        Ok(Linear {
            path: LinearPath::Blocks {
                weights,
                candle,
                own,
            },
        })
    }

    pub(crate) fn forward(&self, x: &Tensor) -> candle_core::Result<Tensor> {
        match &self.path {
            LinearPath::Blocks {
                weights,
                candle,
                own,
            } => {
                let Some(path) = *own else {
                    return candle.forward(x);
                };
                let (rows, k) = weights.shape().dims2()?;
                let bytes = weights.data()?;
                apply_rows(x, rows, k, |input, m| {
                    product(path, &bytes, rows, k, input, m)
                })
            }
            #[cfg(target_arch = "x86_64")]
            LinearPath::Q4KInterleaved(w) => {
                let (rows, k) = w.shape();
                // SAFETY: this path is only chosen where the CPU has AVX2, FMA and F16C.
                apply_rows(x, rows, k, |input, m| unsafe { w.matmul(input, m) })
            }
        }
    }
}

/// `x` (any shape whose last dimension is `k`) as rows of `k` f32 through `product`, which
/// gives `rows` outputs per input row; the result has `x`'s shape with `rows` last.
fn apply_rows(
    x: &Tensor,
    rows: usize,
    k: usize,
    product: impl FnOnce(&[f32], usize) -> candle_core::Result<Vec<f32>>,
) -> candle_core::Result<Tensor> {
    let mut dims = x.dims().to_vec();
    let m = x.elem_count() / k;
    let input = x.flatten_all()?.to_vec1::<f32>()?;
    let out = product(&input, m)?;
    if let Some(last) = dims.last_mut() {
        *last = rows;
    }
    Tensor::from_vec(out, dims, &Device::Cpu)
}

/// `x · wᵀ` for `m` rows of `k` activations against the `rows` x `k` weights in `bytes`, by
/// our path `path`, token-major.
fn product(
    path: OwnPath,
    bytes: &[u8],
    rows: usize,
    k: usize,
    x: &[f32],
    m: usize,
) -> candle_core::Result<Vec<f32>> {
    Ok(match path {
        OwnPath::Q4_1 => {
            let w = blocks_of::<BlockQ4_1>(bytes, rows, k)?;
            matmul_quantized(w, rows, k, x, m, quantize_q8_1, dot_fn(), dot4_fn())
        }
        OwnPath::Q8_0Activations(GgmlDType::Q4_0) => {
            matmul_candle_dot::<k_quants::BlockQ4_0>(blocks_of(bytes, rows, k)?, rows, k, x, m)
        }
        OwnPath::Q8_0Activations(GgmlDType::Q5_0) => {
            matmul_candle_dot::<k_quants::BlockQ5_0>(blocks_of(bytes, rows, k)?, rows, k, x, m)
        }
        OwnPath::Q8_0Activations(_) => {
            matmul_candle_dot::<k_quants::BlockQ8_0>(blocks_of(bytes, rows, k)?, rows, k, x, m)
        }
        // SAFETY (every unsafe call below): this path is only chosen where the CPU has AVX2,
        // FMA and F16C (`Linear::new`).
        #[cfg(target_arch = "x86_64")]
        OwnPath::Q8_0Simd(GgmlDType::Q5_0) => unsafe {
            matmul_simd_q8_0::<BlockQ5_0>(blocks_of(bytes, rows, k)?, rows, k, x, m)
        },
        #[cfg(target_arch = "x86_64")]
        OwnPath::Q8_0Simd(GgmlDType::Q4_0) => unsafe {
            matmul_simd_q8_0::<BlockQ4_0>(blocks_of(bytes, rows, k)?, rows, k, x, m)
        },
        #[cfg(target_arch = "x86_64")]
        OwnPath::Q8_0Simd(_) => unsafe {
            matmul_simd_q8_0::<BlockQ8_0>(blocks_of(bytes, rows, k)?, rows, k, x, m)
        },
        #[cfg(target_arch = "x86_64")]
        OwnPath::KQuants(t) => unsafe { kquants::matmul(t, bytes, rows, k, x, m)? },
    })
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

/// Asserts at compile time that our block type has candle's size and alignment, which the
/// casts between their slices rely on.
macro_rules! same_layout {
    ($ours:ty, $candle:ty) => {
        const _: () = assert!(
            std::mem::size_of::<$ours>() == std::mem::size_of::<$candle>()
                && std::mem::align_of::<$ours>() == std::mem::align_of::<$candle>()
        );
    };
}

pub(crate) mod attention;
pub(crate) mod flash;
mod kquants;
mod math;

/// Views the raw bytes of a quantized tensor of `rows` x `k` as its blocks of 32.
fn blocks_of<B>(bytes: &[u8], rows: usize, k: usize) -> candle_core::Result<&[B]> {
    blocks_of_size(bytes, rows, k, QK)
}

/// Views the raw bytes of a quantized tensor of `rows` x `k` as its blocks of `per_block`.
fn blocks_of_size<B>(
    bytes: &[u8],
    rows: usize,
    k: usize,
    per_block: usize,
) -> candle_core::Result<&[B]> {
    let size = std::mem::size_of::<B>();
    let count = rows * (k / per_block);
    if !k.is_multiple_of(per_block) || bytes.len() != count * size {
        candle_core::bail!("quantized tensor of {rows}x{k} has {} bytes", bytes.len());
    }
    if bytes.as_ptr().align_offset(std::mem::align_of::<B>()) != 0 {
        candle_core::bail!("quantized tensor data is not aligned");
    }
    // SAFETY: the block types used here (ours and candle's BlockQ4_0/Q5_0/Q8_0) are repr(C)
    // plain data of f16 and byte arrays, valid for every bit pattern; length and alignment
    // were checked above.
    Ok(unsafe { std::slice::from_raw_parts(bytes.as_ptr().cast::<B>(), count) })
}

/// Quantizes one row of `k` activations as ggml's x86 `quantize_row_q8_1` does.
pub(crate) fn quantize_q8_1(x: &[f32], out: &mut [BlockQ8_1]) {
    for (block, xs) in out.iter_mut().zip(x.chunks_exact(QK)) {
        let amax = xs.iter().fold(0f32, |a, v| a.max(v.abs()));
        let d = amax / 127.0;
        let id = if amax != 0.0 { 127.0 / amax } else { 0.0 };
        let mut sum = 0i32;
        for (q, &v) in block.qs.iter_mut().zip(xs) {
            let r = nearest_int(v * id);
            *q = r as i8;
            sum += r;
        }
        block.d = f16::from_f32(d);
        block.s = f16::from_f32(d * sum as f32);
    }
}

/// Rounds to the nearest integer, ties to even, as ggml's `nearest_int` does: by adding
/// 1.5 * 2^23, which leaves the rounded value in the low mantissa bits. Valid for |x| < 2^22,
/// which quantized values (at most 127 in magnitude) always are; `round_ties_even` is a libm
/// call on baseline x86-64.
fn nearest_int(x: f32) -> i32 {
    let shifted = x + 12_582_912.0;
    (shifted.to_bits() & 0x007f_ffff) as i32 - 0x0040_0000
}

/// ggml's `block_q8_0`: 32 activations as `d * q`; the layout of candle's `BlockQ8_0`.
#[repr(C)]
#[derive(Clone, Copy, Default)]
pub(crate) struct BlockQ8_0 {
    d: f16,
    qs: [i8; 32],
}

same_layout!(BlockQ8_0, k_quants::BlockQ8_0);

/// Quantizes one row of activations as ggml's x86 `quantize_row_q8_0` does: scale 127/max
/// (candle multiplies by 1/(max/127), which rounds differently), ties to even.
pub(crate) fn quantize_q8_0(x: &[f32], out: &mut [BlockQ8_0]) {
    for (block, xs) in out.iter_mut().zip(x.chunks_exact(QK)) {
        let amax = xs.iter().fold(0f32, |a, v| a.max(v.abs()));
        let id = if amax != 0.0 { 127.0 / amax } else { 0.0 };
        for (q, &v) in block.qs.iter_mut().zip(xs) {
            *q = nearest_int(v * id) as i8;
        }
        block.d = f16::from_f32(amax / 127.0);
    }
}

/// `m` rows of `k` activations quantized row by row with `quantize`, in parallel, into blocks
/// of 32.
fn quantize_rows<B: Default + Clone + Send>(
    x: &[f32],
    k: usize,
    m: usize,
    quantize: impl Fn(&[f32], &mut [B]) + Sync,
) -> Vec<B> {
    quantize_rows_of(x, k, m, QK, B::default(), quantize)
}

/// As [`quantize_rows`], into blocks of `per_block` activations that start as `empty`.
fn quantize_rows_of<B: Clone + Send>(
    x: &[f32],
    k: usize,
    m: usize,
    per_block: usize,
    empty: B,
    quantize: impl Fn(&[f32], &mut [B]) + Sync,
) -> Vec<B> {
    let kb = k / per_block;
    let mut xq = vec![empty; m * kb];
    let rows = RowsOut::new(&mut xq, kb);
    for_chunks(m, |range| {
        for r in range {
            // SAFETY: each row index is handed to exactly one call (for_chunks splits 0..m
            // into disjoint ranges), so the rows written never overlap.
            quantize(&x[r * k..(r + 1) * k], unsafe { rows.row(r) });
        }
    });
    xq
}

/// Runs `f` over disjoint ranges covering `0..n` on candle's barrier pool: the pool candle's
/// own matmuls and ops run on. A second pool (rayon's) would have its threads compete with
/// candle's workers, which spin between jobs: on Gemma 3, 42% of samples were the two pools
/// waiting on each other. One item runs on the calling thread. The threads take ranges from a
/// shared cursor, eight per thread (candle's `execute_chunked`), so that a thread slowed down
/// is made up for by the others: for products bound by arithmetic. (The same schedule through
/// [`for_streams`]' cursor, eight ranges per thread, measured 10% slower on
/// Qwen2.5-Coder-1.5B's prefill, for reasons not found.)
fn for_chunks(n: usize, f: impl Fn(std::ops::Range<usize>) + Sync) {
    if n <= 1 {
        f(0..n);
    } else {
        candle_core::utils::barrier_pool().execute_chunked(n, f);
    }
}

/// [`for_chunks`] for work bound by memory bandwidth, such as a product with one activation
/// row (decode): two ranges per thread, so that each thread streams long stretches of the
/// weights. The hardware prefetchers start over at every jump; on Qwen2.5-Coder-1.5B (2
/// threads) decode went from 0.97x llama.cpp with eight ranges per thread (and 0.92x with
/// 32) to 1.1x with two.
fn for_streams(n: usize, f: impl Fn(std::ops::Range<usize>) + Sync) {
    const RANGES_PER_THREAD: usize = 2;
    thread_local! {
        /// Set while this thread runs a job: a nested call runs inline, as the pool takes
        /// one call at a time.
        static IN_JOB: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
    }
    if n <= 1 || IN_JOB.get() {
        f(0..n);
        return;
    }
    let pool = candle_core::utils::barrier_pool();
    let threads = pool.n_workers() + 1;
    let grab = n.div_ceil(threads * RANGES_PER_THREAD).max(1);
    let cursor = std::sync::atomic::AtomicUsize::new(0);
    pool.execute(|_| {
        IN_JOB.set(true);
        loop {
            let start = cursor.fetch_add(grab, std::sync::atomic::Ordering::Relaxed);
            if start >= n {
                break;
            }
            f(start..n.min(start + grab));
        }
        IN_JOB.set(false);
    });
}

/// The jobs of a product with `m` activation rows: [`for_streams`] for one row (decode,
/// bound by memory bandwidth), [`for_chunks`] for more (bound by arithmetic).
fn for_product_jobs(m: usize, n: usize, f: impl Fn(std::ops::Range<usize>) + Sync) {
    if m == 1 {
        for_streams(n, f);
    } else {
        for_chunks(n, f);
    }
}

/// A buffer of rows of `width` items (the last may be shorter) that parallel workers fill,
/// each its own rows.
struct RowsOut<T> {
    start: *mut T,
    width: usize,
    len: usize,
}

// SAFETY: the pointer is only used to write disjoint rows (see `row`), from threads that the
// buffer's owner waits for.
unsafe impl<T: Send> Sync for RowsOut<T> {}

impl<T> RowsOut<T> {
    fn new(buffer: &mut [T], width: usize) -> RowsOut<T> {
        RowsOut {
            start: buffer.as_mut_ptr(),
            width,
            len: buffer.len(),
        }
    }

    /// Row `r`, mutably.
    ///
    /// # Safety
    /// No two live references may be to the same row.
    #[allow(clippy::mut_from_ref)]
    unsafe fn row(&self, r: usize) -> &mut [T] {
        let first = r * self.width;
        let end = (first + self.width).min(self.len);
        assert!(
            first < end,
            "row {r} of a buffer of {} by {}",
            self.len,
            self.width
        );
        // SAFETY: first..end is inside the buffer (checked); the caller guarantees exclusivity.
        unsafe { std::slice::from_raw_parts_mut(self.start.add(first), end - first) }
    }

    /// Rows `first..first + count`, mutably, as one slice.
    ///
    /// # Safety
    /// No two live references may overlap.
    #[allow(clippy::mut_from_ref)]
    unsafe fn rows(&self, first: usize, count: usize) -> &mut [T] {
        let begin = first * self.width;
        let end = (first + count) * self.width;
        assert!(
            begin < end && end <= self.len,
            "rows {first}..{} of a buffer of {} by {}",
            first + count,
            self.len,
            self.width
        );
        // SAFETY: begin..end is inside the buffer (checked); the caller guarantees exclusivity.
        unsafe { std::slice::from_raw_parts_mut(self.start.add(begin), end - begin) }
    }
}

/// `x · wᵀ` for weights whose dot product partner is Q8_0, with the activations quantized by
/// [`quantize_q8_0`] and the dot product of candle's block type `W`.
fn matmul_candle_dot<W>(w: &[W], rows: usize, k: usize, x: &[f32], m: usize) -> Vec<f32>
where
    W: k_quants::GgmlType<VecDotType = k_quants::BlockQ8_0> + Sync,
{
    let dot = |wrow: &[W], xrow: &[BlockQ8_0]| W::vec_dot(k, wrow, as_candle_q8_0(xrow));
    let dot4 = |wrow: &[W], xs: [&[BlockQ8_0]; 4]| xs.map(|xrow| dot(wrow, xrow));
    matmul_quantized(w, rows, k, x, m, quantize_q8_0, dot, dot4)
}

/// `x · wᵀ` for Q4_0 or Q8_0 weights by our SIMD dot products, which give candle's results
/// bit for bit.
///
/// # Safety
/// The CPU must have AVX2, FMA and F16C.
#[cfg(target_arch = "x86_64")]
unsafe fn matmul_simd_q8_0<W: avx2::SignedBytes + Sync>(
    w: &[W],
    rows: usize,
    k: usize,
    x: &[f32],
    m: usize,
) -> Vec<f32> {
    // SAFETY (both): the caller guarantees the CPU features.
    let dot = |wrow: &[W], xrow: &[BlockQ8_0]| unsafe { avx2::dot_q8_0(wrow, xrow) };
    let dot4 = |wrow: &[W], xs: [&[BlockQ8_0]; 4]| unsafe { avx2::dot4_q8_0(wrow, xs) };
    matmul_quantized(w, rows, k, x, m, quantize_q8_0, dot, dot4)
}

/// Our Q8_0 blocks as candle's.
fn as_candle_q8_0(x: &[BlockQ8_0]) -> &[k_quants::BlockQ8_0] {
    // SAFETY: BlockQ8_0 has candle's BlockQ8_0 layout (repr(C) f16 then 32 i8; size and
    // alignment asserted with `same_layout!`), so the slice is a valid slice of candle's blocks.
    unsafe { std::slice::from_raw_parts(x.as_ptr().cast(), x.len()) }
}

/// ggml's `block_q4_0`: 32 weights as `d * (q - 8)`, low nibbles first; candle's `BlockQ4_0`.
#[repr(C)]
#[derive(Clone, Copy)]
pub(crate) struct BlockQ4_0 {
    d: f16,
    qs: [u8; 16],
}

same_layout!(BlockQ4_0, k_quants::BlockQ4_0);

/// ggml's `block_q5_0`: 32 weights as `d * (q - 16)`, q's fifth bits in `qh`; candle's
/// `BlockQ5_0`.
#[repr(C)]
#[derive(Clone, Copy)]
pub(crate) struct BlockQ5_0 {
    d: f16,
    qh: [u8; 4],
    qs: [u8; 16],
}

same_layout!(BlockQ5_0, k_quants::BlockQ5_0);

/// `x · wᵀ`: the `m` rows of `k` activations quantized by `quantize`, then every weight row
/// against every activation row by [`matmul_blocks`] with `dot` and `dot4`.
#[allow(clippy::too_many_arguments)]
fn matmul_quantized<W: Sync, X: Default + Clone + Send + Sync>(
    w: &[W],
    rows: usize,
    k: usize,
    x: &[f32],
    m: usize,
    quantize: impl Fn(&[f32], &mut [X]) + Sync,
    dot: impl Fn(&[W], &[X]) -> f32 + Sync,
    dot4: impl Fn(&[W], [&[X]; 4]) -> [f32; 4] + Sync,
) -> Vec<f32> {
    let xq = quantize_rows(x, k, m, quantize);
    matmul_blocks(w, rows, k / QK, &xq, m, dot, dot4)
}

/// `out[i][j] = dot(w[j], x[i])` over rows of `kb` blocks. Weight rows are split across
/// threads in tasks of [`ROWS_PER_TASK`]; within a task the activations go by in tiles of
/// [`TOKENS_PER_TILE`] rows, so each tile is read once from memory for all the task's weight
/// rows, and `dot4` takes four activation rows per weight row where it can (it must give
/// what four calls of `dot` give).
fn matmul_blocks<W: Sync, X: Sync>(
    w: &[W],
    rows: usize,
    kb: usize,
    xq: &[X],
    m: usize,
    dot: impl Fn(&[W], &[X]) -> f32 + Sync,
    dot4: impl Fn(&[W], [&[X]; 4]) -> [f32; 4] + Sync,
) -> Vec<f32> {
    let mut out_t = vec![0f32; rows * m];
    let x_row = |i: usize| &xq[i * kb..(i + 1) * kb];
    let tasks = rows.div_ceil(ROWS_PER_TASK);
    let out_rows = RowsOut::new(&mut out_t, ROWS_PER_TASK * m);
    for_product_jobs(m, tasks, |range| {
        for task in range {
            // SAFETY: each task index comes in exactly one range; tasks own disjoint rows.
            let out = unsafe { out_rows.row(task) };
            let first = task * ROWS_PER_TASK;
            let task_rows = out.len() / m;
            for tile in (0..m).step_by(TOKENS_PER_TILE) {
                let tile_end = (tile + TOKENS_PER_TILE).min(m);
                for r in 0..task_rows {
                    let wrow = &w[(first + r) * kb..(first + r + 1) * kb];
                    let out_row = &mut out[r * m..(r + 1) * m];
                    let mut i = tile;
                    while i + 4 <= tile_end {
                        let four = dot4(wrow, [x_row(i), x_row(i + 1), x_row(i + 2), x_row(i + 3)]);
                        out_row[i..i + 4].copy_from_slice(&four);
                        i += 4;
                    }
                    for (j, o) in out_row[i..tile_end].iter_mut().enumerate() {
                        *o = dot(wrow, x_row(i + j));
                    }
                }
            }
        }
    });
    transpose_out(out_t, rows, m)
}

const ROWS_PER_TASK: usize = 16;
const TOKENS_PER_TILE: usize = 32;

/// `(rows, m)` to `(m, rows)`, in blocks of sixteen tokens on the pool: each block reads one
/// cache line per weight row. Done plainly on the calling thread it was 9% of Gemma 3's
/// prefill, with the other threads idle.
fn transpose_out(out_t: Vec<f32>, rows: usize, m: usize) -> Vec<f32> {
    const TOKENS: usize = 16;
    if m == 1 {
        return out_t;
    }
    let mut out = vec![0f32; m * rows];
    let spans = RowsOut::new(&mut out, TOKENS * rows);
    for_chunks(m.div_ceil(TOKENS), |range| {
        for block in range {
            // SAFETY: each block index comes in exactly one range.
            let span = unsafe { spans.row(block) };
            let (first, tokens) = (block * TOKENS, span.len() / rows);
            for (j, row) in out_t.chunks_exact(m).enumerate() {
                for (t, &v) in row[first..first + tokens].iter().enumerate() {
                    span[t * rows + j] = v;
                }
            }
        }
    });
    out
}

type DotFn = fn(&[BlockQ4_1], &[BlockQ8_1]) -> f32;
type Dot4Fn = fn(&[BlockQ4_1], [&[BlockQ8_1]; 4]) -> [f32; 4];

fn has_avx2_f16c() -> bool {
    #[cfg(target_arch = "x86_64")]
    {
        std::arch::is_x86_feature_detected!("avx2")
            && std::arch::is_x86_feature_detected!("fma")
            && std::arch::is_x86_feature_detected!("f16c")
    }
    #[cfg(not(target_arch = "x86_64"))]
    false
}

fn dot_fn() -> DotFn {
    #[cfg(target_arch = "x86_64")]
    if has_avx2_f16c() {
        return |w, x| {
            // SAFETY: the CPU supports AVX2, FMA and F16C, checked just above.
            unsafe { avx2::dot_q4_1_q8_1(w, x) }
        };
    }
    dot_q4_1_q8_1_portable
}

fn dot4_fn() -> Dot4Fn {
    #[cfg(target_arch = "x86_64")]
    if has_avx2_f16c() {
        return |w, x| {
            // SAFETY: the CPU supports AVX2, FMA and F16C, checked just above.
            unsafe { avx2::dot4_q4_1_q8_1(w, x) }
        };
    }
    |w, x| x.map(|x| dot_q4_1_q8_1_portable(w, x))
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

    use super::{BlockQ4_0, BlockQ4_1, BlockQ5_0, BlockQ8_0, BlockQ8_1};

    /// Weight blocks of 32 whose values are signed bytes times an f16 scale: repr(C) types
    /// whose first field is that scale.
    pub(crate) trait SignedBytes: Copy {
        /// The 32 values as signed bytes.
        unsafe fn values(&self) -> __m256i;
        fn scale(&self) -> *const half::f16 {
            (self as *const Self).cast()
        }
    }

    impl SignedBytes for BlockQ8_0 {
        #[inline(always)]
        unsafe fn values(&self) -> __m256i {
            // SAFETY: 32 bytes; unaligned load.
            unsafe { _mm256_loadu_si256(self.qs.as_ptr().cast()) }
        }
    }

    impl SignedBytes for BlockQ4_0 {
        #[inline(always)]
        unsafe fn values(&self) -> __m256i {
            // SAFETY: 16 bytes; unaligned load. Callers enable AVX2.
            unsafe {
                let nibbles = nibbles(&self.qs);
                _mm256_sub_epi8(nibbles, _mm256_set1_epi8(8))
            }
        }
    }

    impl SignedBytes for BlockQ5_0 {
        #[inline(always)]
        unsafe fn values(&self) -> __m256i {
            // SAFETY: 16 + 4 bytes; unaligned loads. Callers enable AVX2. ggml's
            // `bytes_from_bits_32`: byte j is 0xff where bit j of qh is set; where it is not,
            // 0xf0 ored into the nibble makes it `q - 16` as a signed byte.
            unsafe {
                let nibbles = nibbles(&self.qs);
                let bits = i32::from_le_bytes(self.qh);
                let spread = _mm256_shuffle_epi8(
                    _mm256_set1_epi32(bits),
                    _mm256_set_epi64x(
                        0x0303_0303_0303_0303,
                        0x0202_0202_0202_0202,
                        0x0101_0101_0101_0101,
                        0,
                    ),
                );
                let marked = _mm256_or_si256(spread, _mm256_set1_epi64x(0x7fbf_dfef_f7fb_fdfe));
                let set = _mm256_cmpeq_epi8(marked, _mm256_set1_epi64x(-1));
                let high = _mm256_andnot_si256(set, _mm256_set1_epi8(0xf0u8 as i8));
                _mm256_or_si256(nibbles, high)
            }
        }
    }

    /// The 32 four-bit values of a block as bytes: low nibbles of `qs` first, then the high.
    #[target_feature(enable = "avx2,fma,f16c")]
    #[inline]
    fn nibbles(qs: &[u8; 16]) -> __m256i {
        // SAFETY: 16 bytes; unaligned load.
        let packed = unsafe { _mm_loadu_si128(qs.as_ptr().cast()) };
        let bytes = _mm256_insertf128_si256::<1>(
            _mm256_castsi128_si256(packed),
            _mm_srli_epi16::<4>(packed),
        );
        _mm256_and_si256(_mm256_set1_epi8(0x0f), bytes)
    }

    /// One f16 as f32, converted by F16C in the register.
    #[target_feature(enable = "avx2,fma,f16c")]
    #[inline]
    unsafe fn f16_at(at: *const half::f16) -> f32 {
        // SAFETY: the pointer is to an f16 inside a block.
        let bits = unsafe { std::ptr::read_unaligned(at.cast::<u16>()) };
        _mm_cvtss_f32(_mm_cvtph_ps(_mm_cvtsi32_si128(i32::from(bits))))
    }

    /// Signed bytes `x · y` summed in pairs to eight f32 lanes, as ggml and candle do it.
    #[target_feature(enable = "avx2,fma,f16c")]
    #[inline]
    fn mul_sum_i8_pairs(x: __m256i, y: __m256i) -> __m256 {
        let ax = _mm256_sign_epi8(x, x);
        let sy = _mm256_sign_epi8(y, x);
        let dot = _mm256_maddubs_epi16(ax, sy);
        _mm256_cvtepi32_ps(_mm256_madd_epi16(_mm256_set1_epi16(1), dot))
    }

    /// ggml's (and candle's) `vec_dot_q8_0_q8_0` / `vec_dot_q4_0_q8_0` / `vec_dot_q5_0_q8_0`
    /// arithmetic: per block `acc = fma(d_w · d_x, lanes, acc)` on eight i32 lanes, then
    /// `hsum_float_8`.
    #[target_feature(enable = "avx2,fma,f16c")]
    pub(crate) unsafe fn dot_q8_0<W: SignedBytes>(w: &[W], x: &[BlockQ8_0]) -> f32 {
        let mut acc = _mm256_setzero_ps();
        for (wb, xb) in w.iter().zip(x) {
            // SAFETY: scale pointers are into the blocks; 32-byte loads of the quants.
            unsafe {
                let d = _mm256_set1_ps(f16_at(wb.scale()) * f16_at(&xb.d));
                let q = mul_sum_i8_pairs(wb.values(), _mm256_loadu_si256(xb.qs.as_ptr().cast()));
                acc = _mm256_fmadd_ps(d, q, acc);
            }
        }
        hsum(acc)
    }

    /// [`dot_q8_0`] against four activation rows, each with exactly its arithmetic.
    #[target_feature(enable = "avx2,fma,f16c")]
    pub(crate) unsafe fn dot4_q8_0<W: SignedBytes>(w: &[W], x: [&[BlockQ8_0]; 4]) -> [f32; 4] {
        let n = w.len();
        assert!(x.iter().all(|r| r.len() >= n));
        let mut acc = [_mm256_setzero_ps(); 4];
        for (b, wb) in w.iter().enumerate() {
            // SAFETY: b < n <= every row's length (asserted above); as in `dot_q8_0`.
            unsafe {
                let values = wb.values();
                let dw = f16_at(wb.scale());
                for t in 0..4 {
                    let xb = x[t].get_unchecked(b);
                    let d = _mm256_set1_ps(dw * f16_at(&xb.d));
                    let q = mul_sum_i8_pairs(values, _mm256_loadu_si256(xb.qs.as_ptr().cast()));
                    acc[t] = _mm256_fmadd_ps(d, q, acc[t]);
                }
            }
        }
        std::array::from_fn(|t| hsum(acc[t]))
    }

    /// The two f16 values at the start of a block (`d` then `m` or `s`) as f32 lanes 0 and 1,
    /// converted by F16C in the register instead of a call per value.
    #[target_feature(enable = "avx2,fma,f16c")]
    #[inline]
    unsafe fn pair(first: *const half::f16) -> __m128 {
        // SAFETY: both block types start with two f16 values (4 bytes).
        let bits = unsafe { std::ptr::read_unaligned(first.cast::<i32>()) };
        _mm_cvtph_ps(_mm_cvtsi32_si128(bits))
    }

    /// `(d_w * d_x, m_w * s_x)` of one block pair.
    #[target_feature(enable = "avx2,fma,f16c")]
    #[inline]
    unsafe fn factors(wb: &BlockQ4_1, xb: &BlockQ8_1) -> (f32, f32) {
        // SAFETY: see `pair`.
        let p = unsafe { _mm_mul_ps(pair(&wb.d), pair(&xb.d)) };
        (_mm_cvtss_f32(p), _mm_cvtss_f32(_mm_movehdup_ps(p)))
    }

    #[target_feature(enable = "avx2,fma,f16c")]
    #[inline]
    pub(super) fn hsum(acc: __m256) -> f32 {
        let hi = _mm256_extractf128_ps::<1>(acc);
        let quad = _mm_add_ps(hi, _mm256_castps256_ps128(acc));
        let pair = _mm_add_ps(quad, _mm_movehl_ps(quad, quad));
        let one = _mm_add_ss(pair, _mm_movehdup_ps(pair));
        _mm_cvtss_f32(one)
    }

    #[target_feature(enable = "avx2,fma,f16c")]
    pub(super) unsafe fn dot_q4_1_q8_1(w: &[BlockQ4_1], x: &[BlockQ8_1]) -> f32 {
        let mut acc = _mm256_setzero_ps();
        let mut mins = 0f32;
        let ones = _mm256_set1_epi16(1);
        for (wb, xb) in w.iter().zip(x) {
            // SAFETY: F16C is enabled for this function.
            let (scale, min) = unsafe { factors(wb, xb) };
            mins += min;
            let scale = _mm256_set1_ps(scale);
            let qw = nibbles(&wb.qs);
            // SAFETY: qs is 32 bytes long; unaligned load.
            let qx = unsafe { _mm256_loadu_si256(xb.qs.as_ptr().cast()) };
            let pairs = _mm256_maddubs_epi16(qw, qx);
            let sums = _mm256_madd_epi16(pairs, ones);
            acc = _mm256_fmadd_ps(scale, _mm256_cvtepi32_ps(sums), acc);
        }
        hsum(acc) + mins
    }

    /// [`dot_q4_1_q8_1`] of one weight row with four activation rows, each with exactly the
    /// arithmetic of the single product; the weight nibbles are unpacked once for all four.
    #[target_feature(enable = "avx2,fma,f16c")]
    pub(super) unsafe fn dot4_q4_1_q8_1(w: &[BlockQ4_1], x: [&[BlockQ8_1]; 4]) -> [f32; 4] {
        let n = w.len();
        assert!(x.iter().all(|r| r.len() >= n));
        let mut acc = [_mm256_setzero_ps(); 4];
        let mut mins = [0f32; 4];
        let ones = _mm256_set1_epi16(1);
        for (b, wb) in w.iter().enumerate() {
            let qw = nibbles(&wb.qs);
            for t in 0..4 {
                // SAFETY: b < n <= every row's length (asserted above); qs is 32 bytes.
                let xb = unsafe { x[t].get_unchecked(b) };
                let (scale, min) = unsafe { factors(wb, xb) };
                mins[t] += min;
                let qx = unsafe { _mm256_loadu_si256(xb.qs.as_ptr().cast()) };
                let sums = _mm256_madd_epi16(_mm256_maddubs_epi16(qw, qx), ones);
                acc[t] = _mm256_fmadd_ps(_mm256_set1_ps(scale), _mm256_cvtepi32_ps(sums), acc[t]);
            }
        }
        std::array::from_fn(|t| hsum(acc[t]) + mins[t])
    }
}

// ---------------------------------------------------------------------------------------------
// GELU as ggml computes it on the CPU: from a table of f16 results. Greedy decoding follows
// near-ties, so matching this rounding keeps a model's continuations equal to llama.cpp's
// (Gemma 3 greedy parity went from 7 to 8 of 10 prompts with this and the Q8_0 activations).

/// Values below this many elements are rounded on the calling thread.
const PARALLEL_MIN: usize = 1 << 16;
const CHUNK: usize = 4096;

/// The cache positions a query at `query` sees: causal, and with a sliding window, the last
/// `window` positions through its own (a key `window` or more positions behind is hidden).
pub(crate) fn visible_keys(window: Option<usize>, query: usize) -> std::ops::Range<usize> {
    let first = window.map_or(0, |w| (query + 1).saturating_sub(w));
    first..query + 1
}

/// What every attention kernel reads: one layer's queries and its cached keys and values
/// (elements `T`: f32 or f16), with the shapes and positions that say which keys each query sees.
pub(crate) struct AttentionInputs<'a, T> {
    /// `(kv_heads, group * seq, head_dim)`: the queries sharing a KV head, head-major.
    pub queries: &'a [f32],
    /// One layer's cached keys, `(kv_heads, capacity, head_dim)`.
    pub keys: &'a [T],
    /// One layer's cached values, same shape as `keys`.
    pub values: &'a [T],
    pub kv_heads: usize,
    pub group: usize,
    pub seq: usize,
    pub head_dim: usize,
    /// Cache positions per KV head.
    pub capacity: usize,
    /// Position of the first query.
    pub position: usize,
    /// Sliding window: a key `window` or more positions behind a query is hidden from it.
    pub window: Option<usize>,
}

/// `silu(gate) * up` as ggml's CPU code computes it ([`math::swiglu_row`]): libm's `expf` and
/// ggml's polynomial differ in the last bit, enough to flip an 8-bit rounding in the next matmul.
pub(crate) fn swiglu_ggml(gate: &Tensor, up: &Tensor) -> candle_core::Result<Tensor> {
    if !gate.device().is_cpu() || gate.dtype() != candle_core::DType::F32 {
        return candle_nn::ops::silu(gate)? * up;
    }
    if gate.shape() != up.shape() {
        candle_core::bail!(
            "swiglu: gate {:?} and up {:?} differ",
            gate.shape(),
            up.shape()
        );
    }
    let width = gate.dims().last().copied().unwrap_or(0).max(1);
    let x = gate.flatten_all()?.to_vec1::<f32>()?;
    let g = up.flatten_all()?.to_vec1::<f32>()?;
    let mut y = vec![0f32; x.len()];
    // Row by row, as ggml: its 16-lane blocks start at each row's start.
    for_each_row(&mut y, width, |r, dst| {
        let at = r * width;
        math::swiglu_row(&x[at..at + dst.len()], &g[at..at + dst.len()], dst);
    });
    Tensor::from_vec(y, gate.shape(), gate.device())
}

/// RoPE of `x`, `(seq, heads, head_dim)`, with the angles' `cos` and `sin` given per position
/// (`(seq, head_dim / 2)`), rounded as ggml's CPU code rounds it: of each pair's two products
/// the one with `x0` is fused into the sum, as GCC contracts ggml's `x0*cos - x1*sin` and
/// `x0*sin + x1*cos`. candle rounds both products; the last bits differ, and in an f16 cache a
/// last bit can move a key to the next f16 value. `half_split` pairs `i` with `i + head_dim / 2`
/// (NEOX); otherwise adjacent dimensions pair up.
pub(crate) fn rope_ggml(
    x: &Tensor,
    cos: &[f32],
    sin: &[f32],
    half_split: bool,
) -> candle_core::Result<Tensor> {
    let (seq, heads, hd) = x.dims3()?;
    let half = hd / 2;
    if cos.len() != seq * half || sin.len() != seq * half || hd % 2 != 0 {
        candle_core::bail!("rope: tables of {} for {seq} positions of {hd}", cos.len());
    }
    let mut data = x.flatten_all()?.to_vec1::<f32>()?;
    #[cfg(target_arch = "x86_64")]
    if std::arch::is_x86_feature_detected!("fma") {
        // SAFETY: FMA was just checked; `mul_add` becomes one instruction instead of a call.
        unsafe { rope_rows_fma(&mut data, cos, sin, heads, hd, half_split) };
        return Tensor::from_vec(data, (seq, heads, hd), x.device());
    }
    rope_rows(&mut data, cos, sin, heads, hd, half_split);
    Tensor::from_vec(data, (seq, heads, hd), x.device())
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "fma")]
unsafe fn rope_rows_fma(
    data: &mut [f32],
    cos: &[f32],
    sin: &[f32],
    heads: usize,
    hd: usize,
    half_split: bool,
) {
    rope_rows(data, cos, sin, heads, hd, half_split);
}

#[inline(always)]
fn rope_rows(
    data: &mut [f32],
    cos: &[f32],
    sin: &[f32],
    heads: usize,
    hd: usize,
    half_split: bool,
) {
    let half = hd / 2;
    for (t, token) in data.chunks_exact_mut(heads * hd).enumerate() {
        let (cos, sin) = (
            &cos[t * half..(t + 1) * half],
            &sin[t * half..(t + 1) * half],
        );
        for head in token.chunks_exact_mut(hd) {
            for i in 0..half {
                let (a, b) = if half_split {
                    (i, i + half)
                } else {
                    (2 * i, 2 * i + 1)
                };
                let (x0, x1) = (head[a], head[b]);
                // GCC vectorises ggml's pair as (x0, x0) * (cos, sin) fused with
                // -/+ (x1, x1) * (sin, cos): the x0 products are the fused ones.
                head[a] = x0.mul_add(cos[i], -(x1 * sin[i]));
                head[b] = x0.mul_add(sin[i], x1 * cos[i]);
            }
        }
    }
}

/// RMSNorm of every row (the last dimension) times `weight`, as ggml computes it on the CPU:
/// squares summed in f64, `x * (1 / sqrt(mean + eps)) * w` in f32. candle sums in f32 and
/// divides by the root; the results differ in the last bit, and a last bit is enough to flip
/// the rounding of an activation quantized to 8 bits for the next matmul (on a tiny Q4_1
/// model: logits 0.1 apart instead of 4e-5).
pub(crate) fn rms_norm_ggml(x: &Tensor, weight: &Tensor, eps: f32) -> candle_core::Result<Tensor> {
    if !x.device().is_cpu() || x.dtype() != candle_core::DType::F32 {
        return candle_nn::ops::rms_norm(x, weight, eps);
    }
    x.contiguous()?
        .apply_op2_no_bwd(&weight.contiguous()?, &RmsNorm { eps })
}

struct RmsNorm {
    eps: f32,
}

impl candle_core::CustomOp2 for RmsNorm {
    fn name(&self) -> &'static str {
        "rms-norm-ggml"
    }

    fn cpu_fwd(
        &self,
        s1: &candle_core::CpuStorage,
        l1: &candle_core::Layout,
        s2: &candle_core::CpuStorage,
        l2: &candle_core::Layout,
    ) -> candle_core::Result<(candle_core::CpuStorage, candle_core::Shape)> {
        let input = f32_slice(s1, l1, self.name())?;
        let weight = f32_slice(s2, l2, self.name())?;
        let width = l1.dims().last().copied().unwrap_or(0);
        if width == 0 || weight.len() != width {
            candle_core::bail!(
                "rms-norm-ggml: rows of {width} against a weight of {}",
                weight.len()
            );
        }
        let mut out = vec![0f32; input.len()];
        for_each_row(&mut out, width, |r, y| {
            rms_norm_row(&input[r * width..(r + 1) * width], weight, self.eps, y);
        });
        Ok((candle_core::CpuStorage::F32(out), l1.shape().clone()))
    }
}

/// ggml's `ggml_compute_forward_rms_norm_f32` fused with the weight, for one row.
fn rms_norm_row(x: &[f32], weight: &[f32], eps: f32, y: &mut [f32]) {
    let sum: f64 = x.iter().map(|&v| (v * v) as f64).sum();
    let mean = (sum / x.len() as f64) as f32;
    let scale = 1.0 / (mean + eps).sqrt();
    for ((y, &x), &w) in y.iter_mut().zip(x).zip(weight) {
        *y = x * scale * w;
    }
}

/// GELU (tanh approximation) as ggml computes it on the CPU: the input rounded to f16, the
/// result read from a table of f16 values, 0 below -10 and the identity above 10.
pub(crate) fn gelu_ggml(t: &Tensor) -> candle_core::Result<Tensor> {
    if !t.device().is_cpu() {
        return t.gelu();
    }
    t.contiguous()?.apply_op1_no_bwd(&GeluTable)
}

struct GeluTable;

impl candle_core::CustomOp1 for GeluTable {
    fn name(&self) -> &'static str {
        "gelu-ggml"
    }

    fn cpu_fwd(
        &self,
        storage: &candle_core::CpuStorage,
        layout: &candle_core::Layout,
    ) -> candle_core::Result<(candle_core::CpuStorage, candle_core::Shape)> {
        let input = f32_slice(storage, layout, self.name())?;
        let table = gelu_table();
        let mut out = vec![0f32; input.len()];
        for_each_row(&mut out, CHUNK, |c, dst| {
            for (x, y) in input[c * CHUNK..].iter().zip(dst) {
                *y = gelu_from_table(table, *x);
            }
        });
        Ok((candle_core::CpuStorage::F32(out), layout.shape().clone()))
    }
}

fn f32_slice<'a>(
    storage: &'a candle_core::CpuStorage,
    layout: &candle_core::Layout,
    op: &str,
) -> candle_core::Result<&'a [f32]> {
    let candle_core::CpuStorage::F32(data) = storage else {
        candle_core::bail!("{op} takes f32 tensors");
    };
    match layout.contiguous_offsets() {
        Some((start, end)) => Ok(&data[start..end]),
        None => candle_core::bail!("{op} takes contiguous tensors"),
    }
}

/// Calls `f(r, row)` for every row of `width` (> 0) items of `out` (the last may be shorter): on
/// this thread below [`PARALLEL_MIN`] items, else on candle's worker pool.
fn for_each_row(out: &mut [f32], width: usize, f: impl Fn(usize, &mut [f32]) + Sync) {
    if out.len() < PARALLEL_MIN {
        for (r, row) in out.chunks_mut(width).enumerate() {
            f(r, row);
        }
    } else {
        let rows = out.len().div_ceil(width);
        let sink = RowsOut::new(out, width);
        for_chunks(rows, |range| {
            for r in range {
                // SAFETY: each row index comes in exactly one range.
                f(r, unsafe { sink.row(r) });
            }
        });
    }
}

/// ggml's `ggml_gelu_f32`, in f32 arithmetic as ggml writes it.
fn gelu_f32(x: f32) -> f32 {
    const GELU_COEF_A: f32 = 0.044715;
    const SQRT_2_OVER_PI: f32 = 0.797_884_6;
    0.5 * x * (1.0 + (SQRT_2_OVER_PI * x * (1.0 + GELU_COEF_A * x * x)).tanh())
}

/// GELU of every f16 value, rounded to f16 and kept as f32: ggml's `ggml_table_gelu_f16`.
fn gelu_table() -> &'static [f32] {
    static TABLE: std::sync::OnceLock<Vec<f32>> = std::sync::OnceLock::new();
    TABLE.get_or_init(|| {
        (0..=u16::MAX)
            .map(|bits| f16::from_f32(gelu_f32(f16::from_bits(bits).to_f32())).to_f32())
            .collect()
    })
}

fn gelu_from_table(table: &[f32], x: f32) -> f32 {
    if x <= -10.0 {
        0.0
    } else if x >= 10.0 {
        x
    } else {
        table[f16::from_f32(x).to_bits() as usize]
    }
}

/// `n` pseudo-random values in [-1, 1) from `seed` (xorshift), for the kernels' tests.
#[cfg(test)]
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

#[cfg(test)]
mod tests {
    use super::*;

    fn q4_1_tensor(rows: usize, k: usize) -> Arc<QTensor> {
        let w = Tensor::from_vec(random(rows * k, 7), (rows, k), &Device::Cpu).unwrap();
        Arc::new(QTensor::quantize(&w, GgmlDType::Q4_1).unwrap())
    }

    #[test]
    fn simd_dot_equals_the_portable_arithmetic() {
        let (rows, k) = (8, 256);
        let t = q4_1_tensor(rows, k);
        let bytes = t.data().unwrap();
        let w = blocks_of::<BlockQ4_1>(&bytes, rows, k).unwrap();
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

    /// ggml's `vec_dot_q5_0_q8_0` for one weight row, written plainly: eight i32 lanes of four
    /// values each per block, `acc = fma(d_w · d_x, lane, acc)`, then `hsum_float_8`.
    fn reference_q5_0(w: &[BlockQ5_0], x: &[BlockQ8_0]) -> f32 {
        let mut acc = [0f32; 8];
        for (wb, xb) in w.iter().zip(x) {
            let d = wb.d.to_f32() * xb.d.to_f32();
            let high = u32::from_le_bytes(wb.qh);
            let mut lanes = [0i32; 8];
            for v in 0..32 {
                let nibble = if v < 16 {
                    wb.qs[v] & 15
                } else {
                    wb.qs[v - 16] >> 4
                };
                let q = i32::from(nibble) | (((high >> v) & 1) as i32) << 4;
                lanes[v / 4] += (q - 16) * i32::from(xb.qs[v]);
            }
            for (acc, lane) in acc.iter_mut().zip(lanes) {
                *acc = d.mul_add(lane as f32, *acc);
            }
        }
        let r: [f32; 4] = std::array::from_fn(|i| acc[i + 4] + acc[i]);
        (r[0] + r[2]) + (r[1] + r[3])
    }

    /// Our Q4_0 and Q8_0 products equal candle's bit for bit (only the f16 conversion and the
    /// row grouping differ: candle's arithmetic is ggml's there), and Q5_0's equal ggml's
    /// (candle sums Q5_0 in scalar order), for decode and prefill shapes.
    #[cfg(target_arch = "x86_64")]
    #[test]
    fn q8_0_activation_dots_equal_ggml_exactly() {
        if !has_avx2_f16c() {
            return;
        }
        let bits = |v: &[f32]| v.iter().map(|f| f.to_bits()).collect::<Vec<_>>();
        for (rows, dtype) in [
            (21, GgmlDType::Q4_0),
            (21, GgmlDType::Q5_0),
            (48, GgmlDType::Q5_0),
            (21, GgmlDType::Q8_0),
        ] {
            let k = 256;
            let w = Tensor::from_vec(random(rows * k, 31), (rows, k), &Device::Cpu).unwrap();

            let t = QTensor::quantize(&w, dtype).unwrap();
            let bytes = t.data().unwrap();
            for m in [1, 6, 19, 70] {
                let x = random(m * k, 41);
                let ours = product(OwnPath::Q8_0Simd(dtype), &bytes, rows, k, &x, m).unwrap();
                let expected = if dtype == GgmlDType::Q5_0 {
                    let w = blocks_of::<BlockQ5_0>(&bytes, rows, k).unwrap();
                    let xq = quantize_rows(&x, k, m, quantize_q8_0);
                    let kb = k / QK;
                    let mut out = Vec::with_capacity(m * rows);
                    for i in 0..m {
                        for r in 0..rows {
                            let a = &xq[i * kb..(i + 1) * kb];
                            out.push(reference_q5_0(&w[r * kb..(r + 1) * kb], a));
                        }
                    }
                    out
                } else {
                    product(OwnPath::Q8_0Activations(dtype), &bytes, rows, k, &x, m).unwrap()
                };
                assert_eq!(bits(&ours), bits(&expected), "{dtype:?} {rows} rows, m={m}");
            }
        }
    }

    #[test]
    fn nearest_int_rounds_ties_to_even() {
        for x in [
            0.0f32, 0.5, 1.5, 2.5, -0.5, -1.5, -2.5, 126.6, -127.0, 3.499, -3.501, 0.49999997,
        ] {
            assert_eq!(nearest_int(x), x.round_ties_even() as i32, "{x}");
        }
    }

    /// The four-row product gives exactly what four single products give, and the tiled
    /// product visits every (token, row) pair once whatever the remainders.
    #[test]
    fn four_row_dot_and_tiles_equal_single_dots() {
        let (rows, k) = (19, 256);
        let t = q4_1_tensor(rows, k);
        let bytes = t.data().unwrap();
        let w = blocks_of::<BlockQ4_1>(&bytes, rows, k).unwrap();
        for m in [1, 3, 4, 37] {
            let x = random(m * k, m as u64 + 5);
            let got = product(OwnPath::Q4_1, &bytes, rows, k, &x, m).unwrap();
            let mut xq = vec![BlockQ8_1::default(); m * (k / QK)];
            for (q, row) in xq.chunks_mut(k / QK).zip(x.chunks(k)) {
                quantize_q8_1(row, q);
            }
            let dot = dot_fn();
            for i in 0..m {
                for j in 0..rows {
                    let want = dot(&w[j * 8..(j + 1) * 8], &xq[i * 8..(i + 1) * 8]);
                    assert_eq!(
                        got[i * rows + j].to_bits(),
                        want.to_bits(),
                        "m={m} [{i}][{j}]"
                    );
                }
            }
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

    /// Our paths against candle's (its own activation quantization) on decode and prefill
    /// shapes: the same function up to activation rounding.
    #[test]
    fn linear_matches_candle_within_quantization_noise() {
        let (rows, k) = (48, 512);
        for dtype in [
            GgmlDType::Q4_1,
            GgmlDType::Q4_0,
            GgmlDType::Q5_0,
            GgmlDType::Q8_0,
        ] {
            let w = Tensor::from_vec(random(rows * k, 7), (rows, k), &Device::Cpu).unwrap();
            let t = Arc::new(QTensor::quantize(&w, dtype).unwrap());
            compare_with_candle(t, k);
        }
    }

    fn compare_with_candle(t: Arc<QTensor>, k: usize) {
        let ours = Linear::new(Arc::clone(&t)).unwrap();
        assert!(!uses_candle(&ours), "{:?}", t.dtype());
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
        let w = Tensor::from_vec(random(32 * 256, 3), (32, 256), &Device::Cpu).unwrap();
        for dtype in [GgmlDType::Q5K, GgmlDType::Q2K] {
            let q = Arc::new(QTensor::quantize(&w, dtype).unwrap());
            assert!(uses_candle(&Linear::new(q).unwrap()), "{dtype:?}");
        }
        // Q4_K in a height ggml does not repack: ours, row by row, not interleaved.
        let w = Tensor::from_vec(random(20 * 256, 3), (20, 256), &Device::Cpu).unwrap();
        let q = Arc::new(QTensor::quantize(&w, GgmlDType::Q4K).unwrap());
        let linear = Linear::new(q).unwrap();
        #[cfg(target_arch = "x86_64")]
        if has_avx2_f16c() {
            assert!(matches!(
                linear.path,
                LinearPath::Blocks {
                    own: Some(OwnPath::KQuants(GgmlDType::Q4K)),
                    ..
                }
            ));
        }
    }

    fn uses_candle(linear: &Linear) -> bool {
        matches!(linear.path, LinearPath::Blocks { own: None, .. })
    }

    /// A Q4_K matrix nothing else holds is interleaved and its blocks dropped; a shared one
    /// (a tied embedding table) keeps its blocks, as llama.cpp keeps it unpacked. Both give
    /// candle's products up to rounding (`kquants` holds each to ggml's arithmetic for its
    /// form), whatever the input's shape.
    #[cfg(target_arch = "x86_64")]
    #[test]
    fn q4k_linear_interleaves_only_what_it_owns() {
        if !has_avx2_f16c() {
            return;
        }
        let (rows, k) = (32, 512);
        let w = Tensor::from_vec(random(rows * k, 5), (rows, k), &Device::Cpu).unwrap();
        let q = Arc::new(QTensor::quantize(&w, GgmlDType::Q4K).unwrap());
        let candle = QMatMul::from_arc(Arc::clone(&q)).unwrap();
        let shared = Linear::new(Arc::clone(&q)).unwrap();
        assert!(matches!(
            shared.path,
            LinearPath::Blocks {
                own: Some(OwnPath::KQuants(GgmlDType::Q4K)),
                ..
            }
        ));
        let copy = QTensor::quantize(&w, GgmlDType::Q4K).unwrap();
        let owned = Linear::new(Arc::new(copy)).unwrap();
        assert!(matches!(owned.path, LinearPath::Q4KInterleaved(_)));
        let x = Tensor::from_vec(random(2 * 3 * k, 9), (2, 3, k), &Device::Cpu).unwrap();
        let values = |t: &Tensor| t.flatten_all().unwrap().to_vec1::<f32>().unwrap();
        let expected = values(&candle.forward(&x).unwrap());
        let from_shared = shared.forward(&x).unwrap();
        assert_eq!(from_shared.dims(), &[2, 3, rows]);
        let from_owned = owned.forward(&x).unwrap();
        assert_eq!(from_owned.dims(), &[2, 3, rows]);
        for ours in [values(&from_shared), values(&from_owned)] {
            for (ours, theirs) in ours.iter().zip(&expected) {
                assert!(
                    (ours - theirs).abs() < 1e-4 * theirs.abs().max(1.0),
                    "{ours} {theirs}"
                );
            }
        }
    }

    #[test]
    fn q8_0_quantization_rounds_like_ggml() {
        let mut x = vec![0f32; 32];
        x[0] = -127.0; // scale 1 from the largest magnitude, whatever its sign
        x[1] = 2.5; // tie: to even (2), not away from zero (3) as candle rounds
        x[2] = -3.5; // tie: to -4
        x[3] = 0.49;
        let mut q = [BlockQ8_0::default()];
        quantize_q8_0(&x, &mut q);
        assert_eq!(&q[0].qs[..4], &[-127, 2, -4, 0]);
        assert_eq!(q[0].d.to_f32(), 1.0);
        // The multiplier is 127/max, not 1/(max/127): with max 0.1 these differ in the last
        // bit, and 0.1 * 1270 lands on 127 either way but other values may not.
        let mut y = vec![0f32; 32];
        y[0] = 0.1;
        let mut q = [BlockQ8_0::default()];
        quantize_q8_0(&y, &mut q);
        assert_eq!(q[0].qs[0], 127);
        quantize_q8_0(&[0.0; 32], &mut q);
        assert_eq!(q[0].qs, [0; 32]);
    }

    /// The Q8_0-activation path equals an f32 reference of dequantized weights times the
    /// dequantized ggml-quantized activations.
    #[test]
    fn q8_0_activation_path_equals_its_reference() {
        let (rows, k, m) = (5, 128, 3);
        for dtype in [GgmlDType::Q4_0, GgmlDType::Q5_0, GgmlDType::Q8_0] {
            let w = Tensor::from_vec(random(rows * k, 11), (rows, k), &Device::Cpu).unwrap();
            let t = Arc::new(QTensor::quantize(&w, dtype).unwrap());
            let wd = t
                .dequantize(&Device::Cpu)
                .unwrap()
                .to_vec2::<f32>()
                .unwrap();
            let x = random(m * k, 5);
            let got = Linear::new(Arc::clone(&t))
                .unwrap()
                .forward(&Tensor::from_vec(x.clone(), (m, k), &Device::Cpu).unwrap())
                .unwrap()
                .to_vec2::<f32>()
                .unwrap();
            for i in 0..m {
                let mut xq = vec![BlockQ8_0::default(); k / QK];
                quantize_q8_0(&x[i * k..(i + 1) * k], &mut xq);
                let xd: Vec<f32> = xq
                    .iter()
                    .flat_map(|b| b.qs.iter().map(move |&q| b.d.to_f32() * q as f32))
                    .collect();
                for (j, wrow) in wd.iter().enumerate() {
                    let want: f32 = wrow.iter().zip(&xd).map(|(a, b)| a * b).sum();
                    let have = got[i][j];
                    assert!(
                        (have - want).abs() <= 1e-4 * want.abs().max(1.0),
                        "{dtype:?} [{i}][{j}]: {have} vs {want}"
                    );
                }
            }
        }
    }

    /// Large inputs go through the worker pool in chunks (the last one short) and give the
    /// same values as the one-thread path.
    #[test]
    fn gelu_in_parallel_chunks_equals_elementwise() {
        let n = 3 * PARALLEL_MIN + 123;
        let xs: Vec<f32> = random(n, 77).iter().map(|v| v * 12.0).collect();
        let t = Tensor::from_vec(xs.clone(), n, &Device::Cpu).unwrap();
        let ys = gelu_ggml(&t).unwrap().to_vec1::<f32>().unwrap();
        let table = gelu_table();
        for (i, (x, y)) in xs.iter().zip(&ys).enumerate() {
            assert_eq!(
                y.to_bits(),
                gelu_from_table(table, *x).to_bits(),
                "element {i}"
            );
        }
    }

    #[test]
    fn gelu_follows_ggml_table_and_limits() {
        let xs = vec![-12.0f32, -3.0, -0.5, 0.0, 0.3, 1.0, 2.5, 9.99, 12.0];
        let n = xs.len();
        let t = Tensor::from_vec(xs.clone(), n, &Device::Cpu).unwrap();
        let ys = gelu_ggml(&t).unwrap().to_vec1::<f32>().unwrap();
        assert_eq!(ys[0], 0.0);
        assert_eq!(ys[8], 12.0);
        assert_eq!(ys[3], 0.0);
        for (x, y) in xs.iter().zip(&ys).skip(1).take(7) {
            // The input and the result are both f16 values.
            let x16 = f16::from_f32(*x).to_f32();
            assert_eq!(*y, f16::from_f32(gelu_f32(x16)).to_f32(), "x={x}");
            // Within f16 precision of the exact GELU.
            let exact = 0.5
                * x
                * (1.0 + ((2.0 / std::f32::consts::PI).sqrt() * (x + 0.044715 * x * x * x)).tanh());
            assert!(
                (y - exact).abs() <= 2e-3 * exact.abs().max(1.0),
                "x={x}: {y} vs {exact}"
            );
        }
        // Candle's exact GELU differs from the table by at most f16 rounding.
        let candle = t.gelu().unwrap().to_vec1::<f32>().unwrap();
        for (a, b) in ys.iter().zip(&candle).skip(1).take(7) {
            assert!((a - b).abs() <= 4e-3 * b.abs().max(1.0), "{a} vs {b}");
        }
    }
}
