//! Fuzz harnesses of `closure`, one public function per target.
//!
//! The `fuzz_targets/*.rs` binaries only hand libFuzzer's input to these
//! functions; `tests/hardening.rs` of the main crate includes this file too
//! and replays the seed corpus and every crash found through the very same
//! code. A harness returns normally for any input the library handles
//! correctly and panics (which libFuzzer records as a crash) when the
//! library panics or breaks one of the invariants checked here.
//!
//! Targets:
//! - [`elf`]: `elf::parse` on the bytes, `elf::parse_file` plus
//!   `elf::symbols::read` on the same bytes written to a file (both parses
//!   must agree), and `elf::read_file`'s libgcc_s answer against the
//!   exhaustive scan.
//! - [`notes`]: the `.note.dlopen` parser (`elf::notes`), segment and JSON.
//! - [`ldcache`]: `resolve::ldcache::parse` for both byte orders, and a
//!   re-encode / re-parse round trip of whatever parses.
//! - [`ldconf`]: `resolve::ldconf::parse` on the input (split at `0xff`
//!   bytes into up to four configuration files) inside a small root with
//!   include cycles, directory loops and links that aim outside it.
//! - [`resolver`]: the input decoded into a small tree of directories,
//!   symbolic links, ELF files, FIFOs, sockets and sparse files in a
//!   temporary root, then `graph::build`, `--check-symbols`, every report
//!   format, the staging plan and a real staging into a fresh `--out`, with
//!   a marker library planted outside the root that must never show up.

#![forbid(unsafe_code)]

use std::cell::RefCell;
use std::collections::BTreeMap;
use std::fs::{self, File, OpenOptions};
use std::io::{Seek, Write};
use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

use closure::elf;
use closure::resolve::{ldcache, ldconf};
use closure::rootfs::RootFs;

// The synthetic ELF writer of the main crate's tests; when this file is
// itself compiled into those tests (`tests/hardening.rs`), their copy.
#[cfg(not(test))]
#[allow(dead_code, clippy::all)]
#[path = "../../tests/support/elfgen.rs"]
mod elfgen;
#[cfg(test)]
use crate::support::elfgen;

use elfgen::{Arch, ElfSpec, Kind};

// ---------------------------------------------------------------------------
// ELF reader
// ---------------------------------------------------------------------------

thread_local! {
    /// One scratch file per thread, rewritten for every input.
    static SCRATCH: RefCell<Option<File>> = const { RefCell::new(None) };
}

/// `elf::parse` on the bytes and through a file, `elf::symbols::read`.
pub fn elf(data: &[u8]) {
    // A fresh allocation is aligned for the ELF header types.
    let owned = data.to_vec();
    let from_slice = elf::parse(&owned[..]);
    if let Ok(info) = &from_slice {
        check_info(info);
    }
    SCRATCH.with(|cell| {
        let mut slot = cell.borrow_mut();
        if slot.is_none() {
            *slot = Some(tempfile::tempfile().expect("scratch file"));
        }
        let Some(f) = slot.as_mut() else { return };
        f.set_len(0).expect("truncate scratch file");
        f.rewind().expect("rewind scratch file");
        f.write_all(data).expect("write scratch file");
        // The resolver reads a candidate's first 64 bytes before parsing
        // it: parsing must not depend on the file position.
        f.seek(std::io::SeekFrom::Start(64.min(data.len() as u64)))
            .expect("seek scratch file");
        // The interpreter search's read-only ranges lie inside the file.
        for (offset, size) in elf::read_only_data(f, data.len() as u64) {
            assert!(
                size > 0 && offset + size <= data.len() as u64,
                "range past the file"
            );
        }
        // `--dlopen-strings`: at most the cap, each once (in the order the
        // data spells them), each a library name that the file holds
        // followed by its NUL.
        let names = elf::libnames::library_names(f, data.len() as u64, &[]);
        assert!(names.len() <= elf::libnames::MAX_NAMES);
        let unique: std::collections::BTreeSet<&Vec<u8>> = names.iter().collect();
        assert_eq!(unique.len(), names.len(), "a name twice");
        for n in &names {
            assert!(elf::libnames::is_library_name(n));
            let mut z = n.clone();
            z.push(0);
            assert!(
                data.windows(z.len()).any(|w| w == z.as_slice()),
                "a name the file does not hold"
            );
        }
        let from_file = elf::parse_file(f);
        if let Ok(info) = &from_file {
            check_info(info);
            let _ = elf::libnames::calls_dlopen(f, info);
            let candidates = elf::libnames::dlopen_candidates(f, info, data.len() as u64);
            if names.len() < elf::libnames::MAX_NAMES {
                assert!(
                    candidates.iter().all(|c| names.contains(c)),
                    "a candidate not found"
                );
            }
            let syms = elf::symbols::read(f, info);
            for r in &syms.refs {
                assert!(r.index < syms.syms.len(), "reference past the symbol table");
            }
            assert!(syms.syms.len() as u64 <= data.len() as u64 / 16 + 1);
            // The resolver's one-pass read (string-table prefilter, GNU
            // hash lookups) answers the libgcc_s question exactly as the
            // exhaustive scan alone, whenever the hash table is one a
            // linker could have written (checked independently, reading
            // every table whole).
            let names: &[&[u8]] = &[b"pthread_cancel", b"pthread_exit", b"backtrace"];
            let facts = elf::read_file(f, data.len() as u64, names);
            if elf::symbols::gnu_hash_consistent(f, info, names) {
                assert_eq!(
                    facts.uses,
                    elf::symbols::first_undefined_of(f, info, names),
                    "read_file and the exhaustive scan disagree"
                );
            }
            assert_eq!(facts.head.as_slice(), &data[..data.len().min(64)]);
        }
        // The lazy file reader and the byte slice agree whenever both can
        // read the file, misaligned tables included: the file reader's
        // buffers start at 8-aligned file offsets, so `object` sees the same
        // alignment as in a slice of the whole file.
        if let (Ok(a), Ok(b)) = (&from_slice, &from_file) {
            assert_eq!(a, b, "parse of a slice and of a file differ");
        }
    });
}

