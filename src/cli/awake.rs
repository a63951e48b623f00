//! Keeps one of the thread pool's workers awake between the parallel
//! phases of a long command line.
//!
//! A rayon worker that finds no work spins briefly and then sleeps, and on
//! a VM its vCPU halts; the next phase's first job wakes it, and the host
//! may take milliseconds to run that vCPU again (ARCHITECTURE.md,
//! *Performance*, thirty-third and thirty-fourth stops). [`KeepAwake`]
//! puts one job on the pool that, until it is dropped or has found no work
//! for a while, takes the pool's pending jobs itself ([`rayon::yield_now`])
//! and otherwise yields the CPU: that worker never sleeps between phases,
//! and work queued for the pool never waits for it.
//!
//! The job must be the first on a fresh pool (`cli::main` starts it right
//! after parsing the arguments): a worker that picked it up while waiting
//! inside a scope would hold that scope until the job ends, which the idle
//! limit bounds.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// How long the kept worker goes on without finding a job before it stops
/// keeping awake: longer than the serial steps between the phases of a
/// run (a fraction of a millisecond), short enough that the CPU it spends
/// after the last phase is small.
pub const IDLE_LIMIT: Duration = Duration::from_millis(2);

/// While alive, one worker of the current rayon pool stays awake (see the
/// module docs). Dropping it lets the worker go back to the pool.
#[derive(Debug)]
pub struct KeepAwake {
    state: Arc<State>,
}

#[derive(Debug, Default)]
struct State {
    /// Cleared by `Drop`.
    keep: AtomicBool,
    /// Whether the job is in its loop.
    running: AtomicBool,
    /// Jobs of the pool it ran.
    ran: AtomicUsize,
}

impl KeepAwake {
    /// Puts the keeping job on the current pool (the global one outside
    /// any pool); it stops after `idle` without a job to take.
    pub fn start(idle: Duration) -> KeepAwake {
        let state = Arc::new(State {
            keep: AtomicBool::new(true),
            ..State::default()
        });
        let job = state.clone();
        rayon::spawn(move || job.run(idle));
        KeepAwake { state }
    }

    /// Whether the keeping job is in its loop (tests).
    pub fn running(&self) -> bool {
        self.state.running.load(Ordering::Acquire)
    }

    /// How many of the pool's jobs the keeping job has run (tests).
    pub fn ran(&self) -> usize {
        self.state.ran.load(Ordering::Acquire)
    }
}

impl State {
    fn run(&self, idle: Duration) {
        self.running.store(true, Ordering::Release);
        let mut since = Instant::now();
        while self.keep.load(Ordering::Acquire) {
            if rayon::yield_now() == Some(rayon::Yield::Executed) {
                self.ran.fetch_add(1, Ordering::AcqRel);
                since = Instant::now();
            } else if since.elapsed() > idle {
                break;
            } else {
                std::thread::yield_now();
            }
        }
        self.running.store(false, Ordering::Release);
    }
}

impl Drop for KeepAwake {
    fn drop(&mut self) {
        self.state.keep.store(false, Ordering::Release);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::mpsc;

    fn wait_for(what: &str, f: impl Fn() -> bool) {
        let start = Instant::now();
        while !f() {
            assert!(start.elapsed() < Duration::from_secs(10), "{what}");
            std::thread::sleep(Duration::from_millis(1));
        }
    }

    /// A pool of its own, of `threads` threads, with the keeping job
    /// started on it (ending after `idle` without a job).
    fn kept(threads: usize, idle: Duration) -> (rayon::ThreadPool, KeepAwake) {
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(threads)
            .build()
            .unwrap();
        let keep = pool.install(|| KeepAwake::start(idle));
        (pool, keep)
    }

    /// On a pool of one thread, that thread is the kept worker: work put
    /// on the pool meanwhile runs only because the keeping job takes it.
    /// Dropping the handle ends the job.
    #[test]
    fn the_kept_worker_runs_the_pools_jobs_until_dropped() {
        let (pool, keep) = kept(1, Duration::from_secs(3600));
        wait_for("the keeping job starts", || keep.running());
        let (tx, rx) = mpsc::channel();
        for i in 0..10 {
            let tx = tx.clone();
            pool.spawn(move || {
                let _ = tx.send(i);
            });
        }
        let mut got: Vec<i32> = (0..10)
            .map(|_| rx.recv_timeout(Duration::from_secs(10)).unwrap())
            .collect();
        got.sort_unstable();
        assert_eq!(got, (0..10).collect::<Vec<_>>());
        // A job's message can arrive before the keeping job counts it.
        wait_for("the keeping job counts the ten jobs", || keep.ran() >= 10);
        assert!(keep.running());
        let state = keep.state.clone();
        drop(keep);
        wait_for("the keeping job ends", || {
            !state.running.load(Ordering::Acquire)
        });
        assert_eq!(pool.install(|| 7), 7);
    }

    /// A job that finds nothing to do for the idle limit ends by itself.
    #[test]
    fn the_keeping_job_ends_when_idle() {
        let (_pool, keep) = kept(2, Duration::from_millis(20));
        // The job holds a reference to the state until it returns.
        wait_for("the keeping job ends when idle", || {
            Arc::strong_count(&keep.state) == 1
        });
        assert!(!keep.running());
        assert!(keep.state.keep.load(Ordering::Acquire));
        assert_eq!(keep.ran(), 0);
    }
}
