//! Q4_K and Q6_K weights applied with the arithmetic of candle's x86 repacked tiles, so that
//! every output is candle's bit for bit: Q4_K from eight-row interleaved blocks made once at
//! load in place of the GGUF blocks ([`Q4KInterleaved`]; compact blocks that something else
//! shares, such as a tied embedding table, are interleaved on the fly), Q6_K straight from its
//! GGUF blocks.
//!
//! Why not candle's own path: candle 0.11 repacks each Q4_K matrix (and each Q6_K matrix met
//! with more than one activation row) into 16-row tiles whose sub-block scales and mins are
//! expanded to f32, 1.33x (Q4_K) and 1.52x (Q6_K) the GGUF bytes, and keeps the compact copy
//! beside them. On Qwen2.5-Coder-1.5B that is about 1 GB more resident memory, and decode,
//! which is bound by memory bandwidth, reads a third more bytes per token.
//!
//! Why the same results: greedy decoding flips on single roundings, and our parity with
//! llama.cpp was measured on candle's arithmetic. Per output, candle's tile kernel forms for
//! each sub-block (32 values in Q4_K, 16 in Q6_K) an exact integer dot product of weight
//! quants and Q8_K activation quants, then `acc = fma(isum, scale · d_act, acc)`, and for
//! Q4_K `acc = fnma(min, d_act · bsum, acc)`, sub-block after sub-block, super-block after
//! super-block. `scale = d · sc` is exact in f32 (11 by 6 or 8 significant bits), so it can be
//! formed on the fly from the block. The integer sums are exact in any order, which leaves us
//! free to form them eight weight rows at a time, a row per i32 lane, with activation groups
//! broadcast against the rows' quants; the f32 chain is kept as it is, one lane per weight row.
//!
//! Why interleave at load: the kernels want each load to hold the same four quants of eight
//! rows. Turning the GGUF blocks into that layout inside every product (transposes of 8x8
//! words per super-block) cost as much as the products: on Qwen2.5-Coder-1.5B on an AVX-512
//! machine, decode went from 0.43x to 0.90x llama.cpp and prefill from 0.60x to 0.70x when
//! the turning moved to load time. The interleaved form is 3% larger (unpacked scales).
//!
//! Where the CPU has AVX-512, prefill takes two row groups (sixteen rows) per 512-bit
//! register, each lane doing what its AVX2 lane does; with AVX-512 VNNI, each group's integer
//! dot product is one `vpdpbusd` (exact, as the i16 pair sums it replaces were). The activations are quantized to Q8_K by
//! our AVX2 code, which gives candle's `from_float` blocks bit for bit.
//!
//! Candle takes the tiles only where the output width is a multiple of 16 and the input
//! width a multiple of 256, and for Q6_K only with more than one activation row; elsewhere it
//! uses other arithmetic, and [`applies`] says where this module stands in for it.

use std::borrow::Cow;

use candle_core::quantized::GgmlDType;
use candle_core::quantized::k_quants::{self, GgmlType};
use half::f16;

use super::{RowsOut, for_chunks, quantize_rows_of};

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

