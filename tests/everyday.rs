//! Day-two use: `closure verify` (and the check that runs after staging),
//! `--format size`, `--verbose`, colour, generated completions and man
//! pages, and the README's two recipes walked through for real.
//!
//! The recipes cannot use Docker here, so the Dockerfile's `RUN closure …`
//! line is taken from README.md and run against a synthetic build root
//! (copies of this machine's glibc and a gcc-built server, what the build
//! stage would hold); the staged result is run the way a container runtime
//! would (`support::chroot`), bare as on `scratch` and composed onto a
//! distroless-like base. The debugging recipe's commands are taken from
//! README.md too, run against a broken root, and their output must contain
//! every line the README shows.
//!
//! Snapshot tests run on `sample-rootfs` from the manifest directory with
//! a relative `--sysroot`, so the snapshots do not depend on the machine.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use tempfile::TempDir;

use crate::support::chroot::{run_in_root, skip_unless_root};
use crate::support::elfgen::{self, Arch, ElfSpec, Kind};
use crate::support::fakeroot::{closure_bin, run_raw, FakeRoot, Layout};

const X: Arch = Arch::X86_64;
const T: &str = "x86_64-linux-gnu";
const APP: &str = "/app/bin/app";
const HOST_LDSO: &str = "/lib64/ld-linux-x86-64.so.2";
const HOST_LIBDIR: &str = "/lib/x86_64-linux-gnu";

// ---------------------------------------------------------------------------------------------
// Helpers
// ---------------------------------------------------------------------------------------------

fn tempdir(prefix: &str) -> TempDir {
    tempfile::Builder::new()
        .prefix(prefix)
        .tempdir()
        .expect("tempdir")
}

fn s(p: &Path) -> &str {
    p.to_str().expect("test paths are UTF-8")
}

/// Runs the binary from the manifest directory (so `sample-rootfs` is a
/// relative path); returns (exit code, stdout, stderr).
fn run_in_manifest_dir(args: &[&str]) -> (i32, String, String) {
    let out = Command::new(closure_bin())
        .args(args)
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .env_remove("NO_COLOR")
        .stdin(Stdio::null())
        .output()
        .expect("spawn closure");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// A clean Debian 12 style root: `/app/bin/app` (RUNPATH `$ORIGIN/../lib`,
/// requires `GLIBC_2.34` of libc.so.6) needs libapp.so.1 (in /app/lib,
/// needs libfoo.so.1 from the multiarch directory) and libc.so.6. The
/// app's RUNPATH starts with `/opt/override`, empty here.
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
    r.elf(
        APP,
        &ElfSpec {
            arch: Some(X),
            kind: Kind::Exec,
            needed: vec!["libapp.so.1".into(), "libc.so.6".into()],
            runpath: Some("/opt/override:$ORIGIN/../lib".into()),
            verneeds: vec![("libc.so.6".into(), vec![("GLIBC_2.34".into(), false)])],
            ..Default::default()
        },
    );
    r
}

/// Stages `root` (roots `args`) into a fresh directory; asserts exit 0.
fn stage(root: &FakeRoot, args: &[&str]) -> (TempDir, PathBuf) {
    let dir = tempdir("closure-everyday-stage-");
    let out = dir.path().join("out");
    let mut all = args.to_vec();
    all.extend(["--out", s(&out)]);
    let (code, stdout, stderr) = root.run(&all);
    assert_eq!(
        code, 0,
        "staging {all:?}\nstdout:\n{stdout}\nstderr:\n{stderr}"
    );
    (dir, out)
}

fn verify(dir: &Path, extra: &[&str]) -> (i32, String, String) {
    let mut args = vec!["verify", s(dir)];
    args.extend_from_slice(extra);
    run_raw(&args)
}

fn tool_runs(prog: &str) -> bool {
    Command::new(prog)
        .arg("--version")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .map(|s| s.success())
        .unwrap_or(false)
}

/// True (after printing why) when gcc or the host's x86_64 glibc is missing.
fn no_toolchain(test: &str) -> bool {
    if !tool_runs("gcc") {
        println!("skipping {test}: gcc is not installed");
        return true;
    }
    if !Path::new(HOST_LDSO).exists() || !Path::new(HOST_LIBDIR).join("libc.so.6").exists() {
        println!("skipping {test}: no x86_64 Debian-style glibc on this host");
        return true;
    }
    false
}

/// [`crate::support::gcc`] with `-O2`.
fn gcc(out: &Path, src: &Path, args: &[&str]) {
    let mut all = vec!["-O2"];
    all.extend_from_slice(args);
    crate::support::gcc(out, src, &all);
}

fn copy_file(from: &Path, to: &Path) {
    fs::create_dir_all(to.parent().expect("parent")).expect("mkdir");
    fs::copy(from, to)
        .unwrap_or_else(|e| panic!("copy {} -> {}: {e}", from.display(), to.display()));
}

fn symlink(target: &str, link: &Path) {
    fs::create_dir_all(link.parent().expect("parent")).expect("mkdir");
    std::os::unix::fs::symlink(target, link)
        .unwrap_or_else(|e| panic!("symlink {} -> {target}: {e}", link.display()));
}

