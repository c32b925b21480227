//! Attention over an f16 key/value cache on the CPU (`--kv-cache f16`), computed as llama.cpp's
//! CPU flash attention computes it, its default: keys and values stored as f16, scores and the
//! weighted sum of values accumulated online, key by key or 64 keys at a time.
//!
//! Why an f16 cache: half the memory of the f32 one ([`super::attention`]), and half the bytes
//! that decode reads per token at depth, where attention dominates. Why copy llama.cpp's
//! rounding rather than compute as exactly as f16 storage allows: so that, where greedy
//! decoding meets a near-tie, the token picked is the one llama.cpp picks on a machine like ours.
//!
//! The three paths of ggml's CPU kernel (ggml-cpu/ops.cpp, built for AVX-512 without its FP16
//! extension), each reproduced operation for operation:
//! - [`one_chunk`], fewer than 64 query rows: each query row rounded to f16; per visible key the
//!   f16 dot product (four 16-lane FMA accumulators, ggml's reduction tree), a running maximum,
//!   and the value row added into an f16 accumulator, rounding after every key.
//! - [`split`], decode with 512 or more cells in llama.cpp's view of the cache: the cells cut in
//!   one chunk per thread, each chunk as above, the chunks' partial sums merged in order.
//! - [`tiled`], 64 or more query rows (prefill): 64-key tiles; f32 scores by FMA chains,
//!   ggml's vectorised `expf` polynomial, sums in f64, values accumulated in f32.
//!
//! Every step has a portable version, the reference, and AVX-512 versions of the inner loops
//! that the tests hold to it bit for bit.

use half::f16;
use half::slice::HalfFloatSliceExt;

use super::math::reduce16;
use super::{AttentionInputs, RowsOut, for_chunks, visible_keys};

/// One attention call: the queries attend to the cached positions their causal mask and window
/// let them see. The capacity is also the number of cells llama.cpp's cache would have.
pub(crate) struct Attention<'a> {
    pub inputs: AttentionInputs<'a, f16>,
    /// Multiplies every score (1 where the queries were scaled before).
    pub scale: f32,
    /// Threads llama.cpp would split decode over; it decides the split path's chunks.
    pub threads: usize,
}

impl<'a> std::ops::Deref for Attention<'a> {
    type Target = AttentionInputs<'a, f16>;

    fn deref(&self) -> &AttentionInputs<'a, f16> {
        &self.inputs
    }
}

/// The attention output, `(kv_heads, group * seq, head_dim)`.
pub(crate) fn attend(a: &Attention) -> Vec<f32> {
    attend_with(a, Simd::detect())
}

fn attend_with(a: &Attention, simd: Simd) -> Vec<f32> {
    let rows = a.group * a.seq;
    let mut out = vec![0f32; a.kv_heads * rows * a.head_dim];
    if rows == 0 || a.head_dim == 0 || a.kv_heads == 0 {
        return out;
    }
    if a.seq >= TILE {
        tiled(a, simd, &mut out);
    } else {
        let cells = cells_viewed(a.capacity, a.position + a.seq);
        if a.seq == 1 && cells >= SPLIT_FROM {
            split(a, simd, cells, &mut out);
        } else {
            per_row(a, simd, &mut out);
        }
    }
    out
}

/// Query rows (tiled path) and keys per tile.
const TILE: usize = 64;
/// llama.cpp pads its view of the cache to a multiple of this many cells.
const VIEW_PAD: usize = 256;
/// Decode splits the keys across threads from this many viewed cells.
const SPLIT_FROM: usize = 512;

/// How many cells llama.cpp's attention iterates over when `used` positions are filled: the
/// filled ones rounded up to [`VIEW_PAD`], at least that, at most the cache.
fn cells_viewed(capacity: usize, used: usize) -> usize {
    capacity.min(VIEW_PAD.max(used.next_multiple_of(VIEW_PAD)))
}

impl Attention<'_> {
    fn rows(&self) -> usize {
        self.group * self.seq
    }

    /// Query row `row` of KV head `kv_head`.
    fn query(&self, kv_head: usize, row: usize) -> &[f32] {
        let at = (kv_head * self.rows() + row) * self.head_dim;
        &self.queries[at..at + self.head_dim]
    }

    fn key(&self, kv_head: usize, cell: usize) -> &[f16] {
        let at = (kv_head * self.capacity + cell) * self.head_dim;
        &self.keys[at..at + self.head_dim]
    }

    fn value(&self, kv_head: usize, cell: usize) -> &[f16] {
        let at = (kv_head * self.capacity + cell) * self.head_dim;
        &self.values[at..at + self.head_dim]
    }
}

