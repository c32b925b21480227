//! Language fidelity at decoding time: which characters a digest language may contain, and a
//! token mask that keeps every other character out of the generated text.
//!
//! A [`ScriptPolicy`] says which characters belong in text of one language. Vietnamese and
//! English digests use the Latin script (with Vietnamese letters and combining marks, since
//! English text names Vietnamese authors and Vietnamese text keeps English terms), digits,
//! punctuation, common symbols and Greek letters (they are mathematical symbols in papers);
//! CJK, Cyrillic, Arabic, Hangul, Thai and every other script are foreign.
//!
//! A [`LanguageMask`] is built once per tokenizer and policy. Byte-level BPE vocabularies hold
//! tokens that are only part of a UTF-8 character (Qwen2 has thousands: `E4 B8` is the start of
//! many CJK characters, `E1 BB` the start of `ệ`, `ở`, `ữ`), so a mask over whole tokens alone
//! cannot be exact. The mask therefore tracks the *pending* bytes, the unfinished character at
//! the end of the text so far:
//!
//! - at a character boundary, a token is allowed when every character it completes is allowed
//!   and its unfinished tail (if any) can still become an allowed character for which the
//!   vocabulary has a continuation;
//! - after pending bytes, only tokens that continue that character correctly are allowed, and
//!   the same rule applies to what they complete and leave pending.
//!
//! So `E4` (the lead byte of most CJK ideographs) is banned at a boundary, `E1` is allowed
//! (Vietnamese letters start with it), and after `E1` only continuations that lead to an
//! allowed character are, whatever the vocabulary's tokenization. Control tokens that are not
//! end-of-turn tokens are banned too: they never belong in prose.

use std::collections::{BTreeMap, BTreeSet};

use crate::llm::{GgufTokenizer, TokenMask, TokenType};
use crate::paper::Lang;

/// Which characters text of one language may contain.
#[derive(Clone, Copy)]
pub struct ScriptPolicy {
    name: &'static str,
    allowed: fn(char) -> bool,
}

impl std::fmt::Debug for ScriptPolicy {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ScriptPolicy")
            .field("name", &self.name)
            .finish()
    }
}

impl ScriptPolicy {
    /// The policy of a digest language.
    pub fn for_lang(lang: Lang) -> ScriptPolicy {
        match lang {
            Lang::Vi | Lang::En => ScriptPolicy {
                name: "latin",
                allowed: latin_text,
            },
        }
    }

    /// A policy from a predicate (for tests and other languages).
    pub fn new(name: &'static str, allowed: fn(char) -> bool) -> ScriptPolicy {
        ScriptPolicy { name, allowed }
    }

    pub fn name(&self) -> &'static str {
        self.name
    }

    pub fn allows(&self, c: char) -> bool {
        (self.allowed)(c)
    }

    /// The characters of `text` this policy does not allow, in order.
    pub fn foreign_chars(&self, text: &str) -> Vec<char> {
        text.chars().filter(|&c| !self.allows(c)).collect()
    }

    /// How many characters of `text` this policy does not allow.
    pub fn count_foreign(&self, text: &str) -> usize {
        text.chars().filter(|&c| !self.allows(c)).count()
    }
}

/// Latin-script text: what a Vietnamese or English digest may contain.
pub fn latin_text(c: char) -> bool {
    let u = c as u32;
    matches!(
        u,
        0x09 | 0x0A | 0x0D
            | 0x20..=0x7E          // ASCII
            | 0xA0..=0xFF          // Latin-1 supplement: é, ×, °, ±, µ, «»
            | 0x100..=0x24F        // Latin Extended-A and -B: đ, ơ, ư
            | 0x2B0..=0x2FF        // spacing modifier letters: ˆ ˜
            | 0x300..=0x36F        // combining diacritical marks (decomposed Vietnamese)
            | 0x370..=0x3FF        // Greek: α, β, λ as mathematical symbols
            | 0x1E00..=0x1EFF      // Latin Extended Additional: ạ, ế, ệ, ở, ữ
            | 0x2010..=0x2027      // dashes, quotes, bullets, ellipsis
            | 0x2030..=0x205E      // per mille, primes, ‹›, ⁄
            | 0x2070..=0x209F      // superscripts and subscripts
            | 0x20A0..=0x20CF      // currency
            | 0x2100..=0x214F      // letterlike symbols: ™, ℓ, ℝ
            | 0x2150..=0x218F      // number forms: ½, Ⅳ
            | 0x2190..=0x21FF      // arrows
            | 0x2200..=0x22FF      // mathematical operators: ≤, ≥, ≈, ∑
            | 0x2300..=0x23FF      // miscellaneous technical: ⌈⌉
            | 0x25A0..=0x25FF      // geometric shapes: ■, ●
            | 0x2713 | 0x2717      // ✓ ✗
            | 0x27E8 | 0x27E9      // ⟨ ⟩
    )
}

