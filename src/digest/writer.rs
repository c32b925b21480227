//! Writes one paper's summary with a loaded model. The paper is prefilled once; every section
//! starts from a checkpoint of that shared prefix (rewound to, so the cache is neither copied
//! nor recomputed), and a candidate list item or tag that may be kept runs on a fork.
//! Structure is forced by the decoding loop, not hoped for from the model: list items are
//! started by us one per line and counted, prose stops at a paragraph end, and unusable answers
//! are regenerated a bounded number of times.
//!
//! Decoding is masked token by token: tokens that would end an item before it starts, markup
//! in tags, and every token that would bring a character of a foreign script into the text
//! (see [`super::script`]; the mask follows unfinished UTF-8 characters between tokens) are
//! never sampled. Main Results items are checked against the paper's numbers (see
//! [`super::grounding`]): an item with an unsupported number is regenerated once, within a
//! per-paper budget, and otherwise rewritten without it.

use std::time::Instant;

use super::context::{PaperText, select_context};
use super::grounding::{Grounding, PaperNumbers, remove_unsupported};
use super::parse::{clean_item, clean_prose, parse_tags, repeats};
use super::prompts::{PromptSet, SectionKind};
use super::record::{LanguageFidelity, PaperTimings, SectionTiming, Summary};
use super::script::{LanguageMask, ScriptPolicy, pending_tail, union};
use crate::llm::{
    ChatMessage, Engine, GenerateOptions, LlmError, Sampler, SamplingParams, Session, StopReason,
    TokenMask, encode_chat, generate_masked,
};
use crate::paper::PaperMeta;

/// How the writer may use the model.
#[derive(Debug, Clone, PartialEq)]
pub struct WriterSettings {
    pub sampling: SamplingParams,
    /// Upper bound on prompt plus answer tokens (also capped by the model's own context).
    pub max_context: usize,
    /// Most tokens written for one prose section; list items and tags get less.
    pub max_tokens: usize,
}

/// Receives what the writer is doing, for progress displays and `-v` streaming.
pub trait Observer {
    fn stage(&mut self, _stage: &str) {}
    fn generated(&mut self, _tokens: usize, _tok_s: f64) {}
    fn text(&mut self, _piece: &str) {}
    /// Whether the writer should stop (Ctrl-C); checked before the prefill and each section.
    fn cancelled(&self) -> bool {
        false
    }
}

/// An observer that ignores everything.
pub struct Silent;
impl Observer for Silent {}

#[derive(Debug, thiserror::Error)]
pub enum WriterError {
    #[error(transparent)]
    Model(#[from] LlmError),
    #[error("the paper has no text to summarise (no abstract and no sections)")]
    EmptyPaper,
    #[error(
        "the model's context ({context} tokens) is too small for the prompt scaffolding ({needed} tokens)"
    )]
    ContextTooSmall { context: usize, needed: usize },
    /// The observer asked to stop (Ctrl-C) before the summary was finished.
    #[error("stopped before the summary was finished")]
    Interrupted,
}

/// Room for the longest section instruction and answer lead beyond the answer itself.
const PROMPT_SLACK: usize = 160;
/// The longest list a section may write.
const MAX_LIST_ITEMS: usize = 5;

/// Tokens to keep free after the paper: the longest answer (a prose section, or a full list)
/// plus the instruction that asks for it.
fn answer_budget(max_tokens: usize) -> usize {
    let longest_list = MAX_LIST_ITEMS * (max_tokens.min(MAX_ITEM_TOKENS) + 2);
    max_tokens.max(longest_list) + PROMPT_SLACK
}

/// How often an unusable answer is regenerated before giving up on it.
const MAX_TRIES: u64 = 3;

/// Regenerations of Main Results items for unsupported numbers: at most one per item and
/// this many per paper; after that, unsupported numbers are removed from the text.
const GROUNDING_REGENERATIONS: usize = 3;

/// Main Results items that may be dropped (nothing left without their unsupported numbers)
/// before the list ends.
const MAX_DROPPED_ITEMS: usize = 2;

/// A summary and what it took.
#[derive(Debug, Clone, PartialEq)]
pub struct WrittenSummary {
    pub summary: Summary,
    pub timings: PaperTimings,
    pub grounding: Grounding,
    pub language_fidelity: LanguageFidelity,
}

/// Writes summaries with one model in one language. Building it makes the token masks (one
/// pass over the vocabulary, plus one per unfinished-character state); each paper then
/// reuses them.
pub struct Writer<'e> {
    engine: &'e Engine,
    prompts: &'e PromptSet,
    settings: WriterSettings,
    policy: ScriptPolicy,
    language: LanguageMask,
    masks: TokenMasks,
}

