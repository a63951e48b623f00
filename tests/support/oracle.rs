//! Oracle harness: build small ELF programs into a throwaway Debian-like root, ask the real
//! glibc loader (run inside that root with `chroot`, in a private mount namespace) what it
//! loads, ask `closure` the same question, and compare the two answers exactly.
//!
//! Everything here uses only std, tempfile and serde_json, so it compiles whatever state the
//! library is in. Tests that need root, gcc or patchelf print `skipping <name>: ...` and return.

#![allow(dead_code)]

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;
use std::fs;
use std::io::{Read, Seek, SeekFrom};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::OnceLock;

use serde_json::Value;

/// The host's real glibc pieces copied into every test root (Debian 12 x86_64 layout).
const HOST_LIBC: &str = "/lib/x86_64-linux-gnu/libc.so.6";
const HOST_LDSO: &str = "/lib/x86_64-linux-gnu/ld-linux-x86-64.so.2";
/// `PT_INTERP` of every program gcc builds here.
pub const INTERP: &str = "/lib64/ld-linux-x86-64.so.2";
/// Debian amd64 system directories, in the loader's order.
pub const SYSTEM_DIRS: [&str; 4] = [
    "/lib/x86_64-linux-gnu",
    "/usr/lib/x86_64-linux-gnu",
    "/lib",
    "/usr/lib",
];

/// ELF dynamic tags used by the tag re-writer.
pub const DT_RUNPATH: u64 = 29;
/// `DT_AUDIT`: a string tag gcc/ld can emit next to `DT_RPATH`; re-tagged to `DT_RUNPATH`.
pub const DT_AUDIT: u64 = 0x6fff_fefc;

// ---------------------------------------------------------------------------------------------
// Preconditions
// ---------------------------------------------------------------------------------------------

/// True when the effective uid is 0 (read from /proc, no unsafe code needed).
pub fn is_root() -> bool {
    let Ok(status) = fs::read_to_string("/proc/self/status") else {
        return false;
    };
    status
        .lines()
        .find_map(|l| l.strip_prefix("Uid:"))
        .and_then(|rest| rest.split_whitespace().nth(1).map(|euid| euid == "0"))
        .unwrap_or(false)
}

/// Whether `program arg` runs and exits 0 (a tool being there).
pub fn tool_runs(program: &str, arg: &str) -> bool {
    Command::new(program)
        .arg(arg)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .map(|s| s.success())
        .unwrap_or(false)
}

/// Path of the host's `ldconfig` (often in an sbin directory that is not on a test's PATH).
pub fn ldconfig_path() -> String {
    for p in ["/usr/sbin/ldconfig", "/sbin/ldconfig"] {
        if Path::new(p).exists() {
            return p.to_string();
        }
    }
    "ldconfig".to_string()
}

/// Proof that the oracle can run: root, gcc, patchelf, ldconfig, the host glibc files and the
/// static chroot runner are all there and a private mount namespace can be created.
#[derive(Clone, Debug)]
pub struct Oracle {
    /// The static helper that enters a private mount namespace, mounts /proc, chroots, execs.
    pub runner: PathBuf,
}

impl Oracle {
    /// Check every precondition; print `skipping <name>: <why>` and return None when one fails.
    pub fn start(name: &str) -> Option<Oracle> {
        let reason = if !is_root() {
            Some("needs root (chroot)".to_string())
        } else if !tool_runs("gcc", "--version") {
            Some("gcc is not installed".to_string())
        } else if !tool_runs("patchelf", "--version") {
            Some("patchelf is not installed (apt-get install patchelf)".to_string())
        } else if !tool_runs(&ldconfig_path(), "--version") {
            Some("ldconfig is not available".to_string())
        } else if !Path::new(HOST_LIBC).is_file() || !Path::new(HOST_LDSO).is_file() {
            Some(format!(
                "host glibc not at {HOST_LIBC} / {HOST_LDSO} (needs a Debian-like x86_64 host)"
            ))
        } else {
            match runner() {
                Ok(_) => None,
                Err(e) => Some(e.clone()),
            }
        };
        match reason {
            Some(why) => {
                println!("skipping {name}: {why}");
                None
            }
            None => Some(Oracle {
                runner: runner().clone().ok()?,
            }),
        }
    }
}

/// C source of the chroot runner. Linked statically so that no loader (and no
/// `LD_TRACE_LOADED_OBJECTS`) ever touches it: the environment given after the root is passed
/// only to the final `execve`.
///
/// usage: runner ROOT [-C DIR] [NAME=VALUE ...] -- PROGRAM [ARG ...] (`DIR`: the working
/// directory inside the root, `/` without `-C`)
const RUNNER_C: &str = r#"
#define _GNU_SOURCE
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/mount.h>

int main(int argc, char **argv) {
    if (argc < 4) {
        fprintf(stderr, "oracle-runner: usage: runner ROOT [-C DIR] [K=V...] -- PROG [ARGS...]\n");
        return 120;
    }
    /* A private mount namespace: the /proc mount below dies with this process tree. */
    if (unshare(CLONE_NEWNS) != 0) { perror("oracle-runner: unshare(CLONE_NEWNS)"); return 121; }
    if (mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) != 0) {
        perror("oracle-runner: make / rprivate"); return 122;
    }
    size_t len = strlen(argv[1]) + sizeof "/proc";
    char *proc = malloc(len);
    if (proc == NULL) return 120;
    snprintf(proc, len, "%s/proc", argv[1]);
    if (mount("proc", proc, "proc", MS_NOSUID | MS_NOEXEC | MS_NODEV, NULL) != 0) {
        perror("oracle-runner: mount proc"); return 123;
    }
    int i = 2;
    const char *cwd = "/";
    if (i + 1 < argc && strcmp(argv[i], "-C") == 0) { cwd = argv[i + 1]; i += 2; }
    if (chroot(argv[1]) != 0) { perror("oracle-runner: chroot"); return 124; }
    if (chdir(cwd) != 0) { perror("oracle-runner: chdir"); return 125; }
    char **envp = calloc((size_t)argc + 1, sizeof *envp);
    if (envp == NULL) return 120;
    int n = 0;
    for (; i < argc && strcmp(argv[i], "--") != 0; i++) envp[n++] = argv[i];
    envp[n] = NULL;
    if (i + 1 >= argc) { fprintf(stderr, "oracle-runner: no program\n"); return 120; }
    execve(argv[i + 1], &argv[i + 1], envp);
    fprintf(stderr, "oracle-runner: execve %s: ", argv[i + 1]);
    perror("");
    return 126;
}
"#;

/// Exit codes the runner uses for its own failures (before the program runs).
const RUNNER_SETUP_FAILED: std::ops::RangeInclusive<i32> = 120..=125;

fn runner() -> &'static Result<PathBuf, String> {
    static RUNNER: OnceLock<Result<PathBuf, String>> = OnceLock::new();
    RUNNER.get_or_init(build_runner)
}

