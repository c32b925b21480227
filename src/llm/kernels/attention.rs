//! Attention over one layer's key/value cache on the CPU: scores, scale, mask, softmax and the
//! weighted sum of values, for every KV head, on candle's worker pool.
//!
//! Why not candle's ops: its batched matmul runs the gemm crate on rayon's pool while candle's
//! own workers spin waiting for the next quantized matmul, so the two pools fight over the cores.
//! On Qwen2.5-Coder-1.5B at 4k of context, a quarter of decode's samples were a spinning worker
//! and attention ran about one core's worth. It also materialises every intermediate (scaled,
//! masked, softmaxed) at full size, 100 MB each for a 256-token chunk at 4k depth.
//!
//! Here each work item is one KV head and a block of its query rows, done start to finish on one
//! worker with a buffer of its own. The arithmetic is candle's, bit for bit: the same gemm calls
//! (same strides, zero `alpha`, unit `beta`), candle's affine scale and additive mask, and
//! softmax with candle's own reductions. Row blocks are only cut where gemm 0.19 computes each
//! output the same way for the block as for the whole product ([`DispatchClass`]); the tests
//! hold the whole path to candle's ops over shapes on both sides of every such boundary.

use candle_core::cpu::kernels::VecOps;

use super::{AttentionInputs, RowsOut, for_chunks, visible_keys};

/// One attention call: the queries attend to cached positions `start..position + seq`.
pub(crate) struct Attention<'a> {
    pub inputs: AttentionInputs<'a, f32>,
    /// First cached position attended.
    pub start: usize,
    /// Multiplies the scores after the product (`None`: the queries were scaled before).
    pub scale: Option<f32>,
}

impl<'a> std::ops::Deref for Attention<'a> {
    type Target = AttentionInputs<'a, f32>;

    fn deref(&self) -> &AttentionInputs<'a, f32> {
        &self.inputs
    }
}

/// The attention output, `(kv_heads, group * seq, head_dim)`.
pub(crate) fn attend(a: &Attention) -> Vec<f32> {
    let rows = a.group * a.seq;
    let span = a.position + a.seq - a.start;
    let hd = a.head_dim;
    let mut out = vec![0f32; a.kv_heads * rows * hd];
    if rows == 0 || span == 0 || hd == 0 {
        return out;
    }
    let block = row_block(
        rows,
        span,
        hd,
        a.kv_heads,
        candle_core::utils::get_num_threads(),
    );
    let blocks = rows / block;
    let items = a.kv_heads * blocks;
    let needs_mask = a.seq > 1 || a.window.is_some_and(|w| span > w);
    let sink = RowsOut::new(&mut out, hd);
    for_chunks(items, |range| {
        for item in range {
            let head = item / blocks;
            let first = (item % blocks) * block;
            // The last block takes the remainder, so it is at least `block` rows.
            let count = if item % blocks == blocks - 1 {
                rows - first
            } else {
                block
            };
            // SAFETY: items cover disjoint row ranges of `out`.
            let dst = unsafe { sink.rows(head * rows + first, count) };
            attend_block(a, head, first, count, span, needs_mask, dst);
        }
    });
    out
}

/// Rows `first..first + count` of KV head `head`, into `dst` (`count` rows of `head_dim`).
fn attend_block(
    a: &Attention,
    head: usize,
    first: usize,
    count: usize,
    span: usize,
    needs_mask: bool,
    dst: &mut [f32],
) {
    let hd = a.head_dim;
    let rows = a.group * a.seq;
    let queries = &a.queries[(head * rows + first) * hd..(head * rows + first + count) * hd];
    let cached = (head * a.capacity + a.start) * hd..(head * a.capacity + a.start + span) * hd;
    let keys = &a.keys[cached.clone()];
    let values = &a.values[cached];
    let mut scores = vec![0f32; count * span];
    // Keys `span x hd` row-major, read as their transpose.
    gemm_rows(count, span, hd, &mut scores, queries, keys, (hd, 1));
    for (r, row) in scores.chunks_exact_mut(span).enumerate() {
        if let Some(scale) = a.scale {
            // candle's affine op: `x * mul + add`, with `add` zero.
            for s in row.iter_mut() {
                *s = *s * scale + 0.0;
            }
        }
        if needs_mask {
            let seen = visible_keys(a.window, a.position + (first + r) % a.seq);
            for (j, s) in row.iter_mut().enumerate() {
                *s += if seen.contains(&(a.start + j)) {
                    0.0
                } else {
                    f32::NEG_INFINITY
                };
            }
        }
        softmax_in_place(row);
    }
    // Values `span x hd` row-major.
    gemm_rows(count, hd, span, dst, &scores, values, (1, hd));
}

