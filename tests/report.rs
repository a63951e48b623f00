//! Snapshot tests of every report format on the committed sample root (`sample-rootfs/`, see
//! `support::sample` for its design): `tree`, `ldd`, `json`, `dot`, `list`, and the problem
//! report on stderr, for the roots `/app/bin/server` (clean: RUNPATH, cache, soname chains),
//! `/app/bin/legacy` (a missing library and a missing GLIBC_2.38), `/app/bin/server-arm64`
//! (another architecture's loader and default directories) and `/app/bin/start.sh` (a script:
//! `/bin/sh`'s closure joins).
//!
//! closure runs with the manifest directory as its working directory and the relative
//! `--sysroot sample-rootfs`, so no output holds a machine-specific path. Snapshots live in
//! `tests/snapshots/`; review a change with `cargo insta review` (or by reading the
//! `.snap.new` file) — tests never accept one on their own.

use std::io::Write as _;
use std::path::Path;
use std::process::{Command, Stdio};

use crate::support::oracle::closure_bin;

const ROOTS: [&str; 4] = [
    "/app/bin/server",
    "/app/bin/legacy",
    "/app/bin/server-arm64",
    "/app/bin/start.sh",
];

/// Output of one closure run on the sample root.
struct Run {
    status: i32,
    stdout: String,
    stderr: String,
}

/// `closure --sysroot sample-rootfs --root … [args]`, run from the manifest directory.
fn closure(roots: &[&str], args: &[&str]) -> Run {
    let mut cmd = Command::new(closure_bin());
    cmd.current_dir(env!("CARGO_MANIFEST_DIR"))
        .args(["--sysroot", "sample-rootfs"]);
    for r in roots {
        cmd.args(["--root", r]);
    }
    let out = cmd
        .args(args)
        .env_remove("LD_LIBRARY_PATH")
        .stdin(Stdio::null())
        .output()
        .expect("run closure");
    Run {
        status: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8(out.stdout).expect("stdout is UTF-8"),
        stderr: String::from_utf8(out.stderr).expect("stderr is UTF-8"),
    }
}

/// The sample roots in one format. The legacy program is broken on purpose: exit 1.
fn format(name: &str) -> Run {
    let run = closure(&ROOTS, &["--format", name]);
    assert_eq!(
        run.status, 1,
        "--format {name}: exit {}\n{}",
        run.status, run.stderr
    );
    run
}

#[test]
fn snapshot_tree() {
    insta::assert_snapshot!("tree", format("tree").stdout);
}

#[test]
fn snapshot_ldd() {
    insta::assert_snapshot!("ldd", format("ldd").stdout);
}

#[test]
fn snapshot_list() {
    insta::assert_snapshot!("list", format("list").stdout);
}

#[test]
fn snapshot_dot() {
    insta::assert_snapshot!("dot", format("dot").stdout);
}

#[test]
fn snapshot_json() {
    let out = format("json").stdout;
    let v: serde_json::Value = serde_json::from_str(&out).expect("stdout is one JSON value");
    assert_eq!(v["sysroot"], "sample-rootfs");
    let manifest = env!("CARGO_MANIFEST_DIR");
    assert!(
        !out.contains(manifest),
        "the JSON report holds a machine-specific path ({manifest}):\n{out}"
    );
    insta::assert_snapshot!("json", out);
}

#[test]
fn snapshot_problem_report() {
    // The problem report is the same whatever the format; it is snapshotted once.
    let list = format("list");
    for name in ["tree", "ldd", "json", "dot"] {
        let other = format(name);
        assert_eq!(
            other.stderr, list.stderr,
            "stderr differs between --format list and --format {name}"
        );
    }
    insta::assert_snapshot!("problems", list.stderr);
}

#[test]
fn dot_edge_to_a_missing_library_says_not_found() {
    // The node is "libgone.so.3 (not found)"; the edge into it must not claim a search step
    // found it (every other edge label names how the target was found).
    let dot = format("dot").stdout;
    let node = dot
        .lines()
        .find(|l| l.contains("label=\"libgone.so.3 (not found)\""))
        .and_then(|l| l.split_whitespace().next())
        .expect("a node for libgone.so.3")
        .to_string();
    let edge = dot
        .lines()
        .find(|l| l.trim_end().contains(&format!("-> {node} ")))
        .expect("an edge to libgone.so.3");
    assert!(
        edge.contains("label=\"not found\""),
        "the edge /app/bin/legacy -> libgone.so.3 is labelled with a search step although \
         nothing was found: {edge:?}"
    );
}

#[test]
fn check_symbols_changes_nothing_on_the_sample_root() {
    // The synthetic objects carry no symbol tables: nothing can be undefined, and the report
    // must be byte-identical with and without --check-symbols.
    let plain = format("json");
    let checked = closure(&ROOTS, &["--format", "json", "--check-symbols"]);
    assert_eq!(checked.status, plain.status, "{}", checked.stderr);
    assert_eq!(checked.stdout, plain.stdout);
    assert_eq!(checked.stderr, plain.stderr);
}

#[test]
fn clean_root_prints_nothing_on_stderr() {
    for name in ["tree", "ldd", "json", "dot", "list"] {
        let run = closure(&["/app/bin/server"], &["--format", name]);
        assert_eq!(run.status, 0, "--format {name}: {}", run.stderr);
        assert_eq!(
            run.stderr, "",
            "--format {name}: a clean run wrote to stderr"
        );
        assert!(!run.stdout.is_empty(), "--format {name}: no report");
    }
}

#[test]
fn dot_output_is_accepted_by_graphviz() {
    let name = "dot_output_is_accepted_by_graphviz";
    let has_dot = Command::new("dot")
        .arg("-V")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if !has_dot {
        println!("skipping {name}: graphviz `dot` is not installed (apt-get install graphviz)");
        return;
    }
    for roots in [&ROOTS[..], &["/app/bin/server"][..]] {
        let report = closure(roots, &["--format", "dot"]);
        let mut child = Command::new("dot")
            .arg("-Tsvg")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start dot");
        child
            .stdin
            .take()
            .expect("stdin")
            .write_all(report.stdout.as_bytes())
            .expect("feed dot");
        let out = child.wait_with_output().expect("wait for dot");
        // Graphviz writes '-' in SVG text as "&#45;".
        let svg = String::from_utf8_lossy(&out.stdout).replace("&#45;", "-");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(
            out.status.success() && err.trim().is_empty(),
            "{name}: dot -Tsvg rejected closure's output for {roots:?} (exit {:?}):\n{err}\n--- input ---\n{}",
            out.status.code(),
            report.stdout
        );
        assert!(svg.contains("<svg"), "{name}: no SVG produced:\n{svg}");
        // Every object of the report is a node of the picture.
        for path in ["/app/bin/server", "/lib/x86_64-linux-gnu/libc.so.6"] {
            assert!(svg.contains(path), "{name}: {path} missing from the SVG");
        }
    }
    assert!(Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("sample-rootfs")
        .is_dir());
}