impl<'e> Writer<'e> {
    /// A writer for the prompts' language, with that language's script policy.
    pub fn new(engine: &'e Engine, prompts: &'e PromptSet, settings: WriterSettings) -> Writer<'e> {
        Writer::with_policy(
            engine,
            prompts,
            settings,
            ScriptPolicy::for_lang(prompts.lang),
        )
    }

    /// A writer whose output keeps to `policy` instead of the language's own.
    pub fn with_policy(
        engine: &'e Engine,
        prompts: &'e PromptSet,
        settings: WriterSettings,
        policy: ScriptPolicy,
    ) -> Writer<'e> {
        let started = Instant::now();
        let language = LanguageMask::for_tokenizer(engine.tokenizer(), &policy);
        let masks = token_masks(engine, &language);
        tracing::info!(
            lang = %prompts.lang,
            script = policy.name(),
            banned = language.banned_at_boundary(),
            vocab = language.vocab_size(),
            states = language.states(),
            secs = started.elapsed().as_secs_f64(),
            "language mask built"
        );
        Writer {
            engine,
            prompts,
            settings,
            policy,
            language,
            masks,
        }
    }

    pub fn settings(&self) -> &WriterSettings {
        &self.settings
    }

    /// The characters the summaries may contain.
    pub fn policy(&self) -> &ScriptPolicy {
        &self.policy
    }

    /// Writes the summary of one paper.
    pub fn write(
        &self,
        meta: &PaperMeta,
        paper: &PaperText<'_>,
        observer: &mut dyn Observer,
    ) -> Result<WrittenSummary, WriterError> {
        let engine = self.engine;
        let prompts = self.prompts;
        let settings = &self.settings;
        if paper.abstract_text.is_none_or(|a| a.trim().is_empty()) && paper.sections.is_empty() {
            return Err(WriterError::EmptyPaper);
        }
        let mut timings = PaperTimings::default();
        let tokenizer = engine.tokenizer();
        let context_limit = settings.max_context.min(engine.context_length());

        // The scaffolding with an empty paper tells how much room the paper itself can have.
        let authors = meta.authors.join(", ");
        let scaffold = section_prompt_tokens(
            engine,
            prompts,
            &meta.title,
            &authors,
            "",
            SectionKind::MainIdea,
        )?;
        let needed = scaffold.len() + answer_budget(settings.max_tokens);
        if needed + 64 > context_limit {
            return Err(WriterError::ContextTooSmall {
                context: context_limit,
                needed,
            });
        }
        let budget = context_limit - needed;
        let count = |text: &str| {
            tokenizer
                .encode(text)
                .map(|t| t.len())
                .unwrap_or(usize::MAX)
        };
        let selected = select_context(paper, budget, &count);
        timings.context_tokens = selected.tokens;
        tracing::debug!(
            budget,
            included = ?selected.included,
            trimmed = ?selected.trimmed,
            dropped = ?selected.dropped,
            tokens = selected.tokens,
            "context selected"
        );

        // Every section prompt, then their longest common prefix: that is prefilled once.
        let mut prompts_tokens = Vec::new();
        for kind in SectionKind::ALL {
            prompts_tokens.push(section_prompt_tokens(
                engine,
                prompts,
                &meta.title,
                &authors,
                &selected.text,
                kind,
            )?);
        }
        let shared = common_prefix_len(&prompts_tokens);
        if observer.cancelled() {
            return Err(WriterError::Interrupted);
        }
        observer.stage(&format!("prefill {shared} tokens"));
        let mut base = engine.new_session()?;
        let started = Instant::now();
        base.feed(&prompts_tokens[0][..shared])?;
        timings.prefill_tokens += shared;
        timings.shared_prefix_tokens = shared;
        timings.prefill_secs += started.elapsed().as_secs_f64();
        let paper_prefix = base.checkpoint();

        let numbers = PaperNumbers::new(
            &meta.title,
            paper
                .abstract_text
                .into_iter()
                .chain(paper.sections.iter().map(|s| s.text)),
        );
        let mut summary = Summary::default();
        let mut writer = SectionWriter {
            engine,
            settings,
            timings: &mut timings,
            observer,
            masks: &self.masks,
            language: &self.language,
            lang: prompts.lang,
            grounding: Grounding::default(),
            grounding_budget: GROUNDING_REGENERATIONS,
            tries: 0,
        };
        for (kind, tokens) in SectionKind::ALL.into_iter().zip(&prompts_tokens) {
            if writer.observer.cancelled() {
                return Err(WriterError::Interrupted);
            }
            writer.observer.stage(kind.name());
            let before = (
                writer.timings.prefill_tokens,
                writer.timings.generated_tokens,
                Instant::now(),
            );
            writer.tries = 0;
            let prompt = prompts.section(kind);
            // Back to the paper alone: the cached prefix is kept, not copied.
            base.rewind(&paper_prefix)?;
            let session = &mut base;
            writer.feed(session, &tokens[shared..])?;
            match kind {
                SectionKind::MainProblem => {
                    summary.main_problem = writer.prose(session, &prompt.answer_prefix)?;
                }
                SectionKind::MainIdea => {
                    summary.main_idea = writer.prose(session, &prompt.answer_prefix)?;
                }
                SectionKind::Conclusion => {
                    summary.conclusion = writer.prose(session, &prompt.answer_prefix)?;
                }
                SectionKind::MainResults => {
                    summary.main_results = writer.list(
                        session,
                        &prompt.answer_prefix,
                        3,
                        MAX_LIST_ITEMS,
                        Some(&numbers),
                    )?;
                }
                SectionKind::PaperIdeas => {
                    summary.paper_ideas =
                        writer.list(session, &prompt.answer_prefix, 3, 3, None)?;
                }
                SectionKind::PatentIdeas => {
                    summary.patent_ideas =
                        writer.list(session, &prompt.answer_prefix, 3, 3, None)?;
                }
                SectionKind::Tags => {
                    summary.tags =
                        writer.tags(session, &prompt.answer_prefix, &meta.title, &self.policy)?;
                }
            }
            writer.timings.sections.push(SectionTiming {
                name: kind.name().to_string(),
                prefill_tokens: writer.timings.prefill_tokens - before.0,
                generated_tokens: writer.timings.generated_tokens - before.1,
                secs: before.2.elapsed().as_secs_f64(),
                tries: writer.tries,
            });
        }
        let grounding = writer.grounding;
        let language_fidelity = fidelity(&summary, &self.policy);
        if language_fidelity.foreign_chars > 0 {
            tracing::warn!(
                foreign = language_fidelity.foreign_chars,
                paper = %meta.title,
                "the summary has characters of a foreign script"
            );
        }
        Ok(WrittenSummary {
            summary,
            timings,
            grounding,
            language_fidelity,
        })
    }
}

/// Counts the characters of every section of a summary that `policy` does not allow.
pub fn fidelity(summary: &Summary, policy: &ScriptPolicy) -> LanguageFidelity {
    let mut out = LanguageFidelity::default();
    let prose = [
        &summary.main_problem,
        &summary.main_idea,
        &summary.conclusion,
    ];
    let lists = [
        &summary.main_results,
        &summary.tags,
        &summary.paper_ideas,
        &summary.patent_ideas,
    ];
    for text in prose
        .into_iter()
        .chain(lists.into_iter().flat_map(|l| l.iter()))
    {
        out.chars += text.chars().count();
        out.foreign_chars += policy.count_foreign(text);
    }
    out
}

/// The token ids of one section's full prompt: chat template with system and user messages,
/// the generation prompt, and the forced start of the answer.
fn section_prompt_tokens(
    engine: &Engine,
    prompts: &PromptSet,
    title: &str,
    authors: &str,
    paper_text: &str,
    kind: SectionKind,
) -> Result<Vec<u32>, LlmError> {
    let section = prompts.section(kind);
    let user = format!(
        "{}\n\n{}",
        prompts.paper_block(title, authors, paper_text),
        section.instruction
    );
    let messages = [
        ChatMessage::system(&prompts.system),
        ChatMessage::user(&user),
    ];
    encode_chat(engine.chat(), engine.tokenizer(), &messages, true)
}

