//! Staging end to end: `closure --out DIR` on this machine's real programs
//! (sysroot `/`) and on small gcc-built roots, then running the program in
//! the staged root the way a container runtime would (see
//! `support::chroot`). Covers that the staged root runs, that it holds
//! exactly what the loader loads (bytes and paths), that the real loader
//! inside it loads the same paths as on the host, the usrmerged and
//! non-merged layouts, composing onto a distroless-like base, faults
//! (bad `--out`, unreadable input, full disk, missing libraries),
//! `--base-files`, hard links and `--include`.
//!
//! A program absent from the host is skipped with a printed reason; so is
//! anything needing gcc or patchelf when they are absent, and anything
//! needing root (chroot, mounts, setpriv) when not root.

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use serde_json::Value;
use tempfile::TempDir;

use crate::support::chroot::{mounts_below, run_in_root, skip_unless_root};

const LDSO: &str = "/lib64/ld-linux-x86-64.so.2";
const TRIPLET_DIR: &str = "/lib/x86_64-linux-gnu";

// ---------------------------------------------------------------------------------------------
// Running the binary
// ---------------------------------------------------------------------------------------------

/// Runs `closure ARGS`; returns (exit code, stdout, stderr). A signal
/// reports 128 + signal.
fn closure(args: &[&str]) -> (i32, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_closure"))
        .args(args)
        .env_remove("LD_LIBRARY_PATH")
        .env_remove("LD_PRELOAD")
        .env_remove("SOURCE_DATE_EPOCH")
        .stdin(Stdio::null())
        .output()
        .expect("cannot spawn closure");
    (
        code_of(out.status),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn code_of(s: std::process::ExitStatus) -> i32 {
    match (s.code(), s.signal()) {
        (Some(c), _) => c,
        (None, Some(sig)) => 128 + sig,
        _ => -1,
    }
}

fn s(p: &Path) -> &str {
    p.to_str().expect("test paths are UTF-8")
}

/// A fresh temporary directory; `out` (absent) is the `--out` target, so
/// any `.closure-tmp` sibling lands inside this directory too.
struct Staged {
    dir: TempDir,
    out: PathBuf,
}

impl Staged {
    fn new() -> Staged {
        let dir = tempfile::Builder::new()
            .prefix("closure-stage-")
            .tempdir()
            .expect("tempdir");
        let out = dir.path().join("out");
        Staged { dir, out }
    }

    /// Host path of in-root `p` in the staged root.
    fn host(&self, p: &str) -> PathBuf {
        self.out.join(p.trim_start_matches('/'))
    }

    /// Entries beside `out` (the temporary directory's children).
    fn siblings(&self) -> Vec<String> {
        let mut v: Vec<String> = fs::read_dir(self.dir.path())
            .expect("read tempdir")
            .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
            .collect();
        v.sort();
        v
    }
}

/// Stages `args` into a fresh directory; asserts exit 0.
fn stage(args: &[&str]) -> Staged {
    let st = Staged::new();
    let mut all: Vec<&str> = args.to_vec();
    all.push("--out");
    all.push(s(&st.out));
    let (code, out, err) = closure(&all);
    assert_eq!(
        code, 0,
        "closure {all:?}: exit code\nstdout:\n{out}\nstderr:\n{err}"
    );
    assert!(st.out.is_dir(), "closure {all:?}: no output directory");
    st
}

/// True (after printing why) when a host program is absent.
fn absent(test: &str, prog: &str) -> bool {
    if Path::new(prog).exists() {
        return false;
    }
    println!("skipping {test}: {prog} is not installed on this host");
    true
}

/// Runs `argv` in the staged root; asserts exit 0 and returns stdout.
fn run_ok(root: &Path, argv: &[&str]) -> String {
    let (status, out, err) = run_in_root(root, argv, &[]);
    assert!(
        status.success(),
        "{argv:?} in {}: {status}\nstdout:\n{out}\nstderr:\n{err}",
        root.display()
    );
    out
}

// ---------------------------------------------------------------------------------------------
// The real loader's answer
// ---------------------------------------------------------------------------------------------

/// `(name, path)` pairs of `ld.so --list` / `LD_TRACE_LOADED_OBJECTS` output,
/// in order, without the vDSO and load addresses.
fn parse_trace(stdout: &str) -> Vec<(String, String)> {
    let mut v = Vec::new();
    for line in stdout.lines() {
        let line = line.trim();
        if line.is_empty() {
            continue;
        }
        if let Some((name, rest)) = line.split_once(" => ") {
            let path = match rest.rfind(" (0x") {
                Some(i) => &rest[..i],
                None => rest,
            };
            v.push((name.trim().to_string(), path.trim().to_string()));
        } else {
            let first = line.split_whitespace().next().unwrap_or_default();
            if first.starts_with('/') {
                v.push((first.to_string(), first.to_string()));
            }
        }
    }
    v
}

/// What the host's loader loads for `prog`.
fn host_ld_list(prog: &str) -> Vec<(String, String)> {
    let out = Command::new(LDSO)
        .arg("--list")
        .arg(prog)
        .env_clear()
        .stdin(Stdio::null())
        .output()
        .expect("run the host loader");
    assert!(
        out.status.success(),
        "{LDSO} --list {prog}: {}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    parse_trace(&String::from_utf8_lossy(&out.stdout))
}

/// The unique canonical host files the loader maps for `prog`: the program,
/// its interpreter and every library `ld.so --list` prints.
fn loaded_files(prog: &str) -> BTreeSet<PathBuf> {
    let mut set = BTreeSet::new();
    let canon = |p: &str| fs::canonicalize(p).unwrap_or_else(|e| panic!("canonicalize {p}: {e}"));
    set.insert(canon(prog));
    set.insert(canon(LDSO));
    for (name, path) in host_ld_list(prog) {
        assert_ne!(path, "not found", "{prog}: {name} not found on the host");
        set.insert(canon(&path));
    }
    set
}

// ---------------------------------------------------------------------------------------------
// Looking at a staged root
// ---------------------------------------------------------------------------------------------

/// One entry of a staged tree.
#[derive(Debug, Clone)]
struct Entry {
    kind: char, // 'f' file, 'l' link, 'd' dir, '?' other
    ino: u64,
    size: u64,
    mode: u32,
    target: Option<PathBuf>,
}

/// Every entry below `root`, by in-root path (`/usr/bin/curl`), links not
/// followed.
fn tree(root: &Path) -> BTreeMap<String, Entry> {
    let mut map = BTreeMap::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(dir) = stack.pop() {
        for e in fs::read_dir(&dir).unwrap_or_else(|e| panic!("read_dir {}: {e}", dir.display())) {
            let e = e.expect("dir entry");
            let p = e.path();
            let m = fs::symlink_metadata(&p).expect("lstat");
            let ft = m.file_type();
            let rel = format!("/{}", p.strip_prefix(root).expect("below root").display());
            let kind = if ft.is_symlink() {
                'l'
            } else if ft.is_dir() {
                stack.push(p.clone());
                'd'
            } else if ft.is_file() {
                'f'
            } else {
                '?'
            };
            let target = if kind == 'l' {
                fs::read_link(&p).ok()
            } else {
                None
            };
            map.insert(
                rel,
                Entry {
                    kind,
                    ino: m.ino(),
                    size: m.len(),
                    mode: m.mode() & 0o7777,
                    target,
                },
            );
        }
    }
    map
}

/// Regular files of a staged tree.
fn regular_files(root: &Path) -> BTreeMap<String, Entry> {
    tree(root)
        .into_iter()
        .filter(|(_, e)| e.kind == 'f')
        .collect()
}

/// Bytes of the regular files of a staged tree, each inode once.
fn unique_bytes(files: &BTreeMap<String, Entry>) -> u64 {
    let mut seen = BTreeSet::new();
    files
        .values()
        .filter(|e| seen.insert(e.ino))
        .map(|e| e.size)
        .sum()
}

/// Follows `p` inside the staged root (absolute link targets re-rooted at
/// `root`, `..` clamped), returning the host path of the final object.
fn resolve_in(root: &Path, p: &str) -> PathBuf {
    let mut todo: Vec<String> = p
        .split('/')
        .filter(|c| !c.is_empty())
        .map(str::to_string)
        .collect();
    todo.reverse();
    let mut cur: Vec<String> = Vec::new();
    let mut hops = 0;
    while let Some(c) = todo.pop() {
        match c.as_str() {
            "." => continue,
            ".." => {
                cur.pop();
                continue;
            }
            _ => {}
        }
        cur.push(c);
        let host = cur.iter().fold(root.to_path_buf(), |acc, c| acc.join(c));
        if let Ok(t) = fs::read_link(&host) {
            hops += 1;
            assert!(
                hops < 40,
                "too many links resolving {p} in {}",
                root.display()
            );
            cur.pop();
            let t = t.to_string_lossy().into_owned();
            if t.starts_with('/') {
                cur.clear();
            }
            let mut parts: Vec<String> = t
                .split('/')
                .filter(|c| !c.is_empty())
                .map(str::to_string)
                .collect();
            parts.reverse();
            todo.extend(parts);
        }
    }
    cur.iter().fold(root.to_path_buf(), |acc, c| acc.join(c))
}

/// `objects[].path` of a JSON report.
fn json_paths(report: &Value) -> BTreeSet<String> {
    report["objects"]
        .as_array()
        .expect("objects array")
        .iter()
        .map(|o| o["path"].as_str().expect("path").to_string())
        .collect()
}

fn json_report(args: &[&str]) -> (i32, Value, String) {
    let mut all = args.to_vec();
    all.extend(["--format", "json"]);
    let (code, out, err) = closure(&all);
    let v: Value = serde_json::from_str(&out)
        .unwrap_or_else(|e| panic!("closure {all:?}: not JSON ({e}):\n{out}\nstderr:\n{err}"));
    (code, v, err)
}

// ---------------------------------------------------------------------------------------------
// gcc-built fixtures and small sysroots holding copies of the host's glibc
// ---------------------------------------------------------------------------------------------

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

/// True (after printing why) when gcc or the host glibc files are missing.
fn no_toolchain(test: &str) -> bool {
    if !tool_runs("gcc") {
        println!("skipping {test}: gcc is not installed");
        return true;
    }
    if !Path::new(LDSO).exists() || !Path::new(TRIPLET_DIR).join("libc.so.6").exists() {
        println!("skipping {test}: no x86_64 Debian-style glibc on this host");
        return true;
    }
    false
}

/// Compiles C `src` into `out` with `args` (libraries, -shared …).
fn gcc(out: &Path, src: &str, args: &[&str]) {
    let dir = out.parent().expect("parent");
    fs::create_dir_all(dir).expect("mkdir");
    let c = dir.join(format!(
        "{}.c",
        out.file_name().expect("name").to_string_lossy()
    ));
    fs::write(&c, src).expect("write C source");
    let res = Command::new("gcc")
        .arg("-o")
        .arg(out)
        .arg(&c)
        .args(args)
        .output()
        .expect("spawn gcc");
    assert!(
        res.status.success(),
        "gcc {} {args:?}: {}",
        out.display(),
        String::from_utf8_lossy(&res.stderr)
    );
    let _ = fs::remove_file(&c);
}

/// A shared library `dir/libNAME.so` with SONAME `libNAME.so.1` whose
/// function `NAME_msg` returns `msg`.
fn gcc_lib(dir: &Path, name: &str, msg: &str, args: &[&str]) -> PathBuf {
    let out = dir.join(format!("lib{name}.so"));
    let src = format!("const char *{name}_msg(void) {{ return \"{msg}\"; }}\n");
    let soname = format!("-Wl,-soname,lib{name}.so.1");
    let mut all = vec!["-shared", "-fPIC", soname.as_str()];
    all.extend_from_slice(args);
    gcc(&out, &src, &all);
    out
}

/// A program printing `NAME_msg()` of each library, linked with them.
fn gcc_prog(out: &Path, libs: &[&str], build: &Path, args: &[&str]) {
    let mut src = String::from("#include <stdio.h>\n");
    for l in libs {
        src.push_str(&format!("const char *{l}_msg(void);\n"));
    }
    src.push_str("int main(void) {\n");
    for l in libs {
        src.push_str(&format!("    puts({l}_msg());\n"));
    }
    src.push_str("    return 0;\n}\n");
    let ldir = format!("-L{}", s(build));
    let mut all: Vec<String> = vec!["-Wl,--no-as-needed".into(), ldir];
    all.extend(libs.iter().map(|l| format!("-l{l}")));
    all.extend(args.iter().map(|a| a.to_string()));
    let refs: Vec<&str> = all.iter().map(String::as_str).collect();
    gcc(out, &src, &refs);
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

/// The host's libc.so.6 and loader (canonical regular files).
fn host_glibc() -> (PathBuf, PathBuf) {
    let libc = fs::canonicalize(Path::new(TRIPLET_DIR).join("libc.so.6")).expect("host libc");
    let ldso = fs::canonicalize(LDSO).expect("host ld.so");
    (libc, ldso)
}

/// A usrmerged Debian-style root at `dir`: `/lib -> usr/lib`, `/lib64 ->
/// usr/lib64`, `/bin -> usr/bin`, `/sbin -> usr/sbin`, glibc in
/// `/usr/lib/x86_64-linux-gnu`, `/usr/lib64/ld-linux-x86-64.so.2` an
/// absolute link into it (as Debian ships it).
fn usrmerged_root(dir: &Path) {
    let (libc, ldso) = host_glibc();
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
}

/// A non-merged root at `dir`: real `/lib/x86_64-linux-gnu`, `/lib64` and
/// `/bin` directories, glibc copied (no links anywhere).
fn nonmerged_root(dir: &Path) {
    let (libc, ldso) = host_glibc();
    copy_file(&libc, &dir.join("lib/x86_64-linux-gnu/libc.so.6"));
    copy_file(
        &ldso,
        &dir.join("lib/x86_64-linux-gnu/ld-linux-x86-64.so.2"),
    );
    copy_file(&ldso, &dir.join("lib64/ld-linux-x86-64.so.2"));
    fs::create_dir_all(dir.join("bin")).expect("mkdir bin");
}

fn tempdir(prefix: &str) -> TempDir {
    tempfile::Builder::new()
        .prefix(prefix)
        .tempdir()
        .expect("tempdir")
}

fn chmod(p: &Path, mode: u32) {
    fs::set_permissions(p, fs::Permissions::from_mode(mode))
        .unwrap_or_else(|e| panic!("chmod {}: {e}", p.display()));
}

const HELLO_C: &str = "#include <stdio.h>\nint main(void) { puts(\"hello\"); return 0; }\n";

// ---------------------------------------------------------------------------------------------
// 1–7: this machine's programs run in their staged roots
// ---------------------------------------------------------------------------------------------

/// Stages `prog` (plus `extra` args) and runs `argv` in the staged root.
fn stage_and_run(
    test: &str,
    prog: &str,
    extra: &[&str],
    argv: &[&str],
) -> Option<(Staged, String)> {
    if absent(test, prog) {
        return None;
    }
    let mut args = vec!["--root", prog];
    args.extend_from_slice(extra);
    let st = stage(&args);
    assert!(
        st.host(prog).symlink_metadata().is_ok(),
        "{prog} itself is not staged"
    );
    if skip_unless_root(test) {
        return None;
    }
    let out = run_ok(&st.out, argv);
    Some((st, out))
}

#[test]
fn stage_curl_runs() {
    if let Some((_, out)) = stage_and_run(
        "stage_curl_runs",
        "/usr/bin/curl",
        &[],
        &["/usr/bin/curl", "--version"],
    ) {
        assert!(out.starts_with("curl "), "curl --version printed:\n{out}");
    }
}

#[test]
fn stage_git_runs() {
    if let Some((_, out)) = stage_and_run(
        "stage_git_runs",
        "/usr/bin/git",
        &[],
        &["/usr/bin/git", "--version"],
    ) {
        assert!(out.contains("git version"), "git --version printed:\n{out}");
    }
}

#[test]
fn stage_python3_ssl_runs() {
    let test = "stage_python3_ssl_runs";
    let prog = "/usr/bin/python3";
    if absent(test, prog) {
        return;
    }
    // libssl is not in the interpreter's own closure: it comes in through
    // lib-dynload/_ssl.cpython-*.so, an ELF file among the included ones.
    let (code, list, err) = closure(&["--root", prog, "--format", "list"]);
    assert_eq!(code, 0, "closure --root {prog}: {err}");
    let own_ssl = list.lines().any(|l| l.ends_with("/libssl.so.3"));

    let mut args = vec!["--root", prog, "--include", "/usr/lib/python3.*"];
    if Path::new("/usr/lib/python3").is_dir() {
        args.extend(["--include", "/usr/lib/python3"]);
    }
    let st = stage(&args);
    let files = tree(&st.out);
    let ssl: Vec<&String> = files
        .keys()
        .filter(|k| k.ends_with("/libssl.so.3"))
        .collect();
    assert!(!ssl.is_empty(), "libssl.so.3 not staged");
    assert!(
        files
            .keys()
            .any(|k| k.contains("/lib-dynload/_ssl.cpython-")),
        "_ssl extension module not staged"
    );
    if own_ssl {
        println!("note: {prog} itself needs libssl.so.3 on this host");
    }
    if skip_unless_root(test) {
        return;
    }
    let out = run_ok(
        &st.out,
        &[prog, "-c", "import ssl; print(ssl.OPENSSL_VERSION)"],
    );
    assert!(out.contains("OpenSSL"), "python3 printed:\n{out}");
}

#[test]
fn stage_bash_runs() {
    if let Some((_, out)) = stage_and_run(
        "stage_bash_runs",
        "/usr/bin/bash",
        &[],
        &["/usr/bin/bash", "-c", "echo hi"],
    ) {
        assert_eq!(out, "hi\n");
    }
}

#[test]
fn stage_awk_through_alternatives() {
    let test = "stage_awk_through_alternatives";
    let (awk, alt) = ("/usr/bin/awk", "/etc/alternatives/awk");
    if absent(test, awk) {
        return;
    }
    let (Ok(t1), Ok(t2)) = (fs::read_link(awk), fs::read_link(alt)) else {
        println!("skipping {test}: {awk} is not a link through {alt} on this host");
        return;
    };
    if t1 != Path::new(alt) {
        println!("skipping {test}: {awk} -> {} (not {alt})", t1.display());
        return;
    }
    let st = stage(&["--root", awk]);
    let t = tree(&st.out);
    for (link, target) in [(awk, &t1), (alt, &t2)] {
        let e = t
            .get(link)
            .unwrap_or_else(|| panic!("{link} not staged; staged: {:?}", t.keys()));
        assert_eq!(e.kind, 'l', "{link} is not staged as a symlink");
        assert_eq!(e.target.as_ref(), Some(target), "{link}: link target");
    }
    let real = fs::canonicalize(awk).expect("canonical awk");
    let real_s = real.to_string_lossy().into_owned();
    assert_eq!(
        t.get(&real_s).map(|e| e.kind),
        Some('f'),
        "{real_s} (the real awk) not staged as a file"
    );
    if skip_unless_root(test) {
        return;
    }
    let out = run_ok(&st.out, &[awk, "BEGIN{print 1+1}"]);
    assert_eq!(out, "2\n");
}

#[test]
fn stage_sqlite3_runs() {
    if let Some((_, out)) = stage_and_run(
        "stage_sqlite3_runs",
        "/usr/bin/sqlite3",
        &[],
        &["/usr/bin/sqlite3", ":memory:", "select 40+2"],
    ) {
        assert_eq!(out.trim(), "42");
    }
}

#[test]
fn stage_two_roots_both_run() {
    let test = "stage_two_roots_both_run";
    let (curl, sqlite) = ("/usr/bin/curl", "/usr/bin/sqlite3");
    if absent(test, curl) || absent(test, sqlite) {
        return;
    }
    let st = stage(&["--root", curl, "--root", sqlite, "--startup-only"]);
    // Exactly the union of the two closures (start-up loads; run-time
    // additions are tested in runtime.rs).
    let mut want = loaded_files(curl);
    want.extend(loaded_files(sqlite));
    let got: BTreeSet<PathBuf> = regular_files(&st.out).keys().map(PathBuf::from).collect();
    assert_eq!(got, want, "staged files vs union of what the loader loads");
    if skip_unless_root(test) {
        return;
    }
    let out = run_ok(&st.out, &[curl, "--version"]);
    assert!(out.starts_with("curl "), "{out}");
    let out = run_ok(&st.out, &[sqlite, ":memory:", "select 40+2"]);
    assert_eq!(out.trim(), "42");
}

// ---------------------------------------------------------------------------------------------
// 8–9: minimal and exact
// ---------------------------------------------------------------------------------------------

#[test]
fn stage_is_minimal() {
    let test = "stage_is_minimal";
    for prog in ["/usr/bin/curl", "/usr/bin/git"] {
        if absent(test, prog) {
            continue;
        }
        let want = loaded_files(prog);
        let want_bytes: u64 = want
            .iter()
            .map(|p| fs::metadata(p).expect("stat").len())
            .sum();
        // The loader's start-up set is the reference; run-time loads
        // (libgcc_s for libldap's pthread_exit) are tested in runtime.rs.
        let st = stage(&["--root", prog, "--startup-only"]);
        let files = regular_files(&st.out);
        let extra: Vec<&String> = files
            .keys()
            .filter(|k| !want.contains(Path::new(k.as_str())))
            .collect();
        assert!(
            extra.is_empty(),
            "{prog}: staged files the loader never loads: {extra:?}"
        );
        let lacking: Vec<&PathBuf> = want
            .iter()
            .filter(|p| !files.contains_key(p.to_str().expect("utf8")))
            .collect();
        assert!(
            lacking.is_empty(),
            "{prog}: loaded files not staged: {lacking:?}"
        );
        let got = unique_bytes(&files);
        let diff = got.abs_diff(want_bytes);
        assert!(
            diff * 50 <= want_bytes,
            "{prog}: staged {got} bytes, the loader loads {want_bytes} bytes (>2% apart)"
        );
    }
}

#[test]
fn stage_root_is_exact() {
    let test = "stage_root_is_exact";
    let can_run = !skip_unless_root(test);
    for prog in [
        "/usr/bin/curl",
        "/usr/bin/git",
        "/usr/bin/sqlite3",
        "/usr/bin/bash",
    ] {
        if absent(test, prog) {
            continue;
        }
        let st = stage(&["--root", prog]);
        // closure itself, pointed at the staged root, sees the same closure.
        let (hcode, host, herr) = json_report(&["--root", prog]);
        assert_eq!(hcode, 0, "{prog} on the host: {herr}");
        let (scode, staged, serr) = json_report(&["--sysroot", s(&st.out), "--root", prog]);
        assert_eq!(
            scode, 0,
            "{prog} in the staged root: exit code; stderr:\n{serr}"
        );
        assert_eq!(serr, "", "{prog} in the staged root: stderr of a clean run");
        assert_eq!(
            json_paths(&staged),
            json_paths(&host),
            "{prog}: object paths in the staged root vs on the host"
        );
        if !can_run {
            continue;
        }
        // The real loader inside the staged root opens the same paths.
        let (status, out, err) = run_in_root(&st.out, &[prog], &[("LD_TRACE_LOADED_OBJECTS", "1")]);
        assert!(
            status.success(),
            "{prog}: loader trace in the root: {status}\n{out}\n{err}"
        );
        let inside = parse_trace(&out);
        let outside = host_ld_list(prog);
        assert!(!inside.is_empty(), "{prog}: no trace output:\n{out}\n{err}");
        assert_eq!(
            inside, outside,
            "{prog}: loader in the staged root vs on the host"
        );
    }
}

// ---------------------------------------------------------------------------------------------
// 10: layout
// ---------------------------------------------------------------------------------------------

#[test]
fn stage_keeps_usrmerge_links() {
    let test = "stage_keeps_usrmerge_links";
    let prog = "/usr/bin/curl";
    if absent(test, prog) {
        return;
    }
    if !fs::symlink_metadata("/lib")
        .map(|m| m.file_type().is_symlink())
        .unwrap_or(false)
    {
        println!("skipping {test}: the host / is not usrmerged");
        return;
    }
    let st = stage(&["--root", prog]);
    let t = tree(&st.out);
    for name in ["lib", "lib64", "bin"] {
        let host = fs::read_link(format!("/{name}"));
        let Ok(host) = host else { continue };
        let e = t
            .get(&format!("/{name}"))
            .unwrap_or_else(|| panic!("/{name} not staged (host: /{name} -> {})", host.display()));
        assert_eq!(
            e.kind, 'l',
            "/{name} staged as a real directory, not a symlink"
        );
        assert_eq!(e.target.as_ref(), Some(&host), "/{name}: link target");
    }
    // No top-level entry is a real directory where the host has a link.
    for (p, e) in &t {
        if p.matches('/').count() != 1 {
            continue;
        }
        if fs::symlink_metadata(p)
            .map(|m| m.file_type().is_symlink())
            .unwrap_or(false)
        {
            assert_eq!(
                e.kind, 'l',
                "{p} is a link on the host but staged as '{}'",
                e.kind
            );
        }
    }
}

#[test]
fn stage_nonmerged_sysroot_stays_nonmerged() {
    let test = "stage_nonmerged_sysroot_stays_nonmerged";
    if no_toolchain(test) {
        return;
    }
    let sys = tempdir("closure-nonmerged-");
    nonmerged_root(sys.path());
    gcc(&sys.path().join("bin/hello"), HELLO_C, &[]);
    let st = stage(&["--sysroot", s(sys.path()), "--root", "/bin/hello"]);
    let t = tree(&st.out);
    for d in ["/lib", "/lib64", "/bin", "/lib/x86_64-linux-gnu"] {
        assert_eq!(
            t.get(d).map(|e| e.kind),
            Some('d'),
            "{d} must be a real directory in a non-merged root; staged: {t:?}"
        );
    }
    assert!(
        !t.contains_key("/usr"),
        "a non-merged root gained /usr: {t:?}"
    );
    assert!(t.values().all(|e| e.kind != 'l'), "links appeared: {t:?}");
    assert_eq!(
        t.get("/lib64/ld-linux-x86-64.so.2").map(|e| e.kind),
        Some('f')
    );
    assert_eq!(
        t.get("/lib/x86_64-linux-gnu/libc.so.6").map(|e| e.kind),
        Some('f')
    );
    if skip_unless_root(test) {
        return;
    }
    assert_eq!(run_ok(&st.out, &["/bin/hello"]), "hello\n");
}

#[test]
fn stage_composes_onto_distroless_base() {
    let test = "stage_composes_onto_distroless_base";
    if no_toolchain(test) {
        return;
    }
    // The build root: usrmerged glibc plus an app whose only extra library
    // is in /app/lib.
    let sys = tempdir("closure-compose-sys-");
    usrmerged_root(sys.path());
    let build = tempdir("closure-compose-build-");
    let lib = gcc_lib(build.path(), "greet", "hello from libgreet", &[]);
    copy_file(&lib, &sys.path().join("app/lib/libgreet.so.1"));
    gcc_prog(
        &sys.path().join("app/bin/greet"),
        &["greet"],
        build.path(),
        &["-Wl,--enable-new-dtags,-rpath,$ORIGIN/../lib"],
    );
    let st = stage(&["--sysroot", s(sys.path()), "--root", "/app/bin/greet"]);
    let t = tree(&st.out);
    assert_eq!(
        t.get("/lib").and_then(|e| e.target.clone()),
        Some(PathBuf::from("usr/lib"))
    );
    assert_eq!(t.get("/app/lib/libgreet.so.1").map(|e| e.kind), Some('f'));

    // A separate distroless-like base: the same usrmerged layout and glibc.
    let base = tempdir("closure-compose-base-");
    usrmerged_root(base.path());
    fs::create_dir_all(base.path().join("etc")).expect("mkdir etc");
    fs::write(
        base.path().join("etc/passwd"),
        "root:x:0:0:root:/root:/sbin/nologin\n",
    )
    .expect("passwd");
    let mut src = st.out.clone().into_os_string();
    src.push("/.");
    let cp = Command::new("cp")
        .args(["-a", "--no-dereference"])
        .arg(&src)
        .arg(base.path())
        .output()
        .expect("spawn cp");
    assert!(
        cp.status.success(),
        "cp -a --no-dereference staged/. base/: {}",
        String::from_utf8_lossy(&cp.stderr)
    );
    let bt = tree(base.path());
    for (l, target) in [
        ("/lib", "usr/lib"),
        ("/lib64", "usr/lib64"),
        ("/bin", "usr/bin"),
    ] {
        let e = bt
            .get(l)
            .unwrap_or_else(|| panic!("{l} gone from the base"));
        assert_eq!(e.kind, 'l', "{l} in the composed tree is no longer a link");
        assert_eq!(e.target.as_deref(), Some(Path::new(target)));
    }
    assert_eq!(bt.get("/etc/passwd").map(|e| e.kind), Some('f'));
    if skip_unless_root(test) {
        return;
    }
    assert_eq!(
        run_ok(&st.out, &["/app/bin/greet"]),
        "hello from libgreet\n"
    );
    assert_eq!(
        run_ok(base.path(), &["/app/bin/greet"]),
        "hello from libgreet\n"
    );
}

// ---------------------------------------------------------------------------------------------
// 11: faults
// ---------------------------------------------------------------------------------------------

/// A tiny host-independent root for fault tests: usrmerged glibc and
/// /app/bin/hello.
fn hello_root(test: &str) -> Option<TempDir> {
    if no_toolchain(test) {
        return None;
    }
    let sys = tempdir("closure-hello-");
    usrmerged_root(sys.path());
    gcc(&sys.path().join("app/bin/hello"), HELLO_C, &[]);
    Some(sys)
}

#[test]
fn stage_out_is_a_regular_file() {
    let test = "stage_out_is_a_regular_file";
    let Some(sys) = hello_root(test) else { return };
    let st = Staged::new();
    fs::write(&st.out, "precious\n").expect("write");
    let (code, out, err) = closure(&[
        "--sysroot",
        s(sys.path()),
        "--root",
        "/app/bin/hello",
        "--out",
        s(&st.out),
    ]);
    assert_eq!(code, 2, "exit code; stdout {out}; stderr {err}");
    assert!(
        err.contains(s(&st.out)),
        "message does not name the output: {err}"
    );
    assert!(err.contains("not a directory"), "message: {err}");
    assert_eq!(fs::read_to_string(&st.out).expect("read"), "precious\n");
    assert_eq!(
        st.siblings(),
        vec!["out".to_string()],
        "something written beside it"
    );
}

#[test]
fn stage_out_not_empty_without_force() {
    let test = "stage_out_not_empty_without_force";
    let Some(sys) = hello_root(test) else { return };
    let st = Staged::new();
    fs::create_dir_all(st.out.join("keep")).expect("mkdir");
    fs::write(st.out.join("keep/file"), "x").expect("write");
    let before = tree(&st.out);
    let (code, _, err) = closure(&[
        "--sysroot",
        s(sys.path()),
        "--root",
        "/app/bin/hello",
        "--out",
        s(&st.out),
    ]);
    assert_eq!(code, 2, "exit code; stderr {err}");
    assert!(
        err.contains("--force"),
        "message should point at --force: {err}"
    );
    let after = tree(&st.out);
    assert_eq!(
        before.keys().collect::<Vec<_>>(),
        after.keys().collect::<Vec<_>>(),
        "the directory was changed"
    );
    assert_eq!(
        fs::read_to_string(st.out.join("keep/file")).expect("read"),
        "x"
    );
    assert_eq!(st.siblings(), vec!["out".to_string()]);
}

#[test]
fn stage_force_never_writes_through_a_symlink() {
    let test = "stage_force_never_writes_through_a_symlink";
    let Some(sys) = hello_root(test) else { return };
    // `usr` (written after /app, /bin, /lib…) and `app` (the first path
    // written) in turn are links to a marker directory outside the output.
    for name in ["usr", "app"] {
        let elsewhere = tempdir("closure-elsewhere-");
        let marker = elsewhere.path().join("marker");
        fs::create_dir(&marker).expect("mkdir marker");
        let st = Staged::new();
        fs::create_dir(&st.out).expect("mkdir out");
        symlink(s(&marker), &st.out.join(name));
        let (code, _, err) = closure(&[
            "--sysroot",
            s(sys.path()),
            "--root",
            "/app/bin/hello",
            "--out",
            s(&st.out),
            "--force",
        ]);
        assert_eq!(code, 2, "{name} -> marker: exit code; stderr {err}");
        assert!(
            err.contains("symbolic link"),
            "{name} -> marker: message: {err}"
        );
        let inside: Vec<_> = fs::read_dir(&marker).expect("read marker").collect();
        assert!(
            inside.is_empty(),
            "written through {name} -> {}",
            marker.display()
        );
        assert_eq!(
            fs::read_link(st.out.join(name)).expect("link"),
            marker,
            "{name} replaced"
        );
    }
}

/// A root readable by everyone whose /app/bin/p needs libsecret.so.1 in
/// /usr/lib/x86_64-linux-gnu, plus /data (a.txt, secret), and an output
/// parent writable by nobody.
fn unreadable_fixture(test: &str) -> Option<(TempDir, Staged)> {
    if skip_unless_root(test) || no_toolchain(test) {
        return None;
    }
    if !tool_runs("setpriv") {
        println!("skipping {test}: setpriv is not installed");
        return None;
    }
    let sys = tempdir("closure-unreadable-");
    usrmerged_root(sys.path());
    let build = tempdir("closure-unreadable-build-");
    let lib = gcc_lib(build.path(), "secret", "s", &[]);
    copy_file(
        &lib,
        &sys.path().join("usr/lib/x86_64-linux-gnu/libsecret.so.1"),
    );
    gcc_prog(
        &sys.path().join("app/bin/p"),
        &["secret"],
        build.path(),
        &[],
    );
    fs::create_dir_all(sys.path().join("data")).expect("mkdir");
    fs::write(sys.path().join("data/a.txt"), "a").expect("write");
    fs::write(sys.path().join("data/secret"), "s").expect("write");
    // Everything readable by nobody, then the one file that is not.
    let mut stack = vec![sys.path().to_path_buf()];
    while let Some(d) = stack.pop() {
        chmod(&d, 0o755);
        for e in fs::read_dir(&d).expect("read_dir") {
            let p = e.expect("entry").path();
            let m = fs::symlink_metadata(&p).expect("lstat");
            if m.is_dir() {
                stack.push(p);
            } else if m.is_file() {
                chmod(&p, 0o755);
            }
        }
    }
    let st = Staged::new();
    chmod(st.dir.path(), 0o777);
    Some((sys, st))
}

fn closure_as_nobody(args: &[&str]) -> (i32, String, String) {
    let out = Command::new("setpriv")
        .args(["--reuid=65534", "--regid=65534", "--clear-groups", "--"])
        .arg(env!("CARGO_BIN_EXE_closure"))
        .args(args)
        .env_clear()
        .env("PATH", "/usr/bin:/bin")
        .stdin(Stdio::null())
        .output()
        .expect("spawn setpriv");
    (
        code_of(out.status),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn assert_nothing_left(st: &Staged, ctx: &str) {
    assert!(!st.out.exists(), "{ctx}: --out was created");
    let left: Vec<String> = st
        .siblings()
        .into_iter()
        .filter(|n| n.contains("closure-tmp") || n.contains("out"))
        .collect();
    assert!(left.is_empty(), "{ctx}: left beside --out: {left:?}");
}

#[test]
fn stage_unreadable_library_leaves_nothing() {
    let test = "stage_unreadable_library_leaves_nothing";
    let Some((sys, st)) = unreadable_fixture(test) else {
        return;
    };
    chmod(
        &sys.path().join("usr/lib/x86_64-linux-gnu/libsecret.so.1"),
        0o000,
    );
    let (code, _, err) = closure_as_nobody(&[
        "--sysroot",
        s(sys.path()),
        "--root",
        "/app/bin/p",
        "--out",
        s(&st.out),
    ]);
    assert!(code != 0 && code < 100, "exit code {code}; stderr {err}");
    assert!(
        err.contains("libsecret.so.1"),
        "message does not name the library: {err}"
    );
    assert_nothing_left(&st, "unreadable library");
}

#[test]
fn stage_unreadable_library_says_why() {
    let test = "stage_unreadable_library_says_why";
    let Some((sys, st)) = unreadable_fixture(test) else {
        return;
    };
    chmod(
        &sys.path().join("usr/lib/x86_64-linux-gnu/libsecret.so.1"),
        0o000,
    );
    let (code, _, err) = closure_as_nobody(&[
        "--sysroot",
        s(sys.path()),
        "--root",
        "/app/bin/p",
        "--out",
        s(&st.out),
    ]);
    assert!(code != 0 && code < 100, "exit code {code}; stderr {err}");
    // The file is there: "not found" alone sends the user looking for a
    // library that exists. The candidate must be reported as unreadable.
    let lower = err.to_lowercase();
    assert!(
        lower.contains("permission denied")
            || lower.contains("unreadable")
            || lower.contains("cannot read"),
        "the message does not say the library exists but cannot be read:\n{err}"
    );
}

#[test]
fn stage_unreadable_included_file_leaves_nothing() {
    let test = "stage_unreadable_included_file_leaves_nothing";
    let Some((sys, st)) = unreadable_fixture(test) else {
        return;
    };
    chmod(&sys.path().join("data/secret"), 0o000);
    let (code, _, err) = closure_as_nobody(&[
        "--sysroot",
        s(sys.path()),
        "--root",
        "/app/bin/p",
        "--include",
        "/data",
        "--out",
        s(&st.out),
    ]);
    assert_eq!(code, 2, "exit code; stderr {err}");
    assert!(
        err.contains("/data/secret"),
        "message does not name the file: {err}"
    );
    assert!(
        err.to_lowercase().contains("permission denied"),
        "message: {err}"
    );
    assert_nothing_left(&st, "unreadable included file");
}

#[test]
fn stage_full_disk_leaves_nothing() {
    let test = "stage_full_disk_leaves_nothing";
    let prog = "/usr/bin/curl";
    if absent(test, prog) || skip_unless_root(test) {
        return;
    }
    let mnt = tempdir("closure-fulldisk-");
    let script = r#"set -u
mount -t tmpfs -o size=1m tmpfs "$1" || exit 90
"$2" --root "$3" --out "$1/out"
echo "closure-exit=$?"
echo "left:"
ls -A "$1"
"#;
    let out = Command::new("unshare")
        .args([
            "--mount",
            "--propagation",
            "private",
            "--",
            "/bin/sh",
            "-c",
            script,
            "sh",
        ])
        .arg(mnt.path())
        .arg(env!("CARGO_BIN_EXE_closure"))
        .arg(prog)
        .env_clear()
        .env("PATH", "/usr/sbin:/usr/bin:/sbin:/bin")
        .stdin(Stdio::null())
        .output()
        .expect("spawn unshare");
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(
        out.status.success(),
        "namespace set-up failed: {}\n{stdout}\n{stderr}",
        out.status
    );
    assert!(
        mounts_below(mnt.path()).is_empty(),
        "the tmpfs leaked to the host"
    );
    let code: i32 = stdout
        .lines()
        .find_map(|l| l.strip_prefix("closure-exit="))
        .and_then(|c| c.parse().ok())
        .unwrap_or_else(|| panic!("no exit code in:\n{stdout}"));
    assert!(code != 0 && code < 100, "exit code {code}; stderr {stderr}");
    assert!(
        stderr.contains("No space"),
        "message does not say the disk is full: {stderr}"
    );
    assert!(
        stderr.contains(s(mnt.path())),
        "message does not name the path: {stderr}"
    );
    let left: Vec<&str> = stdout
        .split_once("left:\n")
        .map(|(_, rest)| rest.lines().filter(|l| !l.is_empty()).collect())
        .unwrap_or_default();
    assert!(left.is_empty(), "left in the full file system: {left:?}");
}

/// A root whose /app/bin/needs-gone needs libgone.so.1, which is absent.
fn missing_root(test: &str) -> Option<TempDir> {
    if no_toolchain(test) {
        return None;
    }
    let sys = tempdir("closure-missing-");
    usrmerged_root(sys.path());
    let build = tempdir("closure-missing-build-");
    gcc_lib(build.path(), "gone", "g", &[]);
    gcc_prog(
        &sys.path().join("app/bin/needs-gone"),
        &["gone"],
        build.path(),
        &[],
    );
    Some(sys)
}

#[test]
fn stage_missing_library_writes_nothing() {
    let test = "stage_missing_library_writes_nothing";
    let Some(sys) = missing_root(test) else {
        return;
    };
    let st = Staged::new();
    let (code, _, err) = closure(&[
        "--sysroot",
        s(sys.path()),
        "--root",
        "/app/bin/needs-gone",
        "--out",
        s(&st.out),
    ]);
    assert_eq!(code, 1, "exit code; stderr {err}");
    assert!(err.contains("libgone.so.1"), "stderr: {err}");
    assert_nothing_left(&st, "missing library");
}

#[test]
fn stage_missing_library_allowed_writes_root() {
    let test = "stage_missing_library_allowed_writes_root";
    let Some(sys) = missing_root(test) else {
        return;
    };
    let st = Staged::new();
    let (code, _, err) = closure(&[
        "--sysroot",
        s(sys.path()),
        "--root",
        "/app/bin/needs-gone",
        "--allow-missing",
        "--out",
        s(&st.out),
    ]);
    assert_eq!(code, 1, "exit code; stderr {err}");
    assert!(
        err.contains("libgone.so.1"),
        "missing library not reported: {err}"
    );
    let t = tree(&st.out);
    for f in ["/app/bin/needs-gone", "/usr/lib/x86_64-linux-gnu/libc.so.6"] {
        assert_eq!(t.get(f).map(|e| e.kind), Some('f'), "{f} not staged: {t:?}");
    }
    assert!(!t.keys().any(|k| k.contains("libgone")));
}

// ---------------------------------------------------------------------------------------------
// 12: --base-files
// ---------------------------------------------------------------------------------------------

const GETPW_C: &str = r#"#include <pwd.h>
#include <stdio.h>
int main(void) {
    struct passwd *p = getpwuid(65532);
    if (p == NULL) { puts("(none)"); return 1; }
    puts(p->pw_name);
    return 0;
}
"#;

/// `name -> (id, gid-or-members)` of a passwd/group file.
fn id_table(text: &str) -> BTreeMap<String, String> {
    text.lines()
        .filter_map(|l| {
            let f: Vec<&str> = l.split(':').collect();
            (f.len() >= 3).then(|| (f[0].to_string(), f[2].to_string()))
        })
        .collect()
}

#[test]
fn stage_base_files() {
    let test = "stage_base_files";
    let prog = "/usr/bin/curl";
    if absent(test, prog) {
        return;
    }
    let build = tempdir("closure-getpw-");
    let getpw = build.path().join("getpw");
    let have_gcc = !no_toolchain(test);
    let mut args = vec!["--root", prog, "--base-files"];
    if have_gcc {
        gcc(&getpw, GETPW_C, &[]);
        args.extend(["--root", s(&getpw)]);
    }
    let st = stage(&args);
    let t = tree(&st.out);
    for (file, want) in [
        (
            "/etc/passwd",
            [("root", "0"), ("nobody", "65534"), ("nonroot", "65532")],
        ),
        (
            "/etc/group",
            [("root", "0"), ("nobody", "65534"), ("nonroot", "65532")],
        ),
    ] {
        assert_eq!(t.get(file).map(|e| e.kind), Some('f'), "{file} not staged");
        let ids = id_table(&fs::read_to_string(st.host(file)).expect("read"));
        for (name, id) in want {
            assert_eq!(
                ids.get(name).map(String::as_str),
                Some(id),
                "{file}: {name}"
            );
        }
    }
    let passwd = fs::read_to_string(st.host("/etc/passwd")).expect("read");
    for (name, gid) in [("root", "0"), ("nobody", "65534"), ("nonroot", "65532")] {
        assert!(
            passwd.lines().any(|l| {
                let f: Vec<&str> = l.split(':').collect();
                f.len() == 7 && f[0] == name && f[3] == gid
            }),
            "/etc/passwd: {name} with gid {gid} and 7 fields:\n{passwd}"
        );
    }
    let tmp = t.get("/tmp").expect("/tmp not staged");
    assert_eq!(tmp.kind, 'd');
    assert_eq!(tmp.mode, 0o1777, "/tmp mode {:o}", tmp.mode);
    for extra in ["/etc/ssl/certs/ca-certificates.crt", "/etc/nsswitch.conf"] {
        let Ok(host) = fs::read(extra) else {
            println!("note: {extra} absent on the host");
            continue;
        };
        let staged = resolve_in(&st.out, extra);
        let bytes = fs::read(&staged)
            .unwrap_or_else(|e| panic!("{extra} not staged ({}: {e})", staged.display()));
        assert!(
            bytes == host,
            "{extra}: staged bytes differ from the host's"
        );
    }
    if !have_gcc || skip_unless_root(test) {
        return;
    }
    assert_eq!(run_ok(&st.out, &[s(&getpw)]), "nonroot\n");
}

// ---------------------------------------------------------------------------------------------
// 13: hard links
// ---------------------------------------------------------------------------------------------

/// A usrmerged root with libhl.so.1 in /usr/lib/x86_64-linux-gnu and a
/// hard link of it at /opt/hl/libhl.so.1. Returns (root, build dir).
fn hardlink_root(test: &str) -> Option<(TempDir, TempDir)> {
    if no_toolchain(test) {
        return None;
    }
    let sys = tempdir("closure-hardlink-");
    usrmerged_root(sys.path());
    let build = tempdir("closure-hardlink-build-");
    let lib = gcc_lib(build.path(), "hl", "hard", &[]);
    let main = sys.path().join("usr/lib/x86_64-linux-gnu/libhl.so.1");
    copy_file(&lib, &main);
    fs::create_dir_all(sys.path().join("opt/hl")).expect("mkdir");
    fs::hard_link(&main, sys.path().join("opt/hl/libhl.so.1")).expect("hard link");
    Some((sys, build))
}

fn assert_one_inode(t: &BTreeMap<String, Entry>, a: &str, b: &str) {
    let ea = t
        .get(a)
        .unwrap_or_else(|| panic!("{a} not staged: {:?}", t.keys()));
    let eb = t
        .get(b)
        .unwrap_or_else(|| panic!("{b} not staged: {:?}", t.keys()));
    assert_eq!((ea.kind, eb.kind), ('f', 'f'));
    assert_eq!(ea.ino, eb.ino, "{a} and {b} are staged as two files");
}

#[test]
fn stage_hard_linked_roots_one_inode() {
    let test = "stage_hard_linked_roots_one_inode";
    let Some((sys, _build)) = hardlink_root(test) else {
        return;
    };
    // Both spellings of the first name: the canonical one, and the one
    // through /lib -> usr/lib (whose canonical path sorts after /opt).
    for first in [
        "/usr/lib/x86_64-linux-gnu/libhl.so.1",
        "/lib/x86_64-linux-gnu/libhl.so.1",
    ] {
        let st = Staged::new();
        let (code, _, err) = closure(&[
            "--sysroot",
            s(sys.path()),
            "--root",
            first,
            "--root",
            "/opt/hl/libhl.so.1",
            "--out",
            s(&st.out),
        ]);
        assert_eq!(
            code, 0,
            "--root {first} --root /opt/hl/libhl.so.1: stderr:\n{err}"
        );
        let t = tree(&st.out);
        assert_one_inode(
            &t,
            "/usr/lib/x86_64-linux-gnu/libhl.so.1",
            "/opt/hl/libhl.so.1",
        );
    }
}

#[test]
fn stage_hard_linked_needed_path_one_inode() {
    let test = "stage_hard_linked_needed_path_one_inode";
    let Some((sys, build)) = hardlink_root(test) else {
        return;
    };
    if !tool_runs("patchelf") {
        println!("skipping {test}: patchelf is not installed");
        return;
    }
    // DT_NEEDED: libhl.so.1, /opt/hl/libhl.so.1, libc.so.6. The loader
    // loads /lib/x86_64-linux-gnu/libhl.so.1, then opens the path, finds
    // the same inode and reuses it: both paths must exist in the root.
    let prog = sys.path().join("app/bin/hl");
    gcc_prog(&prog, &["hl"], build.path(), &[]);
    for args in [
        vec!["--add-needed", "/opt/hl/libhl.so.1"],
        vec!["--remove-needed", "libhl.so.1"],
        vec!["--add-needed", "libhl.so.1"],
    ] {
        let o = Command::new("patchelf")
            .args(&args)
            .arg(&prog)
            .output()
            .expect("patchelf");
        assert!(
            o.status.success(),
            "patchelf {args:?}: {}",
            String::from_utf8_lossy(&o.stderr)
        );
    }
    let st = Staged::new();
    let (code, _, err) = closure(&[
        "--sysroot",
        s(sys.path()),
        "--root",
        "/app/bin/hl",
        "--out",
        s(&st.out),
    ]);
    assert_eq!(code, 0, "stderr:\n{err}");
    let t = tree(&st.out);
    assert_one_inode(
        &t,
        "/usr/lib/x86_64-linux-gnu/libhl.so.1",
        "/opt/hl/libhl.so.1",
    );
    if skip_unless_root(test) {
        return;
    }
    assert_eq!(run_ok(&st.out, &["/app/bin/hl"]), "hard\n");
}

// ---------------------------------------------------------------------------------------------
// 14: --include
// ---------------------------------------------------------------------------------------------

#[test]
fn stage_include_glob_matching_nothing() {
    let test = "stage_include_glob_matching_nothing";
    let Some(sys) = hello_root(test) else { return };
    let st = Staged::new();
    let (code, _, err) = closure(&[
        "--sysroot",
        s(sys.path()),
        "--root",
        "/app/bin/hello",
        "--include",
        "/opt/nothing-*/*.so",
        "--out",
        s(&st.out),
    ]);
    assert_eq!(code, 2, "exit code; stderr {err}");
    assert!(
        err.contains("/opt/nothing-*/*.so"),
        "message does not name the pattern: {err}"
    );
    assert_nothing_left(&st, "include matching nothing");
}

/// The hello root plus /opt/plugins: data files, a subdirectory, a link,
/// and libplug.so needing libdep.so.1 from /usr/lib/x86_64-linux-gnu.
fn plugin_root(test: &str) -> Option<TempDir> {
    let sys = hello_root(test)?;
    let build = tempdir("closure-plugins-build-");
    let dep = gcc_lib(build.path(), "dep", "dep", &[]);
    copy_file(
        &dep,
        &sys.path().join("usr/lib/x86_64-linux-gnu/libdep.so.1"),
    );
    let ldir = format!("-L{}", s(build.path()));
    gcc(
        &sys.path().join("opt/plugins/libplug.so"),
        "const char *dep_msg(void);\nconst char *plug(void) { return dep_msg(); }\n",
        &["-shared", "-fPIC", "-Wl,--no-as-needed", &ldir, "-ldep"],
    );
    fs::write(sys.path().join("opt/plugins/README.txt"), "plugins\n").expect("write");
    fs::create_dir_all(sys.path().join("opt/plugins/data/sub")).expect("mkdir");
    fs::write(
        sys.path().join("opt/plugins/data/sub/x.dat"),
        [0u8, 1, 2, 3],
    )
    .expect("write");
    symlink("libplug.so", &sys.path().join("opt/plugins/current.so"));
    fs::write(sys.path().join("etc-app.conf"), "conf\n").expect("write");
    fs::create_dir_all(sys.path().join("etc")).expect("mkdir");
    fs::write(sys.path().join("etc/app.conf"), "key=value\n").expect("write");
    Some(sys)
}

#[test]
fn stage_include_directory_brings_everything_and_traces_elf() {
    let test = "stage_include_directory_brings_everything_and_traces_elf";
    let Some(sys) = plugin_root(test) else { return };
    let st = stage(&[
        "--sysroot",
        s(sys.path()),
        "--root",
        "/app/bin/hello",
        "--include",
        "/opt/plugins",
    ]);
    let staged = tree(&st.out);
    let source = tree(&sys.path().join("opt/plugins"));
    for (rel, e) in &source {
        let p = format!("/opt/plugins{rel}");
        let got = staged.get(&p).unwrap_or_else(|| panic!("{p} not staged"));
        assert_eq!(got.kind, e.kind, "{p}: kind");
        assert_eq!(got.target, e.target, "{p}: link target");
        if e.kind == 'f' {
            assert_eq!(
                fs::read(st.host(&p)).expect("read"),
                fs::read(sys.path().join(p.trim_start_matches('/'))).expect("read"),
                "{p}: bytes"
            );
        }
    }
    assert_eq!(
        staged
            .get("/usr/lib/x86_64-linux-gnu/libdep.so.1")
            .map(|e| e.kind),
        Some('f'),
        "libdep.so.1 (needed by the included libplug.so) not staged"
    );
    assert!(
        !staged.contains_key("/etc-app.conf"),
        "an unrelated file was staged"
    );
}

#[test]
fn stage_include_data_only_directory() {
    // A directory of data (templates, zoneinfo, locales) holds no ELF file
    // or script; it is still staged whole.
    let test = "stage_include_data_only_directory";
    let Some(sys) = plugin_root(test) else { return };
    let st = Staged::new();
    let (code, _, err) = closure(&[
        "--sysroot",
        s(sys.path()),
        "--root",
        "/app/bin/hello",
        "--include",
        "/opt/plugins/data",
        "--out",
        s(&st.out),
    ]);
    assert_eq!(
        code, 0,
        "--include of a data-only directory; stderr:\n{err}"
    );
    assert_eq!(
        fs::read(st.host("/opt/plugins/data/sub/x.dat")).expect("staged"),
        vec![0u8, 1, 2, 3]
    );
}

#[test]
fn stage_include_plain_data_file() {
    let test = "stage_include_plain_data_file";
    let Some(sys) = plugin_root(test) else { return };
    let st = Staged::new();
    let (code, _, err) = closure(&[
        "--sysroot",
        s(sys.path()),
        "--root",
        "/app/bin/hello",
        "--include",
        "/etc/app.conf",
        "--out",
        s(&st.out),
    ]);
    assert_eq!(
        code, 0,
        "--include of a data file (contract: /etc/nsswitch.conf …); stderr:\n{err}"
    );
    assert_eq!(
        fs::read_to_string(st.host("/etc/app.conf")).expect("staged"),
        "key=value\n"
    );
}

#[test]
fn stage_include_script_with_absent_interpreter() {
    // Data directories carry scripts whose #! interpreter is not in the
    // root (Debian's /usr/lib/python3.11/cgi.py says #! /usr/local/bin/python).
    // Staging the directory must still work; at most the interpreter is
    // reported.
    let test = "stage_include_script_with_absent_interpreter";
    let Some(sys) = hello_root(test) else { return };
    fs::create_dir_all(sys.path().join("usr/share/tool")).expect("mkdir");
    let script = sys.path().join("usr/share/tool/helper.py");
    fs::write(&script, "#! /usr/local/bin/python\nprint('x')\n").expect("write");
    chmod(&script, 0o755);
    let st = Staged::new();
    let (code, _, err) = closure(&[
        "--sysroot",
        s(sys.path()),
        "--root",
        "/app/bin/hello",
        "--include",
        "/usr/share/tool",
        "--out",
        s(&st.out),
    ]);
    assert!(
        code == 0 || code == 1,
        "an included script's absent interpreter aborted staging: exit {code}; stderr:\n{err}"
    );
    if code == 0 {
        assert!(
            st.host("/usr/share/tool/helper.py").is_file(),
            "the script was not staged"
        );
    }
}

// ---------------------------------------------------------------------------------------------
// Contract: a clean run prints nothing on stderr
// ---------------------------------------------------------------------------------------------

#[test]
fn stage_clean_run_is_quiet() {
    let test = "stage_clean_run_is_quiet";
    let Some(sys) = hello_root(test) else { return };
    let st = Staged::new();
    let (code, out, err) = closure(&[
        "--sysroot",
        s(sys.path()),
        "--root",
        "/app/bin/hello",
        "--out",
        s(&st.out),
    ]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(out, "");
    assert_eq!(err, "", "stderr of a clean staging run");
}

// ---------------------------------------------------------------------------------------------
// --link: hard links to the sysroot's files where the file system allows
// ---------------------------------------------------------------------------------------------

/// (device, inode, link count) of a host file.
fn identity(p: &Path) -> (u64, u64, u64) {
    use std::os::unix::fs::MetadataExt;
    let m = fs::symlink_metadata(p).unwrap_or_else(|e| panic!("stat {}: {e}", p.display()));
    (m.dev(), m.ino(), m.nlink())
}

#[test]
fn link_mode_shares_inodes_on_one_file_system() {
    let test = "link_mode_shares_inodes_on_one_file_system";
    let Some(sys) = hello_root(test) else {
        return;
    };
    let copied = stage(&["--sysroot", s(sys.path()), "--root", "/app/bin/hello"]);
    let linked = stage(&[
        "--sysroot",
        s(sys.path()),
        "--root",
        "/app/bin/hello",
        "--link",
    ]);
    // The same tree either way: the same paths, kinds, modes and contents.
    let (a, b) = (tree(&copied.out), tree(&linked.out));
    assert_eq!(
        a.keys().collect::<Vec<_>>(),
        b.keys().collect::<Vec<_>>(),
        "--link staged other paths than a copy"
    );
    let files = regular_files(&linked.out);
    assert!(files.len() >= 3, "program, libc and ld.so: {files:?}");
    for path in files.keys() {
        let staged = linked.host(path);
        let source = sys.path().join(path.trim_start_matches('/'));
        let (sdev, sino, _) = identity(&source);
        let (ldev, lino, nlink) = identity(&staged);
        assert_eq!(
            (ldev, lino),
            (sdev, sino),
            "{path}: --link did not hard-link the sysroot's file"
        );
        assert!(nlink >= 2, "{path}: link count {nlink}");
        // The copy is a separate inode with the same bytes and mode.
        let copy = copied.host(path);
        assert_ne!(
            identity(&copy).1,
            sino,
            "{path}: a plain copy shares the inode"
        );
        assert_eq!(
            fs::read(&copy).expect("read copy"),
            fs::read(&staged).expect("read link")
        );
        assert_eq!(a[path].mode, b[path].mode, "{path}: mode differs");
    }
    // The linked root still runs.
    if skip_unless_root(test) {
        return;
    }
    assert_eq!(run_ok(&linked.out, &["/app/bin/hello"]), "hello\n");
}

#[test]
fn link_mode_copies_across_file_systems() {
    let test = "link_mode_copies_across_file_systems";
    let Some(sys) = hello_root(test) else {
        return;
    };
    // /dev/shm is a tmpfs on Linux: another file system than the tempdir's,
    // unless the temporary directory lives there too.
    let shm = Path::new("/dev/shm");
    let Ok(meta) = fs::metadata(shm) else {
        println!("skipping {test}: no /dev/shm");
        return;
    };
    use std::os::unix::fs::MetadataExt;
    if meta.dev() == identity(sys.path()).0 {
        println!("skipping {test}: the temporary directory is on /dev/shm's file system");
        return;
    }
    let dir = tempfile::Builder::new()
        .prefix("closure-link-shm-")
        .tempdir_in(shm)
        .expect("tempdir in /dev/shm");
    let out = dir.path().join("out");
    let (code, stdout, err) = closure(&[
        "--sysroot",
        s(sys.path()),
        "--root",
        "/app/bin/hello",
        "--link",
        "--out",
        s(&out),
    ]);
    assert_eq!(code, 0, "stdout:\n{stdout}\nstderr:\n{err}");
    let files = regular_files(&out);
    assert!(files.len() >= 3, "{files:?}");
    for path in files.keys() {
        let staged = out.join(path.trim_start_matches('/'));
        let source = sys.path().join(path.trim_start_matches('/'));
        assert_ne!(
            identity(&staged).0,
            identity(&source).0,
            "{path}: expected a copy on the other file system"
        );
        assert_eq!(identity(&staged).2, 1, "{path}: a copy has one link");
        assert_eq!(
            fs::read(&staged).expect("read staged"),
            fs::read(&source).expect("read source"),
            "{path}: contents differ"
        );
    }
}

/// Gives `path` the capability `cap_net_raw=ep` with `setcap` (libcap2-bin).
fn setcap_net_raw(path: &Path) -> Result<(), String> {
    match Command::new("setcap")
        .arg("cap_net_raw+ep")
        .arg(path)
        .output()
    {
        Ok(o) if o.status.success() => Ok(()),
        Ok(o) => Err(String::from_utf8_lossy(&o.stderr).into_owned()),
        Err(e) => Err(e.to_string()),
    }
}

/// The raw `security.capability` value of a host file, if any.
fn caps_of(path: &Path) -> Option<Vec<u8>> {
    closure::audit::caps::read_raw(path, path).expect("read capabilities")
}

/// A staged copy keeps the file capabilities of the sysroot's file (a
/// program such as `ping` needs them to work as an ordinary user): in a
/// fresh output, when replacing a file with `--force`, and (shared inode)
/// with `--link`. Without `CAP_SETFCAP` the copy is staged without them
/// and a warning names it. Fails if staging drops the attribute (as it did
/// before), sets it before the contents (writing clears it), or stays
/// silent when it cannot set it.
#[test]
fn staging_keeps_file_capabilities() {
    let test = "staging_keeps_file_capabilities";
    if skip_unless_root(test) || no_toolchain(test) {
        return;
    }
    let work = tempdir("closure-caps-");
    let sys = work.path().join("root");
    usrmerged_root(&sys);
    let prog = sys.join("usr/bin/pinger");
    gcc(&prog, HELLO_C, &[]);
    if let Err(why) = setcap_net_raw(&prog) {
        println!("skipping {test}: cannot set a file capability here ({why})");
        return;
    }
    let want = caps_of(&prog).expect("the sysroot's file has capabilities");
    let staged = |out: &Path| out.join("usr/bin/pinger");
    let run = |extra: &[&str], out: &Path| {
        let mut args = vec![
            "--sysroot",
            s(&sys),
            "--root",
            "/usr/bin/pinger",
            "--out",
            s(out),
        ];
        args.extend_from_slice(extra);
        let (code, stdout, err) = closure(&args);
        assert_eq!(code, 0, "{extra:?}\nstdout:\n{stdout}\nstderr:\n{err}");
        err
    };

    let out = work.path().join("out");
    run(&[], &out);
    assert_eq!(caps_of(&staged(&out)), Some(want.clone()), "fresh output");
    assert_eq!(
        run_ok(&out, &["/usr/bin/pinger"]),
        "hello\n",
        "the staged program runs"
    );
    // Replaced in place: the new file gets them too.
    fs::write(staged(&out), "stale").expect("write");
    run(&["--force"], &out);
    assert_eq!(caps_of(&staged(&out)), Some(want.clone()), "--force");

    let linked = work.path().join("linked");
    run(&["--link"], &linked);
    assert!(
        fs::metadata(staged(&linked)).expect("staged").nlink() > 1,
        "expected a hard link"
    );
    assert_eq!(caps_of(&staged(&linked)), Some(want.clone()), "--link");

    // Without CAP_SETFCAP: staged anyway, without them, and said so.
    let bare = work.path().join("bare");
    let (code, stdout, err) = {
        let out = Command::new("setpriv")
            .args(["--bounding-set", "-setfcap", "--"])
            .arg(env!("CARGO_BIN_EXE_closure"))
            .args(["--sysroot", s(&sys), "--root", "/usr/bin/pinger", "--out"])
            .arg(&bare)
            .stdin(Stdio::null())
            .output()
            .expect("run setpriv");
        (
            code_of(out.status),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    };
    assert_eq!(code, 0, "stdout:\n{stdout}\nstderr:\n{err}");
    assert_eq!(caps_of(&staged(&bare)), None);
    assert!(
        err.contains(
            "warning: /usr/bin/pinger: the file capabilities of the sysroot's file were not kept"
        ),
        "{err}"
    );
}

/// Staging warns, naming the directory, when someone else could replace
/// the finished tree: `--out`'s parent writable by every user with no
/// sticky bit (or, with `--force` into an existing `--out`, that directory
/// itself); not for a sticky or private parent. The tree is staged either way.
#[test]
fn staging_warns_when_others_could_replace_the_output() {
    let work = tempdir("closure-exposed-");
    let sample = Path::new(env!("CARGO_MANIFEST_DIR")).join("sample-rootfs");
    let stage_into = |out: &Path, extra: &[&str]| {
        let mut args = vec![
            "--sysroot",
            s(&sample),
            "--root",
            "/app/bin/server",
            "--out",
            s(out),
        ];
        args.extend_from_slice(extra);
        let (code, _, err) = closure(&args);
        assert_eq!(code, 0, "{err}");
        assert!(out.join("app/bin/server").is_file(), "{err}");
        err
    };
    let warning = |dir: &Path| {
        format!(
            "warning: {}: writable by every user, with no sticky bit: someone else could replace",
            dir.display()
        )
    };
    for (mode, warned) in [
        (0o777, true),
        (0o1777, false),
        (0o755, false),
        (0o700, false),
    ] {
        let parent = work.path().join(format!("p{mode:o}"));
        fs::create_dir(&parent).unwrap();
        fs::set_permissions(&parent, fs::Permissions::from_mode(mode)).unwrap();
        let err = stage_into(&parent.join("out"), &[]);
        assert_eq!(err.contains(&warning(&parent)), warned, "{mode:o}: {err}");
        if !warned {
            assert!(!err.contains("warning:"), "{mode:o}: {err}");
        }
    }
    // Into an existing, world-writable --out with --force: --out is named.
    let out = work.path().join("p755/out");
    fs::set_permissions(&out, fs::Permissions::from_mode(0o777)).unwrap();
    let err = stage_into(&out, &["--force"]);
    assert!(err.contains(&warning(&out)), "{err}");
}
