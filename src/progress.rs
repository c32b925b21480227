//! What the user sees while a long step runs: one progress line per paper with its stage and
//! tokens/s on a terminal, nothing on a pipe or with `--quiet` (logs go through `tracing`), and
//! with `-v` the generated text streamed to stderr.

use std::io::{IsTerminal, Write};
use std::time::Duration;

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

use crate::digest::Observer;

/// How chatty the display is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Display {
    /// Progress bars and spinners (only drawn on a terminal).
    pub bars: bool,
    /// Stream generated text to stderr.
    pub stream_text: bool,
}

impl Display {
    /// Bars when stderr is a terminal and not quiet; streaming when asked.
    pub fn detect(quiet: bool, stream_text: bool) -> Display {
        Display {
            bars: !quiet && std::io::stderr().is_terminal(),
            stream_text: stream_text && !quiet,
        }
    }

    /// A spinner for a step of unknown length, hidden when bars are off.
    pub fn spinner(&self, message: impl Into<String>) -> ProgressBar {
        let bar = if self.bars && !self.stream_text {
            ProgressBar::new_spinner()
        } else {
            ProgressBar::with_draw_target(None, ProgressDrawTarget::hidden())
        };
        bar.set_style(
            ProgressStyle::with_template("{spinner} {prefix}{msg} [{elapsed}]")
                .unwrap_or_else(|_| ProgressStyle::default_spinner()),
        );
        bar.set_message(message.into());
        bar.enable_steady_tick(Duration::from_millis(120));
        bar
    }
}

/// Shows one paper's progress on a spinner, and streams text when asked.
pub struct PaperProgress {
    bar: ProgressBar,
    stream_text: bool,
    stage: String,
}

impl PaperProgress {
    pub fn new(display: &Display, prefix: String) -> PaperProgress {
        let bar = display.spinner("");
        bar.set_prefix(prefix);
        PaperProgress {
            bar,
            stream_text: display.stream_text,
            stage: String::new(),
        }
    }

    pub fn finish(&self, message: impl Into<String>) {
        self.bar.finish_with_message(message.into());
    }
}

impl Observer for PaperProgress {
    fn stage(&mut self, stage: &str) {
        tracing::info!(stage, "{}", self.bar.prefix());
        self.stage = stage.to_string();
        self.bar.set_message(stage.to_string());
        if self.stream_text {
            eprintln!("\n[{stage}]");
        }
    }

    fn generated(&mut self, tokens: usize, tok_s: f64) {
        self.bar
            .set_message(format!("{}: {tokens} tokens, {tok_s:.1} tok/s", self.stage));
    }

    fn cancelled(&self) -> bool {
        crate::resume::stop_requested()
    }

    fn text(&mut self, piece: &str) {
        if self.stream_text {
            let mut err = std::io::stderr().lock();
            let _ = err.write_all(piece.as_bytes());
            let _ = err.flush();
        }
    }
}
