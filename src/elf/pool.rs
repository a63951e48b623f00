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

use std::fs::File;

/// Buffers kept per thread.
const BUFFERS: usize = 8;
/// Buffers larger than this are not kept.
const MAX_BUFFER: usize = 1 << 20;
/// Bytes kept per thread, all buffers together.
const MAX_KEPT: usize = 4 << 20;

thread_local! {
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
        None if n > MAX_BUFFER => return super::read_vec_at(file, n, at),
        None => Vec::with_capacity(room(n)),
    };
    // Within the capacity: no reallocation, and only the bytes about to
    // be read over are cleared.
    if buf.len() < n {
        buf.resize(n, 0);
    }
    match std::os::unix::fs::FileExt::read_exact_at(file, &mut buf[..n], at) {
        Ok(()) => Ok(buf),
        Err(e) => {
            give(buf);
            Err(e)
        }
    }
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