/// A usrmerged Debian 12 style root holding copies of this machine's glibc
/// (what `FROM debian:bookworm` gives a build stage, minus the rest), with
/// `/etc/ld.so.conf` including `ld.so.conf.d/*.conf`.
fn debian_like_root(dir: &Path) {
    let libc = fs::canonicalize(Path::new(HOST_LIBDIR).join("libc.so.6")).expect("host libc");
    let ldso = fs::canonicalize(HOST_LDSO).expect("host ld.so");
    for d in [
        "usr/lib/x86_64-linux-gnu",
        "usr/lib64",
        "usr/bin",
        "usr/sbin",
    ] {
        fs::create_dir_all(dir.join(d)).expect("mkdir");
    }
    for (l, t) in [
        ("lib", "usr/lib"),
        ("lib64", "usr/lib64"),
        ("bin", "usr/bin"),
        ("sbin", "usr/sbin"),
    ] {
        symlink(t, &dir.join(l));
    }
    copy_file(&libc, &dir.join("usr/lib/x86_64-linux-gnu/libc.so.6"));
    copy_file(
        &ldso,
        &dir.join("usr/lib/x86_64-linux-gnu/ld-linux-x86-64.so.2"),
    );
    symlink(
        "/lib/x86_64-linux-gnu/ld-linux-x86-64.so.2",
        &dir.join("usr/lib64/ld-linux-x86-64.so.2"),
    );
    fs::create_dir_all(dir.join("etc/ld.so.conf.d")).expect("mkdir etc");
    fs::write(
        dir.join("etc/ld.so.conf"),
        "include /etc/ld.so.conf.d/*.conf\n",
    )
    .expect("ld.so.conf");
}

/// Runs `ldconfig -r ROOT` (writes ROOT/etc/ld.so.cache).
fn ldconfig(root: &Path) {
    let prog = ["/usr/sbin/ldconfig", "/sbin/ldconfig"]
        .into_iter()
        .find(|p| Path::new(p).exists())
        .unwrap_or("ldconfig");
    let res = Command::new(prog)
        .arg("-r")
        .arg(root)
        .output()
        .expect("spawn ldconfig");
    assert!(
        res.status.success(),
        "ldconfig -r {}: {}",
        root.display(),
        String::from_utf8_lossy(&res.stderr)
    );
}

/// Fenced code blocks of README.md: (info string, body).
fn readme_blocks() -> Vec<(String, String)> {
    let text = fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("README.md"))
        .expect("read README.md");
    let mut out = Vec::new();
    let mut cur: Option<(String, String)> = None;
    for line in text.lines() {
        match (&mut cur, line.strip_prefix("```")) {
            (None, Some(info)) => cur = Some((info.trim().to_string(), String::new())),
            (Some(_), Some("")) => out.extend(cur.take()),
            (Some((_, body)), _) => {
                body.push_str(line);
                body.push('\n');
            }
            (None, None) => {}
        }
    }
    out
}

/// The one README block of kind `info` containing `needle`.
fn readme_block(info: &str, needle: &str) -> String {
    let found: Vec<String> = readme_blocks()
        .into_iter()
        .filter(|(i, b)| i == info && b.contains(needle))
        .map(|(_, b)| b)
        .collect();
    assert_eq!(
        found.len(),
        1,
        "README.md should have exactly one ```{info} block containing {needle:?}"
    );
    found.into_iter().next().unwrap_or_default()
}

/// Asserts that `want` lines (ignoring `...` lines) occur in `have` in
/// order.
fn assert_lines_in_order(want: &[&str], have: &str, ctx: &str) {
    let lines: Vec<&str> = have.lines().collect();
    let mut at = 0;
    for w in want.iter().filter(|w| w.trim() != "...") {
        match lines[at..].iter().position(|l| l == w) {
            Some(i) => at += i + 1,
            None => panic!(
                "{ctx}: the line {w:?} (from README.md) is not in the output, in order:\n{have}"
            ),
        }
    }
}

// ---------------------------------------------------------------------------------------------
// closure verify
// ---------------------------------------------------------------------------------------------

#[test]
fn verify_passes_on_a_correctly_staged_root() {
    let root = clean_root();
    let (_d, out) = stage(&root, &["--root", APP]);
    let (code, stdout, stderr) = verify(&out, &[]);
    assert_eq!(
        code, 0,
        "verify of a staged root\nstdout:\n{stdout}\nstderr:\n{stderr}"
    );
    assert_eq!(stderr, "", "a clean verify prints nothing on stderr");
    assert!(
        stdout.starts_with("/app/bin/app\n"),
        "tree report: {stdout}"
    );
    // The flag form and other formats agree.
    let (code, stdout, stderr) = run_raw(&["--verify", s(&out), "--format", "list"]);
    assert_eq!(code, 0, "--verify: {stderr}");
    let listed: Vec<&str> = stdout.lines().collect();
    assert_eq!(
        listed,
        [
            "/app/bin/../lib/libapp.so.1",
            APP,
            "/lib/x86_64-linux-gnu/libc.so.6",
            "/lib/x86_64-linux-gnu/libfoo.so.1",
            "/lib64/ld-linux-x86-64.so.2",
        ]
    );
    let (code, stdout, _) = verify(&out, &["--format", "json"]);
    assert_eq!(code, 0);
    let v: serde_json::Value = serde_json::from_str(&stdout).expect("verify --format json");
    assert_eq!(v["missing"].as_array().map(Vec::len), Some(0));
}

