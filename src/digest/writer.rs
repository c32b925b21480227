//! Writes one paper's summary with a loaded model. The paper is prefilled once; every section
//! is generated from a fork of that shared prefix. Structure is forced by the decoding loop, not
//! hoped for from the model: list items are started by us one per line and counted, prose stops
//! at a paragraph end, and unusable answers are regenerated a bounded number of times.

use std::time::Instant;

use super::context::{PaperText, select_context};
use super::parse::{clean_item, clean_prose, parse_tags, repeats};
use super::prompts::{PromptSet, SectionKind};
use super::record::{PaperTimings, Summary};
use crate::llm::{
    ChatMessage, Engine, GenerateOptions, LlmError, Sampler, SamplingParams, Session, StopReason,
    TokenMask, encode_chat, generate_masked,
};
use crate::paper::PaperMeta;

/// How the writer may use the model.
#[derive(Debug, Clone)]
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

/// Writes the summary of one paper.
pub fn write_summary(
    engine: &Engine,
    prompts: &PromptSet,
    settings: &WriterSettings,
    meta: &PaperMeta,
    paper: &PaperText<'_>,
    observer: &mut dyn Observer,
) -> Result<(Summary, PaperTimings), WriterError> {
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
    observer.stage(&format!("prefill {shared} tokens"));
    let mut base = engine.new_session()?;
    let started = Instant::now();
    base.feed(&prompts_tokens[0][..shared])?;
    timings.prefill_tokens += shared;
    timings.prefill_secs += started.elapsed().as_secs_f64();

    let mut summary = Summary::default();
    let masks = token_masks(engine);
    let mut writer = SectionWriter {
        engine,
        settings,
        timings: &mut timings,
        observer,
        masks,
    };
    for (kind, tokens) in SectionKind::ALL.into_iter().zip(&prompts_tokens) {
        writer.observer.stage(kind.name());
        let prompt = prompts.section(kind);
        let mut session = base.fork()?;
        writer.feed(&mut session, &tokens[shared..])?;
        match kind {
            SectionKind::MainProblem => {
                summary.main_problem = writer.prose(&session, &prompt.answer_prefix)?;
            }
            SectionKind::MainIdea => {
                summary.main_idea = writer.prose(&session, &prompt.answer_prefix)?;
            }
            SectionKind::Conclusion => {
                summary.conclusion = writer.prose(&session, &prompt.answer_prefix)?;
            }
            SectionKind::MainResults => {
                summary.main_results =
                    writer.list(session, &prompt.answer_prefix, 3, MAX_LIST_ITEMS)?;
            }
            SectionKind::PaperIdeas => {
                summary.paper_ideas = writer.list(session, &prompt.answer_prefix, 3, 3)?;
            }
            SectionKind::PatentIdeas => {
                summary.patent_ideas = writer.list(session, &prompt.answer_prefix, 3, 3)?;
            }
            SectionKind::Tags => {
                summary.tags = writer.tags(&session, &prompt.answer_prefix, &meta.title)?;
            }
        }
    }
    Ok((summary, timings))
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
    /// Tokens that would end a list item or tag before it starts (end of turn, line breaks):
    /// banned as the first token of an item, so a forced item is never empty.
    masks: TokenMasks,
}

/// Masks from one pass over the vocabulary: tokens that would end an item before it starts
/// (end of generation, line breaks); tokens of markup (`<`, `>`, `{`, `}`), which a small model
/// copies from the prompt into tags; and both together, for the first token of a tag.
fn token_masks(engine: &Engine) -> TokenMasks {
    let tokenizer = engine.tokenizer();
    let mut empty_starts = TokenMask::from_ids(tokenizer.eos_ids().iter().copied());
    let mut markup = TokenMask::new();
    let mut tag_starts = empty_starts.clone();
    for id in 0..tokenizer.vocab_size() as u32 {
        if tokenizer.is_eog(id) {
            empty_starts.insert(id);
            tag_starts.insert(id);
            continue;
        }
        let Ok(piece) = tokenizer.token_to_piece(id) else {
            continue;
        };
        if piece.contains('\n') {
            empty_starts.insert(id);
            tag_starts.insert(id);
        }
        if piece.contains(['<', '>', '{', '}']) {
            markup.insert(id);
            tag_starts.insert(id);
        }
    }
    TokenMasks {
        empty_starts,
        markup,
        tag_starts,
    }
}

struct TokenMasks {
    empty_starts: TokenMask,
    markup: TokenMask,
    tag_starts: TokenMask,
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

/// Tokens generated between checks for repetition loops.
const CHUNK_TOKENS: usize = 24;

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

