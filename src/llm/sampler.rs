//! Choosing the next token from logits: greedy at temperature 0, otherwise temperature
//! scaling, nucleus (top-p) filtering and a draw from a seeded generator, so the same seed,
//! model and prompt give the same text. Tokens in a [`TokenMask`] are never chosen.

/// Sampling settings.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct SamplingParams {
    /// 0 (or below) means greedy: always the most likely token.
    pub temperature: f64,
    /// Keep the smallest set of most likely tokens whose probability reaches this (1 = all).
    pub top_p: f64,
    pub seed: u64,
}

impl Default for SamplingParams {
    fn default() -> SamplingParams {
        SamplingParams {
            temperature: 0.0,
            top_p: 1.0,
            seed: 0,
        }
    }
}

/// A set of token ids (a bitset over the vocabulary).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TokenMask {
    bits: Vec<u64>,
}

impl TokenMask {
    /// The empty set.
    pub fn new() -> TokenMask {
        TokenMask::default()
    }

    pub fn from_ids(ids: impl IntoIterator<Item = u32>) -> TokenMask {
        let mut mask = TokenMask::new();
        for id in ids {
            mask.insert(id);
        }
        mask
    }

    pub fn insert(&mut self, id: u32) {
        let word = id as usize / 64;
        if self.bits.len() <= word {
            self.bits.resize(word + 1, 0);
        }
        self.bits[word] |= 1 << (id % 64);
    }

    pub fn remove(&mut self, id: u32) {
        if let Some(w) = self.bits.get_mut(id as usize / 64) {
            *w &= !(1 << (id % 64));
        }
    }

    pub fn contains(&self, id: u32) -> bool {
        self.bits
            .get(id as usize / 64)
            .is_some_and(|w| w & (1 << (id % 64)) != 0)
    }

    pub fn is_empty(&self) -> bool {
        self.bits.iter().all(|&w| w == 0)
    }
}

/// A sampler with its own random state.
#[derive(Debug, Clone)]
pub struct Sampler {
    params: SamplingParams,
    rng: SplitMix64,
}

impl Sampler {
    pub fn new(params: &SamplingParams) -> Sampler {
        Sampler {
            params: params.clone(),
            rng: SplitMix64(params.seed),
        }
    }

    pub fn params(&self) -> &SamplingParams {
        &self.params
    }

    /// Picks a token. Banned tokens and non-finite logits are never chosen; if nothing else
    /// is left (all banned, or empty logits) the result is the first token not banned, else 0,
    /// and a warning is logged: the caller's mask left no choice.
    pub fn sample(&mut self, logits: &[f32], banned: &TokenMask) -> u32 {
        let allowed = |i: usize| !banned.contains(i as u32) && logits[i].is_finite();
        let best = (0..logits.len())
            .filter(|&i| allowed(i))
            .max_by(|&a, &b| logits[a].total_cmp(&logits[b]).then(b.cmp(&a)));
        let Some(best) = best else {
            tracing::warn!(
                vocab = logits.len(),
                "no token is allowed by the mask; falling back"
            );
            return (0..logits.len() as u32)
                .find(|&i| !banned.contains(i))
                .unwrap_or(0);
        };
        if self.params.temperature <= 0.0 {
            return best as u32;
        }
        let inv_t = 1.0 / self.params.temperature;
        let max = f64::from(logits[best]);
        let weight = |i: usize| ((f64::from(logits[i]) - max) * inv_t).exp();
        let top_p = self.params.top_p.clamp(0.0, 1.0);
        let cands = if top_p < 1.0 {
            nucleus(logits.len(), &allowed, &weight, top_p)
        } else {
            let mut all: Vec<(u32, f64)> = (0..logits.len())
                .filter(|&i| allowed(i))
                .map(|i| (i as u32, weight(i)))
                .filter(|&(_, p)| p > 0.0)
                .collect();
            all.sort_by(candidate_order);
            all
        };
        let kept: f64 = cands.iter().map(|c| c.1).sum();
        let mut r = self.rng.next_f64() * kept;
        for &(id, p) in &cands {
            if r < p {
                return id;
            }
            r -= p;
        }
        // Rounding left r just past the end: the last candidate.
        cands.last().map_or(best as u32, |c| c.0)
    }
}

/// Most likely first; equal weights by id, so the order (and a seeded draw) never depends
/// on how the candidates were gathered.
fn candidate_order(a: &(u32, f64), b: &(u32, f64)) -> std::cmp::Ordering {
    b.1.total_cmp(&a.1).then(a.0.cmp(&b.0))
}

/// The nucleus: the most likely allowed tokens, in [`candidate_order`], whose weights first
/// reach `top_p` of the total. Sorting a whole vocabulary (150k tokens) per sampled token
/// costs more than the rest of sampling, so only tokens within a factor of 1e-6 of the most
/// likely one are sorted. Every token left out weighs less than every token kept, so when
/// the kept ones reach the threshold the result is exactly the full sort's; otherwise the
/// whole vocabulary is sorted.
fn nucleus(
    vocab: usize,
    allowed: &dyn Fn(usize) -> bool,
    weight: &dyn Fn(usize) -> f64,
    top_p: f64,
) -> Vec<(u32, f64)> {
    const FLOOR: f64 = 1e-6;
    let mut total = 0.0;
    let mut likely = Vec::new();
    let mut rest = Vec::new();
    for i in (0..vocab).filter(|&i| allowed(i)) {
        let p = weight(i);
        if p > 0.0 {
            total += p;
            if p >= FLOOR {
                likely.push((i as u32, p));
            } else {
                rest.push((i as u32, p));
            }
        }
    }
    likely.sort_by(candidate_order);
    if let Some(keep) = prefix_reaching(&likely, top_p * total) {
        likely.truncate(keep);
        return likely;
    }
    likely.append(&mut rest);
    likely.sort_by(candidate_order);
    let keep = prefix_reaching(&likely, top_p * total).unwrap_or(likely.len());
    likely.truncate(keep.max(1));
    likely
}