#[test]
fn verify_names_a_deleted_library() {
    let root = clean_root();
    let (_d, out) = stage(&root, &["--root", APP]);
    fs::remove_file(out.join("app/lib/libapp.so.1")).expect("delete libapp");
    let (code, _, stderr) = verify(&out, &[]);
    assert_eq!(code, 1, "verify after deleting a library\n{stderr}");
    assert!(
        stderr.contains("error: libapp.so.1 (needed by /app/bin/app): not found"),
        "{stderr}"
    );
    assert!(
        stderr.contains("does not resolve completely inside itself"),
        "{stderr}"
    );
    // A library deleted deeper in the chain is named with its requester.
    let (_d2, out2) = stage(&root, &["--root", APP]);
    fs::remove_file(out2.join(format!("usr/lib/{T}/libfoo.so.1"))).expect("delete libfoo");
    let (code, _, stderr) = verify(&out2, &["--format", "list"]);
    assert_eq!(code, 1);
    assert!(
        stderr.contains("error: libfoo.so.1 (needed by /app/bin/../lib/libapp.so.1): not found"),
        "{stderr}"
    );
}

#[test]
fn verify_names_a_libc_lacking_the_required_version() {
    let root = clean_root();
    let (_d, out) = stage(&root, &["--root", APP]);
    // An older libc.so.6 stand-in: defines GLIBC_2.17 only.
    let old = elfgen::build(&ElfSpec {
        arch: Some(X),
        kind: Kind::Shared,
        interp: Some(X.interp().to_string()),
        soname: Some("libc.so.6".into()),
        needed: vec!["ld-linux-x86-64.so.2".into()],
        verdefs: vec!["GLIBC_2.17".into()],
        ..Default::default()
    });
    fs::write(out.join(format!("usr/lib/{T}/libc.so.6")), old).expect("replace libc");
    let (code, _, stderr) = verify(&out, &[]);
    assert_eq!(code, 1, "{stderr}");
    assert!(
        stderr.contains(
            "error: /app/bin/app requires version GLIBC_2.34 of libc.so.6 (/lib/x86_64-linux-gnu/libc.so.6), which does not define it; it provides up to GLIBC_2.17"
        ),
        "{stderr}"
    );
}

#[test]
fn verify_checks_each_library_no_program_loads_on_its_own() {
    let root = clean_root();
    // A plugin nothing loads, needing a library that is not there.
    root.lib(
        "/app/plugins/libplug.so",
        X,
        "libplug.so",
        &["libgone.so.2"],
    );
    // A library that resolves its own dependency only through the RPATH
    // of the program that loads it: fine in that context.
    root.lib("/opt/x/lib/libinner.so.1", X, "libinner.so.1", &[]);
    root.lib(
        "/opt/x/lib/libouter.so.1",
        X,
        "libouter.so.1",
        &["libinner.so.1"],
    );
    root.elf(
        "/opt/x/bin/tool",
        &ElfSpec {
            arch: Some(X),
            kind: Kind::Exec,
            needed: vec!["libouter.so.1".into(), "libc.so.6".into()],
            rpath: Some("/opt/x/lib".into()),
            ..Default::default()
        },
    );
    let (code, _, stderr) = verify(root.path(), &["--format", "list"]);
    assert_eq!(code, 1, "{stderr}");
    assert!(
        stderr.contains("error: libgone.so.2 (needed by /app/plugins/libplug.so): not found"),
        "{stderr}"
    );
    assert!(
        !stderr.contains("libinner.so.1 (needed by"),
        "libouter.so.1 is checked inside /opt/x/bin/tool's load, where its RPATH applies:\n{stderr}"
    );
    assert_eq!(
        stderr.matches("error:").count(),
        1,
        "only the plugin is a problem:\n{stderr}"
    );
}

#[test]
fn verify_with_check_symbols_reports_unbound_symbols() {
    let root = FakeRoot::new();
    root.debian_base(X, Layout::DEBIAN12);
    root.elf(
        "/usr/lib/x86_64-linux-gnu/libgreet.so.1",
        &ElfSpec {
            arch: Some(X),
            kind: Kind::Shared,
            soname: Some("libgreet.so.1".into()),
            defined: vec![("greet".into(), None)],
            ..Default::default()
        },
    );
    root.elf(
        APP,
        &ElfSpec {
            arch: Some(X),
            kind: Kind::Exec,
            needed: vec!["libgreet.so.1".into(), "libc.so.6".into()],
            undefined: vec![("greet".into(), None), ("farewell".into(), None)],
            ..Default::default()
        },
    );
    let (code, _, stderr) = verify(root.path(), &["--format", "list"]);
    assert_eq!(code, 0, "without --check-symbols: {stderr}");
    let (code, _, stderr) = verify(root.path(), &["--format", "list", "--check-symbols"]);
    assert_eq!(code, 1, "{stderr}");
    assert!(
        stderr.contains("error: undefined symbol: farewell (needed by /app/bin/app)"),
        "{stderr}"
    );
    assert!(!stderr.contains("symbol: greet "), "{stderr}");
}

