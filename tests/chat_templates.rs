//! Chat templates rendered by paperdigest (minijinja) against golden renders made with Python's
//! jinja2 set up as Hugging Face's `apply_chat_template` does (`scripts/make-template-goldens.py`):
//! the templates embedded in the real SmolLM2 and Qwen2.5-Coder GGUFs, the built-in ChatML,
//! Llama 3 and Gemma templates, and a template exercising `tojson`, `raise_exception`,
//! `strftime_now` and Python string methods; with system + user, user only, several turns, and
//! the generation prompt on and off.

use std::collections::BTreeMap;
use std::path::Path;

use paperdigest::llm::ChatMessage;
use paperdigest::llm::chat::{BUILTIN_TEMPLATES, ChatTemplate};

#[derive(serde::Deserialize)]
struct Golden {
    templates: BTreeMap<String, TemplateInfo>,
    conversations: BTreeMap<String, Vec<ChatMessage>>,
    cases: Vec<Case>,
}

#[derive(serde::Deserialize)]
struct TemplateInfo {
    path: String,
    bos_token: String,
    eos_token: String,
}

#[derive(serde::Deserialize)]
struct Case {
    template: String,
    conversation: String,
    add_generation_prompt: bool,
    output: Option<String>,
    error: Option<String>,
}

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

fn golden() -> Golden {
    let path = root().join("tests/golden/chat/renders.json");
    let text = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

#[test]
fn renders_match_jinja2_goldens() {
    let golden = golden();
    let mut templates = BTreeMap::new();
    for (name, info) in &golden.templates {
        let source = std::fs::read_to_string(root().join(&info.path))
            .unwrap_or_else(|e| panic!("cannot read {}: {e}", info.path));
        let template = ChatTemplate::new(&source, &info.bos_token, &info.eos_token)
            .unwrap_or_else(|e| panic!("{name} does not compile: {e}"));
        templates.insert(name.as_str(), template);
    }
    assert!(golden.cases.len() >= 48, "{} cases", golden.cases.len());
    let mut failures = Vec::new();
    for case in &golden.cases {
        let template = &templates[case.template.as_str()];
        let messages = &golden.conversations[&case.conversation];
        let label = format!(
            "{} / {} / add_generation_prompt={}",
            case.template, case.conversation, case.add_generation_prompt
        );
        let got = template.render(messages, case.add_generation_prompt);
        match (&case.output, &case.error, got) {
            (Some(expected), _, Ok(got)) if *expected == got => {}
            (Some(expected), _, Ok(got)) => failures.push(format!(
                "{label}:\n  expected {expected:?}\n  got      {got:?}"
            )),
            (Some(_), _, Err(e)) => failures.push(format!("{label}: unexpected error {e}")),
            (None, Some(expected), Err(e)) if e.to_string().contains(expected.as_str()) => {}
            (None, Some(expected), Err(e)) => {
                failures.push(format!("{label}: error {e} does not say {expected:?}"))
            }
            (None, Some(expected), Ok(got)) => failures.push(format!(
                "{label}: rendered {got:?} where jinja2 raised {expected:?}"
            )),
            (None, None, _) => {
                failures.push(format!("{label}: golden has neither output nor error"))
            }
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {} renders differ from jinja2:\n{}",
        failures.len(),
        golden.cases.len(),
        failures.join("\n")
    );
}

#[test]
fn goldens_cover_every_built_in_template() {
    let golden = golden();
    for (name, source) in BUILTIN_TEMPLATES {
        let info = golden
            .templates
            .get(&format!("builtin-{name}"))
            .unwrap_or_else(|| panic!("no golden renders for built-in template {name}"));
        let file = std::fs::read_to_string(root().join(&info.path)).unwrap();
        assert_eq!(
            &file, source,
            "{name}: the golden was made from another text"
        );
    }
}

#[test]
fn tojson_does_not_escape_html_and_raise_exception_is_an_error() {
    let t = ChatTemplate::new(
        "{{ messages[0].content | tojson }}{% if messages | length > 1 %}{{ raise_exception('only one, got ' ~ (messages | length)) }}{% endif %}",
        "",
        "",
    )
    .unwrap();
    let one = [ChatMessage::user("<script>&'</script>")];
    assert_eq!(t.render(&one, false).unwrap(), "\"<script>&'</script>\"");
    let two = [ChatMessage::user("a"), ChatMessage::user("b")];
    let err = t.render(&two, false).unwrap_err().to_string();
    assert!(err.contains("only one, got 2"), "{err}");
}
