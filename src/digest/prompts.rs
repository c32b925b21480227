//! The prompt texts: built into the binary from `prompts/<lang>/`, each file overridable by a
//! user folder (`--prompts DIR`, laid out as `DIR/<lang>/<file>` or `DIR/<file>`).

use std::path::{Path, PathBuf};

use sha2::{Digest as _, Sha256};

use crate::paper::Lang;

/// The digest sections a model writes, in the order they are generated.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SectionKind {
    MainProblem,
    MainIdea,
    MainResults,
    Conclusion,
    Tags,
    PaperIdeas,
    PatentIdeas,
}

impl SectionKind {
    pub const ALL: [SectionKind; 7] = [
        SectionKind::MainProblem,
        SectionKind::MainIdea,
        SectionKind::MainResults,
        SectionKind::Conclusion,
        SectionKind::Tags,
        SectionKind::PaperIdeas,
        SectionKind::PatentIdeas,
    ];

    /// The prompt file of the section.
    pub fn file(self) -> &'static str {
        match self {
            SectionKind::MainProblem => "main_problem.txt",
            SectionKind::MainIdea => "main_idea.txt",
            SectionKind::MainResults => "main_results.txt",
            SectionKind::Conclusion => "conclusion.txt",
            SectionKind::Tags => "tags.txt",
            SectionKind::PaperIdeas => "paper_ideas.txt",
            SectionKind::PatentIdeas => "patent_ideas.txt",
        }
    }

    /// The name used in logs and timings (the prompt file name without `.txt`).
    pub fn name(self) -> &'static str {
        match self {
            SectionKind::MainProblem => "main_problem",
            SectionKind::MainIdea => "main_idea",
            SectionKind::MainResults => "main_results",
            SectionKind::Conclusion => "conclusion",
            SectionKind::Tags => "tags",
            SectionKind::PaperIdeas => "paper_ideas",
            SectionKind::PatentIdeas => "patent_ideas",
        }
    }
}

/// One section's request and the forced start of its answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SectionPrompt {
    pub instruction: String,
    pub answer_prefix: String,
}

/// Every prompt text for one language, ready to use.
#[derive(Debug, Clone)]
pub struct PromptSet {
    pub lang: Lang,
    pub system: String,
    paper: String,
    sections: Vec<(SectionKind, SectionPrompt)>,
}

#[derive(Debug, thiserror::Error)]
pub enum PromptError {
    #[error("prompt folder {path} does not exist or is not a folder")]
    NoDir { path: PathBuf },
    #[error("cannot read prompt file {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("prompt file {origin} is malformed: {reason}")]
    Malformed { origin: String, reason: String },
}

/// The prompt files of a language, in the order they are read.
pub const PROMPT_FILES: [&str; 9] = [
    "system.txt",
    "paper.txt",
    "main_problem.txt",
    "main_idea.txt",
    "main_results.txt",
    "conclusion.txt",
    "tags.txt",
    "paper_ideas.txt",
    "patent_ideas.txt",
];

/// Where one prompt text came from.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Origin {
    Builtin(&'static str),
    File(PathBuf),
}

impl Origin {
    fn describe(&self) -> String {
        match self {
            Origin::Builtin(file) => format!("built-in prompts/{file}"),
            Origin::File(path) => path.display().to_string(),
        }
    }
}