#[test]
fn verify_usage_errors_exit_2() {
    let (code, _, stderr) = run_raw(&["verify", "/nonexistent/closure-verify-q1"]);
    assert_eq!(code, 2, "{stderr}");
    assert!(
        stderr.starts_with("closure: sysroot /nonexistent/closure-verify-q1"),
        "{stderr}"
    );
    let empty = tempdir("closure-verify-empty-");
    fs::write(empty.path().join("README"), "no ELF here\n").expect("write");
    let (code, _, stderr) = verify(empty.path(), &[]);
    assert_eq!(code, 2, "{stderr}");
    assert!(stderr.contains("holds no ELF file"), "{stderr}");
    let (code, _, stderr) = run_raw(&["verify"]);
    assert_eq!(code, 2, "{stderr}");
    let (code, _, stderr) = run_raw(&["--verify", s(empty.path()), "--root", "/x"]);
    assert_eq!(code, 2, "--verify with --root: {stderr}");
    // The contract's form still requires --root.
    let (code, _, stderr) = run_raw::<&str>(&[]);
    assert_eq!(code, 2, "{stderr}");
    assert!(stderr.contains("--root"), "{stderr}");
}

#[test]
fn verify_ignores_relocatable_objects_and_reports_malformed_elf() {
    let root = clean_root();
    let (_d, out) = stage(&root, &["--root", APP]);
    // A relocatable object (ET_REL): not something a loader maps.
    let mut rel = elfgen::build(&ElfSpec {
        arch: Some(X),
        kind: Kind::Shared,
        soname: Some("x.o".into()),
        ..Default::default()
    });
    rel[16] = 1; // e_type = ET_REL
    rel[17] = 0;
    fs::create_dir_all(out.join("usr/share/obj")).expect("mkdir");
    fs::write(out.join("usr/share/obj/x.o"), &rel).expect("write .o");
    let (code, _, stderr) = verify(&out, &["--verbose", "--format", "list"]);
    assert_eq!(code, 0, "{stderr}");
    assert!(
        stderr.contains("note: /usr/share/obj/x.o not checked: ELF type ET_REL"),
        "{stderr}"
    );
    // A truncated ELF file is a problem, named.
    fs::write(out.join("usr/share/obj/broken.so"), &rel[..40]).expect("write truncated");
    let (code, _, stderr) = verify(&out, &["--format", "list"]);
    assert_eq!(code, 1, "{stderr}");
    assert!(
        stderr.contains("error: /usr/share/obj/broken.so: the loader cannot map it"),
        "{stderr}"
    );
}

// ---------------------------------------------------------------------------------------------
// The check after staging
// ---------------------------------------------------------------------------------------------

#[test]
fn staging_fails_when_the_staged_root_loads_something_else() {
    let root = clean_root();
    // A previous staging left /opt/override/libapp.so.1 in the output;
    // the app's RUNPATH searches /opt/override first, so with --force the
    // staged root would load that stale file instead of /app/lib's.
    let dir = tempdir("closure-everyday-force-");
    let out = dir.path().join("out");
    let stale = elfgen::build(&ElfSpec {
        arch: Some(X),
        kind: Kind::Shared,
        soname: Some("libapp.so.1".into()),
        ..Default::default()
    });
    fs::create_dir_all(out.join("opt/override")).expect("mkdir");
    fs::write(out.join("opt/override/libapp.so.1"), &stale).expect("stale lib");
    let (code, _, stderr) = root.run(&["--root", APP, "--out", s(&out), "--force"]);
    assert_eq!(code, 1, "{stderr}");
    assert!(
        stderr.contains("error: /app/bin/app loads /opt/override/libapp.so.1 in the staged root but not in the sysroot"),
        "{stderr}"
    );
    assert!(
        stderr.contains("error: /app/bin/app loads /app/lib/libapp.so.1 in the sysroot but not in the staged root"),
        "{stderr}"
    );
    assert!(
        stderr.contains("does not load what the sysroot loads"),
        "{stderr}"
    );
    // --no-verify skips the check.
    let (code, _, stderr) = root.run(&["--root", APP, "--out", s(&out), "--force", "--no-verify"]);
    assert_eq!(code, 0, "--no-verify: {stderr}");
}

#[test]
fn staged_check_through_the_library() {
    use closure::graph;
    use closure::resolve::{Options, Resolver};
    use closure::rootfs::RootFs;
    use closure::verify::{check_staged, Divergence};

    let root = clean_root();
    let (_d, out) = stage(&root, &["--root", APP]);
    let fs_ = RootFs::new(root.path()).expect("rootfs");
    let resolver = Resolver::new(&fs_, Options::default());
    let g =
        graph::build(&resolver, &[APP.as_bytes().to_vec()], &Default::default()).expect("graph");
    let opts = closure::verify::Options::default();
    let ok = check_staged(&g, &out, &opts).expect("check");
    assert_eq!(ok.divergences, Vec::<Divergence>::new());
    fs::remove_file(out.join(format!("usr/lib/{T}/libfoo.so.1"))).expect("delete");
    let bad = check_staged(&g, &out, &opts).expect("check");
    let text: Vec<String> = bad.divergences.iter().map(|d| d.to_string()).collect();
    assert!(
        text.contains(
            &"libfoo.so.1 (needed by /app/bin/../lib/libapp.so.1) is not found in the staged root"
                .to_string()
        ),
        "{text:#?}"
    );
    assert!(
        text.contains(&"/app/bin/app loads /usr/lib/x86_64-linux-gnu/libfoo.so.1 in the sysroot but not in the staged root".to_string()),
        "{text:#?}"
    );
}