/// Whether candle would apply a `dtype` matrix of `rows` x `k` to `m` activation rows through
/// its repacked tiles, whose results [`matmul`] reproduces.
pub(super) fn applies(dtype: GgmlDType, rows: usize, k: usize, m: usize) -> bool {
    let shape_fits = rows.is_multiple_of(16) && k.is_multiple_of(QK_K) && k > 0;
    match dtype {
        GgmlDType::Q4K => shape_fits,
        GgmlDType::Q6K => shape_fits && m > 1,
        _ => false,
    }
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
/// in `bytes`, token-major, where [`applies`] holds. Q4_K groups are interleaved on the fly
/// (see [`Q4KInterleaved`] for weights that keep that form).
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
    if !applies(dtype, rows, k, m) || x.len() != m * k {
        candle_core::bail!("no {dtype:?} tile path for {rows}x{k} weights and {m} rows");
    }
    let acts = &quantize_q8k(x, k, m);
    let kb = k / QK_K;
    // SAFETY (both): the caller guarantees the CPU features.
    match dtype {
        GgmlDType::Q4K => {
            let w = super::blocks_of_size::<BlockQ4K>(bytes, rows, k, QK_K)?;
            let group = |g: usize| {
                let rows = &w[g * ROW_GROUP * kb..(g + 1) * ROW_GROUP * kb];
                Cow::Owned((0..kb).map(|b| interleave_q4k(rows, kb, b)).collect())
            };
            Ok(run_single_groups(
                group,
                rows,
                kb,
                acts,
                m,
                |w, a, acc| unsafe { avx2::q4k_rows(w, a, acc) },
            ))
        }
        _ => {
            let w = super::blocks_of_size::<BlockQ6K>(bytes, rows, k, QK_K)?;
            let group = |g: usize| Cow::Borrowed(&w[g * ROW_GROUP * kb..(g + 1) * ROW_GROUP * kb]);
            if level != Level::Avx2 && m > 1 && (rows / ROW_GROUP).is_multiple_of(2) {
                let vnni = level == Level::Avx512Vnni;
                return Ok(run_groups(
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
                            avx512::q6k_rows_x16_vnni(&w[0], &w[1], kb, a, acc)
                        } else {
                            avx512::q6k_rows_x16(&w[0], &w[1], kb, a, acc)
                        }
                    },
                ));
            }
            Ok(run_single_groups(
                group,
                rows,
                kb,
                acts,
                m,
                |w, a, acc| unsafe { avx2::q6k_rows(w, kb, a, acc) },
            ))
        }
    }
}

/// A Q4_K matrix whose rows are interleaved eight at a time ([`BlockQ4KX8`]), made once at
/// load in place of the GGUF blocks (same size but 3%). The products are those of
/// [`matmul`] and candle's tiles, bit for bit; what changes is that no kernel call has to
/// turn the blocks first, which cost about as much as the products themselves.
pub(super) struct Q4KInterleaved {
    blocks: Vec<BlockQ4KX8>,
    rows: usize,
    k: usize,
}

