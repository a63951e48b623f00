//! What the loader only finds at run time (issue 5), proved with gcc- and
//! musl-gcc-built fixtures in throwaway sysroots that hold copies of this
//! machine's C libraries:
//!
//! * `.note.dlopen` (an assembler `.section .note.dlopen,"a",@note`):
//!   found_via `dlopen-note`, the edge and its priority in the tree,
//!   `--dlopen-priority`, `--dlopen-feature`, alternatives, missing
//!   required vs. optional entries, the dlopen'd library's own closure, and
//!   the staged program really `dlopen`ing its plugin in the staged root.
//! * `--dlopen-strings`: library names in the read-only data of objects
//!   that call `dlopen`, against the program's link map after its calls.
//! * NSS: exactly the `libnss_<service>.so.2` modules that `nsswitch.conf`
//!   names and the sysroot has; glibc really loads them in the staged root.
//! * musl: reserved names, RUNPATH with `$ORIGIN`, `/etc/ld-musl-*.path`,
//!   the built-in default path, inherited RUNPATH — each compared with
//!   musl's own loader (`ld-musl --list`) — and staged programs that run.
//! * `libgcc_s.so.1` for `pthread_cancel`, and only then.
//! * gconv modules for `iconv_open`, with a program that needs them.
//!
//! The closure-only checks need gcc (or musl-gcc); running programs in a
//! root needs root and prints `skipping <name>: needs root` otherwise.

use std::collections::BTreeSet;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::Value;

use crate::support::chroot::{is_root, run_in_root, run_in_root_at};
use crate::support::elfgen::{Arch, ElfSpec, Kind};
use crate::support::fakeroot::{missing_names, object, run_raw, FakeRoot, Layout};
use crate::support::oracle::{
    closure_ldd_lines, ldd_lines, parse_trace, resolve_in_root, run_closure, tool_runs,
};
use crate::support::rng::Rng;

const HOST_LIBC: &str = "/lib/x86_64-linux-gnu/libc.so.6";
const HOST_LDSO: &str = "/lib/x86_64-linux-gnu/ld-linux-x86-64.so.2";
pub(crate) const HOST_MUSL: &str = "/usr/lib/x86_64-linux-musl/libc.so";
pub(crate) const MUSL_INTERP: &str = "/lib/ld-musl-x86_64.so.1";
const MUSL_PATH_FILE: &str = "/etc/ld-musl-x86_64.path";
const HOST_GCONV: &str = "/usr/lib/x86_64-linux-gnu/gconv";
const GCONV: &str = "/usr/lib/x86_64-linux-gnu/gconv";

// ---------------------------------------------------------------------------------------------
// Preconditions
// ---------------------------------------------------------------------------------------------

/// Prints why and returns false when gcc or the host glibc files are missing.
fn glibc_ready(name: &str) -> bool {
    let why = if !tool_runs("gcc", "--version") {
        Some("gcc is not installed".to_string())
    } else if !Path::new(HOST_LIBC).is_file() || !Path::new(HOST_LDSO).is_file() {
        Some(format!(
            "host glibc not at {HOST_LIBC} / {HOST_LDSO} (needs a Debian-like x86_64 host)"
        ))
    } else {
        None
    };
    match why {
        Some(w) => {
            println!("skipping {name}: {w}");
            false
        }
        None => true,
    }
}

/// Prints why and returns false when musl-gcc or the host musl are missing.
pub(crate) fn musl_ready(name: &str) -> bool {
    let why = if !tool_runs("musl-gcc", "--version") {
        Some("musl-gcc is not installed (apt-get install musl-tools)".to_string())
    } else if !Path::new(HOST_MUSL).is_file() {
        Some(format!("the host musl is not at {HOST_MUSL}"))
    } else {
        None
    };
    match why {
        Some(w) => {
            println!("skipping {name}: {w}");
            false
        }
        None => true,
    }
}

/// True when programs can be run in a root; prints `skipping <what>: needs
/// root` otherwise.
pub(crate) fn can_run(what: &str) -> bool {
    if is_root() {
        return true;
    }
    println!("skipping {what}: needs root");
    false
}

// ---------------------------------------------------------------------------------------------
// A sysroot built from host files and compiled fixtures
// ---------------------------------------------------------------------------------------------

/// A temporary sysroot plus a scratch directory for sources.
pub(crate) struct Sys {
    dir: tempfile::TempDir,
    work: tempfile::TempDir,
    n: std::cell::Cell<usize>,
}

impl Sys {
    fn empty() -> Sys {
        Sys {
            dir: tempfile::Builder::new()
                .prefix("closure-runtime-")
                .tempdir()
                .expect("tempdir"),
            work: tempfile::Builder::new()
                .prefix("closure-runtime-src-")
                .tempdir()
                .expect("tempdir"),
            n: std::cell::Cell::new(0),
        }
    }

    /// Debian 12 merged-/usr with copies of the host's libc.so.6 and ld.so.
    pub(crate) fn glibc() -> Sys {
        Sys::glibc_with(Path::new(HOST_LIBC), Path::new(HOST_LDSO))
    }

    /// [`Sys::glibc`] with the `libc.so.6` and `ld.so` at `libc` and `ldso` on the host
    /// (another release's).
    pub(crate) fn glibc_with(libc: &Path, ldso: &Path) -> Sys {
        let s = Sys::empty();
        s.mkdir("/usr/lib/x86_64-linux-gnu");
        s.mkdir("/usr/lib64");
        s.mkdir("/usr/bin");
        s.mkdir("/etc");
        s.symlink("usr/lib", "/lib");
        s.symlink("usr/lib64", "/lib64");
        s.symlink("usr/bin", "/bin");
        s.symlink(
            "/lib/x86_64-linux-gnu/ld-linux-x86-64.so.2",
            "/usr/lib64/ld-linux-x86-64.so.2",
        );
        s.copy_host(libc, "/usr/lib/x86_64-linux-gnu/libc.so.6");
        s.copy_host(ldso, "/usr/lib/x86_64-linux-gnu/ld-linux-x86-64.so.2");
        s
    }

    /// Debian 12 merged-/usr with the host's musl: `/lib/ld-musl-x86_64.so.1
    /// -> x86_64-linux-musl/libc.so` and musl's search path file.
    /// (`CLOSURE_MUSL_LIBC=PATH` puts another musl's `libc.so` in instead, to run every musl
    /// test against it.)
    pub(crate) fn musl() -> Sys {
        match std::env::var_os("CLOSURE_MUSL_LIBC") {
            Some(libc) => Sys::musl_with(Path::new(&libc)),
            None => Sys::musl_with(Path::new(HOST_MUSL)),
        }
    }

    /// [`Sys::musl`] with the musl (`libc.so`, also its loader) at `libc` on the host.
    pub(crate) fn musl_with(libc: &Path) -> Sys {
        let s = Sys::empty();
        s.mkdir("/usr/lib/x86_64-linux-musl");
        s.mkdir("/usr/bin");
        s.symlink("usr/lib", "/lib");
        s.symlink("usr/bin", "/bin");
        s.copy_host(libc, "/usr/lib/x86_64-linux-musl/libc.so");
        s.symlink("x86_64-linux-musl/libc.so", "/usr/lib/ld-musl-x86_64.so.1");
        s.write(
            MUSL_PATH_FILE,
            "/lib/x86_64-linux-musl\n/usr/lib/x86_64-linux-musl\n",
        );
        s
    }

    pub(crate) fn path(&self) -> &Path {
        self.dir.path()
    }

    fn sysroot(&self) -> &str {
        self.path().to_str().expect("UTF-8 temp path")
    }

    fn host(&self, in_root: &str) -> PathBuf {
        self.path().join(in_root.trim_start_matches('/'))
    }

    pub(crate) fn mkdir(&self, in_root: &str) {
        fs::create_dir_all(self.host(in_root)).unwrap_or_else(|e| panic!("mkdir {in_root}: {e}"));
    }

    fn mkparent(&self, in_root: &str) {
        if let Some(p) = self.host(in_root).parent() {
            fs::create_dir_all(p).unwrap_or_else(|e| panic!("mkdir for {in_root}: {e}"));
        }
    }

    pub(crate) fn write(&self, in_root: &str, contents: impl AsRef<[u8]>) {
        self.mkparent(in_root);
        fs::write(self.host(in_root), contents).unwrap_or_else(|e| panic!("write {in_root}: {e}"));
    }

    fn symlink(&self, target: &str, link: &str) {
        self.mkparent(link);
        std::os::unix::fs::symlink(target, self.host(link))
            .unwrap_or_else(|e| panic!("symlink {link} -> {target}: {e}"));
    }

    fn copy_host(&self, host: impl AsRef<Path>, in_root: &str) {
        let host = host.as_ref();
        self.mkparent(in_root);
        fs::copy(host, self.host(in_root))
            .unwrap_or_else(|e| panic!("copy {} -> {in_root}: {e}", host.display()));
    }

    pub(crate) fn remove(&self, in_root: &str) {
        fs::remove_file(self.host(in_root)).unwrap_or_else(|e| panic!("rm {in_root}: {e}"));
    }

    /// Writes a scratch file (outside the root) and returns its path.
    pub(crate) fn scratch(&self, ext: &str, contents: &str) -> PathBuf {
        let n = self.n.get();
        self.n.set(n + 1);
        let p = self.work.path().join(format!("src{n}.{ext}"));
        fs::write(&p, contents).expect("write source");
        p
    }

    /// Compiles `sources` ((extension, text) pairs: `c`, `s`) with
    /// `compiler` into `in_root`; `args` follow the sources.
    pub(crate) fn cc(
        &self,
        compiler: &str,
        in_root: &str,
        sources: &[(&str, &str)],
        args: &[&str],
    ) {
        self.mkparent(in_root);
        let files: Vec<PathBuf> = sources
            .iter()
            .map(|(ext, text)| self.scratch(ext, text))
            .collect();
        let out = Command::new(compiler)
            .arg("-o")
            .arg(self.host(in_root))
            .args(&files)
            .arg("-Wl,--no-as-needed")
            .args(args)
            .output()
            .unwrap_or_else(|e| panic!("cannot run {compiler}: {e}"));
        assert!(
            out.status.success(),
            "{compiler} for {in_root} failed ({args:?}):\n{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    /// A shared library with a SONAME; `args` may link it against others.
    pub(crate) fn lib(&self, compiler: &str, in_root: &str, soname: &str, c: &str, args: &[&str]) {
        let mut all = vec![
            "-shared".to_string(),
            "-fPIC".to_string(),
            format!("-Wl,-soname,{soname}"),
        ];
        all.extend(args.iter().map(|a| a.to_string()));
        let all: Vec<&str> = all.iter().map(String::as_str).collect();
        self.cc(compiler, in_root, &[("c", c)], &all);
    }

    /// `-L<dir> -l:<file>` for an in-root library (a DT_NEEDED of its SONAME).
    pub(crate) fn link(&self, in_root: &str) -> Vec<String> {
        let host = self.host(in_root);
        vec![
            format!("-L{}", host.parent().expect("dir").display()),
            format!("-l:{}", host.file_name().expect("file").to_string_lossy()),
        ]
    }

    /// Runs closure with `--sysroot` this root.
    fn closure(&self, args: &[&str]) -> (i32, String, String) {
        let mut all = vec!["--sysroot", self.sysroot()];
        all.extend_from_slice(args);
        run_raw(&all)
    }

    /// `--format json` run: (exit code, report, stderr).
    pub(crate) fn json(&self, args: &[&str]) -> (i32, Value, String) {
        let mut all = args.to_vec();
        all.extend(["--format", "json"]);
        let (code, out, err) = self.closure(&all);
        let v: Value = serde_json::from_str(&out).unwrap_or_else(|e| {
            panic!("stdout is not JSON ({e}); exit {code}\nargs {args:?}\nstdout:\n{out}\nstderr:\n{err}")
        });
        (code, v, err)
    }

    /// Stages with `--out` (a fresh directory), the given arguments and
    /// `--no-verify` (closure's own check of the staged root left out).
    fn stage_unverified(&self, args: &[&str]) -> Staged {
        let mut all = args.to_vec();
        all.push("--no-verify");
        self.stage(&all)
    }

    /// Stages with `--out` (a fresh directory) and exactly the given
    /// arguments (so with closure's own check of the staged root).
    fn stage(&self, args: &[&str]) -> Staged {
        let dir = tempfile::Builder::new()
            .prefix("closure-runtime-out-")
            .tempdir()
            .expect("tempdir");
        let out = dir.path().join("out");
        let mut all = args.to_vec();
        let out_s = out.to_str().expect("UTF-8").to_string();
        all.extend(["--out", &out_s]);
        let (code, stdout, stderr) = self.closure(&all);
        Staged {
            _dir: dir,
            out,
            code,
            stdout,
            stderr,
        }
    }
}

/// One `--out` run.
struct Staged {
    _dir: tempfile::TempDir,
    out: PathBuf,
    code: i32,
    stdout: String,
    stderr: String,
}

impl Staged {
    /// Panics unless the run succeeded.
    fn ok(self, what: &str) -> Staged {
        assert_eq!(
            self.code, 0,
            "{what}: staging failed\nstdout:\n{}\nstderr:\n{}",
            self.stdout, self.stderr
        );
        self
    }

    /// Whether an in-root path exists in the staged root (links followed
    /// inside it).
    fn has(&self, in_root: &str) -> bool {
        fs::metadata(resolve_in_root(&self.out, in_root)).is_ok()
    }

    /// Every regular file of the staged root, as in-root paths.
    fn files(&self) -> BTreeSet<String> {
        let mut out = BTreeSet::new();
        let mut stack = vec![self.out.clone()];
        while let Some(d) = stack.pop() {
            let Ok(rd) = fs::read_dir(&d) else { continue };
            for e in rd.flatten() {
                let p = e.path();
                let Ok(m) = fs::symlink_metadata(&p) else {
                    continue;
                };
                if m.is_dir() {
                    stack.push(p);
                } else if m.is_file() {
                    let rel = p.strip_prefix(&self.out).expect("below out");
                    out.insert(format!("/{}", rel.display()));
                }
            }
        }
        out
    }

    /// Staged regular files whose file name starts with `prefix`.
    fn named(&self, prefix: &str) -> BTreeSet<String> {
        self.files()
            .into_iter()
            .filter(|p| {
                p.rsplit('/')
                    .next()
                    .is_some_and(|base| base.starts_with(prefix))
            })
            .collect()
    }

    /// Runs `argv` in the staged root (needs root).
    fn run(&self, argv: &[&str], env: &[(&str, &str)]) -> (i32, String, String) {
        let (status, out, err) = run_in_root(&self.out, argv, env);
        (status.code().unwrap_or(-1), out, err)
    }
}

/// `path -> found_via` of the report's objects.
fn via_of(report: &Value, path: &str) -> Option<String> {
    object(report, path).and_then(|o| o["found_via"].as_str().map(str::to_string))
}

/// The paths of every object of a report (roots included).
pub(crate) fn paths(report: &Value) -> BTreeSet<String> {
    report["objects"]
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(|o| o["path"].as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default()
}

/// The report's objects whose path ends with `/<base>`.
fn with_base(report: &Value, base: &str) -> Vec<String> {
    paths(report)
        .into_iter()
        .filter(|p| p.ends_with(&format!("/{base}")))
        .collect()
}

/// The report's `warnings`, joined.
pub(crate) fn warnings(report: &Value) -> String {
    report["warnings"]
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(Value::as_str)
                .collect::<Vec<_>>()
                .join("\n")
        })
        .unwrap_or_default()
}

/// The tree line for the edge named `name` (first one).
fn tree_line<'a>(tree: &'a str, name: &str) -> Option<&'a str> {
    tree.lines()
        .find(|l| l.trim_start().starts_with(&format!("{name} =>")))
}

// ---------------------------------------------------------------------------------------------
// 1. .note.dlopen
// ---------------------------------------------------------------------------------------------

/// Assembler for one `.note.dlopen` note: owner "FDO", type 0x407c0c0a,
/// the JSON NUL-terminated (descsz counts the NUL) and padded to 4.
fn note_asm(json: &str) -> String {
    let escaped = json.replace('\\', "\\\\").replace('"', "\\\"");
    format!(
        "\t.section .note.dlopen,\"a\",@note\n\
         \t.balign 4\n\
         \t.long 4\n\
         \t.long 2f - 1f\n\
         \t.long 0x407c0c0a\n\
         \t.asciz \"FDO\"\n\
         1:\t.asciz \"{escaped}\"\n\
         2:\t.balign 4\n\
         \t.section .note.GNU-stack,\"\",@progbits\n"
    )
}

/// The main program's note: a required plugin (with a DT_NEEDED of its
/// own), a recommended and a suggested library, and an entry without a
/// priority (so recommended) whose first alternative does not exist.
const PLUG_NOTE: &str = r#"[{"soname":["libplug.so.1"],"feature":"plugin","priority":"required","description":"the plugin the program loads"},{"soname":["libreco.so.1"],"feature":"compress","priority":"recommended"},{"soname":["libsugg.so.1"],"feature":"extra","priority":"suggested"},{"soname":["libalt.so.2","libalt.so.1"],"feature":"alt","x-unknown-key":true}]"#;

const PLUG_PROG_C: &str = r#"
#include <dlfcn.h>
#include <stdio.h>
int main(void) {
    void *h = dlopen("libplug.so.1", RTLD_NOW);
    if (h == NULL) { fprintf(stderr, "dlopen failed: %s\n", dlerror()); return 3; }
    const char *(*hello)(void) = (const char *(*)(void))dlsym(h, "plug_hello");
    if (hello == NULL) { fprintf(stderr, "dlsym failed: %s\n", dlerror()); return 4; }
    printf("plugin: %s\n", hello());
    return 0;
}
"#;

