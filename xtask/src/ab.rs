//! `cargo xtask ab [RUNS] [--files LIST] BIN...`: compares builds on the
//! union run.
//!
//! Each binary traces every program of `target/bench/programs.txt` (the
//! list `cargo xtask bench` writes), or of LIST (one path a line: a single
//! program compares the one-program run), in one call, `--format list`; `libtree`
//! as a BIN runs `libtree -p` on the same files. The binaries take turns
//! one run at a time (the order reversed every other round), so a machine
//! whose speed drifts — the benchmark VM drifts by 10-20% within an hour —
//! slows each of them alike, which back-to-back blocks of runs do not.
//! Each binary runs from a copy made at the start into `target/ab/` (all
//! copies together: the same bytes in files made at different times can
//! run a short command 4-7% apart on the benchmark VM).
//! Prints each binary's median, quartiles and ratio to the first one, its
//! mean, 90th percentile and how many runs took over 1.2× its median (a
//! program whose threads wait for each other can have a fast median and
//! slow outliers, which a mean of a few runs picks up), and
//! for the others a 95% interval of that ratio (the rounds resampled, so a
//! ratio "at the edge" is told apart from one that is clearly over or
//! under) and the median of the per-round ratios.

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Instant;

/// The union run of `bin`, without the `LD_LIBRARY_PATH` that `cargo run`
/// (so `cargo xtask`) sets: libtree searches it (≈ 25% slower), closure
/// does not (as in `bench`).
fn command(bin: &str, files: &[String]) -> Command {
    let mut c;
    if bin == "libtree" {
        c = Command::new("libtree");
        c.arg("-p").args(files);
    } else {
        c = Command::new(bin);
        for f in files {
            c.arg("--root").arg(f);
        }
        c.args(["--format", "list"]);
    }
    c.env_remove("LD_LIBRARY_PATH");
    c
}

/// One run of `bin` in milliseconds, or why it failed.
fn once(bin: &str, files: &[String]) -> Result<f64, String> {
    let start = Instant::now();
    let status = command(bin, files)
        .stdout(Stdio::null())
        .status()
        .map_err(|e| format!("{bin}: {e}"))?;
    let ms = start.elapsed().as_secs_f64() * 1000.0;
    if status.success() {
        Ok(ms)
    } else {
        Err(format!("{bin}: {status}"))
    }
}

/// The value below which a `q` share of the sorted `v` lies.
/// What a binary's row says about its times (ms): median, quartiles,
/// mean, 90th percentile, and how many runs took over 1.2× the median.
#[derive(Debug, PartialEq)]
struct Row {
    median: f64,
    quartiles: (f64, f64),
    mean: f64,
    p90: f64,
    slow: usize,
}

impl Row {
    /// The row of `times` (at least one).
    fn of(times: &[f64]) -> Row {
        let mut t = times.to_vec();
        t.sort_by(f64::total_cmp);
        let median = quantile(&t, 0.5);
        Row {
            median,
            quartiles: (quantile(&t, 0.25), quantile(&t, 0.75)),
            mean: t.iter().sum::<f64>() / t.len() as f64,
            p90: quantile(&t, 0.9),
            slow: t.iter().filter(|&&x| x > 1.2 * median).count(),
        }
    }
}

fn quantile(v: &[f64], q: f64) -> f64 {
    let i = ((v.len() - 1) as f64 * q).round() as usize;
    v[i]
}

/// RUNS, the `--files` list and the binaries of `ab`'s command line.
fn parse_args(args: &[String]) -> Result<(usize, Option<&str>, Vec<&str>), String> {
    let mut runs = None;
    let mut list = None;
    let mut bins = Vec::new();
    let mut it = args.iter();
    while let Some(a) = it.next() {
        if a == "--files" {
            list = Some(it.next().ok_or("--files needs a path")?.as_str());
        } else if let (None, true, Ok(n)) = (runs, bins.is_empty(), a.parse::<usize>()) {
            runs = Some(n.max(1));
        } else {
            bins.push(a.as_str());
        }
    }
    if bins.is_empty() {
        return Err("no binary given".into());
    }
    Ok((runs.unwrap_or(100), list, bins))
}