/// One query row over a run of cells, before normalisation: the running maximum, the sum of
/// exponentials and the weighted values.
struct Partial {
    max: f32,
    sum: f32,
}

/// Fewer than [`TILE`] query rows, no split: each row on its own.
fn per_row(a: &Attention, simd: Simd, out: &mut [f32]) {
    let hd = a.head_dim;
    let rows = a.rows();
    let sink = RowsOut::new(out, hd);
    for_chunks(a.kv_heads * rows, |items| {
        let mut scratch = RowScratch::new(hd);
        for item in items {
            let (kv_head, row) = (item / rows, item % rows);
            let query = a.position + row % a.seq;
            let cells = visible_keys(a.window, query);
            let part = one_chunk(a, simd, kv_head, a.query(kv_head, row), cells, &mut scratch);
            // SAFETY: each item writes its own row.
            let dst = unsafe { sink.row(item) };
            scratch.weighted_f32(dst);
            normalise(dst, part.sum);
        }
    });
}

/// Buffers one row's pass needs.
struct RowScratch {
    /// The query rounded to f16, held as f32 (exactly).
    query: Vec<f32>,
    /// The f16 accumulator of weighted values.
    weighted: Vec<f16>,
}

impl RowScratch {
    fn new(head_dim: usize) -> RowScratch {
        RowScratch {
            query: vec![0.0; head_dim],
            weighted: vec![f16::ZERO; head_dim],
        }
    }

    fn weighted_f32(&self, dst: &mut [f32]) {
        self.weighted.convert_to_f32_slice(dst);
    }
}

/// ggml's `flash_attn_ext_f16_one_chunk` for one query row over `cells` (already cut to what the
/// row sees): leaves the weighted values in `scratch.weighted`.
fn one_chunk(
    a: &Attention,
    simd: Simd,
    kv_head: usize,
    query: &[f32],
    cells: std::ops::Range<usize>,
    scratch: &mut RowScratch,
) -> Partial {
    for (q, &x) in scratch.query.iter_mut().zip(query) {
        *q = f16::from_f32(x).to_f32();
    }
    scratch.weighted.fill(f16::ZERO);
    let mut max = f32::NEG_INFINITY;
    let mut sum = 0f32;
    for cell in cells {
        let score = simd.dot_f16(a.key(kv_head, cell), &scratch.query) * a.scale;
        let (old_scale, weight) = if score > max {
            let old = max;
            max = score;
            let old_scale = (old - max).exp();
            simd.scale_f16(&mut scratch.weighted, old_scale);
            (old_scale, 1.0)
        } else {
            (1.0, (score - max).exp())
        };
        simd.mad_f16(&mut scratch.weighted, a.value(kv_head, cell), weight);
        sum = sum.mul_add(old_scale, weight);
    }
    Partial { max, sum }
}

/// Divides by the sum as ggml does: times its reciprocal; nothing seen gives zeros.
fn normalise(row: &mut [f32], sum: f32) {
    let inv = if sum == 0.0 { 0.0 } else { 1.0 / sum };
    for x in row {
        *x *= inv;
    }
}