/// `dst (m x n) = lhs (m x k) · rhs (k x n)` by gemm as candle's matmul calls it (zero
/// `alpha`, unit `beta`), on this thread; `dst` and `lhs` row-major, `rhs` with the given
/// (column, row) strides.
fn gemm_rows(
    m: usize,
    n: usize,
    k: usize,
    dst: &mut [f32],
    lhs: &[f32],
    rhs: &[f32],
    (rhs_cs, rhs_rs): (usize, usize),
) {
    assert!(m > 0 && n > 0 && k > 0 && dst.len() >= m * n && lhs.len() >= m * k);
    assert!(rhs.len() > (k - 1) * rhs_rs + (n - 1) * rhs_cs);
    // SAFETY: the asserts above: every slice holds all that its strides reach.
    unsafe {
        gemm::gemm(
            m,
            n,
            k,
            dst.as_mut_ptr(),
            1,
            n as isize,
            false,
            lhs.as_ptr(),
            1,
            k as isize,
            rhs.as_ptr(),
            rhs_cs as isize,
            rhs_rs as isize,
            0.0,
            1.0,
            false,
            false,
            false,
            gemm::Parallelism::None,
        );
    }
}

/// candle-nn's `softmax_last_dim` on one row, with the same reductions in the same order.
fn softmax_in_place(row: &mut [f32]) {
    let mut max = f32::NEG_INFINITY;
    // SAFETY: `row` is non-empty (span > 0) and the pointers cover `row.len()` items.
    unsafe { f32::vec_reduce_max(row.as_ptr(), &mut max, row.len()) };
    for s in row.iter_mut() {
        *s = (*s - max).exp();
    }
    let mut sum = 0f32;
    // SAFETY: as above.
    unsafe { f32::vec_reduce_sum(row.as_ptr(), &mut sum, row.len()) };
    for s in row.iter_mut() {
        *s /= sum;
    }
}

/// What decides how gemm 0.19 computes each output of an `m x n x k` product with our strides,
/// for the two products of one block (`rows x span x head_dim`, then `rows x head_dim x span`).
/// Within one class every output is the same sequence of operations, whatever `rows` is: the
/// horizontal kernel for `m·n <= 256`, matrix-vector code for one row, and the depth blocking,
/// `min(k, 512)` for `m, n <= 64` and a cache-derived size otherwise.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
struct DispatchClass {
    horizontal: [bool; 2],
    single_row: bool,
    small: [bool; 2],
}

impl DispatchClass {
    fn of(rows: usize, span: usize, head_dim: usize) -> DispatchClass {
        DispatchClass {
            horizontal: [rows * span <= 256, rows * head_dim <= 256],
            single_row: rows <= 1,
            small: [rows <= 64 && span <= 64, rows <= 64 && head_dim <= 64],
        }
    }
}

/// Floats of scores one work item may hold; bounds the memory of long prefills.
const SCORES_PER_ITEM: usize = 1 << 20;

/// Rows per work item (the last takes the remainder): enough items to keep every thread busy
/// and each item's scores within [`SCORES_PER_ITEM`], but only where every block computes its
/// outputs as the whole product would.
fn row_block(rows: usize, span: usize, head_dim: usize, kv_heads: usize, threads: usize) -> usize {
    let for_threads = threads.div_ceil(kv_heads.max(1));
    let for_memory = (rows * span).div_ceil(SCORES_PER_ITEM);
    let wanted = for_threads.max(for_memory).clamp(1, rows);
    let whole = DispatchClass::of(rows, span, head_dim);
    (1..=wanted)
        .rev()
        .map(|blocks| rows / blocks)
        .find(|&block| {
            let last = rows - (rows / block - 1) * block;
            DispatchClass::of(block, span, head_dim) == whole
                && DispatchClass::of(last, span, head_dim) == whole
        })
        .unwrap_or(rows)
}

#[cfg(test)]
mod tests {
    use super::super::random;
    use super::*;
    use candle_core::{Device, Tensor};

    /// candle's ops as the model code used them: batched matmul, affine scale, additive mask,
    /// `softmax_last_dim`, batched matmul.
    fn candle_attention(a: &Attention) -> Vec<f32> {
        let dev = Device::Cpu;
        let rows = a.group * a.seq;
        let span = a.position + a.seq - a.start;
        let hd = a.head_dim;
        let q = Tensor::from_slice(a.queries, (a.kv_heads, rows, hd), &dev).unwrap();
        let k = Tensor::from_slice(a.keys, (a.kv_heads, a.capacity, hd), &dev).unwrap();
        let v = Tensor::from_slice(a.values, (a.kv_heads, a.capacity, hd), &dev).unwrap();
        let keys = k.narrow(1, a.start, span).unwrap();
        let values = v.narrow(1, a.start, span).unwrap();
        let mut scores = q.matmul(&keys.t().unwrap()).unwrap();
        if let Some(scale) = a.scale {
            scores = (scores * scale as f64).unwrap();
        }
        if a.seq > 1 || a.window.is_some_and(|w| span > w) {
            let mut mask = Vec::new();
            for i in 0..a.seq {
                for j in 0..span {
                    let (query, key) = (a.position + i, a.start + j);
                    let hidden = key > query || a.window.is_some_and(|w| query - key >= w);
                    mask.push(if hidden { f32::NEG_INFINITY } else { 0.0 });
                }
            }
            let mask = Tensor::from_vec(mask, (a.seq, span), &dev).unwrap();
            scores = scores
                .reshape((a.kv_heads * a.group, a.seq, span))
                .unwrap()
                .broadcast_add(&mask)
                .unwrap()
                .reshape((a.kv_heads, rows, span))
                .unwrap();
        }
        let probs = candle_nn::ops::softmax_last_dim(&scores).unwrap();
        let out = probs.matmul(&values.contiguous().unwrap()).unwrap();
        out.flatten_all().unwrap().to_vec1().unwrap()
    }