pub fn run(args: &[String]) -> bool {
    let (runs, given, bins) = match parse_args(args) {
        Ok(p) => p,
        Err(e) => {
            eprintln!("xtask: ab: {e}\nusage: cargo xtask ab [RUNS] [--files LIST] BIN... (BIN may be `libtree`)");
            return false;
        }
    };
    let bins: Vec<String> = bins.into_iter().map(String::from).collect();
    let bins = &bins[..];
    let list = match given {
        Some(l) => Path::new(l).to_path_buf(),
        None => Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/bench/programs.txt"),
    };
    let Ok(text) = std::fs::read_to_string(&list) else {
        eprintln!(
            "xtask: {} cannot be read{}",
            list.display(),
            if given.is_none() {
                ": run `cargo xtask bench` first, or give `--files LIST`"
            } else {
                ""
            }
        );
        return false;
    };
    let files: Vec<String> = text
        .lines()
        .filter(|l| !l.is_empty())
        .map(String::from)
        .collect();
    eprintln!(
        "xtask: {} programs, {runs} interleaved runs of each of {}",
        files.len(),
        bins.join(", ")
    );
    // Fresh copies made together: two files with the same bytes can run a
    // short command 4-7% apart on the benchmark VM (docs/benchmarks.md).
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/ab");
    let runnable = match fresh_copies(bins, &dir) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("xtask: {e}");
            return false;
        }
    };
    let before = kernel_costs(Path::new(&files[0]));
    let times = match interleaved(&runnable, &files, runs) {
        Ok(t) => t,
        Err(e) => {
            eprintln!("xtask: {e}");
            return false;
        }
    };
    let after = kernel_costs(Path::new(&files[0]));
    let memory = memory_costs();
    println!(
        "machine: a fresh page touched {:.2} µs, a path looked up {:.2} µs before the set; \
         {:.2} and {:.2} µs after; {}",
        before.0,
        before.1,
        after.0,
        after.1,
        memory.describe()
    );
    let mut first = None;
    for (i, bin) in bins.iter().enumerate() {
        let r = Row::of(&times[i]);
        let base = *first.get_or_insert(r.median);
        println!(
            "{bin}: median {:.2} ms (quartiles {:.2}–{:.2}), {:.3}× the first; \
             mean {:.2} ms, 90th percentile {:.2} ms, {} of {} runs over 1.2× the median",
            r.median,
            r.quartiles.0,
            r.quartiles.1,
            r.median / base,
            r.mean,
            r.p90,
            r.slow,
            times[i].len()
        );
        if i > 0 {
            let (lo, hi) = ratio_interval(&times[0], &times[i]);
            let mut paired: Vec<f64> = times[i].iter().zip(&times[0]).map(|(a, b)| a / b).collect();
            paired.sort_by(f64::total_cmp);
            println!(
                "  ratio to the first: 95% interval {lo:.3}–{hi:.3}× (rounds resampled); \
                 median of the per-round ratios {:.3}×",
                quantile(&paired, 0.5)
            );
        }
    }
    true
}

/// What the machine charges now, in µs, for the two kernel costs a union
/// run pays most: a page of fresh memory touched for the first time (its
/// page fault: ≈ 2,300 a run for `closure`, ≈ 110 for `libtree`) and a
/// path looked up (`lstat` of `path`; ≈ 1,250 for `closure`, ≈ 4,000 for
/// `libtree`). The benchmark VM's page faults cost 2.5–3.5 µs and drift with
/// its speed; printed with each set so a ratio can be read against them.
pub fn kernel_costs(path: &Path) -> (f64, f64) {
    // Above glibc's largest mmap threshold (32 MiB), so every allocation is
    // a fresh mapping that `calloc` need not clear: the writes take the
    // faults.
    const BYTES: usize = 40 << 20;
    let mut faults: Vec<f64> = (0..3).map(|_| touch_pages(&mut vec![0u8; BYTES])).collect();
    const LOOKUPS: u32 = 20_000;
    let start = Instant::now();
    for _ in 0..LOOKUPS {
        std::hint::black_box(std::fs::symlink_metadata(path).is_ok());
    }
    let lookup = start.elapsed().as_secs_f64() * 1e6 / f64::from(LOOKUPS);
    (median_of(&mut faults), lookup)
}

