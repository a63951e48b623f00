//! The command line as users and scripts drive it: exit codes, stderr
//! wording for bad input, every `--format`, and the kinds of roots the
//! contract promises (directories, relative paths, libraries, static
//! programs, `#!` scripts, symlinks with absolute targets).

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::support::elfgen::{self, Arch, ElfSpec, Kind};
use crate::support::fakeroot::{
    closure_bin, found_via, missing_names, object, pairs, run_raw, FakeRoot, Layout,
};

const X: Arch = Arch::X86_64;
const T: &str = "x86_64-linux-gnu";
const APP: &str = "/app/bin/app";
const INTERP: &str = "/lib64/ld-linux-x86-64.so.2";

/// A clean x86_64 Debian 12 style root: app (RUNPATH `$ORIGIN/../lib`)
/// needs libapp.so.1 (in /app/lib, needs libfoo.so.1) and libc.so.6;
/// libfoo.so.1 lives in /usr/lib/x86_64-linux-gnu.
fn clean_root() -> FakeRoot {
    let r = FakeRoot::new();
    r.debian_base(X, Layout::DEBIAN12);
    r.lib(
        &format!("/usr/lib/{T}/libfoo.so.1"),
        X,
        "libfoo.so.1",
        &["libc.so.6"],
    );
    r.lib("/app/lib/libapp.so.1", X, "libapp.so.1", &["libfoo.so.1"]);
    r.exe(
        APP,
        X,
        &["libapp.so.1", "libc.so.6"],
        Some("$ORIGIN/../lib"),
    );
    r
}

