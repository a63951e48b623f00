//! `cargo xtask bench`: the end-to-end comparison of issue 7.
//!
//! Builds the release binary, then measures on this machine's own files:
//!
//! - (a) the union closure of every dynamic ELF program of `/usr/bin` and
//!   `/usr/sbin` in one call: `closure --root F… --format list` against
//!   `libtree -p F…` and pax-utils `lddtree -l F…`, all with `hyperfine`,
//!   and the closure/libtree ratio again in alternating short rounds (the
//!   median is robust to a machine whose speed drifts during the bench);
//! - (b) staging the program with the largest closure:
//!   `closure --root X --out DIR --no-verify` against `cp -P --parents` of
//!   exactly the files and symlinks it stages, each run into a fresh
//!   directory (`--link` too once the binary has it);
//! - (c) peak RSS (`/usr/bin/time -f %M`) of the union run, and of a tiny
//!   sysroot whose `libc.so.6` is an 8 GiB sparse file;
//! - (d) one program, the usual run: the smallest and the largest closure
//!   of the list, `closure --root F --format list` against `libtree -p F`;
//! - a floor for (a): `cargo xtask floor LIST` (this binary) opens each file
//!   `closure` lists for the union, reads its first 4 KiB and closes it, on
//!   every core: no parsing, no search, no path checks. No tracer can do
//!   less; the row says how far from it each tool is;
//! - instruction counts (`valgrind --tool=callgrind`, repeatable where wall
//!   time on a shared machine is not) and a `callgrind_annotate` profile of
//!   the union run.
//!
//! The union's wall times (both tools' rows, the alternating rounds and the
//! interleaved ratio) are taken first, before the steps that allocate and
//! free much memory (the lddtree check, callgrind), which on a VM that
//! hands freed memory back to its host make the next runs' fresh pages
//! dearer (docs/benchmarks.md).
//!
//! Everything goes to `target/bench/`; the table is `target/bench/results.md`
//! and is printed at the end. Only `hyperfine` is required; rows whose tool
//! is absent say so. Programs are kept only if every tool resolves them
//! completely (`libtree` stops at the first file with a missing
//! dependency), so every tool gets the same list, and each must succeed.
//!
//! Every tool runs without the `LD_LIBRARY_PATH` cargo sets for `cargo run`
//! (libtree and lddtree would search it).
//!
//! Options: `--quick` (few runs, for trying the task out); `--bin PATH`
//! measures that binary (`target/dist/closure` from `cargo xtask dist`,
//! say) instead of building and measuring `target/release/closure`.

use std::collections::BTreeSet;
use std::fmt::Write as _;
use std::fs;
use std::io::Read;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{SystemTime, UNIX_EPOCH};

/// Directories whose programs make the union run.
const PROGRAM_DIRS: &[&str] = &["/usr/bin", "/usr/sbin"];
/// A command string longer than this goes to hyperfine as a script
/// (one argument may not exceed 128 KiB on Linux).
const MAX_DIRECT_COMMAND: usize = 100_000;
/// Size of the sparse library of the memory case.
const SPARSE_SIZE: u64 = 8 << 30;

/// Runs and warmups of each measurement.
#[derive(Clone, Copy)]
struct Runs {
    fast_warmup: u32,
    fast_runs: u32,
    slow_warmup: u32,
    slow_runs: u32,
    /// Runs with the page cache dropped before each (no warm-up).
    cold_runs: u32,
}

/// What hyperfine reports for one command (seconds).
#[derive(Clone, Copy, Debug, Default)]
struct Timing {
    mean: f64,
    stddev: f64,
    median: f64,
    min: f64,
    max: f64,
    runs: usize,
}

/// One row of a comparison table.
struct Row {
    name: String,
    command: String,
    timing: Option<Timing>,
    instructions: Option<u64>,
    rss_kib: Option<u64>,
    note: String,
}

struct Paths {
    workspace: PathBuf,
    bench: PathBuf,
    bin: PathBuf,
}

fn paths() -> Paths {
    let workspace = Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap_or(Path::new("."))
        .to_path_buf();
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| workspace.join("target"));
    Paths {
        bench: target.join("bench"),
        bin: target.join("release").join("closure"),
        workspace,
    }
}

/// Whether `tool` can be run (found on `PATH` or as a path).
fn have(tool: &str) -> bool {
    if tool.contains('/') {
        return Path::new(tool).is_file();
    }
    std::env::var_os("PATH")
        .is_some_and(|p| std::env::split_paths(&p).any(|d| d.join(tool).is_file()))
}

/// Runs a command to completion with stdout and stderr captured.
fn capture(cmd: &mut Command) -> Option<std::process::Output> {
    cmd.stdin(Stdio::null()).output().ok()
}

fn first_line(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes)
        .lines()
        .next()
        .unwrap_or("")
        .to_string()
}

// ---------------------------------------------------------------- machine

/// `YYYY-MM-DD HH:MM UTC` from the system clock (civil-from-days).
fn now_utc() -> String {
    let secs = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    let days = (secs / 86_400) as i64;
    let rem = secs % 86_400;
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02} {:02}:{:02} UTC",
        rem / 3600,
        rem % 3600 / 60
    )
}

fn loadavg() -> String {
    fs::read_to_string("/proc/loadavg")
        .map(|s| s.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_else(|_| "?".into())
}

fn cpu_model() -> String {
    fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("model name"))
                .and_then(|l| l.split_once(':'))
                .map(|(_, v)| v.trim().to_string())
        })
        .unwrap_or_else(|| "?".into())
}

fn commit(workspace: &Path) -> String {
    let head = capture(Command::new("git").arg("-C").arg(workspace).args([
        "rev-parse",
        "--short",
        "HEAD",
    ]))
    .filter(|o| o.status.success())
    .map(|o| first_line(&o.stdout))
    .unwrap_or_else(|| "?".into());
    let dirty = capture(Command::new("git").arg("-C").arg(workspace).args([
        "status",
        "--porcelain",
        "--untracked-files=no",
    ]))
    .is_some_and(|o| !o.stdout.is_empty());
    if dirty {
        format!("{head} + uncommitted changes")
    } else {
        head
    }
}

