//! Progress events: how the library reports long work without printing.
//!
//! Owns the [`Observer`] trait. The library calls it; only the CLI decides
//! whether to show anything (an `indicatif` bar on a terminal).

/// Receives progress of long operations. Every method has an empty default.
pub trait Observer: Sync {
    /// Staging starts: this many bytes of file content will be written.
    fn stage_start(&self, _files: usize, _bytes: u64) {}
    /// One more file of `bytes` bytes was written.
    fn stage_file(&self, _bytes: u64) {}
    /// Staging ended (successfully or not).
    fn stage_end(&self) {}
}

/// An observer that ignores everything.
#[derive(Debug, Default, Clone, Copy)]
pub struct NoopObserver;

impl Observer for NoopObserver {}
