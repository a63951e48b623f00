//! Per-thread read buffers, shared by the parse ([`super::parse`]) and the
//! symbol searches ([`super::symbols`]).
//!
//! A fresh allocation per read costs page faults (≈ 1.4–3.5 µs a page on
//! the benchmark VMs) and, when zeroed first, a `memset` that dwarfs the
//! read itself. So a read takes the smallest free buffer of this thread
//! whose capacity holds it, or else a new one ([`room`]: its size rounded
//! up to a power of two, at least a page). A buffer is zeroed only as far
//! as reads have reached into it (the crate has no `unsafe` with which to
//! read into uninitialised memory), so only the pages read into are
//! touched. A new buffer used to be allocated zeroed over its whole
//! capacity, and mimalloc clears such a block with a `memset` unless it
//! knows its page fresh: callgrind counted ≈ 95,000 instructions of
//! `memset` in a one-program run then, ≈ 50,000 now (the bytes then read
//! over). A buffer given back is kept for the next read. Buffers of exactly the size read
//! made each slightly larger read miss the pool and take fresh memory of
//! yet another size class (rounding saves ≈ 30 of a whole-`/usr/bin`
//! run's ≈ 1,700 page faults). A read larger than [`MAX_BUFFER`] gets a buffer of exactly its
//! size, read into without zeroing (it is not kept). At most
//! [`BUFFERS`] buffers of at most [`MAX_BUFFER`] bytes of capacity each, [`MAX_KEPT`]
//! bytes in all, are kept per thread (memory stays flat); when all places
//! are taken, a buffer given back replaces the smallest kept one if it is
//! larger, so the pool comes to hold the sizes that large tables need
//! instead of dropping them.
//!
//! A file's first read ([`take_first`]) also tells whether the page cache
//! held its bytes: it asks with `RWF_NOWAIT` first, and when that comes up
//! short it sets the thread's [`waited`] flag before reading the rest the
//! usual way. The read-ahead of [`crate::resolve`] watches the flag to put
//! more reads in flight when the files are on the disk, not in memory.

use std::fs::File;

/// Buffers kept per thread.
const BUFFERS: usize = 8;
/// Buffers larger than this are not kept.
const MAX_BUFFER: usize = 1 << 20;
/// Bytes kept per thread, all buffers together.
const MAX_KEPT: usize = 4 << 20;

thread_local! {
    /// Set when a [`take_first`] on this thread found bytes outside the
    /// page cache; read and cleared by [`waited`].
    static WAITED: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
    /// The last 32 [`take_first`]s on this thread, newest in the lowest
    /// bit: 1 for one that waited ([`recent_waits`]).
    static RECENT: std::cell::Cell<u32> = const { std::cell::Cell::new(0) };
    /// Set while this thread reads files it expects on the disk
    /// ([`OnDisk`]).
    static ON_DISK: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
    static POOL: std::cell::RefCell<Vec<Vec<u8>>> = const { std::cell::RefCell::new(Vec::new()) };
}

/// Smallest buffer made.
const MIN_ROOM: usize = 4 << 10;

/// The size of a new buffer for a read of `n` bytes (at most
/// [`MAX_BUFFER`]).
fn room(n: usize) -> usize {
    n.next_power_of_two().clamp(MIN_ROOM, MAX_BUFFER)
}

/// `n` bytes of `file` at `at`, in the first `n` bytes of a buffer of at
/// least `n` (its bytes beyond `n`, if any, are whatever the last user
/// left). An error when the file ends first.
pub(crate) fn take(file: &File, n: usize, at: u64) -> std::io::Result<Vec<u8>> {
    let Some(mut buf) = pick(n) else {
        return super::read_vec_at(file, n, at);
    };
    match std::os::unix::fs::FileExt::read_exact_at(file, &mut buf[..n], at) {
        Ok(()) => Ok(buf),
        Err(e) => {
            give(buf);
            Err(e)
        }
    }
}