// ---------------------------------------------------------------- ELF

/// The `PT_INTERP` string of a dynamic ELF program, read from its program
/// headers (None: not ELF, or no interpreter).
fn interpreter(path: &Path) -> Option<Vec<u8>> {
    let mut f = fs::File::open(path).ok()?;
    let mut head = [0u8; 64];
    f.read_exact(&mut head).ok()?;
    if &head[..4] != b"\x7fELF" {
        return None;
    }
    let is64 = head[4] == 2;
    let big = head[5] == 2;
    let u16_at = |b: &[u8], o: usize| {
        let v = [b[o], b[o + 1]];
        if big {
            u16::from_be_bytes(v)
        } else {
            u16::from_le_bytes(v)
        }
    };
    let u32_at = |b: &[u8], o: usize| {
        let v = [b[o], b[o + 1], b[o + 2], b[o + 3]];
        if big {
            u32::from_be_bytes(v)
        } else {
            u32::from_le_bytes(v)
        }
    };
    let u64_at = |b: &[u8], o: usize| {
        let mut v = [0u8; 8];
        v.copy_from_slice(&b[o..o + 8]);
        if big {
            u64::from_be_bytes(v)
        } else {
            u64::from_le_bytes(v)
        }
    };
    let (phoff, phentsize, phnum) = if is64 {
        (u64_at(&head, 32), u16_at(&head, 54), u16_at(&head, 56))
    } else {
        (
            u64::from(u32_at(&head, 28)),
            u16_at(&head, 42),
            u16_at(&head, 44),
        )
    };
    let want = if is64 { 56 } else { 32 };
    if usize::from(phentsize) < want || phnum == 0 {
        return None;
    }
    let len = f.metadata().ok()?.len();
    let table = u64::from(phentsize) * u64::from(phnum);
    if phoff.checked_add(table)? > len {
        return None;
    }
    let all = fs::read(path).ok()?;
    for i in 0..usize::from(phnum) {
        let ph = &all[phoff as usize + i * usize::from(phentsize)..];
        if u32_at(ph, 0) != 3 {
            continue;
        }
        let (off, size) = if is64 {
            (u64_at(ph, 8), u64_at(ph, 32))
        } else {
            (u64::from(u32_at(ph, 4)), u64::from(u32_at(ph, 16)))
        };
        let end = off.checked_add(size)?;
        if end > len || size == 0 {
            return None;
        }
        let s = &all[off as usize..end as usize];
        let s = s.split(|&b| b == 0).next().unwrap_or(s);
        return Some(s.to_vec());
    }
    None
}

/// Every dynamic ELF program of `PROGRAM_DIRS`: regular files (not
/// symlinks), one per inode, sorted.
fn dynamic_programs() -> Vec<PathBuf> {
    let mut seen = BTreeSet::new();
    let mut out = Vec::new();
    for dir in PROGRAM_DIRS {
        let Ok(rd) = fs::read_dir(dir) else { continue };
        let mut entries: Vec<PathBuf> = rd.filter_map(|e| e.ok().map(|e| e.path())).collect();
        entries.sort();
        for p in entries {
            let Ok(m) = fs::symlink_metadata(&p) else {
                continue;
            };
            if !m.is_file() || !seen.insert((m.dev(), m.ino())) {
                continue;
            }
            if interpreter(&p).is_some() {
                out.push(p);
            }
        }
    }
    out
}

// ---------------------------------------------------------------- hyperfine

/// A path or word as one shell-words token: plain when it is plain,
/// single-quoted otherwise.
fn quote(s: &str) -> String {
    let plain = !s.is_empty()
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"/._-+=:,@%".contains(&b));
    if plain {
        s.to_string()
    } else {
        format!("'{}'", s.replace('\'', r"'\''"))
    }
}

fn command_line(argv: &[String]) -> String {
    argv.iter().map(|a| quote(a)).collect::<Vec<_>>().join(" ")
}

/// The command hyperfine runs for `argv`: the argv itself (no shell) when
/// short enough, else `sh SCRIPT` with `exec argv` in the script. The
/// choice is made once for every tool of a comparison (`via_script`).
fn hyperfine_command(bench: &Path, name: &str, argv: &[String], via_script: bool) -> String {
    if !via_script {
        return command_line(argv);
    }
    let script = bench.join(format!("{name}.sh"));
    let body = format!("exec {}\n", command_line(argv));
    if let Err(e) = fs::write(&script, body) {
        eprintln!("xtask: {}: {e}", script.display());
    }
    command_line(&["sh".into(), script.display().to_string()])
}

/// The number after `"key":` in a hyperfine JSON export.
fn json_number(text: &str, key: &str) -> Option<f64> {
    let at = text.find(&format!("\"{key}\":"))? + key.len() + 3;
    let rest = text[at..].trim_start();
    let end = rest
        .find(|c: char| !(c.is_ascii_digit() || "+-.eE".contains(c)))
        .unwrap_or(rest.len());
    rest[..end].parse().ok()
}

/// Whether this process may drop the kernel's caches (root, with a
/// writable `/proc/sys`).
fn can_drop_caches() -> bool {
    fs::OpenOptions::new()
        .write(true)
        .open("/proc/sys/vm/drop_caches")
        .is_ok()
}

/// Benchmarks one command with hyperfine (no shell); None when it failed.
fn hyperfine(
    bench: &Path,
    name: &str,
    command: &str,
    prepare: Option<&str>,
    warmup: u32,
    runs: u32,
) -> Option<Timing> {
    let json = bench.join(format!("{name}.json"));
    let mut c = Command::new("hyperfine");
    c.args(["-N", "--style", "basic", "--warmup"])
        .arg(warmup.to_string())
        .arg("--runs")
        .arg(runs.to_string())
        .arg("--export-json")
        .arg(&json)
        .arg("--command-name")
        .arg(name);
    if let Some(p) = prepare {
        c.arg("--prepare").arg(p);
    }
    c.arg(command);
    eprintln!("xtask: hyperfine {name} ({warmup} warmup, {runs} runs)");
    let ok = matches!(c.stdin(Stdio::null()).status(), Ok(s) if s.success());
    if !ok {
        eprintln!("xtask: {name}: hyperfine failed (did the command exit non-zero?)");
        return None;
    }
    let text = fs::read_to_string(&json).ok()?;
    let times = text
        .find("\"times\":")
        .map(|at| {
            let rest = &text[at..];
            let end = rest.find(']').unwrap_or(rest.len());
            rest[..end].matches(',').count() + 1
        })
        .unwrap_or(0);
    Some(Timing {
        mean: json_number(&text, "mean")?,
        stddev: json_number(&text, "stddev").unwrap_or(0.0),
        median: json_number(&text, "median").unwrap_or(0.0),
        min: json_number(&text, "min").unwrap_or(0.0),
        max: json_number(&text, "max").unwrap_or(0.0),
        runs: times,
    })
}