/// The unfinished UTF-8 character at the end of `bytes`, if any: the bytes after the last lead
/// byte when fewer than it announces follow. Empty at a character boundary (or after bytes
/// that are not UTF-8 at all, which no continuation can repair).
pub fn pending_tail(bytes: &[u8]) -> &[u8] {
    let start = bytes.len().saturating_sub(3);
    for i in (start..bytes.len()).rev() {
        let b = bytes[i];
        if is_continuation(b) {
            continue;
        }
        let need = sequence_len(b).unwrap_or(1);
        let have = bytes.len() - i;
        return if have < need && prefix_is_well_formed(&bytes[i..]) {
            &bytes[i..]
        } else {
            &[]
        };
    }
    &[]
}

fn is_continuation(b: u8) -> bool {
    (0x80..=0xBF).contains(&b)
}

/// The length of the sequence a lead byte starts; `None` for bytes that cannot start one.
fn sequence_len(b: u8) -> Option<usize> {
    match b {
        0x00..=0x7F => Some(1),
        0xC2..=0xDF => Some(2),
        0xE0..=0xEF => Some(3),
        0xF0..=0xF4 => Some(4),
        _ => None,
    }
}

/// Whether `bytes` (a lead byte and fewer continuation bytes than it needs) can start a valid
/// UTF-8 sequence: the second byte's range depends on the lead (no overlongs, no surrogates,
/// nothing past U+10FFFF).
fn prefix_is_well_formed(bytes: &[u8]) -> bool {
    let Some((&lead, rest)) = bytes.split_first() else {
        return false;
    };
    let Some(need) = sequence_len(lead) else {
        return false;
    };
    if rest.len() >= need || !rest.iter().all(|&b| is_continuation(b)) {
        return false;
    }
    match (lead, rest.first()) {
        (_, None) => true,
        (0xE0, Some(&b)) => b >= 0xA0,
        (0xED, Some(&b)) => b <= 0x9F,
        (0xF0, Some(&b)) => b >= 0x90,
        (0xF4, Some(&b)) => b <= 0x8F,
        _ => true,
    }
}

/// What a token does after some pending bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Step {
    /// Breaks UTF-8 or completes a character the policy does not allow.
    Banned,
    /// Fine; leaves these bytes of an unfinished character pending.
    Pending(Vec<u8>),
}

/// Appends `bytes` to `pending` and checks every character completed on the way.
fn step(pending: &[u8], bytes: &[u8], policy: &ScriptPolicy) -> Step {
    let mut all = Vec::with_capacity(pending.len() + bytes.len());
    all.extend_from_slice(pending);
    all.extend_from_slice(bytes);
    let mut at = 0;
    while at < all.len() {
        let Some(need) = sequence_len(all[at]) else {
            return Step::Banned;
        };
        if at + need > all.len() {
            let tail = &all[at..];
            return if prefix_is_well_formed(tail) {
                Step::Pending(tail.to_vec())
            } else {
                Step::Banned
            };
        }
        match std::str::from_utf8(&all[at..at + need])
            .ok()
            .and_then(|s| s.chars().next())
        {
            Some(c) if policy.allows(c) => at += need,
            _ => return Step::Banned,
        }
    }
    Step::Pending(Vec::new())
}

/// One vocabulary entry as the mask builder sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum VocabToken<'a> {
    /// Ends a generation (EOS, end of turn): never banned here, so generation can stop.
    EndOfTurn,
    /// A control token that is not an end of turn: always banned.
    Control,
    /// Ordinary text, as the bytes it decodes to.
    Text(&'a [u8]),
}

/// Tokens banned at each decoding state, for one vocabulary and one policy.
#[derive(Debug, Clone)]
pub struct LanguageMask {
    policy_name: &'static str,
    /// Banned at a character boundary.
    boundary: TokenMask,
    /// Banned after each pending prefix that an allowed character can follow.
    pending: BTreeMap<Vec<u8>, TokenMask>,
    /// Banned after a pending prefix the mask does not know (cannot happen when generation
    /// starts at a boundary and follows the masks): every text token.
    dead_end: TokenMask,
    vocab_size: usize,
}

