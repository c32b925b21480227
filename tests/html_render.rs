//! The HTML digest in a real browser: headless Chromium (Debian's `chromium` package, which
//! `.ci/run` installs) takes screenshots of the page at phone and desktop widths, and the PNGs
//! must show a page, not a blank one. A blank page is measured the same way as a control, so
//! the measure itself is checked. Without Chromium the test fails, with the install command.

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use chrono::NaiveDate;
use paperdigest::digest::{Digest, Grounding, PaperDigest, PaperTimings, Summary};
use paperdigest::paper::{Lang, PaperMeta, PaperOrigin};
use paperdigest::render::to_html;

fn chromium() -> PathBuf {
    let path = std::env::var_os("PATH").unwrap_or_default();
    for name in ["chromium", "chromium-browser", "google-chrome"] {
        for dir in std::env::split_paths(&path).chain([PathBuf::from("/usr/bin")]) {
            let candidate = dir.join(name);
            if candidate.is_file() {
                return candidate;
            }
        }
    }
    panic!(
        "headless Chromium is needed to check the HTML digest: install it with \
         `apt-get install -y chromium` (.ci/run does this on CI)"
    );
}

/// A screenshot of `html` at `width`x`height`: its size and RGBA pixels.
fn screenshot(html: &Path, width: u32, height: u32) -> (u32, u32, Vec<u8>) {
    let dir = tempfile::tempdir().expect("tempdir");
    let png = dir.path().join("shot.png");
    let mut child = Command::new(chromium())
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--hide-scrollbars",
            "--no-first-run",
            "--disable-dev-shm-usage",
        ])
        .arg(format!(
            "--user-data-dir={}",
            dir.path().join("profile").display()
        ))
        .arg(format!("--screenshot={}", png.display()))
        .arg(format!("--window-size={width},{height}"))
        .arg(format!("file://{}", html.display()))
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start chromium");
    let deadline = Instant::now() + Duration::from_secs(120);
    let status = loop {
        if let Some(status) = child.try_wait().expect("wait for chromium") {
            break status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("chromium took over 120 s for a screenshot");
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    let mut stderr = String::new();
    if let Some(mut pipe) = child.stderr.take() {
        let _ = pipe.read_to_string(&mut stderr);
    }
    assert!(
        status.success() && png.is_file(),
        "chromium failed ({status}):\n{stderr}"
    );
    let file = std::fs::File::open(&png).expect("screenshot");
    let mut decoder = png::Decoder::new(std::io::BufReader::new(file));
    decoder.set_transformations(png::Transformations::EXPAND | png::Transformations::STRIP_16);
    let mut reader = decoder.read_info().expect("PNG header");
    let mut buf = vec![0; reader.output_buffer_size().expect("PNG size")];
    let info = reader.next_frame(&mut buf).expect("PNG data");
    let channels = info.color_type.samples();
    let rgba: Vec<u8> = buf[..info.buffer_size()]
        .chunks(channels)
        .flat_map(|px| match channels {
            1 | 2 => [px[0], px[0], px[0], 255],
            _ => [px[0], px[1], px[2], px.get(3).copied().unwrap_or(255)],
        })
        .collect();
    (info.width, info.height, rgba)
}

/// The share of pixels that differ from the page's most common colour (its background).
fn ink(rgba: &[u8]) -> f64 {
    let mut counts = std::collections::HashMap::new();
    for px in rgba.chunks(4) {
        *counts.entry([px[0], px[1], px[2]]).or_insert(0usize) += 1;
    }
    let Some((&background, _)) = counts.iter().max_by_key(|(_, n)| **n) else {
        return 0.0;
    };
    let differs = rgba
        .chunks(4)
        .filter(|px| {
            px[..3]
                .iter()
                .zip(background)
                .any(|(&a, b)| a.abs_diff(b) > 24)
        })
        .count();
    differs as f64 / (rgba.len() / 4) as f64
}

fn sample_digest() -> Digest {
    let meta = |id: &str, title: &str| PaperMeta {
        arxiv_id: Some(id.parse().expect("id")),
        title: title.into(),
        authors: vec![
            "Shih-Yang Liu".into(),
            "Xin Dong".into(),
            "Nguyễn Văn An".into(),
        ],
        published: NaiveDate::from_ymd_opt(2026, 1, 8),
        github_repo: Some("https://github.com/NVlabs/GDPO".into()),
        origin: PaperOrigin::HuggingFace,
    };
    let summary = Summary {
        main_problem: "Các mô hình ngôn ngữ lớn cần căn chỉnh theo nhiều sở thích đa dạng của \
            con người, vượt ra ngoài độ chính xác."
            .into(),
        main_idea: "Bài báo giới thiệu GDPO, tách rời việc chuẩn hóa từng phần thưởng theo \
            nhóm trước khi tổng hợp."
            .into(),
        main_results: vec![
            "GDPO đạt độ chính xác cao hơn tới 6.3% so với GRPO trên các tác vụ toán học khó."
                .into(),
            "GDPO bảo tồn nhiều nhóm ưu thế riêng biệt hơn so với GRPO.".into(),
            "Huấn luyện hội tụ ổn định hơn trên ba tác vụ.".into(),
        ],
        conclusion: "GDPO là một giải pháp thay thế tốt hơn cho GRPO trong tối ưu hóa RL đa \
            phần thưởng."
            .into(),
        tags: vec![
            "RL".into(),
            "Multi-reward Optimization".into(),
            "GDPO".into(),
        ],
        paper_ideas: vec![
            "Ý tưởng 1.".into(),
            "Ý tưởng 2.".into(),
            "Ý tưởng 3.".into(),
        ],
        patent_ideas: vec![
            "Sáng chế 1.".into(),
            "Sáng chế 2.".into(),
            "Sáng chế 3.".into(),
        ],
    };
    Digest {
        date: NaiveDate::from_ymd_opt(2026, 1, 9).expect("date"),
        model: "qwen2.5-coder-1.5b-instruct".into(),
        lang: Lang::Vi,
        generated_at: NaiveDate::from_ymd_opt(2026, 1, 10)
            .and_then(|d| d.and_hms_opt(13, 28, 12))
            .expect("time"),
        papers: vec![
            PaperDigest {
                meta: meta(
                    "2601.05242",
                    "GDPO: Group reward-Decoupled Normalization Policy Optimization for \
                     Multi-reward RL Optimization",
                ),
                summary: Some(summary),
                error: None,
                timings: PaperTimings::default(),
                grounding: Some(Grounding {
                    numbers: 1,
                    grounded: 1,
                    regenerated: 0,
                }),
                language_fidelity: None,
            },
            PaperDigest {
                meta: meta("2601.05249", "RL-AWB: <Failed> paper"),
                summary: None,
                error: Some("the PDF could not be downloaded".into()),
                timings: PaperTimings::default(),
                grounding: None,
                language_fidelity: None,
            },
        ],
    }
}

#[test]
fn the_html_digest_renders_as_a_page_on_a_phone_and_a_desktop() {
    let dir = tempfile::tempdir().expect("tempdir");
    let page = dir.path().join("digest.html");
    std::fs::write(&page, to_html(&sample_digest())).expect("write page");
    let blank = dir.path().join("blank.html");
    std::fs::write(
        &blank,
        "<!DOCTYPE html><html><head><meta charset=\"utf-8\"></head><body></body></html>",
    )
    .expect("write blank page");

    let (w, h, blank_pixels) = screenshot(&blank, 390, 844);
    assert_eq!((w, h), (390, 844));
    let blank_ink = ink(&blank_pixels);
    assert!(blank_ink < 0.001, "a blank page measured {blank_ink}");

    for (width, height) in [(390, 844), (1280, 900)] {
        let (w, h, pixels) = screenshot(&page, width, height);
        assert_eq!((w, h), (width, height));
        let page_ink = ink(&pixels);
        eprintln!(
            "{width}x{height}: {:.1}% of pixels are not background",
            page_ink * 100.0
        );
        assert!(
            page_ink > 0.02,
            "the digest page looks blank at {width}x{height}: {page_ink}"
        );
        // Text fills the width of a phone screen but nothing runs off its right edge: the
        // last columns stay background.
        let right_edge_ink = (0..h as usize)
            .map(|y| &pixels[(y * w as usize + w as usize - 3) * 4..][..4])
            .filter(|px| px[..3].iter().any(|&c| c < 200))
            .count();
        assert!(
            right_edge_ink < h as usize / 50,
            "content reaches the right edge at {width}px: {right_edge_ink} rows"
        );
    }
}