// ---------------------------------------------------------------- probes

/// Peak RSS in KiB of `argv` via `/usr/bin/time -f %M`; None if it failed.
fn peak_rss(bench: &Path, argv: &[String]) -> Option<u64> {
    if !have("/usr/bin/time") {
        return None;
    }
    let out = bench.join("time.out");
    let status = Command::new("/usr/bin/time")
        .args(["-f", "%M", "-o"])
        .arg(&out)
        .args(argv)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .ok()?;
    if !status.success() {
        eprintln!("xtask: peak RSS: {} failed", argv[0]);
        return None;
    }
    fs::read_to_string(&out)
        .ok()?
        .lines()
        .last()?
        .trim()
        .parse()
        .ok()
}

/// Instructions executed by `argv` under callgrind (None without valgrind);
/// with `annotate`, `callgrind_annotate` output is written beside it.
fn instructions(bench: &Path, name: &str, argv: &[String], annotate: bool) -> Option<u64> {
    if !have("valgrind") {
        return None;
    }
    let out = bench.join(format!("callgrind.{name}.out"));
    eprintln!("xtask: callgrind {name}");
    let status = Command::new("valgrind")
        .arg("--tool=callgrind")
        .arg(format!("--callgrind-out-file={}", out.display()))
        .args(argv)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .ok()?;
    if !status.success() {
        eprintln!("xtask: callgrind {name}: the program failed");
        return None;
    }
    let text = fs::read_to_string(&out).ok()?;
    let total = text
        .lines()
        .find_map(|l| {
            l.strip_prefix("summary:")
                .or_else(|| l.strip_prefix("totals:"))
        })
        .and_then(|v| v.split_whitespace().next()?.parse().ok());
    if annotate && have("callgrind_annotate") {
        for (suffix, extra) in [("", None), (".inclusive", Some("--inclusive=yes"))] {
            let mut c = Command::new("callgrind_annotate");
            c.args(extra).arg(&out);
            if let Some(o) = capture(&mut c).filter(|o| o.status.success()) {
                let path = bench.join(format!("callgrind.{name}{suffix}.txt"));
                let _ = fs::write(path, o.stdout);
            }
        }
    }
    total
}

/// A Python that can import `elftools` (pax-utils `lddtree` needs it; the
/// first `python3` on `PATH` may be another one than Debian's).
fn lddtree_python() -> Option<String> {
    ["python3", "/usr/bin/python3"]
        .into_iter()
        .find(|py| {
            Command::new(py)
                .args(["-c", "import elftools"])
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status()
                .is_ok_and(|s| s.success())
        })
        .map(str::to_string)
}

// ---------------------------------------------------------------- files

/// Files and symlinks below `dir`, as absolute in-root paths, sorted
/// (directories are not listed; symlinks are not followed).
fn staged_entries(dir: &Path) -> Vec<String> {
    fn walk(base: &Path, dir: &Path, out: &mut Vec<String>) {
        let Ok(rd) = fs::read_dir(dir) else { return };
        for e in rd.flatten() {
            let p = e.path();
            let Ok(m) = fs::symlink_metadata(&p) else {
                continue;
            };
            if m.is_dir() {
                walk(base, &p, out);
            } else if let Ok(rel) = p.strip_prefix(base) {
                out.push(format!("/{}", rel.display()));
            }
        }
    }
    let mut out = Vec::new();
    walk(dir, dir, &mut out);
    out.sort();
    out
}

fn fresh_dir(dir: &Path) -> bool {
    let _ = fs::remove_dir_all(dir);
    fs::create_dir_all(dir).is_ok()
}

/// The tiny sysroot of the memory case: `program`, its interpreter and
/// libraries copied (as plain files) from `/`, the library named `big`
/// extended to `SPARSE_SIZE` with a hole when `sparse`.
fn tiny_root(root: &Path, files: &[String], big: &str, sparse: bool) -> bool {
    if !fresh_dir(root) {
        return false;
    }
    for f in files {
        let dst = root.join(f.trim_start_matches('/'));
        let made = dst.parent().is_some_and(|d| fs::create_dir_all(d).is_ok())
            && fs::copy(f, &dst).is_ok();
        if !made {
            eprintln!("xtask: cannot copy {f} into {}", root.display());
            return false;
        }
        if sparse && f == big {
            let grown = fs::OpenOptions::new()
                .write(true)
                .open(&dst)
                .and_then(|h| h.set_len(SPARSE_SIZE));
            if let Err(e) = grown {
                eprintln!("xtask: {}: {e}", dst.display());
                return false;
            }
        }
    }
    true
}

// ---------------------------------------------------------------- report

fn ms(t: f64) -> String {
    let ms = t * 1000.0;
    if ms >= 100.0 {
        format!("{ms:.0} ms")
    } else if ms >= 10.0 {
        format!("{ms:.1} ms")
    } else {
        format!("{ms:.2} ms")
    }
}

fn thousands(n: u64) -> String {
    let digits = n.to_string();
    let mut groups: Vec<&str> = digits
        .as_bytes()
        .rchunks(3)
        .map(|g| std::str::from_utf8(g).unwrap_or(""))
        .collect();
    groups.reverse();
    groups.join(",")
}

fn mib(kib: u64) -> String {
    format!("{:.1} MiB", kib as f64 / 1024.0)
}

