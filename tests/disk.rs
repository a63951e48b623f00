//! Files on the disk, not in the page cache (as after a reboot, or once
//! memory pressure pushed them out): the read-ahead then reads with helper
//! threads, many reads in flight, and the answer is the same.
//!
//! Pages are dropped with `POSIX_FADV_DONTNEED` (no privilege needed), in a
//! directory beneath `target` (on the disk the crate was built on; the
//! system's temporary directory may be `tmpfs`, whose pages never leave
//! memory). Where they do not leave memory, the tests say so and skip.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::support::elfgen::{self, ElfSpec, Kind};
use closure::resolve::{Options, Resolver};
use closure::rootfs::RootFs;

/// Libraries the program needs.
const LIBS: usize = 40;

/// A root with `/bin/app` needing `LIBS` libraries found through its
/// `DT_RUNPATH` (`$ORIGIN/../lib`), on the disk. Returns the files.
fn app_root(dir: &Path) -> Vec<PathBuf> {
    for d in ["bin", "lib"] {
        std::fs::create_dir_all(dir.join(d)).unwrap();
    }
    let mut files = Vec::new();
    let names: Vec<String> = (0..LIBS).map(|i| format!("lib{i}.so")).collect();
    let app = dir.join("bin/app");
    let spec = ElfSpec {
        kind: Kind::Exec,
        needed: names.clone(),
        runpath: Some("$ORIGIN/../lib".into()),
        ..ElfSpec::default()
    };
    std::fs::write(&app, elfgen::build(&spec)).unwrap();
    files.push(app);
    for n in &names {
        // 32 KiB of read-only data after the headers and tables, which
        // the parse never reads.
        let spec = ElfSpec {
            soname: Some(n.clone()),
            rodata: vec!["x".repeat(32 << 10)],
            ..ElfSpec::default()
        };
        let p = dir.join("lib").join(n);
        std::fs::write(&p, elfgen::build(&spec)).unwrap();
        files.push(p);
    }
    files
}

/// Drops `path`'s pages from the page cache.
fn evict(path: &Path) {
    closure::testing::evict(path).unwrap();
}

/// A temporary directory beneath `target` (on the disk the crate was built
/// on), unless it cannot be made there (a checkout the test's user cannot
/// write) or files there stay in memory after `POSIX_FADV_DONTNEED`: then
/// `test` says it skips.
fn disk_dir_or_skip(test: &str) -> Option<tempfile::TempDir> {
    let dir = match tempfile::Builder::new()
        .prefix("disk")
        .tempdir_in(env!("CARGO_TARGET_TMPDIR"))
    {
        Ok(dir) => dir,
        Err(e) => {
            println!(
                "skipping {test}: no directory beneath {}: {e}",
                env!("CARGO_TARGET_TMPDIR")
            );
            return None;
        }
    };
    if closure::testing::drops_pages(dir.path()) {
        return Some(dir);
    }
    println!(
        "skipping {test}: files in {} stay in memory after POSIX_FADV_DONTNEED (tmpfs?)",
        dir.path().display()
    );
    None
}

/// One root, its files in memory: it is traced alone (no helper reads
/// anything). On the disk: while the trace (here, a wait) runs, helpers
/// read the whole closure, many files at once.
#[test]
fn one_root_on_the_disk_is_read_ahead_by_helpers() {
    let Some(dir) = disk_dir_or_skip("one_root_on_the_disk_is_read_ahead_by_helpers") else {
        return;
    };
    let files = app_root(dir.path());
    let fs = RootFs::new(dir.path()).unwrap();
    let roots = vec![b"/bin/app".to_vec()];
    // Files read by the time `work` has waited for all of them (at most
    // `patience`), and the helper threads started.
    let read_during = |patience: Duration| {
        let r = Resolver::new(&fs, Options::default());
        let read = r.reading_ahead_from_disk(&roots, || {
            let start = Instant::now();
            while r.files_read() < LIBS + 1 && start.elapsed() < patience {
                std::thread::sleep(Duration::from_millis(1));
            }
            r.files_read()
        });
        (read, r.helpers_started())
    };
    assert_eq!(
        read_during(Duration::from_millis(200)),
        (1, 0),
        "in memory: only the root (probed to see where it is), no helper"
    );
    // The program alone on the disk: one helper, which finds the
    // libraries in memory and starts no other.
    evict(&files[0]);
    assert_eq!(read_during(Duration::from_secs(20)), (LIBS + 1, 1));
    for f in &files {
        evict(f);
    }
    let (read, helpers) = read_during(Duration::from_secs(20));
    assert_eq!(read, LIBS + 1, "on the disk: the helpers read the closure");
    // The first helper starts more as it finds files, 16 at most.
    assert!((2..=16).contains(&helpers), "{helpers} helpers");
    // They read the pages the parse asks for, no more: the kernel's
    // read-ahead would have brought in the read-only data after the
    // tables with a library's first read. (A few files may keep a page
    // the eviction missed.)
    let ahead = files[1..]
        .iter()
        .filter(|f| closure::testing::in_memory(f, 8 << 10).unwrap())
        .count();
    assert!(ahead * 4 < LIBS, "{ahead} of {LIBS} libraries read ahead");
}

/// `closure`'s report of one root, and of every file of its closure as a
/// root (enough roots for the parallel paths), the same with the files on
/// the disk as in memory.
#[test]
fn reports_of_files_on_the_disk_are_the_same() {
    let Some(dir) = disk_dir_or_skip("reports_of_files_on_the_disk_are_the_same") else {
        return;
    };
    let files = app_root(dir.path());
    let sysroot = dir.path().to_str().unwrap();
    let report = |roots: &[String]| {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_closure"));
        cmd.args(["--sysroot", sysroot, "--format", "json"]);
        for r in roots {
            cmd.args(["--root", r]);
        }
        let out = cmd
            .env("RAYON_NUM_THREADS", "2")
            .stdin(Stdio::null())
            .output()
            .unwrap();
        assert!(
            out.status.code().is_some_and(|c| c == 0 || c == 1),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap()
    };
    let all: Vec<String> = files
        .iter()
        .map(|f| format!("/{}", f.strip_prefix(dir.path()).unwrap().display()))
        .collect();
    assert!(all.len() >= closure::graph::build::PARALLEL_ROOTS);
    for roots in [&all[..1], &all[..]] {
        let warm = report(roots);
        assert!(warm.contains("lib39.so"), "{warm}");
        for f in &files {
            evict(f);
        }
        assert_eq!(report(roots), warm, "{} roots", roots.len());
    }
}
