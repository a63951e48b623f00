//! Many roots in one call give every root exactly the closure it has alone.
//!
//! A large call takes the fast paths: files are prefetched on all cores,
//! roots are traced in parallel and merged in order while later ones are
//! traced, a root of a shape seen before reuses that trace, and results
//! are memoised across roots. None of that may change an answer, so the
//! per-root view of one union call (`objects[].roots` in the JSON report)
//! must equal separate single-root calls, which share no trace, memo or
//! merge with another root.

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

/// Dynamic programs of this machine, a spread of them (more than
/// `PARALLEL_ROOTS`, so that the union call takes the parallel paths),
/// including ones that use `pthread_exit` or `backtrace`
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
    let mut progs: Vec<String> = wanted
        .iter()
        .filter(|p| std::path::Path::new(p).exists())
        .map(|p| p.to_string())
        .collect();
    // Filled up from /usr/bin (in name order) so that the call has more
    // roots than the parallel paths need.
    let mut more: Vec<std::path::PathBuf> = std::fs::read_dir("/usr/bin")
        .map(|d| d.flatten().map(|e| e.path()).collect())
        .unwrap_or_default();
    more.sort();
    for p in more {
        if progs.len() >= closure::graph::build::PARALLEL_ROOTS + 8 {
            break;
        }
        let is_elf = std::fs::symlink_metadata(&p).is_ok_and(|m| m.is_file())
            && std::fs::read(&p).is_ok_and(|b| b.starts_with(b"\x7fELF"));
        let p = p.to_string_lossy().into_owned();
        if is_elf && !progs.contains(&p) {
            progs.push(p);
        }
    }
    progs
}

/// [`programs`], when there are enough of them for the parallel paths;
/// else `test` says it skips.
fn enough_programs(test: &str) -> Option<Vec<String>> {
    let progs = programs();
    if progs.len() < closure::graph::build::PARALLEL_ROOTS {
        println!(
            "skipping {test}: only {} of the programs are installed",
            progs.len()
        );
        return None;
    }
    Some(progs)
}

/// `--root P` for each program.
fn root_args(progs: &[String]) -> Vec<&str> {
    progs.iter().flat_map(|p| ["--root", p.as_str()]).collect()
}