/// A comparison table; ratios are to the first row.
fn table(md: &mut String, rows: &[Row]) {
    let base = rows.first().and_then(|r| r.timing).map(|t| t.mean);
    let base_ir = rows.first().and_then(|r| r.instructions);
    md.push_str(
        "| command | mean ± σ | median | min … max | runs | × first row | instructions (callgrind) | peak RSS |\n",
    );
    md.push_str("|---|---|---|---|---|---|---|---|\n");
    for r in rows {
        let cells = match r.timing {
            Some(t) => [
                format!("{} ± {}", ms(t.mean), ms(t.stddev)),
                ms(t.median),
                format!("{} … {}", ms(t.min), ms(t.max)),
                t.runs.to_string(),
                base.map_or("–".into(), |b| format!("{:.2}", t.mean / b)),
            ],
            None => [
                format!("not measured ({})", r.note),
                "–".into(),
                "–".into(),
                "–".into(),
                "–".into(),
            ],
        };
        let ir = match (r.instructions, base_ir) {
            (Some(n), Some(b)) if b > 0 => {
                format!("{} ({:.2}×)", thousands(n), n as f64 / b as f64)
            }
            (Some(n), _) => thousands(n),
            (None, _) => "–".into(),
        };
        let rss = r.rss_kib.map_or("–".into(), mib);
        let _ = writeln!(md, "| {} | {} | {ir} | {rss} |", r.name, cells.join(" | "));
    }
    md.push('\n');
    for r in rows
        .iter()
        .filter(|r| r.timing.is_some() && !r.note.is_empty())
    {
        let _ = writeln!(md, "- {}: {}", r.name, r.note);
    }
    md.push_str("\n<details><summary>commands</summary>\n\n");
    for r in rows.iter().filter(|r| !r.command.is_empty()) {
        let shown = if r.command.len() > 300 {
            let cut: String = r.command.chars().take(300).collect();
            format!("{cut} … ({} bytes)", r.command.len())
        } else {
            r.command.clone()
        };
        let _ = writeln!(md, "- {}: `{}`", r.name, shown.replace('`', "'"));
    }
    md.push_str("\n</details>\n\n");
}

// ---------------------------------------------------------------- the task