/// Decode over a long cache: ggml's split-KV path. The viewed cells are cut into one chunk per
/// thread; each chunk runs every query head; the partials are merged chunk by chunk.
fn split(a: &Attention, simd: Simd, cells: usize, out: &mut [f32]) {
    let hd = a.head_dim;
    let heads = a.kv_heads * a.group;
    let chunks = a.threads.max(1);
    let chunk = cells.div_ceil(chunks);
    // Per chunk, per query head: max, sum, then the weighted values.
    let width = heads * (2 + hd);
    let mut partials = vec![0f32; chunks * width];
    let sink = RowsOut::new(&mut partials, width);
    let seen = visible_keys(a.window, a.position);
    for_chunks(chunks, |items| {
        let mut scratch = RowScratch::new(hd);
        for c in items {
            // SAFETY: each chunk writes its own row.
            let dst = unsafe { sink.row(c) };
            let run = (c * chunk).max(seen.start)..((c + 1) * chunk).min(cells).min(seen.end);
            for (head, part) in dst.chunks_exact_mut(2 + hd).enumerate() {
                let (kv_head, g) = (head / a.group, head % a.group);
                let p = if run.is_empty() {
                    scratch.weighted.fill(f16::ZERO);
                    Partial {
                        max: f32::NEG_INFINITY,
                        sum: 0.0,
                    }
                } else {
                    one_chunk(
                        a,
                        simd,
                        kv_head,
                        a.query(kv_head, g),
                        run.clone(),
                        &mut scratch,
                    )
                };
                part[0] = p.max;
                part[1] = p.sum;
                scratch.weighted_f32(&mut part[2..]);
            }
        }
    });
    for (head, dst) in out.chunks_exact_mut(hd).enumerate() {
        let mut max = f32::NEG_INFINITY;
        let mut sum = 0f32;
        for c in 0..chunks {
            let at = c * width + head * (2 + hd);
            let part = &partials[at..at + 2 + hd];
            if c * chunk >= cells || part[1] == 0.0 {
                continue;
            }
            let new_max = max.max(part[0]);
            let old_scale = (max - new_max).exp();
            let new_scale = (part[0] - new_max).exp();
            for (x, &y) in dst.iter_mut().zip(&part[2..]) {
                *x = x.mul_add(old_scale, y * new_scale);
            }
            sum = sum.mul_add(old_scale, part[1] * new_scale);
            max = new_max;
        }
        if sum != 0.0 {
            normalise(dst, sum);
        }
    }
}

/// Prefill: ggml's tiled path. Each work item is one KV head and up to 64 consecutive tokens,
/// for every query head sharing that KV head, so each key tile is converted once for all of
/// them; keys come in tiles of 64 cells. Later tokens see more keys: they are handed out first.
fn tiled(a: &Attention, simd: Simd, out: &mut [f32]) {
    let hd = a.head_dim;
    let blocks = a.seq.div_ceil(TILE);
    let sink = RowsOut::new(out, hd);
    for_chunks(a.kv_heads * blocks, |items| {
        let mut keys_t = vec![0f32; hd * TILE];
        let mut key = vec![0f32; hd];
        let mut values = vec![0f32; TILE * hd];
        let mut scores = [0f32; TILE];
        let mut maxes = vec![f32::NEG_INFINITY; a.group * TILE];
        let mut sums = vec![0f32; a.group * TILE];
        for item in items {
            let (kv_head, block) = (item % a.kv_heads, blocks - 1 - item / a.kv_heads);
            let first = block * TILE;
            let count = TILE.min(a.seq - first);
            let mut dsts: Vec<&mut [f32]> = (0..a.group)
                .map(|g| {
                    // SAFETY: each item writes its own rows: `count` per query head.
                    unsafe { sink.rows(kv_head * a.rows() + g * a.seq + first, count) }
                })
                .collect();
            for dst in dsts.iter_mut() {
                dst.fill(0.0);
            }
            maxes.fill(f32::NEG_INFINITY);
            sums.fill(0.0);
            let span = visible_keys(a.window, a.position + first).start
                ..visible_keys(a.window, a.position + first + count - 1).end;
            let mut tile_start = span.start / TILE * TILE;
            while tile_start < span.end {
                let n = TILE.min(span.end - tile_start);
                // Columns `n..` of a short last tile keep an earlier tile's keys: their scores
                // are masked to minus infinity below whatever they hold.
                for j in 0..n {
                    a.key(kv_head, tile_start + j)
                        .convert_to_f32_slice(&mut key);
                    for (d, &k) in key.iter().enumerate() {
                        keys_t[d * TILE + j] = k;
                    }
                    a.value(kv_head, tile_start + j)
                        .convert_to_f32_slice(&mut values[j * hd..(j + 1) * hd]);
                }
                for (g, dst) in dsts.iter_mut().enumerate() {
                    for (i, row) in dst.chunks_exact_mut(hd).enumerate() {
                        let seen = visible_keys(a.window, a.position + first + i);
                        let cells = seen.start.max(tile_start)..seen.end.min(tile_start + n);
                        if cells.is_empty() {
                            continue;
                        }
                        let query = a.query(kv_head, g * a.seq + first + i);
                        simd.scores(query, &keys_t, &mut scores);
                        let (lo, hi) = (cells.start - tile_start, cells.end - tile_start);
                        let mut tile_max = f32::NEG_INFINITY;
                        for (j, s) in scores.iter_mut().enumerate() {
                            *s = if (lo..hi).contains(&j) {
                                *s * a.scale
                            } else {
                                f32::NEG_INFINITY
                            };
                            tile_max = tile_max.max(*s);
                        }
                        let at = g * TILE + i;
                        let new_max = maxes[at].max(tile_max);
                        if new_max > maxes[at] {
                            let old_scale = (maxes[at] - new_max).exp();
                            for x in row.iter_mut() {
                                *x *= old_scale;
                            }
                            sums[at] *= old_scale;
                        }
                        maxes[at] = new_max;
                        let exp_sum = simd.soft_max(&mut scores, new_max);
                        sums[at] = (sums[at] as f64 + exp_sum) as f32;
                        simd.accumulate(row, &scores[..n], &values[..n * hd]);
                    }
                }
                tile_start += TILE;
            }
            for (g, dst) in dsts.iter_mut().enumerate() {
                for (i, row) in dst.chunks_exact_mut(hd).enumerate() {
                    normalise(row, sums[g * TILE + i]);
                }
            }
        }
    });
}