/// A found name's search record through the library: whole with
/// `found_searches` (what `--verbose` prints: every directory and
/// candidate), else only its last step without candidates (the step and
/// owner the graph reads, the rest dropped to save memory). The graph is
/// the same either way. Fails if the record is trimmed when asked whole,
/// or kept whole when not.
#[test]
fn found_searches_are_kept_whole_only_when_asked() {
    use closure::graph;
    use closure::resolve::{Options, Resolver, Tried, Via};
    use closure::rootfs::RootFs;

    let root = clean_root();
    let fs_ = RootFs::new(root.path()).expect("rootfs");
    let build = |found_searches: bool| {
        let resolver = Resolver::new(
            &fs_,
            Options {
                found_searches,
                ..Options::default()
            },
        );
        let opts = graph::BuildOptions {
            keep_search: true,
            ..Default::default()
        };
        graph::build(&resolver, &[APP.as_bytes().to_vec()], &opts).expect("graph")
    };
    let whole = build(true);
    let last = build(false);
    let key = (0, APP.as_bytes().to_vec(), b"libapp.so.1".to_vec());
    // RUNPATH /opt/override (nothing there), then $ORIGIN/../lib.
    let w = &whole.searches[&key];
    assert_eq!(w.len(), 2, "{w:#?}");
    assert_eq!(w[0].dir, b"/opt/override");
    assert_eq!(w[0].candidates.len(), 1);
    assert_eq!(w[0].candidates[0].1, Tried::Absent);
    assert_eq!(w[1].candidates.len(), 1);
    assert_eq!(w[1].candidates[0].1, Tried::Used);
    let l = &last.searches[&key];
    assert_eq!(l.len(), 1, "{l:#?}");
    assert_eq!(l[0].dir, w[1].dir);
    assert_eq!(l[0].via, Via::Runpath);
    assert_eq!(l[0].owner, w[1].owner);
    assert!(l[0].owner.is_some());
    assert!(l[0].candidates.is_empty());
    // The same graph: objects, and each edge's name, step and owner.
    let edges = |g: &graph::DepGraph| {
        let mut v: Vec<_> = g
            .graph
            .edge_indices()
            .map(|e| {
                let (a, b) = g.graph.edge_endpoints(e).expect("edge");
                let x = &g.graph[e];
                let path = |n: petgraph::graph::NodeIndex| g.graph[n].path.clone();
                (
                    path(a),
                    path(b),
                    x.name.clone(),
                    x.via,
                    x.owner().map(<[u8]>::to_vec),
                )
            })
            .collect();
        v.sort();
        v
    };
    let paths = |g: &graph::DepGraph| {
        g.objects()
            .iter()
            .map(|n| n.path.clone())
            .collect::<Vec<_>>()
    };
    assert_eq!(paths(&whole), paths(&last));
    assert_eq!(edges(&whole), edges(&last));
    assert!(edges(&last)
        .iter()
        .any(|e| e.3 == Via::Runpath && e.4.is_some()));
}

// ---------------------------------------------------------------------------------------------
// --format size, --verbose, colour (snapshots on sample-rootfs)
// ---------------------------------------------------------------------------------------------

#[test]
fn size_report_of_sample_rootfs() {
    let (code, stdout, stderr) = run_in_manifest_dir(&[
        "--sysroot",
        "sample-rootfs",
        "--root",
        "/app/bin/server",
        "--root",
        "/app/bin/start.sh",
        "--format",
        "size",
    ]);
    assert_eq!(code, 0, "{stderr}");
    insta::assert_snapshot!("size_sample_rootfs", stdout);
}

#[test]
fn size_report_numbers_add_up() {
    let (code, stdout, stderr) = run_in_manifest_dir(&[
        "--sysroot",
        "sample-rootfs",
        "--root",
        "/app/bin/server",
        "--format",
        "size",
    ]);
    assert_eq!(code, 0, "{stderr}");
    let (files, rest) = stdout.split_once(" total: ").expect("total line");
    let sum: u64 = files
        .lines()
        .skip(1)
        .filter_map(|l| l.split_whitespace().next()?.parse::<u64>().ok())
        .collect::<Vec<_>>()
        .iter()
        .sum();
    let last_file_line = files.lines().last().unwrap_or_default();
    let total: u64 = last_file_line.trim().parse().expect("total bytes");
    assert_eq!(
        sum - total,
        total,
        "file sizes add up to the total:\n{stdout}"
    );
    // Sorted descending by bytes.
    let sizes: Vec<u64> = files
        .lines()
        .skip(1)
        .filter(|l| l.contains('/'))
        .filter_map(|l| l.split_whitespace().next()?.parse().ok())
        .collect();
    assert!(sizes.windows(2).all(|w| w[0] >= w[1]), "{stdout}");
    // One root: everything is exclusive to it.
    let root_line = rest
        .lines()
        .find(|l| l.starts_with("/app/bin/server"))
        .expect("root line");
    let nums: Vec<u64> = root_line
        .split_whitespace()
        .skip(1)
        .filter_map(|n| n.parse().ok())
        .collect();
    assert_eq!(nums, [total, total], "{stdout}");
}

