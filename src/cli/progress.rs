//! An `indicatif` progress bar behind the library's `Observer`, shown only
//! on a terminal, without `--quiet`, and only for large staging jobs.

use std::io::IsTerminal;

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

use crate::observe::Observer;

/// Below this many bytes staging is quick enough to need no bar.
const MIN_BYTES: u64 = 64 << 20;

/// Shows staging progress on stderr.
#[derive(Debug)]
pub struct Progress {
    bar: ProgressBar,
    enabled: bool,
}

impl Progress {
    /// A bar that draws only if stderr is a terminal and `quiet` is false.
    pub fn new(quiet: bool) -> Self {
        Progress {
            bar: ProgressBar::hidden(),
            enabled: !quiet && std::io::stderr().is_terminal(),
        }
    }
}

impl Observer for Progress {
    fn stage_start(&self, _files: usize, bytes: u64) {
        if !self.enabled || bytes < MIN_BYTES {
            return;
        }
        self.bar.set_length(bytes);
        self.bar.set_style(
            ProgressStyle::with_template("staging {bar:40} {bytes}/{total_bytes} {eta}")
                .unwrap_or_else(|_| ProgressStyle::default_bar()),
        );
        self.bar.set_draw_target(ProgressDrawTarget::stderr());
    }
    fn stage_file(&self, bytes: u64) {
        self.bar.inc(bytes);
    }
    fn stage_end(&self) {
        self.bar.finish_and_clear();
    }
}
