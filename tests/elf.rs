//! `closure::elf::parse` cross-checked against goblin and against the spec the
//! synthetic files were built from; real files of this machine; files
//! without section headers; and malformed input (truncations and byte
//! flips), which must never panic.

use std::path::{Path, PathBuf};

use closure::elf::{ElfInfo, ParseError};

use crate::support::elfgen::{self, Arch, ElfSpec, Kind};

fn s(x: &str) -> String {
    x.to_string()
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// A version name and its stored hash.
type Named = (String, u32);

/// The fields both parsers and the spec must agree on.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Seen {
    machine: u16,
    is_64: bool,
    big_endian: bool,
    interp: Option<String>,
    needed: Vec<String>,
    soname: Option<String>,
    rpath: Option<String>,
    runpath: Option<String>,
    /// (vn_version, vn_file, [(vna_name, vna_hash)]) in file order.
    verneed: Vec<(u16, String, Vec<Named>)>,
    /// Every vd_version, vd name (the first Verdaux) and `vd_hash`, base
    /// entry included, in file order.
    verdef: Vec<(u16, String, u32)>,
}

fn seen_closure(i: &ElfInfo) -> Seen {
    Seen {
        machine: i.ident.machine,
        is_64: i.ident.is_64,
        big_endian: i.ident.big_endian,
        interp: i.interp.as_deref().map(text),
        needed: i.needed.iter().map(|n| text(n)).collect(),
        soname: i.soname.as_deref().map(text),
        rpath: i.rpath.as_deref().map(text),
        runpath: i.runpath.as_deref().map(text),
        verneed: i
            .verneed
            .iter()
            .map(|n| {
                (
                    n.version,
                    text(&n.file),
                    n.versions.iter().map(|a| (text(&a.name), a.hash)).collect(),
                )
            })
            .collect(),
        verdef: (i.verdef.iter())
            .map(|d| (d.version, text(&d.name), d.hash))
            .collect(),
    }
}

/// goblin's view; `with_versions` false leaves the version tables empty
/// (goblin finds them only through section headers).
fn seen_goblin(e: &goblin::elf::Elf<'_>, with_versions: bool) -> Seen {
    let strs = &e.dynstrtab;
    let name = |off: usize| s(strs.get_at(off).unwrap_or("<bad offset>"));
    let mut verneed = Vec::new();
    let mut verdef = Vec::new();
    if with_versions {
        if let Some(vn) = &e.verneed {
            for n in vn.iter() {
                verneed.push((
                    n.vn_version,
                    name(n.vn_file),
                    n.iter().map(|a| (name(a.vna_name), a.vna_hash)).collect(),
                ));
            }
        }
        if let Some(vd) = &e.verdef {
            for d in vd.iter() {
                if let Some(aux) = d.iter().next() {
                    verdef.push((d.vd_version, name(aux.vda_name), d.vd_hash));
                }
            }
        }
    }
    Seen {
        machine: e.header.e_machine,
        is_64: e.is_64,
        big_endian: !e.little_endian,
        interp: e.interpreter.map(s),
        needed: e.libraries.iter().map(|l| s(l)).collect(),
        soname: e.soname.map(s),
        rpath: e.rpaths.last().map(|r| s(r)),
        runpath: e.runpaths.last().map(|r| s(r)),
        verneed,
        verdef,
    }
}

/// What the spec says the file holds.
fn seen_spec(spec: &ElfSpec) -> Seen {
    let arch = spec.arch.unwrap_or(Arch::X86_64);
    let interp = match spec.kind {
        Kind::Exec | Kind::ExecNoPie => Some(spec.interp.clone().unwrap_or(s(arch.interp()))),
        Kind::Shared => spec.interp.clone(),
        Kind::Static => None,
    };
    // The generator writes records of format version 1 and stores the
    // System V hash of each version name.
    let hashed = |n: &String| (n.clone(), object::elf::hash(n.as_bytes()));
    let def = |n: &String| (1, n.clone(), object::elf::hash(n.as_bytes()));
    let mut verdef = Vec::new();
    if !spec.verdefs.is_empty() {
        verdef.push(def(&spec.soname.clone().unwrap_or(s("a.out"))));
        verdef.extend(spec.verdefs.iter().map(def));
    }
    Seen {
        machine: spec.machine_override.unwrap_or(arch.machine()),
        is_64: arch.is_64(),
        big_endian: arch.big_endian(),
        interp,
        needed: spec.needed.clone(),
        soname: spec.soname.clone(),
        rpath: spec.rpath.clone(),
        runpath: spec.runpath.clone(),
        verneed: spec
            .verneeds
            .iter()
            .filter(|(_, v)| !v.is_empty())
            .map(|(f, v)| (1, f.clone(), v.iter().map(|(n, _)| hashed(n)).collect()))
            .collect(),
        verdef,
    }
}

fn rich(arch: Arch, kind: Kind) -> ElfSpec {
    ElfSpec {
        arch: Some(arch),
        kind,
        soname: Some(s("libwidget.so.3")),
        needed: vec![
            s("libz.so.1"),
            s("libc.so.6"),
            s("libm.so.6"),
            s("libgcc_s.so.1"),
        ],
        rpath: Some(s("/opt/old/lib:$ORIGIN/../rp")),
        runpath: Some(s("$ORIGIN/../lib:/opt/widget/lib")),
        flags_1: 0x800, // DF_1_NODEFLIB
        verdefs: vec![s("WIDGET_1.0"), s("WIDGET_2.0")],
        verneeds: vec![
            (
                s("libc.so.6"),
                vec![(s("GLIBC_2.17"), false), (s("GLIBC_2.34"), true)],
            ),
            (s("libz.so.1"), vec![(s("ZLIB_1.2.9"), false)]),
        ],
        defined: vec![(s("widget_new"), Some(s("WIDGET_2.0")))],
        undefined: vec![
            (s("malloc"), Some((s("libc.so.6"), s("GLIBC_2.17")))),
            (s("deflate"), Some((s("libz.so.1"), s("ZLIB_1.2.9")))),
        ],
        ..Default::default()
    }
}