/// What memory costs user-mode code now: a dependent load from a 16 MiB
/// block (past the private caches: about the last-level cache's latency
/// when this VM has that cache to itself), and a cache line passed back
/// and forth between two threads. In the benchmark VM's slow spells both
/// grow several times over while page faults and system calls do not, and
/// `closure`'s user time doubles (ARCHITECTURE.md, *thirty-fourth stop*):
/// printed with each set so a ratio can be read against them.
#[derive(Debug, Clone, Copy)]
pub struct MemoryCosts {
    /// ns per load, chasing a random cycle through 16 MiB.
    pub load_16m: f64,
    /// ns per round trip of a cache line between two threads.
    pub round_trip: f64,
}

impl MemoryCosts {
    /// One clause for a machine line.
    pub fn describe(&self) -> String {
        format!(
            "a load from 16 MiB {:.1} ns, a cache line between two threads {:.0} ns",
            self.load_16m, self.round_trip
        )
    }
}

/// Measures [`MemoryCosts`] (≈ 0.1–0.3 s).
pub fn memory_costs() -> MemoryCosts {
    MemoryCosts {
        load_16m: chase_ns(16 << 20, 2_000_000),
        round_trip: round_trip_ns(20_000),
    }
}

/// ns per load following one random cycle through a block of `bytes`
/// (Sattolo's shuffle of the indices; a fixed generator, so every call
/// walks the same cycle).
fn chase_ns(bytes: usize, loads: u32) -> f64 {
    let n = (bytes / std::mem::size_of::<usize>()).max(2);
    let mut next: Vec<usize> = (0..n).collect();
    let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
    for i in (1..n).rev() {
        x = x
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        let j = usize::try_from(x >> 33).unwrap_or(0) % i;
        next.swap(i, j);
    }
    let mut at = 0;
    let start = Instant::now();
    for _ in 0..loads {
        at = next[at];
    }
    std::hint::black_box(at);
    start.elapsed().as_secs_f64() * 1e9 / f64::from(loads)
}

/// ns per round trip of one atomic counter between two threads, each
/// adding one when it is its turn (spinning, yielding now and then so a
/// machine with one CPU still finishes).
fn round_trip_ns(trips: u64) -> f64 {
    use std::sync::atomic::{AtomicU64, Ordering};
    let turn = AtomicU64::new(0);
    let play = |me: u64| {
        for _ in 0..trips {
            let mut spins = 0u32;
            while turn.load(Ordering::Acquire) % 2 != me {
                spins += 1;
                if spins.is_multiple_of(1024) {
                    std::thread::yield_now();
                } else {
                    std::hint::spin_loop();
                }
            }
            turn.fetch_add(1, Ordering::AcqRel);
        }
    };
    let start = Instant::now();
    std::thread::scope(|s| {
        s.spawn(|| play(1));
        play(0);
    });
    start.elapsed().as_secs_f64() * 1e9 / trips as f64
}

/// Writes one byte in each 4 KiB page of `buf`: µs per page.
fn touch_pages(buf: &mut [u8]) -> f64 {
    const PAGE: usize = 4096;
    let start = Instant::now();
    for page in buf.chunks_mut(PAGE) {
        page[0] = page[0].wrapping_add(1);
    }
    let us = start.elapsed().as_secs_f64() * 1e6 / buf.len().div_ceil(PAGE) as f64;
    std::hint::black_box(&buf);
    us
}