#[test]
fn verbose_search_steps_of_sample_rootfs() {
    let (code, stdout, stderr) = run_in_manifest_dir(&[
        "--sysroot",
        "sample-rootfs",
        "--root",
        "/app/bin/server",
        "--root",
        "/app/bin/legacy",
        "--format",
        "list",
        "--verbose",
    ]);
    assert_eq!(code, 1, "legacy has problems\n{stderr}");
    assert!(stdout.contains("/app/bin/server\n"), "{stdout}");
    insta::assert_snapshot!("verbose_sample_rootfs", stderr);
}

#[test]
fn verbose_and_quiet_exclude_each_other() {
    let (code, _, stderr) = run_in_manifest_dir(&[
        "--sysroot",
        "sample-rootfs",
        "--root",
        "/app/bin/server",
        "--verbose",
        "--quiet",
    ]);
    assert_eq!(code, 2, "{stderr}");
}

/// Runs `closure ARGS` under `script` (a pseudo-terminal), with `NO_COLOR`
/// set to `no_color` or removed; returns everything the terminal showed.
fn on_a_terminal(args: &[&str], no_color: Option<&str>) -> Option<String> {
    if !tool_runs("script") {
        return None;
    }
    let cmd = std::iter::once(closure_bin())
        .chain(args.iter().copied())
        .map(|a| format!("'{a}'"))
        .collect::<Vec<_>>()
        .join(" ");
    let mut c = Command::new("script");
    c.args(["-qec", &cmd, "/dev/null"])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .stdin(Stdio::null());
    match no_color {
        Some(v) => c.env("NO_COLOR", v),
        None => c.env_remove("NO_COLOR"),
    };
    let out = c.output().ok()?;
    Some(String::from_utf8_lossy(&out.stdout).into_owned())
}

#[test]
fn colour_on_terminals_only_and_never_with_no_color() {
    let args = [
        "--sysroot",
        "sample-rootfs",
        "--root",
        "/app/bin/legacy",
        "--format",
        "list",
    ];
    let Some(tty) = on_a_terminal(&args, None) else {
        println!(
            "skipping colour_on_terminals_only_and_never_with_no_color: script(1) is not installed"
        );
        return;
    };
    assert!(
        tty.contains("\x1b[1;31merror:\x1b[0m libgone.so.3"),
        "{tty:?}"
    );
    let plain = on_a_terminal(&args, Some("1")).unwrap_or_default();
    assert!(plain.contains("error: libgone.so.3"), "{plain:?}");
    assert!(!plain.contains('\x1b'), "NO_COLOR=1: {plain:?}");
    // An empty NO_COLOR does not count (no-color.org).
    let empty = on_a_terminal(&args, Some("")).unwrap_or_default();
    assert!(empty.contains("\x1b[1;31merror:"), "{empty:?}");
    // Not a terminal: never.
    let (_, _, stderr) = run_in_manifest_dir(&args);
    assert!(
        stderr.contains("error: libgone.so.3") && !stderr.contains('\x1b'),
        "{stderr:?}"
    );
}

// ---------------------------------------------------------------------------------------------
// Completions and man pages
// ---------------------------------------------------------------------------------------------

#[test]
fn completions_and_man_pages_are_generated_from_the_cli() {
    let dir = tempdir("closure-docs-");
    let (code, stdout, stderr) = run_raw(&["--generate-docs", s(dir.path())]);
    assert_eq!(code, 0, "{stderr}");
    let mut names: Vec<String> = fs::read_dir(dir.path())
        .expect("read dir")
        .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    assert_eq!(
        names,
        [
            "_closure",
            "closure-audit.1",
            "closure-verify.1",
            "closure.1",
            "closure.bash",
            "closure.fish"
        ]
    );
    assert_eq!(stdout.lines().count(), 6, "{stdout}");
    let read = |n: &str| fs::read_to_string(dir.path().join(n)).expect("read");
    for (shell, prefix) in [
        ("closure.bash", "--"),
        ("_closure", "--"),
        ("closure.fish", "-l "),
    ] {
        let text = read(shell);
        for opt in ["root", "sysroot", "no-verify", "verbose", "format"] {
            let word = format!("{prefix}{opt}");
            assert!(text.contains(&word), "{shell} lacks {word}");
        }
        assert!(
            text.contains("verify"),
            "{shell} lacks the verify subcommand"
        );
        // The subcommand, and its own --format value (the top-level
        // --format has no `text`).
        for word in ["audit", "text"] {
            assert!(text.contains(word), "{shell} lacks audit's {word}");
        }
        assert!(text.contains("size"), "{shell} lacks --format size");
    }
    let man = read("closure.1");
    assert!(
        man.starts_with(".ie"),
        "roff: {}",
        &man[..man.len().min(200)]
    );
    assert!(man.contains(".TH closure 1"), "man page header");
    for word in ["\\-\\-root", "\\-\\-format", "size", "\\-\\-no\\-verify"] {
        assert!(man.contains(word), "closure.1 lacks {word}");
    }
    assert!(read("closure-verify.1").contains(".TH closure-verify 1"));
    let audit = read("closure-audit.1");
    assert!(
        audit.contains(".TH closure-audit 1"),
        "audit man page header"
    );
    for word in ["\\-\\-forbid", "world\\-writable", "\\-\\-format"] {
        assert!(audit.contains(word), "closure-audit.1 lacks {word}");
    }
}