fn common_prefix_len(all: &[Vec<u32>]) -> usize {
    let Some(first) = all.first() else {
        return 0;
    };
    let mut len = first.len();
    for other in &all[1..] {
        len = len.min(first.iter().zip(other).take_while(|(a, b)| a == b).count());
    }
    len
}

struct SectionWriter<'a> {
    engine: &'a Engine,
    settings: &'a WriterSettings,
    timings: &'a mut PaperTimings,
    observer: &'a mut dyn Observer,
    masks: &'a TokenMasks,
    language: &'a LanguageMask,
    lang: crate::paper::Lang,
    grounding: Grounding,
    /// Main Results regenerations left for this paper.
    grounding_budget: usize,
    /// Generations run for the current section.
    tries: usize,
}

/// Masks from one pass over the vocabulary, each with the language mask's boundary bans:
/// tokens that would end an item before it starts (end of generation, line breaks); tokens of
/// markup (`<`, `>`, `{`, `}`), which a small model copies from the prompt into tags; both
/// together, for the first token of a tag; and the language bans alone.
fn token_masks(engine: &Engine, language: &LanguageMask) -> TokenMasks {
    let tokenizer = engine.tokenizer();
    let size = tokenizer.vocab_size();
    let mut empty_starts = TokenMask::from_ids(tokenizer.eos_ids().iter().copied());
    let mut markup = TokenMask::new();
    for id in 0..size as u32 {
        if tokenizer.is_eog(id) {
            empty_starts.insert(id);
            continue;
        }
        let Ok(piece) = tokenizer.token_to_piece(id) else {
            continue;
        };
        if piece.contains('\n') {
            empty_starts.insert(id);
        }
        if piece.contains(['<', '>', '{', '}']) {
            markup.insert(id);
        }
    }
    let text = language.boundary().clone();
    let empty_starts = union(&empty_starts, &text, size);
    let markup = union(&markup, &text, size);
    let tag_starts = union(&markup, &empty_starts, size);
    TokenMasks {
        empty_starts,
        markup,
        tag_starts,
        text,
    }
}

struct TokenMasks {
    empty_starts: TokenMask,
    markup: TokenMask,
    tag_starts: TokenMask,
    /// The language bans alone.
    text: TokenMask,
}

/// How one stretch of generation ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Ending {
    /// End of turn: the model is done.
    Eos,
    /// A stop string was reached (it is in the session, not in the text).
    Stop,
    /// The token limit.
    Limit,
    /// The model started repeating itself; generation was cut.
    Loop,
}

/// The text of one stretch of generation and how it ended.
struct Output {
    text: String,
    ending: Ending,
    /// The first token sampled, so a retry can be made to start differently.
    first_token: Option<u32>,
}

/// A candidate list item: its text, the session after it, and whether it ended its line.
type Candidate = (String, Session, bool);