const PROG: &str = "/app/bin/prog";

/// The dlopen fixture: `/app/bin/prog` (RUNPATH `$ORIGIN/../lib`) with
/// [`PLUG_NOTE`]; `/app/lib/{libplug,libplugdep,libreco,libalt}.so.1`
/// (libplug needs libplugdep through its own RUNPATH `$ORIGIN`);
/// `libsugg.so.1` in the multiarch directory; plus `/app/bin/prog-req`
/// (a required entry that exists nowhere) and `/app/bin/prog-opt` (a
/// recommended and a suggested entry that exist nowhere).
fn dlopen_fixture() -> Sys {
    let s = Sys::glibc();
    s.lib(
        "gcc",
        "/app/lib/libplugdep.so.1",
        "libplugdep.so.1",
        "const char *plugdep_word(void) { return \"hello from plugdep\"; }\n",
        &[],
    );
    let mut plug_args = s.link("/app/lib/libplugdep.so.1");
    plug_args.push("-Wl,--enable-new-dtags".into());
    plug_args.push("-Wl,-rpath,$ORIGIN".into());
    let plug_args: Vec<&str> = plug_args.iter().map(String::as_str).collect();
    s.lib(
        "gcc",
        "/app/lib/libplug.so.1",
        "libplug.so.1",
        "const char *plugdep_word(void);\nconst char *plug_hello(void) { return plugdep_word(); }\n",
        &plug_args,
    );
    for (path, soname) in [
        ("/app/lib/libreco.so.1", "libreco.so.1"),
        ("/app/lib/libalt.so.1", "libalt.so.1"),
        ("/usr/lib/x86_64-linux-gnu/libsugg.so.1", "libsugg.so.1"),
    ] {
        s.lib(
            "gcc",
            path,
            soname,
            "int fixture_fn(void) { return 1; }\n",
            &[],
        );
    }
    let rpath = ["-Wl,--enable-new-dtags", "-Wl,-rpath,$ORIGIN/../lib"];
    s.cc(
        "gcc",
        PROG,
        &[("c", PLUG_PROG_C), ("s", &note_asm(PLUG_NOTE))],
        &rpath,
    );
    let plain = "int main(void) { return 0; }\n";
    s.cc(
        "gcc",
        "/app/bin/prog-req",
        &[
            ("c", plain),
            (
                "s",
                &note_asm(
                    r#"[{"soname":["libnothere.so.1"],"feature":"core","priority":"required"}]"#,
                ),
            ),
        ],
        &rpath,
    );
    s.cc(
        "gcc",
        "/app/bin/prog-opt",
        &[
            ("c", plain),
            (
                "s",
                &note_asm(
                    r#"[{"soname":["libgoneA.so.1"],"feature":"a","priority":"recommended"},{"soname":["libgoneB.so.1"],"feature":"b","priority":"suggested"}]"#,
                ),
            ),
        ],
        &rpath,
    );
    s
}

const PLUG: &str = "/app/bin/../lib/libplug.so.1";
const PLUGDEP: &str = "/app/bin/../lib/libplugdep.so.1";
const RECO: &str = "/app/bin/../lib/libreco.so.1";
const ALT: &str = "/app/bin/../lib/libalt.so.1";
const SUGG: &str = "/lib/x86_64-linux-gnu/libsugg.so.1";

/// Which of the fixture's dlopen'd objects a report holds.
fn dlopened(report: &Value) -> Vec<&'static str> {
    let all = paths(report);
    [PLUG, PLUGDEP, RECO, ALT, SUGG]
        .into_iter()
        .filter(|p| all.contains(*p))
        .collect()
}

#[test]
fn dlopen_note_default_follows_required_and_recommended() {
    let name = "dlopen_note_default_follows_required_and_recommended";
    if !glibc_ready(name) {
        return;
    }
    let s = dlopen_fixture();
    let (code, v, err) = s.json(&["--root", PROG]);
    assert_eq!(code, 0, "stderr:\n{err}\nreport:\n{v:#}");
    assert_eq!(dlopened(&v), [PLUG, PLUGDEP, RECO, ALT], "report:\n{v:#}");
    for p in [PLUG, RECO, ALT] {
        assert_eq!(
            via_of(&v, p).as_deref(),
            Some("dlopen-note"),
            "{p}: report:\n{v:#}"
        );
        let by = &object(&v, p).expect("object")["needed_by"];
        assert!(
            by.as_array()
                .is_some_and(|a| a.iter().any(|x| x.as_str() == Some(PROG))),
            "{p} should be needed by {PROG}: {by}"
        );
    }
    // libplug's own DT_NEEDED, through libplug's RUNPATH.
    assert_eq!(via_of(&v, PLUGDEP).as_deref(), Some("runpath"), "{v:#}");
    // The first alternative does not exist, and no second object for it.
    assert!(with_base(&v, "libalt.so.2").is_empty(), "{v:#}");
    assert!(missing_names(&v).is_empty(), "{v:#}");
    assert!(
        !err.contains("libalt"),
        "an alternative that exists is no warning:\n{err}"
    );
}

#[test]
fn dlopen_note_edges_in_tree_with_priority() {
    let name = "dlopen_note_edges_in_tree_with_priority";
    if !glibc_ready(name) {
        return;
    }
    let s = dlopen_fixture();
    let (code, tree, err) = s.closure(&["--root", PROG, "--dlopen-priority", "suggested"]);
    assert_eq!(code, 0, "stderr:\n{err}\ntree:\n{tree}");
    for (soname, path, priority, feature) in [
        ("libplug.so.1", PLUG, "required", "plugin"),
        ("libreco.so.1", RECO, "recommended", "compress"),
        ("libalt.so.1", ALT, "recommended", "alt"),
        ("libsugg.so.1", SUGG, "suggested", "extra"),
    ] {
        let line =
            tree_line(&tree, soname).unwrap_or_else(|| panic!("no edge {soname} in:\n{tree}"));
        assert!(
            line.contains(path)
                && line.contains("dlopen")
                && line.contains(priority)
                && line.contains(feature),
            "edge {soname} should name {path}, dlopen, {priority}, {feature}: {line:?}\n{tree}"
        );
    }
    // The plugin's own dependency hangs below it.
    let plug_at = tree.find("libplug.so.1 =>").expect("plug edge");
    let dep_at = tree.find("libplugdep.so.1 =>").expect("plugdep edge");
    assert!(dep_at > plug_at, "{tree}");
    let plug_indent = tree_line(&tree, "libplug.so.1").map(|l| l.len() - l.trim_start().len());
    let dep_indent = tree_line(&tree, "libplugdep.so.1").map(|l| l.len() - l.trim_start().len());
    assert!(
        dep_indent > plug_indent,
        "libplugdep.so.1 should be nested below libplug.so.1:\n{tree}"
    );
}

#[test]
fn dlopen_priority_and_feature_select_entries() {
    let name = "dlopen_priority_and_feature_select_entries";
    if !glibc_ready(name) {
        return;
    }
    let s = dlopen_fixture();
    let cases: &[(&[&str], &[&str])] = &[
        (&["--dlopen-priority", "required"], &[PLUG, PLUGDEP]),
        (
            &["--dlopen-priority", "recommended"],
            &[PLUG, PLUGDEP, RECO, ALT],
        ),
        (
            &["--dlopen-priority", "suggested"],
            &[PLUG, PLUGDEP, RECO, ALT, SUGG],
        ),
        (&["--dlopen-priority", "none"], &[]),
        (&["--dlopen-feature", "compress"], &[RECO]),
        (
            &["--dlopen-feature", "plugin", "--dlopen-feature", "alt"],
            &[PLUG, PLUGDEP, ALT],
        ),
        // The feature filter and the priority both apply.
        (&["--dlopen-feature", "extra"], &[]),
        (
            &[
                "--dlopen-feature",
                "extra",
                "--dlopen-priority",
                "suggested",
            ],
            &[SUGG],
        ),
        (&["--dlopen-feature", "no-such-feature"], &[]),
    ];
    for (args, want) in cases {
        let mut all = vec!["--root", PROG];
        all.extend_from_slice(args);
        let (code, v, err) = s.json(&all);
        assert_eq!(code, 0, "{args:?}: stderr:\n{err}");
        assert_eq!(&dlopened(&v), want, "{args:?}: report:\n{v:#}");
        if args.contains(&"suggested") && want.contains(&SUGG) {
            assert_eq!(via_of(&v, SUGG).as_deref(), Some("dlopen-note"), "{v:#}");
        }
    }
}

#[test]
fn dlopen_missing_required_is_a_problem_optional_a_warning() {
    let name = "dlopen_missing_required_is_a_problem_optional_a_warning";
    if !glibc_ready(name) {
        return;
    }
    let s = dlopen_fixture();

    // A required entry that exists nowhere: a problem, exit 1.
    let (code, v, err) = s.json(&["--root", "/app/bin/prog-req"]);
    assert_eq!(code, 1, "stderr:\n{err}\nreport:\n{v:#}");
    assert_eq!(missing_names(&v), ["libnothere.so.1"], "{v:#}");
    assert_eq!(
        v["missing"][0]["needed_by"].as_str(),
        Some("/app/bin/prog-req"),
        "{v:#}"
    );
    assert!(err.contains("libnothere.so.1"), "stderr:\n{err}");
    // ... which --out refuses to stage, and which is gone with `none`.
    let st = s.stage(&["--root", "/app/bin/prog-req"]);
    assert_eq!(st.code, 1, "stderr:\n{}", st.stderr);
    let (code, v, err) = s.json(&["--root", "/app/bin/prog-req", "--dlopen-priority", "none"]);
    assert_eq!(code, 0, "stderr:\n{err}");
    assert!(missing_names(&v).is_empty(), "{v:#}");

    // Recommended and suggested entries that exist nowhere: warnings only.
    let (code, v, err) = s.json(&["--root", "/app/bin/prog-opt"]);
    assert_eq!(code, 0, "stderr:\n{err}\nreport:\n{v:#}");
    assert!(missing_names(&v).is_empty(), "{v:#}");
    assert!(
        err.contains("warning") && err.contains("libgoneA.so.1"),
        "stderr:\n{err}"
    );
    assert!(
        !err.contains("libgoneB.so.1"),
        "a suggested entry is not followed by default:\n{err}"
    );
    assert!(warnings(&v).contains("libgoneA.so.1"), "{v:#}");
    let (code, v, err) = s.json(&[
        "--root",
        "/app/bin/prog-opt",
        "--dlopen-priority",
        "suggested",
    ]);
    assert_eq!(code, 0, "stderr:\n{err}\nreport:\n{v:#}");
    assert!(missing_names(&v).is_empty(), "{v:#}");
    assert!(
        err.contains("libgoneA.so.1") && err.contains("libgoneB.so.1"),
        "stderr:\n{err}"
    );
    // Staging goes ahead.
    let st = s.stage(&[
        "--root",
        "/app/bin/prog-opt",
        "--dlopen-priority",
        "suggested",
    ]);
    let st = st.ok("prog-opt");
    assert!(st.has("/app/bin/prog-opt"));
}

#[test]
fn dlopen_note_stages_and_the_plugin_loads_in_the_staged_root() {
    let name = "dlopen_note_stages_and_the_plugin_loads_in_the_staged_root";
    if !glibc_ready(name) {
        return;
    }
    let s = dlopen_fixture();
    let lib = |base: &str| format!("/app/lib/{base}");

    // Default: required + recommended, and the plugin's own closure.
    let st = s.stage(&["--root", PROG]).ok("default");
    for base in [
        "libplug.so.1",
        "libplugdep.so.1",
        "libreco.so.1",
        "libalt.so.1",
    ] {
        assert!(st.has(&lib(base)), "{base} not staged: {:?}", st.files());
    }
    assert!(
        st.named("libsugg").is_empty(),
        "suggested staged by default: {:?}",
        st.files()
    );
    assert!(st.named("libalt.so.2").is_empty());

    let suggested = s
        .stage(&["--root", PROG, "--dlopen-priority", "suggested"])
        .ok("suggested");
    assert!(suggested.has(SUGG), "{:?}", suggested.files());

    let none = s
        .stage(&["--root", PROG, "--dlopen-priority", "none"])
        .ok("none");
    for base in ["libplug", "libplugdep", "libreco", "libalt", "libsugg"] {
        assert!(
            none.named(base).is_empty(),
            "{base} staged with --dlopen-priority none: {:?}",
            none.files()
        );
    }

    let feature = s
        .stage(&["--root", PROG, "--dlopen-feature", "compress"])
        .ok("feature");
    assert!(feature.has(&lib("libreco.so.1")));
    for base in ["libplug", "libalt", "libsugg"] {
        assert!(
            feature.named(base).is_empty(),
            "{base} staged with --dlopen-feature compress: {:?}",
            feature.files()
        );
    }

    if !can_run(&format!("{name} (running the staged program)")) {
        return;
    }
    let (code, out, err) = st.run(&[PROG], &[]);
    assert_eq!(
        (code, out.as_str()),
        (0, "plugin: hello from plugdep\n"),
        "the staged program should dlopen its plugin; stderr:\n{err}"
    );
    // The need: without the note's libraries the same program fails.
    let (code, out, err) = none.run(&[PROG], &[]);
    assert_eq!(code, 3, "stdout:\n{out}\nstderr:\n{err}");
    assert!(err.contains("libplug.so.1"), "stderr:\n{err}");
}