fn expected_flags_1(spec: &ElfSpec) -> u32 {
    let pie = if spec.kind == Kind::Exec {
        0x0800_0000
    } else {
        0
    };
    spec.flags_1 | pie
}

fn check_fixture(spec: &ElfSpec, ctx: &str) {
    let bytes = elfgen::build(spec);
    let ours = closure::elf::parse(&bytes[..]).unwrap_or_else(|e| panic!("{ctx}: parse: {e}"));
    let want = seen_spec(spec);
    assert_eq!(seen_closure(&ours), want, "{ctx}: closure vs spec");
    assert!(ours.dynamic, "{ctx}: dynamic");
    assert_eq!(ours.flags_1, expected_flags_1(spec), "{ctx}: DT_FLAGS_1");
    assert_eq!(
        ours.ident.e_flags,
        spec.e_flags_override
            .unwrap_or(spec.arch.unwrap().e_flags())
    );
    assert!(
        ours.warnings.is_empty(),
        "{ctx}: warnings {:?}",
        ours.warnings
    );
    // Version details beyond names: weak flag, indices, base flag.
    for (vn, (_, spec_v)) in ours.verneed.iter().zip(spec.verneeds.iter()) {
        for (aux, (_, weak)) in vn.versions.iter().zip(spec_v) {
            assert_eq!(
                aux.flags & 0x2 != 0,
                *weak,
                "{ctx}: VER_FLG_WEAK of {aux:?}"
            );
        }
    }
    if let Some(first) = ours.verdef.first() {
        assert_eq!(first.flags & 0x1, 1, "{ctx}: base verdef flag");
        assert_eq!(first.index, 1, "{ctx}: base verdef index");
    }
    let g = goblin::elf::Elf::parse(&bytes).unwrap_or_else(|e| panic!("{ctx}: goblin: {e}"));
    let with_versions = !spec.no_section_headers;
    let theirs = seen_goblin(&g, with_versions);
    let mut ours_cmp = seen_closure(&ours);
    if !with_versions {
        ours_cmp.verneed.clear();
        ours_cmp.verdef.clear();
    }
    assert_eq!(ours_cmp, theirs, "{ctx}: closure vs goblin");
    // The lazy file reader must agree with the slice reader.
    let tmp = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(tmp.path(), &bytes).unwrap();
    let f = std::fs::File::open(tmp.path()).unwrap();
    assert_eq!(
        closure::elf::parse_file(&f).unwrap(),
        ours,
        "{ctx}: parse_file vs parse"
    );
}

#[test]
fn fixtures_agree_with_goblin_and_spec_on_every_arch() {
    let mut n = 0;
    for &arch in Arch::all() {
        for kind in [Kind::Shared, Kind::Exec, Kind::ExecNoPie] {
            let spec = rich(arch, kind);
            check_fixture(&spec, &format!("{} {kind:?} rich", arch.name()));
            // Minimal variants: nothing optional, then RPATH only.
            let bare = ElfSpec {
                arch: Some(arch),
                kind,
                needed: vec![s("libc.so.6")],
                ..Default::default()
            };
            check_fixture(&bare, &format!("{} {kind:?} bare", arch.name()));
            let rpath_only = ElfSpec {
                arch: Some(arch),
                kind,
                rpath: Some(s("/r1:/r2")),
                needed: vec![s("liba.so"), s("libb.so")],
                // goblin sizes the symbol table from DT_HASH with 4-byte
                // words, so it misreads s390x's 8-byte SysV hash entries.
                hash_style: if arch == Arch::S390x {
                    elfgen::HashStyle::Gnu
                } else {
                    elfgen::HashStyle::Sysv
                },
                ..Default::default()
            };
            check_fixture(&rpath_only, &format!("{} {kind:?} rpath-only", arch.name()));
            n += 3;
        }
    }
    eprintln!("compared {n} synthetic fixtures");
}

#[test]
fn shared_object_with_interp_and_interp_override() {
    for &arch in Arch::all() {
        let spec = ElfSpec {
            arch: Some(arch),
            kind: Kind::Shared,
            interp: Some(s(arch.interp())),
            soname: Some(s("libc.so.6")),
            needed: vec![s(arch.interp().rsplit('/').next().unwrap())],
            ..Default::default()
        };
        check_fixture(&spec, &format!("{} libc-like", arch.name()));
        let exe = ElfSpec {
            arch: Some(arch),
            kind: Kind::Exec,
            interp: Some(s("/opt/odd/ld-custom.so.9")),
            ..Default::default()
        };
        check_fixture(&exe, &format!("{} interp override", arch.name()));
    }
}

#[test]
fn static_fixture_has_no_dynamic_section() {
    for &arch in Arch::all() {
        let bytes = elfgen::build(&ElfSpec {
            arch: Some(arch),
            kind: Kind::Static,
            ..Default::default()
        });
        let i = closure::elf::parse(&bytes[..]).unwrap();
        assert!(!i.dynamic, "{}", arch.name());
        assert!(i.interp.is_none() && i.needed.is_empty(), "{}", arch.name());
        assert_eq!(i.ident.machine, arch.machine());
        assert_eq!(i.ident.e_type, 2);
    }
}

