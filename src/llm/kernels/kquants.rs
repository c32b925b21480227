//! Q4_K and Q6_K weights applied with the arithmetic of llama.cpp's CPU kernels, so that
//! every output is llama.cpp's bit for bit: greedy decoding flips on single roundings, and
//! llama.cpp is the reference our parity is measured against.
//!
//! Which arithmetic depends on how ggml meets the matrix (checked against llama.cpp's tensors
//! on tiny models and against written-out references in the tests):
//! - Q4_K matrices whose height is a multiple of eight are repacked at load by ggml
//!   (`q4_K_8x8`), and here interleaved eight rows at a time once at load in place of their
//!   GGUF blocks ([`Q4KInterleaved`]). Per output the exact integer sums `Σ sc·dot` and
//!   `Σ mn·bsum` go into two f32 chains, `acc = fma(isum, d·d_act, acc)` and
//!   `acc_min = fma(imin, dmin·d_act, acc_min)`, subtracted at the end. ggml's gemm takes the
//!   activation rows in fours and feeds the chains every pair of sub-blocks; its gemv takes
//!   the one to three rows left over (and decode) and feeds them every super-block.
//! - Q6_K, and Q4_K that is not repacked (a tied embedding table, other heights), go row by
//!   row through `vec_dot` below eight activation rows: eight integer sums by the quant's
//!   position within its 32-value chunk, each in its own f32 chain, summed as
//!   `hsum_float_8` does (Q4_K: plus a four-lane chain of the mins).
//! - From eight activation rows on, ggml's tiled K-quant kernel takes those instead: one
//!   integer sum per super-block, `acc = fma(sum · d, d_act, acc)` (Q4_K:
//!   `fma(fnma(dmin, Σ mn·bsum, sum · d), d_act, acc)`).
//!
//! The activations are quantized to Q8_K as ggml does it (scale `-127 / max`, ties to even;
//! candle rounds ties away from zero). The integer sums are exact in any order, which
//! leaves us free to form them eight weight rows at a time, a row per i32 lane, with
//! activation groups broadcast against the rows' quants; only the f32 steps keep ggml's
//! order.
//!
//! Why not candle's own path: candle 0.11 repacks each Q4_K matrix (and each Q6_K matrix met
//! with more than one activation row) into 16-row tiles whose sub-block scales and mins are
//! expanded to f32, 1.33x (Q4_K) and 1.52x (Q6_K) the GGUF bytes, and keeps the compact copy
//! beside them: on Qwen2.5-Coder-1.5B about 1 GB more resident memory, and a third more
//! bytes read per decoded token. Its arithmetic is also not ggml's: on tiny random-weight
//! models its products left logits 0.04 to 0.3 from llama.cpp's.
//!
//! Why interleave at load: the kernels want each load to hold the same four quants of eight
//! rows. Turning the GGUF blocks into that layout inside every product (transposes of 8x8
//! words per super-block) cost as much as the products: on Qwen2.5-Coder-1.5B on an AVX-512
//! machine, decode went from 0.43x to 0.90x llama.cpp and prefill from 0.60x to 0.70x when
//! the turning moved to load time. The interleaved form is 3% larger (unpacked scales).
//!
//! Where the CPU has AVX-512, prefill takes two row groups (sixteen rows) per 512-bit
//! register, each lane doing what its AVX2 lane does; with AVX-512 VNNI the integer dot
//! products use `vpdpbusd` and `vpdpwssd` (exact, as the i16 pair sums they replace were).

use std::borrow::Cow;

use candle_core::quantized::GgmlDType;
use candle_core::quantized::k_quants;
use half::f16;

use super::{RowsOut, for_product_jobs, for_streams, quantize_rows_of};

/// Values per super-block.
const QK_K: usize = 256;
/// Weight rows one SIMD pass covers: one f32 lane each.
pub(super) const ROW_GROUP: usize = 8;
/// Activation rows taken against one weight row group's blocks while they are in L1, by the
/// AVX2 kernels (and the Q5_0 one in `super`).
pub(super) const ACT_TILE: usize = 8;
/// The same for the AVX-512 kernels, whose per-block preparation (nibbles split, Q6_K rows
/// turned) is paid once per tile: 16 rows made Qwen2.5-Coder-1.5B's prefill 15% faster than 8.
const ACT_TILE_WIDE: usize = 16;
/// Activation rows a work item covers: each item reads its weights once for all of them.
const ACT_CHUNK: usize = 64;

/// Whether [`matmul`] takes a `dtype` matrix of `rows` x `k`: Q4_K and Q6_K of whole
/// super-blocks.
pub(super) fn applies(dtype: GgmlDType, k: usize) -> bool {
    matches!(dtype, GgmlDType::Q4K | GgmlDType::Q6K) && k.is_multiple_of(QK_K) && k > 0
}

/// Whether a Q4_K matrix of `rows` x `k` can take the interleaved form: ggml repacks Q4_K
/// matrices whose height is a multiple of eight.
pub(super) fn interleaves(rows: usize, k: usize) -> bool {
    applies(GgmlDType::Q4K, k) && rows.is_multiple_of(ROW_GROUP)
}

/// The prefill kernels a product runs on. All give the same results bit for bit; the tests
/// run each one the CPU has.
#[cfg(target_arch = "x86_64")]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Level {
    /// Eight weight rows per 256-bit register.
    Avx2,
    /// Sixteen rows per 512-bit register.
    Avx512,
    /// As `Avx512`, the integer dot products by AVX-512 VNNI.
    Avx512Vnni,
}

#[cfg(target_arch = "x86_64")]
impl Level {
    /// The fastest this CPU has (AVX2 is the caller's guarantee).
    fn best() -> Level {
        match (avx512::available(), avx512::vnni_available()) {
            (true, true) => Level::Avx512Vnni,
            (true, false) => Level::Avx512,
            _ => Level::Avx2,
        }
    }
}

/// `x · wᵀ` for `m` rows of `k` activations against the `rows` x `k` Q4_K or Q6_K weights
/// in `bytes` (GGUF blocks, as ggml applies the matrices it does not repack), token-major,
/// where [`applies`] holds. Q4_K that ggml repacks takes [`Q4KInterleaved`].
///
/// # Safety
/// The CPU must have AVX2, FMA and F16C.
#[cfg(target_arch = "x86_64")]
pub(super) unsafe fn matmul(
    dtype: GgmlDType,
    bytes: &[u8],
    rows: usize,
    k: usize,
    x: &[f32],
    m: usize,
) -> candle_core::Result<Vec<f32>> {
    // SAFETY: the caller guarantees the CPU features; AVX-512 is checked.
    unsafe { matmul_on(dtype, bytes, rows, k, x, m, Level::best()) }
}

/// [`matmul`], with Q6_K prefill on the kernels of `level`.
///
/// # Safety
/// The CPU must have AVX2, FMA and F16C, and what `level` names.
#[cfg(target_arch = "x86_64")]
unsafe fn matmul_on(
    dtype: GgmlDType,
    bytes: &[u8],
    rows: usize,
    k: usize,
    x: &[f32],
    m: usize,
    level: Level,
) -> candle_core::Result<Vec<f32>> {
    if !applies(dtype, k) || x.len() != m * k {
        candle_core::bail!("no {dtype:?} path for {rows}x{k} weights and {m} rows");
    }
    let acts = &quantize_q8k(x, k, m);
    let kb = k / QK_K;
    // SAFETY (both): the caller guarantees the CPU features.
    match dtype {
        GgmlDType::Q4K => {
            let w = super::blocks_of_size::<BlockQ4K>(bytes, rows, k, QK_K)?;
            // SAFETY (both): the caller guarantees the CPU features.
            Ok(if tiled(m) {
                by_rows(w, rows, kb, acts, m, |w, x| unsafe {
                    avx2::q4k_dot_tiled(w, x)
                })
            } else {
                by_rows(w, rows, kb, acts, m, |w, x| unsafe { avx2::q4k_dot(w, x) })
            })
        }
        _ => {
            let w = super::blocks_of_size::<BlockQ6K>(bytes, rows, k, QK_K)?;
            if m == 1 || !rows.is_multiple_of(2 * ROW_GROUP) {
                // SAFETY (both): the caller guarantees the CPU features.
                return Ok(if tiled(m) {
                    by_rows(w, rows, kb, acts, m, |w, x| unsafe {
                        avx2::q6k_dot_tiled(w, x)
                    })
                } else {
                    by_rows(w, rows, kb, acts, m, |w, x| unsafe { avx2::q6k_dot(w, x) })
                });
            }
            let group = |g: usize| Cow::Borrowed(&w[g * ROW_GROUP * kb..(g + 1) * ROW_GROUP * kb]);
            let rows_kernel =
                |w: &[Cow<'_, [BlockQ6K]>], a: &[&[BlockQ8K]], acc: &mut [[f32; ROW_GROUP]]| {
                    // SAFETY: the caller guarantees the CPU features, `level` is the CPU's.
                    unsafe {
                        match (level, tiled(m)) {
                            (Level::Avx512Vnni, true) => {
                                avx512::q6k_rows_x16_vnni::<true>(&w[0], &w[1], kb, a, acc)
                            }
                            (Level::Avx512Vnni, false) => {
                                avx512::q6k_rows_x16_vnni::<false>(&w[0], &w[1], kb, a, acc)
                            }
                            (Level::Avx512, true) => {
                                avx512::q6k_rows_x16::<true>(&w[0], &w[1], kb, a, acc)
                            }
                            (Level::Avx512, false) => {
                                avx512::q6k_rows_x16::<false>(&w[0], &w[1], kb, a, acc)
                            }
                            (Level::Avx2, true) => avx2::q6k_rows::<true>(&w[0], kb, a, acc),
                            (Level::Avx2, false) => avx2::q6k_rows::<false>(&w[0], kb, a, acc),
                        }
                    }
                };
            let tile = if level == Level::Avx2 {
                Tile {
                    groups: 1,
                    acts: ACT_TILE,
                }
            } else {
                Tile {
                    groups: 2,
                    acts: ACT_TILE_WIDE,
                }
            };
            Ok(run_groups(group, tile, rows, kb, acts, m, rows_kernel))
        }
    }
}

/// Whether ggml takes a product of `m` activation rows with its tiled K-quant kernel (from
/// eight rows on) rather than row by row, for the K-quant matrices it does not repack.
fn tiled(m: usize) -> bool {
    m >= 8
}

/// `dot` of every weight row (of `kb` blocks in `w`) with every activation row, one weight row
/// at a time as ggml's `vec_dot` takes them, token-major: Q6_K's decode and the heights the
/// row-group kernels do not cover, and Q4_K that is not interleaved.
fn by_rows<W: Sync>(
    w: &[W],
    rows: usize,
    kb: usize,
    acts: &[BlockQ8K],
    m: usize,
    dot: impl Fn(&[W], &[BlockQ8K]) -> f32 + Sync,
) -> Vec<f32> {
    let mut out = vec![0f32; m * rows];
    // One span per output, so that jobs sharing a token never hold the same span.
    let outputs = RowsOut::new(&mut out, 1);
    const ROWS_PER_JOB: usize = 64;
    let jobs_per_token = rows.div_ceil(ROWS_PER_JOB);
    for_product_jobs(m, m * jobs_per_token, |range| {
        for job in range {
            let (i, part) = (job / jobs_per_token, job % jobs_per_token);
            let first = part * ROWS_PER_JOB;
            let x = &acts[i * kb..(i + 1) * kb];
            for r in first..(first + ROWS_PER_JOB).min(rows) {
                let y = dot(&w[r * kb..(r + 1) * kb], x);
                // SAFETY: output (i, r) belongs to this job only.
                unsafe { outputs.row(i * rows + r)[0] = y };
            }
        }
    });
    out
}

/// A Q4_K matrix whose rows are interleaved eight at a time ([`BlockQ4KX8`]), made once at
/// load in place of the GGUF blocks (same size but 3%), as ggml repacks it; its products are
/// those of ggml's repacked kernels (gemm and gemv) bit for bit.
pub(super) struct Q4KInterleaved {
    blocks: Vec<BlockQ4KX8>,
    rows: usize,
    k: usize,
}

