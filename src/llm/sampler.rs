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
        // Unnormalised probabilities, most likely first.
        let mut cands: Vec<(u32, f64)> = (0..logits.len())
            .filter(|&i| allowed(i))
            .map(|i| (i as u32, ((f64::from(logits[i]) - max) * inv_t).exp()))
            .filter(|&(_, p)| p > 0.0)
            .collect();
        cands.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
        let total: f64 = cands.iter().map(|c| c.1).sum();
        let top_p = self.params.top_p.clamp(0.0, 1.0);
        if top_p < 1.0 {
            let mut acc = 0.0;
            let mut keep = 0;
            for c in &cands {
                acc += c.1;
                keep += 1;
                if acc >= top_p * total {
                    break;
                }
            }
            cands.truncate(keep.max(1));
        }
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