impl SectionWriter<'_> {
    fn feed(&mut self, session: &mut Session, tokens: &[u32]) -> Result<(), LlmError> {
        let started = Instant::now();
        session.feed(tokens)?;
        self.timings.prefill_tokens += tokens.len();
        self.timings.prefill_secs += started.elapsed().as_secs_f64();
        Ok(())
    }

    fn feed_text(&mut self, session: &mut Session, text: &str) -> Result<(), LlmError> {
        let tokens = self.engine.tokenizer().encode(text)?;
        self.feed(session, &tokens)
    }

    /// Generates up to `max_tokens`, one token at a time, so that each token is drawn under
    /// the right mask (the language mask depends on the unfinished character so far) and a
    /// stop string or repetition loop is noticed at once. The first token never comes from
    /// `banned_first`, so a retry starts differently.
    fn run(
        &mut self,
        session: &mut Session,
        attempt: u64,
        max_tokens: usize,
        stop: &[&str],
        banned_first: &TokenMask,
        banned_after: &TokenMask,
    ) -> Result<Output, LlmError> {
        let mut params = self.settings.sampling.clone();
        params.seed = params.seed.wrapping_add(attempt * 7919);
        if attempt > 0 && params.temperature < 0.5 {
            // A greedy retry would write the same unusable text again.
            params.temperature = 0.5 + 0.2 * attempt as f64;
        }
        self.tries += 1;
        let mut sampler = Sampler::new(&params);
        let tokenizer = self.engine.tokenizer();
        let options = GenerateOptions {
            max_tokens: 1,
            stop_at_eos: true,
            stop_strings: Vec::new(),
        };
        // The text so far may end inside a character (a forced lead never does, but a list
        // continues where the model stopped): that character is completed first, and belongs
        // to this text.
        let mut pending = pending_tail(&last_bytes(session, tokenizer)?).to_vec();
        let mut decoder = Utf8Decoder::new(&pending);
        let started = Instant::now();
        let mut text = String::new();
        let mut shown = 0;
        let mut tokens: Vec<u32> = Vec::new();
        let mut decode_secs = 0.0;
        let ending = loop {
            if tokens.len() >= max_tokens {
                break Ending::Limit;
            }
            let mask = if !pending.is_empty() {
                self.language.banned(&pending)
            } else if tokens.is_empty() {
                banned_first
            } else {
                banned_after
            };
            let generation = generate_masked(session, &mut sampler, &options, mask, &mut |_| {})?;
            decode_secs += generation.decode_secs;
            let Some(&token) = generation.tokens.first() else {
                // Only an end of turn ends a one-token generation without a token.
                debug_assert_eq!(generation.stop, StopReason::Eos);
                break Ending::Eos;
            };
            tokens.push(token);
            let bytes = tokenizer.token_bytes(token)?;
            let mut joined = std::mem::take(&mut pending);
            joined.extend_from_slice(bytes);
            pending = pending_tail(&joined).to_vec();
            text.push_str(&decoder.push(bytes));
            if let Some(at) = stop.iter().filter_map(|s| text.find(s)).min() {
                text.truncate(at);
                break Ending::Stop;
            }
            if let Some(cut) = repetition_cut(&text) {
                text.truncate(cut);
                break Ending::Loop;
            }
            let safe = text.len() - held_back(&text[shown..], stop);
            if safe > shown {
                self.observer.text(&text[shown..safe]);
                shown = safe;
            }
            if tokens.len().is_multiple_of(8) {
                let secs = started.elapsed().as_secs_f64();
                if secs > 0.0 {
                    self.observer
                        .generated(tokens.len(), tokens.len() as f64 / secs);
                }
            }
        };
        if text.len() > shown {
            self.observer.text(&text[shown.min(text.len())..]);
        }
        self.timings.generated_tokens += tokens.len();
        self.timings.generate_secs += decode_secs;
        self.observer.text("\n");
        // A character cut by the token limit is never completed: `text` holds only whole
        // characters (the stream keeps the unfinished one).
        let text = text.trim_end_matches('\u{FFFD}').to_string();
        Ok(Output {
            text,
            ending,
            first_token: tokens.first().copied(),
        })
    }

    /// One paragraph, started with `lead`, after what `session` holds (where it leaves the
    /// session is unspecified).
    fn prose(&mut self, session: &mut Session, lead: &str) -> Result<String, LlmError> {
        let mut best = String::new();
        let mut banned = self.masks.empty_starts.clone();
        let text_mask = self.masks.text.clone();
        let prompt = session.checkpoint();
        for attempt in 0..MAX_TRIES {
            session.rewind(&prompt)?;
            if !lead.is_empty() {
                self.feed_text(session, lead)?;
            }
            let limit = self.settings.max_tokens;
            let output = self.run(session, attempt, limit, &["\n\n"], &banned, &text_mask)?;
            let raw = join_lead(lead, &output.text);
            let text = clean_prose(&raw, matches!(output.ending, Ending::Limit | Ending::Loop));
            let usable = output.text.split_whitespace().count() >= 6;
            // A looping answer gets one more try: a different start often avoids the loop.
            if usable && (output.ending != Ending::Loop || attempt > 0) {
                return Ok(text);
            }
            ban_first(&mut banned, output.first_token);
            if text.len() > best.len() {
                best = text;
            }
        }
        Ok(best)
    }

    /// Between `min` and `max` list items, one per line. The first `min` are forced: we write
    /// the list mark and let the model write the item. Further items only if the model starts
    /// them itself. A retry of an unusable or repeated item may not start like earlier items.
    /// With `numbers`, every item's numbers must be in the paper: an item with an unsupported
    /// number is regenerated (once, within the paper's budget), else rewritten without it.
    fn list(
        &mut self,
        session: &mut Session,
        lead: &str,
        min: usize,
        max: usize,
        numbers: Option<&PaperNumbers>,
    ) -> Result<Vec<String>, LlmError> {
        let mut items: Vec<String> = Vec::new();
        let mut banned = self.masks.empty_starts.clone();
        let text_mask = self.masks.text.clone();
        let mut at_line_start = true;
        let mut drops_left = MAX_DROPPED_ITEMS;
        while items.len() < max {
            if items.len() >= min {
                // Let the model say whether another item follows.
                if !at_line_start {
                    self.feed_text(session, "\n")?;
                }
                let before_peek = session.checkpoint();
                let peek = self.run(session, 0, 1, &[], &text_mask, &text_mask)?;
                session.rewind(&before_peek)?;
                if !peek.text.trim_start().starts_with(['-', '*', '•']) {
                    break;
                }
                at_line_start = true;
            }
            let item_lead = if items.is_empty() { lead } else { "" };
            let mark = if at_line_start { "-" } else { "\n-" };
            let forced = if item_lead.is_empty() {
                mark.to_string()
            } else {
                format!("{mark} {item_lead}")
            };
            let mut accepted: Option<Candidate> = None;
            let mut repeated: Option<Candidate> = None;
            // The candidate with the fewest unsupported numbers, when none was grounded.
            let mut ungrounded: Option<(Candidate, usize)> = None;
            let mut regenerated = false;
            for attempt in 0..MAX_ITEM_TRIES {
                let mut attempt_session = session.fork()?;
                self.feed_text(&mut attempt_session, &forced)?;
                let limit = self.settings.max_tokens.min(MAX_ITEM_TOKENS);
                let output = self.run(
                    &mut attempt_session,
                    attempt,
                    limit,
                    &["\n"],
                    &banned,
                    &text_mask,
                )?;
                ban_first(&mut banned, output.first_token);
                let raw = join_lead(item_lead, &output.text);
                let Some(item) = clean_item(&raw) else {
                    continue;
                };
                let cut = matches!(output.ending, Ending::Limit | Ending::Loop);
                let item = if cut { clean_prose(&item, true) } else { item };
                let candidate = (item, attempt_session, output.ending == Ending::Stop);
                if repeats(&candidate.0, &items) {
                    repeated.get_or_insert(candidate);
                    continue;
                }
                if let Some(numbers) = numbers {
                    let unsupported = numbers.check(&candidate.0).unsupported().count();
                    if unsupported > 0 {
                        tracing::debug!(item = %candidate.0, unsupported, "item has numbers the paper does not have");
                        if ungrounded.as_ref().is_none_or(|(_, n)| unsupported < *n) {
                            ungrounded = Some((candidate, unsupported));
                        }
                        if !regenerated && self.grounding_budget > 0 && attempt + 1 < MAX_ITEM_TRIES
                        {
                            regenerated = true;
                            self.grounding_budget -= 1;
                            self.grounding.regenerated += 1;
                            continue;
                        }
                        break;
                    }
                }
                accepted = Some(candidate);
                break;
            }
            let mut chosen = accepted.or(ungrounded.map(|(c, _)| c));
            // A list must have its minimum length: a repeated item beats a missing one.
            if chosen.is_none() && items.len() < min {
                chosen = repeated;
            }
            let Some(candidate) = chosen else {
                break;
            };
            let candidate = match numbers {
                Some(numbers) => self.ground(candidate, numbers, session, at_line_start)?,
                None => Some(candidate),
            };
            let Some((item, next, ended_line)) = candidate else {
                if drops_left == 0 {
                    break;
                }
                drops_left -= 1;
                continue;
            };
            items.push(item);
            *session = next;
            at_line_start = ended_line && self.ends_at_line_start(session)?;
        }
        Ok(items)
    }

    /// Counts an item's numbers, and rewrites it without those the paper does not have. The
    /// rewritten item replaces the model's in the session (from `before`, the session before
    /// the item), so later items do not build on a removed number. `None` when nothing worth
    /// keeping is left.
    fn ground(
        &mut self,
        candidate: Candidate,
        numbers: &PaperNumbers,
        before: &Session,
        at_line_start: bool,
    ) -> Result<Option<Candidate>, LlmError> {
        let check = numbers.check(&candidate.0);
        self.grounding.add(&check);
        if check.is_grounded() {
            return Ok(Some(candidate));
        }
        let spans: Vec<(usize, usize)> = check.unsupported().map(|m| (m.start, m.end)).collect();
        let unsupported: Vec<&str> = check.unsupported().map(|m| m.text.as_str()).collect();
        let Some(rewritten) = remove_unsupported(&candidate.0, &spans, self.lang) else {
            tracing::info!(item = %candidate.0, ?unsupported, "Main Results item dropped: nothing left without its unsupported numbers");
            return Ok(None);
        };
        tracing::info!(item = %candidate.0, %rewritten, ?unsupported, "unsupported numbers removed from a Main Results item");
        let mut session = before.fork()?;
        let mark = if at_line_start { "-" } else { "\n-" };
        self.feed_text(&mut session, &format!("{mark} {rewritten}\n"))?;
        Ok(Some((rewritten, session, true)))
    }

    /// Whether the session's text ends exactly at a line start (the token that ended a line may
    /// carry text after the newline, in which case a clean line is started explicitly).
    fn ends_at_line_start(&self, session: &Session) -> Result<bool, LlmError> {
        Ok(self.last_piece(session)?.is_none_or(|p| p.ends_with('\n')))
    }

    /// Whether the last token fed ended in a comma: the model itself asked for another tag.
    fn continues_with_comma(&self, session: &Session) -> Result<bool, LlmError> {
        Ok(self
            .last_piece(session)?
            .is_some_and(|p| p.trim_end().ends_with(',')))
    }

    /// The text of the last token fed, if any.
    fn last_piece(&self, session: &Session) -> Result<Option<String>, LlmError> {
        session
            .tokens()
            .last()
            .map(|&last| self.engine.tokenizer().decode(&[last]))
            .transpose()
    }

    /// 3 to 8 tags on one line. Tags are generated one at a time: the first three are forced
    /// (a comma is written for the model when it stops early), later ones only while the model
    /// itself continues the list with a comma.
    fn tags(
        &mut self,
        session: &mut Session,
        lead: &str,
        title: &str,
        policy: &ScriptPolicy,
    ) -> Result<Vec<String>, LlmError> {
        const MIN_TAGS: usize = 3;
        const MAX_TAGS: usize = 8;
        if !lead.is_empty() {
            self.feed_text(session, lead)?;
        }
        let mut tags: Vec<String> = Vec::new();
        let mut banned = self.masks.tag_starts.clone();
        let markup = self.masks.markup.clone();
        let mut needs_separator = false;
        while tags.len() < MAX_TAGS {
            let mut accepted = None;
            for attempt in 0..MAX_ITEM_TRIES {
                let mut attempt_session = session.fork()?;
                if needs_separator {
                    self.feed_text(&mut attempt_session, ",")?;
                }
                let output = self.run(
                    &mut attempt_session,
                    attempt,
                    16,
                    &[",", "\n", ";"],
                    &banned,
                    &markup,
                )?;
                ban_first(&mut banned, output.first_token);
                let tag = parse_tags(&output.text, 1).into_iter().next();
                if let Some(tag) = tag.filter(|t| !repeats(t, &tags)) {
                    let more = output.ending == Ending::Stop
                        && self.continues_with_comma(&attempt_session)?;
                    accepted = Some((tag, attempt_session, more));
                    break;
                }
            }
            let Some((tag, next, model_continues)) = accepted else {
                break;
            };
            tags.push(tag);
            *session = next;
            if tags.len() >= MIN_TAGS && !model_continues {
                break;
            }
            needs_separator = !model_continues;
        }
        if tags.len() < MIN_TAGS {
            // The tag line must have its three tags; when the model cannot give them, the
            // title's own key phrases are the most faithful stand-in.
            tracing::warn!(
                got = tags.len(),
                "model gave too few tags; adding title phrases"
            );
            for phrase in title_phrases(title) {
                if tags.len() >= MIN_TAGS {
                    break;
                }
                if policy.count_foreign(&phrase) == 0 && !repeats(&phrase, &tags) {
                    tags.push(phrase);
                }
            }
        }
        Ok(tags)
    }
}