impl Q4KInterleaved {
    /// Interleaves the `rows` x `k` Q4_K blocks in `bytes`, where [`applies`] holds.
    pub(super) fn new(bytes: &[u8], rows: usize, k: usize) -> candle_core::Result<Self> {
        if !interleaves(rows, k) {
            candle_core::bail!("no interleaved Q4_K form for {rows}x{k} weights");
        }
        let w = super::blocks_of_size::<BlockQ4K>(bytes, rows, k, QK_K)?;
        let kb = k / QK_K;
        let mut blocks = Vec::with_capacity(rows / ROW_GROUP * kb);
        for group in w.chunks_exact(ROW_GROUP * kb) {
            blocks.extend((0..kb).map(|b| interleave_q4k(group, kb, b)));
        }
        Ok(Q4KInterleaved { blocks, rows, k })
    }

    /// `(rows, k)`.
    pub(super) fn shape(&self) -> (usize, usize) {
        (self.rows, self.k)
    }

    /// `x · wᵀ` for `m` rows of activations, token-major.
    ///
    /// # Safety
    /// The CPU must have AVX2, FMA and F16C.
    #[cfg(target_arch = "x86_64")]
    pub(super) unsafe fn matmul(&self, x: &[f32], m: usize) -> candle_core::Result<Vec<f32>> {
        // SAFETY: the caller guarantees the CPU features.
        unsafe { self.matmul_on(x, m, Level::best()) }
    }

    /// [`Q4KInterleaved::matmul`], with prefill on the kernels of `level` (same results: the
    /// lanes do the same operations in the same order).
    ///
    /// # Safety
    /// The CPU must have AVX2, FMA and F16C, and what `level` names.
    #[cfg(target_arch = "x86_64")]
    unsafe fn matmul_on(&self, x: &[f32], m: usize, level: Level) -> candle_core::Result<Vec<f32>> {
        let (rows, k) = (self.rows, self.k);
        if x.len() != m * k {
            candle_core::bail!("{} activations for {m} rows of {k}", x.len());
        }
        let acts = &quantize_q8k(x, k, m);
        let kb = k / QK_K;
        // ggml takes the activation rows in fours (gemm) and the one to three left over one by
        // one (gemv), which round differently; so do we.
        let in_fours = m - m % 4;
        let mut out = Vec::with_capacity(m * rows);
        if in_fours > 0 {
            // SAFETY: the caller guarantees the CPU features.
            out = unsafe { self.matmul_rows::<true>(&acts[..in_fours * kb], in_fours, level) };
        }
        if in_fours < m {
            let rest = &acts[in_fours * kb..];
            // SAFETY: as above.
            out.extend(unsafe { self.matmul_rows::<false>(rest, m - in_fours, level) });
        }
        Ok(out)
    }

    /// The products of `m` quantized activation rows, with ggml's gemm arithmetic if
    /// `PER_PAIR`, else its gemv arithmetic.
    ///
    /// # Safety
    /// The CPU must have AVX2, FMA and F16C, and what `level` names.
    #[cfg(target_arch = "x86_64")]
    unsafe fn matmul_rows<const PER_PAIR: bool>(
        &self,
        acts: &[BlockQ8K],
        m: usize,
        level: Level,
    ) -> Vec<f32> {
        let (rows, kb) = (self.rows, self.k / QK_K);
        if m == 1 && !PER_PAIR {
            // Decode: each group's outputs are one stretch of the result, so the jobs write
            // them straight in, without `run_groups`' per-job bookkeeping (measured at a fifth
            // of the kernel time on the 1536-wide matrices, whose groups are 7 KB of weights).
            let mut out = vec![0f32; rows];
            let spans = RowsOut::new(&mut out, ROW_GROUP);
            for_streams(rows / ROW_GROUP, |range| {
                for g in range {
                    let w = &self.blocks[g * kb..(g + 1) * kb];
                    // SAFETY: each group's span is written by its own job only.
                    let span = unsafe { spans.row(g) };
                    let mut result = [[0f32; ROW_GROUP]];
                    // SAFETY: the caller guarantees the CPU features.
                    unsafe { avx2::q4k_rows::<false>(w, &[acts], &mut result) };
                    span.copy_from_slice(&result[0]);
                }
            });
            return out;
        }
        let group = |g: usize| Cow::Borrowed(&self.blocks[g * kb..(g + 1) * kb]);
        let pairs_of_groups = (rows / ROW_GROUP).is_multiple_of(2);
        if level != Level::Avx2 && m > 1 && pairs_of_groups {
            let vnni = level == Level::Avx512Vnni;
            // SAFETY: the caller guarantees the CPU features.
            return run_groups(
                group,
                Tile {
                    groups: 2,
                    acts: ACT_TILE_WIDE,
                },
                rows,
                kb,
                acts,
                m,
                |w, a, acc| unsafe {
                    if vnni {
                        avx512::q4k_rows_x16_vnni::<PER_PAIR>(&w[0], &w[1], a, acc)
                    } else {
                        avx512::q4k_rows_x16::<PER_PAIR>(&w[0], &w[1], a, acc)
                    }
                },
            );
        }
        // SAFETY: the caller guarantees the CPU features.
        run_single_groups(group, rows, kb, acts, m, |w, a, acc| unsafe {
            avx2::q4k_rows::<PER_PAIR>(w, a, acc)
        })
    }
}

/// ggml's `block_q4_K`: 256 weights as `d·sc·q − dmin·mn` in eight sub-blocks of 32, with
/// 6-bit `sc` and `mn` packed in `scales`; candle's `BlockQ4K`.
#[repr(C)]
#[derive(Clone, Copy)]
pub(crate) struct BlockQ4K {
    d: f16,
    dmin: f16,
    scales: [u8; 12],
    qs: [u8; QK_K / 2],
}

/// One super-block of eight Q4_K rows, laid out for the kernels: `qs[8p + g]` holds, for
/// rows 0..8 in turn, the four bytes `32p + 4g..` of that row's `qs` (low nibbles: quants
/// `4g..4g + 4` of sub-block `2p`, high nibbles: of sub-block `2p + 1`), so that one load
/// gives one group of four quants per row, a row per i32 lane. The scales and mins are
/// unpacked, `scales[sub][row]`, and `d`, `dmin` are the rows' f16 bits.
#[repr(C, align(32))]
#[derive(Clone, Copy)]
pub(crate) struct BlockQ4KX8 {
    qs: [[u8; 32]; 32],
    d: [u16; ROW_GROUP],
    dmin: [u16; ROW_GROUP],
    scales: [[u8; ROW_GROUP]; 8],
    mins: [[u8; ROW_GROUP]; 8],
}

/// Super-block `b` of the eight rows of `kb` blocks in `rows`, interleaved.
fn interleave_q4k(rows: &[BlockQ4K], kb: usize, b: usize) -> BlockQ4KX8 {
    let mut out = BlockQ4KX8 {
        qs: [[0; 32]; 32],
        d: [0; ROW_GROUP],
        dmin: [0; ROW_GROUP],
        scales: [[0; ROW_GROUP]; 8],
        mins: [[0; ROW_GROUP]; 8],
    };
    for r in 0..ROW_GROUP {
        let block = &rows[r * kb + b];
        out.d[r] = block.d.to_bits();
        out.dmin[r] = block.dmin.to_bits();
        let unpacked = q4k_scales_mins(&block.scales);
        for sub in 0..8 {
            out.scales[sub][r] = unpacked[sub];
            out.mins[sub][r] = unpacked[8 + sub];
        }
        for (at, lane) in out.qs.iter_mut().enumerate() {
            let from = 32 * (at / 8) + 4 * (at % 8);
            lane[4 * r..4 * r + 4].copy_from_slice(&block.qs[from..from + 4]);
        }
    }
    out
}

/// ggml's `block_q6_K`: 256 weights as `d·sc·(q − 32)` in sixteen sub-blocks of 16, q's low
/// four bits in `ql` and high two in `qh`; candle's `BlockQ6K`.
#[repr(C)]
#[derive(Clone, Copy)]
pub(crate) struct BlockQ6K {
    ql: [u8; QK_K / 2],
    qh: [u8; QK_K / 4],
    scales: [i8; QK_K / 16],
    d: f16,
}

/// ggml's `block_q8_K`: 256 activations as `d·q`, with the sum of each 16 quants in `bsums`;
/// candle's `BlockQ8K`.
#[repr(C)]
#[derive(Clone, Copy)]
pub(crate) struct BlockQ8K {
    d: f32,
    qs: [i8; QK_K],
    bsums: [i16; QK_K / 16],
}

same_layout!(BlockQ4K, k_quants::BlockQ4K);
same_layout!(BlockQ6K, k_quants::BlockQ6K);
same_layout!(BlockQ8K, k_quants::BlockQ8K);

/// The activations quantized to Q8_K, row by row, as ggml's `quantize_row_q8_K` does (and
/// its four-row form for the repacked Q4_K products, which gives the same blocks).
fn quantize_q8k(x: &[f32], k: usize, m: usize) -> Vec<BlockQ8K> {
    let empty = BlockQ8K {
        d: 0.0,
        qs: [0; QK_K],
        bsums: [0; QK_K / 16],
    };
    quantize_rows_of(x, k, m, QK_K, empty, quantize_row_q8k)
}

/// One row of Q8_K blocks. candle's `from_float` rounds ties away from zero; ggml to even.
fn quantize_row_q8k(xs: &[f32], ys: &mut [BlockQ8K]) {
    #[cfg(target_arch = "x86_64")]
    let simd = super::has_avx2_f16c();
    for (x, y) in xs.chunks_exact(QK_K).zip(ys) {
        #[cfg(target_arch = "x86_64")]
        if simd {
            // SAFETY: AVX2 is present (checked).
            if unsafe { avx2::quantize_block_q8k(x, y) } {
                continue;
            }
        }
        quantize_block_q8k_scalar(x, y);
    }
}

/// ggml's `quantize_row_q8_K_ref` for one block, made total: NaN and infinities give some
/// block rather than undefined behaviour (ggml asserts they never come).
fn quantize_block_q8k_scalar(x: &[f32], y: &mut BlockQ8K) {
    let (mut max, mut amax) = (0f32, 0f32);
    for &v in x {
        if v.abs() > amax {
            amax = v.abs();
            max = v;
        }
    }
    if amax == 0.0 {
        y.d = 0.0;
        y.qs = [0; QK_K];
        y.bsums = [0; QK_K / 16];
        return;
    }
    let iscale = -127f32 / max;
    for (q, &v) in y.qs.iter_mut().zip(x) {
        // `as` saturates (and maps NaN to 0), so no value is out of range.
        *q = (iscale * v).round_ties_even().clamp(-128.0, 127.0) as i8;
    }
    for (sum, q) in y.bsums.iter_mut().zip(y.qs.chunks_exact(16)) {
        *sum = q.iter().map(|&v| i16::from(v)).sum();
    }
    y.d = 1.0 / iscale;
}

/// What one kernel call covers: `groups` weight row groups (a unit) against up to `acts`
/// activation rows (at most `ACT_TILE_WIDE`).
#[derive(Debug, Clone, Copy)]
pub(super) struct Tile {
    pub groups: usize,
    pub acts: usize,
}