impl PromptSet {
    /// Loads the prompts of `lang`: each file from `override_dir` (as `DIR/<lang>/<file>` or
    /// `DIR/<file>`) when it is there, else the built-in text. `patent_focus` fills
    /// `{patent_focus}`. A folder that does not exist, and a file that is malformed (no
    /// `[instruction]`, an unknown `[part]`, an unknown `{placeholder}`, an empty system
    /// message, a paper template without `{text}`), are errors naming the file; a `.txt`
    /// file in the folder that paperdigest does not read is worth a warning (a misspelt name
    /// would otherwise be silently ignored).
    pub fn load(
        lang: Lang,
        override_dir: Option<&Path>,
        patent_focus: &str,
    ) -> Result<PromptSet, PromptError> {
        if let Some(dir) = override_dir {
            if !dir.is_dir() {
                return Err(PromptError::NoDir {
                    path: dir.to_path_buf(),
                });
            }
            warn_unknown_files(dir, lang);
        }
        let read = |file: &'static str| -> Result<(String, Origin), PromptError> {
            if let Some(dir) = override_dir {
                for candidate in [dir.join(lang.code()).join(file), dir.join(file)] {
                    if candidate.is_file() {
                        let text = std::fs::read_to_string(&candidate).map_err(|source| {
                            PromptError::Read {
                                path: candidate.clone(),
                                source,
                            }
                        })?;
                        tracing::info!(file = %candidate.display(), "prompt file overridden");
                        return Ok((text, Origin::File(candidate)));
                    }
                }
            }
            Ok((
                builtin(lang, file).to_string(),
                Origin::Builtin(builtin_path(lang, file)),
            ))
        };
        let (system, origin) = read("system.txt")?;
        let system = strip_comments(&system).trim().to_string();
        check_placeholders(&system, &["patent_focus"], &origin)?;
        if system.is_empty() {
            return Err(malformed(&origin, "the system message is empty"));
        }
        let system = system.replace("{patent_focus}", patent_focus);
        let (paper, origin) = read("paper.txt")?;
        let paper = strip_comments(&paper).trim().to_string();
        check_placeholders(&paper, &["title", "authors", "text"], &origin)?;
        if !paper.contains("{text}") {
            return Err(malformed(
                &origin,
                "the paper template must contain {text}, where the paper goes",
            ));
        }
        let mut sections = Vec::new();
        for kind in SectionKind::ALL {
            let (text, origin) = read(kind.file())?;
            let mut prompt = parse_section(&text, &origin)?;
            prompt.instruction = prompt.instruction.replace("{patent_focus}", patent_focus);
            prompt.answer_prefix = prompt.answer_prefix.replace("{patent_focus}", patent_focus);
            sections.push((kind, prompt));
        }
        Ok(PromptSet {
            lang,
            system,
            paper,
            sections,
        })
    }

    pub fn section(&self, kind: SectionKind) -> &SectionPrompt {
        // `load` fills every kind of `SectionKind::ALL`, so the lookup always succeeds.
        self.sections
            .iter()
            .find(|(k, _)| *k == kind)
            .map(|(_, p)| p)
            .unwrap_or(&self.sections[0].1)
    }

    /// The paper block shown to the model.
    pub fn paper_block(&self, title: &str, authors: &str, text: &str) -> String {
        // `{text}` last, so a paper that contains `{title}` cannot be expanded again.
        self.paper
            .replace("{title}", title)
            .replace("{authors}", authors)
            .replace("{text}", text)
    }

    /// A hash of every text in the set, for cache keys.
    pub fn fingerprint(&self) -> String {
        let mut hasher = Sha256::new();
        hasher.update(self.lang.code());
        hasher.update([0]);
        hasher.update(&self.system);
        hasher.update([0]);
        hasher.update(&self.paper);
        for (kind, prompt) in &self.sections {
            hasher.update([0]);
            hasher.update(kind.name());
            hasher.update([0]);
            hasher.update(&prompt.instruction);
            hasher.update([0]);
            hasher.update(&prompt.answer_prefix);
        }
        hex::encode(hasher.finalize())
    }
}

/// The patent focus of the reference digest, per language.
pub fn default_patent_focus(lang: Lang) -> &'static str {
    match lang {
        Lang::Vi => "các ứng dụng trên điện thoại thông minh và thiết bị di động",
        Lang::En => "applications on smartphones and mobile devices",
    }
}

fn strip_comments(text: &str) -> String {
    text.lines()
        .filter(|l| !l.trim_start().starts_with('#'))
        .collect::<Vec<_>>()
        .join("\n")
}

fn malformed(origin: &Origin, reason: impl Into<String>) -> PromptError {
    PromptError::Malformed {
        origin: origin.describe(),
        reason: reason.into(),
    }
}

/// Every `{name}` in `text` must be one of `allowed` (a misspelt placeholder would otherwise
/// reach the model verbatim).
fn check_placeholders(text: &str, allowed: &[&str], origin: &Origin) -> Result<(), PromptError> {
    let mut rest = text;
    while let Some(open) = rest.find('{') {
        let after = &rest[open + 1..];
        let name_len = after
            .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
            .unwrap_or(after.len());
        if name_len > 0 && after[name_len..].starts_with('}') {
            let name = &after[..name_len];
            if !allowed.contains(&name) {
                let list: Vec<String> = allowed.iter().map(|a| format!("{{{a}}}")).collect();
                return Err(malformed(
                    origin,
                    format!(
                        "unknown placeholder {{{name}}} (this file may use {})",
                        list.join(", ")
                    ),
                ));
            }
        }
        rest = after;
    }
    Ok(())
}