fn build_runner() -> Result<PathBuf, String> {
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("oracle");
    fs::create_dir_all(&dir).map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
    let pid = std::process::id();
    let src = dir.join(format!("runner-{pid}.c"));
    let tmp_bin = dir.join(format!("runner-{pid}"));
    let bin = dir.join("oracle-runner");
    fs::write(&src, RUNNER_C).map_err(|e| format!("cannot write {}: {e}", src.display()))?;
    let out = Command::new("gcc")
        .args(["-static", "-O2", "-o"])
        .arg(&tmp_bin)
        .arg(&src)
        .output()
        .map_err(|e| format!("cannot run gcc: {e}"))?;
    let _ = fs::remove_file(&src);
    if !out.status.success() {
        return Err(format!(
            "cannot build the static chroot runner (gcc -static; libc6-dev's libc.a missing?): {}",
            String::from_utf8_lossy(&out.stderr)
        ));
    }
    // Atomic replace: concurrent test processes may race here.
    fs::rename(&tmp_bin, &bin).map_err(|e| format!("cannot install runner: {e}"))?;
    // Probe once: can we make a mount namespace and chroot at all?
    let probe = tempfile::Builder::new()
        .prefix("closure-oracle-probe-")
        .tempdir()
        .map_err(|e| format!("tempdir: {e}"))?;
    fs::create_dir_all(probe.path().join("proc")).map_err(|e| format!("mkdir: {e}"))?;
    let out = Command::new(&bin)
        .arg(probe.path())
        .args(["--", "/nonexistent-program"])
        .env_clear()
        .output()
        .map_err(|e| format!("cannot run the chroot runner: {e}"))?;
    let code = out.status.code().unwrap_or(-1);
    if RUNNER_SETUP_FAILED.contains(&code) {
        return Err(format!(
            "cannot create a private mount namespace / chroot here: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        ));
    }
    Ok(bin)
}

// ---------------------------------------------------------------------------------------------
// The test root
// ---------------------------------------------------------------------------------------------

/// A throwaway root laid out like a Debian 12 merged-/usr system holding only glibc.
pub struct TestRoot {
    dir: tempfile::TempDir,
    /// Scratch space outside the root for C sources.
    work: tempfile::TempDir,
    oracle: Oracle,
    /// The working directory programs run in (`/` unless [`TestRoot::set_cwd`]).
    cwd: std::cell::RefCell<String>,
    /// The `ldconfig` of the root's glibc when it is not the host's.
    ldconfig: Option<PathBuf>,
    /// The arguments that make gcc build every object for this root against
    /// the development files of its glibc, when it is older than this
    /// machine's start files and `libc.so` (they would require `GLIBC_2.34`).
    gcc_args: Vec<String>,
}

/// Debian 12's `/etc/ld.so.conf` and its two `ld.so.conf.d` files.
const DEBIAN_LD_SO_CONF: &str = "include /etc/ld.so.conf.d/*.conf\n\n";
const DEBIAN_LIBC_CONF: &str = "# libc default configuration\n/usr/local/lib\n";
const DEBIAN_MULTIARCH_CONF: &str = "# Multiarch support\n/usr/local/lib/x86_64-linux-gnu\n/lib/x86_64-linux-gnu\n/usr/lib/x86_64-linux-gnu\n";

impl TestRoot {
    /// Create the root: `usr/lib/x86_64-linux-gnu` with copies of the host's libc.so.6 and
    /// ld-linux-x86-64.so.2, `lib -> usr/lib`, `lib64 -> usr/lib64`,
    /// `usr/lib64/ld-linux-x86-64.so.2 -> /lib/x86_64-linux-gnu/ld-linux-x86-64.so.2`,
    /// `etc/` with Debian's ld.so.conf (no cache yet: call [`TestRoot::ldconfig`]), `proc/`, `tmp/`.
    ///
    /// `CLOSURE_ORACLE_GLIBC=RELEASE` (`bullseye`, `trixie`, `forky`) builds every such root
    /// around that Debian release's glibc instead ([`TestRoot::with_glibc`]), to ask that
    /// loader every question of the suite.
    pub fn new(oracle: &Oracle) -> TestRoot {
        let release = std::env::var("CLOSURE_ORACLE_GLIBC").ok();
        let release = ["bullseye", "trixie", "forky"]
            .into_iter()
            .find(|r| release.as_deref() == Some(*r));
        match release {
            Some(release) => {
                let glibc = super::glibc::glibc(release)
                    .unwrap_or_else(|why| panic!("CLOSURE_ORACLE_GLIBC={release}: {why}"));
                TestRoot::with_glibc(oracle, &glibc)
            }
            None => TestRoot::new_host(oracle),
        }
    }

    /// [`TestRoot::new`] around this machine's glibc.
    pub fn new_host(oracle: &Oracle) -> TestRoot {
        let dir = tempfile::Builder::new()
            .prefix("closure-oracle-")
            .tempdir()
            .expect("create test root");
        let work = tempfile::Builder::new()
            .prefix("closure-oracle-src-")
            .tempdir()
            .expect("create scratch dir");
        let root = TestRoot {
            dir,
            work,
            oracle: oracle.clone(),
            cwd: std::cell::RefCell::new("/".to_string()),
            ldconfig: None,
            gcc_args: Vec::new(),
        };
        for d in [
            "usr/lib/x86_64-linux-gnu",
            "usr/lib64",
            "usr/bin",
            "etc/ld.so.conf.d",
            "proc",
            "tmp",
        ] {
            root.mkdir(d);
        }
        root.symlink("usr/lib", "/lib");
        root.symlink("usr/lib64", "/lib64");
        root.symlink("usr/bin", "/bin");
        root.symlink(
            "/lib/x86_64-linux-gnu/ld-linux-x86-64.so.2",
            "/usr/lib64/ld-linux-x86-64.so.2",
        );
        for (from, to) in [
            (HOST_LIBC, "/usr/lib/x86_64-linux-gnu/libc.so.6"),
            (HOST_LDSO, "/usr/lib/x86_64-linux-gnu/ld-linux-x86-64.so.2"),
        ] {
            fs::copy(from, root.host(to))
                .unwrap_or_else(|e| panic!("copy {from} into the root: {e}"));
        }
        fs::set_permissions(root.host("/tmp"), fs::Permissions::from_mode(0o1777))
            .expect("chmod tmp");
        root.write("/etc/ld.so.conf", DEBIAN_LD_SO_CONF);
        root.write("/etc/ld.so.conf.d/libc.conf", DEBIAN_LIBC_CONF);
        root.write(
            "/etc/ld.so.conf.d/x86_64-linux-gnu.conf",
            DEBIAN_MULTIARCH_CONF,
        );
        root
    }

    /// [`TestRoot::new`] around another release's glibc: its `libc.so.6`
    /// and `ld.so` in place of the host's, its `ldconfig` for
    /// [`TestRoot::ldconfig`], objects built against its own headers, start
    /// files and `libc.so` when it is older than 2.34 (and its `libdl.so.2`
    /// in the root then, for programs that call `dlopen`).
    pub fn with_glibc(oracle: &Oracle, glibc: &super::glibc::Glibc) -> TestRoot {
        let mut root = TestRoot::new_host(oracle);
        for (from, to) in [
            (&glibc.libc, "/usr/lib/x86_64-linux-gnu/libc.so.6"),
            (
                &glibc.ldso,
                "/usr/lib/x86_64-linux-gnu/ld-linux-x86-64.so.2",
            ),
        ] {
            fs::copy(from, root.host(to))
                .unwrap_or_else(|e| panic!("copy {} into the root: {e}", from.display()));
        }
        root.ldconfig = Some(glibc.ldconfig.clone());
        if glibc.before_2_34 {
            root.gcc_args = glibc.gcc_args();
            let libdl = glibc.libc.with_file_name("libdl.so.2");
            fs::copy(&libdl, root.host("/usr/lib/x86_64-linux-gnu/libdl.so.2"))
                .unwrap_or_else(|e| panic!("copy {} into the root: {e}", libdl.display()));
        }
        root
    }

    /// The `N` of the "release version 2.N" its loader states (glibc 2.31's states none:
    /// 0 then).
    pub fn glibc_minor(&self) -> u32 {
        let ldso = resolve_in_root(self.path(), "/lib64/ld-linux-x86-64.so.2");
        let bytes = fs::read(&ldso).unwrap_or_else(|e| panic!("{}: {e}", ldso.display()));
        let key = b"release version 2.";
        bytes
            .windows(key.len())
            .position(|w| w == key)
            .map(|at| {
                bytes[at + key.len()..]
                    .iter()
                    .take_while(|b| b.is_ascii_digit())
                    .fold(0, |n, &d| n * 10 + u32::from(d - b'0'))
            })
            .unwrap_or(0)
    }

    /// The arguments every gcc run that builds an object for this root starts with (none
    /// unless [`TestRoot::with_glibc`] says so).
    pub fn gcc_args(&self) -> &[String] {
        &self.gcc_args
    }

    /// The `ldconfig` binary for this root's glibc.
    fn ldconfig_binary(&self) -> PathBuf {
        self.ldconfig
            .clone()
            .unwrap_or_else(|| PathBuf::from(ldconfig_path()))
    }

    /// The root directory on the host (the `--sysroot`).
    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    /// Host path of an in-root path (no symlink resolution).
    pub fn host(&self, in_root: &str) -> PathBuf {
        self.dir.path().join(in_root.trim_start_matches('/'))
    }

    /// `mkdir -p` inside the root.
    pub fn mkdir(&self, in_root: &str) {
        fs::create_dir_all(self.host(in_root)).unwrap_or_else(|e| panic!("mkdir {in_root}: {e}"));
    }

    fn mkparent(&self, in_root: &str) {
        if let Some(parent) = self.host(in_root).parent() {
            fs::create_dir_all(parent).unwrap_or_else(|e| panic!("mkdir for {in_root}: {e}"));
        }
    }

    /// Write a file (parents created).
    pub fn write(&self, in_root: &str, contents: impl AsRef<[u8]>) {
        self.mkparent(in_root);
        fs::write(self.host(in_root), contents).unwrap_or_else(|e| panic!("write {in_root}: {e}"));
    }

    /// Create the symlink `link` (in-root path) with the literal `target` (parents created).
    pub fn symlink(&self, target: &str, link: &str) {
        self.mkparent(link);
        std::os::unix::fs::symlink(target, self.host(link))
            .unwrap_or_else(|e| panic!("symlink {link} -> {target}: {e}"));
    }

    /// Copy a file inside the root (both paths in-root; no symlink following for `from`'s
    /// parents beyond what the host does — use real directories).
    pub fn copy(&self, from: &str, to: &str) {
        self.mkparent(to);
        fs::copy(self.host(from), self.host(to))
            .unwrap_or_else(|e| panic!("copy {from} -> {to}: {e}"));
    }

    /// Delete a file or symlink inside the root.
    pub fn remove(&self, in_root: &str) {
        fs::remove_file(self.host(in_root)).unwrap_or_else(|e| panic!("rm {in_root}: {e}"));
    }

    /// Overwrite bytes at `offset` in a file.
    pub fn patch_bytes(&self, in_root: &str, offset: usize, bytes: &[u8]) {
        let p = self.host(in_root);
        let mut data = fs::read(&p).unwrap_or_else(|e| panic!("read {in_root}: {e}"));
        data[offset..offset + bytes.len()].copy_from_slice(bytes);
        fs::write(&p, data).unwrap_or_else(|e| panic!("write {in_root}: {e}"));
    }

    /// Replace the whole `etc/ld.so.conf` (and drop Debian's ld.so.conf.d files).
    pub fn set_ld_so_conf(&self, contents: &str) {
        let _ = fs::remove_dir_all(self.host("/etc/ld.so.conf.d"));
        self.write("/etc/ld.so.conf", contents);
    }

    /// Run the host's `ldconfig -r <root>` (it chroots into the root and writes the root's
    /// `/etc/ld.so.cache` from the root's `/etc/ld.so.conf`). `-X`: create no links, so the
    /// layout stays exactly as the scenario wrote it.
    pub fn ldconfig(&self) {
        let out = Command::new(self.ldconfig_binary())
            .arg("-X")
            .arg("-r")
            .arg(self.path())
            .env_clear()
            .env("PATH", "/usr/sbin:/usr/bin:/sbin:/bin")
            .output()
            .expect("run ldconfig");
        assert!(
            out.status.success(),
            "ldconfig -r {} failed: {}",
            self.path().display(),
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(
            self.host("/etc/ld.so.cache").is_file(),
            "ldconfig wrote no cache"
        );
    }

    /// Like [`TestRoot::ldconfig`] but let ldconfig create the SONAME symlinks, as a package
    /// install on a real system does.
    pub fn ldconfig_with_links(&self) {
        let out = Command::new(self.ldconfig_binary())
            .arg("-r")
            .arg(self.path())
            .env_clear()
            .env("PATH", "/usr/sbin:/usr/bin:/sbin:/bin")
            .output()
            .expect("run ldconfig");
        assert!(
            out.status.success(),
            "ldconfig -r {} failed: {}",
            self.path().display(),
            String::from_utf8_lossy(&out.stderr)
        );
    }

    /// Run patchelf on an in-root file; its standard output.
    pub fn patchelf(&self, in_root: &str, args: &[&str]) -> String {
        let out = Command::new("patchelf")
            .args(args)
            .arg(self.host(in_root))
            .output()
            .expect("run patchelf");
        assert!(
            out.status.success(),
            "patchelf {args:?} {in_root} failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// The `DT_NEEDED` names of an in-root file, in order (`patchelf
    /// --print-needed`).
    pub fn needed_names(&self, in_root: &str) -> Vec<String> {
        let out = self.patchelf(in_root, &["--print-needed"]);
        out.lines().map(str::to_string).collect()
    }

    /// Re-tag every dynamic entry `from` to `to` in an in-root ELF64 LE file.
    pub fn retag_dynamic(&self, in_root: &str, from: u64, to: u64) {
        let p = self.host(in_root);
        let mut data = fs::read(&p).unwrap_or_else(|e| panic!("read {in_root}: {e}"));
        let n = retag_dynamic_bytes(&mut data, from, to)
            .unwrap_or_else(|e| panic!("retag {in_root}: {e}"));
        assert!(n > 0, "retag {in_root}: no dynamic tag {from:#x} found");
        fs::write(&p, data).unwrap_or_else(|e| panic!("write {in_root}: {e}"));
    }

    /// Start describing an executable built at `in_root`.
    pub fn exe(&self, in_root: &str) -> ElfBuild<'_> {
        ElfBuild::new(self, in_root, None)
    }

    /// Start describing a shared library built at `in_root` with DT_SONAME `soname`.
    pub fn lib(&self, in_root: &str, soname: &str) -> ElfBuild<'_> {
        ElfBuild::new(self, in_root, Some(soname.to_string()))
    }

    /// The loader's `$PLATFORM` value: `dl_platform="..."` from `ld.so --list-diagnostics`,
    /// run inside the root.
    pub fn loader_platform(&self) -> String {
        let mut out = self.run_in_root(&[], &[INTERP, "--list-diagnostics"]);
        if !out.stdout.contains("dl_platform=") {
            // glibc before 2.33 has no `--list-diagnostics`; its platform
            // comes from the same CPU tests, so the host's loader tells.
            let host = Command::new(HOST_LDSO)
                .arg("--list-diagnostics")
                .output()
                .expect("run the host's ld.so");
            out.stdout = String::from_utf8_lossy(&host.stdout).into_owned();
        }
        out.stdout
            .lines()
            .find_map(|l| l.strip_prefix("dl_platform=\""))
            .and_then(|rest| rest.strip_suffix('"'))
            .map(str::to_string)
            .unwrap_or_else(|| {
                panic!(
                    "no dl_platform in ld.so --list-diagnostics:\n{}",
                    out.stdout
                )
            })
    }

    /// The glibc-hwcaps subdirectory names the loader searches, most capable first, from the
    /// "(supported, searched)" lines of `ld.so --help`, run inside the root.
    pub fn loader_hwcaps(&self) -> Vec<String> {
        let out = self.run_in_root(&[], &[INTERP, "--help"]);
        parse_hwcaps_help(&out.stdout)
    }

    /// [`TestRoot::loader_hwcaps`], or for a loader without glibc-hwcaps
    /// (before 2.33) the host loader's names: they describe the same CPU,
    /// and `closure` models that loader's legacy capabilities from them
    /// (`avx512_1` needs `x86-64-v4`) without searching glibc-hwcaps.
    pub fn cpu_hwcaps(&self) -> Vec<String> {
        let own = self.loader_hwcaps();
        if !own.is_empty() {
            return own;
        }
        let host = Command::new(HOST_LDSO)
            .arg("--help")
            .output()
            .expect("run the host's ld.so");
        parse_hwcaps_help(&String::from_utf8_lossy(&host.stdout))
    }

    /// Programs run in the root from now on start in `dir` (an in-root
    /// path, made if missing), as a container's working directory.
    pub fn set_cwd(&self, dir: &str) {
        self.mkdir(dir);
        *self.cwd.borrow_mut() = dir.to_string();
    }

    /// The working directory programs run in.
    pub fn cwd(&self) -> String {
        self.cwd.borrow().clone()
    }

    /// Run `argv` inside the root (private mount ns, /proc mounted, chroot), with exactly `env`,
    /// in the working directory of [`TestRoot::set_cwd`].
    pub fn run_in_root(&self, env: &[(&str, &str)], argv: &[&str]) -> RunOutput {
        let mut cmd = Command::new(&self.oracle.runner);
        cmd.arg(self.path());
        let cwd = self.cwd.borrow();
        if cwd.as_str() != "/" {
            cmd.args(["-C", cwd.as_str()]);
        }
        for (k, v) in env {
            cmd.arg(format!("{k}={v}"));
        }
        cmd.arg("--").args(argv).env_clear().stdin(Stdio::null());
        let out = cmd.output().expect("run the chroot runner");
        let code = out.status.code().unwrap_or(-1);
        let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
        assert!(
            !RUNNER_SETUP_FAILED.contains(&code),
            "chroot runner failed before running {argv:?} (exit {code}): {stderr}"
        );
        RunOutput {
            status: code,
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr,
        }
    }

    /// Build (once per name) a stub shared library with SONAME `name` outside the root.
    fn stub(&self, name: &str) -> PathBuf {
        assert!(!name.contains('/'), "stub names cannot contain '/': {name}");
        let dir = self.work.path().join("stubs").join(name);
        let lib = dir.join(name);
        if lib.is_file() {
            return lib;
        }
        fs::create_dir_all(&dir).expect("mkdir stub dir");
        let src = self.next_source("int closure_oracle_stub(void) { return 0; }\n");
        let out = Command::new("gcc")
            .args(["-shared", "-fPIC"])
            .arg(format!("-Wl,-soname,{name}"))
            .arg("-o")
            .arg(&lib)
            .arg(&src)
            .args(self.gcc_args())
            .output()
            .expect("run gcc");
        assert!(
            out.status.success(),
            "gcc for stub {name} failed:\n{}",
            String::from_utf8_lossy(&out.stderr)
        );
        lib
    }

    fn next_source(&self, source: &str) -> PathBuf {
        static COUNTER: AtomicUsize = AtomicUsize::new(0);
        let n = COUNTER.fetch_add(1, Ordering::Relaxed);
        let p = self.work.path().join(format!("src{n}.c"));
        fs::write(&p, source).expect("write C source");
        p
    }
}

/// Output of one program run.
#[derive(Debug, Clone)]
pub struct RunOutput {
    /// Exit code (-1 when killed by a signal).
    pub status: i32,
    /// Standard output.
    pub stdout: String,
    /// Standard error.
    pub stderr: String,
}

/// Compile `c_source` with the host gcc into `in_root`. Every requested DT_NEEDED stays
/// (`--no-as-needed`); `extra` is appended after the source file (so `-L`/`-l` work).
pub fn compile(root: &TestRoot, in_root: &str, c_source: &str, extra: &[String]) {
    let src = root.next_source(c_source);
    root.mkparent(in_root);
    let out_path = root.host(in_root);
    // A static program carries its own libc: this machine's (whose libgcc_eh needs it).
    let is_static = extra.iter().any(|a| a == "-static" || a == "-static-pie");
    // Before 2.34 `dlopen` is libdl's ([`TestRoot::with_glibc`] puts it in the root).
    let old_dlopen = if !is_static && !root.gcc_args.is_empty() && c_source.contains("dlopen(") {
        &["-ldl"][..]
    } else {
        &[][..]
    };
    let out = Command::new("gcc")
        .arg("-o")
        .arg(&out_path)
        .arg(&src)
        .arg("-Wl,--no-as-needed")
        .arg("-Wl,--allow-shlib-undefined")
        .args(if is_static { &[][..] } else { root.gcc_args() })
        .args(extra)
        .args(old_dlopen)
        .output()
        .expect("run gcc");
    assert!(
        out.status.success(),
        "gcc for {in_root} failed ({extra:?}):\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// C source (a top-level `__asm__`) of a `.note.dlopen` note carrying
/// `json`: owner "FDO", type 0x407c0c0a, the JSON NUL-terminated and
/// padded to 4 bytes.
pub fn dlopen_note_c(json: &str) -> String {
    // Quoted once for the assembler's string, once for C's.
    let quote = |s: &str| s.replace('\\', "\\\\").replace('"', "\\\"");
    let lines = [
        "\t.section .note.dlopen,\"a\",@note".to_string(),
        "\t.balign 4".into(),
        "\t.long 4".into(),
        "\t.long 2f - 1f".into(),
        "\t.long 0x407c0c0a".into(),
        "\t.asciz \"FDO\"".into(),
        format!("1:\t.asciz \"{}\"", quote(json)),
        "2:\t.balign 4".into(),
        "\t.text".into(),
    ];
    let mut c = String::from("__asm__(\n");
    for line in lines {
        c.push_str(&format!(
            "    \"{}\\n\"\n",
            quote(&line).replace('\t', "\\t")
        ));
    }
    c.push_str(");\n");
    c
}

/// One DT_NEEDED to produce at link time.
enum Need {
    /// Link against this in-root library file (DT_NEEDED = its SONAME).
    File(String),
    /// Link against a stub built outside the root with this SONAME (the name need not exist
    /// anywhere in the root).
    Name(String),
}

/// Describes one ELF object to build into the root.
pub struct ElfBuild<'r> {
    root: &'r TestRoot,
    out: String,
    soname: Option<String>,
    needs: Vec<Need>,
    rpath: Option<String>,
    runpath: Option<String>,
    extra: Vec<String>,
    /// The C source of a program, instead of an empty `main`; of a
    /// library, added to its one function.
    source: Option<String>,
}

impl<'r> ElfBuild<'r> {
    fn new(root: &'r TestRoot, out: &str, soname: Option<String>) -> ElfBuild<'r> {
        ElfBuild {
            root,
            out: out.to_string(),
            soname,
            needs: Vec::new(),
            rpath: None,
            runpath: None,
            extra: Vec::new(),
            source: None,
        }
    }

    /// A program built from this C source, or a library with it added
    /// (its libraries, search paths and `DT_NEEDED` entries are set as for
    /// any other).
    pub fn source(mut self, c_source: &str) -> Self {
        self.source = Some(c_source.to_string());
        self
    }

    /// Link against these already-built in-root library files, in this order (each becomes a
    /// DT_NEEDED of the library's SONAME; they precede libc.so.6).
    pub fn needs(mut self, libs: &[&str]) -> Self {
        self.needs
            .extend(libs.iter().map(|s| Need::File(s.to_string())));
        self
    }

    /// Add DT_NEEDED entries with exactly these names (no '/'), in order, by linking against
    /// stubs built outside the root: no file of that name is created in the root.
    pub fn needs_names(mut self, names: &[&str]) -> Self {
        self.needs
            .extend(names.iter().map(|s| Need::Name(s.to_string())));
        self
    }

    /// DT_RPATH value (literal; DSTs are not expanded by the linker).
    pub fn rpath(mut self, value: &str) -> Self {
        self.rpath = Some(value.to_string());
        self
    }

    /// DT_RUNPATH value.
    pub fn runpath(mut self, value: &str) -> Self {
        self.runpath = Some(value.to_string());
        self
    }

    /// Extra gcc argument.
    pub fn arg(mut self, a: &str) -> Self {
        self.extra.push(a.to_string());
        self
    }

    /// Compile it.
    pub fn build(self) {
        let mut args: Vec<String> = Vec::new();
        let source = match &self.soname {
            Some(soname) => {
                args.extend([
                    "-shared".into(),
                    "-fPIC".into(),
                    format!("-Wl,-soname,{soname}"),
                ]);
                let ident: String = soname
                    .chars()
                    .map(|c| if c.is_ascii_alphanumeric() { c } else { '_' })
                    .collect();
                format!(
                    "{}int closure_oracle_{ident}(void) {{ return 42; }}\n",
                    self.source.as_deref().unwrap_or_default()
                )
            }
            None => self
                .source
                .clone()
                .unwrap_or_else(|| "int main(void) { return 0; }\n".to_string()),
        };
        match (&self.rpath, &self.runpath) {
            (Some(rp), Some(rup)) => {
                // ld cannot emit both tags: emit DT_RPATH plus DT_AUDIT carrying the RUNPATH
                // string, then re-tag DT_AUDIT to DT_RUNPATH below.
                args.push("-Wl,--disable-new-dtags".into());
                args.push(format!("-Wl,-rpath,{rp}"));
                args.push(format!("-Wl,--audit,{rup}"));
            }
            (Some(rp), None) => {
                args.push("-Wl,--disable-new-dtags".into());
                args.push(format!("-Wl,-rpath,{rp}"));
            }
            (None, Some(rup)) => {
                args.push("-Wl,--enable-new-dtags".into());
                args.push(format!("-Wl,-rpath,{rup}"));
            }
            (None, None) => {}
        }
        for need in &self.needs {
            let host = match need {
                Need::File(lib) => self.root.host(lib),
                Need::Name(name) => self.root.stub(name),
            };
            let dir = host.parent().expect("library dir");
            let file = host.file_name().expect("library file").to_string_lossy();
            args.push(format!("-L{}", dir.display()));
            args.push(format!("-l:{file}"));
        }
        args.extend(self.extra.iter().cloned());
        compile(self.root, &self.out, &source, &args);
        if self.rpath.is_some() && self.runpath.is_some() {
            self.root.retag_dynamic(&self.out, DT_AUDIT, DT_RUNPATH);
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Minimal ELF64 little-endian reading (host sweep, tag patching)
// ---------------------------------------------------------------------------------------------

fn u16_at(d: &[u8], o: usize) -> Option<u16> {
    d.get(o..o + 2).map(|b| u16::from_le_bytes([b[0], b[1]]))
}
fn u32_at(d: &[u8], o: usize) -> Option<u32> {
    d.get(o..o + 4)
        .map(|b| u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
}
fn u64_at(d: &[u8], o: usize) -> Option<u64> {
    d.get(o..o + 8).map(|b| {
        let mut a = [0u8; 8];
        a.copy_from_slice(b);
        u64::from_le_bytes(a)
    })
}

/// Program-header summary of an ELF file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ElfSummary {
    /// `EI_CLASS` (1 = 32-bit, 2 = 64-bit).
    pub class: u8,
    /// `e_type`.
    pub e_type: u16,
    /// `e_machine`.
    pub machine: u16,
    /// Has `PT_INTERP`.
    pub has_interp: bool,
    /// Has `PT_DYNAMIC`.
    pub has_dynamic: bool,
    /// The `PT_INTERP` string, when present and readable.
    pub interp: Option<String>,
}

/// Read the ELF header and program headers (64-bit little-endian only; other files → None).
pub fn elf_summary(path: &Path) -> Option<ElfSummary> {
    let mut f = fs::File::open(path).ok()?;
    let mut hdr = [0u8; 64];
    f.read_exact(&mut hdr).ok()?;
    if &hdr[..4] != b"\x7fELF" || hdr[4] != 2 || hdr[5] != 1 {
        return None;
    }
    let e_type = u16_at(&hdr, 16)?;
    let machine = u16_at(&hdr, 18)?;
    let phoff = u64_at(&hdr, 32)?;
    let phentsize = u16_at(&hdr, 54)? as usize;
    let phnum = u16_at(&hdr, 56)? as usize;
    if phentsize < 56 || phnum == 0 || phnum > 4096 {
        return Some(ElfSummary {
            class: 2,
            e_type,
            machine,
            has_interp: false,
            has_dynamic: false,
            interp: None,
        });
    }
    f.seek(SeekFrom::Start(phoff)).ok()?;
    let mut ph = vec![0u8; phentsize * phnum];
    f.read_exact(&mut ph).ok()?;
    let mut s = ElfSummary {
        class: 2,
        e_type,
        machine,
        has_interp: false,
        has_dynamic: false,
        interp: None,
    };
    let mut interp_at = None;
    for i in 0..phnum {
        match u32_at(&ph, i * phentsize)? {
            2 => s.has_dynamic = true,
            3 => {
                s.has_interp = true;
                let off = u64_at(&ph, i * phentsize + 8)?;
                let size = u64_at(&ph, i * phentsize + 32)?;
                interp_at = Some((off, size));
            }
            _ => {}
        }
    }
    if let Some((off, size)) = interp_at {
        if size > 0 && size <= 4096 {
            let mut buf = vec![0u8; size as usize];
            if f.seek(SeekFrom::Start(off)).is_ok() && f.read_exact(&mut buf).is_ok() {
                let end = buf.iter().position(|&b| b == 0).unwrap_or(buf.len());
                s.interp = Some(String::from_utf8_lossy(&buf[..end]).into_owned());
            }
        }
    }
    Some(s)
}

/// Change every dynamic entry tagged `from` into `to` (ELF64 LE); returns how many changed.
pub fn retag_dynamic_bytes(data: &mut [u8], from: u64, to: u64) -> Result<usize, String> {
    if data.len() < 64 || &data[..4] != b"\x7fELF" || data[4] != 2 || data[5] != 1 {
        return Err("not an ELF64 little-endian file".into());
    }
    let phoff = u64_at(data, 32).ok_or("short header")? as usize;
    let phentsize = u16_at(data, 54).ok_or("short header")? as usize;
    let phnum = u16_at(data, 56).ok_or("short header")? as usize;
    let mut dynamic = None;
    for i in 0..phnum {
        let ph = phoff + i * phentsize;
        if u32_at(data, ph).ok_or("truncated phdr")? == 2 {
            let off = u64_at(data, ph + 8).ok_or("truncated phdr")? as usize;
            let size = u64_at(data, ph + 32).ok_or("truncated phdr")? as usize;
            dynamic = Some((off, size));
        }
    }
    let (off, size) = dynamic.ok_or("no PT_DYNAMIC")?;
    let mut changed = 0;
    let mut at = off;
    while at + 16 <= off + size {
        let tag = u64_at(data, at).ok_or("truncated dynamic section")?;
        if tag == 0 {
            break;
        }
        if tag == from {
            data[at..at + 8].copy_from_slice(&to.to_le_bytes());
            changed += 1;
        }
        at += 16;
    }
    Ok(changed)
}

// ---------------------------------------------------------------------------------------------
// The real loader's answer
// ---------------------------------------------------------------------------------------------

/// What `LD_TRACE_LOADED_OBJECTS=1` (or `ld.so --list`) printed, parsed.
#[derive(Debug, Clone, Default)]
pub struct LoaderTrace {
    /// Paths of loaded objects: `=>` targets and by-path lines (includes the interpreter).
    pub loaded: BTreeSet<String>,
    /// Names printed as `name => not found`.
    pub not_found: BTreeSet<String>,
    /// `(name, path)` for every `name => path` line, in order.
    pub pairs: Vec<(String, String)>,
    /// The loader said "statically linked".
    pub statically_linked: bool,
    /// Lines that matched no pattern (e.g. version errors).
    pub other: Vec<String>,
    /// The interpreter was added to `loaded` although ld.so did not print it.
    pub interp_implicit: bool,
    /// Exit code.
    pub status: i32,
    /// Raw stdout.
    pub stdout: String,
    /// Raw stderr (fatal errors such as `invalid ELF header`).
    pub stderr: String,
}

/// Split `"<path> (0x<hex>)"` into the path.
fn strip_address(s: &str) -> Option<&str> {
    let body = s.strip_suffix(')')?;
    let idx = body.rfind(" (0x")?;
    let hex = &body[idx + 4..];
    if hex.is_empty() || !hex.chars().all(|c| c.is_ascii_hexdigit()) {
        return None;
    }
    Some(&body[..idx])
}

/// Parse the loader's trace output.
pub fn parse_trace(stdout: &str) -> LoaderTrace {
    let mut t = LoaderTrace {
        stdout: stdout.to_string(),
        ..LoaderTrace::default()
    };
    for raw in stdout.lines() {
        let Some(line) = raw.strip_prefix('\t') else {
            if !raw.trim().is_empty() {
                t.other.push(raw.to_string());
            }
            continue;
        };
        if line.trim() == "statically linked" {
            t.statically_linked = true;
            continue;
        }
        if let Some((name, rhs)) = line.split_once(" => ") {
            if rhs == "not found" {
                t.not_found.insert(name.to_string());
            } else if let Some(path) = strip_address(rhs) {
                t.loaded.insert(path.to_string());
                t.pairs.push((name.to_string(), path.to_string()));
            } else {
                t.other.push(raw.to_string());
            }
            continue;
        }
        match strip_address(line) {
            Some("linux-vdso.so.1") | Some("linux-gate.so.1") => {}
            Some(path) => {
                t.loaded.insert(path.to_string());
            }
            None => t.other.push(raw.to_string()),
        }
    }
    t
}

/// Run the program `prog` (in-root path) inside the root with `LD_TRACE_LOADED_OBJECTS=1` plus
/// `env`: the kernel execs it and its `PT_INTERP` loader traces what it would load.
pub fn loader_trace(root: &TestRoot, prog: &str, env: &[(&str, &str)]) -> LoaderTrace {
    let mut full_env = vec![("LD_TRACE_LOADED_OBJECTS", "1")];
    full_env.extend_from_slice(env);
    let out = root.run_in_root(&full_env, &[prog]);
    let mut t = parse_trace(&out.stdout);
    t.status = out.status;
    t.stderr = out.stderr;
    // The kernel always maps the program's PT_INTERP, but ld.so prints itself only when some
    // object's DT_NEEDED names it (libc.so.6 does). When nothing pulled libc in (e.g. NODEFLIB
    // hid it), the interpreter is still loaded: count it.
    if t.status == 0 && !t.statically_linked {
        let interp = elf_summary(&resolve_in_root(root.path(), prog)).and_then(|s| s.interp);
        if let Some(interp) = interp {
            if !t.loaded.contains(&interp) {
                t.loaded.insert(interp);
                t.interp_implicit = true;
            }
        }
    }
    t
}

/// Run the loader explicitly on FILE inside the root (e.g. for a library), as `ldd` does:
/// `LD_TRACE_LOADED_OBJECTS=1 ld.so FILE`. (glibc 2.36's `ld.so --list FILE` makes a missing
/// library fatal instead of printing `=> not found`; the environment form prints it.)
pub fn loader_list(root: &TestRoot, file: &str, env: &[(&str, &str)]) -> LoaderTrace {
    let mut full_env = vec![("LD_TRACE_LOADED_OBJECTS", "1")];
    full_env.extend_from_slice(env);
    let out = root.run_in_root(&full_env, &[INTERP, file]);
    let mut t = parse_trace(&out.stdout);
    t.status = out.status;
    t.stderr = out.stderr;
    t
}

/// Host path of an in-root path with every symlink followed the way the kernel would inside a
/// chroot at `root`: absolute targets restart at `root`, `..` never leaves it.
pub fn resolve_in_root(root: &Path, path: &str) -> PathBuf {
    let mut queue: std::collections::VecDeque<String> =
        path.split('/').map(str::to_string).collect();
    let mut cur: Vec<String> = Vec::new();
    let mut hops = 0;
    while let Some(c) = queue.pop_front() {
        if c.is_empty() || c == "." {
            continue;
        }
        if c == ".." {
            cur.pop();
            continue;
        }
        let mut here = root.to_path_buf();
        here.extend(&cur);
        here.push(&c);
        match fs::read_link(&here) {
            Ok(target) if hops < 40 => {
                hops += 1;
                let target = target.to_string_lossy().into_owned();
                if target.starts_with('/') {
                    cur.clear();
                }
                for part in target.split('/').rev() {
                    queue.push_front(part.to_string());
                }
            }
            _ => cur.push(c),
        }
    }
    let mut out = root.to_path_buf();
    out.extend(&cur);
    out
}

/// Parse the glibc-hwcaps names marked "searched" in `ld.so --help`, in printed order.
pub fn parse_hwcaps_help(help: &str) -> Vec<String> {
    hwcaps_help_lines(help)
        .into_iter()
        .filter(|(_, searched)| *searched)
        .map(|(name, _)| name)
        .collect()
}

/// Every glibc-hwcaps subdirectory name `ld.so --help` lists, in its
/// priority order, and whether it is searched on this CPU ("(supported,
/// searched)"); the names a loader knows, whatever the CPU.
pub fn hwcaps_help_lines(help: &str) -> Vec<(String, bool)> {
    let mut in_section = false;
    let mut names = Vec::new();
    for line in help.lines() {
        if line.starts_with("Subdirectories of glibc-hwcaps") {
            in_section = true;
            continue;
        }
        if in_section {
            let t = line.trim();
            if t.is_empty() || !line.starts_with(' ') {
                break;
            }
            let (name, rest) = t.split_once(' ').unwrap_or((t, ""));
            let searched = rest.contains("searched") && !rest.contains("not searched");
            names.push((name.to_string(), searched));
        }
    }
    names
}

/// Run the host loader on FILE the way `ldd` does: `LD_TRACE_LOADED_OBJECTS=1
/// /lib64/ld-linux-x86-64.so.2 FILE`, environment otherwise cleared but PATH. This is
/// `ld.so --list FILE` except that a missing library prints `=> not found` instead of aborting.
/// "statically linked" (a library without DT_NEEDED, a static-pie, ld.so itself) means the
/// loader loads nothing for it: the loaded set stays empty.
pub fn host_list(file: &Path) -> LoaderTrace {
    let out = Command::new(INTERP)
        .arg(file)
        .env_clear()
        .env("PATH", "/usr/local/bin:/usr/bin:/bin:/usr/sbin:/sbin")
        .env("LD_TRACE_LOADED_OBJECTS", "1")
        .stdin(Stdio::null())
        .output()
        .expect("run the host ld.so --list");
    let mut t = parse_trace(&String::from_utf8_lossy(&out.stdout));
    t.status = out.status.code().unwrap_or(-1);
    t.stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    // As in `loader_trace`: a program with PT_INTERP always gets its interpreter, even when
    // ld.so does not print itself (nothing named it in a DT_NEEDED).
    if t.status == 0 && !t.statically_linked {
        if let Some(interp) = elf_summary(file).and_then(|s| s.interp) {
            if !t.loaded.contains(&interp) {
                t.loaded.insert(interp);
                t.interp_implicit = true;
            }
        }
    }
    t
}

/// The host loader's `LD_DEBUG=<what>` log (its stderr) for FILE, traced
/// as [`host_list`] traces it.
pub fn host_debug_log(file: &Path, what: &str) -> String {
    let out = Command::new(INTERP)
        .arg(file)
        .env_clear()
        .env("PATH", "/usr/local/bin:/usr/bin:/bin:/usr/sbin:/sbin")
        .env("LD_TRACE_LOADED_OBJECTS", "1")
        .env("LD_DEBUG", what)
        .stdin(Stdio::null())
        .output()
        .expect("run the host ld.so with LD_DEBUG=libs");
    String::from_utf8_lossy(&out.stderr).into_owned()
}

// ---------------------------------------------------------------------------------------------
// closure's answer
// ---------------------------------------------------------------------------------------------

/// One entry of `objects[]`.
#[derive(Debug, Clone, Default)]
pub struct ClosureObject {
    /// Path string at which the loader opens it.
    pub path: String,
    /// DT_SONAME.
    pub soname: Option<String>,
    /// DT_NEEDED names.
    pub needed: Vec<String>,
    /// Search step.
    pub found_via: String,
    /// Requesters.
    pub needed_by: Vec<String>,
    /// Roots reaching it (multi-root runs).
    pub roots: Option<Vec<String>>,
}

/// One entry of `missing[]`.
#[derive(Debug, Clone, Default)]
pub struct ClosureMissing {
    /// The name that was not found.
    pub soname: String,
    /// Requesters.
    pub needed_by: Vec<String>,
    /// Directories / steps searched.
    pub searched: Vec<String>,
    /// Roots reaching it (multi-root runs).
    pub roots: Option<Vec<String>>,
    /// The whole JSON entry (for reasons and extra fields).
    pub raw: Value,
}

/// One run of the `closure` binary.
#[derive(Debug, Clone, Default)]
pub struct ClosureRun {
    /// The command line (for messages).
    pub command: String,
    /// Exit code.
    pub status: i32,
    /// Raw stdout.
    pub stdout: String,
    /// Raw stderr.
    pub stderr: String,
    /// Parsed JSON, when stdout was JSON.
    pub json: Option<Value>,
    /// JSON parse error, if any.
    pub json_error: Option<String>,
    /// `objects[]`.
    pub objects: Vec<ClosureObject>,
    /// `missing[]`.
    pub missing: Vec<ClosureMissing>,
    /// The roots the command named (`--root`); empty when not known.
    pub requested: Vec<String>,
}

fn strings(v: Option<&Value>) -> Vec<String> {
    match v {
        Some(Value::String(s)) => vec![s.clone()],
        Some(Value::Array(a)) => a
            .iter()
            .filter_map(|x| x.as_str().map(str::to_string))
            .collect(),
        _ => Vec::new(),
    }
}

fn opt_strings(v: Option<&Value>) -> Option<Vec<String>> {
    v.map(|x| strings(Some(x)))
}

fn str_field(v: &Value, key: &str) -> String {
    v.get(key).and_then(Value::as_str).unwrap_or("").to_string()
}

/// Parse closure's JSON report into a [`ClosureRun`].
pub fn parse_closure_output(
    command: String,
    status: i32,
    stdout: String,
    stderr: String,
) -> ClosureRun {
    let mut run = ClosureRun {
        command,
        status,
        stdout,
        stderr,
        ..ClosureRun::default()
    };
    match serde_json::from_str::<Value>(&run.stdout) {
        Ok(v) => {
            if let Some(objs) = v.get("objects").and_then(Value::as_array) {
                run.objects = objs
                    .iter()
                    .map(|o| ClosureObject {
                        path: str_field(o, "path"),
                        soname: o.get("soname").and_then(Value::as_str).map(str::to_string),
                        needed: strings(o.get("needed")),
                        found_via: str_field(o, "found_via"),
                        needed_by: strings(o.get("needed_by")),
                        roots: opt_strings(o.get("roots")),
                    })
                    .collect();
            }
            if let Some(miss) = v.get("missing").and_then(Value::as_array) {
                run.missing = miss
                    .iter()
                    .map(|m| ClosureMissing {
                        soname: str_field(m, "soname"),
                        needed_by: strings(m.get("needed_by")),
                        searched: strings(m.get("searched")),
                        roots: opt_strings(m.get("roots")),
                        raw: m.clone(),
                    })
                    .collect();
            }
            run.json = Some(v);
        }
        Err(e) => run.json_error = Some(e.to_string()),
    }
    run
}

/// Path of the `closure` binary under test.
pub fn closure_bin() -> &'static str {
    env!("CARGO_BIN_EXE_closure")
}

/// Run `closure --sysroot <sysroot> --root R... --format json [extra]`.
pub fn run_closure(sysroot: &Path, roots: &[&str], extra: &[&str]) -> ClosureRun {
    let mut cmd = Command::new(closure_bin());
    cmd.arg("--sysroot").arg(sysroot);
    for r in roots {
        cmd.arg("--root").arg(r);
    }
    // The loader reports what it maps at start-up; run-time additions
    // (libgcc_s, dlopen notes) are compared elsewhere.
    cmd.args(["--format", "json", "--startup-only"])
        .args(extra)
        .stdin(Stdio::null());
    let mut shown = format!("closure --sysroot {}", sysroot.display());
    if roots.len() <= 4 {
        for r in roots {
            let _ = write!(shown, " --root {r}");
        }
    } else {
        let _ = write!(shown, " --root ... ({} roots)", roots.len());
    }
    let _ = write!(shown, " --format json --startup-only");
    for a in extra {
        let _ = write!(shown, " {a}");
    }
    let out = cmd
        .output()
        .unwrap_or_else(|e| panic!("cannot run {}: {e}", closure_bin()));
    let mut run = parse_closure_output(
        shown,
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    );
    run.requested = roots.iter().map(|r| r.to_string()).collect();
    run
}

/// `check(name, root)` on a root around this machine's glibc, then `check(name (release),
/// root)` around each Debian release's that apt can fetch (the others are skipped, saying
/// why).
pub fn on_host_and_releases(
    name: &str,
    o: &Oracle,
    releases: &[&'static str],
    check: fn(&str, &TestRoot),
) {
    check(name, &TestRoot::new_host(o));
    for release in releases {
        let g = match super::glibc::glibc(release) {
            Ok(g) => g,
            Err(why) => {
                println!("skipping {name} on {release}: {why}");
                continue;
            }
        };
        let r = TestRoot::with_glibc(o, &g);
        check(&format!("{name} ({release})"), &r);
    }
}

/// closure's JSON report of `prog` in `sysroot` with `args`, run-time loads included (no
/// `--startup-only`).
pub fn run_closure_with_run_time(sysroot: &Path, prog: &str, args: &[&str]) -> ClosureRun {
    let out = Command::new(closure_bin())
        .arg("--sysroot")
        .arg(sysroot)
        .args(["--root", prog, "--format", "json"])
        .args(args)
        .stdin(Stdio::null())
        .output()
        .unwrap_or_else(|e| panic!("cannot run {}: {e}", closure_bin()));
    parse_closure_output(
        format!("closure --root {prog} {}", args.join(" ")),
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// closure over one program of a test root.
pub fn closure_trace(root: &TestRoot, prog: &str, extra: &[&str]) -> ClosureRun {
    run_closure(root.path(), &[prog], extra)
}

/// The objects a loader's stderr says stopped the program: "OBJECT: CPU ISA level is lower
/// than required" (glibc 2.33 and later, an x86 ISA level the CPU lacks).
pub fn isa_stops(stderr: &str) -> BTreeSet<String> {
    stderr
        .lines()
        .filter_map(|l| l.strip_suffix(": CPU ISA level is lower than required"))
        .map(str::to_string)
        .collect()
}

impl ClosureRun {
    /// Every object's `hwcaps_variants`: the copies other CPUs take, recorded for staging.
    pub fn hwcaps_variants(&self) -> BTreeSet<String> {
        self.json
            .as_ref()
            .and_then(|j| j["objects"].as_array())
            .into_iter()
            .flatten()
            .flat_map(|o| o["hwcaps_variants"].as_array().cloned().unwrap_or_default())
            .filter_map(|v| v.as_str().map(str::to_string))
            .collect()
    }

    /// The JSON's `warnings`.
    pub fn warnings(&self) -> impl Iterator<Item = &str> {
        self.json
            .as_ref()
            .and_then(|j| j["warnings"].as_array())
            .into_iter()
            .flatten()
            .filter_map(|w| w.as_str())
    }

    /// The file names of the objects a run-time-load warning containing
    /// `what` names ("OBJECT (loaded at run time by ROOT): …").
    pub fn run_time_warned(&self, what: &str) -> BTreeSet<String> {
        self.warnings()
            .filter(|w| w.contains(what))
            .filter_map(|w| w.split(" (loaded at run time").next())
            .filter_map(|p| p.rsplit('/').next())
            .map(str::to_string)
            .collect()
    }

    /// `refused[].object`: what closure says the loader refuses.
    pub fn refused_objects(&self) -> BTreeSet<String> {
        self.json
            .as_ref()
            .and_then(|j| j["refused"].as_array())
            .into_iter()
            .flatten()
            .filter_map(|x| x["object"].as_str().map(str::to_string))
            .collect()
    }

    /// Whether an object or missing name with these `roots` belongs to a
    /// root the command named: not only to a variant that `closure` traced
    /// for staging (a baseline run's glibc-hwcaps and legacy variants are
    /// roots of their own).
    fn requested_reach(&self, roots: &Option<Vec<String>>) -> bool {
        match roots {
            Some(rs) if !self.requested.is_empty() => rs.iter().any(|r| self.requested.contains(r)),
            _ => true,
        }
    }

    /// Paths of all objects except roots (`found_via == "root"`) that the
    /// named roots load.
    pub fn loaded(&self) -> BTreeSet<String> {
        self.objects
            .iter()
            .filter(|o| o.found_via != "root" && self.requested_reach(&o.roots))
            .map(|o| o.path.clone())
            .collect()
    }

    /// `missing[].soname` of the named roots.
    pub fn missing_names(&self) -> BTreeSet<String> {
        self.missing
            .iter()
            .filter(|m| self.requested_reach(&m.roots))
            .map(|m| m.soname.clone())
            .collect()
    }

    /// The part of a multi-root run that belongs to `root`: (loaded paths without the root
    /// itself, missing names). Objects without a `roots` field count for every root only when
    /// the run had a single root.
    pub fn for_root(&self, root: &str, single: bool) -> (BTreeSet<String>, BTreeSet<String>) {
        let belongs = |roots: &Option<Vec<String>>| match roots {
            Some(rs) => rs.iter().any(|r| r == root),
            None => single,
        };
        let loaded = self
            .objects
            .iter()
            .filter(|o| belongs(&o.roots) && o.path != root)
            .map(|o| o.path.clone())
            .collect();
        let missing = self
            .missing
            .iter()
            .filter(|m| belongs(&m.roots))
            .map(|m| m.soname.clone())
            .collect();
        (loaded, missing)
    }

    /// A full human-readable dump (command, exit code, stdout, stderr).
    pub fn dump(&self) -> String {
        let json = match &self.json {
            Some(v) => serde_json::to_string_pretty(v).unwrap_or_default(),
            None => format!(
                "(stdout is not JSON: {})\n{}",
                self.json_error.as_deref().unwrap_or("?"),
                self.stdout
            ),
        };
        format!(
            "$ {}\nexit code: {}\n--- stdout ---\n{}\n--- stderr ---\n{}",
            self.command, self.status, json, self.stderr
        )
    }
}

impl LoaderTrace {
    /// A full human-readable dump.
    pub fn dump(&self) -> String {
        let note = if self.interp_implicit {
            format!(
                "(ld.so did not print itself; {INTERP} counted as loaded: the kernel maps it)\n"
            )
        } else {
            String::new()
        };
        format!(
            "exit code: {}\n{note}--- stdout ---\n{}--- stderr ---\n{}",
            self.status, self.stdout, self.stderr
        )
    }
}

fn set_diff(a: &BTreeSet<String>, b: &BTreeSet<String>) -> Vec<String> {
    a.difference(b).cloned().collect()
}

/// Compare the loader's and closure's answers; `Err(report)` on any difference.
pub fn compare(trace: &LoaderTrace, closure: &ClosureRun) -> Result<(), String> {
    let mut problems = Vec::new();
    if trace.status != 0 {
        problems.push(format!(
            "the real loader failed (exit {}) — scenario expected a clean trace",
            trace.status
        ));
    }
    if closure.json.is_none() {
        problems.push("closure printed no JSON".to_string());
    }
    let c_loaded = closure.loaded();
    let c_missing = closure.missing_names();
    if trace.loaded != c_loaded {
        problems.push(format!(
            "loaded paths differ:\n    only ld.so:   {:?}\n    only closure: {:?}",
            set_diff(&trace.loaded, &c_loaded),
            set_diff(&c_loaded, &trace.loaded)
        ));
    }
    if trace.not_found != c_missing {
        problems.push(format!(
            "not-found names differ:\n    only ld.so:   {:?}\n    only closure: {:?}",
            set_diff(&trace.not_found, &c_missing),
            set_diff(&c_missing, &trace.not_found)
        ));
    }
    let want_exit = if trace.not_found.is_empty() { 0 } else { 1 };
    if closure.status != want_exit {
        problems.push(format!(
            "closure exit code {} but expected {want_exit} (ld.so not found: {:?})",
            closure.status, trace.not_found
        ));
    }
    if problems.is_empty() {
        Ok(())
    } else {
        Err(problems.join("\n  "))
    }
}

/// Assert that closure agrees exactly with the real loader; on failure print both sides fully.
pub fn assert_same(name: &str, trace: &LoaderTrace, closure: &ClosureRun) {
    if let Err(report) = compare(trace, closure) {
        panic!(
            "{name}: closure disagrees with the real loader\n  {report}\n\
             ld.so loaded:    {:?}\nld.so not found: {:?}\n\
             closure loaded:  {:?}\nclosure missing: {:?}\n\
             ===== real loader =====\n{}\n===== closure =====\n{}",
            trace.loaded,
            trace.not_found,
            closure.loaded(),
            closure.missing_names(),
            trace.dump(),
            closure.dump()
        );
    }
}

/// Run both sides for `prog` and assert they agree. `ld_env` goes to the loader (e.g.
/// `LD_LIBRARY_PATH`), `closure_args` to closure (e.g. `--library-path`).
pub fn check(
    name: &str,
    root: &TestRoot,
    prog: &str,
    ld_env: &[(&str, &str)],
    closure_args: &[&str],
) -> (LoaderTrace, ClosureRun) {
    let trace = loader_trace(root, prog, ld_env);
    let run = closure_trace(root, prog, closure_args);
    println!(
        "{name}: ld.so loaded {:?}, not found {:?}",
        trace.loaded, trace.not_found
    );
    assert_same(name, &trace, &run);
    assert_same_ldd_lines(name, root, prog, &trace, closure_args);
    assert_same_search_log(name, root, prog, ld_env, closure_args);
    assert_same_loading_edges(name, root, prog, ld_env, closure_args);
    (trace, run)
}

/// What the loader printed tracing a program in a root `closure` staged.
pub struct StagedTrace {
    /// The staged root's directory (removed when dropped).
    pub dir: tempfile::TempDir,
    pub status: std::process::ExitStatus,
    pub stdout: String,
    pub stderr: String,
}

/// Stages `prog` of `r` with `args` (and `--allow-missing`: names found
/// nowhere stay missing; staging may then exit 1 when `missing`), then
/// traces it in the staged root (`LD_TRACE_LOADED_OBJECTS=1` and `env`),
/// from the root's working directory.
pub fn trace_in_staged_root(
    name: &str,
    r: &TestRoot,
    prog: &str,
    env: &[(&str, &str)],
    args: &[&str],
    missing: bool,
) -> StagedTrace {
    let dir = tempfile::tempdir().expect("staging dir");
    let out = dir.path().join("root");
    let staged = Command::new(closure_bin())
        .arg("--sysroot")
        .arg(r.path())
        .args(["--root", prog, "--allow-missing", "--out"])
        .arg(&out)
        .args(args)
        .stdin(Stdio::null())
        .output()
        .expect("run closure");
    let code = staged.status.code().unwrap_or(-1);
    assert!(
        code == 0 || (code == 1 && missing),
        "{name}: staging exit {code}\n{}",
        String::from_utf8_lossy(&staged.stderr)
    );
    let mut vars = vec![("LD_TRACE_LOADED_OBJECTS", "1")];
    vars.extend_from_slice(env);
    // The runtime makes the working directory when the image lacks it.
    let cwd = r.cwd();
    std::fs::create_dir_all(out.join(cwd.trim_start_matches('/'))).expect("working directory");
    let (status, stdout, stderr) =
        crate::support::chroot::run_in_root_at(&out, &cwd, &[prog], &vars);
    StagedTrace {
        dir,
        status,
        stdout,
        stderr,
    }
}

/// Stages the program with the same options (`--allow-missing`: names
/// found nowhere stay missing) and runs the loader in the staged root: it
/// must map the same objects for the same names, in the same order, and
/// miss the same names.
pub fn staged_root_loads_the_same(
    name: &str,
    r: &TestRoot,
    prog: &str,
    env: &[(&str, &str)],
    args: &[&str],
    trace: &LoaderTrace,
) {
    let staged = trace_in_staged_root(name, r, prog, env, args, !trace.not_found.is_empty());
    let (status, stdout, stderr) = (&staged.status, &staged.stdout, &staged.stderr);
    let inside = parse_trace(stdout);
    assert!(
        status.success() && inside.pairs == trace.pairs && inside.not_found == trace.not_found,
        "{name}: the loader in the staged root differs ({status})\n  sysroot: {:?} missing {:?}\n  staged:  {:?} missing {:?}\n{stderr}",
        trace.pairs,
        trace.not_found,
        inside.pairs,
        inside.not_found
    );
}

/// (name, requester) of every object the loader's `LD_DEBUG=files` log
/// says it mapped: the name it was asked for (a path's tokens expanded)
/// and the object that asked.
pub fn loader_loading_edges(stderr: &str) -> BTreeSet<(String, String)> {
    let mut out = BTreeSet::new();
    // The last request: it mapped a file if "generating link map" follows
    // (a name not found is logged as asked for, and nothing more).
    let mut asked: Option<(String, String)> = None;
    for raw in stderr.lines() {
        let Some((_, line)) = raw.split_once(":\t") else {
            continue;
        };
        let Some(rest) = line.strip_prefix("file=") else {
            continue;
        };
        if let Some((name, by)) = rest.split_once(" [0];  needed by ") {
            let by = by.strip_suffix(" [0]").unwrap_or(by);
            asked = Some((name.to_string(), by.to_string()));
        } else if let Some(name) = rest.strip_suffix(" [0];  generating link map") {
            if let Some(a) = asked.take().filter(|(n, _)| n == name) {
                out.insert(a);
            }
        }
    }
    out
}

/// (name, requester) of every object `closure --format tree` expands under
/// its first root: the edge that loaded it, under its requester (a
/// `DT_NEEDED` path by the path it expanded to). Interpreter lines and names
/// not found are left out, and so are the roots after the first (in a
/// one-program tree the variants traced for staging, as in
/// [`closure_search_log`]).
pub fn closure_loading_edges(tree: &str) -> BTreeSet<(String, String)> {
    let mut out = BTreeSet::new();
    // (indent, path) of the lines above, innermost last.
    let mut parents: Vec<(usize, String)> = Vec::new();
    for line in tree.lines() {
        let indent = line.len() - line.trim_start().len();
        let body = line.trim_start();
        if indent == 0 {
            if !parents.is_empty() {
                break;
            }
            parents = vec![(0, body.split(" (").next().unwrap_or(body).to_string())];
            continue;
        }
        while parents.last().is_some_and(|(i, _)| *i >= indent) {
            parents.pop();
        }
        let Some((name, rest)) = body.split_once(" => ") else {
            continue;
        };
        let Some((path, label)) = rest.split_once(" [") else {
            continue; // not found
        };
        let loads = !label.starts_with("already loaded")
            && !label.starts_with("interpreter")
            && !label.ends_with("(see above)");
        if loads {
            let by = parents.last().map(|(_, p)| p.clone()).unwrap_or_default();
            // A `DT_NEEDED` path is logged expanded, a preload as given.
            let name = if label.starts_with("path]") {
                path
            } else {
                name
            };
            out.insert((name.to_string(), by));
        }
        parents.push((indent, path.to_string()));
    }
    out
}

/// `closure --format tree` expands each object under the edge through
/// which the loader mapped it: the same (name, requester) pairs as the
/// loader's `LD_DEBUG=files` log.
pub fn assert_same_loading_edges(
    name: &str,
    root: &TestRoot,
    prog: &str,
    ld_env: &[(&str, &str)],
    closure_args: &[&str],
) {
    let mut env = vec![("LD_TRACE_LOADED_OBJECTS", "1"), ("LD_DEBUG", "files")];
    env.extend_from_slice(ld_env);
    let loader = root.run_in_root(&env, &[prog]);
    let out = Command::new(closure_bin())
        .arg("--sysroot")
        .arg(root.path())
        .args([
            "--root",
            prog,
            "--format",
            "tree",
            "--startup-only",
            "--quiet",
        ])
        .args(closure_args)
        .stdin(Stdio::null())
        .output()
        .unwrap_or_else(|e| panic!("cannot run {}: {e}", closure_bin()));
    let tree = String::from_utf8_lossy(&out.stdout);
    assert_eq!(
        closure_loading_edges(&tree),
        loader_loading_edges(&loader.stderr),
        "{name}: the tree (left) expands objects under other edges than the loader mapped them \
         through (right)\n===== tree =====\n{tree}\n===== loader =====\n{}",
        loader.stderr
    );
}

/// One library search of a load: the name, and the steps in order —
/// `dir D (WHERE)` for each directory of a search list, `cache` for the
/// ld.so.cache, `try F` for each file tried.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Find {
    /// The name searched for.
    pub name: String,
    /// Its steps.
    pub steps: Vec<String>,
}

/// The searches in the loader's `LD_DEBUG=libs` log, in order.
pub fn loader_search_log(stderr: &str) -> Vec<Find> {
    let mut finds: Vec<Find> = Vec::new();
    for raw in stderr.lines() {
        // "  12345:\t<message>"
        let Some((pid, line)) = raw.split_once(":\t") else {
            continue;
        };
        if !pid.trim().chars().all(|c| c.is_ascii_digit()) {
            continue;
        }
        if let Some(rest) = line.strip_prefix("find library=") {
            let name = rest.split(" [").next().unwrap_or(rest);
            finds.push(Find {
                name: name.to_string(),
                steps: Vec::new(),
            });
            continue;
        }
        let Some(f) = finds.last_mut() else { continue };
        if let Some(rest) = line.strip_prefix(" search path=") {
            let (dirs, from) = rest.split_once("\t\t").unwrap_or((rest, ""));
            let from = from.trim_start_matches('(').trim_end_matches(')');
            for d in dirs.split(':') {
                f.steps.push(format!("dir {d} ({from})"));
            }
        } else if line.starts_with(" search cache=") {
            f.steps.push("cache".to_string());
        } else if let Some(file) = line.strip_prefix("  trying file=") {
            f.steps.push(format!("try {file}"));
        }
    }
    finds
}

/// The searches of the first root in `closure --verbose`'s log, in order:
/// names matched to an object already loaded and paths (which the loader
/// opens without a search, and does not log as one) left out. The roots
/// after it in a one-program log are the variants traced for staging
/// (another machine's legacy hwcap subdirectory, say), whose loads this
/// machine's loader never makes.
pub fn closure_search_log(stderr: &str) -> Vec<Find> {
    let mut finds: Vec<Find> = Vec::new();
    let mut skip = false;
    let mut roots = 0;
    for line in stderr.lines() {
        if line.starts_with("search: loading ") {
            // The first root's load; the roots after it are the variants traced for staging.
            roots += 1;
            if roots > 1 {
                break;
            }
        }
        if let Some(rest) = line.strip_prefix("  find library=") {
            let name = rest.split("; ").next().unwrap_or(rest);
            skip = name.contains('/');
            finds.push(Find {
                name: name.to_string(),
                steps: Vec::new(),
            });
            continue;
        }
        if line.starts_with("  ") && !line.starts_with("    ") {
            skip = true; // "  interpreter …"
            continue;
        }
        if skip {
            continue;
        }
        let Some(f) = finds.last_mut() else { continue };
        if line.starts_with("    => already loaded as ") {
            finds.pop();
            skip = true;
        } else if let Some(rest) = line.strip_prefix("    search path=") {
            let (dir, from) = rest.split_once("  (").unwrap_or((rest, ""));
            f.steps
                .push(format!("dir {dir} ({})", from.trim_end_matches(')')));
        } else if line.starts_with("    search cache=") {
            f.steps.push("cache".to_string());
        } else if let Some(rest) = line.strip_prefix("      trying file=") {
            let file = rest.split_once(": ").map_or(rest, |(f, _)| f);
            f.steps.push(format!("try {file}"));
        }
    }
    finds.retain(|f| !f.name.contains('/'));
    finds
}

/// The files each search tried, in order, leaving out those in
/// directories that do not exist in `root` (the loader tries them until it
/// has found a directory absent, then skips it; closure knows at once).
///
/// The directory lines themselves are not compared: the loader lists a
/// whole list before trying it, even the part after the file it finds, and
/// labels a directory by the first list that named it — glibc shares one
/// record per directory string, so a `DT_RUNPATH` directory that an
/// earlier `DT_RPATH` (or the default list) also named shows as that
/// one's. Nor is the cache line: the loader prints it when there is no
/// cache to look in.
fn tried_files(finds: Vec<Find>, root: &Path, cwd: &str) -> Vec<Find> {
    // A relative file is opened from the working directory (a bare name:
    // in it).
    let exists = |file: &str| {
        let dir = file.rsplit_once('/').map_or(".", |(d, _)| d);
        let dir = if dir.starts_with('/') {
            dir.to_string()
        } else {
            format!("{cwd}/{dir}")
        };
        resolve_in_root(root, &dir).is_dir()
    };
    finds
        .into_iter()
        .map(|f| Find {
            steps: f
                .steps
                .into_iter()
                .filter(|s| s.strip_prefix("try ").is_some_and(exists))
                .collect(),
            name: f.name,
        })
        .collect()
}

/// closure's `--verbose` log and the loader's `LD_DEBUG=libs` log of one
/// program in `root`, as compared: the files each search tried.
pub fn compared_logs(ours: &str, loader: &str, root: &Path) -> (Vec<Find>, Vec<Find>) {
    compared_logs_in(ours, loader, root, "/")
}

/// [`compared_logs`] of a program run in the working directory `cwd`.
pub fn compared_logs_in(
    ours: &str,
    loader: &str,
    root: &Path,
    cwd: &str,
) -> (Vec<Find>, Vec<Find>) {
    (
        tried_files(closure_search_log(ours), root, cwd),
        tried_files(loader_search_log(loader), root, cwd),
    )
}

/// `closure --verbose` searches the places the loader's `LD_DEBUG=libs`
/// log says it searches, in its order: the same names searched for, each
/// trying the same files ([`tried_files`]).
pub fn assert_same_search_log(
    name: &str,
    root: &TestRoot,
    prog: &str,
    ld_env: &[(&str, &str)],
    closure_args: &[&str],
) {
    let mut env = vec![("LD_TRACE_LOADED_OBJECTS", "1"), ("LD_DEBUG", "libs")];
    env.extend_from_slice(ld_env);
    let loader = root.run_in_root(&env, &[prog]);
    let out = Command::new(closure_bin())
        .arg("--sysroot")
        .arg(root.path())
        .args([
            "--root",
            prog,
            "--format",
            "list",
            "--startup-only",
            "--verbose",
        ])
        .args(closure_args)
        .stdin(Stdio::null())
        .output()
        .unwrap_or_else(|e| panic!("cannot run {}: {e}", closure_bin()));
    let ours_raw = String::from_utf8_lossy(&out.stderr);
    let (ours, theirs) = compared_logs_in(&ours_raw, &loader.stderr, root.path(), &root.cwd());
    assert_eq!(
        ours, theirs,
        "{name}: `closure --verbose` (left) searches otherwise than the loader's LD_DEBUG=libs \
         (right)\n===== loader =====\n{}\n===== closure =====\n{ours_raw}",
        loader.stderr
    );
}

/// The loader's trace as `--format ldd` prints it: its lines in order,
/// without the vDSO line and the load addresses.
pub fn ldd_lines(stdout: &str) -> Vec<String> {
    let mut out = Vec::new();
    for raw in stdout.lines() {
        let line = match raw.strip_prefix('\t') {
            Some(l) => strip_address(l).unwrap_or(l),
            None => raw,
        };
        // (qemu-user's vDSO line has no name.)
        if matches!(line, "" | "linux-vdso.so.1" | "linux-gate.so.1") {
            continue;
        }
        if let Some((name, rhs)) = line.split_once(" => ") {
            out.push(format!("{name} => {}", strip_address(rhs).unwrap_or(rhs)));
        } else {
            out.push(line.to_string());
        }
    }
    out
}

/// `closure --sysroot SYSROOT --root R... --format ldd --startup-only
/// [extra]`: each root's lines (tab removed), by root.
pub fn closure_ldd_lines(
    sysroot: &Path,
    roots: &[&str],
    extra: &[&str],
) -> BTreeMap<String, Vec<String>> {
    let mut cmd = Command::new(closure_bin());
    cmd.arg("--sysroot").arg(sysroot);
    for r in roots {
        cmd.arg("--root").arg(r);
    }
    let out = cmd
        .args(["--format", "ldd", "--startup-only", "--quiet"])
        .args(extra)
        .stdin(Stdio::null())
        .output()
        .unwrap_or_else(|e| panic!("cannot run {}: {e}", closure_bin()));
    let stdout = String::from_utf8_lossy(&out.stdout);
    let mut blocks: BTreeMap<String, Vec<String>> = BTreeMap::new();
    let mut current = roots.first().map(|r| r.to_string()).unwrap_or_default();
    for line in stdout.lines() {
        match line.strip_prefix('\t') {
            Some(l) => blocks
                .entry(current.clone())
                .or_default()
                .push(l.to_string()),
            // With several roots each block starts with `ROOT:`.
            None if roots.len() > 1 => current = line.strip_suffix(':').unwrap_or(line).to_string(),
            None => blocks
                .entry(current.clone())
                .or_default()
                .push(line.to_string()),
        }
    }
    blocks
}

/// `closure --format ldd` for `prog` prints exactly the loader's lines
/// (addresses and the vDSO aside), in its order.
pub fn assert_same_ldd_lines(
    name: &str,
    root: &TestRoot,
    prog: &str,
    trace: &LoaderTrace,
    closure_args: &[&str],
) {
    let ours = closure_ldd_lines(root.path(), &[prog], closure_args)
        .remove(prog)
        .unwrap_or_default();
    let theirs = ldd_lines(&trace.stdout);
    assert_eq!(
        ours, theirs,
        "{name}: `closure --format ldd` (left) differs from the loader's lines (right)\n\
         ===== real loader =====\n{}",
        trace.stdout
    );
}

/// Run the loader for each program and closure ONCE with all of them as roots; assert that each
/// root's share of closure's report (by the `roots` field) equals the loader's answer.
pub fn check_multi(name: &str, root: &TestRoot, progs: &[&str]) -> (Vec<LoaderTrace>, ClosureRun) {
    let traces: Vec<LoaderTrace> = progs.iter().map(|p| loader_trace(root, p, &[])).collect();
    let run = run_closure(root.path(), progs, &[]);
    let mut problems = Vec::new();
    if run.json.is_none() {
        problems.push("closure printed no JSON".to_string());
    }
    for (prog, trace) in progs.iter().zip(&traces) {
        if trace.status != 0 {
            problems.push(format!(
                "the real loader failed for {prog} (exit {})",
                trace.status
            ));
        }
        let (loaded, missing) = run.for_root(prog, false);
        if trace.loaded != loaded {
            problems.push(format!(
                "{prog}: loaded paths differ:\n    only ld.so:   {:?}\n    only closure: {:?}",
                set_diff(&trace.loaded, &loaded),
                set_diff(&loaded, &trace.loaded)
            ));
        }
        if trace.not_found != missing {
            problems.push(format!(
                "{prog}: not-found names differ:\n    only ld.so:   {:?}\n    only closure: {:?}",
                set_diff(&trace.not_found, &missing),
                set_diff(&missing, &trace.not_found)
            ));
        }
    }
    let any_missing = traces.iter().any(|t| !t.not_found.is_empty());
    let want_exit = i32::from(any_missing);
    if run.status != want_exit {
        problems.push(format!(
            "closure exit code {} but expected {want_exit}",
            run.status
        ));
    }
    if !problems.is_empty() {
        let loader: Vec<String> = progs
            .iter()
            .zip(&traces)
            .map(|(p, t)| format!("--- {p} ---\n{}", t.dump()))
            .collect();
        panic!(
            "{name}: closure disagrees with the real loader\n  {}\n===== real loader =====\n{}\n===== closure =====\n{}",
            problems.join("\n  "),
            loader.join("\n"),
            run.dump()
        );
    }
    (traces, run)
}

// ---------------------------------------------------------------------------------------------
// Host sweep
// ---------------------------------------------------------------------------------------------

/// Regular (non-symlink) dynamic ELF files: directly in /usr/bin and /usr/sbin (with PT_INTERP,
/// or ET_DYN with PT_DYNAMIC), and `*.so*` directly in /usr/lib/x86_64-linux-gnu.
pub fn sweep_candidates() -> Vec<PathBuf> {
    let mut out = Vec::new();
    let dirs: [(&str, bool); 3] = [
        ("/usr/bin", false),
        ("/usr/sbin", false),
        ("/usr/lib/x86_64-linux-gnu", true),
    ];
    for (dir, only_so) in dirs {
        let Ok(rd) = fs::read_dir(dir) else { continue };
        let mut entries: Vec<PathBuf> = rd.filter_map(|e| e.ok().map(|e| e.path())).collect();
        entries.sort();
        for p in entries {
            let Ok(meta) = fs::symlink_metadata(&p) else {
                continue;
            };
            if !meta.file_type().is_file() {
                continue;
            }
            if only_so {
                let name = p.file_name().map(|n| n.to_string_lossy().into_owned());
                if !name.is_some_and(|n| n.contains(".so")) {
                    continue;
                }
            }
            let Some(s) = elf_summary(&p) else { continue };
            let dynamic = s.has_interp || (s.e_type == 3 && s.has_dynamic);
            if dynamic && s.machine == 62 {
                out.push(p);
            }
        }
    }
    out
}

/// Result of comparing one sweep file.
#[derive(Debug, Clone)]
pub struct SweepMismatch {
    /// The file.
    pub file: String,
    /// Explanation.
    pub detail: String,
}

/// Compare per root of a multi-root closure run against per-file loader traces.
pub fn sweep_compare(
    traces: &BTreeMap<String, LoaderTrace>,
    run: &ClosureRun,
    mismatches: &mut Vec<SweepMismatch>,
) {
    let single = traces.len() == 1;
    for (file, trace) in traces {
        let (loaded, missing) = run.for_root(file, single);
        let mut detail = String::new();
        if trace.loaded != loaded {
            let _ = write!(
                detail,
                "loaded: only ld.so {:?}, only closure {:?}; ",
                set_diff(&trace.loaded, &loaded),
                set_diff(&loaded, &trace.loaded)
            );
        }
        if trace.not_found != missing {
            let _ = write!(
                detail,
                "not found: only ld.so {:?}, only closure {:?}",
                set_diff(&trace.not_found, &missing),
                set_diff(&missing, &trace.not_found)
            );
        }
        if !detail.is_empty() {
            mismatches.push(SweepMismatch {
                file: file.clone(),
                detail,
            });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_loader_trace_lines() {
        let out = "\tlinux-vdso.so.1 (0x00007ffd5b1f2000)\n\
                   \tlibmissing.so.3 => not found\n\
                   \tliba.so.1 => /app/bin/../lib/liba.so.1 (0x00007f0c1a2b3000)\n\
                   \t/opt/x/libx.so (0x00007f0c1a2a0000)\n\
                   \tlibc.so.6 => /lib/x86_64-linux-gnu/libc.so.6 (0x00007f0c1a000000)\n\
                   \t/lib64/ld-linux-x86-64.so.2 (0x00007f0c1a2c5000)\n\
                   \t/usr/bin/x: /lib/libv.so.1: version `V_2' not found (required by /usr/bin/x)\n";
        let t = parse_trace(out);
        let loaded: Vec<&str> = t.loaded.iter().map(String::as_str).collect();
        assert_eq!(
            loaded,
            [
                "/app/bin/../lib/liba.so.1",
                "/lib/x86_64-linux-gnu/libc.so.6",
                "/lib64/ld-linux-x86-64.so.2",
                "/opt/x/libx.so",
            ]
        );
        assert_eq!(t.not_found.iter().collect::<Vec<_>>(), ["libmissing.so.3"]);
        assert_eq!(t.pairs.len(), 2);
        assert_eq!(t.other.len(), 1, "{:?}", t.other);
        assert!(!t.statically_linked);
        assert!(parse_trace("\tstatically linked\n").statically_linked);
    }

    #[test]
    fn parses_hwcaps_from_help() {
        let help = "Shared library search path:\n  (libraries located via /etc/ld.so.cache)\n\n\
                    Subdirectories of glibc-hwcaps directories, in priority order:\n\
                    \x20 x86-64-v4 (supported, searched)\n\
                    \x20 x86-64-v3 (supported, searched)\n\
                    \x20 x86-64-v2 (supported, searched)\n\n\
                    Legacy HWCAP subdirectories under library search path directories:\n\
                    \x20 haswell (AT_PLATFORM; supported, searched)\n";
        assert_eq!(
            parse_hwcaps_help(help),
            ["x86-64-v4", "x86-64-v3", "x86-64-v2"]
        );
        let help2 = "Subdirectories of glibc-hwcaps directories, in priority order:\n\
                     \x20 x86-64-v4\n\x20 x86-64-v3 (supported, searched)\n";
        assert_eq!(parse_hwcaps_help(help2), ["x86-64-v3"]);
    }

    #[test]
    fn parses_closure_json_and_splits_by_root() {
        let json = r#"{"schema_version":1,"sysroot":"/","roots":["/a","/b"],
            "objects":[
              {"path":"/a","soname":null,"needed":["libc.so.6"],"found_via":"root","needed_by":[],"roots":["/a"]},
              {"path":"/lib/x86_64-linux-gnu/libc.so.6","soname":"libc.so.6","needed":[],"found_via":"ld.so.cache","needed_by":["/a","/b"],"roots":["/a","/b"]},
              {"path":"/b","found_via":"root","roots":["/b"]}],
            "missing":[{"soname":"libq.so","needed_by":"/b","searched":["ld.so.cache","/lib/x86_64-linux-gnu"],"roots":["/b"]}],
            "missing_versions":[],"undefined_symbols":[]}"#;
        let run = parse_closure_output("t".into(), 1, json.into(), String::new());
        assert!(run.json.is_some());
        assert_eq!(run.loaded().len(), 1);
        let (la, ma) = run.for_root("/a", false);
        assert_eq!(la.len(), 1);
        assert!(ma.is_empty());
        let (lb, mb) = run.for_root("/b", false);
        assert_eq!(lb.len(), 1);
        assert_eq!(mb.iter().collect::<Vec<_>>(), ["libq.so"]);
        assert_eq!(run.missing[0].needed_by, ["/b"]);
        assert_eq!(run.missing[0].searched.len(), 2);
    }

    #[test]
    fn compare_reports_differences() {
        let t = parse_trace("\tliba.so => /x/liba.so (0x1000)\n\tlibb.so => not found\n");
        let json = r#"{"objects":[{"path":"/p","found_via":"root"},{"path":"/y/liba.so","found_via":"rpath"}],
                       "missing":[{"soname":"libb.so"}]}"#;
        let run = parse_closure_output("t".into(), 1, json.into(), String::new());
        let err = compare(&t, &run).unwrap_err();
        assert!(
            err.contains("/x/liba.so") && err.contains("/y/liba.so"),
            "{err}"
        );
        let json_ok = r#"{"objects":[{"path":"/x/liba.so","found_via":"rpath"}],"missing":[{"soname":"libb.so"}]}"#;
        let ok = parse_closure_output("t".into(), 1, json_ok.into(), String::new());
        assert!(compare(&t, &ok).is_ok());
        let wrong_exit = parse_closure_output("t".into(), 0, json_ok.into(), String::new());
        assert!(compare(&t, &wrong_exit).is_err());
    }

    #[test]
    fn reads_pt_interp_of_a_host_program() {
        let Some(sh) = ["/usr/bin/env", "/bin/sh"]
            .into_iter()
            .map(Path::new)
            .find(|p| p.exists())
        else {
            return;
        };
        let s = elf_summary(sh).expect("a host program is ELF64 LE");
        assert!(s.has_interp && s.has_dynamic);
        assert!(
            s.interp.as_deref().is_some_and(|i| i.starts_with('/')),
            "{s:?}"
        );
        assert!(elf_summary(Path::new("/proc/self/status")).is_none());
    }

    #[test]
    fn resolves_symlinks_inside_a_root() {
        let dir = tempfile::tempdir().expect("tempdir");
        let root = dir.path();
        fs::create_dir_all(root.join("usr/lib/x")).expect("mkdir");
        fs::write(root.join("usr/lib/x/f"), "x").expect("write");
        std::os::unix::fs::symlink("usr/lib", root.join("lib")).expect("ln");
        std::os::unix::fs::symlink("/lib/x/f", root.join("usr/lib/abs")).expect("ln");
        std::os::unix::fs::symlink("../../../../lib/x/f", root.join("usr/lib/x/rel")).expect("ln");
        let want = root.join("usr/lib/x/f");
        assert_eq!(resolve_in_root(root, "/lib/x/f"), want);
        assert_eq!(resolve_in_root(root, "/usr/lib/abs"), want);
        assert_eq!(resolve_in_root(root, "/lib/x/rel"), want);
        assert_eq!(resolve_in_root(root, "/../../lib/./x/f"), want);
    }

    #[test]
    fn retags_dynamic_entries() {
        // A fake ELF64 LE with one PT_DYNAMIC holding tags 0xf, 0x6ffffefc, 0.
        let mut d = vec![0u8; 64 + 56 + 48];
        d[..4].copy_from_slice(b"\x7fELF");
        d[4] = 2;
        d[5] = 1;
        d[32..40].copy_from_slice(&64u64.to_le_bytes()); // e_phoff
        d[54..56].copy_from_slice(&56u16.to_le_bytes()); // e_phentsize
        d[56..58].copy_from_slice(&1u16.to_le_bytes()); // e_phnum
        d[64..68].copy_from_slice(&2u32.to_le_bytes()); // PT_DYNAMIC
        d[72..80].copy_from_slice(&120u64.to_le_bytes()); // p_offset
        d[96..104].copy_from_slice(&48u64.to_le_bytes()); // p_filesz
        d[120..128].copy_from_slice(&15u64.to_le_bytes());
        d[136..144].copy_from_slice(&DT_AUDIT.to_le_bytes());
        assert_eq!(retag_dynamic_bytes(&mut d, DT_AUDIT, DT_RUNPATH), Ok(1));
        assert_eq!(u64_at(&d, 136), Some(DT_RUNPATH));
        assert_eq!(u64_at(&d, 120), Some(15));
    }
}