/// Runs `kernel` over every (activation chunk, unit of `tile.groups` weight row groups) pair on
/// candle's pool and gathers the outputs token-major. `kernel(w, acts, acc)` gets the row
/// groups' blocks, as `group_weights(group)` gives them, and up to `tile.acts` activation rows
/// of `kb` blocks, and must store every output (activation, weight row) into `acc`, which holds
/// stale values: activation row `i`'s outputs for the unit's group `g` at
/// `acc[i * per_unit + g]`. `rows` must be a multiple of `per_unit` groups.
pub(super) fn run_groups<'w, W: Clone + Sync + 'w, X: Sync>(
    group_weights: impl Fn(usize) -> Cow<'w, [W]> + Sync,
    tile: Tile,
    rows: usize,
    kb: usize,
    acts: &[X],
    m: usize,
    kernel: impl Fn(&[Cow<'w, [W]>], &[&[X]], &mut [[f32; ROW_GROUP]]) + Sync,
) -> Vec<f32> {
    let per_unit = tile.groups;
    assert!(
        (1..=2).contains(&per_unit),
        "units of one or two row groups"
    );
    let act_tile = tile.acts.clamp(1, ACT_TILE_WIDE);
    let mut out = vec![0f32; m * rows];
    // Span `i * groups + group` is activation row i's outputs for weight row group `group`.
    let spans = RowsOut::new(&mut out, ROW_GROUP);
    let groups = rows / ROW_GROUP;
    let units = groups / per_unit;
    let chunks = m.div_ceil(ACT_CHUNK);
    for_product_jobs(m, chunks * units, |range| {
        let mut acc = vec![[0f32; ROW_GROUP]; act_tile * per_unit];
        for job in range {
            let (chunk, unit) = (job / units, job % units);
            let first_group = unit * per_unit;
            // A unit is one or two groups (asserted below): no allocation per job.
            let wg: [Cow<'w, [W]>; 2] = std::array::from_fn(|i| {
                if i < per_unit {
                    group_weights(first_group + i)
                } else {
                    Cow::Borrowed(&[][..])
                }
            });
            let wg = &wg[..per_unit];
            let chunk_end = ((chunk + 1) * ACT_CHUNK).min(m);
            for first in (chunk * ACT_CHUNK..chunk_end).step_by(act_tile) {
                let last = (first + act_tile).min(chunk_end);
                let mut tile_rows: [&[X]; ACT_TILE_WIDE] = [&[]; ACT_TILE_WIDE];
                for (slot, i) in tile_rows.iter_mut().zip(first..last) {
                    *slot = &acts[i * kb..(i + 1) * kb];
                }
                // Every kernel stores all its outputs: no zeroing (1 KB per job in decode).
                kernel(wg, &tile_rows[..last - first], &mut acc);
                for (i, outputs) in (first..last).zip(acc.chunks_exact(per_unit)) {
                    for (g, row) in outputs.iter().enumerate() {
                        // SAFETY: (chunk, group) pairs are unique across jobs, so each span is
                        // written by one job only.
                        unsafe { spans.row(i * groups + first_group + g) }.copy_from_slice(row);
                    }
                }
            }
        }
    });
    out
}

/// [`run_groups`] one row group at a time with an eight-row kernel.
fn run_single_groups<'w, W: Clone + Sync + 'w>(
    group_weights: impl Fn(usize) -> Cow<'w, [W]> + Sync,
    rows: usize,
    kb: usize,
    acts: &[BlockQ8K],
    m: usize,
    kernel: impl Fn(&[W], &[&[BlockQ8K]], &mut [[f32; ROW_GROUP]]) + Sync,
) -> Vec<f32> {
    let tile = Tile {
        groups: 1,
        acts: ACT_TILE,
    };
    run_groups(group_weights, tile, rows, kb, acts, m, |w, a, acc| {
        kernel(&w[0], a, acc)
    })
}

/// The six-bit scales and mins of a Q4_K block as sixteen bytes, `sc[0..8]` then `mn[0..8]`:
/// ggml's unpacking of its 12-byte field.
fn q4k_scales_mins(packed: &[u8; 12]) -> [u8; 16] {
    const LOW6: u32 = 0x3f3f_3f3f;
    const LOW4: u32 = 0x0f0f_0f0f;
    const LOW2: u32 = 0x0303_0303;
    let word = |i: usize| {
        u32::from_le_bytes([
            packed[4 * i],
            packed[4 * i + 1],
            packed[4 * i + 2],
            packed[4 * i + 3],
        ])
    };
    let (w0, w1, w2) = (word(0), word(1), word(2));
    let sc_low = w0 & LOW6;
    let sc_high = (w2 & LOW4) | (((w0 >> 6) & LOW2) << 4);
    let mn_low = w1 & LOW6;
    let mn_high = ((w2 >> 4) & LOW4) | (((w1 >> 6) & LOW2) << 4);
    let mut out = [0u8; 16];
    for (i, word) in [sc_low, sc_high, mn_low, mn_high].into_iter().enumerate() {
        out[4 * i..4 * i + 4].copy_from_slice(&word.to_le_bytes());
    }
    out
}

#[cfg(target_arch = "x86_64")]
mod avx2 {
    use std::arch::x86_64::*;

    use super::{ACT_TILE, BlockQ4K, BlockQ4KX8, BlockQ6K, BlockQ8K, QK_K, ROW_GROUP};

    /// One output per (activation row, weight row) for the eight Q4_K weight rows whose
    /// super-blocks are `w` (interleaved, [`BlockQ4KX8`]) against `acts`, in ggml's order
    /// (see the module doc).
    ///
    /// `PER_PAIR`: ggml's gemm (activation rows in fours) scales each pair of sub-blocks into
    /// the chains; its gemv (the rows left over, and decode) each whole super-block.
    #[target_feature(enable = "avx2,fma,f16c")]
    pub(super) fn q4k_rows<const PER_PAIR: bool>(
        w: &[BlockQ4KX8],
        acts: &[&[BlockQ8K]],
        out: &mut [[f32; ROW_GROUP]],
    ) {
        let mask = _mm256_set1_epi8(0x0f);
        let mut acc = [_mm256_setzero_ps(); ACT_TILE];
        let mut acc_min = [_mm256_setzero_ps(); ACT_TILE];
        for (b, block) in w.iter().enumerate() {
            let d = f16x8(&block.d);
            let dmin = f16x8(&block.dmin);
            let scales: [__m256i; 8] = std::array::from_fn(|sub| i16_twice(&block.scales[sub]));
            let mins: [__m256i; 4] =
                std::array::from_fn(|p| i16_pair(&block.mins[2 * p], &block.mins[2 * p + 1]));
            if let [act] = acts {
                // One activation row (decode): each load is one group of four quants of two
                // sub-blocks for all eight rows, against the two broadcast activation groups.
                let act = &act[b];
                let mut isum = _mm256_setzero_si256();
                for pair in 0..4 {
                    // Each i16 lane adds eight pairs of at most 2 · 15 · 128: no overflow.
                    let mut low = _mm256_setzero_si256();
                    let mut high = _mm256_setzero_si256();
                    for g in 0..8 {
                        let q = load256(&block.qs[8 * pair + g]);
                        let lo = _mm256_and_si256(q, mask);
                        let hi = _mm256_and_si256(_mm256_srli_epi16(q, 4), mask);
                        let a_lo = broadcast_group(&act.qs, 64 * pair + 4 * g);
                        let a_hi = broadcast_group(&act.qs, 64 * pair + 32 + 4 * g);
                        low = _mm256_add_epi16(low, _mm256_maddubs_epi16(lo, a_lo));
                        high = _mm256_add_epi16(high, _mm256_maddubs_epi16(hi, a_hi));
                    }
                    isum = _mm256_add_epi32(isum, _mm256_madd_epi16(low, scales[2 * pair]));
                    isum = _mm256_add_epi32(isum, _mm256_madd_epi16(high, scales[2 * pair + 1]));
                    if PER_PAIR {
                        let imin = q4k_min_pair(&mins, act, pair);
                        q4k_step(&mut acc[0], &mut acc_min[0], isum, imin, d, dmin, act.d);
                        isum = _mm256_setzero_si256();
                    }
                }
                if !PER_PAIR {
                    let imin = q4k_min_sum(&mins, act);
                    q4k_step(&mut acc[0], &mut acc_min[0], isum, imin, d, dmin, act.d);
                }
                continue;
            }
            // Several activation rows (prefill): the nibbles are split once per super-block,
            // lanes[sub][g] holding group g of sub-block `sub` for all eight rows, then every
            // activation row's groups are broadcast against them.
            // Written over uninitialised memory: zeroing 2–4 KB per super-block first (which
            // the `_undefined` intrinsics also do) cost 5–7% of prefill as `memset`, and
            // `from_fn` closures were not always inlined.
            let mut lanes = [[std::mem::MaybeUninit::<__m256i>::uninit(); 8]; 8];
            for (at, bytes) in block.qs.iter().enumerate() {
                let (pair, g) = (at / 8, at % 8);
                let q = load256(bytes);
                lanes[2 * pair][g].write(_mm256_and_si256(q, mask));
                lanes[2 * pair + 1][g].write(_mm256_and_si256(_mm256_srli_epi16(q, 4), mask));
            }
            // SAFETY: the loop wrote all 64 items (32 positions, two sub-blocks each).
            let lanes = unsafe { &*(&raw const lanes).cast::<[[__m256i; 8]; 8]>() };
            for ((acc, acc_min), act) in acc.iter_mut().zip(acc_min.iter_mut()).zip(acts) {
                let act = &act[b];
                let mut isum = _mm256_setzero_si256();
                for (sub, lanes) in lanes.iter().enumerate() {
                    let mut pairs = _mm256_setzero_si256();
                    for (g, q) in lanes.iter().enumerate() {
                        let a = broadcast_group(&act.qs, sub * 32 + 4 * g);
                        pairs = _mm256_add_epi16(pairs, _mm256_maddubs_epi16(*q, a));
                    }
                    isum = _mm256_add_epi32(isum, _mm256_madd_epi16(pairs, scales[sub]));
                    if PER_PAIR && sub % 2 == 1 {
                        let imin = q4k_min_pair(&mins, act, sub / 2);
                        q4k_step(acc, acc_min, isum, imin, d, dmin, act.d);
                        isum = _mm256_setzero_si256();
                    }
                }
                if !PER_PAIR {
                    let imin = q4k_min_sum(&mins, act);
                    q4k_step(acc, acc_min, isum, imin, d, dmin, act.d);
                }
            }
        }
        for ((out, acc), acc_min) in out.iter_mut().zip(acc).zip(acc_min) {
            // SAFETY: `out` holds ROW_GROUP = 8 floats.
            unsafe { _mm256_storeu_ps(out.as_mut_ptr(), _mm256_sub_ps(acc, acc_min)) };
        }
    }

    /// One Q4_K super-block's float step, as ggml's repacked kernels take it: the exact
    /// integer sums `isum = Σ sc·dot` and `imin = Σ mn·bsum` scaled by `d · d_act` and
    /// `dmin · d_act` into two chains, which are subtracted at the end.
    #[target_feature(enable = "avx2,fma")]
    fn q4k_step(
        acc: &mut __m256,
        acc_min: &mut __m256,
        isum: __m256i,
        imin: __m256i,
        d: __m256,
        dmin: __m256,
        d_act: f32,
    ) {
        let dall = _mm256_set1_ps(d_act);
        *acc = _mm256_fmadd_ps(_mm256_cvtepi32_ps(isum), _mm256_mul_ps(d, dall), *acc);
        *acc_min = _mm256_fmadd_ps(
            _mm256_cvtepi32_ps(imin),
            _mm256_mul_ps(dmin, dall),
            *acc_min,
        );
    }

    /// `Σ mn[sub] · bsum[sub]` over the eight 32-value sub-blocks, per row lane: `mins[p]`
    /// holds `mn[2p]`, `mn[2p + 1]` as an i16 pair.
    #[target_feature(enable = "avx2")]
    fn q4k_min_sum(mins: &[__m256i; 4], act: &BlockQ8K) -> __m256i {
        let mut imin = _mm256_setzero_si256();
        for pair in 0..4 {
            imin = _mm256_add_epi32(imin, q4k_min_pair(mins, act, pair));
        }
        imin
    }

    /// The part of [`q4k_min_sum`] from sub-blocks `2·pair` and `2·pair + 1`.
    #[target_feature(enable = "avx2")]
    fn q4k_min_pair(mins: &[__m256i; 4], act: &BlockQ8K, pair: usize) -> __m256i {
        let sums = _mm256_set1_epi32(bsum_pair(act, 4 * pair, 32));
        _mm256_madd_epi16(mins[pair], sums)
    }

    /// Two activation sums as an i16 pair in one i32: of `width` quants (16 or 32) from
    /// `first · 16` on, and of the next `width`.
    pub(super) fn bsum_pair(act: &BlockQ8K, first: usize, width: usize) -> i32 {
        let per = width / 16;
        let sum = |at: usize| -> i16 { act.bsums[at..at + per].iter().sum() };
        let (a, b) = (sum(first), sum(first + per));
        i32::from(a as u16) | (i32::from(b as u16) << 16)
    }

    /// Eight rows' unsigned bytes, each as the same value in both i16 halves of its i32
    /// lane: a multiplier for `madd` of i16 pairs.
    #[target_feature(enable = "avx2")]
    pub(super) fn i16_twice(bytes: &[u8; 8]) -> __m256i {
        let v = _mm256_cvtepu8_epi32(load64(bytes));
        _mm256_or_si256(v, _mm256_slli_epi32(v, 16))
    }

    /// Eight rows' unsigned bytes from `low` and `high` as i16 pairs, one row per i32 lane.
    #[target_feature(enable = "avx2")]
    pub(super) fn i16_pair(low: &[u8; 8], high: &[u8; 8]) -> __m256i {
        let low = _mm256_cvtepu8_epi32(load64(low));
        let high = _mm256_cvtepu8_epi32(load64(high));
        _mm256_or_si256(low, _mm256_slli_epi32(high, 16))
    }

    /// As [`q4k_rows`] for Q6_K weights, with ggml's `vec_dot_q6_K_q8_K` arithmetic per
    /// (activation row, weight row): eight integer sums by the quant's position within its
    /// 32-value chunk, each scaled into its own f32 chain, summed at the end as
    /// `hsum_float_8` does.
    ///
    /// `TILED`: ggml's tiled product instead (batches of eight rows or more), which scales
    /// each super-block's one integer sum: `acc = fma(sum · d, d_act, acc)`.
    #[target_feature(enable = "avx2,fma,f16c")]
    pub(super) fn q6k_rows<const TILED: bool>(
        w: &[BlockQ6K],
        kb: usize,
        acts: &[&[BlockQ8K]],
        out: &mut [[f32; ROW_GROUP]],
    ) {
        let mut acc = [[_mm256_setzero_ps(); 8]; ACT_TILE];
        for b in 0..kb {
            let prepared = q6k_prepare(w, kb, b);
            for (acc, act) in acc.iter_mut().zip(acts) {
                let act = &act[b];
                let mut sumi = [_mm256_setzero_si256(); 8];
                for (pair, lanes) in prepared.lanes.iter().enumerate() {
                    for (g, (sum, q)) in sumi.iter_mut().zip(lanes).enumerate() {
                        // One pair of at most 63 · 128 per i16 lane.
                        let a = broadcast_group(&act.qs, 32 * pair + 4 * g);
                        let p16 = _mm256_maddubs_epi16(*q, a);
                        let scale = prepared.scales[2 * pair + g / 4];
                        *sum = _mm256_add_epi32(*sum, _mm256_madd_epi16(p16, scale));
                    }
                }
                for (g, sum) in sumi.iter_mut().enumerate() {
                    let sums = _mm256_set1_epi32(bsum_pair(act, 2 * g, 16));
                    let bias =
                        _mm256_slli_epi32(_mm256_madd_epi16(prepared.scale_pairs[g], sums), 5);
                    *sum = _mm256_sub_epi32(*sum, bias);
                }
                if TILED {
                    let total = sumi
                        .iter()
                        .fold(_mm256_setzero_si256(), |t, s| _mm256_add_epi32(t, *s));
                    let scaled = _mm256_mul_ps(_mm256_cvtepi32_ps(total), prepared.d);
                    acc[0] = _mm256_fmadd_ps(scaled, _mm256_set1_ps(act.d), acc[0]);
                    continue;
                }
                let dall = _mm256_mul_ps(prepared.d, _mm256_set1_ps(act.d));
                for (acc, sum) in acc.iter_mut().zip(sumi) {
                    *acc = _mm256_fmadd_ps(dall, _mm256_cvtepi32_ps(sum), *acc);
                }
            }
        }
        for (out, acc) in out.iter_mut().zip(&acc) {
            let sum = if TILED {
                acc[0]
            } else {
                hsum_float_8_lanes(acc)
            };
            // SAFETY: `out` holds ROW_GROUP = 8 floats.
            unsafe { _mm256_storeu_ps(out.as_mut_ptr(), sum) };
        }
    }

    /// ggml's `hsum_float_8` of eight vectors at once, one sum per lane: lane r of the result
    /// sums lane r of `v[0..8]` as `((v4 + v0) + (v6 + v2)) + ((v5 + v1) + (v7 + v3))`.
    #[target_feature(enable = "avx")]
    pub(super) fn hsum_float_8_lanes(v: &[__m256; 8]) -> __m256 {
        let r: [__m256; 4] = std::array::from_fn(|i| _mm256_add_ps(v[i + 4], v[i]));
        _mm256_add_ps(_mm256_add_ps(r[0], r[2]), _mm256_add_ps(r[1], r[3]))
    }

    /// ggml's AVX2 `vec_dot_q4_K_q8_K` of one Q4_K row against one Q8_K row, bit for bit:
    /// what llama.cpp applies to Q4_K matrices it does not repack, such as an embedding table
    /// tied to the output.
    #[target_feature(enable = "avx2,fma,f16c")]
    pub(super) fn q4k_dot(w: &[BlockQ4K], x: &[BlockQ8K]) -> f32 {
        let mut acc = _mm256_setzero_ps();
        let mut acc_m = _mm_setzero_ps();
        for (wb, xb) in w.iter().zip(x) {
            let d = xb.d * wb.d.to_f32();
            let dmin = -xb.d * wb.dmin.to_f32();
            let unpacked = super::q4k_scales_mins(&wb.scales);
            let mins_and_scales = _mm256_cvtepu8_epi16(load128(&unpacked));
            let q8sums = load256(&xb.bsums);
            let q8s = _mm_hadd_epi16(
                _mm256_castsi256_si128(q8sums),
                _mm256_extracti128_si256::<1>(q8sums),
            );
            let prod = _mm_madd_epi16(_mm256_extracti128_si256::<1>(mins_and_scales), q8s);
            acc_m = _mm_fmadd_ps(_mm_set1_ps(dmin), _mm_cvtepi32_ps(prod), acc_m);
            let sumi = q4k_lanes(wb, xb, &unpacked);
            acc = _mm256_fmadd_ps(_mm256_set1_ps(d), _mm256_cvtepi32_ps(sumi), acc);
        }
        let acc_m = _mm_add_ps(acc_m, _mm_movehl_ps(acc_m, acc_m));
        let acc_m = _mm_add_ss(acc_m, _mm_movehdup_ps(acc_m));
        super::super::avx2::hsum(acc) + _mm_cvtss_f32(acc_m)
    }

    /// ggml's AVX2 `vec_dot_q6_K_q8_K` of one Q6_K row against one Q8_K row, bit for bit.
    #[target_feature(enable = "avx2,fma,f16c")]
    pub(super) fn q6k_dot(w: &[BlockQ6K], x: &[BlockQ8K]) -> f32 {
        let m3 = _mm256_set1_epi8(3);
        let m15 = _mm256_set1_epi8(15);
        let mut acc = _mm256_setzero_ps();
        for (wb, xb) in w.iter().zip(x) {
            let d = xb.d * wb.d.to_f32();
            let q8sums = load256(&xb.bsums);
            let scales = load128(&wb.scales.map(|s| s as u8));
            let scales16 = _mm256_cvtepi8_epi16(scales);
            let bias = _mm256_slli_epi32(_mm256_madd_epi16(q8sums, scales16), 5);
            let mut sumi = _mm256_setzero_si256();
            for j in 0..QK_K / 128 {
                let q4bits1 = load256(&wb.ql[64 * j..]);
                let q4bits2 = load256(&wb.ql[64 * j + 32..]);
                let q4bits_h = load256(&wb.qh[32 * j..]);
                let q4h_0 = _mm256_slli_epi16(_mm256_and_si256(q4bits_h, m3), 4);
                let q4h_1 = _mm256_slli_epi16(_mm256_and_si256(q4bits_h, _mm256_set1_epi8(12)), 2);
                let q4h_2 = _mm256_and_si256(q4bits_h, _mm256_set1_epi8(48));
                let q4h_3 = _mm256_srli_epi16(_mm256_and_si256(q4bits_h, _mm256_set1_epi8(-64)), 2);
                let q = [
                    _mm256_or_si256(_mm256_and_si256(q4bits1, m15), q4h_0),
                    _mm256_or_si256(_mm256_and_si256(q4bits2, m15), q4h_1),
                    _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(q4bits1, 4), m15), q4h_2),
                    _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(q4bits2, 4), m15), q4h_3),
                ];
                for (t, q) in q.into_iter().enumerate() {
                    let chunk = 4 * j + t;
                    let q8 = load256(&xb.qs[32 * chunk..]);
                    let p16 = _mm256_maddubs_epi16(q, q8);
                    let pick = _mm_setr_epi8(
                        2 * chunk as i8,
                        2 * chunk as i8,
                        2 * chunk as i8,
                        2 * chunk as i8,
                        2 * chunk as i8,
                        2 * chunk as i8,
                        2 * chunk as i8,
                        2 * chunk as i8,
                        2 * chunk as i8 + 1,
                        2 * chunk as i8 + 1,
                        2 * chunk as i8 + 1,
                        2 * chunk as i8 + 1,
                        2 * chunk as i8 + 1,
                        2 * chunk as i8 + 1,
                        2 * chunk as i8 + 1,
                        2 * chunk as i8 + 1,
                    );
                    let scale = _mm256_cvtepi8_epi16(_mm_shuffle_epi8(scales, pick));
                    sumi = _mm256_add_epi32(sumi, _mm256_madd_epi16(scale, p16));
                }
            }
            sumi = _mm256_sub_epi32(sumi, bias);
            acc = _mm256_fmadd_ps(_mm256_set1_ps(d), _mm256_cvtepi32_ps(sumi), acc);
        }
        // ggml's `hsum_float_8`.
        super::super::avx2::hsum(acc)
    }

    /// Super-block `b` of the eight Q6_K rows of `kb` blocks in `w`, turned for the kernels.
    #[target_feature(enable = "avx2,fma,f16c")]
    pub(super) fn q6k_prepare(w: &[BlockQ6K], kb: usize, b: usize) -> Q6KPrepared {
        let low4 = _mm256_set1_epi8(0x0f);
        let low2 = _mm256_set1_epi8(0x03);
        let block = |r: usize| &w[r * kb + b];
        let mut packed = [_mm_setzero_si128(); ROW_GROUP];
        let mut d = [0u16; ROW_GROUP];
        for r in 0..ROW_GROUP {
            packed[r] = load128(&block(r).scales.map(|s| s as u8));
            d[r] = block(r).d.to_bits();
        }
        let columns = transpose_8x16(packed);
        let d = f16x8(&d);
        let low16 = _mm256_set1_epi32(0xffff);
        let scale = |sub: usize| _mm256_cvtepi8_epi32(half_of(columns[sub / 2], sub % 2));
        let scales: [__m256i; 16] = std::array::from_fn(|sub| {
            let v = scale(sub);
            _mm256_or_si256(_mm256_and_si256(v, low16), _mm256_slli_epi32(v, 16))
        });
        // The low i16 of sub-block 2g's lanes, the high one of 2g + 1's.
        let scale_pairs: [__m256i; 8] =
            std::array::from_fn(|g| _mm256_blend_epi16::<0xAA>(scales[2 * g], scales[2 * g + 1]));
        // Values 128h + 32j .. +32 are sub-blocks 8h + 2j and 8h + 2j + 1: their low bits
        // are the low (j < 2) or high nibbles of ql[64h + 32(j % 2)..], their high bits
        // bits 2j, 2j+1 of qh[32h..]. Turned as in `q4k_rows`.
        let mut lanes = [[_mm256_setzero_si256(); 8]; 8];
        for (at, lane) in lanes.iter_mut().enumerate() {
            let (h, j) = (at / 4, at % 4);
            let ql_at = 64 * h + 32 * (j % 2);
            let nibble_shift = _mm_cvtsi32_si128(4 * (j / 2) as i32);
            let high_shift = _mm_cvtsi32_si128(2 * j as i32);
            let mut rows = [_mm256_setzero_si256(); ROW_GROUP];
            for (r, row) in rows.iter_mut().enumerate() {
                let ql = load256(&block(r).ql[ql_at..ql_at + 32]);
                let qh = load256(&block(r).qh[32 * h..32 * h + 32]);
                let low = _mm256_and_si256(_mm256_srl_epi16(ql, nibble_shift), low4);
                let high = _mm256_and_si256(_mm256_srl_epi16(qh, high_shift), low2);
                *row = _mm256_or_si256(low, _mm256_slli_epi16(high, 4));
            }
            *lane = transpose_8x8_u32(rows);
        }
        Q6KPrepared {
            d,
            scales,
            scale_pairs,
            lanes,
        }
    }

    /// ggml's tiled Q6_K product (batches of eight rows or more) of one row pair: per
    /// super-block the exact integer sum `s = Σ sc·(dot − 32·bsum)`, then
    /// `acc = fma(s · d, d_act, acc)`.
    #[target_feature(enable = "avx2,fma,f16c")]
    pub(super) fn q6k_dot_tiled(w: &[BlockQ6K], x: &[BlockQ8K]) -> f32 {
        let mut acc = 0f32;
        for (wb, xb) in w.iter().zip(x) {
            let total = q6k_block_sum(wb, xb);
            acc = (total as f32 * wb.d.to_f32()).mul_add(xb.d, acc);
        }
        acc
    }

    /// The eight i32 lanes of ggml's `vec_dot_q4_K_q8_K` for one block: lane L sums
    /// `sc · q · x` over the quants at positions `4L..4L + 4` of every 32-value sub-block.
    /// `unpacked` is the block's scales then mins.
    #[target_feature(enable = "avx2")]
    fn q4k_lanes(wb: &BlockQ4K, xb: &BlockQ8K, unpacked: &[u8; 16]) -> __m256i {
        let m4 = _mm256_set1_epi8(0xf);
        let mut sumi = _mm256_setzero_si256();
        for j in 0..QK_K / 64 {
            // Sub-block 2j's scale and 2j + 1's, in every i16 lane.
            let scale = |sub: usize| _mm256_set1_epi16(i16::from(unpacked[sub]));
            let q4bits = load256(&wb.qs[32 * j..]);
            let q4l = _mm256_and_si256(q4bits, m4);
            let q4h = _mm256_and_si256(_mm256_srli_epi16(q4bits, 4), m4);
            let p16l = _mm256_maddubs_epi16(q4l, load256(&xb.qs[64 * j..]));
            let p16h = _mm256_maddubs_epi16(q4h, load256(&xb.qs[64 * j + 32..]));
            let low = _mm256_madd_epi16(scale(2 * j), p16l);
            let high = _mm256_madd_epi16(scale(2 * j + 1), p16h);
            sumi = _mm256_add_epi32(sumi, _mm256_add_epi32(low, high));
        }
        sumi
    }

    /// ggml's tiled Q4_K product (for Q4_K it does not repack, in batches of eight rows or
    /// more) of one row pair: per super-block `r = fnma(dmin, Σ mn·bsum, (Σ sc·dot) · d)`, then
    /// `acc = fma(r, d_act, acc)`.
    #[target_feature(enable = "avx2,fma,f16c")]
    pub(super) fn q4k_dot_tiled(w: &[BlockQ4K], x: &[BlockQ8K]) -> f32 {
        let mut acc = 0f32;
        for (wb, xb) in w.iter().zip(x) {
            let unpacked = super::q4k_scales_mins(&wb.scales);
            let sumi = q4k_lanes(wb, xb, &unpacked);
            let mut imin = 0i32;
            for sub in 0..8 {
                let bsum = i32::from(xb.bsums[2 * sub]) + i32::from(xb.bsums[2 * sub + 1]);
                imin += i32::from(unpacked[8 + sub]) * bsum;
            }
            let scaled = hsum_i32(sumi) as f32 * wb.d.to_f32();
            let r = (-wb.dmin.to_f32()).mul_add(imin as f32, scaled);
            acc = r.mul_add(xb.d, acc);
        }
        acc
    }

    /// A Q6_K super-block's exact integer product with its activations, `Σ sc·(dot − 32·bsum)`.
    #[target_feature(enable = "avx2")]
    fn q6k_block_sum(wb: &BlockQ6K, xb: &BlockQ8K) -> i32 {
        let mut total = 0i32;
        for chunk in 0..8 {
            let (j, t) = (chunk / 4, chunk % 4);
            let ql = load256(&wb.ql[64 * j + 32 * (t % 2)..]);
            let ql = if t < 2 { ql } else { _mm256_srli_epi16(ql, 4) };
            let qh = _mm256_srl_epi16(load256(&wb.qh[32 * j..]), _mm_cvtsi32_si128(2 * t as i32));
            let q = _mm256_or_si256(
                _mm256_and_si256(ql, _mm256_set1_epi8(0x0f)),
                _mm256_slli_epi16(_mm256_and_si256(qh, _mm256_set1_epi8(0x03)), 4),
            );
            let p16 = _mm256_maddubs_epi16(q, load256(&xb.qs[32 * chunk..]));
            let halves = _mm256_madd_epi16(p16, _mm256_set1_epi16(1));
            // Lanes 0..4 are sub-block 2·chunk, lanes 4..8 sub-block 2·chunk + 1.
            let mut lanes = [0i32; 8];
            // SAFETY: 32 bytes.
            unsafe { _mm256_storeu_si256(lanes.as_mut_ptr().cast(), halves) };
            for half in 0..2 {
                let sub = 2 * chunk + half;
                let dot: i32 = lanes[4 * half..4 * half + 4].iter().sum();
                total += i32::from(wb.scales[sub]) * (dot - 32 * i32::from(xb.bsums[sub]));
            }
        }
        total
    }

    /// The sum of the eight i32 lanes (exact, in any order).
    #[target_feature(enable = "avx2")]
    fn hsum_i32(v: __m256i) -> i32 {
        let mut lanes = [0i32; 8];
        // SAFETY: 32 bytes.
        unsafe { _mm256_storeu_si256(lanes.as_mut_ptr().cast(), v) };
        lanes.iter().sum()
    }

    /// One Q6_K super-block of eight rows, turned for the kernels: one row per 32-bit lane.
    pub(super) struct Q6KPrepared {
        /// The rows' `d`.
        pub d: __m256,
        /// Per sub-block of 16, the rows' signed scale in both i16 halves.
        pub scales: [__m256i; 16],
        /// Per `g`, the scales of sub-blocks `2g` and `2g + 1` as an i16 pair.
        pub scale_pairs: [__m256i; 8],
        /// `lanes[pair][g]`: group g (four quants) of the 32 values of sub-blocks `2·pair`,
        /// `2·pair + 1`.
        pub lanes: [[__m256i; 8]; 8],
    }

    /// One block of ggml's `quantize_row_q8_K`, bit for bit: the first value of largest
    /// magnitude sets the scale `-127 / max`, values are rounded to nearest, ties to even,
    /// and clamped. Returns false, writing nothing, for the cases left to the scalar code: a
    /// NaN or infinity in the block, or a scale that is not finite.
    #[target_feature(enable = "avx2")]
    pub(super) fn quantize_block_q8k(x: &[f32], y: &mut BlockQ8K) -> bool {
        assert_eq!(x.len(), QK_K);
        let magnitude = _mm256_set1_ps(f32::from_bits(0x7fff_ffff));
        let mut amax = _mm256_setzero_ps();
        let mut unordered = _mm256_setzero_ps();
        for c in x.chunks_exact(8) {
            // SAFETY: 8 floats.
            let v = unsafe { _mm256_loadu_ps(c.as_ptr()) };
            amax = _mm256_max_ps(amax, _mm256_and_ps(v, magnitude));
            unordered = _mm256_or_ps(unordered, _mm256_cmp_ps::<_CMP_UNORD_Q>(v, v));
        }
        if _mm256_movemask_ps(unordered) != 0 {
            return false;
        }
        let mut lanes = [0f32; 8];
        // SAFETY: 8 floats.
        unsafe { _mm256_storeu_ps(lanes.as_mut_ptr(), amax) };
        let amax = lanes.iter().fold(0f32, |a, &b| a.max(b));
        if amax.is_infinite() {
            return false;
        }
        if amax == 0.0 {
            y.d = 0.0;
            y.qs = [0; QK_K];
            y.bsums = [0; QK_K / 16];
            return true;
        }
        let Some(&max) = x.iter().find(|v| v.abs() == amax) else {
            return false;
        };
        let iscale = -127f32 / max;
        if !iscale.is_finite() {
            return false;
        }
        let scale = _mm256_set1_ps(iscale);
        let (low, high) = (_mm256_set1_ps(-128.0), _mm256_set1_ps(127.0));
        let order = _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7);
        for (c, out) in x.chunks_exact(32).zip(y.qs.chunks_exact_mut(32)) {
            let mut ints = [_mm256_setzero_si256(); 4];
            for (i, int) in ints.iter_mut().enumerate() {
                // SAFETY: 8 of the 32 floats.
                let v = _mm256_mul_ps(scale, unsafe { _mm256_loadu_ps(c[8 * i..].as_ptr()) });
                let rounded =
                    _mm256_round_ps::<{ _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC }>(v);
                *int = _mm256_cvtps_epi32(_mm256_min_ps(_mm256_max_ps(rounded, low), high));
            }
            let words = [
                _mm256_packs_epi32(ints[0], ints[1]),
                _mm256_packs_epi32(ints[2], ints[3]),
            ];
            let bytes = _mm256_permutevar8x32_epi32(_mm256_packs_epi16(words[0], words[1]), order);
            // SAFETY: 32 bytes.
            unsafe { _mm256_storeu_si256(out.as_mut_ptr().cast(), bytes) };
        }
        for (sum, q) in y.bsums.iter_mut().zip(y.qs.chunks_exact(16)) {
            *sum = q.iter().map(|&v| i16::from(v)).sum();
        }
        y.d = 1.0 / iscale;
        true
    }

    /// Activation quants `at..at + 4` in every i32 lane.
    #[target_feature(enable = "avx2")]
    fn broadcast_group(qs: &[i8; QK_K], at: usize) -> __m256i {
        assert!(at + 4 <= QK_K);
        // SAFETY: the four bytes are inside `qs` (asserted).
        _mm256_set1_epi32(unsafe { qs.as_ptr().add(at).cast::<i32>().read_unaligned() })
    }

    /// An 8x8 matrix of 32-bit items, transposed: lane r of result g is lane g of `v[r]`.
    #[target_feature(enable = "avx2")]
    fn transpose_8x8_u32(v: [__m256i; 8]) -> [__m256i; 8] {
        let t = [
            _mm256_unpacklo_epi32(v[0], v[1]),
            _mm256_unpackhi_epi32(v[0], v[1]),
            _mm256_unpacklo_epi32(v[2], v[3]),
            _mm256_unpackhi_epi32(v[2], v[3]),
            _mm256_unpacklo_epi32(v[4], v[5]),
            _mm256_unpackhi_epi32(v[4], v[5]),
            _mm256_unpacklo_epi32(v[6], v[7]),
            _mm256_unpackhi_epi32(v[6], v[7]),
        ];
        // u[i]: items i and i + 4 of rows 0..4 (u[0..4]) or 4..8 (u[4..8]).
        let u = [
            _mm256_unpacklo_epi64(t[0], t[2]),
            _mm256_unpackhi_epi64(t[0], t[2]),
            _mm256_unpacklo_epi64(t[1], t[3]),
            _mm256_unpackhi_epi64(t[1], t[3]),
            _mm256_unpacklo_epi64(t[4], t[6]),
            _mm256_unpackhi_epi64(t[4], t[6]),
            _mm256_unpacklo_epi64(t[5], t[7]),
            _mm256_unpackhi_epi64(t[5], t[7]),
        ];
        [
            _mm256_permute2x128_si256(u[0], u[4], 0x20),
            _mm256_permute2x128_si256(u[1], u[5], 0x20),
            _mm256_permute2x128_si256(u[2], u[6], 0x20),
            _mm256_permute2x128_si256(u[3], u[7], 0x20),
            _mm256_permute2x128_si256(u[0], u[4], 0x31),
            _mm256_permute2x128_si256(u[1], u[5], 0x31),
            _mm256_permute2x128_si256(u[2], u[6], 0x31),
            _mm256_permute2x128_si256(u[3], u[7], 0x31),
        ]
    }

    /// Eight rows of sixteen bytes to eight vectors each holding two columns: vector j has
    /// column 2j (rows 0..8) in its low eight bytes and column 2j + 1 in its high eight.
    #[target_feature(enable = "avx2")]
    fn transpose_8x16(r: [__m128i; 8]) -> [__m128i; 8] {
        let a = [
            _mm_unpacklo_epi8(r[0], r[1]),
            _mm_unpackhi_epi8(r[0], r[1]),
            _mm_unpacklo_epi8(r[2], r[3]),
            _mm_unpackhi_epi8(r[2], r[3]),
            _mm_unpacklo_epi8(r[4], r[5]),
            _mm_unpackhi_epi8(r[4], r[5]),
            _mm_unpacklo_epi8(r[6], r[7]),
            _mm_unpackhi_epi8(r[6], r[7]),
        ];
        // Four-byte groups: rows 0..4 (b[0..4]) or 4..8 (b[4..8]) of columns 4i..4i+4.
        let b = [
            _mm_unpacklo_epi16(a[0], a[2]),
            _mm_unpackhi_epi16(a[0], a[2]),
            _mm_unpacklo_epi16(a[1], a[3]),
            _mm_unpackhi_epi16(a[1], a[3]),
            _mm_unpacklo_epi16(a[4], a[6]),
            _mm_unpackhi_epi16(a[4], a[6]),
            _mm_unpacklo_epi16(a[5], a[7]),
            _mm_unpackhi_epi16(a[5], a[7]),
        ];
        [
            _mm_unpacklo_epi32(b[0], b[4]),
            _mm_unpackhi_epi32(b[0], b[4]),
            _mm_unpacklo_epi32(b[1], b[5]),
            _mm_unpackhi_epi32(b[1], b[5]),
            _mm_unpacklo_epi32(b[2], b[6]),
            _mm_unpackhi_epi32(b[2], b[6]),
            _mm_unpacklo_epi32(b[3], b[7]),
            _mm_unpackhi_epi32(b[3], b[7]),
        ]
    }

    /// The low (`which` 0) or high eight bytes of `v`, in the low eight.
    #[target_feature(enable = "avx2")]
    fn half_of(v: __m128i, which: usize) -> __m128i {
        if which == 0 {
            v
        } else {
            _mm_unpackhi_epi64(v, v)
        }
    }

    #[target_feature(enable = "avx2,f16c")]
    fn f16x8(bits: &[u16; 8]) -> __m256 {
        // SAFETY: reads the 16 bytes of `bits`.
        _mm256_cvtph_ps(unsafe { _mm_loadu_si128(bits.as_ptr().cast()) })
    }

    #[target_feature(enable = "avx2")]
    fn load128(bytes: &[u8; 16]) -> __m128i {
        // SAFETY: reads the 16 bytes of `bytes`.
        unsafe { _mm_loadu_si128(bytes.as_ptr().cast()) }
    }

    #[target_feature(enable = "avx2")]
    fn load64(bytes: &[u8; 8]) -> __m128i {
        // SAFETY: reads the 8 bytes of `bytes`.
        unsafe { _mm_loadl_epi64(bytes.as_ptr().cast()) }
    }

    /// The 32 bytes at the start of `bytes` (which has at least 32).
    #[target_feature(enable = "avx2")]
    fn load256<T: Copy>(bytes: &[T]) -> __m256i {
        assert!(std::mem::size_of_val(bytes) >= 32);
        // SAFETY: at least 32 bytes are readable (asserted).
        unsafe { _mm256_loadu_si256(bytes.as_ptr().cast()) }
    }
}

