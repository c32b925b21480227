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

    /// The prompt file name (without `.txt`) and the name used in logs.
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
    #[error("cannot read prompt file {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("prompt file {name} has no [instruction] part")]
    NoInstruction { name: String },
    #[error("prompt file {name}: the paper template must contain {{text}}")]
    NoTextPlaceholder { name: String },
}

impl PromptSet {
    /// Loads the prompts of `lang`: each file from `override_dir` when it is there, else the
    /// built-in text. `patent_focus` fills `{patent_focus}`.
    pub fn load(
        lang: Lang,
        override_dir: Option<&Path>,
        patent_focus: &str,
    ) -> Result<PromptSet, PromptError> {
        let read = |file: &str| -> Result<String, PromptError> {
            if let Some(dir) = override_dir {
                for candidate in [dir.join(lang.code()).join(file), dir.join(file)] {
                    if candidate.is_file() {
                        return std::fs::read_to_string(&candidate).map_err(|source| {
                            PromptError::Read {
                                path: candidate.clone(),
                                source,
                            }
                        });
                    }
                }
            }
            Ok(builtin(lang, file).to_string())
        };
        let system = strip_comments(&read("system.txt")?).trim().to_string();
        let paper = strip_comments(&read("paper.txt")?).trim().to_string();
        if !paper.contains("{text}") {
            return Err(PromptError::NoTextPlaceholder {
                name: "paper.txt".into(),
            });
        }
        let mut sections = Vec::new();
        for kind in SectionKind::ALL {
            let name = format!("{}.txt", kind.name());
            let mut prompt = parse_section(&read(&name)?, &name)?;
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

fn parse_section(text: &str, name: &str) -> Result<SectionPrompt, PromptError> {
    const INSTRUCTION: &str = "[instruction]";
    const ANSWER: &str = "[answer]";
    let text = strip_comments(text);
    let no_instruction = || PromptError::NoInstruction {
        name: name.to_string(),
    };
    let start = text.find(INSTRUCTION).ok_or_else(no_instruction)?;
    let rest = &text[start + INSTRUCTION.len()..];
    let (instruction, answer) = match rest.find(ANSWER) {
        Some(at) => (&rest[..at], &rest[at + ANSWER.len()..]),
        None => (rest, ""),
    };
    let instruction = instruction.trim();
    if instruction.is_empty() {
        return Err(no_instruction());
    }
    Ok(SectionPrompt {
        instruction: instruction.to_string(),
        answer_prefix: answer.trim().to_string(),
    })
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
        let parsed = parse_section(
            "# comment\n[instruction]\nDo X.\nThen Y.\n\n[answer]\nThe paper\n",
            "t",
        )
        .unwrap();
        assert_eq!(parsed.instruction, "Do X.\nThen Y.");
        assert_eq!(parsed.answer_prefix, "The paper");
        let no_answer = parse_section("[instruction]\nOnly this.", "t").unwrap();
        assert_eq!(no_answer.answer_prefix, "");
        assert!(parse_section("just text", "t").is_err());
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
    fn paper_block_does_not_expand_placeholders_inside_the_paper() {
        let set = PromptSet::load(Lang::En, None, "x").unwrap();
        let block = set.paper_block("T", "A", "text with {title} inside");
        assert!(block.contains("text with {title} inside"));
        assert!(block.contains("Title: T"));
    }
}