/// `cargo xtask bench [--quick]`.
pub fn run(args: &[String]) -> bool {
    let quick = args.iter().any(|a| a == "--quick");
    // `--bin PATH`: measure that binary (the one `cargo xtask dist` built,
    // say) instead of building `target/release/closure`.
    let given = args
        .iter()
        .position(|a| a == "--bin")
        .map(|i| args.get(i + 1).map(PathBuf::from));
    if given == Some(None) {
        eprintln!("xtask: bench: --bin needs a path");
        return false;
    }
    if let Some(other) = args.iter().enumerate().find_map(|(i, a)| {
        let value_of_bin = i > 0 && args[i - 1] == "--bin";
        (a != "--quick" && a != "--bin" && !value_of_bin).then_some(a)
    }) {
        eprintln!("xtask: bench: unknown argument {other}");
        return false;
    }
    let runs = if quick {
        Runs {
            fast_warmup: 1,
            fast_runs: 3,
            slow_warmup: 0,
            slow_runs: 1,
            cold_runs: 2,
        }
    } else {
        Runs {
            fast_warmup: 3,
            fast_runs: 20,
            slow_warmup: 1,
            slow_runs: 3,
            cold_runs: 10,
        }
    };
    if !have("hyperfine") {
        eprintln!("xtask: bench needs hyperfine (apt-get install hyperfine)");
        return false;
    }
    // `cargo run` (so `cargo xtask`) puts target and toolchain directories
    // on LD_LIBRARY_PATH; libtree and lddtree search it, closure does not,
    // so every tool runs without it (with it, libtree took ≈ 25% longer).
    std::env::remove_var("LD_LIBRARY_PATH");
    let mut p = paths();
    match given.flatten() {
        Some(bin) if bin.is_file() => p.bin = fs::canonicalize(&bin).unwrap_or(bin),
        Some(bin) => {
            eprintln!("xtask: bench: no file {}", bin.display());
            return false;
        }
        None => {
            if !crate::cargo(
                &[
                    "build",
                    "--release",
                    "--package",
                    "closure",
                    "--bin",
                    "closure",
                ],
                &[],
            ) {
                return false;
            }
        }
    }
    if !fresh_dir(&p.bench) {
        eprintln!("xtask: cannot create {}", p.bench.display());
        return false;
    }
    let bin = p.bin.display().to_string();
    let load_before = loadavg();
    let help = capture(Command::new(&p.bin).arg("--help"))
        .map(|o| String::from_utf8_lossy(&o.stdout).into_owned())
        .unwrap_or_default();
    let has_link = help.contains("--link");

    // The programs: dynamic ELF, fully resolved by closure and libtree alone.
    let candidates = dynamic_programs();
    let libtree = have("libtree");
    let mut programs: Vec<(String, usize)> = Vec::new();
    let mut excluded: Vec<(String, String)> = Vec::new();
    eprintln!(
        "xtask: checking {} dynamic programs one by one",
        candidates.len()
    );
    for c in &candidates {
        let path = c.display().to_string();
        let Some(o) = capture(Command::new(&p.bin).args(["--root", &path, "--format", "list"]))
        else {
            return false;
        };
        if !o.status.success() {
            excluded.push((path, format!("closure: {}", first_line(&o.stderr))));
            continue;
        }
        let n = o
            .stdout
            .split(|&b| b == b'\n')
            .filter(|l| !l.is_empty())
            .count();
        if libtree {
            let lt = capture(Command::new("libtree").args(["-p", &path]));
            if !lt.as_ref().is_some_and(|o| o.status.success()) {
                let why = lt.map(|o| first_line(&o.stderr)).unwrap_or_default();
                excluded.push((path, format!("libtree: {why}")));
                continue;
            }
        }
        programs.push((path, n));
    }
    if programs.is_empty() {
        eprintln!("xtask: no dynamic program resolves completely; nothing to measure");
        return false;
    }
    let files: Vec<String> = programs.iter().map(|(f, _)| f.clone()).collect();
    let _ = fs::write(p.bench.join("programs.txt"), files.join("\n") + "\n");

    // (a) the union closure.
    let mut closure_argv = vec![bin.clone()];
    for f in &files {
        closure_argv.push("--root".into());
        closure_argv.push(f.clone());
    }
    closure_argv.extend(["--format".into(), "list".into()]);
    let mut libtree_argv = vec!["libtree".to_string(), "-p".into()];
    libtree_argv.extend(files.iter().cloned());
    let python = lddtree_python().filter(|_| have("lddtree"));
    let lddtree_argv = python.as_ref().map(|py| {
        let lddtree = if have("/usr/bin/lddtree") {
            "/usr/bin/lddtree".to_string()
        } else {
            "lddtree".to_string()
        };
        let mut v = vec![py.clone(), lddtree, "-l".into()];
        v.extend(files.iter().cloned());
        v
    });
    let longest = [
        Some(&closure_argv),
        Some(&libtree_argv),
        lddtree_argv.as_ref(),
    ]
    .into_iter()
    .flatten()
    .map(|v| command_line(v).len())
    .max()
    .unwrap_or(0);
    let via_script = longest > MAX_DIRECT_COMMAND;

    // One checked run of each: exit status and the set of files found.
    let union = capture(Command::new(&closure_argv[0]).args(&closure_argv[1..]));
    let Some(union) = union.filter(|o| o.status.success()) else {
        eprintln!("xtask: the union run of closure failed");
        return false;
    };
    let union_set: BTreeSet<String> = String::from_utf8_lossy(&union.stdout)
        .lines()
        .map(str::to_string)
        .collect();
    if libtree {
        let ok = capture(Command::new("libtree").args(&libtree_argv[1..]))
            .is_some_and(|o| o.status.success());
        if !ok {
            eprintln!("xtask: libtree failed on the program list");
            return false;
        }
    }
    // The ratios to libtree come first, before anything that allocates
    // and frees much memory (the lddtree check, callgrind): on a VM that
    // hands freed memory back to its host, the runs after such a step pay
    // for fresh pages more, and `closure` touches far more of them than
    // libtree (docs/benchmarks.md).
    // The ratio to libtree in alternating rounds: on a VM whose speed
    // drifts within a minute, one block of runs per tool can put the drift
    // into the ratio; the median of several short alternating blocks does
    // not.
    let rounds = if quick { 2 } else { 5 };
    let mut ratios: Vec<f64> = Vec::new();
    if libtree {
        let ours = hyperfine_command(&p.bench, "round-closure", &closure_argv, via_script);
        let theirs = hyperfine_command(&p.bench, "round-libtree", &libtree_argv, via_script);
        for _ in 0..rounds {
            let a = hyperfine(
                &p.bench,
                "round-closure",
                &ours,
                None,
                1,
                runs.fast_runs / 2,
            );
            let b = hyperfine(
                &p.bench,
                "round-libtree",
                &theirs,
                None,
                1,
                runs.fast_runs / 2,
            );
            if let (Some(a), Some(b)) = (a, b) {
                ratios.push(a.mean / b.mean);
            }
        }
        ratios.sort_by(f64::total_cmp);
    }
    // And `cargo xtask ab`'s way: one run at a time each, many rounds, the
    // ratio of the medians with a 95% interval (rounds resampled).
    let interleaved_runs = if quick { 10 } else { 100 };
    let interleaved = if libtree {
        let bins = [bin.clone(), "libtree".to_string()];
        match crate::ab::interleaved(&bins, &files, interleaved_runs) {
            Ok(t) => Some(crate::ab::ratio_of_medians(&t[1], &t[0])),
            Err(e) => {
                eprintln!("xtask: interleaved runs: {e}");
                None
            }
        }
    } else {
        None
    };

    // The two tools' own timings too, before the memory-heavy steps.
    let closure_timing = hyperfine(
        &p.bench,
        "union-closure",
        &hyperfine_command(&p.bench, "union-closure", &closure_argv, via_script),
        None,
        runs.fast_warmup,
        runs.fast_runs,
    );
    let libtree_timing = if libtree {
        hyperfine(
            &p.bench,
            "union-libtree",
            &hyperfine_command(&p.bench, "union-libtree", &libtree_argv, via_script),
            None,
            runs.fast_warmup,
            runs.fast_runs,
        )
    } else {
        None
    };
    let mut agreement = String::new();
    if let Some(argv) = &lddtree_argv {
        eprintln!("xtask: one checked run of lddtree ({} files)", files.len());
        match capture(Command::new(&argv[0]).args(&argv[1..])) {
            Some(o) if o.status.success() => {
                let theirs: BTreeSet<String> = String::from_utf8_lossy(&o.stdout)
                    .lines()
                    .map(str::to_string)
                    .collect();
                agreement = if theirs == union_set {
                    format!(
                        "`closure --format list` and the sorted unique lines of `lddtree -l` are the same {} paths.",
                        union_set.len()
                    )
                } else {
                    format!(
                        "`closure --format list` and `lddtree -l` DIFFER: {} paths only in closure's, {} only in lddtree's.",
                        union_set.difference(&theirs).count(),
                        theirs.difference(&union_set).count()
                    )
                };
            }
            _ => {
                eprintln!("xtask: lddtree failed on the program list");
                return false;
            }
        }
    }

    let mut union_rows = Vec::new();
    let cmd = hyperfine_command(&p.bench, "union-closure", &closure_argv, via_script);
    union_rows.push(Row {
        name: "closure --format list".into(),
        timing: closure_timing,
        command: cmd,
        instructions: instructions(&p.bench, "union-closure", &closure_argv, true),
        rss_kib: peak_rss(&p.bench, &closure_argv),
        note: String::new(),
    });
    if libtree {
        let cmd = hyperfine_command(&p.bench, "union-libtree", &libtree_argv, via_script);
        union_rows.push(Row {
            name: "libtree -p".into(),
            timing: libtree_timing,
            command: cmd,
            instructions: instructions(&p.bench, "union-libtree", &libtree_argv, false),
            rss_kib: peak_rss(&p.bench, &libtree_argv),
            note: "by default neither shows nor descends into libc, libm, libdl, libstdc++, libgcc_s and the interpreter; searches ld.so.conf directories, not ld.so.cache".into(),
        });
    } else {
        union_rows.push(Row {
            name: "libtree -p".into(),
            command: String::new(),
            timing: None,
            instructions: None,
            rss_kib: None,
            note: "libtree not installed".into(),
        });
    }
    // The floor: every file of the union read once, nothing else.
    let list = p.bench.join("union-files.txt");
    let floor_argv = std::env::current_exe().ok().and_then(|exe| {
        let text: Vec<&str> = union_set.iter().map(String::as_str).collect();
        fs::write(&list, text.join("\n") + "\n").ok()?;
        Some(vec![
            exe.display().to_string(),
            "floor".to_string(),
            list.display().to_string(),
        ])
    });
    if let Some(argv) = &floor_argv {
        let cmd = hyperfine_command(&p.bench, "union-floor", argv, false);
        union_rows.push(Row {
            name: "floor: open, read 4 KiB, close each file".into(),
            timing: hyperfine(
                &p.bench,
                "union-floor",
                &cmd,
                None,
                runs.fast_warmup,
                runs.fast_runs,
            ),
            command: cmd,
            instructions: instructions(&p.bench, "union-floor", argv, false),
            rss_kib: peak_rss(&p.bench, argv),
            note: format!(
                "`cargo xtask floor`: the {} files closure lists, on all {} cores; no parsing, no search, no path checks (what any tracer must at least do)",
                union_set.len(),
                std::thread::available_parallelism().map_or(1, |n| n.get())
            ),
        });
    }
    // The union again with every file on the disk: the page cache and the
    // kernel's directory and inode caches dropped before each run (root
    // only). After the warm rows, and before lddtree's, whose warm-up
    // fills the caches again for the steps after it.
    let mut cold_rows = Vec::new();
    if can_drop_caches() {
        let drop = "sh -c \"sync; echo 3 > /proc/sys/vm/drop_caches\"";
        let mut tools = vec![("closure --format list", "cold-closure", &closure_argv)];
        if libtree {
            tools.push(("libtree -p", "cold-libtree", &libtree_argv));
        }
        for (name, tag, argv) in tools {
            let cmd = hyperfine_command(&p.bench, tag, argv, via_script);
            cold_rows.push(Row {
                name: name.into(),
                timing: hyperfine(&p.bench, tag, &cmd, Some(drop), 0, runs.cold_runs),
                command: cmd,
                instructions: None,
                rss_kib: None,
                note: String::new(),
            });
        }
    }
    match &lddtree_argv {
        Some(argv) => {
            let cmd = hyperfine_command(&p.bench, "union-lddtree", argv, via_script);
            union_rows.push(Row {
                name: "lddtree -l (pax-utils, Python)".into(),
                timing: hyperfine(
                    &p.bench,
                    "union-lddtree",
                    &cmd,
                    None,
                    runs.slow_warmup,
                    runs.slow_runs,
                ),
                command: cmd,
                instructions: None,
                rss_kib: peak_rss(&p.bench, argv),
                note: "not run under callgrind (a Python interpreter; minutes)".into(),
            });
        }
        None => union_rows.push(Row {
            name: "lddtree -l (pax-utils, Python)".into(),
            command: String::new(),
            timing: None,
            instructions: None,
            rss_kib: None,
            note: "lddtree or python3-pyelftools not installed".into(),
        }),
    }

    // (b) staging the biggest closure.
    let (biggest, nobj) = programs
        .iter()
        .max_by(|a, b| a.1.cmp(&b.1).then(b.0.cmp(&a.0)))
        .cloned()
        .unwrap_or_default();
    let out_dir = p.bench.join("stage-out");
    let out = out_dir.display().to_string();
    let stage_argv = vec![
        bin.clone(),
        "--root".into(),
        biggest.clone(),
        "--out".into(),
        out.clone(),
        "--no-verify".into(),
        "--quiet".into(),
    ];
    fresh_dir(&out_dir);
    let staged_ok = capture(Command::new(&stage_argv[0]).args(&stage_argv[1..]))
        .is_some_and(|o| o.status.success());
    if !staged_ok {
        eprintln!("xtask: staging {biggest} failed");
        return false;
    }
    let entries = staged_entries(&out_dir);
    let staged_bytes: u64 = entries
        .iter()
        .filter_map(|e| fs::symlink_metadata(out_dir.join(e.trim_start_matches('/'))).ok())
        .filter(|m| m.is_file())
        .map(|m| m.len())
        .sum();
    let nfiles = entries
        .iter()
        .filter(|e| {
            fs::symlink_metadata(out_dir.join(e.trim_start_matches('/'))).is_ok_and(|m| m.is_file())
        })
        .count();
    let mut cp_argv = vec![
        "cp".to_string(),
        "-P".into(),
        "--parents".into(),
        "-t".into(),
        out.clone(),
    ];
    cp_argv.extend(entries.iter().cloned());
    let _ = fs::write(p.bench.join("stage-files.txt"), entries.join("\n") + "\n");
    // cp of the same list must make the same tree.
    fresh_dir(&out_dir);
    let cp_ok = capture(Command::new("cp").args(&cp_argv[1..])).is_some_and(|o| o.status.success());
    let same_tree = cp_ok && staged_entries(&out_dir) == entries;
    let prepare = command_line(&[
        "sh".into(),
        "-c".into(),
        format!("rm -rf {0} && mkdir {0}", quote(&out)),
    ]);
    let stage_via_script = command_line(&cp_argv).len() > MAX_DIRECT_COMMAND;
    let mut stage_rows = Vec::new();
    let cmd = hyperfine_command(&p.bench, "stage-closure", &stage_argv, stage_via_script);
    stage_rows.push(Row {
        name: "closure --out --no-verify".into(),
        timing: hyperfine(
            &p.bench,
            "stage-closure",
            &cmd,
            Some(&prepare),
            runs.fast_warmup,
            runs.fast_runs,
        ),
        command: cmd,
        instructions: {
            fresh_dir(&out_dir);
            instructions(&p.bench, "stage-closure", &stage_argv, true)
        },
        rss_kib: {
            fresh_dir(&out_dir);
            peak_rss(&p.bench, &stage_argv)
        },
        note: String::new(),
    });
    let cmd = hyperfine_command(&p.bench, "stage-cp", &cp_argv, stage_via_script);
    stage_rows.push(Row {
        name: "cp -P --parents (same files and symlinks)".into(),
        timing: hyperfine(
            &p.bench,
            "stage-cp",
            &cmd,
            Some(&prepare),
            runs.fast_warmup,
            runs.fast_runs,
        ),
        command: cmd,
        instructions: {
            fresh_dir(&out_dir);
            instructions(&p.bench, "stage-cp", &cp_argv, false)
        },
        rss_kib: {
            fresh_dir(&out_dir);
            peak_rss(&p.bench, &cp_argv)
        },
        note: if same_tree {
            String::new()
        } else {
            "cp did NOT produce the same list of files and symlinks".into()
        },
    });
    if has_link {
        let mut link_argv = stage_argv.clone();
        link_argv.push("--link".into());
        let cmd = hyperfine_command(&p.bench, "stage-link", &link_argv, stage_via_script);
        stage_rows.push(Row {
            name: "closure --out --no-verify --link".into(),
            timing: hyperfine(
                &p.bench,
                "stage-link",
                &cmd,
                Some(&prepare),
                runs.fast_warmup,
                runs.fast_runs,
            ),
            command: cmd,
            instructions: None,
            rss_kib: None,
            note: "hard links need the output on the sysroot's file system".into(),
        });
    }
    let _ = fs::remove_dir_all(&out_dir);

    // (c) memory: an 8 GiB sparse libc.so.6 in a tiny root.
    let mut memory = Vec::new();
    let small_prog = ["/usr/bin/true", "/bin/true"]
        .into_iter()
        .find(|f| Path::new(f).is_file() && interpreter(Path::new(f)).is_some());
    if let Some(prog) = small_prog {
        let listed = capture(Command::new(&p.bin).args(["--root", prog, "--format", "list"]))
            .filter(|o| o.status.success())
            .map(|o| {
                String::from_utf8_lossy(&o.stdout)
                    .lines()
                    .map(str::to_string)
                    .collect::<Vec<_>>()
            })
            .unwrap_or_default();
        let interp = interpreter(Path::new(prog))
            .map(|i| String::from_utf8_lossy(&i).into_owned())
            .unwrap_or_default();
        let big = listed
            .iter()
            .find(|f| f.contains("libc.so"))
            .or_else(|| listed.iter().find(|f| **f != prog && **f != interp))
            .cloned();
        if let Some(big) = big {
            for (label, sparse) in [
                ("at its real size", false),
                ("grown to 8 GiB (sparse)", true),
            ] {
                let root = p
                    .bench
                    .join(if sparse { "sparse-root" } else { "tiny-root" });
                if !tiny_root(&root, &listed, &big, sparse) {
                    continue;
                }
                let argv = vec![
                    bin.clone(),
                    "--sysroot".into(),
                    root.display().to_string(),
                    "--root".into(),
                    prog.into(),
                    "--format".into(),
                    "list".into(),
                ];
                let ok = capture(Command::new(&argv[0]).args(&argv[1..]))
                    .is_some_and(|o| o.status.success());
                let rss = if ok { peak_rss(&p.bench, &argv) } else { None };
                let name = if sparse { "sparse" } else { "tiny" };
                let timing = if ok {
                    let cmd = hyperfine_command(&p.bench, name, &argv, false);
                    hyperfine(&p.bench, name, &cmd, None, runs.fast_warmup, runs.fast_runs)
                } else {
                    None
                };
                memory.push((format!("{prog} with {big} {label}"), ok, rss, timing));
                let _ = fs::remove_dir_all(&root);
            }
        }
    }

    // (d) one program, the usual run: the smallest and the biggest closure
    // of the list, closure against libtree.
    let mut single_rows: Vec<(String, Vec<Row>)> = Vec::new();
    let smallest = programs
        .iter()
        .min_by(|a, b| a.1.cmp(&b.1).then(a.0.cmp(&b.0)))
        .cloned();
    for (prog, n) in smallest.into_iter().chain([(biggest.clone(), nobj)]) {
        let ours = vec![
            bin.clone(),
            "--root".into(),
            prog.clone(),
            "--format".into(),
            "list".into(),
        ];
        let theirs = vec!["libtree".to_string(), "-p".into(), prog.clone()];
        let name = |tool: &str| format!("one-{tool}-{n}");
        let mut rows = Vec::new();
        let cmd = hyperfine_command(&p.bench, &name("closure"), &ours, false);
        rows.push(Row {
            name: "closure --format list".into(),
            timing: hyperfine(
                &p.bench,
                &name("closure"),
                &cmd,
                None,
                runs.fast_warmup,
                runs.fast_runs,
            ),
            command: cmd,
            instructions: instructions(&p.bench, &name("closure"), &ours, false),
            rss_kib: peak_rss(&p.bench, &ours),
            note: String::new(),
        });
        if libtree {
            let cmd = hyperfine_command(&p.bench, &name("libtree"), &theirs, false);
            rows.push(Row {
                name: "libtree -p".into(),
                timing: hyperfine(
                    &p.bench,
                    &name("libtree"),
                    &cmd,
                    None,
                    runs.fast_warmup,
                    runs.fast_runs,
                ),
                command: cmd,
                instructions: instructions(&p.bench, &name("libtree"), &theirs, false),
                rss_kib: peak_rss(&p.bench, &theirs),
                note: String::new(),
            });
        }
        single_rows.push((format!("{prog} ({n} objects)"), rows));
    }

    // The table.
    let load_after = loadavg();
    let mem_costs = crate::ab::memory_costs();
    let mut md = String::new();
    let _ = writeln!(md, "# closure benchmarks\n");
    let _ = writeln!(
        md,
        "{} · {} · nproc {} · load average {} before, {} after · {} (after) · Linux {} · closure {} (`{}`)\n",
        now_utc(),
        cpu_model(),
        std::thread::available_parallelism().map_or(0, |n| n.get()),
        load_before,
        load_after,
        mem_costs.describe(),
        fs::read_to_string("/proc/sys/kernel/osrelease")
            .map(|s| s.trim().to_string())
            .unwrap_or_default(),
        commit(&p.workspace),
        p.bin.display(),
    );
    let _ = writeln!(
        md,
        "Wall times are hyperfine's (no shell{}); instruction counts are callgrind's `Ir` (they repeat within about 1% from run to run: hash seeds and the order in which threads take work vary); peak RSS is `/usr/bin/time -f %M`.\n",
        if via_script { "; commands too long for one argument run as `sh SCRIPT` that `exec`s them, for every tool alike" } else { "" }
    );
    let _ = writeln!(
        md,
        "## (a) Union closure of {} dynamic programs of {} ({} objects)\n",
        files.len(),
        PROGRAM_DIRS.join(" and "),
        union_set.len()
    );
    table(&mut md, &union_rows);
    if let (Some(lo), Some(hi)) = (ratios.first(), ratios.last()) {
        let _ = writeln!(
            md,
            "closure / libtree in {} alternating rounds of {} runs each: median {:.2}× (range {:.2}–{:.2}×).\n",
            ratios.len(),
            runs.fast_runs / 2,
            ratios[ratios.len() / 2],
            lo,
            hi
        );
    }
    if let Some((r, lo, hi)) = interleaved {
        let _ = writeln!(
            md,
            "closure / libtree in {interleaved_runs} interleaved runs each (`cargo xtask ab`'s method): {r:.3}× (95% interval {lo:.3}–{hi:.3}×).\n"
        );
    }
    if cold_rows.is_empty() {
        md.push_str(
            "The union with the page cache dropped was not measured (dropping it needs root).\n\n",
        );
    } else {
        md.push_str("The same union with every file on the disk (`sync; echo 3 > /proc/sys/vm/drop_caches` before each run, no warm-up: the page cache and the kernel's directory and inode caches dropped, the tools' own binaries included):\n\n");
        table(&mut md, &cold_rows);
    }
    if !agreement.is_empty() {
        let _ = writeln!(md, "{agreement}\n");
    }
    if !excluded.is_empty() {
        let _ = writeln!(
            md,
            "Left out ({} of {} dynamic programs; every tool gets the same list):\n",
            excluded.len(),
            candidates.len()
        );
        for (f, why) in &excluded {
            let _ = writeln!(md, "- `{f}`: {why}");
        }
        md.push('\n');
    }
    let _ = writeln!(
        md,
        "## (b) Staging {biggest} ({nobj} objects: {nfiles} files, {} symlinks, {:.1} MiB)\n",
        entries.len() - nfiles,
        staged_bytes as f64 / (1024.0 * 1024.0)
    );
    let _ = writeln!(
        md,
        "Each run writes into a fresh directory (`--prepare 'rm -rf DIR && mkdir DIR'`); `cp` copies exactly the files and symlinks `closure` staged{}.\n",
        if same_tree { " and makes the same tree" } else { " but did NOT make the same tree" }
    );
    table(&mut md, &stage_rows);
    let _ = writeln!(md, "## (c) Memory: a library 8 GiB long\n");
    if memory.is_empty() {
        let _ = writeln!(md, "Not measured (no small dynamic program found).\n");
    } else {
        md.push_str("| case | exit 0 | peak RSS | mean ± σ |\n|---|---|---|---|\n");
        for (label, ok, rss, t) in &memory {
            let _ = writeln!(
                md,
                "| {label} | {} | {} | {} |",
                if *ok { "yes" } else { "NO" },
                rss.map_or("–".into(), mib),
                t.map_or("–".into(), |t| format!(
                    "{} ± {}",
                    ms(t.mean),
                    ms(t.stddev)
                ))
            );
        }
        md.push('\n');
    }
    for (what, rows) in &single_rows {
        let _ = writeln!(md, "## (d) One program: {what}\n");
        table(&mut md, rows);
    }
    let profile = p.bench.join("callgrind.union-closure.txt");
    if profile.is_file() {
        let _ = writeln!(
            md,
            "Profile of the union run: `{}` (self cost; `.inclusive.txt` beside it).\n",
            profile.display()
        );
    }
    let results = p.bench.join("results.md");
    if let Err(e) = fs::write(&results, &md) {
        eprintln!("xtask: {}: {e}", results.display());
        return false;
    }
    println!("{md}");
    eprintln!("xtask: wrote {}", results.display());
    let measured = union_rows
        .iter()
        .chain(&stage_rows)
        .chain(single_rows.iter().flat_map(|(_, r)| r))
        .all(|r| r.timing.is_some() || r.command.is_empty());
    measured && same_tree && memory.iter().all(|m| m.1)
}

