//! The fixed words of a digest in each language. Section headings stay in English in both
//! languages, as in the reference digest; labels and the preamble follow the language.

use crate::paper::Lang;

/// Every fixed string the Markdown renderer writes, for one language.
#[derive(Debug, Clone, Copy)]
pub struct Labels {
    pub title: &'static str,
    /// Preamble with `{generated_at}` and `{model}` placeholders.
    pub generated: &'static str,
    pub summary_of_papers: &'static str,
    pub no_papers: &'static str,
    pub authors: &'static str,
    pub published: &'static str,
    pub tags: &'static str,
    pub main_problem: &'static str,
    pub main_idea: &'static str,
    pub main_results: &'static str,
    pub conclusion: &'static str,
    pub brainstorming: &'static str,
    pub publish_papers: &'static str,
    pub patent: &'static str,
    pub links: &'static str,
    pub links_platform: &'static str,
    pub links_url: &'static str,
    pub failed: &'static str,
    pub not_available: &'static str,
}

const VI: Labels = Labels {
    title: "🤗 Daily Hugging Face Paper Digest",
    generated: "Báo cáo được tạo tự động vào lúc {generated_at} bằng mô hình `{model}`.",
    summary_of_papers: "📰 Summary of Papers",
    no_papers: "Không có bài báo nào cho ngày này.",
    authors: "Tác giả",
    published: "Xuất bản lúc",
    tags: "Tag",
    main_problem: "Main Problem",
    main_idea: "Main Idea",
    main_results: "Main Results",
    conclusion: "Conclusion & Future Works",
    brainstorming: "Brainstorming Space",
    publish_papers: "1. Publish Papers",
    patent: "2. Patent",
    links: "Các đường dẫn liên quan",
    links_platform: "Nền tảng",
    links_url: "Đường dẫn",
    failed: "Không thể tóm tắt bài báo này",
    not_available: "N/A",
};

const EN: Labels = Labels {
    title: "🤗 Daily Hugging Face Paper Digest",
    generated: "Report generated automatically at {generated_at} with model `{model}`.",
    summary_of_papers: "📰 Summary of Papers",
    no_papers: "No papers for this day.",
    authors: "Authors",
    published: "Published",
    tags: "Tags",
    main_problem: "Main Problem",
    main_idea: "Main Idea",
    main_results: "Main Results",
    conclusion: "Conclusion & Future Works",
    brainstorming: "Brainstorming Space",
    publish_papers: "1. Publish Papers",
    patent: "2. Patent",
    links: "Related Links",
    links_platform: "Platform",
    links_url: "URL",
    failed: "This paper could not be summarised",
    not_available: "N/A",
};

impl Labels {
    pub fn for_lang(lang: Lang) -> &'static Labels {
        match lang {
            Lang::Vi => &VI,
            Lang::En => &EN,
        }
    }
}
