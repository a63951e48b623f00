//! Hardening (issue 8): hostile bytes and hostile roots — never escape,
//! never hang, never panic.
//!
//! - The fuzz harnesses of `fuzz/src/lib.rs` replayed over the seed corpus
//!   and over every input a fuzzer found a problem with (`fuzz/regressions/`).
//! - A deterministic mutation test (fixed-seed PRNG) of real ELF files of
//!   this machine and synthetic ones of every architecture: byte flips,
//!   truncations, extreme header fields, `PT_DYNAMIC` past the end, huge
//!   `DT_STRSZ`, version chains that never end, GNU hash chains without an
//!   end; `elf::parse` and `elf::symbols::read` must not panic and the loop
//!   must finish (a watchdog fails the test if one step hangs), and the
//!   same through the binary (never exit 101, never a signal).
//! - Containment: links, `DT_RPATH`/`DT_RUNPATH`, `DT_NEEDED` names with a
//!   `/`, `ld.so.cache` entries and `--library-path` that aim at a marker
//!   library planted outside the sysroot: it is never resolved, listed or
//!   staged, and (under `strace`, when installed) never even looked up.
//! - Special files: symlink loops, FIFOs, sockets, device nodes (root) as
//!   libraries, roots and sysroots are reported and never block; an 8 GiB
//!   sparse file in the search path costs little memory.
//! - Output safety: links inside an existing `--out`, `--out` inside or
//!   equal to (or containing) the sysroot, a read-only parent, a full file
//!   system: nothing is written outside `--out`, nothing the tool did not
//!   create is deleted, the error is clear, the exit status non-zero and no
//!   temporary directory is left behind.
//!
//! Tests that need root (mounts, mknod, setpriv) print
//! `skipping <name>: needs root` otherwise.

use std::collections::BTreeMap;
use std::ffi::{OsStr, OsString};
use std::fs;
use std::io::{Read, Seek, Write};
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::support::chroot::mounts_below;
use crate::support::elfgen::{self, Arch, ElfSpec, HashStyle, Kind};
use crate::support::fakeroot::{closure_bin, FakeRoot, Layout};

#[allow(dead_code, unreachable_pub)]
#[path = "../fuzz/src/lib.rs"]
mod fuzz_harness;

const X: Arch = Arch::X86_64;
const APP: &str = "/app/bin/prog";

// ---------------------------------------------------------------------------------------------
// Helpers
// ---------------------------------------------------------------------------------------------

fn is_root() -> bool {
    fs::metadata("/proc/self")
        .map(|m| m.uid() == 0)
        .unwrap_or(false)
}

/// Prints the skip line and returns true when not root.
fn needs_root(name: &str) -> bool {
    if is_root() {
        return false;
    }
    eprintln!("skipping {name}: needs root");
    true
}

/// A small deterministic PRNG (SplitMix64).
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }
    fn below(&mut self, n: u64) -> u64 {
        if n == 0 {
            0
        } else {
            self.next() % n
        }
    }
    fn pick<T: Copy>(&mut self, v: &[T]) -> T {
        v[self.below(v.len() as u64) as usize]
    }
}

/// What one run of the binary did.
#[derive(Debug)]
struct Run {
    code: Option<i32>,
    signal: Option<i32>,
    stdout: String,
    stderr: String,
    /// Peak resident set size in KiB (`VmHWM`, sampled while it ran).
    peak_kb: u64,
}

impl Run {
    /// Panics unless the run ended on its own with a documented status.
    fn assert_sane(&self, ctx: &str) {
        assert!(
            self.signal.is_none(),
            "{ctx}: killed by signal {:?}\nstderr:\n{}",
            self.signal,
            self.stderr
        );
        assert_ne!(self.code, Some(101), "{ctx}: panicked\n{}", self.stderr);
        assert!(
            matches!(self.code, Some(0..=2)),
            "{ctx}: exit {:?}\nstderr:\n{}",
            self.code,
            self.stderr
        );
        assert!(
            !self.stderr.contains("panicked"),
            "{ctx}: a panic message on stderr\n{}",
            self.stderr
        );
    }
}

/// Runs `program args` with a watchdog: fails the test if it has not ended
/// after `limit` (it is killed first). Samples the peak RSS meanwhile.
fn run_cmd_watchdog(program: &OsStr, args: &[OsString], limit: Duration) -> Run {
    let mut child = Command::new(program)
        .args(args)
        .env_remove("LD_LIBRARY_PATH")
        .env_remove("LD_PRELOAD")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot spawn {}: {e}", program.to_string_lossy()));
    let mut out_pipe = child.stdout.take().expect("stdout pipe");
    let mut err_pipe = child.stderr.take().expect("stderr pipe");
    let out_t = std::thread::spawn(move || {
        let mut s = Vec::new();
        let _ = out_pipe.read_to_end(&mut s);
        s
    });
    let err_t = std::thread::spawn(move || {
        let mut s = Vec::new();
        let _ = err_pipe.read_to_end(&mut s);
        s
    });
    let status_path = format!("/proc/{}/status", child.id());
    let start = Instant::now();
    let mut peak_kb = 0;
    let status = loop {
        if let Ok(text) = fs::read_to_string(&status_path) {
            if let Some(kb) = vm_hwm_kb(&text) {
                peak_kb = peak_kb.max(kb);
            }
        }
        if let Some(s) = child.try_wait().expect("wait") {
            break s;
        }
        if start.elapsed() > limit {
            let _ = child.kill();
            let _ = child.wait();
            panic!(
                "{} {:?} did not finish within {limit:?}: it hangs",
                program.to_string_lossy(),
                args
            );
        }
        std::thread::sleep(Duration::from_millis(2));
    };
    Run {
        code: status.code(),
        signal: status.signal(),
        stdout: String::from_utf8_lossy(&out_t.join().unwrap_or_default()).into_owned(),
        stderr: String::from_utf8_lossy(&err_t.join().unwrap_or_default()).into_owned(),
        peak_kb,
    }
}

fn vm_hwm_kb(status: &str) -> Option<u64> {
    status
        .lines()
        .find(|l| l.starts_with("VmHWM:"))?
        .split_whitespace()
        .nth(1)?
        .parse()
        .ok()
}

/// Runs the binary with a 120 s watchdog.
fn closure_run<S: AsRef<OsStr>>(args: &[S]) -> Run {
    let args: Vec<OsString> = args.iter().map(|a| a.as_ref().to_os_string()).collect();
    run_cmd_watchdog(OsStr::new(closure_bin()), &args, Duration::from_secs(120))
}

/// Runs the binary on `root` (sysroot) with a 120 s watchdog.
fn run_in(root: &FakeRoot, args: &[&str]) -> Run {
    let mut all: Vec<OsString> = vec!["--sysroot".into(), root.path().into()];
    all.extend(args.iter().map(OsString::from));
    closure_run(&all)
}

/// Every entry below `dir` (not following links): path → a description of
/// kind, mode, size, inode, mtime and link target or content hash.
fn snapshot(dir: &Path) -> BTreeMap<PathBuf, String> {
    let mut out = BTreeMap::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        let Ok(rd) = fs::read_dir(&d) else { continue };
        for e in rd.flatten() {
            let p = e.path();
            let Ok(m) = fs::symlink_metadata(&p) else {
                continue;
            };
            let desc = if m.file_type().is_symlink() {
                format!("link -> {:?}", fs::read_link(&p).ok())
            } else if m.is_file() {
                let sum = fs::read(&p)
                    .map(|b| {
                        b.iter()
                            .fold(0xcbf2_9ce4_8422_2325u64, |h, &x| {
                                (h ^ x as u64).wrapping_mul(0x100_0000_01b3)
                            })
                            .to_string()
                    })
                    .unwrap_or_else(|e| format!("unreadable {e}"));
                format!(
                    "file {:o} {} ino {} mtime {} sum {sum}",
                    m.mode(),
                    m.len(),
                    m.ino(),
                    m.mtime()
                )
            } else {
                format!("{:?} {:o} ino {}", m.file_type(), m.mode(), m.ino())
            };
            if m.is_dir() {
                stack.push(p.clone());
            }
            out.insert(p, desc);
        }
    }
    out
}

/// Leftover temporary directories of staging below `dir`.
fn leftovers(dir: &Path) -> Vec<PathBuf> {
    snapshot(dir)
        .into_keys()
        .filter(|p| {
            let n = p.file_name().map(|n| n.to_string_lossy().into_owned());
            n.is_some_and(|n| n.contains(".closure-tmp-") || n.ends_with(".closure-new"))
        })
        .collect()
}

/// A unique temporary directory on the host, outside every fake root.
fn host_tempdir(prefix: &str) -> tempfile::TempDir {
    tempfile::Builder::new()
        .prefix(prefix)
        .tempdir()
        .expect("tempdir")
}

/// A clean x86-64 Debian 12 root with `APP` needing `libfoo.so.1` (in
/// `/app/lib`, found through `DT_RUNPATH=$ORIGIN/../lib`) and libc.
fn app_root() -> FakeRoot {
    let r = FakeRoot::new();
    r.debian_base(X, Layout::DEBIAN12);
    r.lib("/app/lib/libfoo.so.1", X, "libfoo.so.1", &["libc.so.6"]);
    r.exe(
        APP,
        X,
        &["libfoo.so.1", "libc.so.6"],
        Some("$ORIGIN/../lib"),
    );
    r
}

fn json_of(run: &Run) -> Value {
    serde_json::from_str(&run.stdout).unwrap_or_else(|e| {
        panic!(
            "stdout is not JSON ({e}); exit {:?}\nstdout:\n{}\nstderr:\n{}",
            run.code, run.stdout, run.stderr
        )
    })
}

// ---------------------------------------------------------------------------------------------
// Fuzz corpus and regressions, replayed through the fuzz harnesses
// ---------------------------------------------------------------------------------------------

fn fuzz_inputs(target: &str) -> Vec<(PathBuf, Vec<u8>)> {
    let base = Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz");
    let mut out = Vec::new();
    for sub in ["corpus", "regressions"] {
        let dir = base.join(sub).join(target);
        let Ok(rd) = fs::read_dir(&dir) else { continue };
        let mut files: Vec<PathBuf> = rd.flatten().map(|e| e.path()).collect();
        files.sort();
        for f in files {
            if f.is_file() {
                let bytes = fs::read(&f).expect("read fuzz input");
                out.push((f, bytes));
            }
        }
    }
    out
}

fn replay(target: &str, harness: fn(&[u8])) {
    let inputs = fuzz_inputs(target);
    assert!(!inputs.is_empty(), "no seed corpus in fuzz/corpus/{target}");
    for (path, bytes) in inputs {
        let r = std::panic::catch_unwind(|| harness(&bytes));
        assert!(
            r.is_ok(),
            "fuzz target {target} fails on {}",
            path.display()
        );
    }
}

#[test]
fn fuzz_corpus_elf_replays() {
    replay("elf", fuzz_harness::elf);
}

#[test]
fn fuzz_corpus_ldcache_replays() {
    replay("ldcache", fuzz_harness::ldcache);
}

#[test]
fn fuzz_corpus_ldconf_replays() {
    replay("ldconf", fuzz_harness::ldconf);
}

#[test]
fn fuzz_corpus_notes_replays() {
    replay("notes", fuzz_harness::notes);
}

#[test]
fn fuzz_corpus_resolver_replays() {
    replay("resolver", fuzz_harness::resolver);
}

/// The slice parse and the file parse of a regression input, which must agree.
fn both_parses(name: &str) -> (closure::elf::ElfInfo, closure::elf::ElfInfo) {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("fuzz/regressions/elf")
        .join(name);
    let bytes = fs::read(&path).expect("regression input");
    let owned = bytes.to_vec();
    let from_slice = closure::elf::parse(&owned[..]).expect("parses from bytes");
    let mut f = tempfile::tempfile().unwrap();
    f.write_all(&bytes).unwrap();
    let from_file = closure::elf::parse_file(&f).expect("parses from a file");
    let _ = closure::elf::symbols::read(&f, &from_file);
    fuzz_harness::elf(&bytes);
    (from_slice, from_file)
}