impl LanguageMask {
    /// Builds the masks for `tokenizer` (one pass over the vocabulary per pending state).
    pub fn for_tokenizer(tokenizer: &GgufTokenizer, policy: &ScriptPolicy) -> LanguageMask {
        let size = tokenizer.vocab_size();
        LanguageMask::build(size, policy, |id| {
            if tokenizer.is_eog(id) {
                return VocabToken::EndOfTurn;
            }
            if tokenizer.token_type(id) == Some(TokenType::Control) {
                return VocabToken::Control;
            }
            match tokenizer.token_bytes(id) {
                Ok(bytes) => VocabToken::Text(bytes),
                // Unreachable for ids below the vocabulary size; banning is the safe answer.
                Err(_) => VocabToken::Control,
            }
        })
    }

    /// Builds the masks for a vocabulary of `vocab_size` tokens described by `token`.
    pub fn build<'v>(
        vocab_size: usize,
        policy: &ScriptPolicy,
        token: impl Fn(u32) -> VocabToken<'v>,
    ) -> LanguageMask {
        let ids = 0..vocab_size as u32;
        let tokens: Vec<VocabToken<'v>> = ids.clone().map(&token).collect();
        // Every proper prefix of an allowed multi-byte character is a state generation may
        // be in; states without any continuation in this vocabulary are pruned below.
        let mut states: BTreeSet<Vec<u8>> = BTreeSet::new();
        let mut buf = [0u8; 4];
        for u in 0x80..=0x10FFFFu32 {
            let Some(c) = char::from_u32(u) else {
                continue;
            };
            if !policy.allows(c) {
                continue;
            }
            let encoded = c.encode_utf8(&mut buf).as_bytes();
            for len in 1..encoded.len() {
                states.insert(encoded[..len].to_vec());
            }
        }
        // Tokens that can follow pending bytes start with a continuation byte.
        let continuations: Vec<u32> = ids
            .clone()
            .filter(|&id| {
                matches!(tokens[id as usize], VocabToken::Text(b) if b.first().is_some_and(|&f| is_continuation(f)))
            })
            .collect();
        let allowed_after = |pending: &[u8], bytes: &[u8], states: &BTreeSet<Vec<u8>>| match step(
            pending, bytes, policy,
        ) {
            Step::Banned => false,
            Step::Pending(tail) => tail.is_empty() || states.contains(&tail),
        };
        // Prune dead states until none is left: a state is dead when no token continues it
        // into an allowed character or a live state. Prefixes are at most 3 bytes, so this
        // settles in a few rounds.
        let mut allowed_in: BTreeMap<Vec<u8>, Vec<u32>> = BTreeMap::new();
        loop {
            allowed_in.clear();
            for state in &states {
                let allowed: Vec<u32> = continuations
                    .iter()
                    .copied()
                    .filter(|&id| match tokens[id as usize] {
                        VocabToken::Text(bytes) => allowed_after(state, bytes, &states),
                        _ => false,
                    })
                    .collect();
                allowed_in.insert(state.clone(), allowed);
            }
            let dead: Vec<Vec<u8>> = allowed_in
                .iter()
                .filter(|(_, allowed)| allowed.is_empty())
                .map(|(state, _)| state.clone())
                .collect();
            if dead.is_empty() {
                break;
            }
            for state in dead {
                states.remove(&state);
            }
        }

        let mut boundary = TokenMask::new();
        let mut dead_end = TokenMask::new();
        // Inside a character generation may not end: its last character would be broken.
        let mut inside = TokenMask::new();
        for id in ids.clone() {
            match tokens[id as usize] {
                VocabToken::EndOfTurn => inside.insert(id),
                VocabToken::Control => {
                    boundary.insert(id);
                    dead_end.insert(id);
                    inside.insert(id);
                }
                VocabToken::Text(bytes) => {
                    dead_end.insert(id);
                    inside.insert(id);
                    if !allowed_after(&[], bytes, &states) {
                        boundary.insert(id);
                    }
                }
            }
        }
        let pending = allowed_in
            .into_iter()
            .map(|(state, allowed)| {
                let mut mask = inside.clone();
                for id in allowed {
                    mask.remove(id);
                }
                (state, mask)
            })
            .collect();
        LanguageMask {
            policy_name: policy.name(),
            boundary,
            pending,
            dead_end,
            vocab_size,
        }
    }

    /// The tokens banned when the text so far ends with the unfinished character `pending`
    /// (empty at a character boundary).
    pub fn banned(&self, pending: &[u8]) -> &TokenMask {
        if pending.is_empty() {
            &self.boundary
        } else {
            self.pending.get(pending).unwrap_or(&self.dead_end)
        }
    }

    /// The tokens banned at a character boundary.
    pub fn boundary(&self) -> &TokenMask {
        &self.boundary
    }

    /// How many pending states the mask tracks.
    pub fn states(&self) -> usize {
        self.pending.len()
    }

    /// How many tokens are banned at a character boundary.
    pub fn banned_at_boundary(&self) -> usize {
        (0..self.vocab_size as u32)
            .filter(|&id| self.boundary.contains(id))
            .count()
    }

    pub fn policy_name(&self) -> &'static str {
        self.policy_name
    }

    pub fn vocab_size(&self) -> usize {
        self.vocab_size
    }
}