fn check_info(info: &elf::ElfInfo) {
    if let Some(i) = &info.interp {
        assert!(i.len() <= 4096, "PT_INTERP longer than its cap");
        assert!(!i.contains(&0));
    }
    for s in info.needed.iter().chain(&info.filters) {
        assert!(!s.contains(&0), "a string with a NUL inside");
    }
}

// ---------------------------------------------------------------------------
// .note.dlopen
// ---------------------------------------------------------------------------

/// `elf::notes::parse_segment` and `x86_isa_needed` on a note segment and
/// `parse_payload` on the same bytes as JSON. The first byte picks the byte order and `p_align`.
pub fn notes(data: &[u8]) {
    let Some((&sel, rest)) = data.split_first() else {
        return;
    };
    let big = sel & 1 == 1;
    let align = [0u64, 1, 4, 8, 16, 3, u64::MAX][(sel >> 1) as usize % 7];
    let (entries, _warnings) = elf::notes::parse_segment(rest, big, align);
    assert!(entries.len() <= rest.len(), "more entries than bytes");
    let _ = elf::notes::x86_isa_needed(rest, big, align);
    let _ = elf::notes::parse_payload(rest);
}

// ---------------------------------------------------------------------------
// ld.so.cache
// ---------------------------------------------------------------------------

