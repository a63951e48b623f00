//! Set-up shared by the criterion benchmarks: this machine's programs (a
//! benchmark whose files are absent says so and measures nothing), a trace
//! with the command line's default options, and a synthetic root of many
//! libraries written with the test suite's ELF writer.
#![allow(dead_code)]

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use closure::elf::notes::Priority;
use closure::graph::{self, BuildOptions, DepGraph};
use closure::resolve::{Options, Resolver};
use closure::rootfs::RootFs;

// Its own unit tests import what only their `#[test]` functions use;
// `cargo clippy --benches` compiles them (cfg(test)) without those.
#[allow(unused_imports)]
#[path = "../../tests/support/elfgen.rs"]
pub mod elfgen;

use elfgen::{ElfSpec, Kind};

/// Host programs traced in sysroot `/`.
pub const PROGRAMS: &[&str] = &["/usr/bin/curl", "/usr/bin/git", "/usr/bin/python3"];

/// The programs of `PROGRAMS` present here; prints the others.
pub fn host_programs(bench: &str) -> Vec<&'static str> {
    PROGRAMS
        .iter()
        .copied()
        .filter(|p| {
            let there = Path::new(p).is_file();
            if !there {
                eprintln!("{bench}: skipping {p}: not on this machine");
            }
            there
        })
        .collect()
}

/// The build options of a plain `closure --root …` run.
pub fn build_options() -> BuildOptions {
    BuildOptions {
        dlopen_priority: Some(Priority::Recommended),
        libgcc: true,
        ..BuildOptions::default()
    }
}

/// The host as a sysroot.
pub fn host_fs() -> RootFs {
    RootFs::new(Path::new("/")).expect("/ is a directory")
}

/// The merged graph of `roots` in `fs`, with a fresh resolver (nothing
/// memoised from an earlier call), as one command-line run does it.
pub fn trace(fs: &RootFs, roots: &[&str]) -> DepGraph {
    let resolver = Resolver::new(fs, Options::default());
    let roots: Vec<Vec<u8>> = roots.iter().map(|r| r.as_bytes().to_vec()).collect();
    graph::build(&resolver, &roots, &build_options()).expect("the roots are readable")
}

/// Host paths of every ELF object of the graph (canonical, sorted, once each).
pub fn object_files(fs: &RootFs, g: &DepGraph) -> Vec<PathBuf> {
    let set: BTreeSet<PathBuf> = g
        .objects()
        .iter()
        .filter(|n| n.info.is_some())
        .filter_map(|n| n.canonical.as_ref().map(|c| fs.host_path(c)))
        .collect();
    set.into_iter().collect()
}

/// Writes `bytes` at the in-root path `path` below `root`.
fn put(root: &Path, path: &str, bytes: &[u8]) {
    let host = root.join(path.trim_start_matches('/'));
    std::fs::create_dir_all(host.parent().expect("in-root paths have a parent"))
        .expect("create directories in the temporary root");
    std::fs::write(&host, bytes).expect("write into the temporary root");
}

/// The synthetic library number `i` of `synthetic_root`.
pub fn synthetic_soname(i: usize) -> String {
    format!("libsyn{i}.so.1")
}

/// A Debian-like x86_64 root with an interpreter, a versioned `libc.so.6`
/// and `n` libraries in `/usr/lib/x86_64-linux-gnu`, library `i` needing
/// libc and libraries `2i+1` and `2i+2` (a binary tree, so every library is
/// loaded once and found again from a second requester only through the
/// already-loaded table); `/usr/bin/app` needs library 0 and libc. No
/// `ld.so.cache`: every name is searched in the default directories.
pub fn synthetic_root(n: usize) -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let root = dir.path();
    let glibc = ("libc.so.6".to_string(), vec![("GLIBC_2.2.5".into(), false)]);
    let uses_libc = vec![(
        "puts".to_string(),
        Some(("libc.so.6".to_string(), "GLIBC_2.2.5".to_string())),
    )];
    put(
        root,
        "/lib64/ld-linux-x86-64.so.2",
        &elfgen::build(&ElfSpec {
            soname: Some("ld-linux-x86-64.so.2".into()),
            ..ElfSpec::default()
        }),
    );
    put(
        root,
        "/lib/x86_64-linux-gnu/libc.so.6",
        &elfgen::build(&ElfSpec {
            soname: Some("libc.so.6".into()),
            needed: vec!["ld-linux-x86-64.so.2".into()],
            verdefs: vec!["GLIBC_2.2.5".into()],
            defined: vec![("puts".into(), Some("GLIBC_2.2.5".into()))],
            ..ElfSpec::default()
        }),
    );
    for i in 0..n {
        let mut needed: Vec<String> = [2 * i + 1, 2 * i + 2]
            .into_iter()
            .filter(|&j| j < n)
            .map(synthetic_soname)
            .collect();
        needed.push("libc.so.6".into());
        put(
            root,
            &format!("/usr/lib/x86_64-linux-gnu/{}", synthetic_soname(i)),
            &elfgen::build(&ElfSpec {
                soname: Some(synthetic_soname(i)),
                needed,
                verneeds: vec![glibc.clone()],
                undefined: uses_libc.clone(),
                ..ElfSpec::default()
            }),
        );
    }
    put(
        root,
        "/usr/bin/app",
        &elfgen::build(&ElfSpec {
            kind: Kind::Exec,
            needed: vec![synthetic_soname(0), "libc.so.6".into()],
            verneeds: vec![glibc],
            undefined: uses_libc,
            ..ElfSpec::default()
        }),
    );
    dir
}