/// Bytes to text, a token at a time: complete characters come out, an unfinished one waits.
/// Invalid bytes (which the masks never let through) become U+FFFD.
struct Utf8Decoder {
    pending: Vec<u8>,
}

impl Utf8Decoder {
    /// A decoder that starts with the bytes of an unfinished character.
    fn new(pending: &[u8]) -> Utf8Decoder {
        Utf8Decoder {
            pending: pending.to_vec(),
        }
    }

    fn push(&mut self, bytes: &[u8]) -> String {
        self.pending.extend_from_slice(bytes);
        let mut out = String::new();
        loop {
            match std::str::from_utf8(&self.pending) {
                Ok(s) => {
                    out.push_str(s);
                    self.pending.clear();
                    return out;
                }
                Err(e) => {
                    let valid = e.valid_up_to();
                    out.push_str(&String::from_utf8_lossy(&self.pending[..valid]));
                    match e.error_len() {
                        Some(bad) => {
                            out.push(char::REPLACEMENT_CHARACTER);
                            self.pending.drain(..valid + bad);
                        }
                        None => {
                            self.pending.drain(..valid);
                            return out;
                        }
                    }
                }
            }
        }
    }
}

/// The bytes of the last few tokens of a session: enough to see an unfinished character.
fn last_bytes(
    session: &Session,
    tokenizer: &crate::llm::GgufTokenizer,
) -> Result<Vec<u8>, LlmError> {
    let tokens = session.tokens();
    let mut bytes = Vec::new();
    for &id in &tokens[tokens.len().saturating_sub(4)..] {
        bytes.extend_from_slice(tokenizer.token_bytes(id)?);
    }
    Ok(bytes)
}

/// Length of the longest suffix of `tail` that is a proper start of some stop string: that
/// text is not shown yet, it may become a stop string with the next token.
fn held_back(tail: &str, stops: &[&str]) -> usize {
    tail.char_indices()
        .map(|(i, _)| &tail[i..])
        .find(|suffix| {
            stops
                .iter()
                .any(|s| s.len() > suffix.len() && s.starts_with(suffix))
        })
        .map_or(0, str::len)
}