/// [`take`] for the first read of a file, which also notes whether it
/// waited for the disk. The bytes are asked for with `RWF_NOWAIT`, which
/// copies only what the page cache holds; when that falls short the
/// thread's [`waited`] flag is set and the rest is read the usual way. A
/// kernel or file system without `RWF_NOWAIT` refuses the flag: the read
/// is then made as by [`take`] and nothing is noted.
pub(crate) fn take_first(file: &File, n: usize, at: u64) -> std::io::Result<Vec<u8>> {
    let Some(mut buf) = pick(n) else {
        return super::read_vec_at(file, n, at);
    };
    if ON_DISK.get() {
        // Only the pages asked for from now on (see `OnDisk`).
        let _ = rustix::fs::fadvise(file, 0, None, rustix::fs::Advice::Random);
    }
    let got = match rustix::io::preadv2(
        file,
        &mut [std::io::IoSliceMut::new(&mut buf[..n])],
        at,
        rustix::io::ReadWriteFlags::NOWAIT,
    ) {
        Ok(got) => got,
        Err(rustix::io::Errno::AGAIN) => 0,
        Err(_) => {
            // Unsupported here: no answer, and no flag.
            return match std::os::unix::fs::FileExt::read_exact_at(file, &mut buf[..n], at) {
                Ok(()) => Ok(buf),
                Err(e) => {
                    give(buf);
                    Err(e)
                }
            };
        }
    };
    RECENT.set(RECENT.get() << 1 | u32::from(got < n));
    if got < n {
        WAITED.with(|w| w.set(true));
        let rest = &mut buf[got..n];
        if let Err(e) = std::os::unix::fs::FileExt::read_exact_at(file, rest, at + got as u64) {
            give(buf);
            return Err(e);
        }
    }
    Ok(buf)
}

/// While alive, the files this thread opens are expected on the disk:
/// [`take_first`] marks each for random access (`POSIX_FADV_RANDOM`)
/// before its first read, so the kernel reads the pages asked for and no
/// more. Its read-ahead, which starts at 16 KiB for a file's first small
/// read and again at each distant offset, fetched about three times the
/// bytes the parse uses (the union with the page cache dropped: 63 MB
/// instead of 21 MB, and 62 instead of 47 ms). Dropping it restores the
/// thread's earlier state.
pub(crate) struct OnDisk {
    was: bool,
}

impl OnDisk {
    pub(crate) fn enter() -> OnDisk {
        OnDisk {
            was: ON_DISK.replace(true),
        }
    }
}

impl Drop for OnDisk {
    fn drop(&mut self) {
        ON_DISK.set(self.was);
    }
}

/// Whether a [`take_first`] on this thread found bytes outside the page
/// cache since the last call; clears the flag.
pub(crate) fn waited() -> bool {
    WAITED.with(|w| w.replace(false))
}

/// How many of the last 32 [`take_first`]s on this thread (since
/// [`forget_recent`]) found bytes outside the page cache: a few files
/// paged out of a warm set make a few, files on the disk most.
pub(crate) fn recent_waits() -> u32 {
    RECENT.get().count_ones()
}

/// Clears what [`recent_waits`] counts, and the [`waited`] flag.
pub(crate) fn forget_recent() {
    RECENT.set(0);
    WAITED.set(false);
}

/// A buffer of at least `n` bytes whose first `n` may be read over: the
/// smallest of this thread's pool that holds them, else a new one; None
/// when `n` is beyond [`MAX_BUFFER`] and no kept buffer holds it.
fn pick(n: usize) -> Option<Vec<u8>> {
    let pooled = POOL.with(|p| {
        let mut p = p.borrow_mut();
        // The smallest that fits: a small read must not take the buffer a
        // large one needs next.
        let (i, _) = p
            .iter()
            .enumerate()
            .filter(|(_, b)| b.capacity() >= n)
            .min_by_key(|(_, b)| b.capacity())?;
        Some(p.swap_remove(i))
    });
    let mut buf = match pooled {
        Some(buf) => buf,
        None if n > MAX_BUFFER => return None,
        None => Vec::with_capacity(room(n)),
    };
    // Within the capacity: no reallocation, and only the bytes about to
    // be read over are cleared.
    if buf.len() < n {
        buf.resize(n, 0);
    }
    Some(buf)
}

