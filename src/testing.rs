//! Helpers the tests share to put files on the disk: the unit tests of
//! `elf::pool` and `resolve`, and the integration tests of reads that wait
//! for the disk (`tests/disk.rs`, `tests/union.rs`). Not part of the
//! tool; public only so that the integration tests can use them.
//!
//! Pages are dropped with `POSIX_FADV_DONTNEED`, which needs no privilege.
//! Whether a page is in memory is asked with a one-byte read with
//! `RWF_NOWAIT`, the only way without mapping the file; when the page is
//! not there, that read starts the kernel reading it (and what follows it)
//! from the disk, so a file checked is a file no longer on the disk.

use std::io;
use std::path::Path;

/// Writes `path` out and drops its pages from the page cache. A page
/// another process holds, or one just being read, may stay.
pub fn evict(path: &Path) -> io::Result<()> {
    let f = std::fs::File::open(path)?;
    f.sync_all()?;
    rustix::fs::fadvise(&f, 0, None, rustix::fs::Advice::DontNeed)?;
    Ok(())
}

/// Whether the page of `path` at `offset` is in memory (see the module
/// docs: asking brings it in when it is not).
pub fn in_memory(path: &Path, offset: u64) -> io::Result<bool> {
    let f = std::fs::File::open(path)?;
    let mut b = [0u8; 1];
    match rustix::io::preadv2(
        &f,
        &mut [io::IoSliceMut::new(&mut b)],
        offset,
        rustix::io::ReadWriteFlags::NOWAIT,
    ) {
        Ok(n) => Ok(n == 1),
        Err(rustix::io::Errno::AGAIN) => Ok(false),
        Err(e) => Err(e.into()),
    }
}

/// Whether [`evict`] takes the pages of a file in `dir` out of memory (not
/// on `tmpfs`, say), tried on a file of its own that is then removed.
pub fn drops_pages(dir: &Path) -> bool {
    let probe = dir.join(".evict-probe");
    let dropped = std::fs::write(&probe, [1u8; 8192]).is_ok()
        && evict(&probe).is_ok()
        && in_memory(&probe, 0).is_ok_and(|m| !m);
    let _ = std::fs::remove_file(&probe);
    dropped
}