/// Where a repetition loop starts, if the text ends in one: the last 8 words already occurred
/// twice before (the model is cycling). Returns the byte offset just past the first occurrence,
/// so the kept text says each thing once.
fn repetition_cut(text: &str) -> Option<usize> {
    const N: usize = 8;
    let words: Vec<(usize, &str)> = text
        .split_whitespace()
        .map(|w| (w.as_ptr() as usize - text.as_ptr() as usize, w))
        .collect();
    if let Some(cut) = periodic_tail(&words) {
        return Some(cut);
    }
    if words.len() < 3 * N {
        return None;
    }
    let tail: Vec<&str> = words[words.len() - N..].iter().map(|(_, w)| *w).collect();
    let earlier: Vec<usize> = (0..words.len() - N)
        .filter(|&i| {
            words[i..i + N]
                .iter()
                .map(|(_, w)| *w)
                .eq(tail.iter().copied())
        })
        .collect();
    if earlier.len() < 2 {
        return None;
    }
    // Cut just after the first occurrence: everything before it said it once.
    Some(words[earlier[0] + N].0)
}

/// A short loop at the end of the text, caught before it fills the token budget: the same
/// word four times in a row ("vài vài vài vài"), the same two words four times, or the same
/// three to eight words three times ("bài báo đề xuất bài, bài báo đề xuất bài, ..."), case
/// and punctuation aside. Returns the byte offset just past the loop's first period.
fn periodic_tail(words: &[(usize, &str)]) -> Option<usize> {
    let key = |w: &str| -> String {
        w.chars()
            .filter(|c| c.is_alphanumeric())
            .flat_map(char::to_lowercase)
            .collect()
    };
    let keys: Vec<String> = words.iter().map(|(_, w)| key(w)).collect();
    for period in 1..=8usize {
        let reps = if period <= 2 { 4 } else { 3 };
        let span = period * reps;
        if keys.len() < span {
            break;
        }
        let tail = keys.len() - span;
        let periodic = (tail..keys.len() - period).all(|i| keys[i] == keys[i + period]);
        // Words without letters or digits (a lone dash) do not make a loop.
        if !periodic || keys[tail..].iter().all(String::is_empty) {
            continue;
        }
        let mut start = tail;
        while start > 0 && keys[start - 1] == keys[start - 1 + period] {
            start -= 1;
        }
        return words.get(start + period).map(|(at, _)| *at);
    }
    None
}

/// Short phrases of a title, split at punctuation and linking words ("paperdigest: Private
/// Daily Digests with Local Models" gives "paperdigest", "Private Daily Digests", "Local
/// Models"), then its longer single words.
fn title_phrases(title: &str) -> Vec<String> {
    const LINKS: &[&str] = &[
        "with", "for", "and", "of", "via", "in", "on", "from", "to", "the", "a", "an", "by",
        "using", "through", "towards", "toward", "is", "are",
    ];
    let mut phrases: Vec<String> = Vec::new();
    for part in title.split([':', ',', ';', '?', '!', '(', ')', '—', '–']) {
        let mut current: Vec<&str> = Vec::new();
        for word in part.split_whitespace() {
            if LINKS.contains(&word.to_lowercase().as_str()) {
                if !current.is_empty() {
                    phrases.push(current.join(" "));
                    current.clear();
                }
            } else {
                current.push(word);
            }
        }
        if !current.is_empty() {
            phrases.push(current.join(" "));
        }
    }
    phrases.retain(|p| p.split_whitespace().count() <= 5);
    let words: Vec<String> = title
        .split(|c: char| !c.is_alphanumeric() && c != '-')
        .filter(|w| w.chars().count() >= 6)
        .map(str::to_string)
        .collect();
    phrases.extend(words);
    phrases
}

fn ban_first(mask: &mut TokenMask, token: Option<u32>) {
    if let Some(token) = token {
        mask.insert(token);
    }
}

/// Most tokens of one list item.
const MAX_ITEM_TOKENS: usize = 96;

/// Tries for one list item or tag before the list ends early.
const MAX_ITEM_TRIES: u64 = 4;

