//! Starts each thread of the pool on a CPU of its own for a run over many
//! roots, and leaves it free to move from there.
//!
//! A scheduler may put a new or woken thread on a busy CPU while another
//! is idle: the kernel of the VM the benchmarks run on packs threads onto
//! fewer vCPUs (it has a `kernel.sched_vcpu_pack` setting), and in some
//! union runs it left both workers on one vCPU and the other idle for the
//! whole run, since busy threads that seldom sleep are not moved apart
//! again (ARCHITECTURE.md, *Performance*, thirty-second and thirty-sixth
//! stops). [`start_global`] starts the global pool with a start handler
//! that moves worker *i* to the *i*-th CPU the process may use (setting
//! its affinity to that CPU alone, which migrates the calling thread at
//! once) and then allows it every CPU again. Kept pinned, a worker beside
//! a busy process could not leave that process's CPU, and the process's
//! exit would wait for its turn there (runs ≈ 1.26× slower beside a
//! busy loop); started apart and left free, the workers stay apart while
//! they are busy and the kernel may still move them.
//!
//! Only when the pool has exactly one thread per allowed CPU (rayon's
//! default): with fewer threads (`RAYON_NUM_THREADS`, or a cgroup CPU
//! quota, which `std::thread::available_parallelism` counts) nothing says
//! which CPUs are free, and with more some must share one anyway. The
//! calling thread is never moved.

use rustix::thread::{sched_getaffinity, sched_setaffinity, CpuSet};

/// The CPU for each of `threads` pool threads, the *i*-th thread's at
/// index *i*: the `allowed` CPUs in order when there are exactly `threads`
/// of them and more than one; `None` leaves the threads where the kernel
/// starts them.
pub fn plan(allowed: &[usize], threads: usize) -> Option<Vec<usize>> {
    (threads > 1 && allowed.len() == threads).then(|| allowed.to_vec())
}

/// The CPUs the calling thread may run on (`None` if the kernel does not
/// say).
pub fn allowed() -> Option<CpuSet> {
    sched_getaffinity(None).ok()
}

/// The CPUs of `set`, in ascending order.
pub fn cpus(set: &CpuSet) -> Vec<usize> {
    (0..CpuSet::MAX_CPU).filter(|&c| set.is_set(c)).collect()
}

/// Allows the calling thread `cpu` alone, which moves it there before
/// this returns. False if the kernel refused (say for a CPU gone offline):
/// the thread is then where it was.
fn pin_to(cpu: usize) -> bool {
    let mut one = CpuSet::new();
    one.set(cpu);
    sched_setaffinity(None, &one).is_ok()
}

/// Moves the calling thread to `cpu` and then allows it `allowed` again
/// (widening the mask moves nothing: the thread stays on `cpu` until the
/// kernel has a reason to move it). Whether it was moved.
pub fn move_to(cpu: usize, allowed: &CpuSet) -> bool {
    let moved = pin_to(cpu);
    let _ = sched_setaffinity(None, allowed);
    moved
}

/// A pool builder whose threads start on the CPUs [`plan`] gives them,
/// given the CPUs the process may use (read once, before any thread
/// starts).
pub fn builder(allowed: CpuSet) -> rayon::ThreadPoolBuilder {
    builder_with(allowed, |_| {})
}

/// [`builder`], calling `while_pinned` with a thread's index while the
/// thread may run on its CPU alone (the threads it does not move never
/// call it).
fn builder_with(
    allowed: CpuSet,
    while_pinned: impl Fn(usize) + Send + Sync + 'static,
) -> rayon::ThreadPoolBuilder {
    let list = cpus(&allowed);
    rayon::ThreadPoolBuilder::new().start_handler(move |i| {
        // Inside a pool thread, the pool's own size.
        let n = rayon::current_num_threads();
        if let Some(cpu) = plan(&list, n).and_then(|p| p.get(i).copied()) {
            if pin_to(cpu) {
                while_pinned(i);
            }
            let _ = sched_setaffinity(None, &allowed);
        }
    })
}

/// Starts the global pool with its threads spread by [`plan`]. False if
/// the allowed CPUs are unknown or the global pool was already started (it
/// is then left as it is).
pub fn start_global() -> bool {
    allowed().is_some_and(|a| builder(a).build_global().is_ok())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_one_thread_per_allowed_cpu_is_placed() {
        assert_eq!(plan(&[0, 1], 2), Some(vec![0, 1]));
        assert_eq!(plan(&[3, 5, 9], 3), Some(vec![3, 5, 9]));
        // Fewer threads than CPUs: which ones are free is unknown.
        assert_eq!(plan(&[0, 1, 2, 3], 2), None);
        // More threads than CPUs: some share one anyway.
        assert_eq!(plan(&[0, 1], 4), None);
        // One thread: nothing to keep apart.
        assert_eq!(plan(&[7], 1), None);
        assert_eq!(plan(&[], 0), None);
    }

    /// The CPU the calling thread is running on, from
    /// `/proc/thread-self/stat` (its 39th field; the command name, field 2,
    /// is in parentheses and may hold spaces).
    fn current_cpu() -> usize {
        let stat = std::fs::read_to_string("/proc/thread-self/stat").unwrap();
        let rest = &stat[stat.rfind(')').unwrap() + 1..];
        rest.split_ascii_whitespace()
            .nth(36)
            .unwrap()
            .parse()
            .unwrap()
    }

    /// A thread moved to each allowed CPU in turn runs there while it is
    /// held there, and is allowed every CPU again afterwards.
    #[test]
    fn a_moved_thread_runs_on_its_cpu_and_is_freed() {
        let all = allowed().expect("the allowed CPUs");
        let list = cpus(&all);
        std::thread::scope(|s| {
            s.spawn(|| {
                for &cpu in &list {
                    assert!(pin_to(cpu));
                    assert_eq!(current_cpu(), cpu);
                    assert_eq!(allowed().map(|s| cpus(&s)), Some(vec![cpu]));
                    let _ = sched_setaffinity(None, &all);
                    assert!(move_to(cpu, &all));
                    assert_eq!(allowed().map(|s| cpus(&s)), Some(list.clone()));
                }
            });
        });
    }

    /// The threads of a pool of one thread per allowed CPU start on
    /// different CPUs and are then allowed all of them; those of a smaller
    /// pool are not moved; the calling thread is left alone.
    #[test]
    fn pool_threads_start_apart_and_are_freed() {
        let all = allowed().expect("the allowed CPUs");
        let list = cpus(&all);
        if list.len() < 2 {
            eprintln!(
                "skipped: this process may use {} CPU(s), needs 2",
                list.len()
            );
            return;
        }
        let started = |threads: usize| -> Vec<(usize, usize)> {
            let seen = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
            let log = seen.clone();
            let pool = builder_with(all, move |i| log.lock().unwrap().push((i, current_cpu())))
                .num_threads(threads)
                .build()
                .unwrap();
            // Every thread has run its start handler once it runs a job.
            let masks = pool.broadcast(|_| allowed().map(|s| cpus(&s)));
            assert!(masks.iter().all(|m| m.as_ref() == Some(&list)), "{masks:?}");
            let mut seen = seen.lock().unwrap().clone();
            seen.sort_unstable();
            seen
        };
        let want: Vec<(usize, usize)> = list.iter().copied().enumerate().collect();
        assert_eq!(started(list.len()), want);
        assert_eq!(started(list.len() - 1), Vec::new());
        assert_eq!(allowed().map(|s| cpus(&s)), Some(list));
    }
}