/// Prefill of interleaved Q4_K on AVX-512: two row groups (sixteen rows) per 512-bit lane set,
/// each lane doing exactly what its AVX2 lane does, so the results are the same bit for bit
/// with half the instructions per product.
#[cfg(target_arch = "x86_64")]
mod avx512 {
    use std::arch::x86_64::*;

    use super::{ACT_TILE_WIDE, BlockQ4KX8, BlockQ6K, BlockQ8K, QK_K, ROW_GROUP, avx2};

    /// Whether this CPU runs [`q4k_rows_x16`].
    pub(super) fn available() -> bool {
        is_x86_feature_detected!("avx512f") && is_x86_feature_detected!("avx512bw")
    }

    /// Whether this CPU runs [`q4k_rows_x16_vnni`].
    pub(super) fn vnni_available() -> bool {
        available() && is_x86_feature_detected!("avx512vnni")
    }

    /// `avx2::q4k_rows` for the row groups `wa` and `wb` at once: activation row `i`'s outputs
    /// for `wa` go to `out[2i]`, for `wb` to `out[2i + 1]`. Several activation rows only.
    #[target_feature(enable = "avx512f,avx512bw,avx2,fma,f16c")]
    pub(super) fn q4k_rows_x16<const PER_PAIR: bool>(
        wa: &[BlockQ4KX8],
        wb: &[BlockQ4KX8],
        acts: &[&[BlockQ8K]],
        out: &mut [[f32; ROW_GROUP]],
    ) {
        // SAFETY: this function has the features the body needs without VNNI.
        unsafe { q4k_rows_x16_with::<false, PER_PAIR>(wa, wb, acts, out) }
    }