// ---------------------------------------------------------------------------------------------
// README recipe 1: a multi-stage Dockerfile onto scratch and onto distroless/cc
// ---------------------------------------------------------------------------------------------

/// The README's Dockerfile `RUN closure …` line as arguments, with the
/// `--out` value replaced by `out` and `--sysroot build` put first.
fn dockerfile_closure_args(build: &Path, out: &Path) -> Vec<String> {
    let dockerfile = readme_block("dockerfile", "AS scratch-image");
    let run: Vec<&str> = dockerfile
        .lines()
        .filter(|l| l.starts_with("RUN closure "))
        .collect();
    assert_eq!(
        run.len(),
        1,
        "one `RUN closure` line in the Dockerfile:\n{dockerfile}"
    );
    let words: Vec<&str> = run[0].split_whitespace().skip(2).collect();
    let mut args = vec!["--sysroot".to_string(), s(build).to_string()];
    let mut i = 0;
    while i < words.len() {
        if words[i] == "--out" {
            args.push("--out".into());
            args.push(s(out).to_string());
            i += 2;
            continue;
        }
        args.push(words[i].to_string());
        i += 1;
    }
    assert!(
        args.iter().any(|a| a == "--out"),
        "the RUN line stages: {args:?}"
    );
    args
}

/// A build root as the Dockerfile's build stage would hold it:
/// Debian-like glibc and `/app/bin/server` built from docs/recipes/server.c.
fn build_stage_root() -> TempDir {
    let build = tempdir("closure-recipe-build-");
    debian_like_root(build.path());
    ldconfig(build.path());
    gcc(
        &build.path().join("app/bin/server"),
        &Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/recipes/server.c"),
        &[],
    );
    build
}

#[test]
fn dockerfile_recipe_runs_on_scratch_and_on_distroless() {
    let test = "dockerfile_recipe_runs_on_scratch_and_on_distroless";
    if no_toolchain(test) {
        return;
    }
    let build = build_stage_root();
    let stage_dir = tempdir("closure-recipe-staging-");
    let out = stage_dir.path().join("staging");
    let args = dockerfile_closure_args(build.path(), &out);
    let refs: Vec<&str> = args.iter().map(String::as_str).collect();
    let (code, stdout, stderr) = run_raw(&refs);
    assert_eq!(
        code, 0,
        "RUN closure {refs:?}\nstdout:\n{stdout}\nstderr:\n{stderr}"
    );
    // The staged root verifies on its own too.
    let (code, _, stderr) = verify(&out, &["--format", "list"]);
    assert_eq!(code, 0, "verify staging: {stderr}");
    // --base-files made it a usable scratch root.
    let passwd = fs::read_to_string(out.join("etc/passwd")).expect("staged /etc/passwd");
    assert!(passwd.contains("nonroot:x:65532:65532:"), "{passwd}");
    if skip_unless_root(test) {
        return;
    }
    // FROM scratch: the staged root alone.
    let (status, stdout, stderr) = run_in_root(&out, &["/app/bin/server", "--self-test"], &[]);
    assert!(
        status.success(),
        "server on scratch: {status}\n{stdout}\n{stderr}"
    );
    assert_eq!(
        stdout, "listening as root\nhello from a FROM scratch image\n",
        "stderr: {stderr}"
    );
    // FROM distroless/cc: a base that already has glibc and /etc/passwd;
    // the staged root is copied over it (COPY --from=build /staging /).
    let base = tempdir("closure-recipe-distroless-");
    debian_like_root(base.path());
    fs::write(
        base.path().join("etc/passwd"),
        "root:x:0:0:root:/root:/sbin/nologin\nnonroot:x:65532:65532:nonroot:/home/nonroot:/sbin/nologin\n",
    )
    .expect("base passwd");
    let mut src = out.clone().into_os_string();
    src.push("/.");
    let cp = Command::new("cp")
        .args(["-a", "--no-dereference"])
        .arg(&src)
        .arg(base.path())
        .output()
        .expect("spawn cp");
    assert!(
        cp.status.success(),
        "cp: {}",
        String::from_utf8_lossy(&cp.stderr)
    );
    assert!(
        fs::symlink_metadata(base.path().join("lib"))
            .expect("/lib")
            .file_type()
            .is_symlink(),
        "the base stays usrmerged"
    );
    let (status, stdout, stderr) =
        run_in_root(base.path(), &["/app/bin/server", "--self-test"], &[]);
    assert!(
        status.success(),
        "server on distroless: {status}\n{stdout}\n{stderr}"
    );
    assert!(
        stdout.ends_with("hello from a FROM scratch image\n"),
        "{stdout}"
    );
}