/// The length of the shortest prefix whose weights sum to at least `target`.
fn prefix_reaching(sorted: &[(u32, f64)], target: f64) -> Option<usize> {
    let mut acc = 0.0;
    for (n, c) in sorted.iter().enumerate() {
        acc += c.1;
        if acc >= target {
            return Some(n + 1);
        }
    }
    None
}

/// A small, fast, seedable generator (SplitMix64): sampling needs reproducibility, not
/// cryptographic strength.
#[derive(Debug, Clone)]
struct SplitMix64(u64);

impl SplitMix64 {
    fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in [0, 1).
    fn next_f64(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn params(temperature: f64, top_p: f64, seed: u64) -> SamplingParams {
        SamplingParams {
            temperature,
            top_p,
            seed,
        }
    }

    #[test]
    fn greedy_takes_the_maximum_and_respects_bans() {
        let logits = [0.1, 3.0, 2.0, f32::NAN, 3.0];
        let mut s = Sampler::new(&params(0.0, 1.0, 0));
        // Ties go to the lowest id; NaN is never chosen.
        assert_eq!(s.sample(&logits, &TokenMask::new()), 1);
        assert_eq!(s.sample(&logits, &TokenMask::from_ids([1])), 4);
        assert_eq!(s.sample(&logits, &TokenMask::from_ids([1, 4])), 2);
        assert_eq!(s.sample(&[f32::NEG_INFINITY, 1.0], &TokenMask::new()), 1);
    }

    #[test]
    fn degenerate_inputs_do_not_panic() {
        let mut s = Sampler::new(&params(0.8, 0.9, 1));
        assert_eq!(s.sample(&[], &TokenMask::new()), 0);
        assert_eq!(s.sample(&[1.0, 2.0], &TokenMask::from_ids([0, 1])), 0);
        assert_eq!(s.sample(&[f32::NAN, 1.0], &TokenMask::from_ids([1])), 0);
    }

    #[test]
    fn seeded_sampling_is_reproducible_and_follows_probabilities() {
        let logits: Vec<f32> = vec![2.0, 1.0, 0.0, -1.0];
        let draw = |seed| {
            let mut s = Sampler::new(&params(1.0, 1.0, seed));
            (0..2000)
                .map(|_| s.sample(&logits, &TokenMask::new()))
                .collect::<Vec<_>>()
        };
        let a = draw(7);
        assert_eq!(a, draw(7));
        assert_ne!(a, draw(8));
        let mut counts = [0usize; 4];
        for &t in &a {
            counts[t as usize] += 1;
        }
        // softmax(2,1,0,-1) = 0.644, 0.237, 0.087, 0.032
        assert!((1150..1420).contains(&counts[0]), "{counts:?}");
        assert!((380..570).contains(&counts[1]), "{counts:?}");
        assert!(counts[3] > 20, "{counts:?}");
    }

    /// The nucleus from the likely tokens equals the nucleus of a full sort, both when the
    /// likely tokens reach the threshold and when the long tail must be sorted too.
    #[test]
    fn nucleus_equals_the_full_sort() {
        let naive = |w: &[f64], top_p: f64| -> Vec<u32> {
            let mut all: Vec<(u32, f64)> =
                w.iter().enumerate().map(|(i, &p)| (i as u32, p)).collect();
            all.sort_by(candidate_order);
            let total: f64 = w.iter().sum();
            let keep = prefix_reaching(&all, top_p * total).unwrap_or(all.len());
            all[..keep.max(1)].iter().map(|c| c.0).collect()
        };
        let mut s = 7u64;
        let peaked: Vec<f64> = (0..5000)
            .map(|_| {
                s = s
                    .wrapping_mul(6364136223846793005)
                    .wrapping_add(1442695040888963407);
                (-((s >> 40) as f64 / (1u64 << 24) as f64) * 30.0).exp()
            })
            .collect();
        // One likely token and a tail of a million tokens each below the floor, holding most
        // of the mass.
        let mut flat = vec![9e-7; 1_000_000];
        flat[123] = 1.0;
        for w in [&peaked, &flat] {
            for top_p in [0.1, 0.5, 0.9, 0.99] {
                let got: Vec<u32> = nucleus(w.len(), &|_| true, &|i| w[i], top_p)
                    .iter()
                    .map(|c| c.0)
                    .collect();
                assert_eq!(got, naive(w, top_p), "top_p {top_p}");
            }
        }
    }

    #[test]
    fn top_p_cuts_the_tail() {
        let logits = [5.0, 4.0, -10.0, -10.0];
        let mut s = Sampler::new(&params(1.0, 0.5, 3));
        for _ in 0..500 {
            assert_eq!(s.sample(&logits, &TokenMask::new()), 0);
        }
        let mut s = Sampler::new(&params(1.0, 0.99, 3));
        let seen: std::collections::HashSet<u32> = (0..500)
            .map(|_| s.sample(&logits, &TokenMask::new()))
            .collect();
        assert_eq!(seen, [0, 1].into_iter().collect());
    }

    #[test]
    fn mask_operations() {
        let mut m = TokenMask::from_ids([3, 64, 151_645]);
        assert!(m.contains(3) && m.contains(64) && m.contains(151_645));
        assert!(!m.contains(4) && !m.contains(1_000_000));
        m.remove(64);
        assert!(!m.contains(64));
        assert!(!m.is_empty());
        assert!(TokenMask::new().is_empty());
    }
}