/// The note is found through `PT_NOTE` (no section headers) in objects of
/// every architecture, both byte orders and both classes; the old
/// single-object payload shape is accepted too; a library's note counts
/// like the program's.
#[test]
fn dlopen_note_in_synthetic_objects_of_every_architecture() {
    for &arch in Arch::all() {
        let r = FakeRoot::new();
        r.debian_base(arch, Layout::DEBIAN12);
        let dir = format!("/usr/lib/{}", arch.triplet());
        r.lib(&format!("{dir}/libmod.so.1"), arch, "libmod.so.1", &[]);
        r.lib(&format!("{dir}/libold.so.0"), arch, "libold.so.0", &[]);
        r.lib(
            &format!("{dir}/libhelper.so.2"),
            arch,
            "libhelper.so.2",
            &[],
        );
        r.elf(
            &format!("{dir}/libwithnote.so.1"),
            &ElfSpec {
                arch: Some(arch),
                kind: Kind::Shared,
                soname: Some("libwithnote.so.1".into()),
                needed: vec!["libc.so.6".into()],
                note_dlopen: Some(r#"{"soname":"libold.so.0","priority":"required"}"#.into()),
                no_section_headers: true,
                ..Default::default()
            },
        );
        r.elf(
            "/usr/bin/prog",
            &ElfSpec {
                arch: Some(arch),
                kind: Kind::Exec,
                interp: Some(arch.interp().into()),
                needed: vec!["libwithnote.so.1".into(), "libc.so.6".into()],
                note_dlopen: Some(
                    r#"[{"soname":["libmod.so.1"],"feature":"mod","priority":"required"},{"soname":["libnone.so.9","libhelper.so.2"]}]"#
                        .into(),
                ),
                no_section_headers: true,
                ..Default::default()
            },
        );
        let (code, v, err) = r.json_run(&["--root", "/usr/bin/prog"]);
        let ctx = format!("{}: stderr:\n{err}\nreport:\n{v:#}", arch.name());
        assert_eq!(code, 0, "{ctx}");
        let libdir = format!("/lib/{}", arch.triplet());
        for base in ["libmod.so.1", "libhelper.so.2", "libold.so.0"] {
            let found = with_base(&v, base);
            assert_eq!(found.len(), 1, "{base}: {ctx}");
            assert!(
                found[0].starts_with(&libdir),
                "{base} at {}: {ctx}",
                found[0]
            );
            assert_eq!(
                via_of(&v, &found[0]).as_deref(),
                Some("dlopen-note"),
                "{base}: {ctx}"
            );
        }
        assert!(missing_names(&v).is_empty(), "{ctx}");
    }
}

// ---------------------------------------------------------------------------------------------
// 1b. Library names in read-only data (--dlopen-strings)
// ---------------------------------------------------------------------------------------------

/// `--dlopen-strings` in synthetic objects of every architecture, both
/// byte orders and both classes: a program and a library that have
/// `dlopen` as an undefined symbol get the library names of their
/// read-only data loaded (found by the usual search, `dlopen-string`); a
/// program that spells a name but has no `dlopen` gets nothing.
#[test]
fn dlopen_strings_in_synthetic_objects_of_every_architecture() {
    for &arch in Arch::all() {
        let r = FakeRoot::new();
        r.debian_base(arch, Layout::DEBIAN12);
        let dir = format!("/usr/lib/{}", arch.triplet());
        for lib in ["libmod.so.1", "libinner.so.2", "libunused.so.3"] {
            r.lib(&format!("{dir}/{lib}"), arch, lib, &[]);
        }
        let dlopen = vec![("dlopen".to_string(), None)];
        r.elf(
            &format!("{dir}/libloader.so.1"),
            &ElfSpec {
                arch: Some(arch),
                kind: Kind::Shared,
                soname: Some("libloader.so.1".into()),
                needed: vec!["libc.so.6".into()],
                undefined: dlopen.clone(),
                rodata: vec!["libinner.so.2".into(), "lib%s.so".into()],
                no_section_headers: true,
                ..Default::default()
            },
        );
        let prog = |path: &str, undefined: Vec<(String, Option<(String, String)>)>| {
            r.elf(
                path,
                &ElfSpec {
                    arch: Some(arch),
                    kind: Kind::Exec,
                    interp: Some(arch.interp().into()),
                    needed: vec!["libloader.so.1".into(), "libc.so.6".into()],
                    undefined,
                    rodata: vec!["usage: prog".into(), "libmod.so.1".into()],
                    ..Default::default()
                },
            );
        };
        prog("/usr/bin/prog", dlopen.clone());
        prog("/usr/bin/quiet", Vec::new());
        let libdir = format!("/lib/{}", arch.triplet());
        let run = |root: &str, flag: bool| {
            let mut args = vec!["--root", root];
            if flag {
                args.push("--dlopen-strings");
            }
            let (code, v, err) = r.json_run(&args);
            let ctx = format!("{} {root}: stderr:\n{err}\nreport:\n{v:#}", arch.name());
            assert_eq!(code, 0, "{ctx}");
            assert!(missing_names(&v).is_empty(), "{ctx}");
            (v, ctx)
        };
        let (v, ctx) = run("/usr/bin/prog", true);
        for base in ["libmod.so.1", "libinner.so.2"] {
            let found = with_base(&v, base);
            assert_eq!(found, [format!("{libdir}/{base}")], "{base}: {ctx}");
            assert_eq!(
                via_of(&v, &found[0]).as_deref(),
                Some("dlopen-string"),
                "{base}: {ctx}"
            );
        }
        assert!(with_base(&v, "libunused.so.3").is_empty(), "{ctx}");
        // Without the flag, or without dlopen in the program, only the
        // library's name is loaded, or none.
        let (plain, ctx) = run("/usr/bin/prog", false);
        assert!(with_base(&plain, "libmod.so.1").is_empty(), "{ctx}");
        assert!(with_base(&plain, "libinner.so.2").is_empty(), "{ctx}");
        let (quiet, ctx) = run("/usr/bin/quiet", true);
        assert!(with_base(&quiet, "libmod.so.1").is_empty(), "{ctx}");
        assert_eq!(with_base(&quiet, "libinner.so.2").len(), 1, "{ctx}");
    }
}

/// Loads its plugins by name with no `.note.dlopen`: `libplug.so.1` (found
/// through the program's RUNPATH), `/opt/plugins/libabs.so` (a path) and
/// `$ORIGIN/../opt2/libtok.so` (a path relative to the program);
/// then lets the plugin load its own (`plug_init`); prints the link map.
/// Its read-only data also holds a library name it never loads and a
/// format string.
const STRINGS_PROG_C: &str = "#define _GNU_SOURCE\n#include <dlfcn.h>\n#include <link.h>\n#include <stdio.h>\n\
static int each(struct dl_phdr_info *i, size_t n, void *d) { (void)n; (void)d;\n\
  if (i->dlpi_name && i->dlpi_name[0] == '/') printf(\"%s\\n\", i->dlpi_name); return 0; }\n\
int main(int argc, char **argv) {\n\
  if (argc > 1) { printf(\"lib%s.so\\n\", argv[1]); puts(\"libdecoy.so.2\"); }\n\
  void *p = dlopen(\"libplug.so.1\", RTLD_NOW);\n\
  if (!p) { fprintf(stderr, \"%s\\n\", dlerror()); return 3; }\n\
  if (!dlopen(\"/opt/plugins/libabs.so\", RTLD_NOW)) { fprintf(stderr, \"%s\\n\", dlerror()); return 3; }\n\
  if (!dlopen(\"$ORIGIN/../opt2/libtok.so\", RTLD_NOW)) { fprintf(stderr, \"%s\\n\", dlerror()); return 3; }\n\
  int (*init)(void) = (int (*)(void))dlsym(p, \"plug_init\");\n\
  if (!init || init()) { fprintf(stderr, \"plug_init failed\\n\"); return 4; }\n\
  dl_iterate_phdr(each, 0);\n\
  return 0;\n\
}\n";

/// The plugin: needs `libplugdep.so.1`, and loads `libinner.so.1`, which
/// only its own RUNPATH finds (as `dlopen` from it searches).
const STRINGS_PLUG_C: &str = "#include <dlfcn.h>\n#include <stdio.h>\n\
const char *plugdep_word(void);\n\
int plug_init(void) { if (!plugdep_word()) return 1;\n\
  if (!dlopen(\"libinner.so.1\", RTLD_NOW)) { fprintf(stderr, \"%s\\n\", dlerror()); return 1; }\n\
  return 0; }\n";

/// `--dlopen-strings` against glibc: the program's link map after its
/// `dlopen` calls, run in the root, is exactly what `closure
/// --dlopen-strings` lists (each name loaded as `dlopen` from the object
/// that spells it: the plugin's own RUNPATH for its name, a path as it is,
/// the plugin's `DT_NEEDED`); the name it never loads is a warning and the
/// format string nothing; a program that spells a library name but does
/// not call `dlopen` gets nothing; without the flag the plugins are not
/// listed. Staged with the flag, the program runs in the staged root;
/// staged without it, it does not.
#[test]
fn dlopen_strings_match_what_the_program_loads() {
    let name = "dlopen_strings_match_what_the_program_loads";
    if !glibc_ready(name) {
        return;
    }
    let s = Sys::glibc();
    s.lib(
        "gcc",
        "/app/lib/libplugdep.so.1",
        "libplugdep.so.1",
        "const char *plugdep_word(void) { return \"dep\"; }\n",
        &[],
    );
    s.lib(
        "gcc",
        "/app/inner/libinner.so.1",
        "libinner.so.1",
        "int inner(void) { return 1; }\n",
        &[],
    );
    let mut plug_args = s.link("/app/lib/libplugdep.so.1");
    plug_args.extend([
        "-Wl,--enable-new-dtags".into(),
        "-Wl,-rpath,$ORIGIN:$ORIGIN/../inner".into(),
    ]);
    let plug_args: Vec<&str> = plug_args.iter().map(String::as_str).collect();
    s.lib(
        "gcc",
        "/app/lib/libplug.so.1",
        "libplug.so.1",
        STRINGS_PLUG_C,
        &plug_args,
    );
    s.lib(
        "gcc",
        "/opt/plugins/libabs.so",
        "libabs.so",
        "int abs_fn(void) { return 1; }\n",
        &[],
    );
    s.lib(
        "gcc",
        "/app/opt2/libtok.so",
        "libtok.so",
        "int tok_fn(void) { return 1; }\n",
        &[],
    );
    let rpath = ["-Wl,--enable-new-dtags", "-Wl,-rpath,$ORIGIN/../lib"];
    s.cc("gcc", "/app/bin/strings", &[("c", STRINGS_PROG_C)], &rpath);
    s.cc(
        "gcc",
        "/app/bin/no-dlopen",
        &[(
            "c",
            "#include <stdio.h>\nint main(void) { puts(\"libplug.so.1\"); return 0; }\n",
        )],
        &rpath,
    );
    let plugins = [
        "/app/bin/../lib/libplug.so.1",
        "/app/bin/../lib/libplugdep.so.1",
        "/app/bin/../lib/../inner/libinner.so.1",
        "/opt/plugins/libabs.so",
        "/app/bin/../opt2/libtok.so",
    ];

    let (code, with, err) = s.json(&["--root", "/app/bin/strings", "--dlopen-strings"]);
    assert_eq!(code, 0, "{err}");
    let listed = paths(&with);
    for p in plugins {
        assert!(listed.contains(p), "{p} not in {listed:?}");
    }
    assert_eq!(
        via_of(&with, "/app/bin/../lib/libplug.so.1").as_deref(),
        Some("dlopen-string")
    );
    assert_eq!(
        via_of(&with, "/app/bin/../lib/../inner/libinner.so.1").as_deref(),
        Some("dlopen-string")
    );
    let warned = format!("{}\n{err}", warnings(&with));
    assert!(
        warned.contains(
            "/app/bin/strings: a library name in its read-only data not found \
             (it calls dlopen, perhaps never with this name): libdecoy.so.2"
        ),
        "{warned}"
    );
    assert!(!warned.contains("%s"), "{warned}");
    assert!(
        with["missing"].as_array().is_some_and(Vec::is_empty),
        "{with}"
    );

    // In the tree, exactly the plugins' names are dlopen-string edges (not
    // the names each object's dynamic string table holds: its own
    // DT_NEEDED, SONAME, version files, nor its interpreter).
    let (_, tree, _) = s.closure(&["--root", "/app/bin/strings", "--dlopen-strings"]);
    let edges: BTreeSet<&str> = tree
        .lines()
        .filter(|l| l.contains("dlopen-string"))
        .filter_map(|l| l.split(" => ").next())
        .map(str::trim)
        .collect();
    assert_eq!(
        edges,
        BTreeSet::from([
            "libplug.so.1",
            "/opt/plugins/libabs.so",
            "$ORIGIN/../opt2/libtok.so",
            "libinner.so.1"
        ]),
        "{tree}"
    );

    // `closure verify` follows them with the flag too: the plugins are
    // traced as the program loads them (without it, each on its own, as a
    // library no program loads), and the decoy is a warning.
    let verify = |extra: &[&str]| {
        let mut args = vec!["verify", s.sysroot(), "--format", "list"];
        args.extend_from_slice(extra);
        run_raw(&args)
    };
    let (plain_code, plain_list, plain_err) = verify(&[]);
    let (code, list, err) = verify(&["--dlopen-strings"]);
    assert_eq!(code, plain_code, "{err}");
    assert!(
        err.contains("not found (it calls dlopen, perhaps never with this name): libdecoy.so.2"),
        "{err}"
    );
    assert!(!plain_err.contains("libdecoy"), "{plain_err}");
    for p in plugins {
        assert!(list.lines().any(|l| l == p), "{p} not in:\n{list}");
    }
    for p in &plugins[..3] {
        assert!(
            !plain_list.lines().any(|l| l == *p),
            "{p} in:\n{plain_list}"
        );
    }
    assert!(
        plain_list.lines().any(|l| l == "/app/lib/libplug.so.1"),
        "{plain_list}"
    );

    // `--why` says which edges are run-time loads.
    let (code, why, err) = s.closure(&[
        "--root",
        "/app/bin/strings",
        "--dlopen-strings",
        "--why",
        "libinner.so.1",
    ]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(
        why,
        "/app/bin/strings -> libplug.so.1 (/app/bin/../lib/libplug.so.1, dlopen-string) \
         -> libinner.so.1 (/app/bin/../lib/../inner/libinner.so.1, dlopen-string)\n"
    );
    let (_, why, _) = s.closure(&[
        "--root",
        "/app/bin/strings",
        "--dlopen-strings",
        "--why",
        "libplugdep.so.1",
    ]);
    assert_eq!(
        why,
        "/app/bin/strings -> libplug.so.1 (/app/bin/../lib/libplug.so.1, dlopen-string) \
         -> libplugdep.so.1 (/app/bin/../lib/libplugdep.so.1)\n"
    );

    let (_, without, _) = s.json(&["--root", "/app/bin/strings"]);
    let plain = paths(&without);
    assert!(plugins.iter().all(|p| !plain.contains(*p)), "{plain:?}");
    assert_eq!(
        listed.difference(&plain).cloned().collect::<BTreeSet<_>>(),
        plugins
            .iter()
            .map(|p| p.to_string())
            .collect::<BTreeSet<_>>(),
        "the flag adds exactly the plugins"
    );

    // Spelled, but never passed to dlopen: the program does not call it.
    let (_, nd_with, _) = s.json(&["--root", "/app/bin/no-dlopen", "--dlopen-strings"]);
    let (_, nd_plain, _) = s.json(&["--root", "/app/bin/no-dlopen"]);
    assert_eq!(paths(&nd_with), paths(&nd_plain));

    if !can_run(&format!("{name} (running the program)")) {
        return;
    }
    // The loader's answer: the link map after the dlopen calls.
    let (status, out, err) = run_in_root(s.path(), &["/app/bin/strings"], &[]);
    assert!(status.success(), "{out}{err}");
    let real: BTreeSet<String> = out.lines().map(String::from).collect();
    let mut ours = listed.clone();
    ours.remove("/app/bin/strings");
    assert_eq!(ours, real, "closure --dlopen-strings against the link map");

    let staged = s
        .stage(&["--root", "/app/bin/strings", "--dlopen-strings"])
        .ok("--dlopen-strings");
    let (code, staged_out, err) = staged.run(&["/app/bin/strings"], &[]);
    assert_eq!((code, staged_out.as_str()), (0, out.as_str()), "{err}");
    let bare = s.stage(&["--root", "/app/bin/strings"]).ok("plain");
    let (code, _, err) = bare.run(&["/app/bin/strings"], &[]);
    assert_eq!(code, 3, "{err}");
    assert!(err.contains("libplug.so.1"), "{err}");
}

// ---------------------------------------------------------------------------------------------
// 2. NSS
// ---------------------------------------------------------------------------------------------

/// A fake `mdns4_minimal` module: every host lookup says NOTFOUND (so the
/// `[NOTFOUND=return]` after it ends the lookup without any network).
const MDNS_C: &str = r#"
#include <errno.h>
#include <netdb.h>
#include <stddef.h>
#include <stdint.h>
enum { NOTFOUND = 0 };
int _nss_mdns4_minimal_gethostbyname_r(const char *n, struct hostent *h, char *b, size_t l,
                                       int *e, int *he) {
    *e = ENOENT; *he = HOST_NOT_FOUND; return NOTFOUND;
}
int _nss_mdns4_minimal_gethostbyname2_r(const char *n, int af, struct hostent *h, char *b,
                                        size_t l, int *e, int *he) {
    *e = ENOENT; *he = HOST_NOT_FOUND; return NOTFOUND;
}
int _nss_mdns4_minimal_gethostbyname3_r(const char *n, int af, struct hostent *h, char *b,
                                        size_t l, int *e, int *he, int32_t *ttl, char **c) {
    *e = ENOENT; *he = HOST_NOT_FOUND; return NOTFOUND;
}
int _nss_mdns4_minimal_gethostbyname4_r(const char *n, void **pat, char *b, size_t l, int *e,
                                        int *he, int32_t *ttl) {
    *e = ENOENT; *he = HOST_NOT_FOUND; return NOTFOUND;
}
"#;

const LOOKUP_C: &str = r#"
#include <netdb.h>
#include <stdio.h>
int main(int argc, char **argv) {
    struct hostent *h = gethostbyname(argc > 1 ? argv[1] : "nosuch.invalid");
    puts(h ? "found" : "not found");
    return 0;
}
"#;

const NSSWITCH: &str = "# closure test\n\
passwd:         files\n\
group:          files\n\
shadow:         files\n\
hosts:          files mdns4_minimal [NOTFOUND=return] dns myhostname\n\
networks:       files\n\
protocols:      files\n";

fn nss_fixture() -> Sys {
    let s = Sys::glibc();
    let dir = "/usr/lib/x86_64-linux-gnu";
    for svc in ["files", "dns"] {
        let host = format!("/lib/x86_64-linux-gnu/libnss_{svc}.so.2");
        let in_root = format!("{dir}/libnss_{svc}.so.2");
        if Path::new(&host).is_file() {
            s.copy_host(&host, &in_root);
        } else {
            s.lib(
                "gcc",
                &in_root,
                &format!("libnss_{svc}.so.2"),
                "int nss_stub(void) { return 0; }\n",
                &[],
            );
        }
    }
    s.lib(
        "gcc",
        &format!("{dir}/libnss_mdns4_minimal.so.2"),
        "libnss_mdns4_minimal.so.2",
        MDNS_C,
        &[],
    );
    s.lib(
        "gcc",
        &format!("{dir}/libnss_ldap.so.2"),
        "libnss_ldap.so.2",
        "int _nss_ldap_stub(void) { return 0; }\n",
        &[],
    );
    s.write("/etc/nsswitch.conf", NSSWITCH);
    s.cc("gcc", "/app/bin/lookup", &[("c", LOOKUP_C)], &[]);
    s
}

/// The modules glibc loads for [`NSSWITCH`]: `files` and `dns` are part of
/// libc since 2.34 (the host's, copied into the fixture, is newer), so their
/// stub files are not among them although the fixture has both.
const NSS_NAMED: [&str; 1] = ["/usr/lib/x86_64-linux-gnu/libnss_mdns4_minimal.so.2"];

#[test]
fn nss_stages_exactly_the_named_modules_that_exist() {
    let name = "nss_stages_exactly_the_named_modules_that_exist";
    if !glibc_ready(name) {
        return;
    }
    let s = nss_fixture();
    let st = s
        .stage(&["--root", "/app/bin/lookup", "--base-files"])
        .ok("--base-files");
    assert_eq!(
        st.named("libnss_"),
        NSS_NAMED.iter().map(|p| p.to_string()).collect(),
        "staged: {:?}",
        st.files()
    );
    for p in NSS_NAMED {
        let in_lib = p.replace("/usr/lib/", "/lib/");
        assert!(st.has(&in_lib), "{in_lib} not reachable in the staged root");
    }
    assert!(st.has("/etc/nsswitch.conf"));
    assert!(
        st.stderr.contains("myhostname"),
        "a named service that is absent should be warned about:\n{}",
        st.stderr
    );
    assert!(
        !st.stderr.contains("ldap"),
        "ldap is not named; nothing to say about it:\n{}",
        st.stderr
    );
    // The built-in services need no module, present or not: no warning
    // about them either.
    let bare_libc = nss_fixture();
    for svc in ["files", "dns"] {
        bare_libc.remove(&format!("/usr/lib/x86_64-linux-gnu/libnss_{svc}.so.2"));
    }
    let b = bare_libc
        .stage(&["--root", "/app/bin/lookup", "--base-files"])
        .ok("--base-files without the stubs");
    assert!(
        !b.stderr.contains("libnss_files") && !b.stderr.contains("libnss_dns"),
        "{}",
        b.stderr
    );

    // The same through --include of the file.
    let inc = s
        .stage(&[
            "--root",
            "/app/bin/lookup",
            "--include",
            "/etc/nsswitch.conf",
        ])
        .ok("--include");
    assert_eq!(
        inc.named("libnss_"),
        NSS_NAMED.iter().map(|p| p.to_string()).collect(),
        "staged: {:?}",
        inc.files()
    );
    assert!(inc.stderr.contains("myhostname"), "{}", inc.stderr);

    // nsswitch.conf not staged: no module.
    let bare = s.stage(&["--root", "/app/bin/lookup"]).ok("bare");
    assert!(
        bare.named("libnss_").is_empty(),
        "staged without nsswitch.conf: {:?}",
        bare.files()
    );

    // Without --out there is nothing to stage and no NSS edge.
    let (code, v, err) = s.json(&["--root", "/app/bin/lookup", "--base-files"]);
    assert_eq!(code, 0, "{err}");
    assert!(with_base(&v, "libnss_files.so.2").is_empty(), "{v:#}");

    if !can_run(&format!("{name} (running the staged program)")) {
        return;
    }
    // glibc really loads the named module from the staged root.
    let (code, out, err) = st.run(
        &["/app/bin/lookup", "nosuch.invalid"],
        &[("LD_DEBUG", "files")],
    );
    assert_eq!((code, out.as_str()), (0, "not found\n"), "stderr:\n{err}");
    assert!(
        err.contains("file=libnss_mdns4_minimal.so.2"),
        "glibc should dlopen the mdns4_minimal module:\n{err}"
    );
    assert!(
        !err.contains("cannot open"),
        "a module glibc wants is missing from the staged root:\n{err}"
    );
    // `files` was consulted first, from libc itself.
    assert!(
        !err.contains("libnss_files"),
        "glibc loaded a files module:\n{err}"
    );
    // `dns` too: asked first, it loads no module either (the staged root
    // has no resolv.conf: the query goes to 127.0.0.1, where nothing
    // answers for `.invalid`, and the lookup goes on).
    std::fs::write(
        st.out.join("etc/nsswitch.conf"),
        "hosts: dns mdns4_minimal [NOTFOUND=return] files\n",
    )
    .expect("rewrite the staged nsswitch.conf");
    let (code, out, err) = st.run(
        &["/app/bin/lookup", "nosuch.invalid"],
        &[("LD_DEBUG", "files")],
    );
    assert_eq!((code, out.as_str()), (0, "not found\n"), "stderr:\n{err}");
    assert!(
        err.contains("file=libnss_mdns4_minimal.so.2") && !err.contains("libnss_dns"),
        "glibc should load the mdns4_minimal module and no dns module:\n{err}"
    );
}

// ---------------------------------------------------------------------------------------------
// 3. musl
// ---------------------------------------------------------------------------------------------

const GREET_C: &str = "#include <stdio.h>\nvoid greet(void) { puts(\"hello from greet\"); }\n";
const CALL_GREET_C: &str = "void greet(void);\nint main(void) { greet(); return 0; }\n";

/// musl's own answer: `ld-musl --list PROG` in the root (needs root).
/// Returns (loaded paths, names it could not load, exit code, raw output).
fn musl_list(s: &Sys, prog: &str) -> (BTreeSet<String>, BTreeSet<String>, i32, String) {
    let (status, out, err) = run_in_root(s.path(), &[MUSL_INTERP, "--list", prog], &[]);
    let t = parse_trace(&out);
    let missing: BTreeSet<String> = err
        .lines()
        .filter_map(|l| l.strip_prefix("Error loading shared library "))
        .filter_map(|rest| rest.split(':').next())
        .map(str::to_string)
        .collect();
    (
        t.loaded,
        missing,
        status.code().unwrap_or(-1),
        format!("--- stdout ---\n{out}--- stderr ---\n{err}"),
    )
}

/// Asserts closure's loaded and missing sets for `prog` equal musl's, and
/// `--format ldd` prints musl's lines.
fn same_as_musl(s: &Sys, prog: &str) {
    let run = run_closure(s.path(), &[prog], &[]);
    let (loaded, missing, code, raw) = musl_list(s, prog);
    let (_, out, _) = run_in_root(s.path(), &[MUSL_INTERP, "--list", prog], &[]);
    assert_eq!(
        closure_ldd_lines(s.path(), &[prog], &[])
            .remove(prog)
            .unwrap_or_default(),
        ldd_lines(&out),
        "{prog}: `--format ldd` (left) differs from musl's lines (right)\nmusl:\n{raw}"
    );
    assert_eq!(
        run.loaded(),
        loaded,
        "{prog}: loaded paths differ (left closure, right musl)\nmusl:\n{raw}\nclosure:\n{}",
        run.stdout
    );
    assert_eq!(
        run.missing_names(),
        missing,
        "{prog}: missing names differ (left closure, right musl)\nmusl:\n{raw}\nclosure:\n{}",
        run.stdout
    );
    assert_eq!(
        run.status,
        if code == 0 { 0 } else { 1 },
        "{prog}: exit codes (musl {code}) disagree\nmusl:\n{raw}\nclosure:\n{}\n{}",
        run.stdout,
        run.stderr
    );
}

/// musl answers `libc.so`, `libc.so.6`, `libm.so`, `libpthread.so.0`, …
/// with its own loader and lists the first name of each family only (it
/// remembers which family it reported). `--format ldd` must print exactly
/// musl's lines, in its order, for a program that asks for several.
#[test]
fn musl_ldd_lines_name_each_reserved_family_once() {
    let name = "musl_ldd_lines_name_each_reserved_family_once";
    if !musl_ready(name) || !can_run(name) {
        return;
    }
    let s = Sys::musl();
    s.lib(
        "musl-gcc",
        "/app/lib/libgreet.so.1",
        "libgreet.so.1",
        GREET_C,
        &[],
    );
    let mut args = s.link("/app/lib/libgreet.so.1");
    args.push("-Wl,-rpath,/app/lib".into());
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    s.cc("musl-gcc", "/app/bin/fam", &[("c", CALL_GREET_C)], &args);
    let status = std::process::Command::new("patchelf")
        .args(["--add-needed", "libm.so", "--add-needed", "libc.so.6"])
        .args(["--add-needed", "libpthread.so.0"])
        .arg(s.host("/app/bin/fam"))
        .status()
        .expect("run patchelf");
    assert!(status.success(), "patchelf failed");
    let (_, out, err) = run_in_root(s.path(), &[MUSL_INTERP, "--list", "/app/bin/fam"], &[]);
    let lines = ldd_lines(&out);
    // The case tests what it says: three families, one of them asked twice.
    let self_lines = lines.iter().filter(|l| l.ends_with(MUSL_INTERP)).count();
    assert_eq!(self_lines, 4, "musl:\n{out}{err}");
    same_as_musl(&s, "/app/bin/fam");
}

/// musl, too, maps the program's own file again when a name finds it
/// (`load_library` compares inodes from the object after the program,
/// and musl refuses no executable): a PIE that needs itself through a
/// link runs, and `ld-musl --list` lists the file as a library, as
/// `closure` does.
#[test]
fn musl_maps_the_program_file_again_when_a_name_finds_it() {
    let name = "musl_maps_the_program_file_again_when_a_name_finds_it";
    if !musl_ready(name) || !can_run(name) {
        return;
    }
    let s = Sys::musl();
    s.cc(
        "musl-gcc",
        "/app/bin/self",
        &[("c", "int main(void) { return 0; }\n")],
        &["-fPIE", "-pie"],
    );
    // (One call each: this patchelf, given both, points the RUNPATH at the
    // new name's string.)
    for args in [["--add-needed", "libself.so"], ["--set-rpath", "/app/bin"]] {
        let status = std::process::Command::new("patchelf")
            .args(args)
            .arg(s.host("/app/bin/self"))
            .status()
            .expect("run patchelf");
        assert!(status.success(), "patchelf failed");
    }
    std::os::unix::fs::symlink("self", s.host("/app/bin/libself.so")).expect("symlink");
    let (status, _, err) = run_in_root(s.path(), &["/app/bin/self"], &[]);
    assert!(status.success(), "{name}: the program did not run: {err}");
    let (_, out, _) = run_in_root(s.path(), &[MUSL_INTERP, "--list", "/app/bin/self"], &[]);
    assert!(
        ldd_lines(&out).contains(&"libself.so => /app/bin/libself.so".to_string()),
        "{name}: musl:\n{out}"
    );
    same_as_musl(&s, "/app/bin/self");
}

#[test]
fn musl_program_with_runpath_traces_stages_and_runs() {
    let name = "musl_program_with_runpath_traces_stages_and_runs";
    if !musl_ready(name) {
        return;
    }
    let s = Sys::musl();
    s.lib(
        "musl-gcc",
        "/app/lib/libgreet.so.1",
        "libgreet.so.1",
        GREET_C,
        &[],
    );
    let mut args = s.link("/app/lib/libgreet.so.1");
    args.extend([
        "-Wl,--enable-new-dtags".into(),
        "-Wl,-rpath,$ORIGIN/../lib".into(),
    ]);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    s.cc("musl-gcc", "/app/bin/hello", &[("c", CALL_GREET_C)], &args);

    let (code, v, err) = s.json(&["--root", "/app/bin/hello"]);
    assert_eq!(code, 0, "stderr:\n{err}\nreport:\n{v:#}");
    assert_eq!(
        paths(&v),
        [
            "/app/bin/hello",
            MUSL_INTERP,
            "/app/bin/../lib/libgreet.so.1"
        ]
        .into_iter()
        .map(String::from)
        .collect(),
        "libc.so is the loader itself; report:\n{v:#}"
    );
    assert_eq!(via_of(&v, MUSL_INTERP).as_deref(), Some("interpreter"));
    assert_eq!(
        via_of(&v, "/app/bin/../lib/libgreet.so.1").as_deref(),
        Some("runpath")
    );
    let needed = &object(&v, "/app/bin/hello").expect("root")["needed"];
    assert!(
        needed
            .as_array()
            .is_some_and(|a| a.iter().any(|n| n.as_str() == Some("libc.so"))),
        "musl-gcc programs need libc.so: {needed}"
    );
    assert!(missing_names(&v).is_empty(), "{v:#}");
    assert_eq!(v["missing_versions"], Value::Array(vec![]), "{v:#}");
    // Even with --check-symbols there are never missing versions on musl.
    let (code, v, err) = s.json(&["--root", "/app/bin/hello", "--check-symbols"]);
    assert_eq!(code, 0, "stderr:\n{err}");
    assert_eq!(v["missing_versions"], Value::Array(vec![]), "{v:#}");

    let st = s.stage(&["--root", "/app/bin/hello"]).ok("musl hello");
    assert!(st.has("/app/lib/libgreet.so.1"), "{:?}", st.files());
    assert!(st.has(MUSL_INTERP), "{:?}", st.files());

    // musl has no NSS: a staged nsswitch.conf brings no module along, even
    // one the search path would find.
    s.write("/etc/nsswitch.conf", NSSWITCH);
    s.lib(
        "musl-gcc",
        "/usr/lib/x86_64-linux-musl/libnss_files.so.2",
        "libnss_files.so.2",
        GREET_C,
        &[],
    );
    let nss = s
        .stage(&["--root", "/app/bin/hello", "--base-files"])
        .ok("musl --base-files");
    assert!(nss.has("/etc/nsswitch.conf"), "{:?}", nss.files());
    assert!(nss.named("libnss_").is_empty(), "{:?}", nss.files());

    if !can_run(&format!("{name} (musl loader and staged run)")) {
        return;
    }
    same_as_musl(&s, "/app/bin/hello");
    let (code, out, err) = st.run(&["/app/bin/hello"], &[]);
    assert_eq!(
        (code, out.as_str()),
        (0, "hello from greet\n"),
        "stderr:\n{err}"
    );
}

#[test]
fn musl_search_path_file_and_default_path() {
    let name = "musl_search_path_file_and_default_path";
    if !musl_ready(name) {
        return;
    }
    let s = Sys::musl();
    s.write(
        MUSL_PATH_FILE,
        "/lib/x86_64-linux-musl\n/usr/lib/x86_64-linux-musl:/opt/extra/lib\n",
    );
    s.lib(
        "musl-gcc",
        "/opt/extra/lib/libextra.so.1",
        "libextra.so.1",
        GREET_C,
        &[],
    );
    s.lib(
        "musl-gcc",
        "/usr/local/lib/libdflt.so.1",
        "libdflt.so.1",
        GREET_C,
        &[],
    );
    let link_extra = s.link("/opt/extra/lib/libextra.so.1");
    let link_extra: Vec<&str> = link_extra.iter().map(String::as_str).collect();
    s.cc(
        "musl-gcc",
        "/app/bin/extra",
        &[("c", CALL_GREET_C)],
        &link_extra,
    );
    let link_dflt = s.link("/usr/local/lib/libdflt.so.1");
    let link_dflt: Vec<&str> = link_dflt.iter().map(String::as_str).collect();
    s.cc(
        "musl-gcc",
        "/app/bin/dflt",
        &[("c", CALL_GREET_C)],
        &link_dflt,
    );
    let running = can_run(&format!("{name} (comparison with the musl loader)"));

    // 1. The path file lists /opt/extra/lib (after a newline and a ':').
    let (code, v, err) = s.json(&["--root", "/app/bin/extra"]);
    assert_eq!(code, 0, "stderr:\n{err}\n{v:#}");
    assert_eq!(
        via_of(&v, "/opt/extra/lib/libextra.so.1").as_deref(),
        Some("default"),
        "{v:#}"
    );
    // It does not list /usr/local/lib: libdflt is missing.
    let (code, v, _) = s.json(&["--root", "/app/bin/dflt"]);
    assert_eq!(code, 1, "{v:#}");
    assert_eq!(missing_names(&v), ["libdflt.so.1"], "{v:#}");
    let searched: Vec<&str> = v["missing"][0]["searched"]
        .as_array()
        .map(|a| a.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default();
    assert_eq!(
        searched,
        [
            "/lib/x86_64-linux-musl",
            "/usr/lib/x86_64-linux-musl",
            "/opt/extra/lib"
        ],
        "{v:#}"
    );
    if running {
        same_as_musl(&s, "/app/bin/extra");
        same_as_musl(&s, "/app/bin/dflt");
    }

    // The library is staged (whether the staged program finds it, which
    // closure's own check of the staged root asks too:
    // `musl_staged_program_finds_a_library_of_the_path_file`).
    let st = s
        .stage_unverified(&["--root", "/app/bin/extra"])
        .ok("extra");
    assert!(st.has("/opt/extra/lib/libextra.so.1"), "{:?}", st.files());

    // 2. No path file: the default /lib:/usr/local/lib:/usr/lib.
    s.remove(MUSL_PATH_FILE);
    let (code, v, err) = s.json(&["--root", "/app/bin/dflt"]);
    assert_eq!(code, 0, "stderr:\n{err}\n{v:#}");
    assert_eq!(
        via_of(&v, "/usr/local/lib/libdflt.so.1").as_deref(),
        Some("default"),
        "{v:#}"
    );
    let (code, v, _) = s.json(&["--root", "/app/bin/extra"]);
    assert_eq!(code, 1, "{v:#}");
    let searched: Vec<&str> = v["missing"][0]["searched"]
        .as_array()
        .map(|a| a.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default();
    assert_eq!(searched, ["/lib", "/usr/local/lib", "/usr/lib"], "{v:#}");
    if running {
        same_as_musl(&s, "/app/bin/dflt");
        same_as_musl(&s, "/app/bin/extra");
    }

    // 3. An empty path file: an empty search path.
    s.write(MUSL_PATH_FILE, "");
    let (code, v, _) = s.json(&["--root", "/app/bin/dflt"]);
    assert_eq!(code, 1, "{v:#}");
    assert_eq!(missing_names(&v), ["libdflt.so.1"], "{v:#}");
    if running {
        same_as_musl(&s, "/app/bin/dflt");
    }
}

#[test]
fn musl_inherits_runpath_glibc_does_not() {
    let name = "musl_inherits_runpath_glibc_does_not";
    // The same layout, built once for each C library: the program has
    // RUNPATH $ORIGIN/../lib and needs libouter, which needs libinner; both
    // live in /app/lib and neither library has a search path.
    fn build(s: &Sys, cc: &str) {
        s.lib(cc, "/app/lib/libinner.so.1", "libinner.so.1", GREET_C, &[]);
        let inner = s.link("/app/lib/libinner.so.1");
        let inner: Vec<&str> = inner.iter().map(String::as_str).collect();
        s.lib(
            cc,
            "/app/lib/libouter.so.1",
            "libouter.so.1",
            "void greet(void);\nvoid outer(void) { greet(); }\n",
            &inner,
        );
        let mut args = s.link("/app/lib/libouter.so.1");
        args.extend([
            "-Wl,--enable-new-dtags".into(),
            "-Wl,-rpath,$ORIGIN/../lib".into(),
            "-Wl,--allow-shlib-undefined".into(),
        ]);
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        s.cc(
            cc,
            "/app/bin/nested",
            &[(
                "c",
                "void outer(void);\nint main(void) { outer(); return 0; }\n",
            )],
            &args,
        );
    }
    const INNER: &str = "/app/bin/../lib/libinner.so.1";
    if musl_ready(name) {
        let s = Sys::musl();
        build(&s, "musl-gcc");
        let (code, v, err) = s.json(&["--root", "/app/bin/nested"]);
        assert_eq!(code, 0, "stderr:\n{err}\n{v:#}");
        assert_eq!(via_of(&v, INNER).as_deref(), Some("runpath"), "{v:#}");
        if can_run(&format!("{name} (musl loader and staged run)")) {
            same_as_musl(&s, "/app/bin/nested");
            let st = s.stage(&["--root", "/app/bin/nested"]).ok("nested");
            let (code, out, err) = st.run(&["/app/bin/nested"], &[]);
            assert_eq!(
                (code, out.as_str()),
                (0, "hello from greet\n"),
                "stderr:\n{err}"
            );
        }
    }
    if glibc_ready(name) {
        let s = Sys::glibc();
        build(&s, "gcc");
        let (code, v, err) = s.json(&["--root", "/app/bin/nested"]);
        assert_eq!(
            code, 1,
            "glibc does not inherit RUNPATH; stderr:\n{err}\n{v:#}"
        );
        assert_eq!(missing_names(&v), ["libinner.so.1"], "{v:#}");
    }
}

// ---------------------------------------------------------------------------------------------
// 4. libgcc_s
// ---------------------------------------------------------------------------------------------

const CANCEL_C: &str = r#"
#include <pthread.h>
#include <stdio.h>
#include <unistd.h>
static void *worker(void *arg) { for (;;) pause(); return arg; }
int main(void) {
    pthread_t t;
    void *res;
    if (pthread_create(&t, NULL, worker, NULL) != 0) return 2;
    if (pthread_cancel(t) != 0) return 3;
    if (pthread_join(t, &res) != 0) return 4;
    puts(res == PTHREAD_CANCELED ? "canceled" : "not canceled");
    return 0;
}
"#;

const HOST_LIBGCC: &str = "/lib/x86_64-linux-gnu/libgcc_s.so.1";
const LIBGCC: &str = "/lib/x86_64-linux-gnu/libgcc_s.so.1";

/// A glibc root with this machine's libgcc_s in it (`None`, saying why, when the test cannot
/// run here).
fn glibc_with_libgcc_s(name: &str) -> Option<Sys> {
    if !glibc_ready(name) {
        return None;
    }
    if !Path::new(HOST_LIBGCC).is_file() {
        println!("skipping {name}: no {HOST_LIBGCC} on this host");
        return None;
    }
    let s = Sys::glibc();
    s.copy_host(HOST_LIBGCC, "/usr/lib/x86_64-linux-gnu/libgcc_s.so.1");
    Some(s)
}

#[test]
fn libgcc_s_for_pthread_cancel_only() {
    let name = "libgcc_s_for_pthread_cancel_only";
    let Some(s) = glibc_with_libgcc_s(name) else {
        return;
    };
    s.cc("gcc", "/app/bin/cancel", &[("c", CANCEL_C)], &["-pthread"]);
    s.cc(
        "gcc",
        "/app/bin/plain",
        &[(
            "c",
            "#include <stdio.h>\nint main(void) { puts(\"plain\"); return 0; }\n",
        )],
        &["-pthread"],
    );

    let (code, v, err) = s.json(&["--root", "/app/bin/cancel"]);
    assert_eq!(code, 0, "stderr:\n{err}\n{v:#}");
    assert_eq!(via_of(&v, LIBGCC).as_deref(), Some("libgcc_s"), "{v:#}");
    // The report says why.
    let (_, tree, _) = s.closure(&["--root", "/app/bin/cancel"]);
    let line = tree_line(&tree, "libgcc_s.so.1").unwrap_or_else(|| panic!("no edge:\n{tree}"));
    assert!(line.contains("pthread_cancel"), "{line:?}");

    let (code, v, err) = s.json(&["--root", "/app/bin/plain"]);
    assert_eq!(code, 0, "stderr:\n{err}");
    assert!(
        with_base(&v, "libgcc_s.so.1").is_empty(),
        "a program that does not cancel threads does not need libgcc_s: {v:#}"
    );

    let st = s.stage(&["--root", "/app/bin/cancel"]).ok("cancel");
    assert!(st.has(LIBGCC), "{:?}", st.files());
    let plain = s.stage(&["--root", "/app/bin/plain"]).ok("plain");
    assert!(plain.named("libgcc_s").is_empty(), "{:?}", plain.files());

    if !can_run(&format!("{name} (running the staged program)")) {
        return;
    }
    let (code, out, err) = st.run(&["/app/bin/cancel"], &[]);
    assert_eq!((code, out.as_str()), (0, "canceled\n"), "stderr:\n{err}");
    // The need: without it glibc aborts.
    fs::remove_file(resolve_in_root(&st.out, LIBGCC)).expect("rm staged libgcc_s");
    let (code, _, err) = st.run(&["/app/bin/cancel"], &[]);
    assert_ne!(code, 0, "stderr:\n{err}");
    assert!(
        err.contains("libgcc_s.so.1 must be installed"),
        "stderr:\n{err}"
    );
}

/// A program with no start files, so its `.dynsym` holds only undefined symbols: GNU ld then
/// gives its GNU hash table `symoffset` 1 and no chains, and the table no longer says how many
/// symbols follow. It calls `backtrace`, for which glibc dlopens libgcc_s: 1 when the
/// backtrace has frames, 0 when it could not unwind.
const BACKTRACE_START_C: &str = r#"
#include <execinfo.h>
#include <unistd.h>
__attribute__((force_align_arg_pointer)) void _start(void) {
    __asm__ volatile (".cfi_undefined rip"); /* the outermost frame, as crt1's _start */
    void *frames[8];
    char c = backtrace(frames, 8) > 0 ? '1' : '0';
    write(1, &c, 1);
    _exit(0);
}
"#;

#[test]
fn libgcc_s_for_an_object_that_hashes_no_symbol() {
    // Until the fortieth stop closure read no symbol of such a program (it took the count
    // from the hash table) and left libgcc_s out: the staged program could not unwind.
    let name = "libgcc_s_for_an_object_that_hashes_no_symbol";
    let Some(s) = glibc_with_libgcc_s(name) else {
        return;
    };
    s.cc(
        "gcc",
        "/app/bin/bt",
        &[("c", BACKTRACE_START_C)],
        &["-nostartfiles", "-O1"],
    );
    let syms = Command::new("readelf")
        .args(["--dyn-syms", "-W"])
        .arg(s.host("/app/bin/bt"))
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).into_owned())
        .unwrap_or_default();
    assert!(
        syms.contains("backtrace") && !syms.lines().skip(4).any(|l| !l.contains(" UND ")),
        "{name}: scenario broken: every dynamic symbol should be undefined:\n{syms}"
    );
    let (code, v, err) = s.json(&["--root", "/app/bin/bt"]);
    assert_eq!(code, 0, "stderr:\n{err}\n{v:#}");
    assert_eq!(via_of(&v, LIBGCC).as_deref(), Some("libgcc_s"), "{v:#}");
    let st = s.stage(&["--root", "/app/bin/bt"]).ok("bt");
    assert!(st.has(LIBGCC), "{:?}", st.files());
    if !can_run(&format!("{name} (running the staged program)")) {
        return;
    }
    let (code, out, err) = st.run(&["/app/bin/bt"], &[]);
    assert_eq!((code, out.as_str()), (0, "1"), "stderr:\n{err}");
    // The need: without it glibc cannot unwind.
    fs::remove_file(resolve_in_root(&st.out, LIBGCC)).expect("rm staged libgcc_s");
    let (code, out, err) = st.run(&["/app/bin/bt"], &[]);
    assert_eq!((code, out.as_str()), (0, "0"), "stderr:\n{err}");
}

// ---------------------------------------------------------------------------------------------
// 5. gconv
// ---------------------------------------------------------------------------------------------

const ICONV_C: &str = r#"
#include <errno.h>
#include <iconv.h>
#include <stdio.h>
#include <string.h>
int main(void) {
    iconv_t cd = iconv_open("EUC-JP", "UTF-8");
    if (cd == (iconv_t)-1) { printf("FAIL iconv_open: %s\n", strerror(errno)); return 1; }
    char in[] = "\xe6\x97\xa5\xe6\x9c\xac";
    unsigned char out[16];
    char *ip = in, *op = (char *)out;
    size_t il = strlen(in), ol = sizeof out;
    if (iconv(cd, &ip, &il, &op, &ol) == (size_t)-1) {
        printf("FAIL iconv: %s\n", strerror(errno));
        return 2;
    }
    printf("OK");
    for (unsigned char *p = out; p < (unsigned char *)op; p++) printf(" %02x", *p);
    printf("\n");
    return 0;
}
"#;

/// A root with part of the host's gconv directory. None when the host
/// has none of it.
fn gconv_fixture() -> Option<Sys> {
    let host = Path::new(HOST_GCONV);
    for f in ["gconv-modules", "EUC-JP.so", "libJIS.so", "ISO8859-1.so"] {
        if !host.join(f).is_file() {
            return None;
        }
    }
    let s = Sys::glibc();
    for f in [
        "gconv-modules",
        "gconv-modules.cache",
        "EUC-JP.so",
        "libJIS.so",
        "ISO8859-1.so",
    ] {
        let h = host.join(f);
        if h.is_file() {
            s.copy_host(h.to_str().expect("UTF-8"), &format!("{GCONV}/{f}"));
        }
    }
    if let Ok(rd) = fs::read_dir(host.join("gconv-modules.d")) {
        for e in rd.flatten() {
            let n = e.file_name().to_string_lossy().into_owned();
            if n.ends_with(".conf") {
                s.copy_host(
                    e.path().to_str().expect("UTF-8"),
                    &format!("{GCONV}/gconv-modules.d/{n}"),
                );
            }
        }
    }
    s.cc("gcc", "/app/bin/iconv", &[("c", ICONV_C)], &[]);
    Some(s)
}

#[test]
fn gconv_modules_for_iconv() {
    let name = "gconv_modules_for_iconv";
    if !glibc_ready(name) {
        return;
    }
    let Some(s) = gconv_fixture() else {
        println!("skipping {name}: {HOST_GCONV} lacks gconv-modules, EUC-JP.so, libJIS.so or ISO8859-1.so");
        return;
    };
    let config: BTreeSet<String> = {
        let mut c = BTreeSet::new();
        c.insert(format!("{GCONV}/gconv-modules"));
        if s.host(&format!("{GCONV}/gconv-modules.cache")).is_file() {
            c.insert(format!("{GCONV}/gconv-modules.cache"));
        }
        if let Ok(rd) = fs::read_dir(s.host(&format!("{GCONV}/gconv-modules.d"))) {
            for e in rd.flatten() {
                c.insert(format!(
                    "{GCONV}/gconv-modules.d/{}",
                    e.file_name().to_string_lossy()
                ));
            }
        }
        c
    };
    let gconv_files = |st: &Staged| -> BTreeSet<String> {
        st.files()
            .into_iter()
            .filter(|p| p.starts_with(&format!("{GCONV}/")))
            .collect()
    };
    let with = |extra: &[&str]| -> BTreeSet<String> {
        config
            .iter()
            .cloned()
            .chain(extra.iter().map(|f| format!("{GCONV}/{f}")))
            .collect()
    };

    // The report: the module by full path, its helper through RUNPATH $ORIGIN.
    let (code, v, err) = s.json(&["--root", "/app/bin/iconv", "--gconv", "EUC-JP"]);
    assert_eq!(code, 0, "stderr:\n{err}\n{v:#}");
    assert_eq!(
        via_of(&v, &format!("{GCONV}/EUC-JP.so")).as_deref(),
        Some("gconv"),
        "{v:#}"
    );
    assert_eq!(
        via_of(&v, &format!("{GCONV}/libJIS.so")).as_deref(),
        Some("runpath"),
        "{v:#}"
    );
    assert!(with_base(&v, "ISO8859-1.so").is_empty(), "{v:#}");
    // An alias names the same module.
    let (code, v, err) = s.json(&["--root", "/app/bin/iconv", "--gconv", "eucjp"]);
    assert_eq!(code, 0, "stderr:\n{err}");
    assert_eq!(
        with_base(&v, "EUC-JP.so"),
        [format!("{GCONV}/EUC-JP.so")],
        "{v:#}"
    );
    // A character set no module converts is a warning.
    let (code, v, err) = s.json(&["--root", "/app/bin/iconv", "--gconv", "NO-SUCH-CHARSET"]);
    assert_eq!(code, 0, "stderr:\n{err}");
    assert!(err.contains("NO-SUCH-CHARSET"), "stderr:\n{err}");
    assert!(with_base(&v, "EUC-JP.so").is_empty(), "{v:#}");

    let st = s
        .stage(&["--root", "/app/bin/iconv", "--gconv", "EUC-JP"])
        .ok("--gconv EUC-JP");
    assert_eq!(gconv_files(&st), with(&["EUC-JP.so", "libJIS.so"]));

    let all = s
        .stage(&["--root", "/app/bin/iconv", "--gconv", "all"])
        .ok("--gconv all");
    assert_eq!(
        gconv_files(&all),
        with(&["EUC-JP.so", "ISO8859-1.so", "libJIS.so"])
    );

    let none = s.stage(&["--root", "/app/bin/iconv"]).ok("no --gconv");
    assert!(gconv_files(&none).is_empty(), "{:?}", none.files());

    if !can_run(&format!("{name} (running the staged program)")) {
        return;
    }
    let (code, out, err) = st.run(&["/app/bin/iconv"], &[]);
    assert_eq!(
        (code, out.as_str()),
        (0, "OK c6 fc cb dc\n"),
        "stderr:\n{err}"
    );
    // The need: without --gconv iconv_open fails.
    let (code, out, err) = none.run(&["/app/bin/iconv"], &[]);
    assert_eq!(code, 1, "stdout:\n{out}\nstderr:\n{err}");
    assert!(out.starts_with("FAIL iconv_open"), "{out}");
}

// ---------------------------------------------------------------------------------------------
// closure's own check of the staged root
// ---------------------------------------------------------------------------------------------

/// The staged root of a musl program whose library was found only through
/// `/etc/ld-musl-x86_64.path` must let musl find it again: the path file
/// (or an equivalent) has to be staged too.
#[test]
fn musl_staged_program_finds_a_library_of_the_path_file() {
    let name = "musl_staged_program_finds_a_library_of_the_path_file";
    if !musl_ready(name) {
        return;
    }
    let s = Sys::musl();
    s.write(
        MUSL_PATH_FILE,
        "/lib/x86_64-linux-musl\n/usr/lib/x86_64-linux-musl\n/opt/extra/lib\n",
    );
    s.lib(
        "musl-gcc",
        "/opt/extra/lib/libextra.so.1",
        "libextra.so.1",
        GREET_C,
        &[],
    );
    let link = s.link("/opt/extra/lib/libextra.so.1");
    let link: Vec<&str> = link.iter().map(String::as_str).collect();
    s.cc("musl-gcc", "/app/bin/extra", &[("c", CALL_GREET_C)], &link);
    let st = s.stage(&["--root", "/app/bin/extra"]);
    assert_eq!(
        st.code, 0,
        "staging a musl program whose library comes from {MUSL_PATH_FILE}:\nstderr:\n{}\nstaged: {:?}",
        st.stderr,
        st.files()
    );
    if !can_run(&format!("{name} (running the staged program)")) {
        return;
    }
    let (code, out, err) = st.run(&["/app/bin/extra"], &[]);
    assert_eq!(
        (code, out.as_str()),
        (0, "hello from greet\n"),
        "staged: {:?}\nstderr:\n{err}",
        st.files()
    );
}

/// `--out` checks the staged root by tracing it again; that trace must
/// include the same run-time loads (dlopen notes, NSS, libgcc_s, gconv) as
/// the trace of the sysroot, or every staging with one of them fails.
#[test]
fn staging_verify_accepts_run_time_loads() {
    let name = "staging_verify_accepts_run_time_loads";
    if !glibc_ready(name) {
        return;
    }
    let mut failures = Vec::new();
    let mut check = |what: &str, s: &Sys, args: &[&str]| {
        let st = s.stage(args);
        if st.code != 0 {
            failures.push(format!("{what} {args:?}: exit {}\n{}", st.code, st.stderr));
        }
    };
    let d = dlopen_fixture();
    check(".note.dlopen", &d, &["--root", PROG]);
    let n = nss_fixture();
    check("NSS", &n, &["--root", "/app/bin/lookup", "--base-files"]);
    if Path::new(HOST_LIBGCC).is_file() {
        let g = Sys::glibc();
        g.copy_host(HOST_LIBGCC, "/usr/lib/x86_64-linux-gnu/libgcc_s.so.1");
        g.cc("gcc", "/app/bin/cancel", &[("c", CANCEL_C)], &["-pthread"]);
        check("libgcc_s", &g, &["--root", "/app/bin/cancel"]);
    }
    if let Some(c) = gconv_fixture() {
        check(
            "gconv",
            &c,
            &["--root", "/app/bin/iconv", "--gconv", "EUC-JP"],
        );
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// Prints the path of every object in the link map (musl fills
/// `dlpi_name` with the path each library was opened by).
const LIST_MAP_C: &str = "#define _GNU_SOURCE\n#include <link.h>\n#include <stdio.h>\n\
static int each(struct dl_phdr_info *i, size_t n, void *d) { (void)n; (void)d;\n\
  if (i->dlpi_name && i->dlpi_name[0] == '/') printf(\"%s\\n\", i->dlpi_name); return 0; }\n\
int main(void) { dl_iterate_phdr(each, 0); return 0; }\n";

/// Drops to uid/gid 1000 and execs its arguments (a setuid program it
/// runs is then in secure mode).
const RUNAS_C: &str = "#define _GNU_SOURCE\n#include <grp.h>\n#include <stdio.h>\n#include <unistd.h>\n\
int main(int c, char **v) { if (c < 2) return 97;\n\
  if (setgroups(0, 0) || setresgid(1000, 1000, 1000) || setresuid(1000, 1000, 1000)) { perror(\"runas\"); return 99; }\n\
  execv(v[1], v + 1); perror(\"execv\"); return 98; }\n";

/// musl in secure mode against musl itself: setuid-root programs run by uid
/// 1000 (`--list` is no help there: musl traces only as `ld-musl --list`,
/// which is not secure). musl drops the program's own search path when it
/// holds `$ORIGIN` (its path came from the caller of execve), and a
/// library's when the library was opened by a relative path, keeps other
/// libraries', and reads neither `LD_LIBRARY_PATH` nor `LD_PRELOAD` (not
/// even a set-user-ID library by name, which glibc would preload). `closure --secure` must
/// say what the program loads or which library stops it, and plain
/// `closure` must say otherwise where the rule applies.
#[test]
fn musl_secure_mode_matches_musl() {
    use std::os::unix::fs::PermissionsExt;
    let name = "musl_secure_mode_matches_musl";
    if !musl_ready(name) || !can_run(name) {
        return;
    }
    let s = Sys::musl();
    s.cc("musl-gcc", "/runas", &[("c", RUNAS_C)], &["-static"]);
    s.lib("musl-gcc", "/app/lib2/libb.so.1", "libb.so.1", GREET_C, &[]);
    let mut a = s.link("/app/lib2/libb.so.1");
    a.extend([
        "-Wl,--enable-new-dtags".into(),
        "-Wl,-rpath,$ORIGIN/../lib2".into(),
    ]);
    let a: Vec<&str> = a.iter().map(String::as_str).collect();
    s.lib(
        "musl-gcc",
        "/app/lib/liba.so.1",
        "liba.so.1",
        "int a(void) { return 1; }\n",
        &a,
    );
    s.lib(
        "musl-gcc",
        "/app/lp/libd.so.1",
        "libd.so.1",
        "int d(void) { return 1; }\n",
        &[],
    );
    let program = |prog: &str, lib: &str, rpath: Option<&str>| {
        let mut args = s.link(lib);
        if let Some(r) = rpath {
            args.extend(["-Wl,--enable-new-dtags".into(), format!("-Wl,-rpath,{r}")]);
        }
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        s.cc("musl-gcc", prog, &[("c", LIST_MAP_C)], &args);
        fs::set_permissions(s.host(prog), fs::Permissions::from_mode(0o4755)).unwrap();
    };
    program(
        "/app/bin/origin",
        "/app/lib/liba.so.1",
        Some("$ORIGIN/../lib"),
    );
    program("/app/bin/fixed", "/app/lib/liba.so.1", Some("/app/lib"));
    program("/app/bin/lp", "/app/lp/libd.so.1", None);
    // liba opened by a relative path (from `/`, the working directory):
    // its own $ORIGIN list is dropped too.
    program("/app/bin/rel", "/app/lib/liba.so.1", Some("app/lib"));
    // Preloads: one by path, and one by name that is set-user-ID root in a
    // directory of musl's path file (glibc's secure mode would load that
    // one).
    program("/app/bin/pre", "/app/lib/liba.so.1", Some("/app/lib"));
    s.lib(
        "musl-gcc",
        "/usr/lib/x86_64-linux-musl/libsu.so.1",
        "libsu.so.1",
        "int su(void) { return 1; }\n",
        &[],
    );
    fs::set_permissions(
        s.host("/usr/lib/x86_64-linux-musl/libsu.so.1"),
        fs::Permissions::from_mode(0o4755),
    )
    .unwrap();

    // (what it loaded, or the library that stopped it)
    let musl = |prog: &str, env: &[(&str, &str)]| -> (BTreeSet<String>, BTreeSet<String>) {
        let (status, out, err) = run_in_root(s.path(), &["/runas", prog], env);
        if status.success() {
            // musl names the program too; closure's loaded set does not.
            let loaded = out.lines().filter(|l| *l != prog).map(String::from);
            return (loaded.collect(), BTreeSet::new());
        }
        let missing: BTreeSet<String> = err
            .lines()
            .filter_map(|l| l.strip_prefix("Error loading shared library "))
            .filter_map(|rest| rest.split(':').next())
            .map(str::to_string)
            .collect();
        assert!(!missing.is_empty(), "{prog}: exit {status}: {out}{err}");
        (BTreeSet::new(), missing)
    };
    let closure = |prog: &str, extra: &[&str]| {
        let run = run_closure(s.path(), &[prog], extra);
        if run.missing.is_empty() {
            (run.loaded(), BTreeSet::new())
        } else {
            (BTreeSet::new(), run.missing_names())
        }
    };
    for (prog, env, extra, rule_applies) in [
        ("/app/bin/origin", &[][..], &[][..], true),
        ("/app/bin/fixed", &[][..], &[][..], false),
        (
            "/app/bin/lp",
            &[("LD_LIBRARY_PATH", "/app/lp")][..],
            &["--library-path", "/app/lp"][..],
            true,
        ),
        ("/app/bin/rel", &[][..], &[][..], true),
        (
            "/app/bin/pre",
            &[("LD_PRELOAD", "/app/lp/libd.so.1")][..],
            &["--preload", "/app/lp/libd.so.1"][..],
            true,
        ),
        (
            "/app/bin/pre",
            &[("LD_PRELOAD", "libsu.so.1")][..],
            &["--preload", "libsu.so.1"][..],
            true,
        ),
    ] {
        let real = musl(prog, env);
        let mut secure_args = vec!["--secure"];
        secure_args.extend_from_slice(extra);
        let secure = closure(prog, &secure_args);
        println!("{name}: {prog}: musl {real:?}, closure --secure {secure:?}");
        assert_eq!(secure, real, "{prog}");
        assert_eq!(closure(prog, extra) != real, rule_applies, "{prog}");
    }
    // The library kept its own $ORIGIN search path.
    let (fixed, _) = musl("/app/bin/fixed", &[]);
    assert!(fixed.contains("/app/lib/../lib2/libb.so.1"), "{fixed:?}");
    // Outside secure mode (run by root) musl loads both preloads, as plain
    // `closure --preload` says.
    for (preload, lib) in [
        ("/app/lp/libd.so.1", "/app/lp/libd.so.1"),
        ("libsu.so.1", "/lib/x86_64-linux-musl/libsu.so.1"),
    ] {
        let (status, out, err) =
            run_in_root(s.path(), &["/app/bin/pre"], &[("LD_PRELOAD", preload)]);
        assert!(status.success(), "{out}{err}");
        let real: BTreeSet<String> = out
            .lines()
            .filter(|l| *l != "/app/bin/pre")
            .map(String::from)
            .collect();
        assert!(real.contains(lib), "{preload}: {real:?}");
        let plain = closure("/app/bin/pre", &["--preload", preload]);
        assert_eq!(plain, (real, BTreeSet::new()), "{preload}");
    }
}

/// musl's loader does not read `/etc/ld.so.preload` (only glibc's does): a musl program in a
/// root that has one loads exactly what musl says, and closure does not warn about the file.
#[test]
fn musl_ignores_ld_so_preload() {
    let name = "musl_ignores_ld_so_preload";
    if !musl_ready(name) {
        return;
    }
    let s = Sys::musl();
    s.lib(
        "musl-gcc",
        "/app/lib/libgreet.so.1",
        "libgreet.so.1",
        GREET_C,
        &[],
    );
    s.cc(
        "musl-gcc",
        "/app/bin/plain",
        &[("c", "int main(void) { return 0; }\n")],
        &[],
    );
    s.write("/etc/ld.so.preload", "/app/lib/libgreet.so.1\n");
    if can_run(&format!("{name} (comparison with the musl loader)")) {
        same_as_musl(&s, "/app/bin/plain");
    }
    let (code, v, err) = s.json(&["--root", "/app/bin/plain"]);
    assert_eq!(code, 0, "stderr:\n{err}\nreport:\n{v:#}");
    assert!(
        !err.contains("ld.so.preload") && !v["warnings"].to_string().contains("ld.so.preload"),
        "a musl program was warned about /etc/ld.so.preload:\n{err}\n{v:#}"
    );
}

/// What musl's loader lists for `prog` with `LD_PRELOAD=env`.
fn musl_list_preloading(s: &Sys, prog: &str, env: &str) -> (BTreeSet<String>, i32, String) {
    let (status, out, err) = run_in_root(
        s.path(),
        &[MUSL_INTERP, "--list", prog],
        &[("LD_PRELOAD", env)],
    );
    (
        parse_trace(&out).loaded,
        status.code().unwrap_or(-1),
        format!("--- stdout ---\n{out}--- stderr ---\n{err}"),
    )
}

/// `--preload` against musl's `LD_PRELOAD`: names split at spaces and `:`, loaded for no
/// requester (`LD_LIBRARY_PATH`, then the path file; never the program's RPATH, which glibc
/// would search), a path opened as it is, a name that cannot be loaded skipped; what a
/// preload needs is found through its own search path. Each run must load exactly what musl
/// lists.
#[test]
fn musl_preload_matches_musl() {
    let name = "musl_preload_matches_musl";
    if !musl_ready(name) || !can_run(name) {
        return;
    }
    let s = Sys::musl();
    s.lib(
        "musl-gcc",
        "/usr/lib/x86_64-linux-musl/libpre.so",
        "libpre.so",
        GREET_C,
        &[],
    );
    s.lib(
        "musl-gcc",
        "/app/lib/libgreet.so.1",
        "libgreet.so.1",
        GREET_C,
        &[],
    );
    s.lib("musl-gcc", "/app/rp/libonly.so", "libonly.so", GREET_C, &[]);
    s.cc(
        "musl-gcc",
        "/app/bin/plain",
        &[("c", "int main(void) { return 0; }\n")],
        &["-Wl,--disable-new-dtags", "-Wl,-rpath,/app/rp"],
    );
    let mut cases: Vec<(&str, bool)> = vec![
        ("libpre.so", true),
        ("/app/lib/libgreet.so.1:libnope.so libpre.so", true),
        // Only in the program's RPATH: musl does not look there for a preload.
        ("libonly.so", false),
    ];
    for (env, loads_something) in cases.drain(..) {
        let (loaded, code, raw) = musl_list_preloading(&s, "/app/bin/plain", env);
        assert_eq!(code, 0, "{name}: LD_PRELOAD={env}: musl failed:\n{raw}");
        let run = run_closure(s.path(), &["/app/bin/plain"], &["--preload", env]);
        assert_eq!(
            run.loaded(),
            loaded,
            "{name}: LD_PRELOAD={env}: loaded paths differ (left closure, right musl)\nmusl:\n{raw}\nclosure:\n{}",
            run.dump()
        );
        let plain = run_closure(s.path(), &["/app/bin/plain"], &[]);
        assert_eq!(
            plain.loaded() != run.loaded(),
            loads_something,
            "{name}: LD_PRELOAD={env}: the case does not test what it says"
        );
        // `--format ldd` prints musl's lines, preloads first.
        let (_, out, _) = run_in_root(
            s.path(),
            &[MUSL_INTERP, "--list", "/app/bin/plain"],
            &[("LD_PRELOAD", env)],
        );
        assert_eq!(
            closure_ldd_lines(s.path(), &["/app/bin/plain"], &["--preload", env])
                .remove("/app/bin/plain")
                .unwrap_or_default(),
            ldd_lines(&out),
            "{name}: LD_PRELOAD={env}: `--format ldd` (left) differs from musl's lines (right)"
        );
    }
}

/// `closure verify DIR` checks the run-time loads too, as the tracer
/// follows them: a `required` `.note.dlopen` entry missing from DIR is a
/// problem (exit 1), a `recommended` one, libgcc_s for a `pthread_cancel`
/// user and a module DIR's own `nsswitch.conf` names are warnings (glibc's
/// built-in `files` is none); `--startup-only` and `--dlopen-priority`
/// narrow it as for the tracer.
#[test]
fn verify_checks_run_time_loads() {
    let name = "verify_checks_run_time_loads";
    if !glibc_ready(name) {
        return;
    }
    let s = dlopen_fixture();
    s.cc("gcc", "/app/bin/cancel", &[("c", CANCEL_C)], &[]);
    s.write("/etc/nsswitch.conf", "passwd: files nosuchsvc\n");
    let verify = |extra: &[&str]| {
        let mut args = vec!["verify", s.sysroot(), "--format", "list"];
        args.extend_from_slice(extra);
        let (code, _, err) = run_raw(&args);
        (code, err)
    };
    let (code, err) = verify(&[]);
    assert_eq!(code, 1, "{name}: stderr:\n{err}");
    for said in [
        "libnothere.so.1",
        "libgoneA.so.1",
        "libgcc_s.so.1",
        "libnss_nosuchsvc.so.2",
    ] {
        assert!(err.contains(said), "{name}: {said} not named:\n{err}");
    }
    for unsaid in ["libgoneB.so.1", "libnss_files"] {
        assert!(!err.contains(unsaid), "{name}: {unsaid} named:\n{err}");
    }
    let (code, err) = verify(&["--dlopen-priority", "none"]);
    assert_eq!(code, 0, "{name}: --dlopen-priority none: stderr:\n{err}");
    assert!(
        !err.contains("libnothere.so.1") && err.contains("libgcc_s.so.1"),
        "{name}: --dlopen-priority none:\n{err}"
    );
    let (code, err) = verify(&["--startup-only"]);
    assert_eq!(code, 0, "{name}: --startup-only: stderr:\n{err}");
    for unsaid in [
        "libnothere.so.1",
        "libgoneA.so.1",
        "libgcc_s.so.1",
        "libnss_",
    ] {
        assert!(
            !err.contains(unsaid),
            "{name}: --startup-only: {unsaid} named:\n{err}"
        );
    }
}

/// A library that `dlopen`s two names at the program's request and says
/// which loaded (bit 0: `libinner.so.1`, bit 1: `libplug.so.1`).
const MUSL_DLOPENER_C: &str = "#include <dlfcn.h>\n\
int a(void) { int m = 0;\n\
  if (dlopen(\"libinner.so.1\", RTLD_NOW)) m |= 1;\n\
  if (dlopen(\"libplug.so.1\", RTLD_NOW)) m |= 2;\n\
  return m; }\n";

/// Calls `a()` and prints its answer, then the link map.
const MUSL_DLOPEN_PROG_C: &str = "#define _GNU_SOURCE\n#include <link.h>\n#include <stdio.h>\n\
int a(void);\n\
static int each(struct dl_phdr_info *i, size_t n, void *d) { (void)n; (void)d;\n\
  if (i->dlpi_name && i->dlpi_name[0] == '/') printf(\"%s\\n\", i->dlpi_name); return 0; }\n\
int main(void) { printf(\"mask %d\\n\", a()); dl_iterate_phdr(each, 0); return 0; }\n";

/// A musl root with `/app/lib/libcore.so.1` (`core_fn`, 1) built in it,
/// when musl can be used here.
fn musl_root_with_core(name: &str) -> Option<Sys> {
    if !musl_ready(name) {
        return None;
    }
    let s = Sys::musl();
    s.lib(
        "musl-gcc",
        "/app/lib/libcore.so.1",
        "libcore.so.1",
        "int core_fn(void) { return 1; }\n",
        &[],
    );
    Some(s)
}

/// Builds the musl program `/app/bin/prog` from `source`, linked with
/// `lib` and `extra`, its RUNPATH `/app/lib:/app/plug`.
fn musl_prog(s: &Sys, lib: &str, source: &str, extra: &[&str]) {
    let mut args = s.link(lib);
    args.extend(extra.iter().map(|a| a.to_string()));
    args.extend([
        "-Wl,--enable-new-dtags".into(),
        "-Wl,-rpath,/app/lib:/app/plug".into(),
    ]);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    s.cc("musl-gcc", "/app/bin/prog", &[("c", source)], &args);
}

/// Builds `/app/bin/prog` (RUNPATH `/app/lib:/app/plug`), which calls
/// `liba.so.1`'s `a()` (its second `dlopen` alone loading) and lists its
/// link map, and checks `closure --dlopen-strings` (exit 0) against that
/// link map when the program can run. Returns `closure`'s objects but the
/// program, its JSON and its stderr.
fn musl_dlopen_prog(s: &Sys, name: &str) -> (BTreeSet<String>, Value, String) {
    musl_prog(s, "/app/lib/liba.so.1", MUSL_DLOPEN_PROG_C, &[]);
    let (code, v, err) = s.json(&["--root", "/app/bin/prog", "--dlopen-strings"]);
    assert_eq!(code, 0, "{name}: {err}");
    let ours: BTreeSet<String> = paths(&v)
        .into_iter()
        .filter(|p| p != "/app/bin/prog")
        .collect();
    if can_run(&format!("{name} (running the program)")) {
        let (status, out, stderr) = run_in_root(s.path(), &["/app/bin/prog"], &[]);
        assert!(status.success(), "{name}: {out}{stderr}");
        let mut lines = out.lines();
        assert_eq!(lines.next(), Some("mask 2"), "{name}: musl's answer: {out}");
        let real: BTreeSet<String> = lines
            .filter(|l| *l != "/app/bin/prog")
            .map(String::from)
            .collect();
        assert_eq!(
            ours, real,
            "{name}: closure --dlopen-strings against musl's link map"
        );
    }
    (ours, v, err)
}

/// musl's `dlopen` searches as if the main program asked
/// (`load_library(file, head)`): the program's RUNPATH, never the calling
/// library's. A library whose RUNPATH holds `libinner.so.1` cannot
/// `dlopen` it; `libplug.so.1`, in the program's RUNPATH, loads. `closure
/// --dlopen-strings` must list exactly musl's link map, and name
/// `libinner.so.1` as not found.
#[test]
fn musl_dlopen_searches_as_the_program() {
    let name = "musl_dlopen_searches_as_the_program";
    if !musl_ready(name) {
        return;
    }
    let s = Sys::musl();
    s.lib(
        "musl-gcc",
        "/app/inner/libinner.so.1",
        "libinner.so.1",
        "int inner(void) { return 1; }\n",
        &[],
    );
    s.lib(
        "musl-gcc",
        "/app/plug/libplug.so.1",
        "libplug.so.1",
        "int plug(void) { return 1; }\n",
        &[],
    );
    s.lib(
        "musl-gcc",
        "/app/lib/liba.so.1",
        "liba.so.1",
        MUSL_DLOPENER_C,
        &["-Wl,--enable-new-dtags", "-Wl,-rpath,/app/inner"],
    );
    let (ours, v, err) = musl_dlopen_prog(&s, name);
    assert!(ours.contains("/app/plug/libplug.so.1"), "{ours:?}");
    assert!(!ours.iter().any(|p| p.contains("libinner")), "{ours:?}");
    let warned = format!("{}\n{err}", warnings(&v));
    assert!(
        warned.contains("perhaps never with this name): libinner.so.1"),
        "{warned}"
    );
}

/// A library that `dlopen`s `libbroken.so.1`, then `libplug.so.1`, at the
/// program's request and says which loaded (bit 0, bit 1).
const MUSL_UNDO_C: &str = "#include <dlfcn.h>\n\
int a(void) { int m = 0;\n\
  if (dlopen(\"libbroken.so.1\", RTLD_NOW)) m |= 1;\n\
  if (dlopen(\"libplug.so.1\", RTLD_NOW)) m |= 2;\n\
  return m; }\n";

/// musl undoes a `dlopen` that fails once its file is found, as glibc
/// does (`dlopen`'s `rtld_fail` path unmaps every object it brought in;
/// `load_deps` stops at the first dependency it cannot load):
/// `libbroken.so.1` is found, and so is its first dependency, but not its
/// second; `libplug.so.1` loads after it. `closure --dlopen-strings` must
/// list exactly musl's link map (neither `libbroken.so.1` nor
/// `libmid.so.1`) and warn that the first `dlopen` fails.
#[test]
fn musl_undoes_a_failed_dlopen() {
    let name = "musl_undoes_a_failed_dlopen";
    if !musl_ready(name) {
        return;
    }
    let s = Sys::musl();
    let lib = |path: &str, soname: &str, args: &[&str]| {
        s.lib(
            "musl-gcc",
            path,
            soname,
            "int f(void) { return 1; }\n",
            args,
        )
    };
    lib("/app/plug/libplug.so.1", "libplug.so.1", &[]);
    lib("/app/plug/libmid.so.1", "libmid.so.1", &[]);
    lib("/app/gone/libgone.so.1", "libgone.so.1", &[]);
    let mut deps = s.link("/app/plug/libmid.so.1");
    deps.extend(s.link("/app/gone/libgone.so.1"));
    let deps: Vec<&str> = deps.iter().map(String::as_str).collect();
    lib("/app/plug/libbroken.so.1", "libbroken.so.1", &deps);
    std::fs::remove_file(s.path().join("app/gone/libgone.so.1")).expect("remove libgone");
    s.lib(
        "musl-gcc",
        "/app/lib/liba.so.1",
        "liba.so.1",
        MUSL_UNDO_C,
        &[],
    );
    let (ours, v, _) = musl_dlopen_prog(&s, name);
    assert!(
        ours.contains("/app/plug/libplug.so.1")
            && !ours
                .iter()
                .any(|p| p.contains("libbroken") || p.contains("libmid")),
        "{name}: {ours:?}"
    );
    let warned = warnings(&v);
    assert!(
        warned.contains(
            "/app/plug/libbroken.so.1 (loaded at run time by /app/bin/prog): libgone.so.1 not \
             found: that dlopen fails"
        ),
        "{name}: {warned}"
    );
}

/// musl relocates what a `dlopen` maps in the global scope and then the
/// opened library's own dependencies, not in what an earlier `dlopen`
/// (`RTLD_LOCAL`) brought in: `libgood.so.1` binds the program's exported
/// `host_api`, its start-up library's `core_fn`, its own dependency's
/// `dep_fn` (which calls back into it); `libnosym.so.1` calls a function
/// defined nowhere, `liblocal.so.1` one only `libgood.so.1` defines. `closure
/// --dlopen-strings --check-symbols` must name exactly the symbols musl's
/// `dlopen`s (`RTLD_NOW`) fail on, each against its object and the program.
#[test]
fn musl_dlopens_bind_in_the_global_scope_then_their_own() {
    let name = "musl_dlopens_bind_in_the_global_scope_then_their_own";
    let Some(s) = musl_root_with_core(name) else {
        return;
    };
    let lib = |path: &str, soname: &str, source: &str, args: &[&str]| {
        s.lib("musl-gcc", path, soname, source, args)
    };
    lib(
        "/app/plug/libgdep.so.1",
        "libgdep.so.1",
        "int good_cb(void);\nint dep_fn(void) { return good_cb(); }\n",
        &[],
    );
    let mut deps = s.link("/app/plug/libgdep.so.1");
    deps.extend(["-Wl,--enable-new-dtags".into(), "-Wl,-rpath,$ORIGIN".into()]);
    let deps: Vec<&str> = deps.iter().map(String::as_str).collect();
    lib(
        "/app/plug/libgood.so.1",
        "libgood.so.1",
        "int host_api(int); int core_fn(void); int dep_fn(void);\n\
         int good_cb(void) { return 3; }\nint good_only(void) { return 4; }\n\
         int good(void) { return host_api(core_fn()) + dep_fn(); }\n",
        &deps,
    );
    lib(
        "/app/plug/libnosym.so.1",
        "libnosym.so.1",
        "int nowhere_fn(void);\nint nosym(void) { return nowhere_fn(); }\n",
        &[],
    );
    lib(
        "/app/plug/liblocal.so.1",
        "liblocal.so.1",
        "int good_only(void);\nint local(void) { return good_only(); }\n",
        &[],
    );
    musl_prog(
        &s,
        "/app/lib/libcore.so.1",
        MUSL_SCOPE_PROG_C,
        &["-rdynamic"],
    );
    let (code, v, err) = s.json(&[
        "--root",
        "/app/bin/prog",
        "--dlopen-strings",
        "--check-symbols",
    ]);
    assert_eq!(code, 1, "{name}: {err}");
    let ours: BTreeSet<(String, String)> = v["undefined_symbols"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|u| u["loaded_by"] == "/app/bin/prog")
        .map(|u| {
            let s = |k: &str| u[k].as_str().unwrap_or_default().to_string();
            (s("object"), s("symbol"))
        })
        .collect();
    let expected: BTreeSet<(String, String)> = [
        ("/app/plug/libnosym.so.1", "nowhere_fn"),
        ("/app/plug/liblocal.so.1", "good_only"),
    ]
    .iter()
    .map(|(o, s)| (o.to_string(), s.to_string()))
    .collect();
    assert_eq!(ours, expected, "{name}: {err}");
    if !can_run(&format!("{name} (running the program)")) {
        return;
    }
    // musl's answer: "Error relocating OBJECT: SYMBOL: symbol not found".
    let (status, out, stderr) = run_in_root(s.path(), &["/app/bin/prog"], &[]);
    assert!(status.success(), "{name}: {out}{stderr}");
    let theirs: BTreeSet<(String, String)> = out
        .lines()
        .filter_map(|l| l.split_once("|Error relocating "))
        .filter_map(|(_, why)| why.strip_suffix(": symbol not found"))
        .filter_map(|why| why.rsplit_once(": "))
        .map(|(o, s)| (o.to_string(), s.to_string()))
        .collect();
    assert!(
        out.lines().any(|l| l == "OK libgood.so.1"),
        "{name}: musl's answer: {out}"
    );
    assert_eq!(ours, theirs, "{name}: closure (left), musl (right): {out}");
}

/// Opens three libraries with `RTLD_NOW`, saying how each went (`OK NAME`,
/// `FAIL NAME|ERROR`); exports `host_api`.
const MUSL_SCOPE_PROG_C: &str = "#include <dlfcn.h>\n#include <stdio.h>\n\
int core_fn(void);\nint host_api(int x) { return x + core_fn(); }\n\
static const char *const names[] = { \"libgood.so.1\", \"libnosym.so.1\", \"liblocal.so.1\" };\n\
int main(void) { for (int k = 0; k < 3; k++) { void *h = dlopen(names[k], RTLD_NOW);\n\
  if (h) printf(\"OK %s\\n\", names[k]); else printf(\"FAIL %s|%s\\n\", names[k], dlerror()); }\n\
  return 0; }\n";

/// Opens its argument with `RTLD_LAZY`: `OK`, or the error.
const MUSL_LAZY_OPENER_C: &str = "#include <dlfcn.h>\n#include <stdio.h>\n\
int main(int argc, char **argv) { (void)argc; if (dlopen(argv[1], RTLD_LAZY)) puts(\"OK\");\n\
  else puts(dlerror()); return 0; }\n";

/// Opens each path given with `RTLD_NOW` (`OK PATH` or `FAIL PATH|ERROR`),
/// then lists the link map.
const MUSL_PLUGIN_HOST_C: &str = "#define _GNU_SOURCE\n#include <dlfcn.h>\n#include <link.h>\n\
#include <stdio.h>\nint core_fn(void);\nint host_api(int x) { return x + core_fn(); }\n\
static int each(struct dl_phdr_info *i, size_t n, void *d) { (void)n; (void)d;\n\
  if (i->dlpi_name && i->dlpi_name[0] == '/') printf(\"%s\\n\", i->dlpi_name); return 0; }\n\
int main(int argc, char **argv) { for (int k = 1; k < argc; k++) {\n\
  if (dlopen(argv[k], RTLD_NOW)) printf(\"OK %s\\n\", argv[k]);\n\
  else printf(\"FAIL %s|%s\\n\", argv[k], dlerror()); }\n\
  dl_iterate_phdr(each, 0); return 0; }\n";

/// An included library of a musl program is mapped by musl's loader in
/// that program's process, whatever the sysroot's other libc: its
/// `libc.so` is the loader, a name the program loaded at start-up is that
/// object, and its dependencies are searched through its RPATH and then
/// the program's (musl walks `needed_by` up to the program), in musl's
/// system path after that — never glibc's directories; `--check-symbols`
/// binds it in the program's global scope. A library given as a root in
/// a sysroot with musl's loader and no glibc one is musl's too: `--format
/// ldd` equals `ld-musl --list` there. Compared with the program's own
/// `dlopen`s: what it maps, what fails and why.
#[test]
fn musl_plugins_are_traced_in_their_host_program() {
    let name = "musl_plugins_are_traced_in_their_host_program";
    let Some(s) = musl_root_with_core(name) else {
        return;
    };
    let lib = |path: &str, soname: &str, source: &str, args: &[&str]| {
        s.lib("musl-gcc", path, soname, source, args)
    };
    lib(
        "/app/lib/libdep.so.1",
        "libdep.so.1",
        "int dep_fn(void) { return 2; }\n",
        &[],
    );
    lib(
        "/opt/x/libown.so.1",
        "libown.so.1",
        "int own_fn(void) { return 3; }\n",
        &[],
    );
    // In musl's system path (the path file's directories).
    lib(
        "/usr/lib/x86_64-linux-musl/libsys.so.1",
        "libsys.so.1",
        "int sys_fn(void) { return 4; }\n",
        &[],
    );
    let mut args: Vec<String> = Vec::new();
    for l in [
        "/app/lib/libcore.so.1",
        "/app/lib/libdep.so.1",
        "/opt/x/libown.so.1",
        "/usr/lib/x86_64-linux-musl/libsys.so.1",
    ] {
        args.extend(s.link(l));
    }
    args.extend(["-Wl,--enable-new-dtags".into(), "-Wl,-rpath,/opt/x".into()]);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    lib(
        "/opt/plugins/libplug.so",
        "libplug.so",
        "int host_api(int); int core_fn(void); int dep_fn(void); int own_fn(void);\n\
         int sys_fn(void);\n\
         int plug(void) { return host_api(core_fn()) + dep_fn() + own_fn() + sys_fn(); }\n",
        &args,
    );
    lib(
        "/opt/plugins/libsym.so",
        "libsym.so",
        "int gone_fn(void);\nint sym(void) { return gone_fn(); }\n",
        &[],
    );
    // A dependency found nowhere: musl names it.
    lib(
        "/opt/y/libnowhere.so.1",
        "libnowhere.so.1",
        "int nw(void) { return 5; }\n",
        &[],
    );
    let nowhere = s.link("/opt/y/libnowhere.so.1");
    let nowhere: Vec<&str> = nowhere.iter().map(String::as_str).collect();
    lib(
        "/opt/plugins/libbad.so",
        "libbad.so",
        "int nw(void);\nint bad(void) { return nw(); }\n",
        &nowhere,
    );
    fs::remove_file(s.host("/opt/y/libnowhere.so.1")).expect("remove");
    // `-z nodlopen`, which glibc's `dlopen` refuses and musl's ignores.
    lib(
        "/opt/plugins/libnoopen.so",
        "libnoopen.so",
        "int host_api(int);\nint noopen(void) { return host_api(2); }\n",
        &["-Wl,-z,nodlopen"],
    );
    musl_prog(
        &s,
        "/app/lib/libcore.so.1",
        MUSL_PLUGIN_HOST_C,
        &["-rdynamic"],
    );
    // The host must not need the plugin's dependencies itself.
    let plugins = [
        "/opt/plugins/libplug.so",
        "/opt/plugins/libsym.so",
        "/opt/plugins/libbad.so",
        "/opt/plugins/libnoopen.so",
    ];
    let mut argv = vec!["--root", "/app/bin/prog", "--check-symbols"];
    for p in plugins {
        argv.extend(["--include", p]);
    }
    let (code, v, err) = s.json(&argv);
    assert_eq!(code, 1, "{name}: {err}");
    assert!(!err.contains("libnoopen.so (a plugin)"), "{name}: {err}");
    // Objects: the program's start-up and what each plugin brings.
    let ours: BTreeSet<String> = (v["objects"].as_array().into_iter().flatten())
        .filter(|o| {
            let roots = o["roots"].as_array().cloned().unwrap_or_default();
            roots
                .iter()
                .any(|r| r == "/app/bin/prog" || r == "/opt/plugins/libplug.so")
        })
        .filter_map(|o| o["path"].as_str().map(String::from))
        .collect();
    let missing: BTreeSet<(String, String)> = (v["missing"].as_array().into_iter().flatten())
        .map(|m| {
            let s = |k: &str| m[k].as_str().unwrap_or_default().to_string();
            (s("soname"), s("needed_by"))
        })
        .collect();
    assert_eq!(
        missing,
        BTreeSet::from([(
            "libnowhere.so.1".to_string(),
            "/opt/plugins/libbad.so".to_string()
        )]),
        "{name}: {err}"
    );
    let undefined: BTreeSet<(String, String, String)> =
        (v["undefined_symbols"].as_array().into_iter().flatten())
            .map(|u| {
                let s = |k: &str| u[k].as_str().unwrap_or_default().to_string();
                (s("object"), s("symbol"), s("loaded_by"))
            })
            .collect();
    // (libbad's `nw` too: its library is missing.)
    let expected = [
        ("/opt/plugins/libsym.so", "gone_fn"),
        ("/opt/plugins/libbad.so", "nw"),
    ]
    .map(|(o, f)| (o.to_string(), f.to_string(), "/app/bin/prog".to_string()));
    assert_eq!(undefined, BTreeSet::from(expected), "{name}: {err}");
    // A library root: musl's, in this sysroot without glibc's loader.
    let (code, ldd, err) = s.closure(&["--root", "/opt/plugins/libplug.so", "--format", "ldd"]);
    assert_eq!(
        code, 1,
        "{name}: standalone, the program's libraries are not found: {err}"
    );
    if !can_run(&format!("{name} (running the program)")) {
        return;
    }
    // musl's answer.
    let mut run: Vec<&str> = vec!["/app/bin/prog", "/opt/plugins/libplug.so"];
    let (status, out, stderr) = run_in_root(s.path(), &run, &[]);
    assert!(status.success(), "{name}: {out}{stderr}");
    let mut lines = out.lines();
    assert_eq!(
        lines.next(),
        Some("OK /opt/plugins/libplug.so"),
        "{name}: {out}"
    );
    let real: BTreeSet<String> = lines.map(String::from).collect();
    assert_eq!(ours, real, "{name}: closure against musl's link map");
    run = vec![
        "/app/bin/prog",
        "/opt/plugins/libsym.so",
        "/opt/plugins/libbad.so",
        "/opt/plugins/libnoopen.so",
    ];
    let (_, out, stderr) = run_in_root(s.path(), &run, &[]);
    let said: Vec<&str> = out.lines().take(3).collect();
    assert_eq!(
        said,
        [
            "FAIL /opt/plugins/libsym.so|Error relocating /opt/plugins/libsym.so: gone_fn: \
             symbol not found",
            "FAIL /opt/plugins/libbad.so|Error loading shared library libnowhere.so.1: No such \
             file or directory (needed by /opt/plugins/libbad.so)",
            "OK /opt/plugins/libnoopen.so",
        ],
        "{name}: {out}{stderr}"
    );
    // `ld-musl --list` of the library alone (addresses dropped; what it
    // cannot find is on its stderr, as ours is).
    let (_, listed, stderr) = run_in_root(
        s.path(),
        &[MUSL_INTERP, "--list", "/opt/plugins/libplug.so"],
        &[],
    );
    let strip = |text: &str| -> Vec<String> {
        (text.lines())
            .map(|l| match l.rfind(" (0x") {
                Some(i) => l[..i].to_string(),
                None => l.to_string(),
            })
            .collect()
    };
    assert_eq!(
        strip(&ldd),
        strip(&listed),
        "{name}: ld-musl --list: {listed}{stderr}"
    );
    // A plugin reading a variable defined nowhere: musl's `RTLD_LAZY`
    // `dlopen` defers it (a GOT relocation, as a PLT one), so no mode
    // fails for sure, and `closure` says nothing without
    // `--check-symbols` (glibc's would fail in every mode).
    lib(
        "/opt/plugins/libvar.so",
        "libvar.so",
        "extern int nowhere_var;\nint var(void) { return nowhere_var; }\n",
        &[],
    );
    s.cc(
        "musl-gcc",
        "/app/bin/lazy",
        &[("c", MUSL_LAZY_OPENER_C)],
        &[],
    );
    let (_, out, stderr) = run_in_root(s.path(), &["/app/bin/lazy", "/opt/plugins/libvar.so"], &[]);
    assert_eq!(out, "OK\n", "{name}: musl's RTLD_LAZY dlopen: {stderr}");
    let (code, _, err) = s.closure(&[
        "--root",
        "/app/bin/prog",
        "--include",
        "/opt/plugins/libvar.so",
        "--format",
        "list",
    ]);
    assert!(code == 0 && !err.contains("dlopen fails"), "{name}: {err}");
    // Staged with the plugin (whose `closure verify` is the staging's
    // own check), the program opens it there.
    let st = s
        .stage(&[
            "--root",
            "/app/bin/prog",
            "--include",
            "/opt/plugins/libplug.so",
        ])
        .ok(name);
    let (code, out, stderr) = st.run(&["/app/bin/prog", "/opt/plugins/libplug.so"], &[]);
    assert_eq!(code, 0, "{name}: {out}{stderr}");
    assert!(
        out.starts_with("OK /opt/plugins/libplug.so\n"),
        "{name}: {out}{stderr}"
    );
}

/// A library that `dlopen`s `libplug.so.1` when asked (1 when it loaded).
const CALLER_C: &str = "#include <dlfcn.h>\n#include <stdio.h>\n\
int caller(void) { void *h = dlopen(\"libplug.so.1\", RTLD_NOW);\n\
  if (!h) fprintf(stderr, \"%s\\n\", dlerror()); return h != 0; }\n";

/// Calls `caller()`, prints its answer, then the link map.
const CALLER_PROG_C: &str = "#define _GNU_SOURCE\n#include <link.h>\n#include <stdio.h>\n\
int caller(void);\n\
static int each(struct dl_phdr_info *i, size_t n, void *d) { (void)n; (void)d;\n\
  if (i->dlpi_name && i->dlpi_name[0] == '/') printf(\"%s\\n\", i->dlpi_name); return 0; }\n\
int main(void) { printf(\"loaded %d\\n\", caller()); dl_iterate_phdr(each, 0); return 0; }\n";

/// glibc: the dependencies of an object loaded by `dlopen` are searched
/// through its own RPATH and then the program's, not through the RPATH of
/// the object that called `dlopen` (checked here against the loader). Only
/// the caller's `DT_RPATH` holds the plugin's dependency: the `dlopen`
/// fails, naming it, the loader unloads the plugin, and `closure
/// --dlopen-strings` warns that this `dlopen` fails, naming the dependency,
/// and lists neither. With the program's RPATH holding it, the call
/// succeeds. Either way the link map is exactly what `closure` lists.
#[test]
fn glibc_dlopen_dependencies_skip_the_callers_rpath() {
    let name = "glibc_dlopen_dependencies_skip_the_callers_rpath";
    if !glibc_ready(name) {
        return;
    }
    let s = Sys::glibc();
    s.lib(
        "gcc",
        "/app/deps/libdep.so.1",
        "libdep.so.1",
        "int dep(void) { return 1; }\n",
        &[],
    );
    let dep = s.link("/app/deps/libdep.so.1");
    let dep: Vec<&str> = dep.iter().map(String::as_str).collect();
    s.lib(
        "gcc",
        "/app/plug/libplug.so.1",
        "libplug.so.1",
        "int dep(void);\nint plug(void) { return dep(); }\n",
        &dep,
    );
    s.lib(
        "gcc",
        "/app/lib/libcaller.so.1",
        "libcaller.so.1",
        CALLER_C,
        &["-Wl,--disable-new-dtags", "-Wl,-rpath,/app/plug:/app/deps"],
    );
    for (prog, rpath, loads) in [
        ("/app/bin/prog", "/app/lib", false),
        ("/app/bin/prog-deps", "/app/lib:/app/deps", true),
    ] {
        let mut args = s.link("/app/lib/libcaller.so.1");
        args.extend([
            "-Wl,--disable-new-dtags".into(),
            format!("-Wl,-rpath,{rpath}"),
        ]);
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        s.cc("gcc", prog, &[("c", CALLER_PROG_C)], &args);
        let (code, v, err) = s.json(&["--root", prog, "--dlopen-strings"]);
        let ours: BTreeSet<String> = paths(&v).into_iter().filter(|p| p != prog).collect();
        if can_run(&format!("{name} (running {prog})")) {
            let (status, out, stderr) = run_in_root(s.path(), &[prog], &[]);
            assert!(status.success(), "{out}{stderr}");
            let mut lines = out.lines();
            let real: BTreeSet<String> = lines.by_ref().skip(1).map(String::from).collect();
            if loads {
                assert!(out.starts_with("loaded 1\n"), "{prog}: {out}{stderr}");
            } else {
                assert!(out.starts_with("loaded 0\n"), "{prog}: {out}{stderr}");
                assert!(stderr.contains("libdep.so.1: cannot open"), "{stderr}");
            }
            assert_eq!(ours, real, "{prog}: against the link map; {err}");
        }
        assert_eq!(code, 0, "{prog}: {err}");
        assert!(missing_names(&v).is_empty(), "{prog}: {v:#}");
        let failed = format!(
            "/app/plug/libplug.so.1 (loaded at run time by {prog}): libdep.so.1 not found: \
             that dlopen fails"
        );
        let warned = v["warnings"]
            .as_array()
            .into_iter()
            .flatten()
            .any(|w| w == failed.as_str());
        assert_eq!(warned, !loads, "{prog}: {v:#}");
        assert_eq!(
            ours.contains("/app/deps/libdep.so.1"),
            loads,
            "{prog}: {ours:?}"
        );
        assert_eq!(
            ours.contains("/app/plug/libplug.so.1"),
            loads,
            "{prog}: {ours:?}"
        );
    }
}

// ---------------------------------------------------------------------------------------------
// 3b. musl: random layouts
// ---------------------------------------------------------------------------------------------

/// Where a library may be placed in a musl root (`/opt/c` links to `/opt/b`;
/// `/lib/x86_64-linux-musl` is in musl's path file).
const MUSL_DIRS: &[&str] = &[
    "/opt/a",
    "/opt/b",
    "/opt/c",
    "/app/lib",
    "/usr/lib/x86_64-linux-musl",
    "/usr/local/lib",
];
/// Elements of search paths.
const MUSL_PATHS: &[&str] = &[
    "/opt/a",
    "/opt/b",
    "/opt/c",
    "$ORIGIN",
    "$ORIGIN/../lib",
    "/nonexistent",
    "/app/lib",
];

/// Elements a second generator mixes in: relative ones (musl skips empty
/// elements and opens the rest from the working directory, `$ORIGIN` of
/// an object opened by a relative path staying relative), and the program
/// file where a directory should be (ENOTDIR: musl goes on).
const MUSL_EXTRA_ELEMENTS: &[&str] = &["", ".", "a", "b", "lib", "../b", "opt/c", "bin/prog"];

/// Working directories of a musl layout with a relative element.
const MUSL_CWDS: &[&str] = &["/", "/opt", "/opt/a", "/app", "/usr"];

/// Draws added after the first layouts: a second generator of the same
/// seed, so the first one's draws, and each seed's layout, stay as they were.
struct MuslExtra {
    rng: Rng,
    relative: bool,
}

fn musl_search_path(rng: &mut Rng, extra: &mut MuslExtra) -> String {
    let n = 1 + rng.below(3);
    let mut elements: Vec<&str> = (0..n).map(|_| *rng.pick(MUSL_PATHS)).collect();
    if extra.rng.chance(15) {
        let at = extra.rng.below(elements.len() + 1);
        let element = *extra.rng.pick(MUSL_EXTRA_ELEMENTS);
        elements.insert(at, element);
        extra.relative = true;
    }
    elements.join(":")
}

/// `-Wl,…` arguments for a random `DT_RPATH`, `DT_RUNPATH` or neither, and
/// how the plan shows it.
fn musl_path_args(rng: &mut Rng, extra: &mut MuslExtra) -> (Vec<String>, String) {
    match rng.below(4) {
        0 => {
            let p = musl_search_path(rng, extra);
            (
                vec!["-Wl,--disable-new-dtags".into(), format!("-Wl,-rpath,{p}")],
                format!("RPATH {p}"),
            )
        }
        1 => {
            let p = musl_search_path(rng, extra);
            (
                vec!["-Wl,--enable-new-dtags".into(), format!("-Wl,-rpath,{p}")],
                format!("RUNPATH {p}"),
            )
        }
        _ => (Vec::new(), String::new()),
    }
}

/// One random musl layout: five libraries in one to three places each,
/// each needing later ones, search paths on the program and the libraries
/// (musl follows every requester's up the chain, `DT_RUNPATH` or not),
/// versioned files behind SONAME links, `LD_LIBRARY_PATH`, now and then
/// a relative or empty element with the program run from a working
/// directory (`--cwd`), and a path file of other directories, or none. musl's own `--list` must give the same loaded and
/// missing sets and the same lines.
fn musl_layout(seed: u64, libc: &Path) {
    const LIBS: usize = 5;
    let mut rng = Rng::new(seed);
    let mut more = MuslExtra {
        rng: Rng::new(seed.wrapping_add(1 << 40)),
        relative: false,
    };
    let s = Sys::musl_with(libc);
    s.mkdir("/opt/b");
    s.symlink("b", "/opt/c");
    let mut plan = vec![format!("musl seed {seed} ({})", libc.display())];
    let mut placed: Vec<Vec<String>> = vec![Vec::new(); LIBS];
    for i in (0..LIBS).rev() {
        let soname = format!("libmr{i}.so.1");
        let mut dirs: Vec<&str> = Vec::new();
        while dirs.len() < 1 + rng.below(3) {
            let d = *rng.pick(MUSL_DIRS);
            let same = |a: &str| a.replacen("/opt/c", "/opt/b", 1);
            if !dirs.iter().any(|x| same(x) == same(d)) {
                dirs.push(d);
            }
        }
        for (k, d) in dirs.into_iter().enumerate() {
            let file = format!("{d}/{soname}");
            let real = if rng.chance(15) {
                format!("{file}.0.{k}")
            } else {
                file.clone()
            };
            let mut args: Vec<String> = Vec::new();
            let mut needs = Vec::new();
            for later in &placed[i + 1..] {
                if rng.chance(35) {
                    let dep = later[0].clone();
                    args.extend(s.link(&dep));
                    needs.push(dep);
                }
            }
            let (path_args, shown) = musl_path_args(&mut rng, &mut more);
            args.extend(path_args);
            plan.push(format!("{real}: needs {needs:?} {shown}"));
            let args: Vec<&str> = args.iter().map(String::as_str).collect();
            s.lib("musl-gcc", &real, &soname, GREET_C, &args);
            if real != file {
                s.symlink(real.rsplit('/').next().unwrap_or(&real), &file);
            }
            placed[i].push(file);
        }
    }
    let mut args: Vec<String> = Vec::new();
    let mut needs = Vec::new();
    for _ in 0..1 + rng.below(3) {
        let lib = placed[rng.below(LIBS)][0].clone();
        if !needs.contains(&lib) {
            args.extend(s.link(&lib));
            needs.push(lib);
        }
    }
    let (path_args, shown) = musl_path_args(&mut rng, &mut more);
    args.extend(path_args);
    plan.push(format!("/app/bin/prog: needs {needs:?} {shown}"));
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    s.cc("musl-gcc", "/app/bin/prog", &[("c", CALL_GREET_C)], &args);
    // The libraries were linked from where they were built: some are now
    // reachable only by a search, some by none.
    let mut env: Vec<(&str, String)> = Vec::new();
    let mut extra: Vec<String> = Vec::new();
    if rng.chance(30) {
        let llp = musl_search_path(&mut rng, &mut more);
        plan.push(format!("LD_LIBRARY_PATH={llp}"));
        extra.extend(["--library-path".into(), llp.clone()]);
        env.push(("LD_LIBRARY_PATH", llp));
    }
    // A third generator: now and then musl's path file lists some of the
    // layout's directories too (newline- or colon-separated), or is gone
    // (musl's default path then).
    let mut third = Rng::new(seed.wrapping_add(2 << 40));
    if third.chance(30) {
        if third.chance(30) {
            plan.push(format!("no {MUSL_PATH_FILE}"));
            s.remove(MUSL_PATH_FILE);
        } else {
            let mut dirs = vec!["/lib/x86_64-linux-musl", "/usr/lib/x86_64-linux-musl"];
            for _ in 0..1 + third.below(3) {
                let d = *third.pick(MUSL_DIRS);
                let at = third.below(dirs.len() + 1);
                dirs.insert(at, d);
            }
            let sep = if third.chance(50) { "\n" } else { ":" };
            let text = dirs.join(sep) + "\n";
            plan.push(format!("{MUSL_PATH_FILE}: {text:?}"));
            s.write(MUSL_PATH_FILE, &text);
        }
    }
    let mut cwd = "/";
    if more.relative {
        cwd = *more.rng.pick(MUSL_CWDS);
        if cwd != "/" {
            plan.push(format!("working directory {cwd}"));
            s.mkdir(cwd);
            extra.extend(["--cwd".into(), cwd.into()]);
        }
    }
    println!("{}", plan.join("\n  "));
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let extra: Vec<&str> = extra.iter().map(String::as_str).collect();
    let prog = "/app/bin/prog";
    let (status, out, err) = run_in_root_at(s.path(), cwd, &[MUSL_INTERP, "--list", prog], &env);
    let t = parse_trace(&out);
    let missing: BTreeSet<String> = err
        .lines()
        .filter_map(|l| l.strip_prefix("Error loading shared library "))
        .filter_map(|rest| rest.split(':').next())
        .map(str::to_string)
        .collect();
    let raw = format!("--- stdout ---\n{out}--- stderr ---\n{err}");
    let run = run_closure(s.path(), &[prog], &extra);
    let code = status.code().unwrap_or(-1);
    assert_eq!(
        (run.loaded(), run.missing_names(), run.status),
        (t.loaded, missing, if code == 0 { 0 } else { 1 }),
        "musl seed {seed}: closure (left) and musl (right): loaded, missing, exit\n  {}\nmusl:\n{raw}\nclosure:\n{}\n{}",
        plan.join("\n  "),
        run.stdout,
        run.stderr
    );
    assert_eq!(
        closure_ldd_lines(s.path(), &[prog], &extra)
            .remove(prog)
            .unwrap_or_default(),
        ldd_lines(&out),
        "musl seed {seed}: `--format ldd` (left) and musl's lines (right)\n  {}\nmusl:\n{raw}",
        plan.join("\n  ")
    );
}

/// 40 musl layouts (`CLOSURE_LAYOUTS=N`: seeds up to N instead;
/// `CLOSURE_LAYOUTS_FROM=K` starts at seed K, past seeds already hunted),
/// against musl's loader.
#[test]
fn musl_random_layouts_match_musl() {
    let name = "musl_random_layouts_match_musl";
    if !musl_ready(name) || !can_run(name) {
        return;
    }
    let var = |v: &str| std::env::var(v).ok().and_then(|v| v.parse::<u64>().ok());
    let n = var("CLOSURE_LAYOUTS").unwrap_or(40);
    for seed in var("CLOSURE_LAYOUTS_FROM").unwrap_or(0)..n {
        musl_layout(seed, Path::new(HOST_MUSL));
    }
}

/// The same layouts (`CLOSURE_LAYOUTS`, `CLOSURE_LAYOUTS_FROM` as there) against the musl of
/// Debian 13 (1.2.5) and of Debian testing (1.2.6 when this was written): the programs are
/// built with this machine's musl (1.2.3), the answers come from the newer one's loader.
#[test]
fn musl_random_layouts_match_newer_musl() {
    let name = "musl_random_layouts_match_newer_musl";
    if !musl_ready(name) || !can_run(name) {
        return;
    }
    let var = |v: &str| std::env::var(v).ok().and_then(|v| v.parse::<u64>().ok());
    let n = var("CLOSURE_LAYOUTS").unwrap_or(40);
    for release in ["trixie", "forky"] {
        let (root, version) = match crate::support::glibc::debian_package(release, "amd64", "musl")
        {
            Ok(found) => found,
            Err(why) => {
                println!("skipping {name} on {release}: {why}");
                continue;
            }
        };
        let libc = root.join("usr/lib/x86_64-linux-musl/libc.so");
        assert!(
            libc.is_file(),
            "{name}: musl {version} of {release} has no {}",
            libc.display()
        );
        for seed in var("CLOSURE_LAYOUTS_FROM").unwrap_or(0)..n {
            musl_layout(seed, &libc);
        }
        println!("{name}: musl {version} of {release}: seeds up to {n} agree");
    }
}