/// `a` with every token of `b` added.
pub fn union(a: &TokenMask, b: &TokenMask, vocab_size: usize) -> TokenMask {
    let mut out = a.clone();
    for id in 0..vocab_size as u32 {
        if b.contains(id) {
            out.insert(id);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn latin() -> ScriptPolicy {
        ScriptPolicy::for_lang(Lang::Vi)
    }

    #[test]
    fn latin_policy_by_character() {
        let allowed = "Bài báo đề xuất phương pháp mới, cải thiện 6.3% (±0.2) × 2 — “tốt hơn” α≤β ½ café Nguyễn Ưu ữ ệ \u{301}";
        assert_eq!(latin().foreign_chars(allowed), Vec::<char>::new());
        let cases = [
            ("模型", 2),       // CJK
            ("Привет", 6),     // Cyrillic
            ("مرحبا", 5),      // Arabic
            ("한국어", 3),     // Hangul
            ("ภาษาไทย", 7),    // Thai
            ("カタカナ", 4),   // Katakana
            ("a，b。", 2),     // full-width CJK punctuation
            ("x\u{200B}y", 1), // zero-width space
            ("🤗", 1),         // emoji
            ("a\u{FFFD}", 1),  // a broken character
        ];
        for (text, foreign) in cases {
            assert_eq!(latin().count_foreign(text), foreign, "{text:?}");
        }
    }

    #[test]
    fn pending_tail_finds_the_unfinished_character() {
        let cases: [(&[u8], &[u8]); 9] = [
            (b"abc", b""),
            (&[b'a', 0xE1], &[0xE1]),
            (&[b'a', 0xE1, 0xBB], &[0xE1, 0xBB]),
            (&[b'a', 0xE1, 0xBB, 0x87], b""), // ệ complete
            (&[0xC3], &[0xC3]),
            (&[0xF0, 0x9F, 0xA4], &[0xF0, 0x9F, 0xA4]),
            (&[0xE0, 0x80], b""), // overlong start: not repairable
            (&[0x80, 0x80], b""), // stray continuations
            (b"", b""),
        ];
        for (bytes, tail) in cases {
            assert_eq!(pending_tail(bytes), tail, "{bytes:02X?}");
        }
    }

    /// A byte-level vocabulary: every single byte, plus whole and partial characters.
    fn vocab() -> Vec<VocabToken<'static>> {
        static BYTES: [[u8; 1]; 256] = {
            let mut all = [[0u8; 1]; 256];
            let mut i = 0;
            while i < 256 {
                all[i][0] = i as u8;
                i += 1;
            }
            all
        };
        let mut v: Vec<VocabToken<'static>> = vec![VocabToken::EndOfTurn, VocabToken::Control];
        v.extend(BYTES.iter().map(|b| VocabToken::Text(b.as_slice())));
        for extra in EXTRA {
            v.push(VocabToken::Text(extra));
        }
        v
    }

    const FIRST_EXTRA: u32 = 258;
    const EXTRA: [&[u8]; 12] = [
        "the".as_bytes(),         // 258
        "的".as_bytes(),          // 259 CJK
        " ệ".as_bytes(),          // 260
        &[0xE4, 0xB8],            // 261 start of many CJK characters
        &[0xE1, 0xBB],            // 262 start of ệ, ở, ữ
        &[0xBB, 0x87],            // 263 completes E1 -> ệ
        &[0x87, b' ', b'a'],      // 264 completes E1 BB -> ệ, then text
        &[0x87, 0xE4],            // 265 completes ệ, then starts CJK
        "ở nhà".as_bytes(),       // 266
        "Москва".as_bytes(),      // 267
        &[0xB8, 0x80],            // 268 completes E4 -> 一 (CJK): never allowed
        "α=0.5, ≤ 3×".as_bytes(), // 269
    ];

    fn mask() -> LanguageMask {
        let v = vocab();
        LanguageMask::build(v.len(), &latin(), |id| v[id as usize])
    }

    fn byte(b: u8) -> u32 {
        2 + u32::from(b)
    }

    #[test]
    fn boundary_mask_bans_foreign_whole_and_partial_tokens() {
        let m = mask();
        let banned = |id: u32| m.banned(&[]).contains(id);
        let extra = |i: u32| FIRST_EXTRA + i;
        // End of turn stays allowed; other control tokens never are.
        assert!(!banned(0));
        assert!(banned(1));
        // ASCII bytes and words.
        assert!(!banned(byte(b'a')) && !banned(byte(b'\n')) && !banned(extra(0)));
        // Lead bytes: E1 (Vietnamese letters), C3 (é), CC (combining marks), E2 (punctuation)
        // may start a character; E3..E9 (kana, CJK), D0/D1 (Cyrillic), D8 (Arabic), EA/EB/EC/ED
        // (Hangul), E0 (Thai, Devanagari), F0 (emoji, rare CJK) may not.
        for lead in [0xE1, 0xC3, 0xC4, 0xC6, 0xCC, 0xE2, 0xCE] {
            assert!(!banned(byte(lead)), "{lead:02X} should be allowed");
        }
        for lead in [
            0xE3, 0xE4, 0xE5, 0xE6, 0xE7, 0xE8, 0xE9, 0xD0, 0xD1, 0xD8, 0xEA, 0xEB, 0xEC, 0xED,
            0xE0, 0xF0, 0xEF,
        ] {
            assert!(banned(byte(lead)), "{lead:02X} should be banned");
        }
        // A continuation byte cannot start a character; invalid bytes never appear.
        for b in [0x80, 0xBB, 0xC0, 0xC1, 0xF5, 0xFF] {
            assert!(banned(byte(b)), "{b:02X}");
        }
        // Whole tokens.
        assert!(banned(extra(1)), "的");
        assert!(!banned(extra(2)), " ệ");
        assert!(banned(extra(3)), "E4 B8");
        assert!(!banned(extra(4)), "E1 BB");
        assert!(
            banned(extra(5)) && banned(extra(6)),
            "continuations at a boundary"
        );
        assert!(!banned(extra(8)), "ở nhà");
        assert!(banned(extra(9)), "Москва");
        assert!(!banned(extra(11)), "math");
    }

    #[test]
    fn pending_masks_allow_only_continuations_to_allowed_characters() {
        let m = mask();
        let extra = |i: u32| FIRST_EXTRA + i;
        // After E1: BB 87 (ệ) and the byte BB are fine; ASCII is not (it would break the
        // character); a lead byte is not.
        let after_e1 = m.banned(&[0xE1]);
        assert!(!after_e1.contains(extra(5)));
        assert!(!after_e1.contains(byte(0xBB)) && !after_e1.contains(byte(0xBA)));
        assert!(after_e1.contains(byte(b'a')) && after_e1.contains(byte(0xE1)));
        // E1 80..B7 are Georgian, Cherokee, Khmer, Mongolian...: banned; B8..BB are Latin
        // Extended Additional: allowed.
        assert!(after_e1.contains(byte(0x80)) && after_e1.contains(byte(0xB7)));
        assert!(!after_e1.contains(byte(0xB8)));
        assert!(after_e1.contains(byte(0xBC)), "E1 BC.. is Greek Extended");
        // After E1 BB: every continuation byte is a Vietnamese letter (U+1EC0..U+1EFF).
        let after_e1_bb = m.banned(&[0xE1, 0xBB]);
        for b in 0x80..=0xBF {
            assert!(!after_e1_bb.contains(byte(b)), "{b:02X}");
        }
        assert!(!after_e1_bb.contains(extra(6)), "87 + ' a'");
        assert!(after_e1_bb.contains(extra(7)), "87 + E4 leaves CJK pending");
        assert!(after_e1_bb.contains(0), "no end of turn inside a character");
        // After a lead the mask does not know (generation never gets there): nothing but
        // end of turn.
        let unknown = m.banned(&[0xE4]);
        assert!(unknown.contains(extra(10)) && unknown.contains(byte(0xB8)));
        assert!(!unknown.contains(0));
        assert!(m.states() > 10);
    }

    #[test]
    fn dead_states_are_pruned() {
        // No continuation bytes at all: no lead byte may start a character.
        let v: Vec<VocabToken<'static>> = vec![
            VocabToken::Text(b"a"),
            VocabToken::Text(&[0xC3]),
            VocabToken::Text("é".as_bytes()),
        ];
        let m = LanguageMask::build(v.len(), &latin(), |id| v[id as usize]);
        assert!(!m.banned(&[]).contains(0));
        assert!(m.banned(&[]).contains(1), "C3 has no continuation here");
        assert!(!m.banned(&[]).contains(2));
        assert_eq!(m.states(), 0);
    }

    #[test]
    fn union_adds_every_token() {
        let a = TokenMask::from_ids([1, 5]);
        let b = TokenMask::from_ids([5, 70]);
        let u = union(&a, &b, 100);
        assert!(u.contains(1) && u.contains(5) && u.contains(70) && !u.contains(2));
    }

    /// Walks `tokens` through the masks from a character boundary: the first token the
    /// masks ban, if any.
    fn first_banned(mask: &LanguageMask, tokenizer: &GgufTokenizer, tokens: &[u32]) -> Option<u32> {
        let mut pending: Vec<u8> = Vec::new();
        for &id in tokens {
            if mask.banned(&pending).contains(id) {
                return Some(id);
            }
            pending.extend_from_slice(tokenizer.token_bytes(id).unwrap());
            pending = pending_tail(&pending).to_vec();
        }
        None
    }

    /// The masks on Qwen2.5's real 151k-token vocabulary (when the model file is on this
    /// machine): Vietnamese and English pass, every foreign script is stopped, and a long
    /// random walk through allowed tokens only ever decodes to allowed text.
    #[test]
    fn qwen_vocabulary_masks() {
        use crate::llm::gguf::tests::{QWEN25, test_model};
        let Some(path) = test_model(QWEN25) else {
            return;
        };
        let gguf = crate::llm::GgufFile::open(&path).unwrap();
        let tokenizer = GgufTokenizer::from_gguf(&gguf).unwrap();
        let started = std::time::Instant::now();
        let policy = latin();
        let mask = LanguageMask::for_tokenizer(&tokenizer, &policy);
        eprintln!(
            "Qwen2.5 mask: {} of {} tokens banned at a boundary, {} pending states, {:.2} s",
            mask.banned_at_boundary(),
            mask.vocab_size(),
            mask.states(),
            started.elapsed().as_secs_f64()
        );
        for text in [
            "Bài báo đề xuất phương pháp GDPO, cải thiện độ chính xác tới 6.3% (±0.2).",
            "Nghiên cứu ứng dụng trên điện thoại thông minh và thiết bị di động — “tốt hơn”.",
            "The model reaches 91.2% accuracy with α = 0.5 and ≤ 3× latency.",
        ] {
            let tokens = tokenizer.encode(text).unwrap();
            assert_eq!(first_banned(&mask, &tokenizer, &tokens), None, "{text}");
        }
        for text in [
            "模型的性能",
            "Привет мир",
            "نموذج",
            "한국어 모델",
            "ภาษาไทย",
            "モデル",
            "，",
        ] {
            let tokens = tokenizer.encode(text).unwrap();
            assert!(
                first_banned(&mask, &tokenizer, &tokens).is_some(),
                "{text} passed"
            );
        }
        // A random walk: whatever allowed tokens a model picks, the text stays allowed.
        let mut rng = 0x2545_F491_4F6C_DD1Du64;
        let mut bytes: Vec<u8> = Vec::new();
        let mut pending: Vec<u8> = Vec::new();
        for _ in 0..3000 {
            let banned = mask.banned(&pending);
            let id = loop {
                rng ^= rng << 13;
                rng ^= rng >> 7;
                rng ^= rng << 17;
                let id = (rng % mask.vocab_size() as u64) as u32;
                // Prefer continuations inside a character, as a model must.
                if !banned.contains(id) && !tokenizer.is_eog(id) {
                    break id;
                }
            };
            let piece = tokenizer.token_bytes(id).unwrap();
            bytes.extend_from_slice(piece);
            pending.extend_from_slice(piece);
            pending = pending_tail(&pending).to_vec();
        }
        let end = bytes.len() - pending.len();
        let text = std::str::from_utf8(&bytes[..end]).expect("valid UTF-8");
        assert_eq!(policy.foreign_chars(text), Vec::<char>::new());
    }
}