    /// [`q4k_rows_x16`] with its integer dot products by AVX-512 VNNI: one `vpdpbusd` per
    /// group of four quants, in place of a multiply-add into i16 pairs, an i16 add and a
    /// widening to i32 per sub-block. Both sums are exact (eight groups of 4-bit weights
    /// times 8-bit activations stay within an i16 pair: 8 · 2 · 15 · 128 < 32768), so the
    /// results are the same bit for bit.
    #[target_feature(enable = "avx512f,avx512bw,avx512vnni,avx2,fma,f16c")]
    pub(super) fn q4k_rows_x16_vnni<const PER_PAIR: bool>(
        wa: &[BlockQ4KX8],
        wb: &[BlockQ4KX8],
        acts: &[&[BlockQ8K]],
        out: &mut [[f32; ROW_GROUP]],
    ) {
        // SAFETY: this function has every feature the body needs.
        unsafe { q4k_rows_x16_with::<true, PER_PAIR>(wa, wb, acts, out) }
    }

    /// The body of [`q4k_rows_x16`] and [`q4k_rows_x16_vnni`], inlined into each.
    ///
    /// # Safety
    /// The CPU must have the features of [`q4k_rows_x16`], and AVX-512 VNNI if `VNNI`.
    /// `PER_PAIR` as in `avx2::q4k_rows`.
    #[inline(always)]
    unsafe fn q4k_rows_x16_with<const VNNI: bool, const PER_PAIR: bool>(
        wa: &[BlockQ4KX8],
        wb: &[BlockQ4KX8],
        acts: &[&[BlockQ8K]],
        out: &mut [[f32; ROW_GROUP]],
    ) {
        // SAFETY: the caller guarantees the CPU features.
        unsafe {
            assert!(
                wa.len() == wb.len() && acts.len() <= ACT_TILE_WIDE && out.len() >= 2 * acts.len()
            );
            let mask = _mm512_set1_epi8(0x0f);
            let mut acc = [_mm512_setzero_ps(); ACT_TILE_WIDE];
            let mut acc_min = [_mm512_setzero_ps(); ACT_TILE_WIDE];
            for (block, (a, b)) in wa.iter().zip(wb).enumerate() {
                let d = f16x16(&a.d, &b.d);
                let dmin = f16x16(&a.dmin, &b.dmin);
                // VNNI multiplies whole i32 sums by the scale; otherwise `madd` multiplies
                // i16 pairs by the scale in both halves.
                let scales: [__m512i; 8] = std::array::from_fn(|sub| {
                    if VNNI {
                        u8x16_to_i32(&a.scales[sub], &b.scales[sub])
                    } else {
                        join(
                            avx2::i16_twice(&a.scales[sub]),
                            avx2::i16_twice(&b.scales[sub]),
                        )
                    }
                });
                let mins: [__m512i; 4] = std::array::from_fn(|p| {
                    join(
                        avx2::i16_pair(&a.mins[2 * p], &a.mins[2 * p + 1]),
                        avx2::i16_pair(&b.mins[2 * p], &b.mins[2 * p + 1]),
                    )
                });
                // lanes[sub][g]: group g of sub-block `sub`, rows of `wa` then of `wb` (filled as in
                // `avx2::q4k_rows`).
                let mut lanes = [[std::mem::MaybeUninit::<__m512i>::uninit(); 8]; 8];
                for at in 0..32 {
                    let (pair, g) = (at / 8, at % 8);
                    let q = join(load256(&a.qs[at]), load256(&b.qs[at]));
                    lanes[2 * pair][g].write(_mm512_and_si512(q, mask));
                    lanes[2 * pair + 1][g].write(_mm512_and_si512(_mm512_srli_epi16(q, 4), mask));
                }
                // SAFETY: the loop wrote all 64 items (32 positions, two sub-blocks each).
                let lanes = &*(&raw const lanes).cast::<[[__m512i; 8]; 8]>();
                for ((acc, acc_min), act) in acc.iter_mut().zip(acc_min.iter_mut()).zip(acts) {
                    let act = &act[block];
                    let dall = _mm512_set1_ps(act.d);
                    let (d_act, dmin_act) = (_mm512_mul_ps(d, dall), _mm512_mul_ps(dmin, dall));
                    let min_pair = |pair: usize| {
                        let sums = _mm512_set1_epi32(avx2::bsum_pair(act, 4 * pair, 32));
                        _mm512_madd_epi16(mins[pair], sums)
                    };
                    let mut isum = _mm512_setzero_si512();
                    for (sub, lanes) in lanes.iter().enumerate() {
                        let scaled = if VNNI {
                            let mut dot = _mm512_setzero_si512();
                            for (g, q) in lanes.iter().enumerate() {
                                let x = broadcast_group(&act.qs, sub * 32 + 4 * g);
                                dot = _mm512_dpbusd_epi32(dot, *q, x);
                            }
                            _mm512_mullo_epi32(dot, scales[sub])
                        } else {
                            let mut pairs = _mm512_setzero_si512();
                            for (g, q) in lanes.iter().enumerate() {
                                let x = broadcast_group(&act.qs, sub * 32 + 4 * g);
                                pairs = _mm512_add_epi16(pairs, _mm512_maddubs_epi16(*q, x));
                            }
                            _mm512_madd_epi16(pairs, scales[sub])
                        };
                        isum = _mm512_add_epi32(isum, scaled);
                        if PER_PAIR && sub % 2 == 1 {
                            let imin = _mm512_cvtepi32_ps(min_pair(sub / 2));
                            *acc = _mm512_fmadd_ps(_mm512_cvtepi32_ps(isum), d_act, *acc);
                            *acc_min = _mm512_fmadd_ps(imin, dmin_act, *acc_min);
                            isum = _mm512_setzero_si512();
                        }
                    }
                    if !PER_PAIR {
                        let imin = (0..4).fold(_mm512_setzero_si512(), |sum, pair| {
                            _mm512_add_epi32(sum, min_pair(pair))
                        });
                        *acc = _mm512_fmadd_ps(_mm512_cvtepi32_ps(isum), d_act, *acc);
                        *acc_min = _mm512_fmadd_ps(_mm512_cvtepi32_ps(imin), dmin_act, *acc_min);
                    }
                }
            }
            for (acc, acc_min) in acc.iter_mut().zip(acc_min) {
                *acc = _mm512_sub_ps(*acc, acc_min);
            }
            store_pairs(&acc[..acts.len()], out);
        }
    }

