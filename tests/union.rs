//! Many roots in one call give every root exactly the closure it has alone.
//!
//! A large call takes the fast paths: files are prefetched wave by wave on
//! all cores, roots are traced in parallel and merged in order, and results
//! are memoised across roots. None of that may change an answer, so the
//! per-root view of one union call (`objects[].roots` in the JSON report)
//! must equal separate single-root calls, which take none of those paths
//! (fewer than eight roots are never prefetched).

use std::collections::{BTreeMap, BTreeSet};
use std::process::{Command, Stdio};

use serde_json::Value;

/// Runs `closure ARGS --format json` and returns the report.
fn report(args: &[&str]) -> Value {
    serde_json::from_str(&report_text(args, None)).expect("JSON report")
}

/// The JSON report as text, optionally with `RAYON_NUM_THREADS` set.
fn report_text(args: &[&str], threads: Option<&str>) -> String {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_closure"));
    cmd.args(args)
        .args(["--format", "json"])
        .env_remove("RAYON_NUM_THREADS")
        .stdin(Stdio::null());
    if let Some(n) = threads {
        cmd.env("RAYON_NUM_THREADS", n);
    }
    let out = cmd.output().expect("cannot spawn closure");
    assert!(
        out.status.code().is_some_and(|c| c == 0 || c == 1),
        "closure {args:?}: {}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).expect("UTF-8 report")
}

/// Per root: the object paths in its closure, and the missing names.
/// (How a node was found is a property of the merged node, not of a root.)
fn per_root(v: &Value) -> BTreeMap<String, BTreeSet<String>> {
    let mut m: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for o in v["objects"].as_array().expect("objects") {
        let path = o["path"].as_str().expect("path").to_string();
        for r in o["roots"].as_array().expect("roots") {
            m.entry(r.as_str().expect("root").to_string())
                .or_default()
                .insert(path.clone());
        }
    }
    for missing in v["missing"].as_array().into_iter().flatten() {
        let name = format!(
            "missing: {} needed by {}",
            missing["soname"].as_str().unwrap_or("?"),
            missing["needed_by"].as_str().unwrap_or("?")
        );
        for r in missing["roots"].as_array().into_iter().flatten() {
            m.entry(r.as_str().expect("root").to_string())
                .or_default()
                .insert(name.clone());
        }
    }
    m
}

/// Dynamic programs of this machine, a spread of them (at least 24 for the
/// parallel paths), including ones that use `pthread_exit` or `backtrace`
/// themselves (their closures gain libgcc_s.so.1 at run time).
fn programs() -> Vec<String> {
    let wanted = [
        "/usr/bin/git",
        "/usr/bin/python3.11",
        "/usr/bin/zstd",
        "/usr/sbin/e2fsck",
        "/usr/bin/curl",
        "/usr/bin/bash",
        "/usr/bin/ls",
        "/usr/bin/ssh",
        "/usr/bin/sqlite3",
        "/usr/bin/perl",
        "/usr/bin/openssl",
        "/usr/bin/tar",
        "/usr/bin/gpg",
        "/usr/bin/make",
        "/usr/bin/find",
        "/usr/bin/grep",
        "/usr/bin/sed",
        "/usr/bin/awk",
        "/usr/bin/xz",
        "/usr/bin/wget",
        "/usr/bin/jq",
        "/usr/bin/tmux",
        "/usr/bin/less",
        "/usr/bin/patchelf",
        "/usr/bin/strace",
        "/usr/bin/vim.basic",
        "/usr/bin/dpkg",
        "/usr/bin/apt",
        "/usr/sbin/ldconfig",
        "/usr/bin/node",
    ];
    wanted
        .iter()
        .filter(|p| std::path::Path::new(p).exists())
        .map(|p| p.to_string())
        .collect()
}

#[test]
fn union_call_gives_every_root_its_own_closure() {
    let progs = programs();
    if progs.len() < 12 {
        println!(
            "skipping union_call_gives_every_root_its_own_closure: only {} of the programs are installed",
            progs.len()
        );
        return;
    }
    let mut args: Vec<&str> = Vec::new();
    for p in &progs {
        args.push("--root");
        args.push(p);
    }
    let union = per_root(&report(&args));
    // The same call again: parallel work must not make the answer vary.
    assert_eq!(
        union,
        per_root(&report(&args)),
        "two identical union calls differ"
    );
    // Byte for byte the same report on one thread (no prefetch, roots
    // traced one after another) as on several.
    let (one, many) = (report_text(&args, Some("1")), report_text(&args, Some("4")));
    assert!(
        one == many,
        "the report depends on the number of threads ({} vs {} bytes)",
        one.len(),
        many.len()
    );
    for p in &progs {
        // `--root` names may be links (awk): the report keys roots by the
        // name given.
        let alone = per_root(&report(&["--root", p]));
        let alone = alone.get(p.as_str()).cloned().unwrap_or_default();
        let together = union.get(p.as_str()).cloned().unwrap_or_default();
        assert!(!alone.is_empty(), "{p}: empty closure alone");
        let only_alone: Vec<_> = alone.difference(&together).collect();
        let only_union: Vec<_> = together.difference(&alone).collect();
        assert!(
            only_alone.is_empty() && only_union.is_empty(),
            "{p}: closure alone and in the union call differ\nonly alone: {only_alone:?}\nonly in the union: {only_union:?}"
        );
    }
}