/// Keeps `buf` for a later [`take`] on this thread: in a free place, or
/// in place of the smallest kept buffer when it is larger (all places
/// taken, or the bytes kept would pass [`MAX_KEPT`]); else it is freed.
pub(crate) fn give(buf: Vec<u8>) {
    let size = buf.capacity();
    if size == 0 || size > MAX_BUFFER {
        return;
    }
    // During thread teardown the pool may be gone: the buffer is freed.
    let _ = POOL.try_with(|p| {
        let mut p = p.borrow_mut();
        let kept: usize = p.iter().map(Vec::capacity).sum();
        if p.len() < BUFFERS && kept + size <= MAX_KEPT {
            p.push(buf);
            return;
        }
        let smallest = p.iter().enumerate().min_by_key(|(_, b)| b.capacity());
        if let Some((i, old)) = smallest {
            if old.capacity() < size && kept - old.capacity() + size <= MAX_KEPT {
                p[i] = buf;
            }
        }
    });
}

/// `n` bytes read through the pool; the buffer goes back to this thread's
/// pool when dropped. The default holds no bytes.
#[derive(Default)]
pub(crate) struct Pooled {
    buf: Vec<u8>,
    n: usize,
}

impl Pooled {
    /// `n` bytes of `file` at `at` ([`take`]).
    pub(crate) fn read(file: &File, n: usize, at: u64) -> std::io::Result<Pooled> {
        take(file, n, at).map(|buf| Pooled { buf, n })
    }
}

impl std::ops::Deref for Pooled {
    type Target = [u8];
    fn deref(&self) -> &[u8] {
        &self.buf[..self.n]
    }
}

impl Drop for Pooled {
    fn drop(&mut self) {
        give(std::mem::take(&mut self.buf));
    }
}

/// Test helpers for reads that wait for the disk.
#[cfg(test)]
pub(crate) mod cold {
    use std::path::Path;

    /// A temporary directory on the disk the crate was built on (beneath
    /// its `target`), not the system's temporary directory, which may be
    /// `tmpfs` (whose pages never leave memory); unless it cannot be made
    /// there (a checkout the test's user cannot write) or files there
    /// stay in memory after `POSIX_FADV_DONTNEED`: then the test says it
    /// skips.
    pub(crate) fn disk_dir_or_skip() -> Option<tempfile::TempDir> {
        let target = Path::new(env!("CARGO_MANIFEST_DIR")).join("target");
        let made = std::fs::create_dir_all(&target).and_then(|()| {
            tempfile::Builder::new()
                .prefix("closure-cold")
                .tempdir_in(&target)
        });
        let dir = match made {
            Ok(dir) => dir,
            Err(e) => {
                eprintln!("skipped: no directory beneath {}: {e}", target.display());
                return None;
            }
        };
        if crate::testing::drops_pages(dir.path()) {
            return Some(dir);
        }
        eprintln!(
            "skipped: files in {} stay in memory after POSIX_FADV_DONTNEED (tmpfs?)",
            dir.path().display()
        );
        None
    }

    /// Drops `path`'s pages from the page cache.
    pub(crate) fn evict(path: &Path) {
        crate::testing::evict(path).unwrap();
    }