/// `ldcache::parse` for both byte orders; what parses must survive being
/// written again and re-read.
pub fn ldcache(data: &[u8]) {
    for big in [false, true] {
        // The borrowed decoding the resolver uses agrees with the owned
        // one: the same error, or the same entries and lookups.
        let index = ldcache::CacheIndex::parse(std::sync::Arc::new(data.to_vec()), big);
        let cache = match (ldcache::parse(data, big), index) {
            (Err(a), Err(b)) => {
                assert_eq!(a, b, "the two decodings fail differently");
                continue;
            }
            (Ok(cache), Ok(index)) => {
                let viewed: Vec<ldcache::CacheEntry> =
                    index.entries().map(|e| e.to_owned_entry()).collect();
                assert_eq!(viewed, cache.entries, "the two decodings differ");
                for e in &cache.entries {
                    let got: Vec<ldcache::CacheEntry> =
                        index.lookup(&e.key).map(|x| x.to_owned_entry()).collect();
                    let want: Vec<ldcache::CacheEntry> = cache.lookup(&e.key).cloned().collect();
                    assert_eq!(got, want, "the two lookups differ");
                }
                cache
            }
            (a, b) => panic!("parse: {:?}, CacheIndex: {:?}", a.err(), b.err()),
        };
        for e in &cache.entries {
            assert!(!e.key.contains(&0) && !e.value.contains(&0));
            // The key index gives exactly the entries a scan gives, in
            // file order.
            let scan: Vec<*const ldcache::CacheEntry> = cache
                .entries
                .iter()
                .filter(|x| x.key == e.key)
                .map(std::ptr::from_ref)
                .collect();
            let found: Vec<*const ldcache::CacheEntry> =
                cache.lookup(&e.key).map(std::ptr::from_ref).collect();
            assert_eq!(found, scan, "the key index and a scan differ");
            let _ = ldcache::flags_description(e.flags);
            let _ = e.isa_level();
        }
        let bytes = ldcache::write_new_with_hwcaps(
            &cache.entries,
            &cache.hwcaps_names,
            big,
            cache.generator.as_deref(),
        );
        let again = ldcache::parse(&bytes, big)
            .unwrap_or_else(|e| panic!("a cache written by write_new does not parse: {e}"));
        let sorted = |v: &[ldcache::CacheEntry]| {
            let mut v: Vec<_> = v
                .iter()
                .map(|e| (e.key.clone(), e.value.clone(), e.flags, e.hwcap))
                .collect();
            v.sort();
            v
        };
        assert_eq!(sorted(&cache.entries), sorted(&again.entries));
        assert_eq!(cache.hwcaps_names, again.hwcaps_names);
        assert_eq!(cache.generator, again.generator);
    }
    // libcmp is a total order: antisymmetric on any two byte strings.
    let (a, b) = data.split_at(data.len() / 2);
    assert_eq!(ldcache::libcmp(a, b), ldcache::libcmp(b, a).reverse());
    assert_eq!(ldcache::libcmp(a, a), std::cmp::Ordering::Equal);
}

// ---------------------------------------------------------------------------
// ld.so.conf
// ---------------------------------------------------------------------------

/// The files of [`ldconf`], in the order the input's parts fill them.
const CONF_FILES: [&str; 4] = [
    "etc/ld.so.conf",
    "etc/ld.so.conf.d/a.conf",
    "etc/ld.so.conf.d/b.conf",
    "opt/other/c.conf",
];

struct ConfRoot {
    _dir: tempfile::TempDir,
    root: PathBuf,
    fs: RootFs,
}

thread_local! {
    static CONF_ROOT: RefCell<Option<ConfRoot>> = const { RefCell::new(None) };
}

fn conf_root() -> ConfRoot {
    let dir = tempfile::Builder::new()
        .prefix("closure-fuzz-conf-")
        .tempdir()
        .expect("tempdir");
    let base = fs::canonicalize(dir.path()).expect("canonicalize");
    let root = base.join("root");
    let outside = base.join("outside");
    for d in [
        "etc/ld.so.conf.d",
        "opt/other",
        "usr/lib/x86_64-linux-gnu",
        "usr/local/lib",
        "d/e/f",
    ] {
        fs::create_dir_all(root.join(d)).expect("mkdir");
    }
    fs::create_dir_all(outside.join("lib")).expect("mkdir outside");
    fs::write(outside.join("evil.conf"), b"/lib\n").expect("outside conf");
    let links: [(&str, &str); 8] = [
        ("lib", "usr/lib"),
        ("d/self", "."),
        ("d/up", ".."),
        ("d/e/loop", "loop"),
        ("etc/ld.so.conf.d/cycle.conf", "../ld.so.conf"),
        ("etc/ld.so.conf.d/escape.conf", "../../../outside/evil.conf"),
        ("opt/abs", "/../../outside"),
        ("opt/rel", "../../../../outside/lib"),
    ];
    for (link, target) in links {
        std::os::unix::fs::symlink(target, root.join(link)).expect("symlink");
    }
    let fs = RootFs::new(&root).expect("root");
    ConfRoot {
        _dir: dir,
        root,
        fs,
    }
}

