//! Progress events: how the library reports long work without printing.
//!
//! Owns the [`Observer`] trait. The library calls it; only the CLI decides
//! whether to show anything (an `indicatif` bar on a terminal). Also owns
//! [`timings`], the phase recorder behind `--timings`.

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

pub mod timings {
    //! `--timings`: where a run's time goes, phase by phase.
    //!
    //! A process-wide recorder. The library marks the end of each phase of a
    //! run ([`mark`]); until the command line turns recording on
    //! ([`start`]) a mark is one atomic load, so the marks can sit on the
    //! hot path. Each mark takes the wall time since the recorder was
    //! created ([`begin`], at the top of `main`), the CPU time of the whole
    //! process (every thread; `CLOCK_PROCESS_CPUTIME_ID`) and its minor page
    //! faults (field 10 of `/proc/self/stat`, the process's own statistics).
    //! The faults are read only when the sysroot is the host's `/`: with
    //! another sysroot nothing of the host is read (the contract), so that
    //! column stays empty.

    use std::sync::atomic::{AtomicBool, Ordering};
    use std::sync::{Mutex, OnceLock};
    use std::time::{Duration, Instant};

    /// One phase's end.
    #[derive(Debug, Clone)]
    pub struct Mark {
        /// What ended here.
        pub phase: &'static str,
        /// Wall time since [`begin`].
        pub wall: Duration,
        /// CPU time of the process since it started.
        pub cpu: Duration,
        /// Minor page faults of the process since it started, if known.
        pub faults: Option<u64>,
    }

    static ON: AtomicBool = AtomicBool::new(false);
    static FAULTS: AtomicBool = AtomicBool::new(false);
    static T0: OnceLock<Instant> = OnceLock::new();
    static MARKS: Mutex<Vec<Mark>> = Mutex::new(Vec::new());

    /// Sets the recorder's time zero (the first call wins). Cheap enough
    /// to call on every run.
    pub fn begin() {
        T0.get_or_init(Instant::now);
    }

    /// Turns recording on; what happened since [`begin`] (process
    /// start-up and argument parsing) is the first phase. `faults`:
    /// whether page faults may be read from `/proc` (only when the
    /// sysroot is the host's `/`).
    pub fn start(faults: bool) {
        begin();
        FAULTS.store(faults, Ordering::Relaxed);
        ON.store(true, Ordering::Relaxed);
        mark("start-up and arguments");
    }

    /// Runs `f` with recording off, so a step that runs phases of its
    /// own (the staged root's check builds a graph) shows as one row:
    /// the mark after it.
    pub fn quietly<T>(f: impl FnOnce() -> T) -> T {
        let was = ON.swap(false, Ordering::Relaxed);
        let out = f();
        ON.store(was, Ordering::Relaxed);
        out
    }

    /// Whether recording is on.
    pub fn on() -> bool {
        ON.load(Ordering::Relaxed)
    }

    /// Marks the end of `phase` (nothing unless recording).
    pub fn mark(phase: &'static str) {
        if !on() {
            return;
        }
        let wall = T0.get_or_init(Instant::now).elapsed();
        let t = rustix::time::clock_gettime(rustix::time::ClockId::ProcessCPUTime);
        let cpu = Duration::new(
            u64::try_from(t.tv_sec).unwrap_or(0),
            u32::try_from(t.tv_nsec).unwrap_or(0),
        );
        let faults = if FAULTS.load(Ordering::Relaxed) {
            minor_faults()
        } else {
            None
        };
        let mut marks = MARKS.lock().unwrap_or_else(|e| e.into_inner());
        marks.push(Mark {
            phase,
            wall,
            cpu,
            faults,
        });
    }

    /// The marks so far, in order.
    pub fn marks() -> Vec<Mark> {
        MARKS.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// The process's minor page faults, from `/proc/self/stat`.
    fn minor_faults() -> Option<u64> {
        let stat = std::fs::read("/proc/self/stat").ok()?;
        // The command name (field 2) is in parentheses and may hold
        // spaces: fields are counted after its closing one.
        let close = stat.iter().rposition(|&b| b == b')')?;
        let rest = std::str::from_utf8(&stat[close + 1..]).ok()?;
        rest.split_ascii_whitespace().nth(7)?.parse().ok()
    }

    /// Writes the table of [`marks`]: each phase's share of the wall
    /// time, CPU time and page faults (the first row includes what the
    /// process did before `main`: exec and dynamic loading).
    pub fn render(out: &mut dyn std::io::Write) -> std::io::Result<()> {
        let marks = marks();
        let Some(last) = marks.last() else {
            return Ok(());
        };
        let ms = |d: Duration| d.as_secs_f64() * 1e3;
        let faults = |n: Option<u64>| n.map_or_else(|| "-".to_string(), |n| n.to_string());
        writeln!(
            out,
            "timings: {:<24} {:>9} {:>9} {:>7}",
            "phase", "wall ms", "CPU ms", "faults"
        )?;
        let mut before: Option<&Mark> = None;
        for m in &marks {
            let (wall, cpu, flt) = match before {
                None => (m.wall, m.cpu, m.faults),
                Some(b) => (
                    m.wall.saturating_sub(b.wall),
                    m.cpu.saturating_sub(b.cpu),
                    m.faults.zip(b.faults).map(|(a, b)| a.saturating_sub(b)),
                ),
            };
            writeln!(
                out,
                "timings: {:<24} {:>9.3} {:>9.3} {:>7}",
                m.phase,
                ms(wall),
                ms(cpu),
                faults(flt)
            )?;
            before = Some(m);
        }
        writeln!(
            out,
            "timings: {:<24} {:>9.3} {:>9.3} {:>7}",
            "total (from main)",
            ms(last.wall),
            ms(last.cpu),
            faults(last.faults)
        )
    }
}