fn join_lead(lead: &str, generated: &str) -> String {
    if lead.is_empty() {
        generated.to_string()
    } else {
        format!("{lead}{generated}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn common_prefix_of_prompts() {
        let all = vec![vec![1, 2, 3, 4], vec![1, 2, 3, 9, 9], vec![1, 2, 7]];
        assert_eq!(common_prefix_len(&all), 2);
        assert_eq!(common_prefix_len(&[vec![5, 6]]), 2);
        assert_eq!(common_prefix_len(&[]), 0);
    }

    #[test]
    fn repetition_loops_are_cut_after_the_first_occurrence() {
        let sentence = "The library is designed to work with a single machine and more. ";
        let text = format!("Intro words here. {}", sentence.repeat(4));
        let cut = repetition_cut(&text).expect("loop found");
        let kept = &text[..cut];
        assert_eq!(
            kept.matches("The library is designed").count(),
            1,
            "{kept:?}"
        );
        assert!(repetition_cut("Plain text without any loop in it at all, just words.").is_none());
        let word_loop = format!("Tiếng Việt: {}", "nhỏ ".repeat(24));
        let kept = &word_loop[..repetition_cut(&word_loop).expect("word loop found")];
        assert!(kept.matches("nhỏ").count() <= 9, "{kept:?}");
    }

    #[test]
    fn short_loops_are_cut_as_soon_as_they_show() {
        let cases = [
            ("và vài vài vài vài", Some("và vài")),
            ("và vài vài vài", None),
            ("a b a b a b a b", Some("a b")),
            (
                "đề xuất bài, bài báo đề xuất bài, bài báo đề xuất bài, bài báo",
                Some("đề xuất bài, bài báo"),
            ),
            ("x - - - - y", None),
            ("the model, the data, the model", None),
            ("1 2 3 4 5 6 7 8", None),
        ];
        for (text, kept) in cases {
            let got = repetition_cut(text).map(|cut| text[..cut].trim_end());
            assert_eq!(got, kept, "{text:?}");
        }
    }

    #[test]
    fn title_phrases_split_at_punctuation_and_linking_words() {
        let phrases = title_phrases(
            "paperdigest: Private Daily Paper Digests with Local Quantized Language Models",
        );
        assert_eq!(
            &phrases[..3],
            [
                "paperdigest",
                "Private Daily Paper Digests",
                "Local Quantized Language Models"
            ]
        );
        let short = title_phrases("Attention Is All You Need");
        assert!(short.len() >= 3, "{short:?}");
    }

    #[test]
    fn lead_is_joined_without_doubling_spaces() {
        assert_eq!(
            join_lead("The paper", " studies X."),
            "The paper studies X."
        );
        assert_eq!(join_lead("", "X"), "X");
    }
}

/// The writer with a tiny random-weight model: structure, timings, grounding, masks and
/// reproducibility, end to end in well under a second per summary.
#[cfg(test)]
mod model_tests {
    use super::*;
    use crate::digest::SectionText;
    use crate::llm::testing::{TinyModelSpec, write_tiny_model};
    use crate::llm::{DeviceChoice, LoadOptions};
    use crate::paper::{Lang, PaperOrigin};
    use std::sync::OnceLock;

    fn tiny() -> &'static Engine {
        static ENGINE: OnceLock<Engine> = OnceLock::new();
        ENGINE.get_or_init(|| {
            let dir = tempfile::tempdir().unwrap().keep();
            let path = dir.join("tiny.gguf");
            write_tiny_model(&path, &TinyModelSpec::default()).unwrap();
            Engine::load(
                &path,
                &LoadOptions {
                    device: DeviceChoice::Cpu,
                    context: None,
                    kv_cache: Default::default(),
                },
            )
            .unwrap()
        })
    }

    fn meta() -> PaperMeta {
        PaperMeta {
            arxiv_id: None,
            title: "Private Daily Paper Digests with Local Models".into(),
            authors: vec!["Lan Nguyen".into()],
            published: None,
            github_repo: None,
            origin: PaperOrigin::LocalFile {
                path: "x.pdf".into(),
            },
        }
    }

    const ABSTRACT: &str = "We summarise 1,000 papers a day on one laptop. The method reaches \
        91.2% accuracy on 3 data sets and runs 2.5x faster than the baseline.";
    const RESULTS: &str = "Table 1: Accuracy on 3 data sets. The model reaches 91.2% on the \
        first set, 88.4% on the second and 79.0% on the third, with 8 GB of memory.";

    fn paper() -> PaperText<'static> {
        PaperText {
            abstract_text: Some(ABSTRACT),
            sections: vec![
                SectionText {
                    heading: "1 Introduction",
                    text: "The main problem we study is how to summarize a research paper.",
                    appendix: false,
                },
                SectionText {
                    heading: "4 Results",
                    text: RESULTS,
                    appendix: false,
                },
            ],
        }
    }

    fn settings(seed: u64) -> WriterSettings {
        WriterSettings {
            sampling: SamplingParams {
                temperature: 0.8,
                top_p: 0.95,
                seed,
            },
            max_context: 2048,
            max_tokens: 32,
        }
    }

    fn all_text(summary: &Summary) -> Vec<&str> {
        let mut all = vec![
            summary.main_problem.as_str(),
            summary.main_idea.as_str(),
            summary.conclusion.as_str(),
        ];
        for list in [
            &summary.main_results,
            &summary.tags,
            &summary.paper_ideas,
            &summary.patent_ideas,
        ] {
            all.extend(list.iter().map(String::as_str));
        }
        all
    }

    #[test]
    fn summaries_are_well_formed_and_timed() {
        let prompts = PromptSet::load(Lang::En, None, "phones").unwrap();
        let numbers = PaperNumbers::new(&meta().title, [ABSTRACT, RESULTS]);
        for seed in 0..3 {
            let writer = Writer::new(tiny(), &prompts, settings(seed));
            let started = Instant::now();
            let written = writer.write(&meta(), &paper(), &mut Silent).unwrap();
            eprintln!("seed {seed}: {:.2} s", started.elapsed().as_secs_f64());
            let s = &written.summary;
            assert_eq!(s.paper_ideas.len(), 3, "{s:?}");
            assert_eq!(s.patent_ideas.len(), 3, "{s:?}");
            assert!(
                (1..=MAX_LIST_ITEMS).contains(&s.main_results.len()),
                "{s:?}"
            );
            assert!((3..=8).contains(&s.tags.len()), "{s:?}");
            for item in &s.main_results {
                let check = numbers.check(item);
                assert!(check.is_grounded(), "{item:?}: {check:?}");
            }
            let g = written.grounding;
            assert!(g.grounded <= g.numbers, "{g:?}");
            assert_eq!(written.language_fidelity.foreign_chars, 0);
            assert!(written.language_fidelity.chars > 0);
            // One shared prefill, then each section's own suffix; every section timed.
            let t = &written.timings;
            let names: Vec<&str> = t.sections.iter().map(|s| s.name.as_str()).collect();
            let expected: Vec<&str> = SectionKind::ALL.iter().map(|k| k.name()).collect();
            assert_eq!(names, expected);
            assert!(t.shared_prefix_tokens > t.context_tokens, "{t:?}");
            let section_prefill: usize = t.sections.iter().map(|s| s.prefill_tokens).sum();
            assert_eq!(t.prefill_tokens, t.shared_prefix_tokens + section_prefill);
            let section_generated: usize = t.sections.iter().map(|s| s.generated_tokens).sum();
            assert_eq!(t.generated_tokens, section_generated);
            assert!(t.generated_tokens > 0 && t.generate_secs > 0.0, "{t:?}");
            assert!(t.sections.iter().all(|s| s.tries >= 1), "{t:?}");
        }
    }

    /// Prompts whose Main Results answer starts with `lead`, so the first item carries its
    /// numbers whatever the random model writes after it.
    fn prompts_with_results_lead(dir: &std::path::Path, lead: &str) -> PromptSet {
        std::fs::write(
            dir.join("main_results.txt"),
            format!("[instruction]\nList the results.\n[answer]\n{lead}"),
        )
        .unwrap();
        PromptSet::load(Lang::En, Some(dir), "x").unwrap()
    }

    #[test]
    fn unsupported_numbers_are_regenerated_then_removed_and_counted() {
        let cases = [
            // (lead, the number, in the paper?)
            ("Accuracy improves by 97.5% on", "97.5", false),
            ("Accuracy reaches 91.2% on", "91.2", true),
            ("It summarises 1000 papers", "1000", true),
        ];
        for (lead, number, supported) in cases {
            let dir = tempfile::tempdir().unwrap();
            let prompts = prompts_with_results_lead(dir.path(), lead);
            let writer = Writer::new(tiny(), &prompts, settings(1));
            let written = writer.write(&meta(), &paper(), &mut Silent).unwrap();
            let first = &written.summary.main_results[0];
            let g = written.grounding;
            assert!(g.numbers >= 1, "{lead}: {g:?}");
            if supported {
                assert!(first.contains(number), "{lead}: {first:?}");
                assert_eq!(g.regenerated, 0, "{lead}: {g:?}");
            } else {
                assert!(!first.contains(number), "{lead}: {first:?}");
                assert!(first.starts_with("Accuracy improves on"), "{first:?}");
                assert!(g.grounded < g.numbers, "{g:?}");
                assert_eq!(g.regenerated, 1, "one regeneration for the item: {g:?}");
            }
            let numbers = PaperNumbers::new(&meta().title, [ABSTRACT, RESULTS]);
            for item in &written.summary.main_results {
                assert!(numbers.check(item).is_grounded(), "{item:?}");
            }
        }
    }

    #[test]
    fn the_same_seed_gives_the_same_summary() {
        let prompts = PromptSet::load(Lang::Vi, None, "x").unwrap();
        let writer = Writer::new(tiny(), &prompts, settings(7));
        let a = writer.write(&meta(), &paper(), &mut Silent).unwrap();
        let b = writer.write(&meta(), &paper(), &mut Silent).unwrap();
        assert_eq!(a.summary, b.summary);
        assert_eq!(a.grounding, b.grounding);
        let other = Writer::new(tiny(), &prompts, settings(8));
        let c = other.write(&meta(), &paper(), &mut Silent).unwrap();
        assert_ne!(a.summary, c.summary);
    }

    fn no_vowels(c: char) -> bool {
        !"aeiouAEIOU".contains(c) && super::super::script::latin_text(c)
    }

    /// Prompts whose answers start empty, so that every character of the output is the
    /// model's.
    fn prompts_without_leads(dir: &std::path::Path) -> PromptSet {
        for kind in SectionKind::ALL {
            std::fs::write(
                dir.join(kind.file()),
                "[instruction]\nWrite it.\n[answer]\n",
            )
            .unwrap();
        }
        PromptSet::load(Lang::En, Some(dir), "x").unwrap()
    }

    #[test]
    fn masked_decoding_keeps_forbidden_characters_out() {
        let dir = tempfile::tempdir().unwrap();
        let prompts = prompts_without_leads(dir.path());
        let vowel_count = |summary: &Summary| {
            all_text(summary)
                .iter()
                .map(|t| t.chars().filter(|c| "aeiouAEIOU".contains(*c)).count())
                .sum::<usize>()
        };
        // Unmasked (Latin policy), the model writes vowels...
        let free = Writer::new(tiny(), &prompts, settings(3));
        let free = free.write(&meta(), &paper(), &mut Silent).unwrap();
        assert!(vowel_count(&free.summary) > 20, "{:?}", free.summary);
        // ... masked, none, in any section (tags included: title phrases are filtered too).
        let policy = ScriptPolicy::new("no vowels", no_vowels);
        let masked = Writer::with_policy(tiny(), &prompts, settings(3), policy);
        let written = masked.write(&meta(), &paper(), &mut Silent).unwrap();
        assert_eq!(vowel_count(&written.summary), 0, "{:?}", written.summary);
        assert_eq!(written.language_fidelity.foreign_chars, 0);
        assert_eq!(written.summary.paper_ideas.len(), 3);
    }

    /// The id of the token that is exactly this one byte.
    fn byte_token(engine: &Engine, byte: u8) -> u32 {
        let tokenizer = engine.tokenizer();
        (0..tokenizer.vocab_size() as u32)
            .find(|&id| tokenizer.token_bytes(id).is_ok_and(|b| b == [byte]))
            .unwrap_or_else(|| panic!("no token for byte {byte:02X}"))
    }

    #[test]
    fn an_unfinished_character_is_completed_inside_the_script() {
        let engine = tiny();
        let prompts = PromptSet::load(Lang::Vi, None, "x").unwrap();
        let writer = Writer::new(engine, &prompts, settings(0));
        // The byte-level vocabulary: E1 may start a character (Vietnamese letters), E4 (CJK)
        // and D0 (Cyrillic) may not.
        let boundary = writer.language.banned(&[]);
        assert!(!boundary.contains(byte_token(engine, 0xE1)));
        assert!(boundary.contains(byte_token(engine, 0xE4)));
        assert!(boundary.contains(byte_token(engine, 0xD0)));

        let mut session = engine.new_session().unwrap();
        let mut start = engine.tokenizer().encode("Vi").unwrap();
        start.push(byte_token(engine, 0xE1));
        start.push(byte_token(engine, 0xBB));
        session.feed(&start).unwrap();
        // Unmasked, this model writes ASCII next, which breaks the character.
        let mut free = session.fork().unwrap();
        let mut sampler = Sampler::new(&SamplingParams::default());
        let options = GenerateOptions {
            max_tokens: 1,
            ..GenerateOptions::default()
        };
        let g = generate_masked(
            &mut free,
            &mut sampler,
            &options,
            &TokenMask::new(),
            &mut |_| {},
        )
        .unwrap();
        let next = engine.tokenizer().token_bytes(g.tokens[0]).unwrap();
        assert!(
            next.first().is_some_and(|b| !(0x80..=0xBF).contains(b)),
            "{next:02X?}"
        );
        // Masked, the character is finished as a letter of U+1EC0..U+1EFF (ề, ệ, ở, ữ, ...).
        let mut timings = PaperTimings::default();
        let mut section = SectionWriter {
            engine,
            settings: &writer.settings,
            timings: &mut timings,
            observer: &mut Silent,
            masks: &writer.masks,
            language: &writer.language,
            lang: Lang::Vi,
            grounding: Grounding::default(),
            grounding_budget: 0,
            tries: 0,
        };
        let text_mask = writer.masks.text.clone();
        let out = section
            .run(&mut session, 0, 4, &[], &text_mask, &text_mask)
            .unwrap();
        let first = out.text.chars().next().unwrap();
        assert!(('\u{1EC0}'..='\u{1EFF}').contains(&first), "{:?}", out.text);
        assert_eq!(ScriptPolicy::for_lang(Lang::Vi).count_foreign(&out.text), 0);
    }
}