/// `ldconf::parse` over configuration files taken from the input.
pub fn ldconf(data: &[u8]) {
    CONF_ROOT.with(|cell| {
        let mut slot = cell.borrow_mut();
        if slot.is_none() {
            *slot = Some(conf_root());
        }
        let Some(r) = slot.as_ref() else { return };
        let mut parts = data.split(|&b| b == 0xff);
        for file in CONF_FILES {
            let text = parts.next().unwrap_or_default();
            fs::write(r.root.join(file), text).expect("write conf");
        }
        let conf = ldconf::parse(&r.fs, Path::new("/etc/ld.so.conf"));
        let shown_root = r.root.to_string_lossy().into_owned();
        for d in &conf.dirs {
            assert!(d.is_absolute(), "relative directory {d:?}");
            let (resolved, meta) =
                r.fs.metadata(d)
                    .unwrap_or_else(|e| panic!("listed directory {d:?} does not resolve: {e}"));
            assert!(meta.is_dir());
            assert_inside(&r.root, &r.fs.host_path(&resolved.canonical));
        }
        // A warning quotes the line it is about: when the input itself spells
        // the host root (libFuzzer copies compared strings into inputs), the
        // quote is the input's text, not a path closure made up.
        let quoted = data
            .windows(shown_root.len().max(1))
            .any(|w| w == shown_root.as_bytes());
        for w in &conf.warnings {
            assert!(
                quoted || !w.contains(&shown_root),
                "a warning shows a host path: {w}"
            );
        }
    });
}

/// Panics unless `host` (which must exist) is `root` or below it once every
/// symbolic link is resolved by the host.
fn assert_inside(root: &Path, host: &Path) {
    let real = fs::canonicalize(host).unwrap_or_else(|e| panic!("{}: {e}", host.display()));
    assert!(
        real.starts_with(root),
        "{} leaves the root ({})",
        host.display(),
        real.display()
    );
}

// ---------------------------------------------------------------------------
// The resolver over a fuzzed root
// ---------------------------------------------------------------------------

/// Path components the decoder picks from: the names the templates need,
/// the ways out of a root, and a few that loop.
const WORDS: &[&str] = &[
    "lib",
    "usr",
    "lib64",
    "x86_64-linux-gnu",
    "app",
    "bin",
    "..",
    ".",
    "libc.so.6",
    "libfoo.so.1",
    "libbar.so.2",
    "ld-linux-x86-64.so.2",
    "etc",
    "outside",
    "libmarker.so.1",
    "glibc-hwcaps",
    "x86-64-v3",
    "opt",
    "prog",
    "ld.so.cache",
    "ld.so.conf",
    "tmp",
    "haswell",
    "",
];

/// A cursor over the input; reads past the end give zeros.
struct Input<'a> {
    data: &'a [u8],
    at: usize,
}

impl Input<'_> {
    fn done(&self) -> bool {
        self.at >= self.data.len()
    }
    fn byte(&mut self) -> u8 {
        let b = self.data.get(self.at).copied().unwrap_or(0);
        self.at += 1;
        b
    }
    fn u16(&mut self) -> u16 {
        u16::from_le_bytes([self.byte(), self.byte()])
    }
    fn bytes(&mut self, n: usize) -> &[u8] {
        let start = self.at.min(self.data.len());
        let end = self.at.saturating_add(n).min(self.data.len());
        self.at = self.at.saturating_add(n);
        &self.data[start..end]
    }
    fn word(&mut self) -> &'static str {
        WORDS[self.byte() as usize % WORDS.len()]
    }
    /// 1 to 4 components; absolute or relative.
    fn path(&mut self) -> String {
        let n = self.byte() as usize % 4 + 1;
        let absolute = self.byte() & 1 == 0;
        let mut p = String::new();
        if absolute {
            p.push('/');
        }
        for i in 0..n {
            if i > 0 {
                p.push('/');
            }
            p.push_str(self.word());
        }
        p
    }
}