fn clean_paths() -> Vec<String> {
    let mut v: Vec<String> = [
        APP,
        INTERP,
        "/app/bin/../lib/libapp.so.1",
        "/lib/x86_64-linux-gnu/libc.so.6",
        "/lib/x86_64-linux-gnu/libfoo.so.1",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    v.sort();
    v
}

fn assert_usage_error(code: i32, err: &str, ctx: &str) {
    assert_eq!(code, 2, "{ctx}: exit code; stderr: {err}");
    assert!(
        err.starts_with("closure:"),
        "{ctx}: stderr should start with 'closure:': {err:?}"
    );
    assert_eq!(
        err.trim_end().lines().count(),
        1,
        "{ctx}: one line expected: {err:?}"
    );
}

// ---------------------------------------------------------------------------
// Bad input
// ---------------------------------------------------------------------------

#[test]
fn missing_sysroot_is_a_usage_error() {
    let (code, out, err) = run_raw(&[
        "--sysroot",
        "/nonexistent/closure-test-sysroot-q7",
        "--root",
        "/bin/sh",
    ]);
    assert_usage_error(code, &err, "missing sysroot");
    assert!(
        err.contains("/nonexistent/closure-test-sysroot-q7"),
        "{err}"
    );
    assert!(out.is_empty());
}

#[test]
fn sysroot_that_is_a_file_is_a_usage_error() {
    let r = FakeRoot::new();
    r.file("/plain", b"not a directory\n");
    let f = r.host("/plain");
    let (code, _, err) = run_raw(&[
        "--sysroot".as_ref(),
        f.as_os_str(),
        "--root".as_ref(),
        "/x".as_ref(),
    ]);
    assert_usage_error(code, &err, "sysroot is a file");
    assert!(err.contains("not a directory"), "{err}");
}

#[test]
fn missing_root_is_a_usage_error() {
    let r = clean_root();
    let (code, out, err) = r.run(&["--root", "/app/bin/nope-not-here"]);
    assert_usage_error(code, &err, "missing root");
    assert!(err.contains("/app/bin/nope-not-here"), "{err}");
    assert!(err.contains("no such file"), "{err}");
    assert!(out.is_empty(), "no report for unusable input: {out}");
}

#[test]
fn no_root_and_bad_format_are_usage_errors() {
    let r = clean_root();
    let (code, _, err) = r.run(&[]);
    assert_eq!(code, 2, "{err}");
    let (code, _, err) = r.run(&["--root", APP, "--format", "yaml"]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("yaml"), "{err}");
}

#[test]
fn text_file_root_is_a_usage_error_with_a_clear_message() {
    let r = clean_root();
    r.file(
        "/etc/motd",
        "Welcome to the closure test root. This is a plain text file, long enough \
         to be more than an ELF header.\n",
    );
    let (code, _, err) = r.run(&["--root", "/etc/motd"]);
    assert_usage_error(code, &err, "text root");
    assert!(err.contains("/etc/motd"), "{err}");
    assert!(
        err.contains("ELF"),
        "message should say it is not ELF: {err}"
    );
    // A tiny text file too.
    r.file("/etc/tiny", "hi\n");
    let (code, _, err) = r.run(&["--root", "/etc/tiny"]);
    assert_usage_error(code, &err, "tiny text root");
}

#[test]
fn truncated_elf_root_never_panics() {
    let r = clean_root();
    let full = elfgen::build(&ElfSpec {
        arch: Some(X),
        kind: Kind::Exec,
        needed: vec!["libapp.so.1".into(), "libc.so.6".into()],
        runpath: Some("$ORIGIN/../lib".into()),
        ..Default::default()
    });
    let mut lens: Vec<usize> = vec![0, 1, 4, 16, 20, 52, 63, 64, 65, 100, 120, 200, 300, 500];
    lens.extend((600..full.len()).step_by(397));
    lens.push(full.len() - 1);
    for len in lens {
        let path = format!("/app/bin/trunc{len}");
        r.file_mode(&path, &full[..len], 0o755);
        let (code, out, err) = r.run(&["--root", &path, "--format", "json"]);
        assert!(
            matches!(code, 0..=2),
            "truncated to {len}: exit {code}\nstdout: {out}\nstderr: {err}"
        );
        if code == 2 {
            assert!(err.starts_with("closure:"), "truncated to {len}: {err}");
        } else {
            let v: Value = serde_json::from_str(&out)
                .unwrap_or_else(|e| panic!("truncated to {len}: bad JSON {e}: {out}"));
            assert_eq!(v["schema_version"], 1);
        }
    }
}

#[test]
fn symlink_loop_as_root_is_a_usage_error() {
    let r = clean_root();
    r.symlink("/app/bin/loop-a", "/app/bin/loop-b");
    r.symlink("/app/bin/loop-b", "loop-a");
    let (code, _, err) = r.run(&["--root", "/app/bin/loop-a"]);
    assert_usage_error(code, &err, "symlink loop root");
    assert!(err.contains("symbolic links"), "{err}");
}

#[test]
fn symlink_loop_in_a_library_path_is_a_reported_problem() {
    let r = FakeRoot::new();
    r.debian_base(X, Layout::DEBIAN12);
    r.symlink("/app/lib/libloop.so.1", "libloop.so.1");
    r.exe(APP, X, &["libloop.so.1", "libc.so.6"], Some("/app/lib"));
    let (code, report, err) = r.json_run(&["--root", APP]);
    assert_eq!(code, 1, "{err}");
    assert_eq!(missing_names(&report), vec!["libloop.so.1"]);
    assert!(err.contains("libloop.so.1"), "{err}");
    assert!(
        err.contains("symbolic links"),
        "stderr should explain the loop: {err}"
    );
    // Everything else still resolves.
    assert!(object(&report, "/lib/x86_64-linux-gnu/libc.so.6").is_some());
}

#[test]
fn fifo_root_does_not_hang() {
    let r = clean_root();
    let fifo = r.host("/app/bin/fifo");
    let ok = std::process::Command::new("mkfifo").arg(&fifo).status();
    if !matches!(ok, Ok(s) if s.success()) {
        eprintln!("skipping: mkfifo not available");
        return;
    }
    let mut child = std::process::Command::new(closure_bin())
        .args(["--sysroot".as_ref(), r.path().as_os_str()])
        .args(["--root", "/app/bin/fifo"])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let start = Instant::now();
    let status = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break s;
        }
        if start.elapsed() > Duration::from_secs(30) {
            let _ = child.kill();
            let _ = child.wait();
            panic!("closure hangs on a FIFO root");
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    assert_eq!(status.code(), Some(2));
}

// ---------------------------------------------------------------------------
// Formats on a clean root
// ---------------------------------------------------------------------------

#[test]
fn every_format_succeeds_silently_on_a_clean_root() {
    let r = clean_root();
    for fmt in ["tree", "list", "ldd", "json", "dot"] {
        let (code, out, err) = r.run(&["--root", APP, "--format", fmt]);
        assert_eq!(code, 0, "--format {fmt}: {err}");
        assert!(
            err.is_empty(),
            "--format {fmt}: clean run wrote to stderr: {err}"
        );
        assert!(!out.is_empty(), "--format {fmt}: empty report");
    }
    // Default format is the tree.
    let (code, default_out, err) = r.run(&["--root", APP]);
    assert_eq!(code, 0, "{err}");
    let (_, tree_out, _) = r.run(&["--root", APP, "--format", "tree"]);
    assert_eq!(default_out, tree_out);
}

#[test]
fn list_format_is_the_sorted_paths() {
    let r = clean_root();
    let (code, out, _) = r.run(&["--root", APP, "--format", "list"]);
    assert_eq!(code, 0);
    let got: Vec<String> = out.lines().map(str::to_string).collect();
    assert_eq!(got, clean_paths());
}

#[test]
fn ldd_format_prints_name_arrow_path() {
    let r = clean_root();
    let (code, out, _) = r.run(&["--root", APP, "--format", "ldd"]);
    assert_eq!(code, 0);
    let lines: Vec<&str> = out.lines().map(str::trim).collect();
    for want in [
        "libapp.so.1 => /app/bin/../lib/libapp.so.1",
        "libc.so.6 => /lib/x86_64-linux-gnu/libc.so.6",
        "libfoo.so.1 => /lib/x86_64-linux-gnu/libfoo.so.1",
    ] {
        assert!(lines.contains(&want), "missing line {want:?} in:\n{out}");
    }
    assert!(
        lines.iter().any(|l| l.starts_with(INTERP)),
        "the interpreter line is missing:\n{out}"
    );
    // Every line is indented with a tab, like ldd.
    assert!(out.lines().all(|l| l.starts_with('\t')), "{out:?}");
}

#[test]
fn tree_format_shows_each_edge() {
    let r = clean_root();
    let (_, out, _) = r.run(&["--root", APP, "--format", "tree"]);
    assert!(out.starts_with(APP), "{out}");
    assert!(
        out.contains("libapp.so.1 => /app/bin/../lib/libapp.so.1"),
        "{out}"
    );
    assert!(
        out.contains("libfoo.so.1 => /lib/x86_64-linux-gnu/libfoo.so.1"),
        "{out}"
    );
    assert!(out.contains("runpath"), "{out}");
}

#[test]
fn dot_format_is_a_digraph_naming_every_object() {
    let r = clean_root();
    let (_, out, _) = r.run(&["--root", APP, "--format", "dot"]);
    assert!(out.starts_with("digraph"), "{out}");
    assert!(out.trim_end().ends_with('}'), "{out}");
    for p in clean_paths() {
        assert!(out.contains(&format!("\"{p}\"")), "{p} not in:\n{out}");
    }
    assert!(out.contains("->"));
}

#[test]
fn json_format_has_the_contract_fields() {
    let r = clean_root();
    let (code, v, err) = r.json_run(&["--root", APP]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(v["schema_version"], 1);
    assert_eq!(v["sysroot"], r.sysroot());
    assert_eq!(v["roots"], serde_json::json!([APP]));
    for key in ["missing", "missing_versions", "undefined_symbols"] {
        assert_eq!(
            v[key],
            serde_json::json!([]),
            "{key} must be an empty array"
        );
    }
    assert_eq!(
        found_via(&v),
        pairs(&[
            (APP, "root"),
            (INTERP, "interpreter"),
            ("/app/bin/../lib/libapp.so.1", "runpath"),
            ("/lib/x86_64-linux-gnu/libc.so.6", "default"),
            ("/lib/x86_64-linux-gnu/libfoo.so.1", "default"),
        ])
    );
    let app = object(&v, "/app/bin/../lib/libapp.so.1").unwrap();
    assert_eq!(app["soname"], "libapp.so.1");
    assert_eq!(app["needed"], serde_json::json!(["libfoo.so.1"]));
    assert_eq!(app["needed_by"], serde_json::json!([APP]));
    let libc = object(&v, "/lib/x86_64-linux-gnu/libc.so.6").unwrap();
    let by: BTreeSet<&str> = libc["needed_by"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(Value::as_str)
        .collect();
    assert_eq!(
        by,
        BTreeSet::from([APP, "/lib/x86_64-linux-gnu/libfoo.so.1"])
    );
}

// ---------------------------------------------------------------------------
// Problems
// ---------------------------------------------------------------------------

#[test]
fn missing_library_exits_1_and_explains() {
    let r = clean_root();
    r.exe(
        "/app/bin/m_missing",
        X,
        &["libgone.so.3", "libc.so.6"],
        Some("$ORIGIN/../lib"),
    );
    let (code, out, err) = r.run(&["--root", "/app/bin/m_missing"]);
    assert_eq!(code, 1, "{err}");
    assert!(!out.is_empty(), "the report still prints in full");
    assert!(err.contains("libgone.so.3"), "{err}");
    assert!(
        err.contains("/app/bin/m_missing"),
        "requester not named: {err}"
    );
    for dir in [
        "/app/bin/../lib",
        "/lib/x86_64-linux-gnu",
        "/usr/lib/x86_64-linux-gnu",
        "/usr/lib",
    ] {
        assert!(err.contains(dir), "searched dir {dir} not named: {err}");
    }
    // The order of the search is kept: RUNPATH before the default dirs.
    let p_run = err.find("/app/bin/../lib").unwrap();
    let p_def = err.find("/lib/x86_64-linux-gnu").unwrap();
    assert!(p_run < p_def, "{err}");

    let (code, v, _) = r.json_run(&["--root", "/app/bin/m_missing"]);
    assert_eq!(code, 1);
    let m = &v["missing"][0];
    assert_eq!(m["soname"], "libgone.so.3");
    assert_eq!(m["needed_by"], "/app/bin/m_missing");
    let searched: Vec<&str> = m["searched"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(Value::as_str)
        .collect();
    assert_eq!(
        searched,
        vec![
            "/app/bin/../lib",
            "/lib/x86_64-linux-gnu",
            "/usr/lib/x86_64-linux-gnu",
            "/lib",
            "/usr/lib"
        ]
    );
    // libc is still in the report.
    assert!(object(&v, "/lib/x86_64-linux-gnu/libc.so.6").is_some());
}

#[test]
fn missing_symbol_version_exits_1() {
    let r = clean_root();
    r.elf(
        "/app/bin/p_version",
        &ElfSpec {
            arch: Some(X),
            kind: Kind::Exec,
            needed: vec!["libc.so.6".into()],
            verneeds: vec![("libc.so.6".into(), vec![("GLIBC_2.99".into(), false)])],
            ..Default::default()
        },
    );
    let (code, v, err) = r.json_run(&["--root", "/app/bin/p_version"]);
    assert_eq!(code, 1, "{err}");
    assert_eq!(v["missing_versions"][0]["version"], "GLIBC_2.99");
    assert_eq!(v["missing_versions"][0]["library"], "libc.so.6");
    assert_eq!(v["missing_versions"][0]["object"], "/app/bin/p_version");
    assert!(
        err.contains("GLIBC_2.99") && err.contains("libc.so.6"),
        "{err}"
    );
}

// ---------------------------------------------------------------------------
// Kinds of roots
// ---------------------------------------------------------------------------

fn roots_of(v: &Value) -> Vec<String> {
    v["roots"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s.as_str().unwrap().to_string())
        .collect()
}

#[test]
fn directory_root_expands_to_every_elf_under_it() {
    let r = clean_root();
    r.exe("/app/bin/second", X, &["libc.so.6"], None);
    r.exe("/app/bin/sub/third", X, &["libc.so.6"], None);
    r.file(
        "/app/bin/README",
        "not a program, long enough to not be mistaken for anything\n",
    );
    let (code, v, err) = r.json_run(&["--root", "/app/bin"]);
    assert_eq!(code, 0, "{err}");
    let roots: BTreeSet<String> = roots_of(&v).into_iter().collect();
    let want: BTreeSet<String> = [APP, "/app/bin/second", "/app/bin/sub/third"]
        .iter()
        .map(|s| s.to_string())
        .collect();
    assert_eq!(roots, want);
    for p in &want {
        assert_eq!(object(&v, p).unwrap()["found_via"], "root", "{p}");
    }
    assert!(object(&v, "/app/bin/README").is_none());
}

#[test]
fn relative_root_is_taken_from_the_sysroot_top() {
    let r = clean_root();
    let (code, v, err) = r.json_run(&["--root", "app/bin/app"]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(roots_of(&v), vec![APP]);
    let paths: Vec<String> = found_via(&v).into_iter().map(|(p, _)| p).collect();
    assert_eq!(paths, clean_paths());
}

#[test]
fn library_root_resolves_its_dependencies() {
    let r = clean_root();
    let lib = format!("/usr/lib/{T}/libfoo.so.1");
    let (code, v, err) = r.json_run(&["--root", &lib]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(roots_of(&v), vec![lib.clone()]);
    let vias = found_via(&v);
    assert!(vias.contains(&(lib.clone(), "root".into())), "{vias:?}");
    assert!(
        vias.contains(&("/lib/x86_64-linux-gnu/libc.so.6".into(), "default".into())),
        "{vias:?}"
    );
    assert!(v["missing"].as_array().unwrap().is_empty());
}

#[test]
fn static_root_is_listed_alone() {
    let r = clean_root();
    r.elf(
        "/app/bin/static",
        &ElfSpec {
            arch: Some(X),
            kind: Kind::Static,
            ..Default::default()
        },
    );
    let (code, out, err) = r.run(&["--root", "/app/bin/static", "--format", "list"]);
    assert_eq!(code, 0, "{err}");
    assert!(err.is_empty(), "{err}");
    assert_eq!(out, "/app/bin/static\n");
    let (code, out, _) = r.run(&["--root", "/app/bin/static", "--format", "ldd"]);
    assert_eq!(code, 0);
    assert!(
        out.contains("not a dynamic executable") || out.contains("statically linked"),
        "{out}"
    );
    let (_, out, _) = r.run(&["--root", "/app/bin/static", "--format", "tree"]);
    assert!(out.contains("static"), "{out}");
}

#[test]
fn script_root_brings_in_the_interpreter_closure() {
    let r = clean_root();
    r.symlink("/bin", "usr/bin");
    r.exe("/usr/bin/zzdash", X, &["libc.so.6"], None);
    r.symlink("/usr/bin/sh", "zzdash");
    r.file_mode(
        "/usr/local/bin/hello.sh",
        "#!/bin/sh -e\necho hello\n",
        0o755,
    );
    let (code, v, err) = r.json_run(&["--root", "/usr/local/bin/hello.sh"]);
    assert_eq!(code, 0, "{err}");
    let paths: BTreeSet<String> = found_via(&v).into_iter().map(|(p, _)| p).collect();
    for want in [
        "/usr/local/bin/hello.sh",
        "/bin/sh",
        "/lib/x86_64-linux-gnu/libc.so.6",
        INTERP,
    ] {
        assert!(paths.contains(want), "{want} missing from {paths:?}");
    }
    let script = object(&v, "/usr/local/bin/hello.sh").unwrap();
    assert_eq!(script["found_via"], "root");
    assert!(
        script["script"]
            .as_str()
            .unwrap_or_default()
            .contains("/bin/sh"),
        "{script}"
    );
    assert_eq!(
        object(&v, "/bin/sh").unwrap()["realpath"],
        "/usr/bin/zzdash",
        "the interpreter is reached through /bin -> usr/bin and sh -> zzdash"
    );
}

#[test]
fn env_script_root_finds_the_program_on_path() {
    let r = clean_root();
    r.exe("/usr/bin/zzpython", X, &["libc.so.6"], None);
    r.exe("/usr/bin/env", X, &["libc.so.6"], None);
    r.file_mode(
        "/app/bin/tool.py",
        "#!/usr/bin/env zzpython\nprint(1)\n",
        0o755,
    );
    let (code, v, err) = r.json_run(&["--root", "/app/bin/tool.py"]);
    assert_eq!(code, 0, "{err}");
    assert!(
        object(&v, "/usr/bin/zzpython").is_some(),
        "{:?}",
        found_via(&v)
    );
}

#[test]
fn symlink_root_with_absolute_targets_stays_inside_the_sysroot() {
    // /usr/bin/zzawk -> /etc/alternatives/zzawk -> /usr/bin/zzmawk: names
    // that exist on no host, so a resolver escaping the sysroot finds nothing.
    for p in ["/etc/alternatives/zzawk", "/usr/bin/zzmawk"] {
        assert!(!std::path::Path::new(p).exists(), "{p} exists on the host");
    }
    let r = clean_root();
    r.exe("/usr/bin/zzmawk", X, &["libc.so.6"], None);
    r.symlink("/etc/alternatives/zzawk", "/usr/bin/zzmawk");
    r.symlink("/usr/bin/zzawk", "/etc/alternatives/zzawk");
    let (code, v, err) = r.json_run(&["--root", "/usr/bin/zzawk"]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(roots_of(&v), vec!["/usr/bin/zzawk"]);
    let root = object(&v, "/usr/bin/zzawk").expect("the root is listed under its given path");
    assert_eq!(root["realpath"], "/usr/bin/zzmawk");
    assert_eq!(
        found_via(&v),
        pairs(&[
            ("/usr/bin/zzawk", "root"),
            (INTERP, "interpreter"),
            ("/lib/x86_64-linux-gnu/libc.so.6", "default"),
        ])
    );
}

#[test]
fn origin_of_a_program_reached_through_a_symlink_is_its_real_directory() {
    let r = clean_root();
    r.lib(
        "/opt/zztool/lib/libzztool.so.1",
        X,
        "libzztool.so.1",
        &["libc.so.6"],
    );
    r.exe(
        "/opt/zztool/bin/zztool",
        X,
        &["libzztool.so.1", "libc.so.6"],
        Some("$ORIGIN/../lib"),
    );
    // A decoy where a wrong $ORIGIN (/usr/bin) would lead: /usr/bin/../lib.
    r.lib(
        "/usr/lib/libzztool.so.1",
        X,
        "libzztool.so.1",
        &["libdecoy-never.so.9"],
    );
    r.symlink("/usr/bin/zztool", "/opt/zztool/bin/zztool");
    r.symlink("/usr/bin/zztool-rel", "../../opt/zztool/bin/zztool");
    for root in ["/usr/bin/zztool", "/usr/bin/zztool-rel"] {
        let (code, v, err) = r.json_run(&["--root", root]);
        assert_eq!(code, 0, "{root}: {err}");
        assert_eq!(
            found_via(&v),
            pairs(&[
                (root, "root"),
                (INTERP, "interpreter"),
                ("/opt/zztool/bin/../lib/libzztool.so.1", "runpath"),
                ("/lib/x86_64-linux-gnu/libc.so.6", "default"),
            ]),
            "{root}"
        );
    }
}

#[test]
fn several_roots_and_repeated_roots() {
    let r = clean_root();
    r.exe("/app/bin/other", X, &["libc.so.6"], None);
    let (code, v, err) = r.json_run(&["--root", APP, "--root", "/app/bin/other", "--root", APP]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(roots_of(&v), vec![APP, "/app/bin/other"]);
    let (_, out, _) = r.run(&["--root", APP, "--root", "/app/bin/other", "--format", "ldd"]);
    assert!(
        out.contains("/app/bin/app:") && out.contains("/app/bin/other:"),
        "{out}"
    );
}

// ---------------------------------------------------------------------------
// Edge cases of roots and interpreters
// ---------------------------------------------------------------------------

#[test]
fn missing_interpreter_is_a_reported_problem() {
    let r = clean_root();
    r.elf(
        "/app/bin/badinterp",
        &ElfSpec {
            arch: Some(X),
            kind: Kind::Exec,
            interp: Some("/lib/ld-zz-nowhere.so.7".into()),
            needed: vec!["libc.so.6".into()],
            ..Default::default()
        },
    );
    let (code, v, err) = r.json_run(&["--root", "/app/bin/badinterp"]);
    assert_eq!(code, 1, "{err}");
    assert_eq!(missing_names(&v), vec!["/lib/ld-zz-nowhere.so.7"]);
    assert!(err.contains("/lib/ld-zz-nowhere.so.7"), "{err}");
    assert!(err.contains("/app/bin/badinterp"), "{err}");
}

#[test]

fn script_with_a_missing_interpreter_is_a_reported_problem() {
    // The script exists and is readable; what is missing is a file of its
    // closure (exec would fail with ENOENT), which the contract counts as a
    // problem in the closure (exit 1), not as unreadable input (exit 2).
    let r = clean_root();
    r.file_mode(
        "/app/bin/run.sh",
        "#!/bin/zz-no-such-shell\necho hi\n",
        0o755,
    );
    let (code, out, err) = r.run(&["--root", "/app/bin/run.sh", "--format", "json"]);
    assert_eq!(code, 1, "stdout: {out}\nstderr: {err}");
    assert!(err.contains("/bin/zz-no-such-shell"), "{err}");
}

#[test]
fn script_root_with_crlf_and_arguments() {
    let r = clean_root();
    r.symlink("/bin", "usr/bin");
    r.exe("/usr/bin/zzbash", X, &["libc.so.6"], None);
    r.file_mode("/app/bin/win.sh", "#!/bin/zzbash -eu\necho hi\n", 0o755);
    let (code, v, err) = r.json_run(&["--root", "/app/bin/win.sh"]);
    assert_eq!(code, 0, "{err}");
    assert!(object(&v, "/bin/zzbash").is_some(), "{:?}", found_via(&v));
}

#[test]
fn directory_root_with_a_corrupt_elf_still_reports_the_rest() {
    // One damaged file in a directory root must not hide the others: either
    // it is reported as a problem, or the whole run fails with a message
    // naming it. Never a panic.
    let r = clean_root();
    let full = elfgen::build(&ElfSpec {
        arch: Some(X),
        kind: Kind::Exec,
        needed: vec!["libc.so.6".into()],
        ..Default::default()
    });
    r.file_mode("/app/bin/broken", &full[..200], 0o755);
    let (code, out, err) = r.run(&["--root", "/app/bin", "--format", "json"]);
    assert!(matches!(code, 1 | 2), "exit {code}\n{out}\n{err}");
    assert!(err.contains("/app/bin/broken"), "{err}");
}

#[test]

fn empty_directory_root_is_not_silently_clean() {
    // `--root DIR` with nothing traceable under it gives an empty closure;
    // a script would then stage nothing and succeed. Expect a usage error.
    let r = clean_root();
    r.dir("/app/empty");
    r.file(
        "/app/empty/notes.txt",
        "nothing to run here, just a longer text file........\n",
    );
    let (code, out, err) = r.run(&["--root", "/app/empty", "--format", "list"]);
    assert_eq!(code, 2, "exit {code}; stdout {out:?}; stderr {err:?}");
    assert!(err.starts_with("closure:"), "{err}");
}

#[test]

fn directory_root_keeps_symlinked_programs() {
    // `/usr/bin` style directory with a program reached only through a
    // symlink to elsewhere: the link is a file under the directory.
    let r = clean_root();
    r.exe("/opt/zzreal/bin/zzprog", X, &["libc.so.6"], None);
    r.symlink("/app/sbin/zzprog", "/opt/zzreal/bin/zzprog");
    r.exe("/app/sbin/zzlocal", X, &["libc.so.6"], None);
    let (code, v, err) = r.json_run(&["--root", "/app/sbin"]);
    assert_eq!(code, 0, "{err}");
    let roots: BTreeSet<String> = roots_of(&v).into_iter().collect();
    assert!(roots.contains("/app/sbin/zzlocal"), "{roots:?}");
    assert!(
        roots.contains("/app/sbin/zzprog"),
        "the symlinked program under the directory is not traced: {roots:?}"
    );
}

#[test]
fn root_given_with_dotdot_is_reported_normalised() {
    let r = clean_root();
    let (code, v, err) = r.json_run(&["--root", "/app/lib/../bin/app"]);
    assert_eq!(code, 0, "{err}");
    let paths: Vec<String> = found_via(&v).into_iter().map(|(p, _)| p).collect();
    assert!(
        paths.contains(&"/app/bin/../lib/libapp.so.1".to_string()),
        "{paths:?}"
    );
}

#[test]

fn truncated_loadable_segment_is_not_a_clean_closure() {
    // The loader maps every PT_LOAD up to p_offset + p_filesz; a file that
    // ends before that cannot run, and here DT_NEEDED entries are lost.
    let r = clean_root();
    let full = elfgen::build(&ElfSpec {
        arch: Some(X),
        kind: Kind::Exec,
        needed: vec!["libapp.so.1".into(), "libc.so.6".into()],
        runpath: Some("$ORIGIN/../lib".into()),
        ..Default::default()
    });
    let g = goblin::elf::Elf::parse(&full).unwrap();
    let load_end = g
        .program_headers
        .iter()
        .filter(|p| p.p_type == goblin::elf::program_header::PT_LOAD)
        .map(|p| (p.p_offset + p.p_filesz) as usize)
        .max()
        .unwrap();
    let dynamic = g
        .program_headers
        .iter()
        .find(|p| p.p_type == goblin::elf::program_header::PT_DYNAMIC)
        .unwrap();
    let dyn_start = dynamic.p_offset as usize;
    let mut clean = Vec::new();
    for len in (dyn_start + 8..load_end).step_by(8) {
        let path = format!("/app/bin/cut{len}");
        r.file_mode(&path, &full[..len], 0o755);
        let (code, _, err) = r.run(&["--root", &path, "--format", "list"]);
        assert!(matches!(code, 0..=2), "len {len}: exit {code}: {err}");
        if code == 0 {
            clean.push(format!("{len} (stderr: {:?})", err.trim()));
        }
    }
    assert!(
        clean.is_empty(),
        "file of {} bytes whose PT_LOADs end at {load_end}: truncations reported clean (exit 0):\n{}",
        full.len(),
        clean.join("\n")
    );
}

// ---------------------------------------------------------------------------
// --timings
// ---------------------------------------------------------------------------

/// A row of a `--timings` table: (phase, wall ms, CPU ms, faults).
type TimingRow = (String, f64, f64, Option<u64>);

/// The rows of a `--timings` table: (phase, wall ms, CPU ms, faults;
/// `None` where the column is `-`). Panics unless stderr holds exactly one
/// well-formed table.
fn timing_rows(err: &str) -> Vec<TimingRow> {
    let lines: Vec<&str> = err
        .lines()
        .filter_map(|l| l.strip_prefix("timings: "))
        .collect();
    assert!(
        lines
            .first()
            .is_some_and(|h| h.split_whitespace().next() == Some("phase")),
        "no table header on stderr:\n{err}"
    );
    lines[1..]
        .iter()
        .map(|l| {
            let cols: Vec<&str> = l.split_whitespace().collect();
            assert!(cols.len() >= 4, "short row {l:?}");
            let n = cols.len();
            let num = |s: &str| -> f64 { s.parse().unwrap_or_else(|_| panic!("{s:?} in {l:?}")) };
            (
                cols[..n - 3].join(" "),
                num(cols[n - 3]),
                num(cols[n - 2]),
                (cols[n - 1] != "-").then(|| {
                    cols[n - 1]
                        .parse()
                        .unwrap_or_else(|_| panic!("faults in {l:?}"))
                }),
            )
        })
        .collect()
}

/// The phases of a run over many roots (read ahead on the pool first).
const MANY_ROOT_PHASES: [&str; 6] = [
    "start-up and arguments",
    "setup",
    "read-ahead",
    "traces and merge",
    "graph",
    "report",
];

/// Checks a table: the phases `want` in that order, then the total, whose
/// times are the rows' sums (each row rounded to the microsecond). Page
/// faults are read from `/proc` only when the sysroot is the host's `/`
/// (`host`): then the total is the rows' sum, else every row has none.
fn assert_timings(err: &str, want: &[&str], host: bool, ctx: &str) {
    let rows = timing_rows(err);
    let names: Vec<&str> = rows.iter().map(|r| r.0.as_str()).collect();
    let mut expected: Vec<&str> = want.to_vec();
    expected.push("total (from main)");
    assert_eq!(names, expected, "{ctx}: phases\n{err}");
    let (body, total) = rows.split_at(rows.len() - 1);
    let total = &total[0];
    let sum = |f: fn(&TimingRow) -> f64| body.iter().map(f).sum::<f64>();
    let slack = 0.0005 * body.len() as f64 + 1e-9;
    assert!(
        (sum(|r| r.1) - total.1).abs() <= slack,
        "{ctx}: wall rows do not add up\n{err}"
    );
    assert!(
        (sum(|r| r.2) - total.2).abs() <= slack,
        "{ctx}: CPU rows do not add up\n{err}"
    );
    if host {
        let faults: Option<u64> = body.iter().map(|r| r.3).sum();
        assert_eq!(faults, total.3, "{ctx}: faults\n{err}");
        assert!(total.3 > Some(0), "{ctx}: no faults\n{err}");
    } else {
        assert!(
            rows.iter().all(|r| r.3.is_none()),
            "{ctx}: page faults read from the host's /proc with another sysroot\n{err}"
        );
    }
    assert!(total.1 > 0.0 && total.2 > 0.0, "{ctx}: empty totals\n{err}");
}

#[test]
fn timings_name_each_phase_and_leave_stdout_alone() {
    let r = clean_root();
    let (code, plain, plain_err) = r.run(&["--root", APP, "--format", "list"]);
    assert_eq!(code, 0, "{plain_err}");
    assert!(!plain_err.contains("timings:"), "{plain_err}");
    let (code, out, err) = r.run(&["--root", APP, "--format", "list", "--timings"]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(out, plain, "--timings changed stdout");
    // One root: traced on the calling thread, no read-ahead.
    let one = [
        "start-up and arguments",
        "setup",
        "traces and merge",
        "graph",
        "report",
    ];
    assert_timings(&err, &one, false, "one root");
    // Asked for explicitly, so --quiet does not hide it.
    let (_, _, err) = r.run(&["--root", APP, "--format", "list", "--timings", "--quiet"]);
    assert_timings(&err, &one, false, "--quiet");

    // Many roots: read ahead on the pool first.
    let mut args: Vec<String> = Vec::new();
    for i in 0..40 {
        let p = format!("/app/bin/app{i}");
        r.exe(&p, X, &["libapp.so.1", "libc.so.6"], Some("$ORIGIN/../lib"));
        args.extend(["--root".to_string(), p]);
    }
    args.extend(["--format", "list", "--timings", "--check-symbols"].map(String::from));
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let (code, _, err) = r.run(&args);
    assert_eq!(code, 0, "{err}");
    let (before, after) = MANY_ROOT_PHASES.split_at(5);
    assert_timings(
        &err,
        &[before, &["symbol check"], after].concat(),
        false,
        "40 roots",
    );

    // Staging: planned, copied, checked.
    let out_dir = tempfile::tempdir().unwrap();
    let staged = out_dir.path().join("staging");
    let (code, _, err) = r.run(&[
        "--root",
        APP,
        "--out",
        staged.to_str().unwrap(),
        "--timings",
    ]);
    assert_eq!(code, 0, "{err}");
    assert_timings(
        &err,
        &[
            "start-up and arguments",
            "setup",
            "traces and merge",
            "graph",
            "staging plan",
            "copy",
            "verify",
        ],
        false,
        "staging",
    );
    // An image layer alone: planned and written, nothing staged to check.
    let layer = out_dir.path().join("layer.tar");
    let (code, _, err) = r.run(&[
        "--root",
        APP,
        "--layer",
        layer.to_str().unwrap(),
        "--timings",
    ]);
    assert_eq!(code, 0, "{err}");
    assert!(layer.is_file(), "no layer written: {err}");
    assert_timings(
        &err,
        &[
            "start-up and arguments",
            "setup",
            "traces and merge",
            "graph",
            "staging plan",
            "image",
        ],
        false,
        "layer",
    );
    // A run that fails still says how far it got.
    let (code, _, err) = r.run(&["--root", "/app/bin/none", "--timings"]);
    assert_eq!(code, 2, "{err}");
    assert_timings(&err, &["start-up and arguments"], false, "bad root");

    // The host as sysroot: page faults too (the one case /proc may be read).
    let (code, _, err) = run_raw(&["--root", "/bin/sh", "--format", "list", "--timings"]);
    assert_eq!(code, 0, "{err}");
    assert_timings(&err, &one, true, "host sysroot");
}

/// Valgrind runs the binary as it is: with many roots (the pool started,
/// its threads moved to their CPUs) and `--timings` (the process CPU clock,
/// read through the vDSO), the output is the same as without it. rustix
/// once found the vDSO from the kernel's own auxiliary vector, which
/// valgrind's client does not have mapped, and crashed (the bench's
/// callgrind step failed on it); it now asks libc for the vector.
#[test]
fn runs_under_valgrind_with_the_pool_and_timings() {
    if !crate::support::oracle::tool_runs("valgrind", "--version") {
        println!("skipped: valgrind is not installed");
        return;
    }
    let r = clean_root();
    let mut args: Vec<String> = vec!["--sysroot".into(), r.path().display().to_string()];
    for i in 0..70 {
        let p = format!("/app/bin/app{i}");
        r.exe(&p, X, &["libapp.so.1", "libc.so.6"], Some("$ORIGIN/../lib"));
        args.extend(["--root".to_string(), p]);
    }
    args.extend(["--format", "list", "--timings"].map(String::from));
    let plain = run_raw(&args);
    assert_eq!(plain.0, 0, "{}", plain.2);
    let out = std::process::Command::new("valgrind")
        .args(["--tool=none", "--quiet", closure_bin()])
        .args(&args)
        .output()
        .expect("valgrind runs");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{:?}\n{err}", out.status);
    assert_eq!(String::from_utf8_lossy(&out.stdout), plain.1);
    assert_timings(&err, &MANY_ROOT_PHASES, false, "under valgrind");
}