fn parse_section(text: &str, origin: &Origin) -> Result<SectionPrompt, PromptError> {
    const INSTRUCTION: &str = "[instruction]";
    const ANSWER: &str = "[answer]";
    let text = strip_comments(text);
    // A line that is only `[word]` is a part marker: only the two known ones are allowed,
    // each once, instruction first.
    let mut seen = Vec::new();
    for line in text.lines() {
        let line = line.trim();
        let is_marker = line.len() > 2
            && line.starts_with('[')
            && line.ends_with(']')
            && line[1..line.len() - 1]
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == ' ');
        if !is_marker {
            continue;
        }
        if line != INSTRUCTION && line != ANSWER {
            return Err(malformed(
                origin,
                format!("unknown part {line} (expected {INSTRUCTION} and {ANSWER})"),
            ));
        }
        if seen.contains(&line) {
            return Err(malformed(origin, format!("{line} appears twice")));
        }
        seen.push(line);
    }
    let start = text
        .find(INSTRUCTION)
        .ok_or_else(|| malformed(origin, format!("it has no {INSTRUCTION} part")))?;
    if !text[..start].trim().is_empty() {
        return Err(malformed(
            origin,
            format!("text before {INSTRUCTION} would be ignored"),
        ));
    }
    let rest = &text[start + INSTRUCTION.len()..];
    let (instruction, answer) = match rest.find(ANSWER) {
        Some(at) => (&rest[..at], &rest[at + ANSWER.len()..]),
        None => (rest, ""),
    };
    let instruction = instruction.trim();
    if instruction.is_empty() {
        return Err(malformed(
            origin,
            format!("its {INSTRUCTION} part is empty"),
        ));
    }
    check_placeholders(instruction, &["patent_focus"], origin)?;
    check_placeholders(answer, &["patent_focus"], origin)?;
    Ok(SectionPrompt {
        instruction: instruction.to_string(),
        answer_prefix: answer.trim().to_string(),
    })
}

/// Warns about `.txt` files in a prompt folder that no prompt is read from.
fn warn_unknown_files(dir: &Path, lang: Lang) {
    for folder in [dir.to_path_buf(), dir.join(lang.code())] {
        let Ok(entries) = std::fs::read_dir(&folder) else {
            continue;
        };
        for entry in entries.filter_map(Result::ok) {
            let name = entry.file_name().to_string_lossy().into_owned();
            if name.ends_with(".txt") && !PROMPT_FILES.contains(&name.as_str()) {
                tracing::warn!(
                    file = %entry.path().display(),
                    known = PROMPT_FILES.join(", "),
                    "prompt folder has a file paperdigest does not read"
                );
            }
        }
    }
}