    /// `avx2::q6k_rows` for the row groups `wa` and `wb` (`kb` blocks per row) at once, with
    /// outputs placed as in [`q4k_rows_x16`].
    #[target_feature(enable = "avx512f,avx512bw,avx2,fma,f16c")]
    pub(super) fn q6k_rows_x16<const TILED: bool>(
        wa: &[BlockQ6K],
        wb: &[BlockQ6K],
        kb: usize,
        acts: &[&[BlockQ8K]],
        out: &mut [[f32; ROW_GROUP]],
    ) {
        // SAFETY: this function has the features the body needs without VNNI.
        unsafe { q6k_rows_x16_with::<false, TILED>(wa, wb, kb, acts, out) }
    }

    /// [`q6k_rows_x16`] with its integer dot products by AVX-512 VNNI, as in
    /// [`q4k_rows_x16_vnni`] (two groups of 6-bit weights stay within an i16 pair:
    /// 2 · 2 · 63 · 128 < 32768, so both sums are exact).
    #[target_feature(enable = "avx512f,avx512bw,avx512vnni,avx2,fma,f16c")]
    pub(super) fn q6k_rows_x16_vnni<const TILED: bool>(
        wa: &[BlockQ6K],
        wb: &[BlockQ6K],
        kb: usize,
        acts: &[&[BlockQ8K]],
        out: &mut [[f32; ROW_GROUP]],
    ) {
        // SAFETY: this function has every feature the body needs.
        unsafe { q6k_rows_x16_with::<true, TILED>(wa, wb, kb, acts, out) }
    }