/// ELF files the decoder can place (built once per process).
fn templates() -> &'static [Vec<u8>] {
    use std::sync::OnceLock;
    static T: OnceLock<Vec<Vec<u8>>> = OnceLock::new();
    T.get_or_init(|| {
        let s = |v: &[&str]| v.iter().map(|x| x.to_string()).collect::<Vec<_>>();
        let specs = [
            // 0: the program.
            ElfSpec {
                kind: Kind::Exec,
                needed: s(&["libfoo.so.1", "libc.so.6"]),
                runpath: Some("$ORIGIN/../lib".into()),
                undefined: vec![("foo".into(), None)],
                ..Default::default()
            },
            // 1: a library that tries every way out of the root.
            ElfSpec {
                soname: Some("libfoo.so.1".into()),
                needed: s(&[
                    "libbar.so.2",
                    "../../../../outside/libmarker.so.1",
                    "/outside/libmarker.so.1",
                    "libmarker.so.1",
                ]),
                rpath: Some("$ORIGIN:/../../../outside:$ORIGIN/../../../..:/lib/$PLATFORM".into()),
                defined: vec![("foo".into(), None)],
                ..Default::default()
            },
            // 2: libc.
            ElfSpec {
                soname: Some("libc.so.6".into()),
                needed: s(&["ld-linux-x86-64.so.2"]),
                verdefs: s(&["GLIBC_2.17", "GLIBC_2.34"]),
                ..Default::default()
            },
            // 3: the interpreter.
            ElfSpec {
                soname: Some("ld-linux-x86-64.so.2".into()),
                ..Default::default()
            },
            // 4: a library of the wrong machine.
            ElfSpec {
                arch: Some(Arch::Aarch64),
                soname: Some("libbar.so.2".into()),
                ..Default::default()
            },
            // 5: the right libbar, needing a version of libc.
            ElfSpec {
                soname: Some("libbar.so.2".into()),
                needed: s(&["libc.so.6"]),
                runpath: Some("/../..:$ORIGIN/..".into()),
                verneeds: vec![("libc.so.6".into(), vec![("GLIBC_2.34".into(), false)])],
                undefined: vec![(
                    "malloc".into(),
                    Some(("libc.so.6".into(), "GLIBC_2.34".into())),
                )],
                ..Default::default()
            },
        ];
        specs.iter().map(elfgen::build).collect()
    })
}

/// The marker library planted outside every fuzzed root.
fn marker_bytes() -> Vec<u8> {
    elfgen::build(&ElfSpec {
        soname: Some("libmarker.so.1".into()),
        ..Default::default()
    })
}

/// Creates the parent directories of `rel` below `root` without following
/// any symbolic link; `None` when a component is a link or not a directory
/// (the fuzzed tree then simply lacks that entry).
fn parent_inside(root: &Path, rel: &str) -> Option<PathBuf> {
    let comps: Vec<&str> = rel.split('/').filter(|c| !c.is_empty()).collect();
    let (last, dirs) = comps.split_last()?;
    if *last == "." || *last == ".." {
        return None;
    }
    let mut cur = root.to_path_buf();
    for c in dirs {
        if *c == "." || *c == ".." {
            return None;
        }
        cur.push(c);
        match fs::symlink_metadata(&cur) {
            Ok(m) if m.is_dir() => {}
            Ok(_) => return None,
            Err(_) => fs::create_dir(&cur).ok()?,
        }
    }
    Some(cur.join(last))
}

/// Writes a new regular file (never through a link).
fn new_file(path: &Path, bytes: &[u8]) {
    if let Ok(mut f) = OpenOptions::new()
        .write(true)
        .create_new(true)
        .custom_flags(rustix::fs::OFlags::NOFOLLOW.bits() as i32)
        .open(path)
    {
        let _ = f.write_all(bytes);
    }
}

/// A snapshot of a directory tree: path → (kind, size, mtime, target).
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
                format!("link {:?}", fs::read_link(&p).ok())
            } else {
                format!("{:o} {} {} {}", m.mode(), m.len(), m.mtime(), m.ino())
            };
            if m.is_dir() {
                stack.push(p.clone());
            }
            out.insert(p, desc);
        }
    }
    out
}