fn builtin_path(lang: Lang, file: &'static str) -> &'static str {
    macro_rules! paths {
        ($($name:literal),*) => {
            match (lang, file) {
                $(
                    (Lang::Vi, $name) => concat!("vi/", $name),
                    (Lang::En, $name) => concat!("en/", $name),
                )*
                _ => "?",
            }
        };
    }
    paths!(
        "system.txt",
        "paper.txt",
        "main_problem.txt",
        "main_idea.txt",
        "main_results.txt",
        "conclusion.txt",
        "tags.txt",
        "paper_ideas.txt",
        "patent_ideas.txt"
    )
}

fn builtin(lang: Lang, file: &str) -> &'static str {
    macro_rules! files {
        ($($name:literal),*) => {
            match (lang, file) {
                $(
                    (Lang::Vi, $name) => include_str!(concat!("../../prompts/vi/", $name)),
                    (Lang::En, $name) => include_str!(concat!("../../prompts/en/", $name)),
                )*
                _ => "",
            }
        };
    }
    files!(
        "system.txt",
        "paper.txt",
        "main_problem.txt",
        "main_idea.txt",
        "main_results.txt",
        "conclusion.txt",
        "tags.txt",
        "paper_ideas.txt",
        "patent_ideas.txt"
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn builtin_sets_load_in_both_languages() {
        for lang in [Lang::Vi, Lang::En] {
            let set = PromptSet::load(lang, None, "phones").unwrap();
            assert!(!set.system.is_empty());
            for kind in SectionKind::ALL {
                assert!(!set.section(kind).instruction.is_empty(), "{kind:?}");
            }
            assert!(
                set.section(SectionKind::PatentIdeas)
                    .instruction
                    .contains("phones")
            );
        }
    }

    #[test]
    fn section_file_parts() {
        let t = Origin::Builtin("t");
        let parsed = parse_section(
            "# comment\n[instruction]\nDo X.\nThen Y.\n\n[answer]\nThe paper\n",
            &t,
        )
        .unwrap();
        assert_eq!(parsed.instruction, "Do X.\nThen Y.");
        assert_eq!(parsed.answer_prefix, "The paper");
        let no_answer = parse_section("[instruction]\nOnly this.", &t).unwrap();
        assert_eq!(no_answer.answer_prefix, "");
        assert!(parse_section("just text", &t).is_err());
    }

    #[test]
    fn override_dir_replaces_single_files() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("en")).unwrap();
        std::fs::write(
            dir.path().join("en/main_idea.txt"),
            "[instruction]\nCustom idea prompt.\n[answer]\nIdea:",
        )
        .unwrap();
        let set = PromptSet::load(Lang::En, Some(dir.path()), "x").unwrap();
        assert_eq!(
            set.section(SectionKind::MainIdea).instruction,
            "Custom idea prompt."
        );
        let builtin = PromptSet::load(Lang::En, None, "x").unwrap();
        assert_eq!(set.system, builtin.system);
        assert_ne!(set.fingerprint(), builtin.fingerprint());
    }

    #[test]
    fn malformed_override_files_are_clear_errors_naming_the_file() {
        let cases = [
            (
                "main_idea.txt",
                "Just a request.",
                "has no [instruction] part",
            ),
            (
                "main_idea.txt",
                "[instruction]\nAbout {titel}.",
                "unknown placeholder {titel}",
            ),
            (
                "main_idea.txt",
                "[instrcution]\nDo it.",
                "unknown part [instrcution]",
            ),
            (
                "main_idea.txt",
                "[instruction]\n\n[answer]\nThe",
                "[instruction] part is empty",
            ),
            (
                "main_idea.txt",
                "[instruction]\nA\n[instruction]\nB",
                "appears twice",
            ),
            (
                "main_idea.txt",
                "Intro.\n[instruction]\nA",
                "text before [instruction]",
            ),
            ("paper.txt", "Title: {title}", "must contain {text}"),
            (
                "paper.txt",
                "{text} by {author}",
                "unknown placeholder {author}",
            ),
            (
                "system.txt",
                "# only a comment\n",
                "system message is empty",
            ),
        ];
        for (file, content, expected) in cases {
            let dir = tempfile::tempdir().unwrap();
            std::fs::write(dir.path().join(file), content).unwrap();
            let err = PromptSet::load(Lang::En, Some(dir.path()), "x")
                .unwrap_err()
                .to_string();
            assert!(err.contains(expected), "{file} {content:?}: {err}");
            assert!(
                err.contains(&dir.path().join(file).display().to_string()),
                "{err}"
            );
        }
        let missing = Path::new("/nonexistent/prompts");
        let err = PromptSet::load(Lang::Vi, Some(missing), "x").unwrap_err();
        assert!(matches!(err, PromptError::NoDir { .. }), "{err}");
        assert!(err.to_string().contains("/nonexistent/prompts"), "{err}");
    }

    #[test]
    fn patent_focus_reaches_both_languages_and_the_fingerprint() {
        for lang in [Lang::Vi, Lang::En] {
            let default = PromptSet::load(lang, None, default_patent_focus(lang)).unwrap();
            let patent = &default.section(SectionKind::PatentIdeas).instruction;
            assert!(patent.contains(default_patent_focus(lang)), "{patent}");
            assert!(!patent.contains("{patent_focus}"), "{patent}");
            let medical = PromptSet::load(lang, None, "medical devices").unwrap();
            assert!(
                medical
                    .section(SectionKind::PatentIdeas)
                    .instruction
                    .contains("medical devices")
            );
            assert_ne!(default.fingerprint(), medical.fingerprint());
        }
        let vi = PromptSet::load(Lang::Vi, None, "x").unwrap();
        let en = PromptSet::load(Lang::En, None, "x").unwrap();
        assert_ne!(vi.fingerprint(), en.fingerprint());
    }

    #[test]
    fn paper_block_does_not_expand_placeholders_inside_the_paper() {
        let set = PromptSet::load(Lang::En, None, "x").unwrap();
        let block = set.paper_block("T", "A", "text with {title} inside");
        assert!(block.contains("text with {title} inside"));
        assert!(block.contains("Title: T"));
    }
}