    /// The body of [`q6k_rows_x16`] and [`q6k_rows_x16_vnni`], inlined into each.
    ///
    /// # Safety
    /// The CPU must have the features of [`q6k_rows_x16`], and AVX-512 VNNI if `VNNI`.
    /// `TILED` as in `avx2::q6k_rows`.
    #[inline(always)]
    unsafe fn q6k_rows_x16_with<const VNNI: bool, const TILED: bool>(
        wa: &[BlockQ6K],
        wb: &[BlockQ6K],
        kb: usize,
        acts: &[&[BlockQ8K]],
        out: &mut [[f32; ROW_GROUP]],
    ) {
        // SAFETY: the caller guarantees the CPU features.
        unsafe {
            assert!(acts.len() <= ACT_TILE_WIDE && out.len() >= 2 * acts.len());
            let mut acc = [[_mm512_setzero_ps(); 8]; ACT_TILE_WIDE];
            for b in 0..kb {
                let pa = avx2::q6k_prepare(wa, kb, b);
                let pb = avx2::q6k_prepare(wb, kb, b);
                let d = join_ps(pa.d, pb.d);
                let scales: [__m512i; 16] =
                    std::array::from_fn(|sub| join(pa.scales[sub], pb.scales[sub]));
                let scale_pairs: [__m512i; 8] =
                    std::array::from_fn(|g| join(pa.scale_pairs[g], pb.scale_pairs[g]));
                let mut lanes = [[std::mem::MaybeUninit::<__m512i>::uninit(); 8]; 8];
                for (pair, lanes) in lanes.iter_mut().enumerate() {
                    for (g, lane) in lanes.iter_mut().enumerate() {
                        lane.write(join(pa.lanes[pair][g], pb.lanes[pair][g]));
                    }
                }
                // SAFETY: the loops wrote all 64 items.
                let lanes = &*(&raw const lanes).cast::<[[__m512i; 8]; 8]>();
                for (acc, act) in acc.iter_mut().zip(acts) {
                    let act = &act[b];
                    let mut sumi = [_mm512_setzero_si512(); 8];
                    for (pair, lanes) in lanes.iter().enumerate() {
                        for (g, (sum, q)) in sumi.iter_mut().zip(lanes).enumerate() {
                            let x = broadcast_group(&act.qs, 32 * pair + 4 * g);
                            let p16 = _mm512_maddubs_epi16(*q, x);
                            let scale = scales[2 * pair + g / 4];
                            *sum = if VNNI {
                                _mm512_dpwssd_epi32(*sum, p16, scale)
                            } else {
                                _mm512_add_epi32(*sum, _mm512_madd_epi16(p16, scale))
                            };
                        }
                    }
                    for (g, sum) in sumi.iter_mut().enumerate() {
                        let sums = _mm512_set1_epi32(avx2::bsum_pair(act, 2 * g, 16));
                        let bias = _mm512_slli_epi32::<5>(_mm512_madd_epi16(scale_pairs[g], sums));
                        *sum = _mm512_sub_epi32(*sum, bias);
                    }
                    if TILED {
                        let total = sumi
                            .iter()
                            .fold(_mm512_setzero_si512(), |t, s| _mm512_add_epi32(t, *s));
                        let scaled = _mm512_mul_ps(_mm512_cvtepi32_ps(total), d);
                        acc[0] = _mm512_fmadd_ps(scaled, _mm512_set1_ps(act.d), acc[0]);
                        continue;
                    }
                    let dall = _mm512_mul_ps(d, _mm512_set1_ps(act.d));
                    for (acc, sum) in acc.iter_mut().zip(sumi) {
                        *acc = _mm512_fmadd_ps(dall, _mm512_cvtepi32_ps(sum), *acc);
                    }
                }
            }
            let sums: Vec<__m512> = acc[..acts.len()]
                .iter()
                .map(|v| {
                    if TILED {
                        return v[0];
                    }
                    let r: [__m512; 4] = std::array::from_fn(|i| _mm512_add_ps(v[i + 4], v[i]));
                    _mm512_add_ps(_mm512_add_ps(r[0], r[2]), _mm512_add_ps(r[1], r[3]))
                })
                .collect();
            store_pairs(&sums, out);
        }
    }

    /// Each 16-lane accumulator `i` as `out[2i]` (low eight) and `out[2i + 1]` (high eight).
    #[target_feature(enable = "avx512f")]
    fn store_pairs(acc: &[__m512], out: &mut [[f32; ROW_GROUP]]) {
        for (acc, out) in acc.iter().zip(out.chunks_exact_mut(2)) {
            let high = _mm256_castpd_ps(_mm512_extractf64x4_pd(_mm512_castps_pd(*acc), 1));
            // SAFETY: each `out` item holds ROW_GROUP = 8 floats.
            unsafe {
                _mm256_storeu_ps(out[0].as_mut_ptr(), _mm512_castps512_ps256(*acc));
                _mm256_storeu_ps(out[1].as_mut_ptr(), high);
            }
        }
    }

    #[target_feature(enable = "avx512f")]
    fn join_ps(low: __m256, high: __m256) -> __m512 {
        _mm512_castpd_ps(_mm512_insertf64x4(
            _mm512_castpd256_pd512(_mm256_castps_pd(low)),
            _mm256_castps_pd(high),
            1,
        ))
    }

    /// Activation quants `at..at + 4` in every i32 lane.
    #[target_feature(enable = "avx512f")]
    fn broadcast_group(qs: &[i8; QK_K], at: usize) -> __m512i {
        let g = &qs[at..at + 4];
        _mm512_set1_epi32(i32::from_le_bytes([
            g[0] as u8, g[1] as u8, g[2] as u8, g[3] as u8,
        ]))
    }

    #[target_feature(enable = "avx512f")]
    fn join(low: __m256i, high: __m256i) -> __m512i {
        _mm512_inserti64x4(_mm512_castsi256_si512(low), high, 1)
    }

    #[target_feature(enable = "avx512f")]
    fn f16x16(a: &[u16; 8], b: &[u16; 8]) -> __m512 {
        // SAFETY: reads the 16 bytes of `a` and of `b`.
        let (a, b) = unsafe {
            (
                _mm_loadu_si128(a.as_ptr().cast()),
                _mm_loadu_si128(b.as_ptr().cast()),
            )
        };
        _mm512_cvtph_ps(_mm256_set_m128i(b, a))
    }

    #[target_feature(enable = "avx512f")]
    fn u8x16_to_i32(a: &[u8; 8], b: &[u8; 8]) -> __m512i {
        _mm512_cvtepu8_epi32(_mm_set_epi64x(
            i64::from_le_bytes(*b),
            i64::from_le_bytes(*a),
        ))
    }