/// The inner loops, portable or AVX-512; both give the same bits.
#[derive(Clone, Copy)]
enum Simd {
    Portable,
    #[cfg(target_arch = "x86_64")]
    Avx512,
}

impl Simd {
    fn detect() -> Simd {
        #[cfg(target_arch = "x86_64")]
        if std::arch::is_x86_feature_detected!("avx512f")
            && std::arch::is_x86_feature_detected!("fma")
        {
            return Simd::Avx512;
        }
        Simd::Portable
    }

    /// `ggml_vec_dot_f16` of a key row and the f16-rounded query (held as f32).
    fn dot_f16(self, key: &[f16], query: &[f32]) -> f32 {
        match self {
            Simd::Portable => portable::dot_f16(key, query),
            #[cfg(target_arch = "x86_64")]
            // SAFETY: `detect` saw AVX-512F and FMA.
            Simd::Avx512 => unsafe { avx512::dot_f16(key, query) },
        }
    }

    /// `ggml_vec_mad_f16`: `acc += row * weight`, rounded to f16.
    fn mad_f16(self, acc: &mut [f16], row: &[f16], weight: f32) {
        match self {
            Simd::Portable => portable::mad_f16(acc, row, weight),
            #[cfg(target_arch = "x86_64")]
            // SAFETY: as above.
            Simd::Avx512 => unsafe { avx512::mad_f16(acc, row, weight) },
        }
    }

    /// `ggml_vec_scale_f16`.
    fn scale_f16(self, acc: &mut [f16], factor: f32) {
        match self {
            Simd::Portable => portable::scale_f16(acc, factor),
            #[cfg(target_arch = "x86_64")]
            // SAFETY: as above.
            Simd::Avx512 => unsafe { avx512::scale_f16(acc, factor) },
        }
    }

    /// One query row against a transposed key tile (`head_dim x 64`): FMA chains over the
    /// head dimension, as `simd_gemm` computes them.
    fn scores(self, query: &[f32], keys_t: &[f32], out: &mut [f32; TILE]) {
        match self {
            Simd::Portable => portable::scores(query, keys_t, out),
            #[cfg(target_arch = "x86_64")]
            // SAFETY: as above.
            Simd::Avx512 => unsafe { avx512::scores(query, keys_t, out) },
        }
    }

    /// `ggml_vec_soft_max_f32` over a tile: exponentials in place, their sum in f64.
    fn soft_max(self, scores: &mut [f32; TILE], max: f32) -> f64 {
        match self {
            Simd::Portable => portable::soft_max(scores, max),
            #[cfg(target_arch = "x86_64")]
            // SAFETY: as above.
            Simd::Avx512 => unsafe { avx512::soft_max(scores, max) },
        }
    }

    /// `row += weights · values` (`values` one row per weight): FMA chains over the weights.
    fn accumulate(self, row: &mut [f32], weights: &[f32], values: &[f32]) {
        match self {
            Simd::Portable => portable::accumulate(row, weights, values),
            #[cfg(target_arch = "x86_64")]
            // SAFETY: as above.
            Simd::Avx512 => unsafe { avx512::accumulate(row, weights, values) },
        }
    }
}