    /// Whether the page of `path` at `offset` is in memory.
    pub(crate) fn in_memory(path: &Path, offset: u64) -> bool {
        crate::testing::in_memory(path, offset).unwrap()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    fn file_of(bytes: &[u8]) -> (std::path::PathBuf, File) {
        let path = std::env::temp_dir().join(format!(
            "closure-pool-{}-{:?}",
            std::process::id(),
            std::thread::current().id()
        ));
        std::fs::File::create(&path)
            .unwrap()
            .write_all(bytes)
            .unwrap();
        let f = File::open(&path).unwrap();
        (path, f)
    }

    #[test]
    fn a_first_read_says_when_it_waited_for_the_disk() {
        let Some(dir) = cold::disk_dir_or_skip() else {
            return;
        };
        let path = dir.path().join("f");
        let data: Vec<u8> = (0..1_000_000u32).map(|i| (i % 253) as u8).collect();
        std::fs::write(&path, &data).unwrap();
        let f = File::open(&path).unwrap();
        // A page or two may stay behind (held for a moment elsewhere):
        // a few tries.
        let from_disk = |read: &dyn Fn()| {
            (0..5).any(|_| {
                cold::evict(&path);
                waited();
                read();
                waited()
            })
        };
        // From the disk: the bytes, and the flag (cleared once read).
        forget_recent();
        assert!(from_disk(&|| {
            let b = take_first(&f, 2_000, 3_000).unwrap();
            assert_eq!(&b[..2_000], &data[3_000..5_000]);
            give(b);
        }));
        assert!(!waited());
        assert!(recent_waits() >= 1, "counted among the recent first reads");
        // In memory now: the same bytes, no flag.
        let b = take_first(&f, 2_000, 3_000).unwrap();
        assert_eq!(&b[..2_000], &data[3_000..5_000]);
        give(b);
        assert!(!waited());
        // A plain read from the disk sets no flag.
        assert!(!from_disk(&|| drop(Pooled::read(&f, 100, 40_000).unwrap())));
        // Partly in memory (the head, and what the kernel read ahead of
        // it): the rest is read, and the flag is set.
        assert!(from_disk(&|| {
            drop(Pooled::read(&f, 4_096, 0).unwrap());
            let b = take_first(&f, 900_000, 0).unwrap();
            assert_eq!(&b[..900_000], &data[..900_000]);
            give(b);
        }));
        // Past the end: an error.
        assert!(take_first(&f, 10, 999_995).is_err());
        // The count is of the last 32 first reads: 32 from memory push
        // the waits out.
        for _ in 0..32 {
            give(take_first(&f, 100, 0).unwrap());
        }
        assert_eq!(recent_waits(), 0);
        forget_recent();
        assert!(!waited());
    }

    /// With [`OnDisk`], a first read from the disk fetches the pages
    /// asked for, not the kernel's read-ahead window after them.
    #[test]
    fn reads_on_the_disk_fetch_only_the_pages_asked_for() {
        let Some(dir) = cold::disk_dir_or_skip() else {
            return;
        };
        let path = dir.path().join("f");
        std::fs::write(&path, vec![5u8; 1 << 20]).unwrap();
        // Whether the third page came in with a first read of the
        // first page (each time with the file just opened: the access
        // pattern belongs to the open file).
        let third_page_read = |on_disk: bool| {
            cold::evict(&path);
            let f = File::open(&path).unwrap();
            let guard = on_disk.then(OnDisk::enter);
            give(take_first(&f, 2_048, 0).unwrap());
            drop(guard);
            waited();
            cold::in_memory(&path, 2 * 4096)
        };
        // On the disk first: a plain read's read-ahead may still be in
        // flight when the next eviction runs, and land after it.
        let on_disk = third_page_read(true);
        if !third_page_read(false) {
            eprintln!("skipped: this kernel reads no further than a first read asks here");
            return;
        }
        assert!(!on_disk, "read ahead of a file expected on the disk");
        assert!(!ON_DISK.get(), "the guard restores the thread's state");
    }

    #[test]
    fn reads_through_reused_buffers_hold_exactly_the_range() {
        let data: Vec<u8> = (0..20_000u32).map(|i| (i % 251) as u8).collect();
        let (path, f) = file_of(&data);
        // A large read, then smaller ones into the buffer it gave back:
        // each sees exactly its own range, never the bytes left beyond it.
        for (n, at) in [(9_000, 100), (10, 5), (4_000, 16_000), (1, 19_999), (0, 0)] {
            let b = Pooled::read(&f, n, at as u64).unwrap();
            assert_eq!(&*b, &data[at..at + n], "{n} bytes at {at}");
        }
        // Past the end: an error, and the buffer taken is not lost.
        assert!(Pooled::read(&f, 10, 19_995).is_err());
        let kept = POOL.with(|p| p.borrow().iter().map(Vec::capacity).max());
        assert_eq!(kept, Some(16 << 10), "9,000 rounded up to a power of two");
        std::fs::remove_file(path).unwrap();
    }

    #[test]
    fn a_buffer_is_cleared_only_as_far_as_reads_reach() {
        std::thread::spawn(|| {
            let data = vec![7u8; 40_000];
            let (path, f) = file_of(&data);
            // A fresh pool: the first read makes a 64 KiB buffer, of which
            // only the 33,000 bytes read are written (zeroed, then read
            // over); a later, shorter read clears nothing more, a longer
            // one only up to its own end.
            let reached = || {
                POOL.with(|p| {
                    p.borrow()
                        .iter()
                        .map(|b| (b.len(), b.capacity()))
                        .collect::<Vec<_>>()
                })
            };
            drop(Pooled::read(&f, 33_000, 0).unwrap());
            assert_eq!(reached(), vec![(33_000, 64 << 10)]);
            drop(Pooled::read(&f, 100, 10).unwrap());
            assert_eq!(reached(), vec![(33_000, 64 << 10)]);
            drop(Pooled::read(&f, 39_000, 1_000).unwrap());
            assert_eq!(reached(), vec![(39_000, 64 << 10)]);
            std::fs::remove_file(path).unwrap();
        })
        .join()
        .unwrap();
    }

    #[test]
    fn a_pooled_buffer_of_less_capacity_is_not_taken() {
        std::thread::spawn(|| {
            let data: Vec<u8> = (0..70_000u32).map(|i| (i % 13) as u8).collect();
            let (path, f) = file_of(&data);
            give(vec![1; 5_000]);
            // Its length was written over; a read of more than it holds
            // takes a new buffer.
            let b = Pooled::read(&f, 6_000, 64_000).unwrap();
            assert_eq!(&*b, &data[64_000..]);
            drop(b);
            let mut caps: Vec<usize> =
                POOL.with(|p| p.borrow().iter().map(Vec::capacity).collect());
            caps.sort_unstable();
            assert_eq!(caps, vec![5_000, 8 << 10]);
            std::fs::remove_file(path).unwrap();
        })
        .join()
        .unwrap();
    }

    #[test]
    fn a_full_pool_keeps_the_largest_buffers() {
        // Its own thread: a fresh pool.
        std::thread::spawn(|| {
            for len in 1..=BUFFERS {
                give(vec![0; len * 100]);
            }
            give(vec![0; 50]); // smaller than every kept one: dropped
            give(vec![0; 5_000]); // replaces the smallest (100)
            give(vec![0; MAX_BUFFER + 1]); // too large to keep
            let mut kept: Vec<usize> =
                POOL.with(|p| p.borrow().iter().map(Vec::capacity).collect());
            kept.sort_unstable();
            let mut want: Vec<usize> = (2..=BUFFERS).map(|l| l * 100).collect();
            want.push(5_000);
            assert_eq!(kept, want);
        })
        .join()
        .unwrap();
    }

    #[test]
    fn the_bytes_kept_stay_within_the_bound() {
        std::thread::spawn(|| {
            // Buffers of the largest kept size fill the budget, not every place.
            for _ in 0..BUFFERS {
                give(vec![0; MAX_BUFFER]);
            }
            let lens =
                || -> Vec<usize> { POOL.with(|p| p.borrow().iter().map(Vec::capacity).collect()) };
            assert_eq!(lens(), vec![MAX_BUFFER; MAX_KEPT / MAX_BUFFER]);
            // A small one does not fit either, nor replace a larger one.
            give(vec![0; 10]);
            assert_eq!(lens().iter().sum::<usize>(), MAX_KEPT);
            assert!(!lens().contains(&10));
        })
        .join()
        .unwrap();
    }
}