/// `cargo xtask floor LIST`: opens each file named in LIST (one path a
/// line), reads its first 4 KiB (the ELF header and program headers of
/// nearly every file) and closes it, the files spread over every core.
/// The union bench times it as the floor of a tracer's work. Fails when a
/// file cannot be opened or read.
pub fn floor(args: &[String]) -> bool {
    use std::os::unix::fs::FileExt;
    let Some(list) = args.first() else {
        eprintln!("usage: cargo xtask floor LIST");
        return false;
    };
    let text = match fs::read_to_string(list) {
        Ok(t) => t,
        Err(e) => {
            eprintln!("xtask: {list}: {e}");
            return false;
        }
    };
    let files: Vec<&str> = text.lines().filter(|l| !l.is_empty()).collect();
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
    let failed = std::sync::atomic::AtomicBool::new(false);
    std::thread::scope(|s| {
        for t in 0..threads {
            let (files, failed) = (&files, &failed);
            s.spawn(move || {
                let mut buf = [0u8; 4096];
                for f in files.iter().skip(t).step_by(threads) {
                    let ok = fs::File::open(f).and_then(|file| file.read_at(&mut buf, 0));
                    if ok.is_err() {
                        failed.store(true, std::sync::atomic::Ordering::Relaxed);
                    }
                }
            });
        }
    });
    !failed.into_inner()
}