/// The reference arithmetic, written to round exactly where ggml's AVX-512 code rounds.
mod portable {
    use super::super::math::{ggml_expf, reduce16};
    use super::TILE;
    use half::f16;

    pub(super) fn dot_f16(key: &[f16], query: &[f32]) -> f32 {
        let whole = key.len() / 64 * 64;
        let mut acc = [[0f32; 16]; 4];
        for (k, q) in key[..whole]
            .chunks_exact(64)
            .zip(query[..whole].chunks_exact(64))
        {
            for (j, lanes) in acc.iter_mut().enumerate() {
                for (l, a) in lanes.iter_mut().enumerate() {
                    *a = k[j * 16 + l].to_f32().mul_add(q[j * 16 + l], *a);
                }
            }
        }
        let add =
            |x: [f32; 16], y: [f32; 16]| -> [f32; 16] { std::array::from_fn(|l| x[l] + y[l]) };
        let [a0, a1, a2, a3] = acc;
        let total = add(add(a0, a2), add(a1, a3));
        let mut sum = reduce16(&total) as f64;
        for (k, &q) in key[whole..].iter().zip(&query[whole..]) {
            sum += (k.to_f32() * q) as f64;
        }
        sum as f32
    }

    pub(super) fn mad_f16(acc: &mut [f16], row: &[f16], weight: f32) {
        for (a, r) in acc.iter_mut().zip(row) {
            *a = f16::from_f32(r.to_f32().mul_add(weight, a.to_f32()));
        }
    }

    pub(super) fn scale_f16(acc: &mut [f16], factor: f32) {
        for a in acc {
            *a = f16::from_f32(a.to_f32() * factor);
        }
    }

    pub(super) fn scores(query: &[f32], keys_t: &[f32], out: &mut [f32; TILE]) {
        out.fill(0.0);
        for (&q, keys) in query.iter().zip(keys_t.chunks_exact(TILE)) {
            for (o, &k) in out.iter_mut().zip(keys) {
                *o = k.mul_add(q, *o);
            }
        }
    }

    pub(super) fn soft_max(scores: &mut [f32; TILE], max: f32) -> f64 {
        let mut sum = 0f64;
        for block in scores.chunks_exact_mut(16) {
            let mut lanes = [0f32; 16];
            for (lane, s) in lanes.iter_mut().zip(block.iter_mut()) {
                *s = ggml_expf(*s - max);
                *lane = *s;
            }
            sum += reduce16(&lanes) as f64;
        }
        sum
    }

    pub(super) fn accumulate(row: &mut [f32], weights: &[f32], values: &[f32]) {
        for (&w, value) in weights.iter().zip(values.chunks_exact(row.len())) {
            for (r, &v) in row.iter_mut().zip(value) {
                *r = v.mul_add(w, *r);
            }
        }
    }
}

#[cfg(target_arch = "x86_64")]
mod avx512 {
    use super::super::math::reduce16;
    use super::TILE;
    use half::f16;
    use std::arch::x86_64::*;

    /// Rounding of `vcvtps2ph` as ggml asks for it: to nearest, ties to even.
    const NEAREST: i32 = _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC;

    #[target_feature(enable = "avx512f,fma")]
    unsafe fn load_f16(p: *const f16) -> __m512 {
        // SAFETY: the caller hands 16 readable halves.
        unsafe { _mm512_cvtph_ps(_mm256_loadu_si256(p as *const __m256i)) }
    }

    #[target_feature(enable = "avx512f,fma")]
    unsafe fn store_f16(p: *mut f16, v: __m512) {
        // SAFETY: the caller hands 16 writable halves.
        unsafe { _mm256_storeu_si256(p as *mut __m256i, _mm512_cvtps_ph::<NEAREST>(v)) }
    }