// ---------------------------------------------------------------------------
// (c) no section headers: everything through PT_DYNAMIC / PT_LOAD
// ---------------------------------------------------------------------------

#[test]
fn no_section_headers_parse_through_pt_dynamic() {
    for &arch in Arch::all() {
        for kind in [Kind::Shared, Kind::Exec, Kind::ExecNoPie] {
            let spec = ElfSpec {
                no_section_headers: true,
                ..rich(arch, kind)
            };
            let bytes = elfgen::build(&spec);
            // Really no section headers.
            let g = goblin::elf::Elf::parse(&bytes).unwrap();
            assert!(g.section_headers.is_empty(), "{} {kind:?}", arch.name());
            check_fixture(&spec, &format!("{} {kind:?} no-shdr", arch.name()));
            // And the version tables are still read (through DT_VERNEED/DT_VERDEF).
            let i = closure::elf::parse(&bytes[..]).unwrap();
            assert_eq!(
                seen_closure(&i),
                seen_spec(&spec),
                "{} {kind:?}",
                arch.name()
            );
        }
    }
}

// ---------------------------------------------------------------------------
// (b) this machine's real files
// ---------------------------------------------------------------------------

fn regular_files_in(dir: &Path) -> Vec<PathBuf> {
    let Ok(rd) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut v: Vec<PathBuf> = rd
        .filter_map(Result::ok)
        .filter(|e| e.file_type().map(|t| t.is_file()).unwrap_or(false))
        .map(|e| e.path())
        .collect();
    v.sort();
    v
}

#[test]
fn real_files_agree_with_goblin() {
    let mut compared = 0usize;
    let mut goblin_rejects = Vec::new();
    let mut ours_rejects = Vec::new();
    let mut mismatches = Vec::new();
    for dir in ["/usr/bin", "/usr/lib/x86_64-linux-gnu"] {
        for path in regular_files_in(Path::new(dir)) {
            let Ok(bytes) = std::fs::read(&path) else {
                continue;
            };
            if !bytes.starts_with(b"\x7fELF") {
                continue;
            }
            let g = match goblin::elf::Elf::parse(&bytes) {
                Ok(g) => g,
                Err(e) => {
                    goblin_rejects.push(format!("{}: {e}", path.display()));
                    continue;
                }
            };
            let ours = match closure::elf::parse(&bytes[..]) {
                Ok(i) => i,
                Err(e) => {
                    ours_rejects.push(format!("{}: {e}", path.display()));
                    continue;
                }
            };
            compared += 1;
            let mut a = seen_closure(&ours);
            a.verneed.clear();
            a.verdef.clear();
            let b = seen_goblin(&g, false);
            if a != b {
                mismatches.push(format!(
                    "{}:\n  closure {a:?}\n  goblin  {b:?}",
                    path.display()
                ));
            }
            // Version names where goblin has them too (section headers present).
            if !g.section_headers.is_empty() {
                let gv = seen_goblin(&g, true);
                let ov = seen_closure(&ours);
                if gv.verneed != ov.verneed || gv.verdef != ov.verdef {
                    mismatches.push(format!(
                        "{}: version tables differ\n  closure {:?} {:?}\n  goblin  {:?} {:?}",
                        path.display(),
                        ov.verneed,
                        ov.verdef,
                        gv.verneed,
                        gv.verdef
                    ));
                }
            }
        }
    }
    eprintln!(
        "real files: compared {compared}, goblin rejected {}, closure rejected {}",
        goblin_rejects.len(),
        ours_rejects.len()
    );
    for r in &goblin_rejects {
        eprintln!("  goblin rejected {r}");
    }
    assert!(
        ours_rejects.is_empty(),
        "closure rejected files goblin reads:\n{}",
        ours_rejects.join("\n")
    );
    assert!(
        mismatches.is_empty(),
        "{} mismatches:\n{}",
        mismatches.len(),
        mismatches.join("\n")
    );
    assert!(compared > 100, "only {compared} real ELF files compared");
}

/// goblin's read-only, non-executable `PT_LOAD` ranges of `bytes`, cut at
/// the end of the file (what `closure::elf::read_only_data` promises).
fn goblin_read_only(bytes: &[u8]) -> Vec<(u64, u64)> {
    use goblin::elf::program_header::{PF_W, PF_X, PT_LOAD};
    let g = goblin::elf::Elf::parse(bytes).unwrap();
    let len = bytes.len() as u64;
    g.program_headers
        .iter()
        .filter(|p| p.p_type == PT_LOAD && p.p_flags & (PF_X | PF_W) == 0)
        .map(|p| (p.p_offset, p.p_filesz.min(len.saturating_sub(p.p_offset))))
        .filter(|&(_, size)| size > 0)
        .collect()
}