/// Decodes `data` into a root next to a planted marker library, traces
/// `/app/bin/prog`, renders, plans and stages, and checks containment.
pub fn resolver(data: &[u8]) {
    use closure::graph;
    use closure::resolve::{Options, Resolver};

    let dir = tempfile::Builder::new()
        .prefix("closure-fuzz-root-")
        .tempdir()
        .expect("tempdir");
    let base = fs::canonicalize(dir.path()).expect("canonicalize");
    let root = base.join("root");
    let outside = base.join("outside");
    fs::create_dir_all(&outside).expect("mkdir outside");
    fs::write(outside.join("libmarker.so.1"), marker_bytes()).expect("marker");
    let marker_ino = fs::metadata(outside.join("libmarker.so.1"))
        .expect("marker")
        .ino();
    fs::create_dir(&root).expect("mkdir root");

    let mut input = Input { data, at: 0 };
    let flags = input.byte();
    // A default layout unless the input asks for an empty root.
    if flags & 1 == 0 {
        let t = templates();
        for (p, i) in [
            ("app/bin/prog", 0),
            ("app/lib/libfoo.so.1", 1),
            ("usr/lib/x86_64-linux-gnu/libc.so.6", 2),
            ("usr/lib/x86_64-linux-gnu/ld-linux-x86-64.so.2", 3),
            ("usr/lib/x86_64-linux-gnu/libbar.so.2", 4),
            ("opt/libbar.so.2", 5),
        ] {
            if let Some(h) = parent_inside(&root, p) {
                new_file(&h, &t[i]);
            }
        }
        let _ = std::os::unix::fs::symlink("usr/lib", root.join("lib"));
        let _ = std::os::unix::fs::symlink("usr/lib", root.join("lib64"));
    }
    let mut ops = 0;
    while !input.done() && ops < 48 {
        ops += 1;
        let op = input.byte() % 10;
        let p = input.path();
        let Some(host) = parent_inside(&root, &p) else {
            continue;
        };
        match op {
            0 => {
                let _ = fs::create_dir(&host);
            }
            1 | 2 => {
                let target = input.path();
                let _ = std::os::unix::fs::symlink(&target, &host);
            }
            3 => {
                let t = templates();
                let mut bytes = t[input.byte() as usize % t.len()].clone();
                let patches = input.byte() % 8;
                for _ in 0..patches {
                    let at = input.u16() as usize;
                    let v = input.byte();
                    if !bytes.is_empty() {
                        let n = bytes.len();
                        bytes[at % n] = v;
                    }
                }
                let cut = input.u16() as usize;
                if cut > 0 && cut < bytes.len() && input.byte() & 1 == 1 {
                    bytes.truncate(cut);
                }
                new_file(&host, &bytes);
            }
            4 => {
                let n = input.byte() as usize;
                let bytes = input.bytes(n).to_vec();
                new_file(&host, &bytes);
            }
            5 => {
                let _ = rustix::fs::mknodat(
                    rustix::fs::CWD,
                    &host,
                    rustix::fs::FileType::Fifo,
                    rustix::fs::Mode::from_raw_mode(0o644),
                    0,
                );
            }
            6 => {
                let _ = std::os::unix::net::UnixListener::bind(&host);
            }
            7 => {
                // A sparse 8 GiB file.
                if let Ok(f) = File::create_new(&host) {
                    let _ = f.set_len(8 << 30);
                }
            }
            8 => {
                // An ld.so.cache naming in-root (or escaping) paths.
                let n = input.byte() % 5;
                let mut entries = Vec::new();
                for _ in 0..n {
                    entries.push(ldcache::CacheEntry {
                        flags: if input.byte() & 1 == 0 { 0x0303 } else { 3 },
                        key: input.word().as_bytes().to_vec(),
                        value: input.path().into_bytes(),
                        hwcap: 0,
                    });
                }
                if let Some(h) = parent_inside(&root, "etc/ld.so.cache") {
                    let _ = fs::remove_file(&h);
                    new_file(&h, &ldcache::write_new(&entries, false, None));
                }
            }
            _ => {
                // ld.so.conf, or (odd lengths) /etc/ld.so.preload: names
                // glibc preloads into every program (escaping ones too).
                let n = input.byte() as usize;
                let text = input.bytes(n).to_vec();
                let file = if n % 2 == 1 {
                    "etc/ld.so.preload"
                } else {
                    "etc/ld.so.conf"
                };
                if let Some(h) = parent_inside(&root, file) {
                    let _ = fs::remove_file(&h);
                    new_file(&h, &text);
                }
            }
        }
    }
    // A copy of the program beside it (a regular file only): traced with
    // the program in one build, it must get the closure it gets alone
    // (roots of one shape share a trace with the root substituted).
    let prog = root.join("app/bin/prog");
    let twin = fs::symlink_metadata(&prog).is_ok_and(|m| m.is_file())
        && fs::copy(&prog, root.join("app/bin/prog-twin")).is_ok();
    let outside_before = snapshot(&outside);
    let root_before = snapshot(&root);

    let fs_root = RootFs::new(&root).expect("root");
    let make_opts = || Options {
        use_cache: flags & 2 == 0,
        library_path: (flags & 4 != 0).then(|| b"/opt:$ORIGIN/../../..:/../outside".to_vec()),
        cwd: if flags & 8 != 0 {
            b"/app/bin/../..".to_vec()
        } else {
            b"/".to_vec()
        },
        secure: flags & 16 != 0,
        ..Options::default()
    };
    // Library names in read-only data, loaded as dlopen would.
    let build_opts = graph::BuildOptions {
        dlopen_strings: flags & 32 != 0,
        // `--verbose`'s search records (rendered below).
        keep_search: flags & 64 != 0,
        ..Default::default()
    };
    if twin {
        twin_agrees(&fs_root, &make_opts, &build_opts);
    }
    let resolver = Resolver::new(&fs_root, make_opts());
    let roots = vec![b"/app/bin/prog".to_vec()];
    let Ok(mut g) = graph::build(&resolver, &roots, &build_opts) else {
        return;
    };
    graph::symbols::check(&fs_root, &mut g);
    for n in g.objects() {
        let Some(c) = &n.canonical else { continue };
        let host = fs_root.host_path(c);
        assert_inside(&root, &host);
        let ino = fs::metadata(&host).expect("object exists").ino();
        assert_ne!(ino, marker_ino, "the marker outside the root was resolved");
    }
    for f in [
        closure::report::Format::Tree,
        closure::report::Format::List,
        closure::report::Format::Ldd,
        closure::report::Format::Json,
        closure::report::Format::Dot,
    ] {
        let mut out = Vec::new();
        closure::report::render(&g, f, &mut out).expect("render to memory");
        let text = String::from_utf8_lossy(&out);
        assert!(!text.contains("libmarker.so.1\" =>"));
    }
    let mut problems = Vec::new();
    let _ = closure::report::problems::render(&g, &mut problems);
    if build_opts.keep_search {
        let mut steps = Vec::new();
        closure::report::steps::render(&g, &mut steps).expect("render to memory");
    }

    if let Ok(plan) = closure::stage::plan(&fs_root, &g, &closure::stage::PlanOptions::default()) {
        let out = base.join("out");
        let r = closure::stage::copy::materialize(
            &fs_root,
            &plan,
            &out,
            closure::stage::copy::CopyOptions::default(),
            &closure::observe::NoopObserver,
        );
        // Whatever happened: nothing but `out` appeared beside the root,
        // and neither the root nor the outside changed.
        let mut names: Vec<_> = fs::read_dir(&base)
            .expect("read base")
            .flatten()
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        let want: &[&str] = if r.is_ok() {
            &["out", "outside", "root"]
        } else {
            &["outside", "root"]
        };
        assert_eq!(names, want, "staging left something behind: {r:?}");
        if r.is_ok() {
            for (p, _) in snapshot(&out) {
                let m = fs::symlink_metadata(&p).expect("staged entry");
                assert!(
                    m.is_dir() || m.is_file() || m.file_type().is_symlink(),
                    "staged a special file {}",
                    p.display()
                );
                if m.is_file() {
                    assert_ne!(m.ino(), marker_ino, "staged the marker");
                }
            }
        }
    }
    assert_eq!(outside_before, snapshot(&outside), "the outside changed");
    assert_eq!(root_before, snapshot(&root), "the root changed");
}