    /// Generates up to `max_tokens`, in chunks so that a repetition loop is noticed and cut
    /// early. The first token never comes from `banned_first`, so a retry starts differently.
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
        let mut sampler = Sampler::new(&params);
        let stop_strings: Vec<String> = stop.iter().map(|s| s.to_string()).collect();
        let observer = &mut *self.observer;
        let started = Instant::now();
        let mut text;
        let mut tokens: Vec<u32> = Vec::new();
        let mut generated = 0usize;
        let mut first_token = None;
        let mut decode_secs = 0.0;
        let ending = loop {
            let chunk = if generated == 0 { 1 } else { CHUNK_TOKENS };
            let options = GenerateOptions {
                max_tokens: chunk.min(max_tokens - generated),
                stop_at_eos: true,
                stop_strings: stop_strings.clone(),
            };
            let mask = if generated == 0 {
                banned_first
            } else {
                banned_after
            };
            let generation =
                generate_masked(session, &mut sampler, &options, mask, &mut |piece| {
                    observer.text(piece);
                })?;
            decode_secs += generation.decode_secs;
            first_token = first_token.or(generation.tokens.first().copied());
            generated += generation.tokens.len();
            tokens.extend_from_slice(&generation.tokens);
            let secs = started.elapsed().as_secs_f64();
            if secs > 0.0 {
                observer.generated(generated, generated as f64 / secs);
            }
            // Decoding all tokens at once keeps characters whole across chunk boundaries, and
            // finds a stop string that straddles two chunks.
            text = self.engine.tokenizer().decode(&tokens)?;
            if let Some(at) = stop.iter().filter_map(|s| text.find(s)).min() {
                text.truncate(at);
                break Ending::Stop;
            }
            if let Some(cut) = repetition_cut(&text) {
                text.truncate(cut);
                break Ending::Loop;
            }
            match generation.stop {
                StopReason::Eos => break Ending::Eos,
                StopReason::StopString(_) => break Ending::Stop,
                StopReason::MaxTokens if generated >= max_tokens => break Ending::Limit,
                StopReason::MaxTokens if generation.tokens.is_empty() => break Ending::Limit,
                StopReason::MaxTokens => {}
            }
        };
        self.timings.generated_tokens += generated;
        self.timings.generate_secs += decode_secs;
        self.observer.text("\n");
        // A character cut by the token limit decodes as U+FFFD: drop it.
        let text = text.trim_end_matches('\u{FFFD}').to_string();
        Ok(Output {
            text,
            ending,
            first_token,
        })
    }

    /// One paragraph, started with `lead`.
    fn prose(&mut self, prompt: &Session, lead: &str) -> Result<String, LlmError> {
        let mut best = String::new();
        let mut banned = self.masks.empty_starts.clone();
        for attempt in 0..MAX_TRIES {
            let mut session = prompt.fork()?;
            if !lead.is_empty() {
                self.feed_text(&mut session, lead)?;
            }
            let limit = self.settings.max_tokens;
            let output = self.run(&mut session, attempt, limit, &["\n\n"], &banned, &no_ban())?;
            let raw = join_lead(lead, &output.text);
            let text = clean_prose(&raw, matches!(output.ending, Ending::Limit | Ending::Loop));
            if output.text.split_whitespace().count() >= 6 {
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
    fn list(
        &mut self,
        mut session: Session,
        lead: &str,
        min: usize,
        max: usize,
    ) -> Result<Vec<String>, LlmError> {
        let mut items: Vec<String> = Vec::new();
        let mut banned = self.masks.empty_starts.clone();
        let mut at_line_start = true;
        while items.len() < max {
            if items.len() >= min {
                // Let the model say whether another item follows.
                if !at_line_start {
                    self.feed_text(&mut session, "\n")?;
                }
                let peek = self.run(&mut session.fork()?, 0, 1, &[], &no_ban(), &no_ban())?;
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
            let mut accepted = None;
            let mut fallback = None;
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
                    &no_ban(),
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
                    fallback.get_or_insert(candidate);
                } else {
                    accepted = Some(candidate);
                    break;
                }
            }
            // A list must have its minimum length: a repeated item beats a missing one.
            if accepted.is_none() && items.len() < min {
                accepted = fallback;
            }
            let Some((item, next, ended_line)) = accepted else {
                break;
            };
            items.push(item);
            session = next;
            at_line_start = ended_line && self.ends_at_line_start(&session)?;
        }
        Ok(items)
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
    fn tags(&mut self, prompt: &Session, lead: &str, title: &str) -> Result<Vec<String>, LlmError> {
        const MIN_TAGS: usize = 3;
        const MAX_TAGS: usize = 8;
        let mut session = prompt.fork()?;
        if !lead.is_empty() {
            self.feed_text(&mut session, lead)?;
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
            session = next;
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
                if !repeats(&phrase, &tags) {
                    tags.push(phrase);
                }
            }
        }
        Ok(tags)
    }
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

fn no_ban() -> TokenMask {
    TokenMask::new()
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