/// The read-only data ranges the interpreter search looks at first are
/// goblin's, for synthetic files of every architecture (both classes, both
/// byte orders) and this machine's libraries; truncated copies never panic
/// and give only ranges inside the file.
#[test]
fn read_only_segments_agree_with_goblin() {
    let ranges = |bytes: &[u8]| {
        let tmp = tempfile::NamedTempFile::new().unwrap();
        std::fs::write(tmp.path(), bytes).unwrap();
        let f = std::fs::File::open(tmp.path()).unwrap();
        closure::elf::read_only_data(&f, bytes.len() as u64)
    };
    let mut with_data = 0;
    for &arch in Arch::all() {
        for kind in [Kind::Shared, Kind::Exec, Kind::ExecNoPie, Kind::Static] {
            let bytes = elfgen::build(&rich(arch, kind));
            let ours = ranges(&bytes);
            assert_eq!(ours, goblin_read_only(&bytes), "{} {kind:?}", arch.name());
            with_data += usize::from(!ours.is_empty());
        }
    }
    assert!(
        with_data >= Arch::all().len() * 4,
        "{with_data} fixtures with read-only data"
    );
    let mut real = 0;
    let files = regular_files_in(Path::new("/usr/lib/x86_64-linux-gnu"));
    for path in files.iter().take(400) {
        let Ok(bytes) = std::fs::read(path) else {
            continue;
        };
        if !bytes.starts_with(b"\x7fELF") || goblin::elf::Elf::parse(&bytes).is_err() {
            continue;
        }
        let ours = ranges(&bytes);
        assert_eq!(ours, goblin_read_only(&bytes), "{}", path.display());
        real += usize::from(!ours.is_empty());
    }
    eprintln!("{real} real files with read-only data");
    assert!(real >= 20, "only {real} real files with read-only segments");
    let (name, lib) = small_library();
    for cut in (0..lib.len().min(4096)).step_by(7).chain([lib.len() - 1]) {
        for (offset, size) in ranges(&lib[..cut]) {
            assert!(offset + size <= cut as u64, "{name} cut at {cut}");
        }
    }
    // Not ELF, or no program headers: nothing.
    assert!(ranges(b"#!/bin/sh\n").is_empty());
    assert!(ranges(&[]).is_empty());
}

// ---------------------------------------------------------------------------
// (d) malformed input never panics
// ---------------------------------------------------------------------------

/// A small real library of this machine, or a synthetic one.
fn small_library() -> (String, Vec<u8>) {
    for p in [
        "/usr/lib/x86_64-linux-gnu/libdl.so.2",
        "/usr/lib/x86_64-linux-gnu/libutil.so.1",
        "/usr/lib/x86_64-linux-gnu/libz.so.1",
        "/lib/x86_64-linux-gnu/libdl.so.2",
    ] {
        if let Ok(b) = std::fs::read(p) {
            if b.starts_with(b"\x7fELF") && b.len() < (4 << 20) {
                return (p.to_string(), b);
            }
        }
    }
    (
        s("<synthetic rich x86_64>"),
        elfgen::build(&rich(Arch::X86_64, Kind::Shared)),
    )
}

fn parse_no_panic(bytes: &[u8], ctx: &str) -> Result<ElfInfo, ParseError> {
    match std::panic::catch_unwind(|| closure::elf::parse(bytes)) {
        Ok(r) => r,
        Err(_) => panic!("closure::elf::parse panicked on {ctx}"),
    }
}

#[test]
fn truncations_never_panic() {
    let mut inputs = vec![small_library()];
    for arch in [Arch::S390x, Arch::Armhf] {
        inputs.push((
            format!("synthetic {}", arch.name()),
            elfgen::build(&rich(arch, Kind::Exec)),
        ));
    }
    for (name, full) in inputs {
        let full_ok = closure::elf::parse(&full[..]).expect("the full file parses");
        let mut lengths: Vec<usize> = (0..=full.len().min(4096)).collect();
        let mut l = 4096;
        while l < full.len() {
            lengths.push(l);
            l += (full.len() / 64).max(509);
        }
        lengths.push(full.len());
        let (mut ok, mut err) = (0, 0);
        for len in lengths {
            match parse_no_panic(&full[..len], &format!("{name} truncated to {len}")) {
                Ok(_) => ok += 1,
                Err(_) => err += 1,
            }
        }
        // Too short for a header is an error, not an empty success.
        assert!(
            closure::elf::parse(&full[..10]).is_err(),
            "{name}: 10 bytes"
        );
        assert!(full_ok.ident.machine != 0);
        eprintln!(
            "{name}: {} bytes, truncations parsed {ok}, rejected {err}",
            full.len()
        );
    }
}

/// xorshift64*: deterministic, no dependency.
struct XorShift(u64);