    #[target_feature(enable = "avx2")]
    fn load256(bytes: &[u8; 32]) -> __m256i {
        // SAFETY: reads the 32 bytes of `bytes`.
        unsafe { _mm256_loadu_si256(bytes.as_ptr().cast()) }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use candle_core::quantized::{QMatMul, QTensor};
    use candle_core::{Device, Module, Tensor};

    use super::super::random;
    use super::*;

    /// ggml's scalar `get_scale_min_k4`.
    fn scale_min(j: usize, q: &[u8; 12]) -> (u8, u8) {
        if j < 4 {
            (q[j] & 63, q[j + 4] & 63)
        } else {
            (
                (q[j + 4] & 0x0f) | ((q[j - 4] >> 6) << 4),
                (q[j + 4] >> 4) | ((q[j] >> 6) << 4),
            )
        }
    }

    #[test]
    fn scale_unpacking_matches_ggml_scalar_form() {
        let mut s = 0x9e37_79b9_u32;
        for _ in 0..200 {
            let mut packed = [0u8; 12];
            for byte in &mut packed {
                s = s.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
                *byte = (s >> 24) as u8;
            }
            let unpacked = q4k_scales_mins(&packed);
            for j in 0..8 {
                assert_eq!(
                    (unpacked[j], unpacked[8 + j]),
                    scale_min(j, &packed),
                    "{packed:?}"
                );
            }
        }
    }

    /// ggml's repacked Q4_K product for one weight row, written plainly: `ggml_gemv_q4_K_8x8_q8_K`
    /// scales each super-block's integer sums into the two chains, `ggml_gemm_q4_K_8x8_q8_K`
    /// (`per_pair`) each pair of sub-blocks'.
    fn reference_q4k(w: &[BlockQ4K], x: &[BlockQ8K], per_pair: bool) -> f32 {
        let (mut acc, mut acc_min) = (0f32, 0f32);
        for (wb, xb) in w.iter().zip(x) {
            let unpacked = q4k_scales_mins(&wb.scales);
            let (d, dmin) = (wb.d.to_f32() * xb.d, wb.dmin.to_f32() * xb.d);
            let (mut isum, mut imin) = (0i32, 0i32);
            for sub in 0..8 {
                let mut dot = 0i32;
                for i in 0..32 {
                    let byte = wb.qs[32 * (sub / 2) + i];
                    let q = if sub % 2 == 0 { byte & 15 } else { byte >> 4 };
                    dot += i32::from(q) * i32::from(xb.qs[32 * sub + i]);
                }
                isum += i32::from(unpacked[sub]) * dot;
                let bsum = i32::from(xb.bsums[2 * sub]) + i32::from(xb.bsums[2 * sub + 1]);
                imin += i32::from(unpacked[8 + sub]) * bsum;
                if (per_pair && sub % 2 == 1) || sub == 7 {
                    acc = (isum as f32).mul_add(d, acc);
                    acc_min = (imin as f32).mul_add(dmin, acc_min);
                    (isum, imin) = (0, 0);
                }
            }
        }
        acc - acc_min
    }

    /// ggml's AVX2 `vec_dot_q4_K_q8_K` (Q4_K that is not repacked) for one weight row, written
    /// plainly: eight integer sums by position within each 32-value sub-block, `hsum_float_8`
    /// of their chain, plus the four-lane chain of the mins.
    fn reference_q4k_unpacked(w: &[BlockQ4K], x: &[BlockQ8K]) -> f32 {
        let (mut acc, mut acc_m) = ([0f32; 8], [0f32; 4]);
        for (wb, xb) in w.iter().zip(x) {
            let d = xb.d * wb.d.to_f32();
            let dmin = -xb.d * wb.dmin.to_f32();
            let unpacked = q4k_scales_mins(&wb.scales);
            let b32 = |sub: usize| i32::from(xb.bsums[2 * sub]) + i32::from(xb.bsums[2 * sub + 1]);
            for (i, acc_m) in acc_m.iter_mut().enumerate() {
                let prod = i32::from(unpacked[8 + 2 * i]) * b32(2 * i)
                    + i32::from(unpacked[8 + 2 * i + 1]) * b32(2 * i + 1);
                *acc_m = dmin.mul_add(prod as f32, *acc_m);
            }
            let mut sumi = [0i32; 8];
            for (sub, &scale) in unpacked[..8].iter().enumerate() {
                for pos in 0..32 {
                    let byte = wb.qs[32 * (sub / 2) + pos];
                    let q = if sub % 2 == 0 { byte & 15 } else { byte >> 4 };
                    let p = i32::from(q) * i32::from(xb.qs[32 * sub + pos]);
                    sumi[pos / 4] += i32::from(scale) * p;
                }
            }
            for (acc, sum) in acc.iter_mut().zip(sumi) {
                *acc = d.mul_add(sum as f32, *acc);
            }
        }
        let r: [f32; 4] = std::array::from_fn(|i| acc[i + 4] + acc[i]);
        ((r[0] + r[2]) + (r[1] + r[3])) + ((acc_m[0] + acc_m[2]) + (acc_m[1] + acc_m[3]))
    }

    /// ggml's AVX2 `vec_dot_q6_K_q8_K` for one weight row, written plainly: eight integer sums
    /// by position within each 32-value chunk, eight f32 chains, `hsum_float_8`.
    fn reference_q6k(w: &[BlockQ6K], x: &[BlockQ8K]) -> f32 {
        let mut acc = [0f32; 8];
        for (wb, xb) in w.iter().zip(x) {
            let d = xb.d * wb.d.to_f32();
            let mut sumi = [0i32; 8];
            for chunk in 0..8 {
                let (j, t) = (chunk / 4, chunk % 4);
                for pos in 0..32 {
                    let ql = wb.ql[64 * j + 32 * (t % 2) + pos];
                    let low = if t < 2 { ql & 15 } else { ql >> 4 };
                    let high = (wb.qh[32 * j + pos] >> (2 * t)) & 3;
                    let q = i32::from(low | (high << 4));
                    let scale = i32::from(wb.scales[2 * chunk + pos / 16]);
                    sumi[pos / 4] += scale * q * i32::from(xb.qs[32 * chunk + pos]);
                }
            }
            for (l, (acc, sum)) in acc.iter_mut().zip(sumi).enumerate() {
                let bias = i32::from(xb.bsums[2 * l]) * i32::from(wb.scales[2 * l])
                    + i32::from(xb.bsums[2 * l + 1]) * i32::from(wb.scales[2 * l + 1]);
                *acc = d.mul_add((sum - 32 * bias) as f32, *acc);
            }
        }
        let r: [f32; 4] = std::array::from_fn(|i| acc[i + 4] + acc[i]);
        (r[0] + r[2]) + (r[1] + r[3])
    }

    /// ggml's tiled products (`tiled_run_micro_vnni_8x16`, from eight activation rows on) for
    /// one weight row, written plainly: per super-block the exact integer sums, scaled once.
    fn reference_tiled(dtype: GgmlDType, bytes: &[u8], kb: usize, r: usize, x: &[BlockQ8K]) -> f32 {
        let block = if dtype == GgmlDType::Q4K {
            std::mem::size_of::<BlockQ4K>()
        } else {
            std::mem::size_of::<BlockQ6K>()
        };
        let rows = bytes.len() / (kb * block);
        let mut acc = 0f32;
        for (b, xb) in x.iter().enumerate().take(kb) {
            let result = if dtype == GgmlDType::Q4K {
                let w = super::super::blocks_of_size::<BlockQ4K>(bytes, rows, kb * QK_K, QK_K);
                let wb = &w.unwrap()[r * kb + b];
                let unpacked = q4k_scales_mins(&wb.scales);
                let (mut s1, mut s2) = (0i32, 0i32);
                for sub in 0..8 {
                    for i in 0..32 {
                        let byte = wb.qs[32 * (sub / 2) + i];
                        let q = if sub % 2 == 0 { byte & 15 } else { byte >> 4 };
                        s1 += i32::from(unpacked[sub])
                            * i32::from(q)
                            * i32::from(xb.qs[32 * sub + i]);
                    }
                    let bsum = i32::from(xb.bsums[2 * sub]) + i32::from(xb.bsums[2 * sub + 1]);
                    s2 += i32::from(unpacked[8 + sub]) * bsum;
                }
                (-wb.dmin.to_f32()).mul_add(s2 as f32, s1 as f32 * wb.d.to_f32())
            } else {
                let w = super::super::blocks_of_size::<BlockQ6K>(bytes, rows, kb * QK_K, QK_K);
                let wb = &w.unwrap()[r * kb + b];
                let mut s1 = 0i32;
                for v in 0..QK_K {
                    let (j, t, pos) = (v / 128, (v % 128) / 32, v % 32);
                    let ql = wb.ql[64 * j + 32 * (t % 2) + pos];
                    let low = if t < 2 { ql & 15 } else { ql >> 4 };
                    let high = (wb.qh[32 * j + pos] >> (2 * t)) & 3;
                    let q = i32::from(low | (high << 4)) - 32;
                    s1 += i32::from(wb.scales[v / 16]) * q * i32::from(xb.qs[v]);
                }
                s1 as f32 * wb.d.to_f32()
            };
            acc = result.mul_add(xb.d, acc);
        }
        acc
    }

    /// Our products, from the compact blocks and (Q4_K) from the interleaved form, equal
    /// ggml's arithmetic written plainly, bit for bit, for decode and prefill shapes, partial
    /// activation tiles and chunks, and heights the row-group kernels do not cover.
    #[cfg(target_arch = "x86_64")]
    #[test]
    fn products_equal_ggml_arithmetic_bit_for_bit() {
        if !super::super::has_avx2_f16c() {
            return;
        }
        let bits = |v: &[f32]| v.iter().map(|f| f.to_bits()).collect::<Vec<_>>();
        // Every prefill kernel this CPU has: they must agree exactly.
        let levels: Vec<Level> = [Level::Avx2, Level::Avx512, Level::Avx512Vnni]
            .into_iter()
            .filter(|&level| match level {
                Level::Avx2 => true,
                Level::Avx512 => avx512::available(),
                Level::Avx512Vnni => avx512::vnni_available(),
            })
            .collect();
        println!("prefill kernels tested: {levels:?}");
        for (dtype, rows, k) in [
            (GgmlDType::Q4K, 48, 512),
            (GgmlDType::Q4K, 16, 1024),
            (GgmlDType::Q4K, 24, 256),
            (GgmlDType::Q4K, 20, 256),
            (GgmlDType::Q6K, 32, 768),
            (GgmlDType::Q6K, 20, 256),
        ] {
            // Scaled so that some sub-block sums are large and some blocks have mins.
            let values: Vec<f32> = random(rows * k, 3).iter().map(|v| v * 3.0 + 0.5).collect();
            let w = Tensor::from_vec(values, (rows, k), &Device::Cpu).unwrap();
            let q = QTensor::quantize(&w, dtype).unwrap();
            let bytes = q.data().unwrap();
            let kb = k / QK_K;
            let interleaved = (dtype == GgmlDType::Q4K && interleaves(rows, k))
                .then(|| Q4KInterleaved::new(&bytes, rows, k).unwrap());
            for m in [1, 2, 5, 7, 8, 67, 130] {
                let x = random(m * k, 17 + m as u64);
                let acts = quantize_q8k(&x, k, m);
                // Per output: ggml's products of the compact blocks, and (Q4_K) of the
                // repacked ones.
                let mut compact = Vec::with_capacity(m * rows);
                let mut repacked = Vec::with_capacity(m * rows);
                for i in 0..m {
                    let a = &acts[i * kb..(i + 1) * kb];
                    for r in 0..rows {
                        if m >= 8 {
                            compact.push(reference_tiled(dtype, &bytes, kb, r, a));
                        }
                        if dtype == GgmlDType::Q4K {
                            let w = super::super::blocks_of_size::<BlockQ4K>(&bytes, rows, k, QK_K);
                            let w = &w.unwrap()[r * kb..(r + 1) * kb];
                            if m < 8 {
                                compact.push(reference_q4k_unpacked(w, a));
                            }
                            repacked.push(reference_q4k(w, a, i < m - m % 4));
                        } else if m < 8 {
                            let w = super::super::blocks_of_size::<BlockQ6K>(&bytes, rows, k, QK_K);
                            compact.push(reference_q6k(&w.unwrap()[r * kb..(r + 1) * kb], a));
                        }
                    }
                }
                for &level in &levels {
                    // SAFETY: the CPU features were checked above, the levels are the CPU's.
                    let ours = unsafe { matmul_on(dtype, &bytes, rows, k, &x, m, level) };
                    let what = format!("{dtype:?} {rows}x{k} m={m} {level:?}");
                    assert_eq!(bits(&ours.unwrap()), bits(&compact), "{what}");
                    if let Some(w) = &interleaved {
                        // SAFETY: as above.
                        let ours = unsafe { w.matmul_on(&x, m, level) }.unwrap();
                        assert_eq!(bits(&ours), bits(&repacked), "interleaved: {what}");
                    }
                }
            }
        }
    }

    /// Our products are the same function as candle's (which takes other roundings), up to
    /// f32 rounding: a check on the reference itself.
    #[test]
    fn products_agree_with_candle_up_to_rounding() {
        for (dtype, rows, k) in [(GgmlDType::Q4K, 16, 512), (GgmlDType::Q6K, 16, 512)] {
            let values: Vec<f32> = random(rows * k, 5).iter().map(|v| v * 2.0 - 0.3).collect();
            let w = Tensor::from_vec(values, (rows, k), &Device::Cpu).unwrap();
            let q = Arc::new(QTensor::quantize(&w, dtype).unwrap());
            let bytes = q.data().unwrap();
            let kb = k / QK_K;
            let x = random(3 * k, 11);
            let acts = quantize_q8k(&x, k, 3);
            let xt = Tensor::from_vec(x, (3, k), &Device::Cpu).unwrap();
            let candle = QMatMul::from_arc(Arc::clone(&q)).unwrap();
            let theirs = candle.forward(&xt).unwrap().flatten_all().unwrap();
            let theirs = theirs.to_vec1::<f32>().unwrap();
            for i in 0..3 {
                for r in 0..rows {
                    let a = &acts[i * kb..(i + 1) * kb];
                    let ours = if dtype == GgmlDType::Q4K {
                        let w = super::super::blocks_of_size::<BlockQ4K>(&bytes, rows, k, QK_K);
                        let w = &w.unwrap()[r * kb..(r + 1) * kb];
                        let compact = reference_q4k_unpacked(w, a);
                        for per_pair in [false, true] {
                            let repacked = reference_q4k(w, a, per_pair);
                            assert!((repacked - compact).abs() < 1e-4 * compact.abs().max(1.0));
                        }
                        compact
                    } else {
                        let w = super::super::blocks_of_size::<BlockQ6K>(&bytes, rows, k, QK_K);
                        reference_q6k(&w.unwrap()[r * kb..(r + 1) * kb], a)
                    };
                    let theirs = theirs[i * rows + r];
                    let scale = theirs.abs().max(1.0);
                    assert!(
                        (ours - theirs).abs() < 1e-4 * scale,
                        "{dtype:?} {ours} {theirs}"
                    );
                }
            }
        }
    }

    /// Q8_K blocks as ggml's `quantize_row_q8_K_ref` makes them: the SIMD path equals the
    /// scalar one bit for bit, ties go to even, and the odd blocks (NaN, infinity, a
    /// subnormal maximum whose scale overflows, signed zeros, equal magnitudes of both signs)
    /// neither panic nor differ.
    #[test]
    fn q8k_quantization_follows_ggml() {
        let mut rows: Vec<Vec<f32>> = (0..6)
            .map(|i| {
                random(QK_K, 100 + i)
                    .iter()
                    .map(|v| v * 10f32.powi(i as i32 - 2))
                    .collect()
            })
            .collect();
        // Scale exactly -1: every (i - 128) / 2 is a tie between two integers.
        let mut ties = vec![0.0f32; QK_K];
        ties[0] = 127.0;
        for (i, v) in ties.iter_mut().enumerate().skip(1) {
            *v = -(i as f32 - 128.0) / 2.0;
        }
        let expected: Vec<i8> = (0..QK_K)
            .map(|i| match i {
                0 => -127,
                _ => ((i as f32 - 128.0) / 2.0).round_ties_even() as i8,
            })
            .collect();
        let tied = &quantize_q8k(&ties, QK_K, 1)[0];
        assert_eq!(tied.qs.to_vec(), expected, "ties to even");
        assert_eq!(tied.d, -1.0);
        rows.push(ties);
        let mut both = random(QK_K, 7);
        both[3] = 1.5;
        both[9] = -1.5;
        rows.push(both);
        rows.push(vec![0.0; QK_K]);
        rows.push(vec![-0.0; QK_K]);
        for special in [f32::NAN, f32::INFINITY, 1e-40] {
            let mut row = if special == 1e-40 {
                vec![0.0; QK_K]
            } else {
                random(QK_K, 9)
            };
            row[17] = special;
            rows.push(row);
        }
        for (i, row) in rows.iter().enumerate() {
            let ours = &quantize_q8k(row, QK_K, 1)[0];
            let mut scalar = BlockQ8K {
                d: 0.0,
                qs: [0; QK_K],
                bsums: [0; QK_K / 16],
            };
            quantize_block_q8k_scalar(row, &mut scalar);
            assert_eq!(ours.d.to_bits(), scalar.d.to_bits(), "row {i}: d");
            assert_eq!(ours.qs, scalar.qs, "row {i}: quants");
            assert_eq!(ours.bsums, scalar.bsums, "row {i}: block sums");
        }
    }

    #[test]
    fn applies_to_whole_blocks_and_interleaves_q4k_row_groups() {
        assert!(applies(GgmlDType::Q4K, 256) && applies(GgmlDType::Q6K, 512));
        assert!(!applies(GgmlDType::Q4K, 0) && !applies(GgmlDType::Q6K, 320));
        assert!(!applies(GgmlDType::Q5K, 256));
        assert!(interleaves(16, 256) && interleaves(24, 256));
        assert!(!interleaves(20, 256), "rows not a multiple of 8");
        assert!(!interleaves(16, 320));
    }

    /// A wrong input size is an error, not a read out of bounds.
    #[cfg(target_arch = "x86_64")]
    #[test]
    fn mismatched_sizes_are_errors() {
        if !super::super::has_avx2_f16c() {
            return;
        }
        let bytes = vec![0u8; 144 * 16];
        // SAFETY: the CPU features were checked above.
        unsafe {
            assert!(matmul(GgmlDType::Q4K, &bytes, 16, 256, &[0.0; 255], 1).is_err());
            assert!(matmul(GgmlDType::Q4K, &bytes[1..], 16, 256, &[0.0; 256], 1).is_err());
            assert!(matmul(GgmlDType::Q4K, &bytes, 16, 512, &[0.0; 512], 1).is_err());
            assert!(Q4KInterleaved::new(&bytes[1..], 16, 256).is_err());
            assert!(
                Q4KInterleaved::new(&bytes, 12, 256).is_err(),
                "rows not a multiple of 8"
            );
            let w = Q4KInterleaved::new(&bytes, 16, 256).unwrap();
            assert!(w.matmul(&[0.0; 255], 1).is_err());
            assert_eq!(w.matmul(&[0.0; 256], 1).unwrap(), vec![0.0; 16]);
        }
    }
}