/// Copies of `bins` (but `libtree`) made one after the other into `dir`,
/// which is emptied first: the paths to run. Each copy keeps the file name
/// after an index, so two builds of the same name stay apart.
pub fn fresh_copies(bins: &[String], dir: &Path) -> Result<Vec<String>, String> {
    let _ = std::fs::remove_dir_all(dir);
    std::fs::create_dir_all(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    bins.iter()
        .enumerate()
        .map(|(i, bin)| {
            if bin == "libtree" {
                return Ok(bin.clone());
            }
            let name = Path::new(bin)
                .file_name()
                .map_or_else(|| "bin".into(), |n| n.to_string_lossy().into_owned());
            let copy = dir.join(format!("{i}-{name}"));
            std::fs::copy(bin, &copy).map_err(|e| format!("copy {bin}: {e}"))?;
            Ok(copy.display().to_string())
        })
        .collect()
}

/// `runs` union runs of each of `bins` on `files`, taking turns one run
/// at a time (the order reversed every other round), after three rounds
/// that warm the page cache: each binary's times in milliseconds, by round.
pub fn interleaved(
    bins: &[String],
    files: &[String],
    runs: usize,
) -> Result<Vec<Vec<f64>>, String> {
    let mut times: Vec<Vec<f64>> = vec![Vec::new(); bins.len()];
    for round in 0..runs + 3 {
        let mut order: Vec<usize> = (0..bins.len()).collect();
        if round % 2 == 1 {
            order.reverse();
        }
        for i in order {
            let ms = once(&bins[i], files)?;
            if round >= 3 {
                times[i].push(ms);
            }
        }
    }
    Ok(times)
}

/// The median of `b` over the median of `a` (times of the same rounds),
/// with its 95% interval ([`ratio_interval`]).
pub fn ratio_of_medians(a: &[f64], b: &[f64]) -> (f64, f64, f64) {
    let (mut sa, mut sb) = (a.to_vec(), b.to_vec());
    let r = median_of(&mut sb) / median_of(&mut sa);
    let (lo, hi) = ratio_interval(a, b);
    (r, lo, hi)
}

/// Median of `v`, sorted in place.
fn median_of(v: &mut [f64]) -> f64 {
    v.sort_by(f64::total_cmp);
    quantile(v, 0.5)
}

/// A 95% percentile-bootstrap interval of `median(b) / median(a)`, where
/// `a[k]` and `b[k]` were measured in the same round: whole rounds are
/// drawn with replacement (2,000 times, a fixed seed, so the same times
/// give the same interval).
fn ratio_interval(a: &[f64], b: &[f64]) -> (f64, f64) {
    let n = a.len().min(b.len());
    if n == 0 {
        return (f64::NAN, f64::NAN);
    }
    // xorshift64*: enough for drawing indices, and no dependency.
    let mut state: u64 = 0x9E37_79B9_7F4A_7C15;
    let mut next = move || {
        state ^= state >> 12;
        state ^= state << 25;
        state ^= state >> 27;
        state.wrapping_mul(0x2545_F491_4F6C_DD1D)
    };
    let (mut ra, mut rb) = (vec![0.0; n], vec![0.0; n]);
    let mut ratios = Vec::with_capacity(2000);
    for _ in 0..2000 {
        for k in 0..n {
            let j = (next() % n as u64) as usize;
            ra[k] = a[j];
            rb[k] = b[j];
        }
        ratios.push(median_of(&mut rb) / median_of(&mut ra));
    }
    ratios.sort_by(f64::total_cmp);
    (quantile(&ratios, 0.025), quantile(&ratios, 0.975))
}

#[cfg(test)]
mod tests {
    use super::{fresh_copies, interleaved, parse_args, ratio_interval, ratio_of_medians, Row};

    /// A row's statistics: order does not matter, the mean counts the
    /// slow runs that the median ignores, and a run counts as slow only
    /// above 1.2× the median.
    #[test]
    fn a_row_reports_the_slow_runs_its_median_hides() {
        // Nine runs of 10 ms, 11 ms (1.1×: not slow) and two slow ones.
        let mut t = vec![10.0; 9];
        t.extend([11.0, 12.5, 20.0]);
        t.reverse();
        let r = Row::of(&t);
        assert_eq!(r.median, 10.0);
        assert_eq!(r.quartiles, (10.0, 10.0));
        assert_eq!(r.slow, 2);
        assert_eq!(r.p90, 12.5);
        assert!((r.mean - 133.5 / 12.0).abs() < 1e-9, "{}", r.mean);
        let even = Row::of(&[4.0, 1.0, 3.0, 2.0, 5.0]);
        assert_eq!(
            (even.median, even.quartiles, even.slow),
            (3.0, (2.0, 4.0), 2)
        );
    }

    /// Each binary is run from a copy of its own, libtree as itself; two
    /// binaries of one name get two copies; a missing binary is an error
    /// that names it.
    #[test]
    fn the_machine_probe_times_page_faults_and_lookups() {
        // A fresh page costs its fault; the same pages again cost a write.
        let mut buf = vec![0u8; 40 << 20];
        let fresh = super::touch_pages(&mut buf);
        let again = super::touch_pages(&mut buf);
        assert!(
            fresh > 2.0 * again,
            "fresh pages {fresh:.3} µs, touched ones {again:.3} µs"
        );
        let (fault, lookup) = super::kernel_costs(std::path::Path::new(env!("CARGO_MANIFEST_DIR")));
        assert!(fault.is_finite() && fault > 0.0, "{fault}");
        assert!(lookup.is_finite() && lookup > 0.0, "{lookup}");
    }

    /// A load that misses the private caches costs more than one that
    /// hits them, and a cache line that two threads pass back and forth
    /// costs more than a load from the first cache.
    #[test]
    fn the_machine_probe_times_memory() {
        let near = super::chase_ns(16 << 10, 2_000_000);
        let far = super::chase_ns(16 << 20, 2_000_000);
        assert!(
            far > 1.5 * near,
            "16 KiB {near:.2} ns, 16 MiB {far:.2} ns a load"
        );
        let trip = super::round_trip_ns(2_000);
        assert!(trip.is_finite() && trip > near, "{trip:.1} ns a round trip");
        let m = super::memory_costs();
        assert!(m.describe().contains("16 MiB"), "{}", m.describe());
    }

    #[test]
    fn binaries_run_from_fresh_copies() {
        let dir = std::env::temp_dir().join(format!("xtask-ab-{}", std::process::id()));
        let bins = [
            "/bin/true".to_string(),
            "libtree".to_string(),
            "/usr/bin/true".to_string(),
        ];
        let copies = fresh_copies(&bins, &dir).unwrap();
        assert_eq!(copies[1], "libtree");
        assert_ne!(copies[0], copies[2]);
        for (bin, copy) in [(&bins[0], &copies[0]), (&bins[2], &copies[2])] {
            assert!(std::path::Path::new(copy).starts_with(&dir), "{copy}");
            assert_eq!(std::fs::read(bin).unwrap(), std::fs::read(copy).unwrap());
        }
        let times = interleaved(&[copies[0].clone()], &["/a".to_string()], 1).unwrap();
        assert_eq!(times[0].len(), 1);
        let err = fresh_copies(&["/no/such/binary".to_string()], &dir).unwrap_err();
        assert!(err.contains("/no/such/binary"), "{err}");
        std::fs::remove_dir_all(&dir).unwrap();
    }

    /// RUNS only as the first number before any binary; `--files` anywhere.
    #[test]
    fn arguments_give_runs_list_and_binaries() {
        let a = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        assert_eq!(
            parse_args(&a(&["300", "x", "libtree"])).unwrap(),
            (300, None, vec!["x", "libtree"])
        );
        assert_eq!(
            parse_args(&a(&["--files", "one.txt", "40", "x", "7"])).unwrap(),
            (40, Some("one.txt"), vec!["x", "7"])
        );
        assert_eq!(
            parse_args(&a(&["x", "--files", "l"])).unwrap(),
            (100, Some("l"), vec!["x"])
        );
        assert!(parse_args(&a(&["300"])).is_err());
        assert!(parse_args(&a(&["x", "--files"])).is_err());
    }

    /// Every binary gets exactly `runs` measured times, the warm-up rounds
    /// left out, each a real run's; a binary that fails stops the set with
    /// its name. Fails if the warm-up rounds are counted or a failure is
    /// ignored.
    #[test]
    fn interleaved_runs_give_each_binary_its_rounds() {
        let bins = ["/bin/true".to_string(), "/bin/true".to_string()];
        let files = ["/a".to_string()];
        let times = interleaved(&bins, &files, 4).unwrap();
        assert_eq!(times.len(), 2);
        assert!(times.iter().all(|t| t.len() == 4), "{times:?}");
        assert!(times.iter().flatten().all(|&ms| ms > 0.0), "{times:?}");
        let (r, lo, hi) = ratio_of_medians(&times[0], &times[1]);
        assert!(
            r > 0.0 && lo <= hi && lo.is_finite() && hi.is_finite(),
            "{lo} {r} {hi}"
        );
        let bins = ["/bin/true".to_string(), "/bin/false".to_string()];
        let err = interleaved(&bins, &files, 2).unwrap_err();
        assert!(err.contains("/bin/false"), "{err}");
    }

    #[test]
    fn an_exact_ratio_has_no_width() {
        let a: Vec<f64> = (1..=50).map(f64::from).collect();
        let b: Vec<f64> = a.iter().map(|x| x * 0.5).collect();
        let (lo, hi) = ratio_interval(&a, &b);
        assert!(
            (lo - 0.5).abs() < 1e-12 && (hi - 0.5).abs() < 1e-12,
            "{lo} {hi}"
        );
    }

    /// Times of `n` rounds on a drifting machine (both binaries slow down
    /// alike) with each run's own noise; `b` takes `ratio` of `a`'s time.
    fn rounds(n: usize, ratio: f64, seed: u64) -> (Vec<f64>, Vec<f64>) {
        let mut state = seed;
        let mut noise = move || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            (state >> 11) as f64 / (1u64 << 53) as f64 - 0.5
        };
        let (mut a, mut b) = (Vec::new(), Vec::new());
        for k in 0..n {
            let drift = 1.0 + 0.2 * ((k as f64) / 25.0).sin();
            a.push(60.0 * drift * (1.0 + 0.1 * noise()));
            b.push(60.0 * ratio * drift * (1.0 + 0.1 * noise()));
        }
        (a, b)
    }

    fn median(v: &[f64]) -> f64 {
        let mut v = v.to_vec();
        super::median_of(&mut v)
    }

    #[test]
    fn the_interval_tells_under_the_target_from_at_the_edge() {
        let (a, b) = rounds(300, 0.45, 7);
        let (lo, hi) = ratio_interval(&a, &b);
        let r = median(&b) / median(&a);
        assert!(lo <= r && r <= hi, "{lo} {r} {hi}");
        assert!(hi < 0.5, "clearly under half: {lo}-{hi}");
        let (a, b) = rounds(300, 0.5, 7);
        let (lo, hi) = ratio_interval(&a, &b);
        assert!(lo < 0.5 && 0.5 < hi, "at the edge: {lo}-{hi}");
    }

    #[test]
    fn more_rounds_give_a_narrower_interval_and_the_same_times_the_same_one() {
        let (a, b) = rounds(40, 0.45, 3);
        let (lo40, hi40) = ratio_interval(&a, &b);
        let (a, b) = rounds(400, 0.45, 3);
        let (lo400, hi400) = ratio_interval(&a, &b);
        assert!(
            hi400 - lo400 < hi40 - lo40,
            "{lo40}-{hi40} vs {lo400}-{hi400}"
        );
        assert_eq!(ratio_interval(&a, &b), (lo400, hi400));
    }
}