/// Fuzzer finding (elf target): section headers at a misaligned offset
/// (`e_shoff = 0x2002`, no program headers). `object` refuses a misaligned
/// table in a byte slice but read it from a fresh buffer, so the two readers
/// disagreed on `dynamic`. The file reader's buffers now start at 8-aligned
/// file offsets, so both see the same alignment and agree.
#[test]
fn regression_misaligned_section_headers() {
    let (a, b) = both_parses("misaligned-shoff");
    assert_eq!(a, b, "slice and file parses differ");
}

/// Fuzzer finding (elf target): a note segment at an odd offset read
/// exactly (it is larger than a chunk) into a buffer that later served the
/// section headers, which then looked misaligned to `object`: the file
/// parse lost the dynamic section the slice parse found.
#[test]
fn regression_cached_exact_read_keeps_alignment() {
    let (a, b) = both_parses("cached-exact-read-misaligns-later-slices");
    assert!(
        a.dynamic,
        "the section-header fallback finds the dynamic section"
    );
    assert_eq!(a, b, "slice and file parses differ");
}

/// Fuzzer finding (elf target): a `DT_GNU_HASH` offset near the top of
/// the 64-bit range (and a huge bloom size) overflowed the offset sums of
/// `symbols::symbol_count` (`g + 8`, `g + 16 + bloom`): a panic with
/// overflow checks, a wrapped read position without. Offsets now saturate,
/// so the reads past the end fail and the table counts as absent.
#[test]
fn regression_gnu_hash_offsets_saturate() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("fuzz/regressions/elf/gnu-hash-bloom-size-overflow");
    let bytes = fs::read(&path).expect("regression input");
    let mut f = tempfile::tempfile().unwrap();
    f.write_all(&bytes).unwrap();
    let info = closure::elf::parse_file(&f).expect("parses");
    let gnu = info.tables.gnu_hash().expect("the input has DT_GNU_HASH");
    assert!(
        gnu > u64::MAX - 16,
        "{gnu:#x}: the input no longer reaches the overflow"
    );
    let syms = closure::elf::symbols::read(&f, &info);
    assert!(
        syms.syms.is_empty(),
        "{} symbols from an unreadable table",
        syms.syms.len()
    );
}

/// Fuzzer finding (ldconf target): `include /d/*/*/*/…` in a root with a
/// directory link to itself expanded exponentially (a hang). Now bounded
/// by `ldconf::GLOB_BUDGET`, with a warning.
#[test]
fn regression_ld_so_conf_glob_bomb_is_bounded() {
    let r = FakeRoot::new();
    r.dir("/d/e");
    r.symlink("/d/self", ".");
    r.symlink("/d/up", "..");
    let pattern = "/*".repeat(40);
    r.file(
        "/etc/ld.so.conf",
        format!("include /d{pattern}\n/usr/lib\n"),
    );
    let fs_root = closure::rootfs::RootFs::new(r.path()).unwrap();
    let conf = closure::resolve::ldconf::parse(&fs_root, Path::new("/etc/ld.so.conf"));
    assert!(
        conf.warnings.iter().any(|w| w.contains("skipped")),
        "{:?}",
        conf.warnings
    );
    // Through the binary: a missing library makes it read ld.so.conf for
    // hints, once per missing name.
    r.debian_base(X, Layout::DEBIAN12);
    r.exe(
        APP,
        X,
        &["libnone1.so", "libnone2.so", "libnone3.so", "libc.so.6"],
        None,
    );
    let run = run_in(&r, &["--root", APP]);
    run.assert_sane("glob bomb");
    assert_eq!(run.code, Some(1), "{}", run.stderr);
    let bytes =
        fs::read(Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz/regressions/ldconf/glob-bomb"))
            .expect("regression input");
    fuzz_harness::ldconf(&bytes);
}

// ---------------------------------------------------------------------------------------------
// A minimal ELF layout reader of the test's own, to aim mutations
// ---------------------------------------------------------------------------------------------

/// An ELF file being mutated; field accessors take the class and byte
/// order from `e_ident` and return `None` past the end.
struct Elf {
    b: Vec<u8>,
    is64: bool,
    big: bool,
}

const PT_LOAD: u64 = 1;
const PT_DYNAMIC: u64 = 2;
const PT_INTERP: u64 = 3;
const PT_NOTE: u64 = 4;
const DT_NEEDED: u64 = 1;
const DT_PLTRELSZ: u64 = 2;
const DT_HASH: u64 = 4;
const DT_STRTAB: u64 = 5;
const DT_SYMTAB: u64 = 6;
const DT_RELA: u64 = 7;
const DT_RELASZ: u64 = 8;
const DT_STRSZ: u64 = 10;
const DT_RELSZ: u64 = 18;
const DT_JMPREL: u64 = 23;
const DT_RUNPATH: u64 = 29;
const DT_GNU_HASH: u64 = 0x6fff_fef5;
const DT_VERSYM: u64 = 0x6fff_fff0;
const DT_VERDEF: u64 = 0x6fff_fffc;
const DT_VERDEFNUM: u64 = 0x6fff_fffd;
const DT_VERNEED: u64 = 0x6fff_fffe;
const DT_VERNEEDNUM: u64 = 0x6fff_ffff;

/// A program header: (its file offset, p_type, p_offset, p_vaddr, p_filesz).
type Phdr = (u64, u64, u64, u64, u64);

impl Elf {
    fn new(b: Vec<u8>) -> Elf {
        let is64 = b.get(4) == Some(&2);
        let big = b.get(5) == Some(&2);
        Elf { b, is64, big }
    }
    fn len(&self) -> u64 {
        self.b.len() as u64
    }
    fn rd(&self, off: u64, size: usize) -> Option<u64> {
        let off = usize::try_from(off).ok()?;
        let s = self.b.get(off..off.checked_add(size)?)?;
        let mut v = 0u64;
        if self.big {
            for &x in s {
                v = (v << 8) | x as u64;
            }
        } else {
            for &x in s.iter().rev() {
                v = (v << 8) | x as u64;
            }
        }
        Some(v)
    }
    fn wr(&mut self, off: u64, size: usize, v: u64) {
        let Ok(off) = usize::try_from(off) else {
            return;
        };
        let Some(end) = off.checked_add(size) else {
            return;
        };
        let big = self.big;
        let Some(s) = self.b.get_mut(off..end) else {
            return;
        };
        for (i, x) in s.iter_mut().enumerate() {
            let shift = if big { 8 * (size - 1 - i) } else { 8 * i };
            *x = if shift < 64 { (v >> shift) as u8 } else { 0 };
        }
    }
    fn word(&self) -> usize {
        if self.is64 {
            8
        } else {
            4
        }
    }
    /// (offset, size) of e_phoff, e_shoff, e_phentsize, e_phnum,
    /// e_shentsize, e_shnum in the header.
    fn hdr(&self, field: &str) -> (u64, usize) {
        match (self.is64, field) {
            (true, "phoff") => (32, 8),
            (true, "shoff") => (40, 8),
            (true, "phentsize") => (54, 2),
            (true, "phnum") => (56, 2),
            (true, "shentsize") => (58, 2),
            (true, "shnum") => (60, 2),
            (false, "phoff") => (28, 4),
            (false, "shoff") => (32, 4),
            (false, "phentsize") => (42, 2),
            (false, "phnum") => (44, 2),
            (false, "shentsize") => (46, 2),
            (false, "shnum") => (48, 2),
            _ => unreachable!("{field}"),
        }
    }
    fn get_hdr(&self, field: &str) -> u64 {
        let (o, s) = self.hdr(field);
        self.rd(o, s).unwrap_or(0)
    }
    fn set_hdr(&mut self, field: &str, v: u64) {
        let (o, s) = self.hdr(field);
        self.wr(o, s, v);
    }
    /// (offset, size) of p_offset, p_vaddr, p_filesz, p_align within a
    /// program header.
    fn ph_field(&self, field: &str) -> (u64, usize) {
        match (self.is64, field) {
            (true, "offset") => (8, 8),
            (true, "vaddr") => (16, 8),
            (true, "filesz") => (32, 8),
            (true, "align") => (48, 8),
            (false, "offset") => (4, 4),
            (false, "vaddr") => (8, 4),
            (false, "filesz") => (16, 4),
            (false, "align") => (28, 4),
            _ => unreachable!("{field}"),
        }
    }
    fn phdrs(&self) -> Vec<Phdr> {
        let phoff = self.get_hdr("phoff");
        let n = self.get_hdr("phnum").min(64);
        let ent = self.get_hdr("phentsize").max(1);
        let mut v = Vec::new();
        for i in 0..n {
            let Some(at) = phoff.checked_add(i * ent) else {
                break;
            };
            let get = |f: &str| {
                let (o, s) = self.ph_field(f);
                self.rd(at + o, s)
            };
            let (Some(t), Some(o), Some(a), Some(sz)) =
                (self.rd(at, 4), get("offset"), get("vaddr"), get("filesz"))
            else {
                break;
            };
            v.push((at, t, o, a, sz));
        }
        v
    }
    fn set_ph(&mut self, ph_at: u64, field: &str, v: u64) {
        let (o, s) = self.ph_field(field);
        self.wr(ph_at + o, s, v);
    }
    /// Dynamic entries: (file offset of the entry, tag, value).
    fn dynamic(&self) -> Vec<(u64, u64, u64)> {
        let Some(&(_, _, off, _, size)) = self.phdrs().iter().find(|p| p.1 == PT_DYNAMIC) else {
            return Vec::new();
        };
        let w = self.word() as u64;
        let mut v = Vec::new();
        let mut at = off;
        while at < off.saturating_add(size) && v.len() < 512 {
            let (Some(tag), Some(val)) = (self.rd(at, w as usize), self.rd(at + w, w as usize))
            else {
                break;
            };
            if tag == 0 {
                break;
            }
            v.push((at, tag, val));
            at += 2 * w;
        }
        v
    }
    fn dyn_val(&self, tag: u64) -> Option<(u64, u64)> {
        self.dynamic()
            .into_iter()
            .find(|d| d.1 == tag)
            .map(|(at, _, val)| (at, val))
    }
    /// Sets the value of every dynamic entry with `tag`; false if none.
    fn set_dyn(&mut self, tag: u64, v: u64) -> bool {
        let w = self.word();
        let entries: Vec<u64> = self
            .dynamic()
            .into_iter()
            .filter(|d| d.1 == tag)
            .map(|d| d.0)
            .collect();
        for at in &entries {
            self.wr(at + w as u64, w, v);
        }
        !entries.is_empty()
    }
    /// File offset of a virtual address, through `PT_LOAD`.
    fn v2o(&self, vaddr: u64) -> Option<u64> {
        self.phdrs()
            .into_iter()
            .filter(|p| p.1 == PT_LOAD)
            .find(|p| vaddr >= p.3 && vaddr - p.3 < p.4)
            .map(|p| p.2 + (vaddr - p.3))
    }
    fn table(&self, tag: u64) -> Option<u64> {
        self.dyn_val(tag).and_then(|(_, v)| self.v2o(v))
    }
}

/// Extreme values for a field of `size` bytes in a file of `len` bytes.
fn extreme(rng: &mut Rng, len: u64, size: usize) -> u64 {
    let max = if size >= 8 {
        u64::MAX
    } else {
        (1u64 << (8 * size)) - 1
    };
    let v = match rng.below(9) {
        0 => max,
        1 => max - rng.below(64),
        2 => len,
        3 => len.saturating_sub(1 + rng.below(16)),
        4 => len + 1 + rng.below(4096),
        5 => 1 << rng.below(8 * size as u64),
        6 => 0,
        7 => rng.below(len.max(1)),
        _ => rng.next(),
    };
    v & max
}

/// One mutation of kind `kind` (see the match) applied to `e`; returns its name.
fn mutate(e: &mut Elf, rng: &mut Rng, kind: u64) -> &'static str {
    let len = e.len();
    let w = e.word();
    match kind {
        0 => {
            for _ in 0..1 + rng.below(8) {
                let at = rng.below(len.max(1)) as usize;
                if let Some(x) = e.b.get_mut(at) {
                    *x ^= 1 << rng.below(8);
                }
            }
            "bit flips"
        }
        1 => {
            let span = len.clamp(1, 4096);
            for _ in 0..1 + rng.below(16) {
                let at = rng.below(span) as usize;
                let v = rng.next() as u8;
                if let Some(x) = e.b.get_mut(at) {
                    *x = v;
                }
            }
            "random bytes in the first page"
        }
        2 => {
            // Truncate, often right inside a structure the reader follows.
            let cut = match rng.below(3) {
                0 => rng.below(len.max(1)),
                1 => e.phdrs().iter().map(|p| p.2).max().unwrap_or(0) + rng.below(64),
                _ => e.dynamic().first().map_or(64, |d| d.0 + rng.below(256)),
            };
            e.b.truncate(cut as usize);
            "truncation"
        }
        3 => {
            let v = extreme(rng, len, 2);
            e.set_hdr("phnum", v);
            "e_phnum"
        }
        4 => {
            let v = extreme(rng, len, w);
            e.set_hdr("phoff", v);
            "e_phoff"
        }
        5 => {
            let v = extreme(rng, len, 2);
            e.set_hdr("phentsize", v);
            "e_phentsize"
        }
        6 => {
            // Force the section-header fallback and make it hostile.
            if rng.below(2) == 0 {
                e.set_hdr("phoff", 0);
            }
            let (a, b, c) = (
                extreme(rng, len, w),
                extreme(rng, len, 2),
                extreme(rng, len, 2),
            );
            e.set_hdr("shoff", a);
            e.set_hdr("shnum", b);
            if rng.below(2) == 0 {
                e.set_hdr("shentsize", c);
            }
            "section headers"
        }
        7 => {
            let dynamic: Vec<Phdr> = e
                .phdrs()
                .into_iter()
                .filter(|p| p.1 == PT_DYNAMIC)
                .collect();
            for p in dynamic {
                let f = rng.pick(&["offset", "filesz", "vaddr"]);
                let v = extreme(rng, len, w);
                e.set_ph(p.0, f, v);
            }
            "PT_DYNAMIC past the end"
        }
        8 => {
            let loads: Vec<Phdr> = e.phdrs().into_iter().filter(|p| p.1 == PT_LOAD).collect();
            if let Some(p) = loads.get(rng.below(loads.len().max(1) as u64) as usize) {
                let f = rng.pick(&["offset", "filesz", "vaddr", "align"]);
                let v = extreme(rng, len, w);
                e.set_ph(p.0, f, v);
            }
            "PT_LOAD"
        }
        9 => {
            let others: Vec<Phdr> = e
                .phdrs()
                .into_iter()
                .filter(|p| p.1 == PT_INTERP || p.1 == PT_NOTE)
                .collect();
            for p in others {
                let f = rng.pick(&["offset", "filesz", "align"]);
                let v = extreme(rng, len, w);
                e.set_ph(p.0, f, v);
            }
            "PT_INTERP / PT_NOTE"
        }
        10 => {
            let v = extreme(rng, len, w);
            e.set_dyn(DT_STRSZ, v);
            if rng.below(3) == 0 {
                let v = extreme(rng, len, w);
                e.set_dyn(DT_STRTAB, v);
            }
            "DT_STRSZ / DT_STRTAB"
        }
        11 => {
            let tag = rng.pick(&[DT_NEEDED, DT_RUNPATH, DT_VERSYM, DT_SYMTAB]);
            let v = extreme(rng, len, w);
            e.set_dyn(tag, v);
            "string and table offsets"
        }
        12 => {
            // Version requirements that never end: tiny vn_next / vna_next,
            // huge counts.
            if let Some(off) = e.table(DT_VERNEED) {
                let next = rng.pick(&[1u64, 2, 4, 16, 0xffff_ffff]);
                e.wr(off + 12, 4, next);
                e.wr(off + 2, 2, rng.pick(&[0xffffu64, 1000, 0]));
                let aux = e.rd(off + 8, 4).unwrap_or(16);
                e.wr(off + aux + 12, 4, rng.pick(&[1u64, 4, 16, 0xffff_fff0]));
                e.wr(off + 8, 4, rng.pick(&[aux, 0, 1, 0xffff_ffff]));
            }
            let v = rng.pick(&[u32::MAX as u64, 1 << 20, 0]);
            e.set_dyn(DT_VERNEEDNUM, v);
            "looping verneed"
        }
        13 => {
            if let Some(off) = e.table(DT_VERDEF) {
                let next = rng.pick(&[1u64, 2, 20, 0xffff_ffff]);
                e.wr(off + 16, 4, next);
                e.wr(off + 12, 4, rng.pick(&[0u64, 1, 0xffff_ffff]));
                e.wr(off + 6, 2, 0xffff);
            }
            let v = rng.pick(&[u32::MAX as u64, 1 << 20, 0]);
            e.set_dyn(DT_VERDEFNUM, v);
            "looping verdef"
        }
        14 => {
            // GNU hash: chains without an end, huge bucket counts and bloom.
            if let Some(g) = e.table(DT_GNU_HASH) {
                match rng.below(4) {
                    0 => e.wr(g, 4, extreme(rng, len, 4)),
                    1 => e.wr(g + 8, 4, extreme(rng, len, 4)),
                    2 => e.wr(g + 4, 4, rng.pick(&[0u64, 1, 0xffff_ffff])),
                    _ => {
                        // Clear the end bit of every word after the header.
                        let mut at = g + 16;
                        while at + 4 <= len {
                            let v = e.rd(at, 4).unwrap_or(0) & !1;
                            e.wr(at, 4, v | 2);
                            at += 4;
                        }
                        e.set_dyn(DT_HASH, 0xffff_ffff_ffff);
                    }
                }
            }
            "gnu_hash chains without end"
        }
        15 => {
            if let Some(h) = e.table(DT_HASH) {
                e.wr(h + 4, 4, extreme(rng, len, 4));
                e.wr(h, 4, extreme(rng, len, 4));
            }
            "DT_HASH nchain"
        }
        16 => {
            let tag = rng.pick(&[DT_RELASZ, DT_RELSZ, DT_PLTRELSZ, DT_RELA, DT_JMPREL]);
            let v = extreme(rng, len, w);
            if !e.set_dyn(tag, v) {
                // No such entry: turn the first DT_NEEDED into one.
                if let Some((at, _, _)) = e.dynamic().first().copied() {
                    e.wr(at, w, tag);
                    e.wr(at + w as u64, w, v);
                }
            }
            "relocation tables"
        }
        17 => {
            // PT_NOTE contents: hostile namesz / descsz / type.
            let notes: Vec<Phdr> = e.phdrs().into_iter().filter(|p| p.1 == PT_NOTE).collect();
            if let Some(p) = notes.first() {
                let f = rng.below(3) * 4;
                let v = extreme(rng, len, 4);
                e.wr(p.2 + f, 4, v);
            }
            "note headers"
        }
        _ => {
            let n = 2 + rng.below(3);
            for _ in 0..n {
                let k = rng.below(18);
                mutate(e, rng, k);
            }
            "several at once"
        }
    }
}