impl Q4KInterleaved {
    /// Interleaves the `rows` x `k` Q4_K blocks in `bytes`, where [`applies`] holds.
    pub(super) fn new(bytes: &[u8], rows: usize, k: usize) -> candle_core::Result<Self> {
        if !applies(GgmlDType::Q4K, rows, k, 1) {
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
        let group = |g: usize| Cow::Borrowed(&self.blocks[g * kb..(g + 1) * kb]);
        if level != Level::Avx2 && m > 1 && (rows / ROW_GROUP).is_multiple_of(2) {
            let vnni = level == Level::Avx512Vnni;
            // SAFETY: the caller guarantees the CPU features.
            return Ok(run_groups(
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
                        avx512::q4k_rows_x16_vnni(&w[0], &w[1], a, acc)
                    } else {
                        avx512::q4k_rows_x16(&w[0], &w[1], a, acc)
                    }
                },
            ));
        }
        // SAFETY: the caller guarantees the CPU features.
        Ok(run_single_groups(
            group,
            rows,
            kb,
            acts,
            m,
            |w, a, acc| unsafe { avx2::q4k_rows(w, a, acc) },
        ))
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

/// The activations quantized to Q8_K, row by row, as candle's tile path does it with its
/// `from_float`: the same blocks bit for bit.
fn quantize_q8k(x: &[f32], k: usize, m: usize) -> Vec<BlockQ8K> {
    let empty = BlockQ8K {
        d: 0.0,
        qs: [0; QK_K],
        bsums: [0; QK_K / 16],
    };
    quantize_rows_of(x, k, m, QK_K, empty, quantize_row_q8k)
}

/// One row of Q8_K blocks as candle's `BlockQ8K::from_float` makes them. Its scalar loop,
/// with a libm `roundf` per value, was 6.5% of Qwen's prefill.
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
        // SAFETY: BlockQ8K has candle's layout (repr(C), size and alignment asserted by
        // `same_layout!`) and every bit pattern is valid for both.
        let theirs = unsafe { &mut *(y as *mut BlockQ8K).cast::<k_quants::BlockQ8K>() };
        k_quants::BlockQ8K::from_float(x, std::slice::from_mut(theirs));
    }
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
/// of `kb` blocks, and writes one output per (activation, weight row) into `acc`: activation row `i`'s
/// outputs for the unit's group `g` at `acc[i * per_unit + g]`. `rows` must be a multiple of
/// `per_unit` groups.
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
    let act_tile = tile.acts.clamp(1, ACT_TILE_WIDE);
    let mut out = vec![0f32; m * rows];
    // Span `i * groups + group` is activation row i's outputs for weight row group `group`.
    let spans = RowsOut::new(&mut out, ROW_GROUP);
    let groups = rows / ROW_GROUP;
    let units = groups / per_unit;
    let chunks = m.div_ceil(ACT_CHUNK);
    for_chunks(chunks * units, |range| {
        let mut acc = vec![[0f32; ROW_GROUP]; act_tile * per_unit];
        for job in range {
            let (chunk, unit) = (job / units, job % units);
            let first_group = unit * per_unit;
            let wg: Vec<_> = (first_group..first_group + per_unit)
                .map(&group_weights)
                .collect();
            let chunk_end = ((chunk + 1) * ACT_CHUNK).min(m);
            for first in (chunk * ACT_CHUNK..chunk_end).step_by(act_tile) {
                let last = (first + act_tile).min(chunk_end);
                let mut tile_rows: [&[X]; ACT_TILE_WIDE] = [&[]; ACT_TILE_WIDE];
                for (slot, i) in tile_rows.iter_mut().zip(first..last) {
                    *slot = &acts[i * kb..(i + 1) * kb];
                }
                acc.fill([0f32; ROW_GROUP]);
                kernel(&wg, &tile_rows[..last - first], &mut acc);
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

    use super::{ACT_TILE, BlockQ4KX8, BlockQ6K, BlockQ8K, QK_K, ROW_GROUP};

    /// One output per (activation row, weight row) for the eight Q4_K weight rows whose
    /// super-blocks are `w` (interleaved, [`BlockQ4KX8`]) against `acts`.
    #[target_feature(enable = "avx2,fma,f16c")]
    pub(super) fn q4k_rows(w: &[BlockQ4KX8], acts: &[&[BlockQ8K]], out: &mut [[f32; ROW_GROUP]]) {
        let mask = _mm256_set1_epi8(0x0f);
        let ones = _mm256_set1_epi16(1);
        let mut acc = [_mm256_setzero_ps(); ACT_TILE];
        for (b, block) in w.iter().enumerate() {
            let d = f16x8(&block.d);
            let dmin = f16x8(&block.dmin);
            let mut scales = [_mm256_setzero_ps(); 8];
            let mut mins = [_mm256_setzero_ps(); 8];
            for sub in 0..8 {
                scales[sub] = _mm256_mul_ps(d, u8x8_to_f32(load64(&block.scales[sub])));
                mins[sub] = _mm256_mul_ps(dmin, u8x8_to_f32(load64(&block.mins[sub])));
            }
            if let [act] = acts {
                // One activation row (decode): each load is one group of four quants of two
                // sub-blocks for all eight rows, against the two broadcast activation groups.
                let act = &act[b];
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
                    let sub = 2 * pair;
                    let isum = _mm256_madd_epi16(low, ones);
                    q4k_step(&mut acc[0], isum, scales[sub], mins[sub], act, sub);
                    let isum = _mm256_madd_epi16(high, ones);
                    q4k_step(
                        &mut acc[0],
                        isum,
                        scales[sub + 1],
                        mins[sub + 1],
                        act,
                        sub + 1,
                    );
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
            for (acc, act) in acc.iter_mut().zip(acts) {
                let act = &act[b];
                for (sub, lanes) in lanes.iter().enumerate() {
                    let mut pairs = _mm256_setzero_si256();
                    for (g, q) in lanes.iter().enumerate() {
                        let a = broadcast_group(&act.qs, sub * 32 + 4 * g);
                        pairs = _mm256_add_epi16(pairs, _mm256_maddubs_epi16(*q, a));
                    }
                    let isum = _mm256_madd_epi16(pairs, ones);
                    q4k_step(acc, isum, scales[sub], mins[sub], act, sub);
                }
            }
        }
        for (out, acc) in out.iter_mut().zip(acc) {
            // SAFETY: `out` holds ROW_GROUP = 8 floats.
            unsafe { _mm256_storeu_ps(out.as_mut_ptr(), acc) };
        }
    }

    /// As [`q4k_rows`] for Q6_K weights.
    #[target_feature(enable = "avx2,fma,f16c")]
    pub(super) fn q6k_rows(
        w: &[BlockQ6K],
        kb: usize,
        acts: &[&[BlockQ8K]],
        out: &mut [[f32; ROW_GROUP]],
    ) {
        let ones = _mm256_set1_epi16(1);
        let mut acc = [_mm256_setzero_ps(); ACT_TILE];
        for b in 0..kb {
            let (scales, lanes) = q6k_prepare(w, kb, b);
            for (acc, act) in acc.iter_mut().zip(acts) {
                let act = &act[b];
                let dall = _mm256_set1_ps(act.d);
                for (pair, lanes) in lanes.iter().enumerate() {
                    let first = 32 * pair;
                    for half in 0..2 {
                        // Two pairs of at most 2 · 63 · 128 fit an i16 lane; four do not.
                        let group = |g: usize| {
                            let a = broadcast_group(&act.qs, first + 4 * g);
                            _mm256_maddubs_epi16(lanes[g], a)
                        };
                        let g = 4 * half;
                        let front = _mm256_add_epi16(group(g), group(g + 1));
                        let back = _mm256_add_epi16(group(g + 2), group(g + 3));
                        let isum = _mm256_add_epi32(
                            _mm256_madd_epi16(front, ones),
                            _mm256_madd_epi16(back, ones),
                        );
                        let sub = 2 * pair + half;
                        let bias = _mm256_set1_ps(32.0 * f32::from(act.bsums[sub]));
                        let f = _mm256_sub_ps(_mm256_cvtepi32_ps(isum), bias);
                        *acc = _mm256_fmadd_ps(f, _mm256_mul_ps(scales[sub], dall), *acc);
                    }
                }
            }
        }
        for (out, acc) in out.iter_mut().zip(acc) {
            // SAFETY: `out` holds ROW_GROUP = 8 floats.
            unsafe { _mm256_storeu_ps(out.as_mut_ptr(), acc) };
        }
    }

    /// Super-block `b` of the eight Q6_K rows of `kb` blocks in `w`, turned for the kernels:
    /// the sixteen sub-block scales `d · sc` per row, and `lanes[pair][g]` holding group g
    /// (four quants, one row per i32 lane) of the 32 values of sub-blocks `2·pair, 2·pair + 1`.
    #[target_feature(enable = "avx2,fma,f16c")]
    pub(super) fn q6k_prepare(
        w: &[BlockQ6K],
        kb: usize,
        b: usize,
    ) -> ([__m256; 16], [[__m256i; 8]; 8]) {
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
        let mut scales = [_mm256_setzero_ps(); 16];
        for (sub, scale) in scales.iter_mut().enumerate() {
            *scale = _mm256_mul_ps(d, i8x8_to_f32(half_of(columns[sub / 2], sub % 2)));
        }
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
        (scales, lanes)
    }

    /// One block of candle's `BlockQ8K::from_float`, bit for bit: the first value of largest
    /// magnitude sets the scale `-127 / max`, values are rounded half away from zero (as
    /// `f32::round`) and clamped. Returns false, writing nothing, for the cases left to
    /// candle's scalar code: a NaN or infinity in the block, or a scale that is not finite.
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
        let half = _mm256_set1_ps(0.5);
        let one = _mm256_set1_ps(1.0);
        let sign = _mm256_set1_ps(-0.0);
        let (low, high) = (_mm256_set1_ps(-128.0), _mm256_set1_ps(127.0));
        let order = _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7);
        for (c, out) in x.chunks_exact(32).zip(y.qs.chunks_exact_mut(32)) {
            let mut ints = [_mm256_setzero_si256(); 4];
            for (i, int) in ints.iter_mut().enumerate() {
                // SAFETY: 8 of the 32 floats.
                let v = _mm256_mul_ps(scale, unsafe { _mm256_loadu_ps(c[8 * i..].as_ptr()) });
                // v - trunc(v) is exact; a magnitude of one half or more rounds away.
                let whole = _mm256_round_ps::<{ _MM_FROUND_TO_ZERO | _MM_FROUND_NO_EXC }>(v);
                let away = _mm256_cmp_ps::<_CMP_GE_OQ>(
                    _mm256_and_ps(_mm256_sub_ps(v, whole), magnitude),
                    half,
                );
                let step = _mm256_and_ps(away, _mm256_or_ps(one, _mm256_and_ps(v, sign)));
                let rounded = _mm256_add_ps(whole, step);
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

    /// One Q4_K sub-block's step of candle's chain: `acc += isum · (scale · d)`, then
    /// `acc -= min · (d · bsum)`, each fused.
    #[target_feature(enable = "avx2,fma")]
    fn q4k_step(
        acc: &mut __m256,
        isum: __m256i,
        scale: __m256,
        min: __m256,
        act: &BlockQ8K,
        sub: usize,
    ) {
        let dall = _mm256_set1_ps(act.d);
        *acc = _mm256_fmadd_ps(_mm256_cvtepi32_ps(isum), _mm256_mul_ps(scale, dall), *acc);
        let bsum = (i32::from(act.bsums[sub * 2]) + i32::from(act.bsums[sub * 2 + 1])) as f32;
        *acc = _mm256_fnmadd_ps(min, _mm256_set1_ps(act.d * bsum), *acc);
    }

    /// Activation quants `at..at + 4` in every i32 lane.
    #[target_feature(enable = "avx2")]
    fn broadcast_group(qs: &[i8; QK_K], at: usize) -> __m256i {
        let g = &qs[at..at + 4];
        _mm256_set1_epi32(i32::from_le_bytes([
            g[0] as u8, g[1] as u8, g[2] as u8, g[3] as u8,
        ]))
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

    #[target_feature(enable = "avx2")]
    fn u8x8_to_f32(v: __m128i) -> __m256 {
        _mm256_cvtepi32_ps(_mm256_cvtepu8_epi32(v))
    }

    #[target_feature(enable = "avx2")]
    fn i8x8_to_f32(v: __m128i) -> __m256 {
        _mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(v))
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
    pub(super) fn q4k_rows_x16(
        wa: &[BlockQ4KX8],
        wb: &[BlockQ4KX8],
        acts: &[&[BlockQ8K]],
        out: &mut [[f32; ROW_GROUP]],
    ) {
        // SAFETY: this function has the features the body needs without VNNI.
        unsafe { q4k_rows_x16_with::<false>(wa, wb, acts, out) }
    }

    /// [`q4k_rows_x16`] with its integer dot products by AVX-512 VNNI: one `vpdpbusd` per
    /// group of four quants, in place of a multiply-add into i16 pairs, an i16 add and a
    /// widening to i32 per sub-block. Both sums are exact (eight groups of 4-bit weights
    /// times 8-bit activations stay within an i16 pair: 8 · 2 · 15 · 128 < 32768), so the
    /// results are the same bit for bit.
    #[target_feature(enable = "avx512f,avx512bw,avx512vnni,avx2,fma,f16c")]
    pub(super) fn q4k_rows_x16_vnni(
        wa: &[BlockQ4KX8],
        wb: &[BlockQ4KX8],
        acts: &[&[BlockQ8K]],
        out: &mut [[f32; ROW_GROUP]],
    ) {
        // SAFETY: this function has every feature the body needs.
        unsafe { q4k_rows_x16_with::<true>(wa, wb, acts, out) }
    }

    /// The body of [`q4k_rows_x16`] and [`q4k_rows_x16_vnni`], inlined into each.
    ///
    /// # Safety
    /// The CPU must have the features of [`q4k_rows_x16`], and AVX-512 VNNI if `VNNI`.
    #[inline(always)]
    unsafe fn q4k_rows_x16_with<const VNNI: bool>(
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
            let ones = _mm512_set1_epi16(1);
            let mut acc = [_mm512_setzero_ps(); ACT_TILE_WIDE];
            for (block, (a, b)) in wa.iter().zip(wb).enumerate() {
                let d = f16x16(&a.d, &b.d);
                let dmin = f16x16(&a.dmin, &b.dmin);
                let mut scales = [_mm512_setzero_ps(); 8];
                let mut mins = [_mm512_setzero_ps(); 8];
                for sub in 0..8 {
                    scales[sub] = _mm512_mul_ps(d, u8x16_to_f32(&a.scales[sub], &b.scales[sub]));
                    mins[sub] = _mm512_mul_ps(dmin, u8x16_to_f32(&a.mins[sub], &b.mins[sub]));
                }
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
                for (acc, act) in acc.iter_mut().zip(acts) {
                    let act = &act[block];
                    let dall = _mm512_set1_ps(act.d);
                    for (sub, lanes) in lanes.iter().enumerate() {
                        let isum = if VNNI {
                            let mut isum = _mm512_setzero_si512();
                            for (g, q) in lanes.iter().enumerate() {
                                let x = broadcast_group(&act.qs, sub * 32 + 4 * g);
                                isum = _mm512_dpbusd_epi32(isum, *q, x);
                            }
                            isum
                        } else {
                            let mut pairs = _mm512_setzero_si512();
                            for (g, q) in lanes.iter().enumerate() {
                                let x = broadcast_group(&act.qs, sub * 32 + 4 * g);
                                pairs = _mm512_add_epi16(pairs, _mm512_maddubs_epi16(*q, x));
                            }
                            _mm512_madd_epi16(pairs, ones)
                        };
                        *acc = _mm512_fmadd_ps(
                            _mm512_cvtepi32_ps(isum),
                            _mm512_mul_ps(scales[sub], dall),
                            *acc,
                        );
                        let bsum = (i32::from(act.bsums[sub * 2])
                            + i32::from(act.bsums[sub * 2 + 1]))
                            as f32;
                        *acc = _mm512_fnmadd_ps(mins[sub], _mm512_set1_ps(act.d * bsum), *acc);
                    }
                }
            }
            store_pairs(&acc[..acts.len()], out);
        }
    }

    /// `avx2::q6k_rows` for the row groups `wa` and `wb` (`kb` blocks per row) at once, with
    /// outputs placed as in [`q4k_rows_x16`].
    #[target_feature(enable = "avx512f,avx512bw,avx2,fma,f16c")]
    pub(super) fn q6k_rows_x16(
        wa: &[BlockQ6K],
        wb: &[BlockQ6K],
        kb: usize,
        acts: &[&[BlockQ8K]],
        out: &mut [[f32; ROW_GROUP]],
    ) {
        // SAFETY: this function has the features the body needs without VNNI.
        unsafe { q6k_rows_x16_with::<false>(wa, wb, kb, acts, out) }
    }

    /// [`q6k_rows_x16`] with its integer dot products by AVX-512 VNNI, as in
    /// [`q4k_rows_x16_vnni`] (two groups of 6-bit weights stay within an i16 pair:
    /// 2 · 2 · 63 · 128 < 32768, so both sums are exact).
    #[target_feature(enable = "avx512f,avx512bw,avx512vnni,avx2,fma,f16c")]
    pub(super) fn q6k_rows_x16_vnni(
        wa: &[BlockQ6K],
        wb: &[BlockQ6K],
        kb: usize,
        acts: &[&[BlockQ8K]],
        out: &mut [[f32; ROW_GROUP]],
    ) {
        // SAFETY: this function has every feature the body needs.
        unsafe { q6k_rows_x16_with::<true>(wa, wb, kb, acts, out) }
    }

    /// The body of [`q6k_rows_x16`] and [`q6k_rows_x16_vnni`], inlined into each.
    ///
    /// # Safety
    /// The CPU must have the features of [`q6k_rows_x16`], and AVX-512 VNNI if `VNNI`.
    #[inline(always)]
    unsafe fn q6k_rows_x16_with<const VNNI: bool>(
        wa: &[BlockQ6K],
        wb: &[BlockQ6K],
        kb: usize,
        acts: &[&[BlockQ8K]],
        out: &mut [[f32; ROW_GROUP]],
    ) {
        // SAFETY: the caller guarantees the CPU features.
        unsafe {
            assert!(acts.len() <= ACT_TILE_WIDE && out.len() >= 2 * acts.len());
            let ones = _mm512_set1_epi16(1);
            let mut acc = [_mm512_setzero_ps(); ACT_TILE_WIDE];
            for b in 0..kb {
                let (scales_a, lanes_a) = avx2::q6k_prepare(wa, kb, b);
                let (scales_b, lanes_b) = avx2::q6k_prepare(wb, kb, b);
                let mut scales = [_mm512_setzero_ps(); 16];
                for (sub, scale) in scales.iter_mut().enumerate() {
                    *scale = join_ps(scales_a[sub], scales_b[sub]);
                }
                let mut lanes = [[std::mem::MaybeUninit::<__m512i>::uninit(); 8]; 8];
                for (pair, lanes) in lanes.iter_mut().enumerate() {
                    for (g, lane) in lanes.iter_mut().enumerate() {
                        lane.write(join(lanes_a[pair][g], lanes_b[pair][g]));
                    }
                }
                // SAFETY: the loops wrote all 64 items.
                let lanes = &*(&raw const lanes).cast::<[[__m512i; 8]; 8]>();
                for (acc, act) in acc.iter_mut().zip(acts) {
                    let act = &act[b];
                    let dall = _mm512_set1_ps(act.d);
                    for (pair, lanes) in lanes.iter().enumerate() {
                        let first = 32 * pair;
                        for half in 0..2 {
                            let g = 4 * half;
                            let x = |g: usize| broadcast_group(&act.qs, first + 4 * g);
                            let isum = if VNNI {
                                (g..g + 4).fold(_mm512_setzero_si512(), |isum, g| {
                                    _mm512_dpbusd_epi32(isum, lanes[g], x(g))
                                })
                            } else {
                                let group = |g: usize| _mm512_maddubs_epi16(lanes[g], x(g));
                                let front = _mm512_add_epi16(group(g), group(g + 1));
                                let back = _mm512_add_epi16(group(g + 2), group(g + 3));
                                _mm512_add_epi32(
                                    _mm512_madd_epi16(front, ones),
                                    _mm512_madd_epi16(back, ones),
                                )
                            };
                            let sub = 2 * pair + half;
                            let bias = _mm512_set1_ps(32.0 * f32::from(act.bsums[sub]));
                            let f = _mm512_sub_ps(_mm512_cvtepi32_ps(isum), bias);
                            *acc = _mm512_fmadd_ps(f, _mm512_mul_ps(scales[sub], dall), *acc);
                        }
                    }
                }
            }
            store_pairs(&acc[..acts.len()], out);
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
    fn u8x16_to_f32(a: &[u8; 8], b: &[u8; 8]) -> __m512 {
        let bytes = _mm_set_epi64x(i64::from_le_bytes(*b), i64::from_le_bytes(*a));
        _mm512_cvtepi32_ps(_mm512_cvtepu8_epi32(bytes))
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

    /// Our products, from the compact blocks and (Q4_K) from the interleaved form, equal
    /// candle's own (its repacked tiles, on this CPU) bit for bit, for decode and prefill
    /// shapes, partial activation tiles and chunks included.
    #[cfg(target_arch = "x86_64")]
    #[test]
    fn products_equal_candles_bit_for_bit() {
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
            (GgmlDType::Q6K, 32, 768),
        ] {
            // Scaled so that some sub-block sums are large and some blocks have mins.
            let values: Vec<f32> = random(rows * k, 3).iter().map(|v| v * 3.0 + 0.5).collect();
            let w = Tensor::from_vec(values, (rows, k), &Device::Cpu).unwrap();
            let q = Arc::new(QTensor::quantize(&w, dtype).unwrap());
            let bytes = q.data().unwrap();
            let candle = QMatMul::from_arc(Arc::clone(&q)).unwrap();
            let interleaved =
                (dtype == GgmlDType::Q4K).then(|| Q4KInterleaved::new(&bytes, rows, k).unwrap());
            for m in [1, 2, 5, 67, 130] {
                if !applies(dtype, rows, k, m) {
                    continue;
                }
                let x = random(m * k, 17 + m as u64);
                let x_copy = x.clone();
                let xt = Tensor::from_vec(x, (m, k), &Device::Cpu).unwrap();
                let theirs = candle.forward(&xt).unwrap().flatten_all().unwrap();
                let theirs = theirs.to_vec1::<f32>().unwrap();
                for &level in &levels {
                    // SAFETY: the CPU features were checked above, the levels are the CPU's.
                    let ours = unsafe { matmul_on(dtype, &bytes, rows, k, &x_copy, m, level) };
                    let ours = ours.unwrap();
                    let what = format!("{dtype:?} {rows}x{k} m={m} {level:?}");
                    assert_eq!(bits(&ours), bits(&theirs), "{what}");
                }
                if let Some(w) = &interleaved {
                    for &level in &levels {
                        // SAFETY: as above.
                        let ours = unsafe { w.matmul_on(&x_copy, m, level) }.unwrap();
                        assert_eq!(
                            bits(&ours),
                            bits(&theirs),
                            "interleaved {rows}x{k} m={m} {level:?}"
                        );
                    }
                }
            }
        }
    }

    /// Q8_K blocks equal candle's `from_float` bit for bit, with ties to round, signed zeros,
    /// a negative maximum, equal magnitudes of both signs, and the blocks left to candle's
    /// code (NaN, infinity, a subnormal maximum whose scale overflows).
    #[test]
    fn q8k_quantization_equals_candles() {
        let mut rows: Vec<Vec<f32>> = (0..6)
            .map(|i| {
                random(QK_K, 100 + i)
                    .iter()
                    .map(|v| v * 10f32.powi(i as i32 - 2))
                    .collect()
            })
            .collect();
        let mut ties = vec![0.0f32; QK_K];
        ties[0] = -127.0;
        for (i, v) in ties.iter_mut().enumerate().skip(1) {
            *v = (i as f32 - 128.0) / 2.0;
        }
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
            let ours = quantize_q8k(row, QK_K, 1);
            let mut theirs = vec![k_quants::BlockQ8K::zeros()];
            k_quants::BlockQ8K::from_float(row, &mut theirs);
            // SAFETY: same layout (`same_layout!`), every bit pattern valid.
            let b = unsafe { &*theirs.as_ptr().cast::<BlockQ8K>() };
            let a = &ours[0];
            assert_eq!(a.d.to_bits(), b.d.to_bits(), "row {i}: d");
            assert_eq!(a.qs, b.qs, "row {i}: quants");
            assert_eq!(a.bsums, b.bsums, "row {i}: block sums");
        }
    }

    #[test]
    fn applies_only_where_candle_takes_its_tiles() {
        assert!(applies(GgmlDType::Q4K, 16, 256, 1));
        assert!(
            !applies(GgmlDType::Q4K, 24, 256, 4),
            "rows not a multiple of 16"
        );
        assert!(!applies(GgmlDType::Q4K, 16, 0, 4));
        assert!(
            !applies(GgmlDType::Q6K, 16, 256, 1),
            "Q6_K decode stays compact in candle"
        );
        assert!(applies(GgmlDType::Q6K, 16, 256, 2));
        assert!(!applies(GgmlDType::Q5K, 16, 256, 2));
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
                Q4KInterleaved::new(&bytes, 8, 256).is_err(),
                "rows not a multiple of 16"
            );
            let w = Q4KInterleaved::new(&bytes, 16, 256).unwrap();
            assert!(w.matmul(&[0.0; 255], 1).is_err());
            assert_eq!(w.matmul(&[0.0; 256], 1).unwrap(), vec![0.0; 16]);
        }
    }
}