#[test]
fn union_call_gives_every_root_its_own_closure() {
    let Some(progs) = enough_programs("union_call_gives_every_root_its_own_closure") else {
        return;
    };
    let args = root_args(&progs);
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

/// Roots of one shape (same interpreter, SONAME and `DT_NEEDED` list, no
/// search path of their own) are traced once and share that trace; each
/// must still get its own edges, its own missing entries (needed by it),
/// its own version checks and the shared objects' `needed_by`. More such
/// programs than `PARALLEL_ROOTS` (so the union call takes the parallel
/// paths) in one call, against one call each, and against one thread.
#[test]
fn roots_of_one_shape_keep_what_is_their_own() {
    use crate::support::elfgen::{Arch, ElfSpec, Kind};
    use crate::support::fakeroot::{FakeRoot, Layout};
    let r = FakeRoot::new();
    r.debian_base(Arch::X86_64, Layout::DEBIAN12);
    r.lib(
        "/usr/lib/x86_64-linux-gnu/libhere.so.1",
        Arch::X86_64,
        "libhere.so.1",
        &["libc.so.6"],
    );
    let roots: Vec<String> = (0..closure::graph::build::PARALLEL_ROOTS + 4)
        .map(|i| format!("/app/bin/p{i:02}"))
        .collect();
    for (i, root) in roots.iter().enumerate() {
        let verneeds = match i % 3 {
            // A version libc does not define: reported for this root only.
            1 => vec![(
                "libc.so.6".to_string(),
                vec![("GLIBC_9.99".to_string(), false)],
            )],
            2 => vec![(
                "libc.so.6".to_string(),
                vec![("GLIBC_2.17".to_string(), false)],
            )],
            _ => Vec::new(),
        };
        r.elf(
            root,
            &ElfSpec {
                arch: Some(Arch::X86_64),
                kind: Kind::Exec,
                needed: vec![
                    "libhere.so.1".into(),
                    "libgone.so.1".into(),
                    "libc.so.6".into(),
                ],
                verneeds,
                ..Default::default()
            },
        );
    }
    let sysroot = r.sysroot();
    let mut args: Vec<&str> = Vec::new();
    for root in &roots {
        args.extend(["--root", root.as_str()]);
    }
    let union = r.json(&args);
    let objects = |v: &serde_json::Value, root: &str| -> BTreeSet<String> {
        v["objects"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|o| o["roots"].as_array().unwrap().iter().any(|x| x == root))
            .map(|o| o["path"].as_str().unwrap().to_string())
            .collect()
    };
    let missing = |v: &serde_json::Value, root: &str| -> BTreeSet<String> {
        v["missing"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|m| m["roots"].as_array().unwrap().iter().any(|x| x == root))
            .map(|m| format!("{} needed by {}", m["soname"], m["needed_by"]))
            .collect()
    };
    let versions = |v: &serde_json::Value, root: &str| -> Vec<String> {
        v["missing_versions"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|m| m["object"] == root)
            .map(|m| m.to_string())
            .collect()
    };
    let path_of = |soname: &str| -> String {
        union["objects"]
            .as_array()
            .unwrap()
            .iter()
            .find(|o| o["soname"] == soname)
            .and_then(|o| o["path"].as_str())
            .unwrap_or_else(|| panic!("no {soname} in {union:#}"))
            .to_string()
    };
    let (libc, libhere) = (path_of("libc.so.6"), path_of("libhere.so.1"));
    for (i, root) in roots.iter().enumerate() {
        let alone = r.json(&["--root", root]);
        assert_eq!(
            objects(&union, root),
            objects(&alone, root),
            "{root}: objects"
        );
        assert_eq!(
            missing(&union, root),
            missing(&alone, root),
            "{root}: missing"
        );
        assert_eq!(
            missing(&union, root),
            BTreeSet::from([format!("\"libgone.so.1\" needed by \"{root}\"")]),
            "{root}: its own missing entry"
        );
        assert_eq!(
            versions(&union, root),
            versions(&alone, root),
            "{root}: versions"
        );
        assert_eq!(
            versions(&union, root).len(),
            usize::from(i % 3 == 1),
            "{root}"
        );
        // Every root is among the needers of what it needs.
        let needers = |v: &serde_json::Value, path: &str| -> BTreeSet<String> {
            v["objects"]
                .as_array()
                .unwrap()
                .iter()
                .find(|o| o["path"] == path)
                .map(|o| {
                    o["needed_by"]
                        .as_array()
                        .unwrap()
                        .iter()
                        .map(|x| x.as_str().unwrap().to_string())
                        .collect()
                })
                .unwrap_or_default()
        };
        assert!(
            needers(&union, &libc).contains(root.as_str()),
            "{root}: libc needed_by"
        );
        assert!(
            needers(&union, &libhere).contains(root.as_str()),
            "{root}: libhere needed_by"
        );
    }
    // Which root's trace becomes the template depends on timing; the
    // report may not.
    let mut cmd_args: Vec<&str> = vec!["--sysroot", &sysroot];
    cmd_args.extend(&args);
    let (one, many) = (
        report_text(&cmd_args, Some("1")),
        report_text(&cmd_args, Some("4")),
    );
    assert!(one == many, "the report depends on the number of threads");
}

/// Runs `closure ARGS` and returns (stdout, stderr).
fn run_text(args: &[&str]) -> (String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_closure"))
        .args(args)
        .env_remove("RAYON_NUM_THREADS")
        .stdin(Stdio::null())
        .output()
        .expect("cannot spawn closure");
    (
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// Splits a report into per-root blocks at lines `starts(line)` names.
fn blocks(text: &str, starts: &dyn Fn(&str) -> Option<String>) -> BTreeMap<String, String> {
    let mut m: BTreeMap<String, String> = BTreeMap::new();
    let mut current = None;
    for line in text.lines() {
        if let Some(root) = starts(line) {
            current = Some(root);
            continue;
        }
        if let Some(r) = &current {
            let b = m.entry(r.clone()).or_default();
            b.push_str(line);
            b.push('\n');
        }
    }
    m
}

/// What a root's own load is like does not depend on the other roots of the
/// call: its tree (which edge loaded each object, which found it already
/// loaded, with which search step), its `ldd` lines and its `--verbose`
/// searches are the same alone as among many. In the merged graph an edge
/// can come from another root's load, where the object was loaded already
/// while this root searched for it (`dbus-monitor` after `dbus-daemon`).
#[test]
fn union_call_shows_every_root_its_own_load() {
    let Some(progs) = enough_programs("union_call_shows_every_root_its_own_load") else {
        return;
    };
    let args = root_args(&progs);
    // Tree blocks start at a root's own line (the name given, unindented).
    let tree_start =
        |l: &str| (!l.starts_with(' ')).then(|| l.split(" (").next().unwrap_or(l).to_string());
    let ldd_start = |l: &str| (!l.starts_with('\t')).then(|| l.trim_end_matches(':').to_string());
    let steps_start = |l: &str| l.strip_prefix("search: loading ").map(str::to_string);
    let (tree, _) = run_text(&[&args[..], &["--format", "tree", "--startup-only"]].concat());
    let (ldd, _) = run_text(&[&args[..], &["--format", "ldd", "--startup-only"]].concat());
    let (_, steps) = run_text(&[&args[..], &["--format", "list", "--startup-only", "-v"]].concat());
    let (tree, ldd, steps) = (
        blocks(&tree, &tree_start),
        blocks(&ldd, &ldd_start),
        blocks(&steps, &steps_start),
    );
    let mut differ = Vec::new();
    for p in &progs {
        let one = ["--root", p.as_str(), "--startup-only"];
        let (alone_tree, _) = run_text(&[&one[..], &["--format", "tree"]].concat());
        let (alone_ldd, _) = run_text(&[&one[..], &["--format", "ldd"]].concat());
        let (_, alone_steps) = run_text(&[&one[..], &["--format", "list", "-v"]].concat());
        // (Alone, `ldd` prints no `ROOT:` line: its whole output is the block.)
        let canonical = |text: &str, f: &dyn Fn(&str) -> Option<String>| {
            blocks(text, f).remove(p.as_str()).unwrap_or_default()
        };
        for (what, together, alone) in [
            ("tree", &tree, canonical(&alone_tree, &tree_start)),
            ("ldd", &ldd, alone_ldd.clone()),
            ("--verbose", &steps, canonical(&alone_steps, &steps_start)),
        ] {
            let together = together.get(p.as_str()).cloned().unwrap_or_default();
            if together != alone {
                differ.push(format!(
                    "{p} ({what}):\n--- alone\n{alone}--- in the union call\n{together}"
                ));
            }
        }
    }
    assert!(
        differ.is_empty(),
        "{} of {} roots show another load in the union call:\n{}",
        differ.len(),
        progs.len(),
        differ
            .iter()
            .take(3)
            .cloned()
            .collect::<Vec<_>>()
            .join("\n")
    );
}

/// A library two programs share finds its dependency through each
/// program's `DT_RPATH` (it has no search path of its own): `/a/libdep.so.1`
/// for one, `/b/libdep.so.1` for the other. The merged graph then has two
/// edges of the same name from the shared library; each root's tree, `ldd`
/// lines and `--verbose` log must show its own, exactly as alone.
#[test]
fn a_shared_library_resolving_per_program_shows_each_root_its_own() {
    use crate::support::elfgen::{Arch, ElfSpec, Kind};
    use crate::support::fakeroot::{FakeRoot, Layout};
    let r = FakeRoot::new();
    r.debian_base(Arch::X86_64, Layout::DEBIAN12);
    // libshared uses a symbol only /a's libdep defines: with b's libdep it
    // is unbound (`--check-symbols`), whatever a's load has.
    r.elf(
        "/usr/lib/x86_64-linux-gnu/libshared.so.1",
        &ElfSpec {
            arch: Some(Arch::X86_64),
            kind: Kind::Shared,
            soname: Some("libshared.so.1".into()),
            needed: vec!["libdep.so.1".into(), "libc.so.6".into()],
            undefined: vec![("only_in_a".into(), None)],
            ..Default::default()
        },
    );
    r.elf(
        "/a/libdep.so.1",
        &ElfSpec {
            arch: Some(Arch::X86_64),
            kind: Kind::Shared,
            soname: Some("libdep.so.1".into()),
            needed: vec!["libc.so.6".into()],
            defined: vec![("only_in_a".into(), None)],
            ..Default::default()
        },
    );
    r.lib(
        "/b/libdep.so.1",
        Arch::X86_64,
        "libdep.so.1",
        &["libc.so.6"],
    );
    for (prog, rpath) in [("/app/bin/a", "/a"), ("/app/bin/b", "/b")] {
        r.elf(
            prog,
            &ElfSpec {
                arch: Some(Arch::X86_64),
                kind: Kind::Exec,
                needed: vec!["libshared.so.1".into(), "libc.so.6".into()],
                rpath: Some(rpath.into()),
                ..Default::default()
            },
        );
    }
    let sysroot = r.sysroot();
    let run = |args: &[&str]| -> (String, String) {
        let mut all = vec!["--sysroot", sysroot.as_str(), "--startup-only"];
        all.extend_from_slice(args);
        run_text(&all)
    };
    // Both programs in one call, and each in the order that puts the other
    // first (the merged edge is the first root's).
    for order in [["/app/bin/a", "/app/bin/b"], ["/app/bin/b", "/app/bin/a"]] {
        let roots = ["--root", order[0], "--root", order[1]];
        let (tree, _) = run(&[&roots[..], &["--format", "tree"]].concat());
        let (ldd, _) = run(&[&roots[..], &["--format", "ldd"]].concat());
        let (_, steps) = run(&[&roots[..], &["--format", "list", "-v"]].concat());
        let tree_start = |l: &str| (!l.starts_with(' ')).then(|| l.to_string());
        let ldd_start =
            |l: &str| (!l.starts_with('\t')).then(|| l.trim_end_matches(':').to_string());
        let steps_start = |l: &str| l.strip_prefix("search: loading ").map(str::to_string);
        let (tree, ldd, steps) = (
            blocks(&tree, &tree_start),
            blocks(&ldd, &ldd_start),
            blocks(&steps, &steps_start),
        );
        for (prog, dir) in [("/app/bin/a", "/a"), ("/app/bin/b", "/b")] {
            let (t, _) = run(&["--root", prog, "--format", "tree"]);
            let (l, _) = run(&["--root", prog, "--format", "ldd"]);
            let (_, s) = run(&["--root", prog, "--format", "list", "-v"]);
            assert_eq!(
                tree[prog],
                blocks(&t, &tree_start)[prog],
                "{prog} tree, order {order:?}"
            );
            assert_eq!(ldd[prog], l, "{prog} ldd lines, order {order:?}");
            assert_eq!(
                steps[prog],
                blocks(&s, &steps_start)[prog],
                "{prog} --verbose, order {order:?}"
            );
            // The case tests what it says: each loads its own libdep.
            let own = format!("libdep.so.1 => {dir}/libdep.so.1");
            assert!(l.contains(&own), "{prog}: {l}");
            assert!(
                !ldd[prog].contains("libdep.so.1 => /a") || dir == "/a",
                "{}",
                ldd[prog]
            );
            assert!(
                !ldd[prog].contains("libdep.so.1 => /b") || dir == "/b",
                "{}",
                ldd[prog]
            );
        }
        // `--why` names each root's own chain to its libdep only.
        let (why, _) = run(&[&roots[..], &["--why", "libdep.so.1"]].concat());
        for (prog, dir) in [("/app/bin/a", "/a"), ("/app/bin/b", "/b")] {
            let lines: Vec<&str> = why.lines().filter(|l| l.starts_with(prog)).collect();
            assert!(!lines.is_empty(), "{prog}: no chain in\n{why}");
            assert!(
                lines
                    .iter()
                    .all(|l| l.ends_with(&format!("({dir}/libdep.so.1)"))),
                "{prog}: another root's chain in\n{why}"
            );
        }
        // The symbol check of each root's own scope: b's leaves the symbol
        // unbound, in either order.
        let unbound = |args: &[&str]| -> bool {
            let v: serde_json::Value = serde_json::from_str(
                &run(&[args, &["--check-symbols", "--format", "json"]].concat()).0,
            )
            .expect("JSON");
            v["undefined_symbols"]
                .as_array()
                .is_some_and(|a| a.iter().any(|u| u["symbol"] == "only_in_a"))
        };
        assert!(!unbound(&["--root", "/app/bin/a"]), "a alone");
        assert!(unbound(&["--root", "/app/bin/b"]), "b alone");
        assert!(
            unbound(&roots),
            "order {order:?}: b's scope borrowed a's libdep"
        );
    }
}

/// With the files on the disk, not in the page cache (as after a reboot,
/// or once memory pressure pushed them out), the read-ahead reads with
/// more threads than cores; the report is byte for byte the one of a
/// single thread, which reads nothing ahead.
#[test]
fn union_call_with_its_files_on_the_disk_gives_the_same_report() {
    let Some(progs) =
        enough_programs("union_call_with_its_files_on_the_disk_gives_the_same_report")
    else {
        return;
    };
    let args = root_args(&progs);
    let one = report_text(&args, Some("1"));
    let mut list_args = args.clone();
    list_args.extend(["--format", "list"]);
    let (list, _) = run_text(&list_args);
    let files: BTreeSet<&str> = list
        .lines()
        .chain(progs.iter().map(String::as_str))
        .collect();
    for f in &files {
        let _ = closure::testing::evict(std::path::Path::new(f));
    }
    // One of them checked (it is then read ahead again).
    let last_on_disk = files
        .last()
        .is_some_and(|f| closure::testing::in_memory(std::path::Path::new(f), 0).is_ok_and(|m| !m));
    if !last_on_disk {
        println!(
            "skipping union_call_with_its_files_on_the_disk_gives_the_same_report: the files stay in memory after POSIX_FADV_DONTNEED"
        );
        return;
    }
    let cold = report_text(&args, Some("2"));
    assert!(
        cold == one,
        "the report read from the disk differs ({} vs {} bytes)",
        cold.len(),
        one.len()
    );
}
