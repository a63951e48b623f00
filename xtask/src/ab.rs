//! `cargo xtask ab [RUNS] BIN...`: compares builds on the union run.
//!
//! Each binary traces every program of `target/bench/programs.txt` (the
//! list `cargo xtask bench` writes) in one call, `--format list`; `libtree`
//! as a BIN runs `libtree -p` on the same files. The binaries take turns
//! one run at a time (the order reversed every other round), so a machine
//! whose speed drifts — the benchmark VM drifts by 10-20% within an hour —
//! slows each of them alike, which back-to-back blocks of runs do not.
//! Prints each binary's median, quartiles and ratio to the first one.

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
fn quantile(v: &[f64], q: f64) -> f64 {
    let i = ((v.len() - 1) as f64 * q).round() as usize;
    v[i]
}

pub fn run(args: &[String]) -> bool {
    let (runs, bins) = match args.first().and_then(|a| a.parse::<usize>().ok()) {
        Some(n) => (n.max(1), &args[1..]),
        None => (100, args),
    };
    if bins.is_empty() {
        eprintln!("usage: cargo xtask ab [RUNS] BIN... (BIN may be `libtree`)");
        return false;
    }
    let list = Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/bench/programs.txt");
    let Ok(text) = std::fs::read_to_string(&list) else {
        eprintln!(
            "xtask: {} is missing: run `cargo xtask bench` first",
            list.display()
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
    let mut times: Vec<Vec<f64>> = vec![Vec::new(); bins.len()];
    // Three rounds to warm the page cache, then the measured ones.
    for round in 0..runs + 3 {
        let mut order: Vec<usize> = (0..bins.len()).collect();
        if round % 2 == 1 {
            order.reverse();
        }
        for i in order {
            match once(&bins[i], &files) {
                Ok(ms) if round >= 3 => times[i].push(ms),
                Ok(_) => {}
                Err(e) => {
                    eprintln!("xtask: {e}");
                    return false;
                }
            }
        }
    }
    let mut first = None;
    for (bin, t) in bins.iter().zip(&mut times) {
        t.sort_by(f64::total_cmp);
        let median = quantile(t, 0.5);
        let base = *first.get_or_insert(median);
        println!(
            "{bin}: median {median:.2} ms (quartiles {:.2}–{:.2}), {:.3}× the first",
            quantile(t, 0.25),
            quantile(t, 0.75),
            median / base
        );
    }
    true
}