    #[target_feature(enable = "avx512f,fma")]
    pub(super) unsafe fn dot_f16(key: &[f16], query: &[f32]) -> f32 {
        assert_eq!(key.len(), query.len());
        let whole = key.len() / 64 * 64;
        let mut acc = [_mm512_setzero_ps(); 4];
        for i in (0..whole).step_by(64) {
            for (j, a) in acc.iter_mut().enumerate() {
                // SAFETY: i + 64 <= whole <= len, for both slices.
                unsafe {
                    let k = load_f16(key.as_ptr().add(i + j * 16));
                    let q = _mm512_loadu_ps(query.as_ptr().add(i + j * 16));
                    *a = _mm512_fmadd_ps(k, q, *a);
                }
            }
        }
        let total = _mm512_add_ps(_mm512_add_ps(acc[0], acc[2]), _mm512_add_ps(acc[1], acc[3]));
        let mut lanes = [0f32; 16];
        // SAFETY: 16 floats.
        unsafe { _mm512_storeu_ps(lanes.as_mut_ptr(), total) };
        let mut sum = super::reduce16(&lanes) as f64;
        for (k, &q) in key[whole..].iter().zip(&query[whole..]) {
            sum += (k.to_f32() * q) as f64;
        }
        sum as f32
    }

    #[target_feature(enable = "avx512f,fma")]
    pub(super) unsafe fn mad_f16(acc: &mut [f16], row: &[f16], weight: f32) {
        assert_eq!(acc.len(), row.len());
        let whole = acc.len() / 16 * 16;
        let w = _mm512_set1_ps(weight);
        for i in (0..whole).step_by(16) {
            // SAFETY: i + 16 <= whole <= len, for both slices.
            unsafe {
                let a = load_f16(acc.as_ptr().add(i));
                let r = load_f16(row.as_ptr().add(i));
                store_f16(acc.as_mut_ptr().add(i), _mm512_fmadd_ps(r, w, a));
            }
        }
        super::portable::mad_f16(&mut acc[whole..], &row[whole..], weight);
    }

    #[target_feature(enable = "avx512f,fma")]
    pub(super) unsafe fn scale_f16(acc: &mut [f16], factor: f32) {
        let whole = acc.len() / 16 * 16;
        let f = _mm512_set1_ps(factor);
        for i in (0..whole).step_by(16) {
            // SAFETY: i + 16 <= whole <= len.
            unsafe {
                let a = load_f16(acc.as_ptr().add(i));
                store_f16(acc.as_mut_ptr().add(i), _mm512_mul_ps(a, f));
            }
        }
        super::portable::scale_f16(&mut acc[whole..], factor);
    }

    #[target_feature(enable = "avx512f,fma")]
    pub(super) unsafe fn scores(query: &[f32], keys_t: &[f32], out: &mut [f32; TILE]) {
        assert!(keys_t.len() >= query.len() * TILE);
        let mut acc = [_mm512_setzero_ps(); TILE / 16];
        for (d, &q) in query.iter().enumerate() {
            let qv = _mm512_set1_ps(q);
            for (j, a) in acc.iter_mut().enumerate() {
                // SAFETY: d * TILE + j * 16 + 16 <= query.len() * TILE <= keys_t.len().
                let k = unsafe { _mm512_loadu_ps(keys_t.as_ptr().add(d * TILE + j * 16)) };
                *a = _mm512_fmadd_ps(k, qv, *a);
            }
        }
        for (j, a) in acc.iter().enumerate() {
            // SAFETY: 16 floats at j * 16 < TILE.
            unsafe { _mm512_storeu_ps(out.as_mut_ptr().add(j * 16), *a) };
        }
    }

    #[target_feature(enable = "avx512f,fma")]
    pub(super) unsafe fn soft_max(scores: &mut [f32; TILE], max: f32) -> f64 {
        let m = _mm512_set1_ps(max);
        let mut sum = 0f64;
        for block in scores.chunks_exact_mut(16) {
            // SAFETY: 16 floats per block.
            unsafe {
                let v = super::super::math::expf_avx512(_mm512_sub_ps(
                    _mm512_loadu_ps(block.as_ptr()),
                    m,
                ));
                _mm512_storeu_ps(block.as_mut_ptr(), v);
            }
            let mut lanes = [0f32; 16];
            lanes.copy_from_slice(block);
            sum += reduce16(&lanes) as f64;
        }
        sum
    }