/// `/app/bin/prog-twin` traced after `/app/bin/prog` in one build has the
/// objects and missing names it has traced alone. The build of both takes
/// the parallel paths (read-ahead, parallel traces, shared templates), the
/// one of the twin alone the single-threaded one.
fn twin_agrees(
    fs_root: &RootFs,
    make_opts: &dyn Fn() -> closure::resolve::Options,
    build_opts: &closure::graph::BuildOptions,
) {
    use closure::graph;
    use closure::resolve::Resolver;
    let twin = b"/app/bin/prog-twin".to_vec();
    let view = |roots: Vec<Vec<u8>>, k: usize| {
        let resolver = Resolver::new(fs_root, make_opts());
        let opts = graph::BuildOptions {
            parallel_roots: Some(2),
            ..build_opts.clone()
        };
        let g = graph::build(&resolver, &roots, &opts).ok()?;
        let mut seen: Vec<String> = Vec::new();
        for n in g.objects().into_iter().chain(g.missing()) {
            if !n.roots.contains(&k) {
                continue;
            }
            seen.push(match &n.missing {
                Some(m) => format!(
                    "missing {} needed by {}",
                    String::from_utf8_lossy(&m.soname),
                    String::from_utf8_lossy(&m.needed_by)
                ),
                None => String::from_utf8_lossy(&n.path).into_owned(),
            });
        }
        seen.sort();
        seen.dedup();
        Some(seen)
    };
    let together = view(vec![b"/app/bin/prog".to_vec(), twin.clone()], 1);
    let alone = view(vec![twin], 0);
    if let (Some(together), Some(alone)) = (together, alone) {
        assert_eq!(
            together, alone,
            "the twin's closure depends on the other root"
        );
    }
}