/// The ELF files mutated: synthetic ones of every architecture (always
/// there) and a few real ones of this machine (when present).
fn mutation_bases() -> Vec<(String, Vec<u8>)> {
    let mut v = Vec::new();
    for &arch in Arch::all() {
        let exe = ElfSpec {
            arch: Some(arch),
            kind: Kind::Exec,
            needed: vec!["libfoo.so.1".into(), "libc.so.6".into()],
            runpath: Some("$ORIGIN/../lib".into()),
            verneeds: vec![("libc.so.6".into(), vec![("GLIBC_2.34".into(), false)])],
            undefined: vec![(
                "malloc".into(),
                Some(("libc.so.6".into(), "GLIBC_2.34".into())),
            )],
            note_dlopen: Some(r#"[{"soname":["libx.so.1"],"priority":"required"}]"#.into()),
            ..Default::default()
        };
        v.push((
            format!("synthetic exe {}", arch.name()),
            elfgen::build(&exe),
        ));
        let lib = ElfSpec {
            arch: Some(arch),
            soname: Some("libfoo.so.1".into()),
            verdefs: vec!["FOO_1".into(), "FOO_2".into()],
            defined: vec![("foo".into(), Some("FOO_2".into())), ("bar".into(), None)],
            hash_style: if arch.is_64() {
                HashStyle::Gnu
            } else {
                HashStyle::Both
            },
            no_section_headers: arch == Arch::Aarch64,
            ..Default::default()
        };
        v.push((
            format!("synthetic lib {}", arch.name()),
            elfgen::build(&lib),
        ));
    }
    for host in [
        "/usr/bin/true",
        "/usr/bin/env",
        "/lib/x86_64-linux-gnu/libz.so.1",
        "/lib/x86_64-linux-gnu/libc.so.6",
        "/lib64/ld-linux-x86-64.so.2",
    ] {
        match fs::read(host) {
            Ok(b) => v.push((host.to_string(), b)),
            Err(e) => eprintln!("note: mutation base {host} not used: {e}"),
        }
    }
    v
}

/// Parses `bytes` as a slice and through `file` (rewritten), and reads the
/// symbols: the library under test must return, whatever the bytes.
fn parse_everything(bytes: &[u8], file: &mut fs::File) {
    let _ = closure::elf::parse(bytes);
    file.set_len(0).expect("truncate");
    file.rewind().expect("rewind");
    file.write_all(bytes).expect("write");
    if let Ok(info) = closure::elf::parse_file(file) {
        let syms = closure::elf::symbols::read(file, &info);
        for r in &syms.refs {
            assert!(r.index < syms.syms.len());
        }
    }
}

/// Iterations per base file of the library-level mutation test.
const MUTATIONS_PER_BASE: u64 = 120;

#[test]
fn mutated_elf_files_never_panic_and_finish() {
    let bases = mutation_bases();
    let total = bases.len() as u64 * MUTATIONS_PER_BASE;
    let progress = Arc::new(AtomicUsize::new(0));
    let current = Arc::new(std::sync::Mutex::new(String::new()));
    let (p, c) = (progress.clone(), current.clone());
    let worker = std::thread::spawn(move || {
        let mut file = tempfile::tempfile().expect("scratch file");
        let mut rng = Rng(0x0c10_5e0f_ba5e_2026);
        for (name, bytes) in &bases {
            // The unmutated file first.
            parse_everything(bytes, &mut file);
            for i in 0..MUTATIONS_PER_BASE {
                let mut e = Elf::new(bytes.clone());
                let kind = if i < 19 { i } else { rng.below(19) };
                let what = mutate(&mut e, &mut rng, kind);
                if let Ok(mut cur) = c.lock() {
                    *cur = format!("{name}, iteration {i}: {what}");
                }
                let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                    parse_everything(&e.b, &mut file)
                }));
                if r.is_err() {
                    let dump = std::env::temp_dir().join(format!("closure-hardening-crash-{i}"));
                    let _ = fs::write(&dump, &e.b);
                    panic!(
                        "{name}, iteration {i} ({what}) panics; input saved to {}",
                        dump.display()
                    );
                }
                p.fetch_add(1, Ordering::Relaxed);
            }
        }
    });
    // Watchdog: a hang anywhere fails the test instead of stalling it.
    let limit = Duration::from_secs(600);
    let start = Instant::now();
    while !worker.is_finished() {
        if start.elapsed() > limit {
            panic!(
                "mutation test stuck after {} of {total} iterations, at {}",
                progress.load(Ordering::Relaxed),
                current.lock().map(|c| c.clone()).unwrap_or_default()
            );
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    if let Err(e) = worker.join() {
        std::panic::resume_unwind(e);
    }
    assert_eq!(progress.load(Ordering::Relaxed) as u64, total);
}

#[test]
fn mutated_elf_files_through_the_binary() {
    let bases: Vec<(String, Vec<u8>)> = mutation_bases()
        .into_iter()
        .filter(|(n, _)| n.contains("x86_64") || n.starts_with('/'))
        .filter(|(n, _)| !n.contains("libc.so.6"))
        .collect();
    let mut rng = Rng(0xdead_beef_0008);
    let mut runs = 0;
    for (name, bytes) in &bases {
        for i in 0..4u64 {
            let r = app_root();
            let mut e = Elf::new(bytes.clone());
            let kind = rng.below(19);
            let what = mutate(&mut e, &mut rng, kind);
            // The mutated file is the program itself or its library.
            let target = if i % 2 == 0 {
                APP
            } else {
                "/app/lib/libfoo.so.1"
            };
            fs::remove_file(r.host(target)).expect("rm");
            r.file_mode(target, &e.b, 0o755);
            let ctx = format!("{name} as {target}, {what}");
            let run = run_in(&r, &["--root", APP, "--check-symbols", "--format", "json"]);
            run.assert_sane(&ctx);
            let st = host_tempdir("closure-hardening-out-");
            let out = st.path().join("out");
            let out_s = out.to_str().expect("utf-8");
            let run = run_in(&r, &["--root", APP, "--out", out_s, "--allow-missing"]);
            run.assert_sane(&format!("{ctx}, staging"));
            assert!(leftovers(st.path()).is_empty(), "{ctx}: leftovers");
            runs += 1;
        }
    }
    assert!(runs >= 8, "too few runs: {runs}");
}

// ---------------------------------------------------------------------------------------------
// Containment: nothing outside the sysroot is resolved, listed, staged or read
// ---------------------------------------------------------------------------------------------

/// A marker library on the host, outside every fake root.
struct Marker {
    dir: tempfile::TempDir,
}

impl Marker {
    fn plant() -> Marker {
        let dir = host_tempdir("closure-hardening-marker-");
        let lib = elfgen::build(&ElfSpec {
            soname: Some("libmarker.so.1".into()),
            ..Default::default()
        });
        fs::write(dir.path().join("libmarker.so.1"), lib).expect("plant marker");
        fs::create_dir(dir.path().join("etc")).expect("marker etc");
        fs::write(
            dir.path().join("etc/ld.so.conf"),
            format!("{}\n", dir.path().display()),
        )
        .expect("marker conf");
        Marker { dir }
    }
    /// The marker directory, absolute and canonical.
    fn dir(&self) -> PathBuf {
        fs::canonicalize(self.dir.path()).expect("canonicalize marker")
    }
    fn dir_s(&self) -> String {
        self.dir().display().to_string()
    }
    fn lib(&self) -> String {
        format!("{}/libmarker.so.1", self.dir_s())
    }
    /// `../` repeated enough to climb from anywhere in a root to `/` on the host.
    fn up() -> String {
        "../".repeat(24)
    }
}

/// Asserts that no object of a JSON report is the marker or outside the root.
fn assert_contained(root: &FakeRoot, m: &Marker, report: &Value, ctx: &str) {
    let marker_ino = fs::metadata(m.lib()).expect("marker").ino();
    for o in report["objects"].as_array().expect("objects") {
        let path = o["path"].as_str().unwrap_or_default();
        let real = o["realpath"].as_str().unwrap_or(path);
        let host = root.host(real);
        let canon = fs::canonicalize(&host).unwrap_or_else(|e| {
            panic!("{ctx}: object {path} ({real}) does not exist in the root: {e}")
        });
        assert!(
            canon.starts_with(root.path()),
            "{ctx}: object {path} resolves outside the root: {}",
            canon.display()
        );
        assert_ne!(
            fs::metadata(&canon).expect("object").ino(),
            marker_ino,
            "{ctx}: the marker was resolved as {path}"
        );
        assert_ne!(
            o["soname"].as_str(),
            Some("libmarker.so.1"),
            "{ctx}: the marker is listed"
        );
    }
}

/// Whether `strace` can be used here.
fn strace_works() -> bool {
    Command::new("strace")
        .args(["-f", "-o", "/dev/null", "true"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

/// The path arguments of one `strace` line: every quoted string, except
/// the link target of `symlink` calls and the result of `readlink` calls.
fn path_args(line: &str) -> Vec<&str> {
    let call = line
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.split('(').next())
        .unwrap_or_default();
    let quoted: Vec<&str> = line.split('"').skip(1).step_by(2).collect();
    // With threads, strace splits a call in two lines; the second
    // (`<... readlink resumed>"target", 256) = n`) holds only what the
    // kernel wrote back: the link's contents, not a path asked about.
    let resumed = |name: &str| line.contains(&format!("<... {name} resumed>"));
    if resumed("readlink") || resumed("readlinkat") {
        return Vec::new();
    }
    match call {
        "readlink" | "readlinkat" => quoted.into_iter().take(1).collect(),
        "symlink" | "symlinkat" => quoted.into_iter().skip(1).collect(),
        _ => quoted,
    }
}

/// Runs the binary under `strace` and returns every traced file-system
/// call that names `needle` (the `execve` of the binary itself excluded).
fn syscalls_naming(args: &[OsString], needle: &str) -> Vec<String> {
    let log = tempfile::NamedTempFile::new().expect("strace log");
    let mut all: Vec<OsString> = vec![
        "-f".into(),
        "-qq".into(),
        "-e".into(),
        "trace=%file".into(),
        "-s".into(),
        "4096".into(),
        "-o".into(),
        log.path().into(),
        closure_bin().into(),
    ];
    all.extend(args.iter().cloned());
    let run = run_cmd_watchdog(OsStr::new("strace"), &all, Duration::from_secs(300));
    assert!(run.signal.is_none(), "strace run killed: {}", run.stderr);
    fs::read_to_string(log.path())
        .expect("strace log")
        .lines()
        .filter(|l| l.contains(needle) && !l.contains("execve("))
        .map(str::to_owned)
        .collect()
}

/// A root whose program and libraries aim at the marker every way there is.
fn hostile_root(m: &Marker) -> FakeRoot {
    let r = FakeRoot::new();
    r.debian_base(X, Layout::DEBIAN12);
    let up = Marker::up();
    let mdir = m.dir_s();
    // DT_NEEDED with a slash: relative (climbing) and absolute host paths.
    r.lib(
        "/app/lib/libslash.so.1",
        X,
        "libslash.so.1",
        &[
            &format!("{up}{}", m.lib().trim_start_matches('/')),
            &m.lib(),
            &format!("/../../../../..{}", m.lib()),
            "libc.so.6",
        ],
    );
    // DT_RPATH / DT_RUNPATH at the marker directory, absolute and climbing.
    r.elf(
        "/app/lib/librpath.so.1",
        &ElfSpec {
            soname: Some("librpath.so.1".into()),
            needed: vec!["libmarker.so.1".into()],
            rpath: Some(format!(
                "{mdir}:$ORIGIN/{up}{}:/../../..{mdir}",
                mdir.trim_start_matches('/')
            )),
            ..Default::default()
        },
    );
    r.elf(
        "/app/lib/librunpath.so.1",
        &ElfSpec {
            soname: Some("librunpath.so.1".into()),
            needed: vec!["libmarker.so.1".into()],
            // The empty and the relative element are relative to --cwd.
            runpath: Some(format!(
                "{mdir}:$ORIGIN/{up}{}::{up}{}",
                mdir.trim_start_matches('/'),
                mdir.trim_start_matches('/')
            )),
            ..Default::default()
        },
    );
    // Symbolic links out of the root: absolute and relative, to the file
    // and to its directory.
    r.symlink("/app/links/libmarker.so.1", &m.lib());
    r.symlink(
        "/app/links2/libmarker.so.1",
        &format!("../../{up}{}", m.lib().trim_start_matches('/')),
    );
    r.symlink("/opt/escape", &mdir);
    r.symlink(
        "/opt/escape2",
        &format!("{up}{}", mdir.trim_start_matches('/')),
    );
    r.elf(
        "/app/lib/liblinks.so.1",
        &ElfSpec {
            soname: Some("liblinks.so.1".into()),
            needed: vec!["libmarker.so.1".into()],
            runpath: Some("/app/links:/app/links2:/opt/escape:/opt/escape2".into()),
            ..Default::default()
        },
    );
    r.exe(
        APP,
        X,
        &[
            "libslash.so.1",
            "librpath.so.1",
            "librunpath.so.1",
            "liblinks.so.1",
            "libc.so.6",
        ],
        Some("$ORIGIN/../lib"),
    );
    // An ld.so.cache and ld.so.conf that point outside.
    let libc = "/usr/lib/x86_64-linux-gnu/libc.so.6";
    let (flags, _) = r.cache_flags(libc);
    r.ld_cache_raw(
        &[
            closure::resolve::ldcache::CacheEntry {
                flags,
                key: b"libmarker.so.1".to_vec(),
                value: m.lib().into_bytes(),
                hwcap: 0,
            },
            closure::resolve::ldcache::CacheEntry {
                flags,
                key: b"libmarker.so.1".to_vec(),
                value: format!("/../../../..{}", m.lib()).into_bytes(),
                hwcap: 0,
            },
            closure::resolve::ldcache::CacheEntry {
                flags,
                key: b"libc.so.6".to_vec(),
                value: libc.as_bytes().to_vec(),
                hwcap: 0,
            },
        ],
        false,
    );
    r.file(
        "/etc/ld.so.conf",
        format!(
            "{mdir}\ninclude {mdir}/etc/ld.so.conf\ninclude {up}{}/etc/*.conf\n",
            mdir.trim_start_matches('/')
        ),
    );
    r
}

#[test]
fn hostile_paths_never_reach_a_marker_outside_the_root() {
    let m = Marker::plant();
    let r = hostile_root(&m);
    let before = snapshot(&m.dir());
    let mdir = m.dir_s();
    let lp = format!("{mdir}:{}{}", Marker::up(), mdir.trim_start_matches('/'));
    let cwd = format!("/{}{}", Marker::up(), mdir.trim_start_matches('/'));
    for extra in [
        vec![],
        vec!["--library-path", lp.as_str()],
        vec!["--cwd", cwd.as_str(), "--inhibit-cache"],
    ] {
        let mut args = vec!["--root", APP, "--format", "json", "--check-symbols"];
        args.extend(extra.iter().copied());
        let run = run_in(&r, &args);
        run.assert_sane(&format!("{extra:?}"));
        assert_eq!(
            run.code,
            Some(1),
            "{extra:?}: the marker must be missing\n{}",
            run.stderr
        );
        let report = json_of(&run);
        assert_contained(&r, &m, &report, &format!("{extra:?}"));
        let missing = report["missing"].as_array().expect("missing");
        assert!(
            missing.iter().any(|x| x["soname"] == "libmarker.so.1"),
            "{extra:?}: libmarker.so.1 should be reported missing: {missing:?}"
        );
        // No other format shows the marker as found either.
        for fmt in ["tree", "list", "ldd", "dot"] {
            let mut a = vec!["--root", APP, "--format", fmt];
            a.extend(extra.iter().copied());
            let run = run_in(&r, &a);
            run.assert_sane(fmt);
            for line in run.stdout.lines() {
                let found = match line.split_once("=>") {
                    Some((_, rhs)) => rhs.trim().starts_with(&mdir),
                    None => line.trim().starts_with(&mdir),
                };
                assert!(
                    !found,
                    "--format {fmt} {extra:?} shows the marker as found: {line}"
                );
            }
        }
        // Staging anyway stages nothing of the outside.
        let st = host_tempdir("closure-hardening-out-");
        let out = st.path().join("out");
        let mut a = vec![
            "--root",
            APP,
            "--out",
            out.to_str().unwrap(),
            "--allow-missing",
        ];
        a.extend(extra.iter().copied());
        let run = run_in(&r, &a);
        run.assert_sane("staging");
        assert_eq!(run.code, Some(1), "{}", run.stderr);
        let marker_ino = fs::metadata(m.lib()).unwrap().ino();
        let marker_bytes = fs::read(m.lib()).unwrap();
        for (p, _) in snapshot(&out) {
            let meta = fs::symlink_metadata(&p).unwrap();
            if meta.is_file() {
                assert_ne!(
                    meta.ino(),
                    marker_ino,
                    "staged the marker at {}",
                    p.display()
                );
                assert_ne!(
                    fs::read(&p).unwrap(),
                    marker_bytes,
                    "staged a copy of the marker at {}",
                    p.display()
                );
            }
        }
        assert!(leftovers(st.path()).is_empty());
    }
    assert_eq!(before, snapshot(&m.dir()), "the marker directory changed");
}

#[test]
fn hostile_paths_never_look_outside_the_root() {
    if !strace_works() {
        eprintln!("skipping hostile_paths_never_look_outside_the_root: strace is not usable here");
        return;
    }
    let m = Marker::plant();
    let r = hostile_root(&m);
    let needle = m
        .dir()
        .file_name()
        .expect("marker dir name")
        .to_string_lossy()
        .into_owned();
    let st = host_tempdir("closure-hardening-out-");
    let out = st.path().join("out");
    let args: Vec<OsString> = [
        "--sysroot",
        r.path().to_str().unwrap(),
        "--root",
        APP,
        "--check-symbols",
        "--format",
        "json",
        "--out",
        out.to_str().unwrap(),
        "--allow-missing",
    ]
    .iter()
    .map(OsString::from)
    .collect();
    let calls = syscalls_naming(&args, &needle);
    // The marker's name may only appear inside the sysroot: a path the
    // kernel is asked about always starts with the sysroot.
    let root = r.path().display().to_string();
    let escaped: Vec<&String> = calls
        .iter()
        .filter(|l| {
            path_args(l)
                .iter()
                .any(|arg| arg.contains(&needle) && !arg.starts_with(&root))
        })
        .collect();
    assert!(
        escaped.is_empty(),
        "file-system calls outside the sysroot:\n{}",
        escaped
            .iter()
            .map(|s| s.as_str())
            .collect::<Vec<_>>()
            .join("\n")
    );
}

// ---------------------------------------------------------------------------------------------
// Special files: reported, never blocking
// ---------------------------------------------------------------------------------------------

fn mkfifo(p: &Path) -> bool {
    rustix::fs::mknodat(
        rustix::fs::CWD,
        p,
        rustix::fs::FileType::Fifo,
        rustix::fs::Mode::from_raw_mode(0o644),
        0,
    )
    .is_ok()
}

fn mknod_char(p: &Path, major: u32, minor: u32) -> bool {
    rustix::fs::mknodat(
        rustix::fs::CWD,
        p,
        rustix::fs::FileType::CharacterDevice,
        rustix::fs::Mode::from_raw_mode(0o666),
        rustix::fs::makedev(major, minor),
    )
    .is_ok()
}

fn socket_file(p: &Path) -> std::os::unix::net::UnixListener {
    std::os::unix::net::UnixListener::bind(p).expect("bind a unix socket")
}

/// Replaces `/app/lib/libfoo.so.1` of [`app_root`] by a special file made
/// by `make`, runs a trace and a staging, and checks they end, say which
/// file is wrong, and exit 1.
fn special_library(name: &str, make: impl Fn(&Path) -> bool) {
    let r = app_root();
    let lib = r.host("/app/lib/libfoo.so.1");
    fs::remove_file(&lib).unwrap();
    if !make(&lib) {
        eprintln!("skipping {name}: cannot create the special file");
        return;
    }
    let run = run_in(&r, &["--root", APP, "--format", "json"]);
    run.assert_sane(name);
    assert_eq!(run.code, Some(1), "{name}: {}", run.stderr);
    assert!(
        run.stderr.contains("libfoo.so.1"),
        "{name}: stderr should name the library: {}",
        run.stderr
    );
    let st = host_tempdir("closure-hardening-out-");
    let out = st.path().join("out");
    let run = run_in(
        &r,
        &[
            "--root",
            APP,
            "--out",
            out.to_str().unwrap(),
            "--allow-missing",
        ],
    );
    run.assert_sane(name);
    for (p, _) in snapshot(&out) {
        let t = fs::symlink_metadata(&p).unwrap().file_type();
        assert!(
            t.is_dir() || t.is_file() || t.is_symlink(),
            "{name}: staged a special file {}",
            p.display()
        );
    }
}

#[test]
fn fifo_posing_as_a_library_never_blocks() {
    special_library("fifo_posing_as_a_library_never_blocks", mkfifo);
}

#[test]
fn socket_posing_as_a_library_never_blocks() {
    let keep = std::cell::RefCell::new(Vec::new());
    special_library("socket_posing_as_a_library_never_blocks", |p| {
        keep.borrow_mut().push(socket_file(p));
        true
    });
}

#[test]
fn devices_posing_as_libraries_never_block() {
    const NAME: &str = "devices_posing_as_libraries_never_block";
    if needs_root(NAME) {
        return;
    }
    // /dev/zero would feed zeros forever, /dev/tty and /dev/console block.
    for (major, minor) in [(1, 5), (5, 0), (5, 1), (1, 3)] {
        special_library(NAME, |p| mknod_char(p, major, minor));
    }
}

#[test]
fn symlink_loops_in_the_search_path_are_reported() {
    let r = app_root();
    fs::remove_file(r.host("/app/lib/libfoo.so.1")).unwrap();
    r.symlink("/app/lib/libfoo.so.1", "/app/lib/loop-a");
    r.symlink("/app/lib/loop-a", "loop-b");
    r.symlink("/app/lib/loop-b", "/app/lib/libfoo.so.1");
    // A directory loop on the search path too.
    r.symlink("/app/dirloop", "dirloop/x");
    let run = run_in(
        &r,
        &["--root", APP, "--library-path", "/app/dirloop:/app/lib"],
    );
    run.assert_sane("loops");
    assert_eq!(run.code, Some(1), "{}", run.stderr);
    assert!(run.stderr.contains("libfoo.so.1"), "{}", run.stderr);
}

#[test]
fn special_files_as_roots_and_sysroots_are_errors() {
    let r = app_root();
    let fifo = r.host("/app/bin/fifo");
    assert!(mkfifo(&fifo));
    let _sock = socket_file(&r.host("/app/bin/sock"));
    r.symlink("/app/bin/loop", "loop");
    let mut roots = vec!["/app/bin/fifo", "/app/bin/sock", "/app/bin/loop"];
    if is_root() && mknod_char(&r.host("/app/bin/zero"), 1, 5) {
        roots.push("/app/bin/zero");
    }
    for root in roots {
        let run = run_in(&r, &["--root", root]);
        run.assert_sane(root);
        assert_eq!(run.code, Some(2), "{root}: {}", run.stderr);
        assert!(run.stderr.contains(root), "{root}: {}", run.stderr);
    }
    // The sysroot itself a FIFO, a socket, a regular file.
    let d = host_tempdir("closure-hardening-sysroot-");
    let f = d.path().join("fifo");
    assert!(mkfifo(&f));
    let _s = socket_file(&d.path().join("sock"));
    fs::write(d.path().join("file"), b"x").unwrap();
    for name in ["fifo", "sock", "file"] {
        let p = d.path().join(name);
        let run = closure_run(&[
            OsStr::new("--sysroot"),
            p.as_os_str(),
            OsStr::new("--root"),
            OsStr::new("/bin/sh"),
        ]);
        run.assert_sane(name);
        assert_eq!(run.code, Some(2), "sysroot {name}: {}", run.stderr);
        assert!(run.stderr.contains("not a directory"), "{}", run.stderr);
    }
}

// ---------------------------------------------------------------------------------------------
// Size: an 8 GiB sparse file costs little memory and time
// ---------------------------------------------------------------------------------------------

/// Peak RSS allowed for a run over tiny roots with huge sparse files. The
/// caps of `elf::symbols` bound `--check-symbols` on one object: 2 Mi
/// symbols (about 70 MiB decoded plus 48 MiB raw) and a 64 MiB string
/// table; without it a run stays near 10 MiB.
const MAX_PEAK_KB: u64 = 256 << 10;

fn sparse(p: &Path, head: &[u8], len: u64) {
    let mut f = fs::File::create(p).expect("create sparse file");
    f.write_all(head).expect("write head");
    f.set_len(len).expect("set_len");
}

/// An ELF library whose tables claim to span an 8 GiB file: one `PT_LOAD`
/// covering everything, `DT_STRSZ`, the relocation sizes and the hash
/// table's symbol count as large as the file.
fn huge_tables_lib(len: u64) -> Vec<u8> {
    let mut e = Elf::new(elfgen::build(&ElfSpec {
        soname: Some("libfoo.so.1".into()),
        // The last two entries become DT_RELA and DT_RELASZ below.
        needed: vec!["libc.so.6".into(), "x.so".into(), "y.so".into()],
        defined: vec![("foo".into(), None)],
        undefined: vec![("bar".into(), None)],
        hash_style: HashStyle::Both,
        ..Default::default()
    }));
    for p in e.phdrs() {
        if p.1 == PT_LOAD {
            e.set_ph(p.0, "filesz", len - p.2);
        }
    }
    let w = e.word();
    let needed: Vec<u64> = e
        .dynamic()
        .into_iter()
        .filter(|d| d.1 == DT_NEEDED)
        .map(|d| d.0)
        .collect();
    for (at, (tag, val)) in needed[1..].iter().zip([(DT_RELA, 0), (DT_RELASZ, len / 2)]) {
        e.wr(*at, w, tag);
        e.wr(at + w as u64, w, val);
    }
    e.set_dyn(DT_STRSZ, len);
    e.set_dyn(DT_PLTRELSZ, len / 2);
    if let Some(h) = e.table(DT_HASH) {
        e.wr(h + 4, 4, u32::MAX as u64);
    }
    if let Some(g) = e.table(DT_GNU_HASH) {
        e.wr(g, 4, u32::MAX as u64);
    }
    e.b
}

/// A GNU-hash-only library whose bucket array claims almost all of an
/// 8 GiB file and whose chains never end.
fn huge_gnu_hash_lib(len: u64) -> Vec<u8> {
    let mut e = Elf::new(elfgen::build(&ElfSpec {
        soname: Some("libfoo.so.1".into()),
        needed: vec!["libc.so.6".into()],
        defined: vec![("foo".into(), None)],
        undefined: vec![("bar".into(), None)],
        hash_style: HashStyle::Gnu,
        ..Default::default()
    }));
    for p in e.phdrs() {
        if p.1 == PT_LOAD {
            e.set_ph(p.0, "filesz", len - p.2);
        }
    }
    if let Some(g) = e.table(DT_GNU_HASH) {
        let bloom = e.rd(g + 8, 4).unwrap_or(1);
        let buckets_at = g + 16 + bloom * 8;
        e.wr(g, 4, (len - buckets_at - 64) / 4);
        // The bucket pointing furthest, and chain words without an end bit.
        e.wr(g + 4, 4, 1);
        e.wr(buckets_at, 4, 1);
    }
    e.b
}

#[test]
fn sparse_8gib_files_cost_little_memory() {
    const LEN: u64 = 8 << 30;
    let r = app_root();
    // A sparse file of zeros first in the search path, a sparse ELF file
    // with tables as large as the file as the library, and a sparse
    // interpreter-sized libc variant in glibc-hwcaps.
    let zeros = r.host("/app/bin/libfoo.so.1");
    sparse(&zeros, &[], LEN);
    let lib = r.host("/app/lib/libfoo.so.1");
    fs::remove_file(&lib).unwrap();
    sparse(&lib, &huge_tables_lib(LEN), LEN);
    r.dir("/usr/lib/x86_64-linux-gnu/glibc-hwcaps/x86-64-v3");
    sparse(
        &r.host("/usr/lib/x86_64-linux-gnu/glibc-hwcaps/x86-64-v3/libc.so.6"),
        &elfgen::build(&ElfSpec {
            soname: Some("libc.so.6".into()),
            ..Default::default()
        }),
        LEN,
    );
    sparse(
        &r.host("/app/lib/libgnu.so.1"),
        &huge_gnu_hash_lib(LEN),
        LEN,
    );
    let st = host_tempdir("closure-hardening-out-");
    let out = st.path().join("out");
    for args in [
        vec![
            "--root",
            APP,
            "--format",
            "json",
            "--library-path",
            "/app/bin",
        ],
        vec!["--root", APP, "--check-symbols", "--format", "json"],
        vec!["--root", "/app/lib/libfoo.so.1", "--check-symbols"],
        vec!["--root", "/app/lib/libgnu.so.1", "--check-symbols"],
    ] {
        let run = run_in(&r, &args);
        run.assert_sane(&format!("{args:?}"));
        eprintln!("{args:?}: peak RSS about {} KiB", run.peak_kb);
        assert!(
            run.peak_kb <= MAX_PEAK_KB,
            "{args:?}: peak RSS {} KiB (limit {MAX_PEAK_KB} KiB)",
            run.peak_kb
        );
        if let Some(kb) = exact_peak_kb(&r, &args) {
            eprintln!("{args:?}: peak RSS {kb} KiB (/usr/bin/time)");
            assert!(
                kb <= MAX_PEAK_KB,
                "{args:?}: peak RSS {kb} KiB by /usr/bin/time (limit {MAX_PEAK_KB} KiB)"
            );
        }
    }
    // Staging the sparse file itself is not attempted: the zeros file is
    // fatal, so nothing is staged without --allow-missing.
    let run = run_in(
        &r,
        &[
            "--root",
            APP,
            "--library-path",
            "/app/bin",
            "--out",
            out.to_str().unwrap(),
        ],
    );
    run.assert_sane("staging");
    assert_eq!(run.code, Some(1), "{}", run.stderr);
    assert!(!out.exists());
    assert!(leftovers(st.path()).is_empty());
}

/// Staging copies a sparse file's data and leaves its holes holes: a
/// library with a 1 GiB hole and data on either side, and an included data
/// file of 4 GiB with 4 KiB of data in its middle, stage in about the space
/// their data takes, byte for byte equal where they hold data.
#[test]
fn staging_keeps_holes_of_sparse_files() {
    use std::os::unix::fs::FileExt;
    const GIB: u64 = 1 << 30;
    let r = app_root();
    let lib = r.host("/app/lib/libfoo.so.1");
    let head = fs::read(&lib).expect("read libfoo");
    sparse(&lib, &head, 2 * GIB);
    let marker = b"data past the hole";
    fs::OpenOptions::new()
        .write(true)
        .open(&lib)
        .and_then(|f| f.write_all_at(marker, GIB + 12_345))
        .expect("write past the hole");
    r.dir("/srv");
    let img = r.host("/srv/disk.img");
    sparse(&img, &[], 4 * GIB);
    fs::OpenOptions::new()
        .write(true)
        .open(&img)
        .and_then(|f| f.write_all_at(&[0x5a; 4096], 2 * GIB))
        .expect("write the middle");
    let st = host_tempdir("closure-hardening-out-");
    let out = st.path().join("out");
    let run = run_in(
        &r,
        &[
            "--root",
            APP,
            "--include",
            "/srv/disk.img",
            "--out",
            out.to_str().unwrap(),
        ],
    );
    run.assert_sane("staging sparse files");
    assert_eq!(run.code, Some(0), "{}", run.stderr);
    for (path, len, at, want) in [
        ("app/lib/libfoo.so.1", 2 * GIB, 0, &head[..]),
        ("app/lib/libfoo.so.1", 2 * GIB, GIB + 12_345, &marker[..]),
        ("srv/disk.img", 4 * GIB, 2 * GIB, &[0x5a; 4096][..]),
    ] {
        let staged = out.join(path);
        let m = fs::metadata(&staged).expect("staged file");
        assert_eq!(m.len(), len, "{path}: length");
        let mut got = vec![0u8; want.len()];
        fs::File::open(&staged)
            .and_then(|f| f.read_exact_at(&mut got, at))
            .expect("read staged");
        assert_eq!(got, want, "{path}: bytes at {at}");
        let source = fs::metadata(r.host(&format!("/{path}"))).expect("source");
        // Allocated space: the source's, give or take a few blocks (a file
        // system may round a data range up to its own extents).
        let (mine, theirs) = (m.blocks() * 512, source.blocks() * 512);
        assert!(
            mine <= theirs + (4 << 20),
            "{path}: {mine} bytes allocated staged, {theirs} in the sysroot"
        );
    }
    // Nothing left beside the output (`leftovers` would read the 6 GiB).
    let beside: Vec<_> = fs::read_dir(st.path())
        .expect("list")
        .flatten()
        .map(|e| e.file_name())
        .collect();
    assert_eq!(beside, ["out"], "{beside:?}");
}

/// The exact peak RSS of a run, from `/usr/bin/time -f %M`, when available.
fn exact_peak_kb(r: &FakeRoot, args: &[&str]) -> Option<u64> {
    if !Path::new("/usr/bin/time").exists() {
        return None;
    }
    let log = tempfile::NamedTempFile::new().ok()?;
    let mut all: Vec<OsString> = vec![
        "-f".into(),
        "%M".into(),
        "-o".into(),
        log.path().into(),
        closure_bin().into(),
        "--sysroot".into(),
        r.path().into(),
    ];
    all.extend(args.iter().map(OsString::from));
    let run = run_cmd_watchdog(OsStr::new("/usr/bin/time"), &all, Duration::from_secs(120));
    if run.signal.is_some() {
        return None;
    }
    fs::read_to_string(log.path())
        .ok()?
        .lines()
        .last()?
        .trim()
        .parse()
        .ok()
}

// ---------------------------------------------------------------------------------------------
// Output safety
// ---------------------------------------------------------------------------------------------

/// Every non-directory entry of `before` is unchanged in `after`, and every
/// directory of `before` still exists.
fn assert_preserved(before: &BTreeMap<PathBuf, String>, ctx: &str) {
    for (p, desc) in before {
        let now = fs::symlink_metadata(p);
        assert!(now.is_ok(), "{ctx}: {} was deleted", p.display());
        if now.is_ok_and(|m| m.is_dir()) {
            continue;
        }
        let after = snapshot(p.parent().expect("parent"));
        assert_eq!(
            after.get(p),
            Some(desc),
            "{ctx}: {} was changed",
            p.display()
        );
    }
}

#[test]
fn force_into_an_out_with_links_never_writes_elsewhere() {
    let r = app_root();
    let victim = host_tempdir("closure-hardening-victim-");
    let v = fs::canonicalize(victim.path()).unwrap();
    fs::create_dir_all(v.join("lib/x86_64-linux-gnu")).unwrap();
    fs::write(v.join("keep.txt"), b"victim").unwrap();
    fs::write(v.join("prog"), b"victim prog").unwrap();
    let vs = v.display().to_string();
    let rel_victim = format!("{}{}", Marker::up(), vs.trim_start_matches('/'));
    // (what to plant in --out, described): each a link aiming at the victim
    // where the plan wants a directory, a file or another link.
    type Plant = Box<dyn Fn(&Path)>;
    let cases: Vec<(&str, Plant)> = vec![
        (
            "out/usr -> victim (absolute)",
            Box::new({
                let vs = vs.clone();
                move |o: &Path| std::os::unix::fs::symlink(&vs, o.join("usr")).unwrap()
            }),
        ),
        (
            "out/app -> victim (relative)",
            Box::new({
                let rel = rel_victim.clone();
                move |o: &Path| std::os::unix::fs::symlink(&rel, o.join("app")).unwrap()
            }),
        ),
        (
            "out/app/bin/prog -> victim/prog",
            Box::new({
                let vs = vs.clone();
                move |o: &Path| {
                    fs::create_dir_all(o.join("app/bin")).unwrap();
                    std::os::unix::fs::symlink(format!("{vs}/prog"), o.join("app/bin/prog"))
                        .unwrap()
                }
            }),
        ),
        (
            "out/usr/lib/x86_64-linux-gnu -> victim/lib/x86_64-linux-gnu",
            Box::new({
                let vs = vs.clone();
                move |o: &Path| {
                    fs::create_dir_all(o.join("usr/lib")).unwrap();
                    std::os::unix::fs::symlink(
                        format!("{vs}/lib/x86_64-linux-gnu"),
                        o.join("usr/lib/x86_64-linux-gnu"),
                    )
                    .unwrap()
                }
            }),
        ),
        (
            "out/lib -> victim/lib (where the plan has lib -> usr/lib)",
            Box::new({
                let vs = vs.clone();
                move |o: &Path| {
                    std::os::unix::fs::symlink(format!("{vs}/lib"), o.join("lib")).unwrap()
                }
            }),
        ),
    ];
    for (what, plant) in cases {
        let st = host_tempdir("closure-hardening-out-");
        let out = st.path().join("out");
        fs::create_dir(&out).unwrap();
        fs::write(out.join("user-file"), b"mine").unwrap();
        plant(&out);
        let victim_before = snapshot(&v);
        let out_before = snapshot(&out);
        let run = run_in(
            &r,
            &["--root", APP, "--out", out.to_str().unwrap(), "--force"],
        );
        run.assert_sane(what);
        assert_eq!(run.code, Some(2), "{what}: {}\n{}", run.stderr, run.stdout);
        assert!(
            run.stderr.contains("symbolic link"),
            "{what}: the error should say why: {}",
            run.stderr
        );
        assert_eq!(victim_before, snapshot(&v), "{what}: the victim changed");
        assert_preserved(&out_before, what);
        assert!(leftovers(st.path()).is_empty(), "{what}: leftovers");
    }
}

#[test]
fn out_inside_the_sysroot_touches_nothing_else() {
    let r = app_root();
    let before = snapshot(r.path());
    let out = r.host("/staging");
    let run = run_in(&r, &["--root", APP, "--out", out.to_str().unwrap()]);
    run.assert_sane("out inside");
    assert_eq!(run.code, Some(0), "{}", run.stderr);
    assert!(out.join("app/bin/prog").is_file());
    let mut after = snapshot(r.path());
    after.retain(|p, _| !p.starts_with(&out));
    // The root directory's own mtime changes (a new entry); nothing below.
    assert_eq!(
        before.keys().collect::<Vec<_>>(),
        after.keys().collect::<Vec<_>>(),
        "entries of the sysroot appeared or vanished"
    );
    assert_preserved(&before, "out inside the sysroot");
    // Tracing again ignores the staged copy; staging again with --force works.
    let run = run_in(
        &r,
        &["--root", APP, "--out", out.to_str().unwrap(), "--force"],
    );
    run.assert_sane("again");
    assert_eq!(run.code, Some(0), "{}", run.stderr);
    // A non-empty directory of the sysroot as --out: only additions.
    let libdir = r.host("/usr/lib/x86_64-linux-gnu");
    let before = snapshot(r.path());
    let run = run_in(
        &r,
        &["--root", APP, "--out", libdir.to_str().unwrap(), "--force"],
    );
    run.assert_sane("out = a library directory of the sysroot");
    assert_preserved(&before, "out = a library directory of the sysroot");
    assert!(leftovers(r.path()).is_empty());
}

#[test]
fn out_equal_to_or_containing_the_sysroot_is_refused() {
    let base = host_tempdir("closure-hardening-base-");
    let b = fs::canonicalize(base.path()).unwrap();
    let r = app_root();
    // The sysroot and a link to it.
    let link = b.join("link-to-root");
    std::os::unix::fs::symlink(r.path(), &link).unwrap();
    let before = snapshot(r.path());
    let root_s = r.sysroot();
    let dotted = format!("{root_s}/usr/..");
    let cases: Vec<(String, Vec<&str>, &str)> = vec![
        (root_s.clone(), vec![], "not empty"),
        (root_s.clone(), vec!["--force"], "sysroot"),
        (format!("{root_s}/."), vec!["--force"], "sysroot"),
        (dotted.clone(), vec!["--force"], "sysroot"),
        (link.display().to_string(), vec!["--force"], "symbolic link"),
    ];
    for (out, extra, says) in &cases {
        let mut args = vec!["--root", APP, "--out", out.as_str()];
        args.extend(extra.iter().copied());
        let run = run_in(&r, &args);
        run.assert_sane(out);
        assert_eq!(run.code, Some(2), "--out {out} {extra:?}: {}", run.stderr);
        assert!(
            run.stderr.contains(says),
            "--out {out} {extra:?}: expected {says:?} in: {}",
            run.stderr
        );
        assert_eq!(
            before,
            snapshot(r.path()),
            "--out {out}: the sysroot changed"
        );
    }
    // --out a directory that contains the sysroot.
    let outer = FakeRoot::new();
    let sys = outer.path().join("nested/root");
    fs::create_dir_all(&sys).unwrap();
    copy_tree(r.path(), &sys);
    let before = snapshot(outer.path());
    let parent = outer.path().join("nested");
    let run = closure_run(&[
        OsStr::new("--sysroot"),
        sys.as_os_str(),
        OsStr::new("--root"),
        OsStr::new(APP),
        OsStr::new("--out"),
        parent.as_os_str(),
        OsStr::new("--force"),
    ]);
    run.assert_sane("out contains the sysroot");
    assert_eq!(run.code, Some(2), "{}", run.stderr);
    assert!(run.stderr.contains("sysroot"), "{}", run.stderr);
    assert_eq!(before, snapshot(outer.path()), "something was written");
}

/// Copies a tree (files, directories, symlinks as links).
fn copy_tree(from: &Path, to: &Path) {
    for e in fs::read_dir(from).unwrap().flatten() {
        let src = e.path();
        let dst = to.join(e.file_name());
        let m = fs::symlink_metadata(&src).unwrap();
        if m.file_type().is_symlink() {
            std::os::unix::fs::symlink(fs::read_link(&src).unwrap(), &dst).unwrap();
        } else if m.is_dir() {
            fs::create_dir(&dst).unwrap();
            copy_tree(&src, &dst);
        } else {
            fs::copy(&src, &dst).unwrap();
        }
    }
}

/// Runs `script` (with `$1.. = args`) in a private mount namespace; returns
/// the run (a 300 s watchdog applies).
fn in_mount_namespace(script: &str, args: &[&OsStr]) -> Run {
    let mut all: Vec<OsString> = [
        "--mount",
        "--propagation",
        "private",
        "--",
        "/bin/sh",
        "-c",
        script,
        "sh",
    ]
    .iter()
    .map(OsString::from)
    .collect();
    all.extend(args.iter().map(|a| a.to_os_string()));
    run_cmd_watchdog(OsStr::new("unshare"), &all, Duration::from_secs(300))
}

fn exit_line(stdout: &str) -> i32 {
    stdout
        .lines()
        .find_map(|l| l.strip_prefix("closure-exit="))
        .and_then(|c| c.trim().parse().ok())
        .unwrap_or_else(|| panic!("no exit line in:\n{stdout}"))
}

/// The search for where a missing library lives walks the sysroot on its
/// own file system only: a copy on a file system mounted inside it (here a
/// tmpfs, in a private mount namespace) is not named, one beside it is.
#[test]
fn hints_for_a_missing_library_stay_on_the_sysroots_file_system() {
    const NAME: &str = "hints_for_a_missing_library_stay_on_the_sysroots_file_system";
    if needs_root(NAME) {
        return;
    }
    let root = host_tempdir("closure-hardening-hints-");
    let sysroot = root.path();
    for d in ["bin", "opt/x", "mnt"] {
        fs::create_dir_all(sysroot.join(d)).unwrap();
    }
    let exe = ElfSpec {
        kind: Kind::Exec,
        needed: vec!["libmissing.so.1".into()],
        ..Default::default()
    };
    fs::write(sysroot.join("bin/prog"), elfgen::build(&exe)).unwrap();
    fs::write(sysroot.join("opt/x/libmissing.so.1"), b"beside").unwrap();
    let script = r#"set -u
mount -t tmpfs tmpfs "$1/mnt" || exit 90
mkdir -p "$1/mnt/y" && echo mounted > "$1/mnt/y/libmissing.so.1" || exit 91
"$2" --sysroot "$1" --root /bin/prog
echo "closure-exit=$?"
"#;
    let run = in_mount_namespace(script, &[sysroot.as_os_str(), OsStr::new(closure_bin())]);
    assert_eq!(run.code, Some(0), "namespace set-up failed: {run:?}");
    assert_eq!(exit_line(&run.stdout), 1, "{}", run.stderr);
    assert!(
        run.stderr
            .contains("libmissing.so.1 exists at /opt/x/libmissing.so.1"),
        "{}",
        run.stderr
    );
    assert!(!run.stderr.contains("/mnt/y"), "{}", run.stderr);
    assert!(mounts_below(sysroot).is_empty(), "the tmpfs leaked");
}

#[test]
fn read_only_parent_is_a_clear_error() {
    const NAME: &str = "read_only_parent_is_a_clear_error";
    if needs_root(NAME) {
        return;
    }
    let r = app_root();
    let parent = host_tempdir("closure-hardening-ro-");
    fs::write(parent.path().join("existing"), b"x").unwrap();
    fs::create_dir(parent.path().join("empty-out")).unwrap();
    let before = snapshot(parent.path());
    // A read-only bind mount of the parent, in a private namespace.
    let script = r#"set -u
mount --bind "$1" "$1" && mount -o remount,bind,ro "$1" "$1" || exit 90
"$2" --sysroot "$3" --root "$4" --out "$1/out"
echo "closure-exit=$?"
"$2" --sysroot "$3" --root "$4" --out "$1/empty-out"
echo "closure-exit2=$?"
"#;
    let run = in_mount_namespace(
        script,
        &[
            parent.path().as_os_str(),
            OsStr::new(closure_bin()),
            r.path().as_os_str(),
            OsStr::new(APP),
        ],
    );
    assert_eq!(run.code, Some(0), "namespace set-up failed: {run:?}");
    let code = exit_line(&run.stdout);
    assert_eq!(code, 2, "{}", run.stderr);
    assert!(
        run.stderr.contains("Read-only file system"),
        "the error should say why: {}",
        run.stderr
    );
    assert!(
        run.stderr.contains(&parent.path().display().to_string()),
        "the error should name the path: {}",
        run.stderr
    );
    let code2: i32 = run
        .stdout
        .lines()
        .find_map(|l| l.strip_prefix("closure-exit2="))
        .and_then(|c| c.trim().parse().ok())
        .expect("second exit");
    assert_eq!(code2, 2, "{}", run.stderr);
    assert_eq!(before, snapshot(parent.path()), "the parent changed");

    // The same as an unprivileged user in a directory it may not write.
    let sys = app_root();
    for (p, _) in snapshot(sys.path()) {
        let m = fs::symlink_metadata(&p).unwrap();
        if m.is_dir() || m.is_file() {
            fs::set_permissions(&p, fs::Permissions::from_mode(0o755)).unwrap();
        }
    }
    fs::set_permissions(sys.path(), fs::Permissions::from_mode(0o755)).unwrap();
    let ro = host_tempdir("closure-hardening-ro-nobody-");
    fs::set_permissions(ro.path(), fs::Permissions::from_mode(0o555)).unwrap();
    let before = snapshot(ro.path());
    let out = ro.path().join("out");
    let args: Vec<OsString> = [
        "--reuid=65534",
        "--regid=65534",
        "--clear-groups",
        "--",
        closure_bin(),
        "--sysroot",
        sys.path().to_str().unwrap(),
        "--root",
        APP,
        "--out",
        out.to_str().unwrap(),
    ]
    .iter()
    .map(OsString::from)
    .collect();
    let run = run_cmd_watchdog(OsStr::new("setpriv"), &args, Duration::from_secs(120));
    run.assert_sane("as nobody");
    assert_eq!(run.code, Some(2), "{}", run.stderr);
    assert!(run.stderr.contains("Permission denied"), "{}", run.stderr);
    assert_eq!(before, snapshot(ro.path()));
}

/// A root whose closure is about 3 MiB (libfoo padded), for a 1 MiB tmpfs.
fn big_root() -> FakeRoot {
    let r = app_root();
    let mut lib = elfgen::build(&ElfSpec {
        soname: Some("libfoo.so.1".into()),
        needed: vec!["libc.so.6".into()],
        ..Default::default()
    });
    lib.resize(3 << 20, 0xa5);
    fs::remove_file(r.host("/app/lib/libfoo.so.1")).unwrap();
    r.file_mode("/app/lib/libfoo.so.1", &lib, 0o755);
    r
}

#[test]
fn full_file_system_leaves_nothing_half_written() {
    const NAME: &str = "full_file_system_leaves_nothing_half_written";
    if needs_root(NAME) {
        return;
    }
    let r = big_root();
    let mnt = host_tempdir("closure-hardening-full-");
    // 1: a fresh --out. 2: --force into an --out holding a file of the user.
    let script = r#"set -u
mount -t tmpfs -o size=1m tmpfs "$1" || exit 90
"$2" --sysroot "$3" --root "$4" --out "$1/out"
echo "closure-exit=$?"
echo "left-fresh:"; ls -A "$1"; echo "end"
mkdir "$1/out" && echo mine > "$1/out/user-file"
"$2" --sysroot "$3" --root "$4" --out "$1/out" --force
echo "closure-exit-force=$?"
echo "files:"; find "$1" -type f -printf '%P %s\n'; echo "end"
echo "user-file=$(cat "$1/out/user-file")"
"#;
    let run = in_mount_namespace(
        script,
        &[
            mnt.path().as_os_str(),
            OsStr::new(closure_bin()),
            r.path().as_os_str(),
            OsStr::new(APP),
        ],
    );
    assert_eq!(run.code, Some(0), "namespace set-up failed: {run:?}");
    assert_eq!(exit_line(&run.stdout), 2, "{}", run.stderr);
    assert!(run.stderr.contains("No space left"), "{}", run.stderr);
    let section = |name: &str| -> Vec<String> {
        run.stdout
            .split_once(&format!("{name}:\n"))
            .map(|(_, rest)| {
                rest.lines()
                    .take_while(|l| *l != "end")
                    .map(str::to_owned)
                    .collect()
            })
            .unwrap_or_default()
    };
    assert!(
        section("left-fresh").is_empty(),
        "left in the full file system: {:?}",
        section("left-fresh")
    );
    let force_code: i32 = run
        .stdout
        .lines()
        .find_map(|l| l.strip_prefix("closure-exit-force="))
        .and_then(|c| c.parse().ok())
        .expect("force exit");
    assert_eq!(force_code, 2, "{}", run.stderr);
    assert!(run.stdout.contains("user-file=mine"), "{}", run.stdout);
    // Every staged file present is complete: same size as in the sysroot.
    for line in section("files") {
        let (rel, size) = line.rsplit_once(' ').expect("find line");
        let rel = rel.strip_prefix("out/").unwrap_or(rel);
        assert!(
            !rel.contains(".closure-new") && !rel.contains(".closure-tmp-"),
            "leftover {rel}"
        );
        if rel == "user-file" {
            continue;
        }
        let src = r
            .resolve(&format!("/{rel}"))
            .unwrap_or_else(|| panic!("staged {rel} is not in the sysroot"));
        let want = fs::metadata(r.host(src.to_str().unwrap())).unwrap().len();
        assert_eq!(size.parse::<u64>().unwrap(), want, "{rel} is half-written");
    }
    assert!(
        mnt.path().read_dir().unwrap().next().is_none(),
        "the tmpfs leaked"
    );
}

// ---------------------------------------------------------------------------------------------
// No unsafe code anywhere
// ---------------------------------------------------------------------------------------------

#[test]
fn unsafe_code_is_forbidden_everywhere() {
    let top = Path::new(env!("CARGO_MANIFEST_DIR"));
    let manifest = fs::read_to_string(top.join("Cargo.toml")).unwrap();
    assert!(
        manifest.contains("unsafe_code = \"forbid\""),
        "Cargo.toml must forbid unsafe code"
    );
    for (file, what) in [
        ("xtask/Cargo.toml", "unsafe_code = \"forbid\""),
        ("fuzz/Cargo.toml", "unsafe_code = \"forbid\""),
        ("fuzz/src/lib.rs", "#![forbid(unsafe_code)]"),
    ] {
        let text = fs::read_to_string(top.join(file)).unwrap();
        assert!(text.contains(what), "{file} must contain {what}");
    }
    // Nothing may try to lift it.
    let mut stack = vec![top.join("src"), top.join("xtask"), top.join("fuzz")];
    while let Some(d) = stack.pop() {
        for e in fs::read_dir(&d).unwrap().flatten() {
            let p = e.path();
            if p.is_dir() {
                if !p.ends_with("target") && !p.ends_with("corpus") {
                    stack.push(p);
                }
            } else if p.extension() == Some(OsStr::new("rs")) {
                let text = fs::read_to_string(&p).unwrap();
                let needle = ["allow(", "unsafe_code)"].concat();
                assert!(
                    !text.contains(&needle),
                    "{} allows unsafe code",
                    p.display()
                );
                let block = ["unsafe", " {"].concat();
                assert!(
                    !text.contains(&block),
                    "{} has an unsafe block",
                    p.display()
                );
            }
        }
    }
}

/// A run with fewer roots than `PARALLEL_ROOTS` (the usual run: one
/// program) is traced on the calling thread and never starts the thread
/// pool; a run with that many roots does start it. Counted as `clone`
/// system calls under `strace -f`; fails if the pool is started for one
/// root (the cost this rule removes) or never started for many. (The
/// files here were just written, so in memory: files on the disk start
/// helper threads even for one root, `disk.rs`.)
#[test]
fn one_root_starts_no_threads_and_many_roots_do() {
    let name = "one_root_starts_no_threads_and_many_roots_do";
    if !strace_works() {
        eprintln!("skipping {name}: strace is not usable here");
        return;
    }
    let r = FakeRoot::new();
    r.debian_base(Arch::X86_64, Layout::DEBIAN12);
    let n = closure::graph::build::PARALLEL_ROOTS;
    let mut roots = Vec::new();
    for i in 0..n {
        let path = format!("/app/bin/p{i}");
        r.elf(
            &path,
            &ElfSpec {
                arch: Some(Arch::X86_64),
                kind: Kind::Exec,
                needed: vec!["libc.so.6".into()],
                ..Default::default()
            },
        );
        roots.push(path);
    }
    let trace = tempfile::tempdir().expect("tempdir");
    let clones = |roots: &[String]| -> usize {
        let log = trace.path().join("strace.log");
        let mut cmd = Command::new("strace");
        cmd.args(["-f", "-e", "trace=clone,clone3", "-o"])
            .arg(&log)
            .arg(closure_bin())
            .arg("--sysroot")
            .arg(r.path());
        for root in roots {
            cmd.args(["--root", root]);
        }
        let out = cmd
            .args(["--format", "list"])
            .env_remove("RAYON_NUM_THREADS")
            .stdin(Stdio::null())
            .output()
            .expect("run strace");
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let listed = String::from_utf8_lossy(&out.stdout);
        for root in roots {
            assert!(listed.contains(root.as_str()), "{listed}");
        }
        fs::read_to_string(&log)
            .expect("strace log")
            .lines()
            .filter(|l| l.contains("clone"))
            .count()
    };
    assert_eq!(clones(&roots[..1]), 0, "one root started threads");
    assert_eq!(
        clones(&roots[..n - 1]),
        0,
        "{} roots started threads",
        n - 1
    );
    assert!(clones(&roots) > 0, "{n} roots never started the pool");
}

/// A Debian 12 base with `/app/bin/server`, which needs only libc: the
/// smallest usual run.
fn server_root() -> FakeRoot {
    let r = FakeRoot::new();
    r.debian_base(Arch::X86_64, Layout::DEBIAN12);
    r.elf(
        "/app/bin/server",
        &ElfSpec {
            arch: Some(Arch::X86_64),
            kind: Kind::Exec,
            needed: vec!["libc.so.6".into()],
            ..Default::default()
        },
    );
    r
}

/// A process about to exit need not hand its heap back to the kernel: the
/// allocator is built without its collect-at-exit pass (`.cargo/config.toml`
/// sets `MI_SKIP_COLLECT_ON_EXIT`), which cost a run 0.1–0.3 ms of serial
/// work and one `madvise` per freed region. With the pass, a one-program
/// run makes at least one `madvise` after it has written its output; without
/// it, none. (Before the output, the allocator may purge freed memory when
/// its purge delay passes, as on a loaded machine: that is not at exit.)
#[test]
fn exit_returns_no_memory_to_the_kernel() {
    let name = "exit_returns_no_memory_to_the_kernel";
    if !strace_works() {
        eprintln!("skipping {name}: strace is not usable here");
        return;
    }
    let r = server_root();
    let trace = tempfile::tempdir().expect("tempdir");
    let log = trace.path().join("strace.log");
    let out = Command::new("strace")
        .args(["-f", "-e", "trace=madvise,write", "-o"])
        .arg(&log)
        .arg(closure_bin())
        .arg("--sysroot")
        .arg(r.path())
        .args(["--root", "/app/bin/server", "--format", "list"])
        .stdin(Stdio::null())
        .output()
        .expect("run strace");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("/app/bin/server"),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    let log = fs::read_to_string(&log).expect("strace log");
    let lines: Vec<&str> = log.lines().collect();
    let output = lines
        .iter()
        .rposition(|l| l.contains("write(1,"))
        .unwrap_or_else(|| panic!("no write of the output in the trace:\n{log}"));
    let calls: Vec<&str> = lines[output..]
        .iter()
        .copied()
        .filter(|l| l.contains("madvise("))
        .collect();
    assert!(calls.is_empty(), "memory handed back at exit: {calls:?}");
}

/// The read-ahead follows search paths speculatively. Programs whose
/// RUNPATH leads back to themselves under an ever longer name
/// (`$ORIGIN/.`, needing their own file name) must not make it read
/// forever: the run ends, with the same answer on one thread (no
/// read-ahead) as on two. More of them than `PARALLEL_ROOTS`, so that the
/// read-ahead runs at all.
#[test]
fn read_ahead_ends_on_a_search_path_back_to_itself() {
    let r = FakeRoot::new();
    r.debian_base(Arch::X86_64, Layout::DEBIAN12);
    let progs: Vec<String> = (0..closure::graph::build::PARALLEL_ROOTS)
        .map(|i| format!("prog{i}"))
        .collect();
    for p in &progs {
        r.elf(
            &format!("/app/bin/{p}"),
            &ElfSpec {
                arch: Some(Arch::X86_64),
                kind: Kind::Exec,
                needed: vec![p.clone(), "libc.so.6".into()],
                runpath: Some("$ORIGIN/.".into()),
                ..Default::default()
            },
        );
    }
    let roots: Vec<String> = progs
        .iter()
        .flat_map(|p| ["--root".to_string(), format!("/app/bin/{p}")])
        .collect();
    let run = |threads: &str| -> String {
        let mut child = Command::new(closure_bin())
            .args(["--sysroot"])
            .arg(r.path())
            .args(&roots)
            .args(["--format", "list"])
            .env("RAYON_NUM_THREADS", threads)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn closure");
        let start = Instant::now();
        loop {
            if child.try_wait().expect("wait").is_some() {
                break;
            }
            if start.elapsed() > Duration::from_secs(60) {
                let _ = child.kill();
                panic!("closure did not finish within 60 s on {threads} thread(s)");
            }
            std::thread::sleep(Duration::from_millis(5));
        }
        let mut out = String::new();
        child
            .stdout
            .take()
            .expect("stdout")
            .read_to_string(&mut out)
            .expect("read stdout");
        out
    };
    let two = run("2");
    for p in &progs {
        assert!(two.contains(&format!("/app/bin/{p}\n")), "{two}");
    }
    assert_eq!(two, run("1"));
}

/// A library whose string table is large (the libgcc_s rule looks names up
/// in its GNU hash table instead of reading it) and whose one hash chain
/// holds every symbol, each entry claiming `pthread_cancel`'s hash. An
/// uncapped lookup would read two small pieces per entry (tens of
/// thousands of `pread64`s); the lookup gives up after a few dozen and
/// the exhaustive scan answers, the same as on the file read whole.
#[test]
fn hash_lookups_of_a_hostile_chain_are_capped() {
    let name = "hash_lookups_of_a_hostile_chain_are_capped";
    if !strace_works() {
        eprintln!("skipping {name}: strace is not usable here");
        return;
    }
    const SYMBOLS: usize = 40_000;
    let mut e = Elf::new(elfgen::build(&ElfSpec {
        soname: Some("libfoo.so.1".into()),
        needed: vec!["libc.so.6".into()],
        defined: (0..SYMBOLS)
            .map(|i| (format!("a_defined_function_with_a_long_name_{i:06}"), None))
            .collect(),
        undefined: vec![("pthread_exit".into(), None)],
        hash_style: HashStyle::Gnu,
        ..Default::default()
    }));
    let g = e.table(DT_GNU_HASH).expect("DT_GNU_HASH");
    let (nbuckets, symoffset, bloom) = (
        e.rd(g, 4).unwrap(),
        e.rd(g + 4, 4).unwrap(),
        e.rd(g + 8, 4).unwrap(),
    );
    assert_eq!(nbuckets, 1, "elfgen writes one bucket: one chain");
    let chains = g + 16 + bloom * 8 + nbuckets * 4;
    let h = b"pthread_cancel".iter().fold(5381u32, |h, &c| {
        h.wrapping_mul(33).wrapping_add(u32::from(c))
    });
    let hashed = SYMBOLS as u64 + 1 + 1 - symoffset;
    for i in 0..hashed {
        let end = u64::from(i + 1 == hashed);
        e.wr(chains + 4 * i, 4, u64::from(h & !1) | end);
    }
    let r = app_root();
    fs::write(r.host("/app/lib/libfoo.so.1"), &e.b).unwrap();
    let lib = fs::File::open(r.host("/app/lib/libfoo.so.1")).unwrap();
    let info = closure::elf::parse_file(&lib).unwrap();
    let (s, end) = info.tables.strtab().unwrap();
    assert!(end - s > 64 << 10, "the string table must be large");
    const NAMES: &[&[u8]] = &[b"pthread_cancel", b"pthread_exit", b"backtrace"];
    let fast = closure::elf::read_file(&lib, e.b.len() as u64, NAMES).uses;
    let exhaustive = closure::elf::symbols::first_undefined_of(&lib, &info, NAMES);
    assert_eq!(fast, exhaustive);
    assert_eq!(fast.as_deref(), Some(&b"pthread_exit"[..]));

    let log = tempfile::NamedTempFile::new().unwrap();
    let mut args: Vec<OsString> = vec![
        "-f".into(),
        "-c".into(),
        "-e".into(),
        "trace=pread64".into(),
        "-o".into(),
        log.path().into(),
        closure_bin().into(),
        "--sysroot".into(),
        r.path().into(),
    ];
    args.extend(["--root", APP, "--format", "json"].map(OsString::from));
    let run = run_cmd_watchdog(OsStr::new("strace"), &args, Duration::from_secs(120));
    assert_eq!(run.code, Some(0), "{}", run.stderr);
    let summary = fs::read_to_string(log.path()).unwrap();
    let preads: u64 = summary
        .lines()
        .find(|l| l.trim_end().ends_with("pread64"))
        .and_then(|l| l.split_whitespace().nth(3))
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no pread64 count in:\n{summary}"));
    assert!(preads < 2_000, "{preads} pread64 calls:\n{summary}");
}

/// The allocator reads no `MIMALLOC_*` variable: asking the environment for
/// each of its options cost every run ≈ 50,000 instructions (90 `getenv`
/// calls, 4% of a one-program run), so `.cargo/config.toml` builds it with
/// `MI_NO_GETENV`. Read, these two would print its options at start and
/// its statistics at exit on standard error.
#[test]
fn the_allocator_reads_no_environment() {
    let r = server_root();
    let out = Command::new(closure_bin())
        .arg("--sysroot")
        .arg(r.path())
        .args(["--root", "/app/bin/server", "--format", "list"])
        .env("MIMALLOC_VERBOSE", "1")
        .env("MIMALLOC_SHOW_STATS", "1")
        .stdin(Stdio::null())
        .output()
        .expect("run closure");
    assert!(out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("/app/bin/server"),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    assert!(
        out.stderr.is_empty(),
        "the allocator read its options from the environment:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
}