// ---------------------------------------------------------------------------------------------
// README recipe 2: debugging "cannot open shared object file"
// ---------------------------------------------------------------------------------------------

const GREET_LIB_C: &str = "const char *greet(void) { return \"hello from libgreet\"; }\n";
const GREET_MAIN_C: &str =
    "#include <stdio.h>\nconst char *greet(void);\nint main(void) { puts(greet()); return 0; }\n";

/// The broken root of the recipe: `/app/bin/server` needs libgreet.so.1,
/// which lives in /opt/greet/lib, a directory nothing makes the loader
/// search (no RUNPATH, not in ld.so.conf).
fn broken_root() -> TempDir {
    let root = tempdir("closure-recipe-broken-");
    debian_like_root(root.path());
    let src = tempdir("closure-recipe-src-");
    let lib_c = src.path().join("greet.c");
    let main_c = src.path().join("server.c");
    fs::write(&lib_c, GREET_LIB_C).expect("write");
    fs::write(&main_c, GREET_MAIN_C).expect("write");
    let lib = root.path().join("opt/greet/lib/libgreet.so.1");
    gcc(
        &lib,
        &lib_c,
        &["-shared", "-fPIC", "-Wl,-soname,libgreet.so.1"],
    );
    symlink(
        "libgreet.so.1",
        &root.path().join("opt/greet/lib/libgreet.so"),
    );
    let ldir = format!("-L{}", s(&root.path().join("opt/greet/lib")));
    gcc(
        &root.path().join("app/bin/server"),
        &main_c,
        &[&ldir, "-lgreet"],
    );
    ldconfig(root.path());
    root
}

#[test]
fn debugging_recipe_explains_cannot_open_shared_object_file() {
    let test = "debugging_recipe_explains_cannot_open_shared_object_file";
    if no_toolchain(test) {
        return;
    }
    let root = broken_root();
    let sysroot = s(root.path()).to_string();
    let console = readme_block("console", "cannot open shared object file");
    // The README's transcript: `$ closure …` commands and their output.
    let mut runs: Vec<(String, Vec<String>)> = Vec::new();
    for line in console.lines() {
        if let Some(cmd) = line.strip_prefix("$ ") {
            runs.push((cmd.to_string(), Vec::new()));
        } else if let Some((_, out)) = runs.last_mut() {
            out.push(line.to_string());
        }
    }
    assert!(
        runs.len() >= 2,
        "the recipe shows at least the tree and --why:\n{console}"
    );
    let mut loader_message = None;
    for (cmd, want) in &runs {
        let words: Vec<&str> = cmd.split_whitespace().collect();
        match words.first() {
            Some(&"closure") => {
                let args: Vec<&str> = words[1..]
                    .iter()
                    .map(|w| if *w == "rootfs" { sysroot.as_str() } else { w })
                    .collect();
                let (_, stdout, stderr) = run_raw(&args);
                let want: Vec<&str> = want.iter().map(String::as_str).collect();
                assert_lines_in_order(&want, &format!("{stdout}{stderr}"), cmd);
            }
            Some(&"docker") => loader_message = want.first().cloned(),
            _ => panic!("the recipe runs only closure and docker: {cmd}"),
        }
    }
    // What the real loader says in that root is what the recipe quotes.
    if skip_unless_root(test) {
        return;
    }
    let (status, _, stderr) = run_in_root(root.path(), &["/app/bin/server"], &[]);
    assert!(!status.success(), "the broken server must not start");
    let quoted = loader_message.expect("the recipe quotes the loader's message");
    assert_eq!(stderr.trim_end(), quoted, "the loader's own words");
}

#[test]
fn debugging_recipe_fix_makes_the_root_verify_and_run() {
    let test = "debugging_recipe_fix_makes_the_root_verify_and_run";
    if no_toolchain(test) {
        return;
    }
    let root = broken_root();
    // The fix the recipe gives: list the directory in ld.so.conf, ldconfig.
    fs::write(
        root.path().join("etc/ld.so.conf.d/greet.conf"),
        "/opt/greet/lib\n",
    )
    .expect("greet.conf");
    ldconfig(root.path());
    let dir = tempdir("closure-recipe-fixed-");
    let out = dir.path().join("staging");
    let (code, _, stderr) = run_raw(&[
        "--sysroot",
        s(root.path()),
        "--root",
        "/app/bin/server",
        "--out",
        s(&out),
    ]);
    assert_eq!(code, 0, "{stderr}");
    assert!(
        out.join("etc/ld.so.cache").is_file(),
        "a library found through the cache outside the default directories needs a staged cache"
    );
    let (code, _, stderr) = verify(&out, &["--format", "list"]);
    assert_eq!(code, 0, "{stderr}");
    if skip_unless_root(test) {
        return;
    }
    let (status, stdout, stderr) = run_in_root(&out, &["/app/bin/server"], &[]);
    assert!(status.success(), "{status}\n{stderr}");
    assert_eq!(stdout, "hello from libgreet\n");
}