impl XorShift {
    fn next(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}

#[test]
fn byte_flips_never_panic() {
    let mut rng = XorShift(0x9E37_79B9_7F4A_7C15);
    let mut inputs = vec![small_library()];
    for &arch in Arch::all() {
        inputs.push((
            format!("synthetic {}", arch.name()),
            elfgen::build(&ElfSpec {
                no_section_headers: arch == Arch::Aarch64,
                ..rich(arch, Kind::Exec)
            }),
        ));
    }
    let mut total = 0;
    for (name, orig) in &inputs {
        // Focus on the first pages: headers, dynamic section, string and
        // version tables all live there in small files.
        let hot = orig.len().min(3 * 4096);
        for round in 0..600 {
            let mut b = orig.clone();
            let flips = 1 + rng.below(8);
            for _ in 0..flips {
                let at = if rng.below(4) == 0 {
                    rng.below(b.len())
                } else {
                    rng.below(hot)
                };
                b[at] = match rng.below(4) {
                    0 => 0,
                    1 => 0xff,
                    2 => b[at] ^ (1 << rng.below(8)),
                    _ => rng.next() as u8,
                };
            }
            let _ = parse_no_panic(&b, &format!("{name} flip round {round}"));
            total += 1;
        }
        // Header fields specifically: every byte of the ELF and program
        // headers set to 0xff once.
        let hdr = orig.len().min(64 + 56 * 12);
        for at in 0..hdr {
            let mut b = orig.clone();
            b[at] = 0xff;
            let _ = parse_no_panic(&b, &format!("{name} header byte {at} = 0xff"));
            total += 1;
        }
    }
    eprintln!("byte-flip inputs parsed without panic: {total}");
    assert!(total > 2000);
}

/// Without `DT_GNU_HASH`, the libgcc_s rule reads a large `.dynstr` in
/// 1 MiB windows that overlap by the longest name. An undefined `pthread_exit` whose name starts just
/// before, on and just after the end of a window (found in one window or
/// in both) is found, and agrees with the exhaustive reader; a near-miss
/// name is not found.
#[test]
fn unwind_name_found_across_string_table_windows() {
    const NAMES: &[&[u8]] = &[b"pthread_cancel", b"pthread_exit", b"backtrace"];
    const WINDOW: usize = 1 << 20;
    const OVERLAP: usize = b"pthread_cancel".len() + 1;
    // Names ending in "_z" come before "pthread_exit" in the writer's
    // tail-merge order, so the name lands after about 2.5 MB of them.
    let build = |extra: usize, wanted: &str| {
        let defined = (0..50_000)
            .map(|i| {
                let pad = if i == 0 {
                    "x".repeat(extra)
                } else {
                    String::new()
                };
                (
                    format!("{pad}padding_symbol_for_a_large_string_table_{i:06}_z"),
                    None,
                )
            })
            .collect();
        elfgen::build(&ElfSpec {
            kind: Kind::Shared,
            soname: Some("libbig.so".into()),
            defined,
            undefined: vec![(wanted.into(), None)],
            // Without a GNU hash table the string table is searched (with
            // one, it is not read at: see the next test).
            hash_style: elfgen::HashStyle::Sysv,
            ..ElfSpec::default()
        })
    };
    let offset_in_dynstr = |bytes: &[u8], name: &str| -> (usize, usize) {
        let e = goblin::elf::Elf::parse(bytes).unwrap();
        let sh = e
            .section_headers
            .iter()
            .find(|s| e.shdr_strtab.get_at(s.sh_name) == Some(".dynstr"))
            .unwrap();
        let table = &bytes[sh.sh_offset as usize..(sh.sh_offset + sh.sh_size) as usize];
        let needle = format!("{name}\0");
        let at = table
            .windows(needle.len())
            .position(|w| w == needle.as_bytes())
            .unwrap();
        (at, table.len())
    };
    let uses = |bytes: &[u8]| {
        let tmp = tempfile::NamedTempFile::new().unwrap();
        std::fs::write(tmp.path(), bytes).unwrap();
        let f = std::fs::File::open(tmp.path()).unwrap();
        let len = f.metadata().unwrap().len();
        let info = closure::elf::parse_file(&f).unwrap();
        let exhaustive = closure::elf::symbols::first_undefined_of(&f, &info, NAMES);
        let got = closure::elf::read_file(&f, len, NAMES).uses;
        assert_eq!(got, exhaustive, "windowed search vs exhaustive reader");
        got
    };
    let (base, size) = offset_in_dynstr(&build(0, "pthread_exit"), "pthread_exit");
    assert!(
        size > 2 * WINDOW,
        "the table must span several windows ({size} bytes)"
    );
    // The first window end after the name's unshifted place.
    let mut end = WINDOW;
    while end < base + 32 {
        end += WINDOW - OVERLAP;
    }
    let mut crossing = 0;
    for start in end - OVERLAP - 2..end + 2 {
        let bytes = build(start - base, "pthread_exit");
        let (at, _) = offset_in_dynstr(&bytes, "pthread_exit");
        assert_eq!(at, start, "padding did not move the name as planned");
        crossing += usize::from(at < end && at + b"pthread_exit".len() >= end);
        assert_eq!(
            uses(&bytes).as_deref(),
            Some(&b"pthread_exit"[..]),
            "name at {at}, window end {end}"
        );
    }
    assert!(crossing > 0, "no placement crossed the window end");
    // Control: the same table without the name finds nothing.
    assert_eq!(uses(&build(0, "pthread_exix")), None);
}

/// The libgcc_s question for a file on disk: `read_file`'s answer (GNU hash
/// lookups for large string tables), checked against the exhaustive scan.
fn unwind_use(path: &Path) -> (Option<Vec<u8>>, Option<Vec<u8>>, ElfInfo) {
    const NAMES: &[&[u8]] = &[b"pthread_cancel", b"pthread_exit", b"backtrace"];
    let f = std::fs::File::open(path).unwrap();
    let len = f.metadata().unwrap().len();
    let info = closure::elf::parse_file(&f).unwrap();
    let exhaustive = closure::elf::symbols::first_undefined_of(&f, &info, NAMES);
    let got = closure::elf::read_file(&f, len, NAMES).uses;
    (got, exhaustive, info)
}

/// Index of dynamic symbol `name` and the GNU hash table's `symoffset`.
fn dynsym_index(bytes: &[u8], name: &str) -> (usize, usize) {
    let e = goblin::elf::Elf::parse(bytes).unwrap();
    let index = e
        .dynsyms
        .iter()
        .position(|s| e.dynstrtab.get_at(s.st_name) == Some(name))
        .unwrap_or_else(|| panic!("no dynamic symbol {name}"));
    let sh = e
        .section_headers
        .iter()
        .find(|s| e.shdr_strtab.get_at(s.sh_name) == Some(".gnu.hash"))
        .expect(".gnu.hash");
    let at = sh.sh_offset as usize + 4;
    let symoffset = u32::from_le_bytes(bytes[at..at + 4].try_into().unwrap());
    (index, symoffset as usize)
}

/// Programs built by gcc with string tables far past what is read whole
/// (thousands of exported functions): an undefined `pthread_cancel` among
/// the unhashed symbols, an undefined `pthread_exit` that is *hashed* (a
/// non-PIE program taking its address in code gets a canonical PLT entry,
/// which linkers hash), `backtrace` in a shared library; the controls define
/// `backtrace` themselves (the lookup finds it, but defined) or import
/// nothing of the kind. Each answer is the expected one and the exhaustive
/// scan's; a hash table whose bloom filter hides the hashed symbol is
/// reported as inconsistent by the checker the fuzzer relies on.
#[test]
fn unwind_names_found_through_the_gnu_hash_table() {
    if no_gcc("unwind_names_found_through_the_gnu_hash_table") {
        return;
    }
    const NAMES: &[&[u8]] = &[b"pthread_cancel", b"pthread_exit", b"backtrace"];
    let dir = tempfile::tempdir().unwrap();
    let filler: String = (0..3000)
        .map(|i| {
            format!("int exported_filler_function_number_{i:05}(int x) {{ return x + {i}; }}\n")
        })
        .collect();
    let build = |name: &str, body: &str, args: &[&str]| -> PathBuf {
        let src = dir.path().join(format!("{name}.c"));
        std::fs::write(
            &src,
            format!("#include <pthread.h>\n#include <execinfo.h>\n{filler}{body}\n"),
        )
        .unwrap();
        let out = dir.path().join(name);
        let mut all = vec!["-O1", "-pthread", "-Wl,--hash-style=gnu"];
        all.extend_from_slice(args);
        crate::support::gcc(&out, &src, &all);
        out
    };
    let cancel = build(
        "cancel",
        "int main(void) { return pthread_cancel(pthread_self()); }",
        &["-rdynamic"],
    );
    let exit_addr = build(
        "exit_addr",
        "void (*volatile keep)(void *);\n\
         int main(int c, char **v) { keep = pthread_exit; if (c > 5) keep(v); return 0; }",
        &["-rdynamic", "-no-pie", "-fno-pic"],
    );
    let trace_lib = build(
        "libtrace.so",
        "int grab(void **b, int n) { return backtrace(b, n); }",
        &["-shared", "-fPIC"],
    );
    let defines = build(
        "defines",
        "int backtrace(void **b, int n) { (void)b; return n; }\n\
         int main(void) { return 0; }",
        &["-rdynamic"],
    );
    let plain = build("plain", "int main(void) { return 0; }", &["-rdynamic"]);

    for (path, want) in [
        (&cancel, Some(&b"pthread_cancel"[..])),
        (&exit_addr, Some(&b"pthread_exit"[..])),
        (&trace_lib, Some(&b"backtrace"[..])),
        (&defines, None),
        (&plain, None),
    ] {
        let (got, exhaustive, info) = unwind_use(path);
        let (start, end) = info.tables.strtab().unwrap();
        assert!(
            end - start > 64 << 10,
            "{}: string table of {} bytes is read whole, not looked up",
            path.display(),
            end - start
        );
        assert!(info.tables.gnu_hash().is_some(), "{}", path.display());
        assert_eq!(got.as_deref(), want, "{}", path.display());
        assert_eq!(got, exhaustive, "{}: lookup vs exhaustive", path.display());
        let f = std::fs::File::open(path).unwrap();
        assert!(closure::elf::symbols::gnu_hash_consistent(&f, &info, NAMES));
    }
    // The cases the lookups exist for are really there.
    let bytes = std::fs::read(&exit_addr).unwrap();
    let (index, symoffset) = dynsym_index(&bytes, "pthread_exit");
    assert!(
        index >= symoffset,
        "pthread_exit is not hashed: {index} < {symoffset}"
    );
    let (index, symoffset) = dynsym_index(&std::fs::read(&cancel).unwrap(), "pthread_cancel");
    assert!(
        index < symoffset,
        "pthread_cancel is hashed: {index} >= {symoffset}"
    );
    let (index, symoffset) = dynsym_index(&std::fs::read(&defines).unwrap(), "backtrace");
    assert!(index >= symoffset, "the defined backtrace is not hashed");

    // A bloom filter with no bit set hides every hashed symbol: the lookup
    // misses `pthread_exit`, and the checker says the table is not one a
    // linker writes (so the fuzzer does not expect agreement).
    let e = goblin::elf::Elf::parse(&bytes).unwrap();
    let sh = e
        .section_headers
        .iter()
        .find(|s| e.shdr_strtab.get_at(s.sh_name) == Some(".gnu.hash"))
        .unwrap();
    let g = sh.sh_offset as usize;
    let bloom_words = u32::from_le_bytes(bytes[g + 8..g + 12].try_into().unwrap()) as usize;
    let mut hidden = bytes.clone();
    hidden[g + 16..g + 16 + 8 * bloom_words].fill(0);
    let path = dir.path().join("hidden");
    std::fs::write(&path, &hidden).unwrap();
    let (got, exhaustive, info) = unwind_use(&path);
    assert_eq!(got, None, "the bloom filter is what the lookup reads");
    assert_eq!(exhaustive.as_deref(), Some(&b"pthread_exit"[..]));
    let f = std::fs::File::open(&path).unwrap();
    assert!(!closure::elf::symbols::gnu_hash_consistent(
        &f, &info, NAMES
    ));
}

/// Every ELF file of this machine's program and library directories gets
/// the same libgcc_s answer from `read_file` (string-table prefilter and
/// GNU hash lookups) as from the exhaustive scan; some of them have string
/// tables large enough for the lookups, and some answer yes.
#[test]
fn unwind_answers_of_real_files_match_the_exhaustive_scan() {
    let mut files = Vec::new();
    for dir in ["/usr/bin", "/usr/sbin", "/usr/lib/x86_64-linux-gnu"] {
        let Ok(rd) = std::fs::read_dir(dir) else {
            continue;
        };
        for e in rd.flatten() {
            let p = e.path();
            let Ok(meta) = std::fs::metadata(&p) else {
                continue;
            };
            let mut magic = [0u8; 4];
            let is_elf = meta.is_file()
                && std::fs::File::open(&p)
                    .and_then(|mut f| std::io::Read::read_exact(&mut f, &mut magic))
                    .is_ok()
                && &magic == b"\x7fELF";
            if is_elf {
                files.push(p);
            }
        }
    }
    files.sort();
    let (mut large, mut yes, mut mismatches) = (0, 0, Vec::new());
    for p in &files {
        let Ok(f) = std::fs::File::open(p) else {
            continue;
        };
        if closure::elf::parse_file(&f).is_err() {
            continue;
        }
        let (got, exhaustive, info) = unwind_use(p);
        if got != exhaustive {
            mismatches.push(format!("{}: {got:?} vs {exhaustive:?}", p.display()));
        }
        if info.tables.gnu_hash().is_some()
            && info.tables.strtab().is_some_and(|(s, e)| e - s > 64 << 10)
        {
            large += 1;
        }
        yes += usize::from(got.is_some());
    }
    eprintln!(
        "{} files, {large} with large string tables, {yes} use an unwinder name",
        files.len()
    );
    assert!(mismatches.is_empty(), "{}", mismatches.join("\n"));
    assert!(files.len() > 100 && large > 0 && yes > 0);
}

/// The GNU hash lookups of the libgcc_s rule on every architecture the
/// writer knows (both word sizes, both byte orders): a library with a
/// string table past 64 KiB, an unhashed undefined `pthread_exit`, and a
/// `pthread_cancel` made undefined where it was defined (so it is hashed,
/// on the one chain of the writer's single bucket). Asked directly, the
/// lookups must answer (not give up) with each name, as the exhaustive
/// scan does; a name that is absent gives no answer.
#[test]
fn unwind_hash_lookups_on_every_architecture() {
    for &arch in Arch::all() {
        let mut bytes = elfgen::build(&ElfSpec {
            arch: Some(arch),
            kind: Kind::Shared,
            soname: Some("libbig.so".into()),
            defined: (0..3000)
                .map(|i| (format!("a_defined_function_with_a_long_name_{i:05}"), None))
                .chain([(s("pthread_cancel"), None)])
                .collect(),
            undefined: vec![(s("pthread_exit"), None)],
            hash_style: elfgen::HashStyle::Gnu,
            ..ElfSpec::default()
        });
        let e = goblin::elf::Elf::parse(&bytes).unwrap();
        let index = e
            .dynsyms
            .iter()
            .position(|s| e.dynstrtab.get_at(s.st_name) == Some("pthread_cancel"))
            .unwrap();
        let sh = e
            .section_headers
            .iter()
            .find(|s| e.shdr_strtab.get_at(s.sh_name) == Some(".dynsym"))
            .unwrap();
        let at = (sh.sh_offset + index as u64 * sh.sh_entsize) as usize;
        let shndx = if e.is_64 { at + 6 } else { at + 14 };
        drop(e);
        bytes[shndx..shndx + 2].fill(0); // SHN_UNDEF in either byte order
        let tmp = tempfile::NamedTempFile::new().unwrap();
        std::fs::write(tmp.path(), &bytes).unwrap();
        let f = std::fs::File::open(tmp.path()).unwrap();
        let len = bytes.len() as u64;
        let info = closure::elf::parse_file(&f).unwrap();
        let (start, end) = info.tables.strtab().unwrap();
        assert!(end - start > 64 << 10, "{}", arch.name());
        for name in [&b"pthread_cancel"[..], b"pthread_exit"] {
            let names = [name];
            let got = closure::elf::symbols::first_undefined_hashed(&f, len, &info, &names, None);
            let exhaustive = closure::elf::symbols::first_undefined_of(&f, &info, &names);
            assert_eq!(
                got,
                Some(Some(name.to_vec())),
                "{}: {}",
                arch.name(),
                text(name)
            );
            assert_eq!(got.flatten(), exhaustive, "{}", arch.name());
            assert_eq!(closure::elf::read_file(&f, len, &names).uses, exhaustive);
            assert!(closure::elf::symbols::gnu_hash_consistent(
                &f, &info, &names
            ));
        }
        let absent: [&[u8]; 1] = [b"backtrace"];
        assert_eq!(
            closure::elf::symbols::first_undefined_hashed(&f, len, &info, &absent, None),
            Some(None),
            "{}",
            arch.name()
        );
    }
}

/// Read system calls this thread has made so far (`read`, `pread64` and
/// the rest: `syscr` of `/proc/thread-self/io`), or `None` where the
/// kernel does not keep the count.
fn reads_so_far() -> Option<u64> {
    let io = std::fs::read_to_string("/proc/thread-self/io").ok()?;
    io.lines()
        .find_map(|l| l.strip_prefix("syscr: "))
        .and_then(|n| n.trim().parse().ok())
}

/// Small gcc-built libraries, whose `.gnu.version_r` follows `.dynstr`
/// and `.gnu.version` (GNU ld's layout), with names of growing length so
/// that the version table starts at every spot of a 1 KiB read chunk:
/// one file read costs three reads whatever the spot (the headers, the
/// dynamic section, the string table with the version records after it).
/// Ending the string table's read at the chunk boundary after the version
/// table's start cost a fourth read for every table that crossed it.
#[test]
fn string_and_version_tables_are_read_together() {
    let name = "string_and_version_tables_are_read_together";
    if no_gcc(name) {
        return;
    }
    let Some(a) = reads_so_far() else {
        println!("skipping {name}: /proc/thread-self/io is not readable");
        return;
    };
    // Reading the count costs reads of its own.
    let own = reads_so_far().unwrap() - a;
    let dir = tempfile::tempdir().unwrap();
    let mut crossing = 0;
    for pad in 0..48 {
        let src = dir.path().join(format!("v{pad}.c"));
        // A few libc functions, each with a GLIBC_2.x requirement.
        let fname = format!("exported_{}", "x".repeat(pad * 23));
        // Enough names that the tables lie past the first read.
        let filler: String = (0..80)
            .map(|i| format!("int filler_function_number_{i:03}(int x) {{ return x + {i}; }}\n"))
            .collect();
        std::fs::write(
            &src,
            format!(
                "#include <stdio.h>\n#include <string.h>\n#include <stdlib.h>\n{filler}\
                 int {fname}(const char *s) {{ char *d = strdup(s); \
                 int n = printf(\"%s\", d) + (int)strlen(s); free(d); return n; }}\n"
            ),
        )
        .unwrap();
        let out = dir.path().join(format!("libv{pad}.so"));
        let res = std::process::Command::new("gcc")
            .args(["-shared", "-fPIC", "-O1", "-Wl,--hash-style=gnu", "-o"])
            .arg(&out)
            .arg(&src)
            .output()
            .expect("spawn gcc");
        assert!(
            res.status.success(),
            "{}",
            String::from_utf8_lossy(&res.stderr)
        );
        let bytes = std::fs::read(&out).unwrap();
        let g = goblin::elf::Elf::parse(&bytes).unwrap();
        let shdr = |n: &str| {
            g.section_headers
                .iter()
                .find(|s| g.shdr_strtab.get_at(s.sh_name) == Some(n))
                .map(|s| (s.sh_offset, s.sh_offset + s.sh_size))
        };
        let (Some((_, str_end)), Some((vn, vn_end))) = (shdr(".dynstr"), shdr(".gnu.version_r"))
        else {
            panic!("libv{pad}.so: no .dynstr or .gnu.version_r");
        };
        // Only GNU ld's usual layout is this test's business.
        if vn < str_end || vn - str_end > 512 {
            continue;
        }
        assert!(vn > 2048, "libv{pad}.so: tables inside the first read");
        if vn / 1024 != (vn_end - 1) / 1024 {
            crossing += 1;
        }
        let f = std::fs::File::open(&out).unwrap();
        let before = reads_so_far().unwrap();
        let facts = closure::elf::read_file(&f, bytes.len() as u64, &[]);
        let reads = reads_so_far().unwrap() - before - own;
        let info = facts.info.expect("parses");
        assert!(!info.verneed.is_empty(), "libv{pad}.so: no version needs");
        assert!(
            reads <= 3,
            "libv{pad}.so: {reads} reads (.dynstr ends at {str_end:#x}, \
             .gnu.version_r at {vn:#x}..{vn_end:#x})"
        );
    }
    assert!(
        crossing > 0,
        "no library put its version table across a 1 KiB boundary"
    );
}

/// `DT_AUDIT` and `DT_DEPAUDIT` strings as the linker writes them (`--audit`,
/// `--depaudit`), each list kept whole; a file without either has none; and
/// goblin reads the same two tags' values.
#[test]
fn audit_tags_are_read() {
    if no_gcc("audit_tags_are_read") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let src = dir.path().join("m.c");
    std::fs::write(&src, "int main(void) { return 0; }\n").unwrap();
    let build = |name: &str, args: &[&str]| -> Vec<u8> {
        let out = dir.path().join(name);
        crate::support::gcc(&out, &src, args);
        std::fs::read(out).unwrap()
    };
    let both = build(
        "both",
        &[
            "-Wl,--audit=liba.so:/opt/b.so",
            "-Wl,--depaudit=$ORIGIN/c.so",
        ],
    );
    let only_dep = build("dep", &["-Wl,--depaudit=libd.so"]);
    let none = build("none", &[]);
    let audit = |bytes: &[u8]| closure::elf::parse(bytes).unwrap().audit.map(|a| *a);
    let names = |a: &str, d: &str| {
        Some(closure::elf::AuditNames {
            audit: (!a.is_empty()).then(|| a.as_bytes().to_vec()),
            depaudit: (!d.is_empty()).then(|| d.as_bytes().to_vec()),
        })
    };
    assert_eq!(audit(&both), names("liba.so:/opt/b.so", "$ORIGIN/c.so"));
    assert_eq!(audit(&only_dep), names("", "libd.so"));
    assert_eq!(audit(&none), None);
    // goblin: the same strings behind the same tags.
    let goblin_tag = |bytes: &[u8], tag: u64| -> Option<String> {
        let elf = goblin::elf::Elf::parse(bytes).unwrap();
        let d = elf.dynamic.as_ref()?;
        let e = d.dyns.iter().find(|e| e.d_tag == tag)?;
        elf.dynstrtab.get_at(e.d_val as usize).map(str::to_string)
    };
    assert_eq!(
        goblin_tag(&both, 0x6fff_fefc).as_deref(),
        Some("liba.so:/opt/b.so")
    );
    assert_eq!(
        goblin_tag(&both, 0x6fff_fefb).as_deref(),
        Some("$ORIGIN/c.so")
    );
}

/// Whether gcc is missing (then test `name` says it skips).
fn no_gcc(name: &str) -> bool {
    let missing = std::process::Command::new("gcc")
        .arg("--version")
        .output()
        .is_err();
    if missing {
        println!("skipping {name}: no gcc");
    }
    missing
}