    #[test]
    fn equals_candles_ops_bit_for_bit() {
        // (kv_heads, group, seq, head_dim, position, window): decode and prefill, one and
        // several KV heads, spans on both sides of gemm's 256-output and 64 boundaries, head
        // sizes of SmolLM2 (64), Qwen (128) and Gemma (256), a sliding window.
        let cases: [(usize, usize, usize, usize, usize, Option<usize>); 15] = [
            (2, 6, 1, 128, 0, None),
            (2, 6, 1, 128, 40, None),
            (2, 6, 1, 128, 700, None),
            (3, 3, 1, 64, 85, None),
            (3, 3, 1, 64, 1500, None),
            (1, 4, 1, 256, 63, None),
            (1, 4, 1, 256, 100, None),
            (1, 4, 1, 256, 129, None),
            (1, 4, 1, 256, 600, Some(512)),
            (4, 1, 1, 32, 300, None),
            (2, 6, 7, 128, 30, None),
            (3, 3, 40, 64, 0, None),
            (3, 3, 70, 64, 200, None),
            (1, 4, 33, 256, 540, Some(512)),
            (2, 6, 256, 128, 1024, None),
        ];
        for (i, &(kv_heads, group, seq, head_dim, position, window)) in cases.iter().enumerate() {
            let capacity = position + seq + 5;
            let start = window.map_or(0, |w| (position + 1).saturating_sub(w));
            let seed = i as u64 * 3;
            let queries = random(kv_heads * group * seq * head_dim, seed);
            let keys = random(kv_heads * capacity * head_dim, seed + 1);
            let values = random(kv_heads * capacity * head_dim, seed + 2);
            for scale in [Some(0.125f32), None] {
                let a = Attention {
                    inputs: AttentionInputs {
                        queries: &queries,
                        keys: &keys,
                        values: &values,
                        kv_heads,
                        group,
                        seq,
                        head_dim,
                        capacity,
                        position,
                        window,
                    },
                    start,
                    scale,
                };
                let ours = attend(&a);
                let theirs = candle_attention(&a);
                assert_eq!(ours.len(), theirs.len());
                let differing = ours
                    .iter()
                    .zip(&theirs)
                    .filter(|(x, y)| x.to_bits() != y.to_bits())
                    .count();
                assert_eq!(
                    differing,
                    0,
                    "case {i} {:?} scale {scale:?}: {differing} of {} outputs differ",
                    cases[i],
                    ours.len()
                );
            }
        }
    }

    #[test]
    fn row_blocks_keep_gemms_dispatch_and_use_the_threads() {
        // Qwen decode: one item per KV head already fills two threads.
        assert_eq!(row_block(6, 4096, 128, 2, 2), 6);
        // Gemma decode: one KV head, split in two once the blocks stay off the horizontal kernel.
        assert_eq!(row_block(4, 4096, 256, 1, 2), 2);
        assert_eq!(row_block(4, 100, 256, 1, 2), 4);
        // SmolLM2 decode: three rows cannot split without one becoming a matrix-vector product.
        assert_eq!(row_block(3, 4096, 64, 3, 2), 3);
        // A long prefill is cut to bound memory, but never below gemm's 64-row boundary.
        let block = row_block(3 * 256, 4096, 64, 3, 2);
        assert!(block > 64 && block * 4096 <= 2 * SCORES_PER_ITEM, "{block}");
        for (rows, span, hd, kv) in [
            (768, 4096, 64, 3),
            (1536, 3000, 128, 2),
            (1024, 900, 256, 1),
        ] {
            let block = row_block(rows, span, hd, kv, 2);
            let last = rows - (rows / block - 1) * block;
            assert_eq!(
                DispatchClass::of(block, span, hd),
                DispatchClass::of(rows, span, hd)
            );
            assert_eq!(
                DispatchClass::of(last, span, hd),
                DispatchClass::of(rows, span, hd)
            );
        }
    }
}