    #[target_feature(enable = "avx512f,fma")]
    pub(super) unsafe fn accumulate(row: &mut [f32], weights: &[f32], values: &[f32]) {
        let hd = row.len();
        assert!(values.len() >= weights.len() * hd);
        let whole = hd / 16 * 16;
        for i in (0..whole).step_by(16) {
            // SAFETY: i + 16 <= whole <= hd; each value row holds hd floats.
            unsafe {
                let mut a = _mm512_loadu_ps(row.as_ptr().add(i));
                for (t, &w) in weights.iter().enumerate() {
                    let v = _mm512_loadu_ps(values.as_ptr().add(t * hd + i));
                    a = _mm512_fmadd_ps(v, _mm512_set1_ps(w), a);
                }
                _mm512_storeu_ps(row.as_mut_ptr().add(i), a);
            }
        }
        for i in whole..hd {
            for (t, &w) in weights.iter().enumerate() {
                row[i] = values[t * hd + i].mul_add(w, row[i]);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::math::ggml_expf;
    use super::super::random;
    use super::*;

    struct Case {
        kv_heads: usize,
        group: usize,
        seq: usize,
        head_dim: usize,
        position: usize,
        window: Option<usize>,
    }

    /// (kv_heads, group, seq, head_dim, position, window): decode and short prefill (per row),
    /// decode over 512 or more viewed cells (split), 64 or more rows (tiled), head sizes of
    /// SmolLM2 (64), Qwen (128), Gemma (256) and one that is no multiple of 64, sliding windows.
    const CASES: [(usize, usize, usize, usize, usize, Option<usize>); 12] = [
        (2, 6, 1, 128, 0, None),
        (2, 6, 1, 128, 40, None),
        (3, 3, 7, 64, 85, None),
        (1, 4, 1, 256, 100, Some(64)),
        (1, 2, 5, 80, 30, None),
        (2, 6, 1, 128, 700, None),
        (3, 3, 1, 64, 1500, None),
        (1, 4, 1, 256, 900, Some(512)),
        (3, 3, 64, 64, 0, None),
        (2, 2, 100, 128, 37, None),
        (1, 4, 70, 256, 540, Some(512)),
        (1, 1, 130, 80, 10, Some(40)),
    ];

    fn cases() -> impl Iterator<Item = (Case, Vec<f32>, Vec<f16>, Vec<f16>, usize)> {
        CASES
            .iter()
            .enumerate()
            .map(|(i, &(kv_heads, group, seq, head_dim, position, window))| {
                let capacity = position + seq + 3;
                let seed = i as u64 * 5;
                let queries = random(kv_heads * group * seq * head_dim, seed);
                // Larger keys give peaked scores, so the running maximum moves.
                let keys = random(kv_heads * capacity * head_dim, seed + 1)
                    .iter()
                    .map(|&x| f16::from_f32(4.0 * x))
                    .collect();
                let values = random(kv_heads * capacity * head_dim, seed + 2)
                    .iter()
                    .map(|&x| f16::from_f32(x))
                    .collect();
                let case = Case {
                    kv_heads,
                    group,
                    seq,
                    head_dim,
                    position,
                    window,
                };
                (case, queries, keys, values, capacity)
            })
    }

    fn attention<'a>(
        c: &Case,
        queries: &'a [f32],
        keys: &'a [f16],
        values: &'a [f16],
        capacity: usize,
    ) -> Attention<'a> {
        Attention {
            inputs: AttentionInputs {
                queries,
                keys,
                values,
                kv_heads: c.kv_heads,
                group: c.group,
                seq: c.seq,
                head_dim: c.head_dim,
                capacity,
                position: c.position,
                window: c.window,
            },
            scale: 1.0 / (c.head_dim as f32).sqrt(),
            threads: 2,
        }
    }

    /// Softmax attention in f64 on the same f16 keys and values.
    fn exact(a: &Attention) -> Vec<f64> {
        let hd = a.head_dim;
        let mut out = Vec::new();
        for kv_head in 0..a.kv_heads {
            for row in 0..a.rows() {
                let query = a.query(kv_head, row);
                let cells = visible_keys(a.window, a.position + row % a.seq);
                let scores: Vec<f64> = cells
                    .clone()
                    .map(|c| {
                        let key = a.key(kv_head, c);
                        let dot: f64 = key
                            .iter()
                            .zip(query)
                            .map(|(k, &q)| k.to_f64() * q as f64)
                            .sum();
                        dot * a.scale as f64
                    })
                    .collect();
                let max = scores.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
                let weights: Vec<f64> = scores.iter().map(|s| (s - max).exp()).collect();
                let total: f64 = weights.iter().sum();
                for d in 0..hd {
                    let v: f64 = cells
                        .clone()
                        .zip(&weights)
                        .map(|(c, w)| w * a.value(kv_head, c)[d].to_f64())
                        .sum();
                    out.push(v / total);
                }
            }
        }
        out
    }

    #[test]
    fn close_to_exact_softmax_attention_on_every_path() {
        for (i, (c, q, k, v, capacity)) in cases().enumerate() {
            let a = attention(&c, &q, &k, &v, capacity);
            let ours = attend(&a);
            let exact = exact(&a);
            assert_eq!(ours.len(), exact.len());
            // Values are in [-1, 1). The tiled path accumulates in f32; the others in an f16
            // accumulator that rounds to 2^-11 relative at every key (1500 keys: 4e-3 seen).
            let tolerance = if c.seq >= TILE { 2e-6 } else { 1e-2 };
            let worst = ours
                .iter()
                .zip(&exact)
                .map(|(&x, &y)| (x as f64 - y).abs())
                .fold(0.0, f64::max);
            assert!(worst < tolerance, "case {i}: largest error {worst}");
        }
    }

    #[test]
    fn simd_paths_equal_the_portable_arithmetic_bit_for_bit() {
        let simd = Simd::detect();
        if matches!(simd, Simd::Portable) {
            eprintln!("no AVX-512 here: only the portable path exists");
            return;
        }
        for (i, (c, q, k, v, capacity)) in cases().enumerate() {
            let a = attention(&c, &q, &k, &v, capacity);
            let fast = attend_with(&a, simd);
            let portable = attend_with(&a, Simd::Portable);
            let differing = fast
                .iter()
                .zip(&portable)
                .filter(|(x, y)| x.to_bits() != y.to_bits())
                .count();
            assert_eq!(
                differing,
                0,
                "case {i}: {differing} of {} outputs differ",
                fast.len()
            );
        }
    }

    #[test]
    fn simd_softmax_equals_the_portable_one_at_the_extremes() {
        let simd = Simd::detect();
        if matches!(simd, Simd::Portable) {
            return;
        }
        let mut tile = [0f32; TILE];
        for (j, x) in tile.iter_mut().enumerate() {
            *x = (j as f32 - 40.0) * 3.1;
        }
        tile[0] = f32::NEG_INFINITY;
        tile[1] = -1e30;
        tile[2] = 88.0;
        for max in [0.0f32, 60.0, -3.5, 100.0] {
            let (mut fast, mut portable) = (tile, tile);
            let sums = (
                simd.soft_max(&mut fast, max),
                portable::soft_max(&mut portable, max),
            );
            assert_eq!(sums.0.to_bits(), sums.1.to_bits(), "max {max}");
            for (j, (x, y)) in fast.iter().zip(&portable).enumerate() {
                assert_eq!(x.to_bits(), y.to_bits(), "max {max}, lane {j}: {x} vs {y}");
            }
        }
    }

    #[test]
    fn paths_are_chosen_as_ggml_chooses_them() {
        assert_eq!(cells_viewed(4096, 1), 256);
        assert_eq!(cells_viewed(4096, 257), 512);
        assert_eq!(cells_viewed(300, 290), 300);
        assert_eq!(cells_viewed(100, 40), 100);
        assert_eq!(visible_keys(Some(512), 600), 89..601);
        assert_eq!(visible_keys(None, 5), 0..6);
    }

    #[test]
    fn ggml_expf_is_close_to_exp_and_saturates() {
        // Down to where exp leaves the normal floats.
        for i in -1740..=200 {
            let x = i as f32 * 0.05;
            let (ours, libm) = (ggml_expf(x) as f64, (x as f64).exp());
            assert!(((ours - libm) / libm).abs() < 4e-7, "{x}: {ours} vs {libm}");
        }
        assert_eq!(ggml_expf(f32::NEG_INFINITY), 0.0);
        assert_eq!(ggml_expf(-200.0), 0.0);
        assert_eq!(ggml_expf(200.0), f32::INFINITY);
    }

    #[test]
    fn reduce16_adds_halves_pairwise() {
        // 1e8 swallows 1 unless the ones meet before it: lanes 0 and 8 pair first.
        let mut v = [0f32; 16];
        v[0] = 1.0;
        v[8] = 1.0;
        v[4] = 1e8;
        assert_eq!(reduce16(&v), 1e8 + 2.0);
        v[8] = 0.0;
        v[1] = 1.0;
        assert_eq!(reduce16(&v), 1e8);
    }
}
