//! Running a program inside a staged root the way a container runtime would.
//!
//! [`run_in_root`] enters fresh mount and PID namespaces (`unshare --mount
//! --pid --fork --propagation private`), bind-mounts the host's `/dev`
//! (recursively) onto `ROOT/dev`, mounts a fresh `proc` on `ROOT/proc`, then
//! `chroot`s into ROOT and executes the program with a clean environment
//! (`PATH=/usr/bin:/bin` plus the variables given).
//!
//! The last step is a tiny statically linked helper built here with
//! `gcc -static`: the environment given (for example
//! `LD_TRACE_LOADED_OBJECTS=1`) must reach only the program inside the root,
//! never a dynamically linked host tool on the way (a host `chroot` started
//! with `LD_TRACE_LOADED_OBJECTS=1` would list its own libraries instead of
//! running). Without a static toolchain, the host's `chroot` is used and
//! variables starting with `LD_` are refused.
//!
//! `ROOT/dev` and `ROOT/proc` are created when absent and removed again
//! afterwards (they are empty once the namespace is gone), so a staged root
//! is left as it was. Every run checks that no mount below ROOT is visible
//! from the test process afterwards: the mounts must die with the namespace.
//!
//! Everything here needs root; callers check [`is_root`] first (see
//! [`skip_unless_root`]).
#![allow(dead_code)]

use std::fs;
use std::io::Read;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

/// How long a program in a root may run before it is killed.
const TIMEOUT: Duration = Duration::from_secs(120);

/// The host's `PATH` for the tools used to set the namespace up.
const HOST_PATH: &str = "/usr/sbin:/usr/bin:/sbin:/bin";

/// The `PATH` the program sees inside the root.
const ROOT_PATH: &str = "PATH=/usr/bin:/bin";

/// True when the effective uid is 0 (read from `/proc/self/status`).
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

/// Prints `skipping NAME: needs root` and returns true when not root.
pub fn skip_unless_root(name: &str) -> bool {
    if is_root() {
        return false;
    }
    println!("skipping {name}: needs root");
    true
}

/// C source of the last step: `chroot-exec ROOT [-C DIR] [K=V ...] -- PROG [ARG ...]`
/// (`DIR`: the working directory inside the root, `/` without `-C`).
/// Linked statically, so no loader and no `LD_*` variable ever affects it.
const CHROOT_EXEC_C: &str = r#"
#define _GNU_SOURCE
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

int main(int argc, char **argv) {
    if (argc < 4) {
        fprintf(stderr, "chroot-exec: usage: chroot-exec ROOT [-C DIR] [K=V...] -- PROG [ARGS...]\n");
        return 125;
    }
    int env = 2;
    const char *cwd = "/";
    if (env + 1 < argc && strcmp(argv[env], "-C") == 0) { cwd = argv[env + 1]; env += 2; }
    int i = env;
    while (i < argc && strcmp(argv[i], "--") != 0) i++;
    if (i + 1 >= argc) { fprintf(stderr, "chroot-exec: no program\n"); return 125; }
    argv[i] = NULL; /* argv[env..i] is now the NULL-terminated environment */
    if (chroot(argv[1]) != 0) { perror("chroot-exec: chroot"); return 125; }
    if (chdir(cwd) != 0) { perror("chroot-exec: chdir"); return 125; }
    /* A file the test process has just written can be busy for a moment:
       a child another test thread forked holds its descriptor until that
       child's own exec. */
    for (int tries = 0; tries < 200; tries++) {
        execve(argv[i + 1], &argv[i + 1], &argv[env]);
        if (errno != ETXTBSY) break;
        usleep(10000);
    }
    fprintf(stderr, "chroot-exec: execve %s: ", argv[i + 1]);
    perror("");
    return 127;
}
"#;

/// The static helper, built once per test process (None: no static gcc).
fn chroot_exec() -> Option<&'static Path> {
    static HELPER: OnceLock<Option<PathBuf>> = OnceLock::new();
    HELPER.get_or_init(build_chroot_exec).as_deref()
}

fn build_chroot_exec() -> Option<PathBuf> {
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("stage-chroot");
    fs::create_dir_all(&dir).ok()?;
    let pid = std::process::id();
    let src = dir.join(format!("chroot-exec-{pid}.c"));
    let tmp = dir.join(format!("chroot-exec-{pid}"));
    let bin = dir.join("chroot-exec");
    fs::write(&src, CHROOT_EXEC_C).ok()?;
    let built = Command::new("gcc")
        .args(["-static", "-O2", "-o"])
        .arg(&tmp)
        .arg(&src)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .map(|s| s.success())
        .unwrap_or(false);
    let _ = fs::remove_file(&src);
    if !built {
        let _ = fs::remove_file(&tmp);
        return None;
    }
    // Atomic: several test processes may build it at once.
    fs::rename(&tmp, &bin).ok()?;
    Some(bin)
}

/// The set-up run inside the new namespaces, before the chroot:
/// `sh -c SCRIPT sh ROOT PROGRAM...`.
const SETUP_SH: &str = r#"set -e
root=$1
shift
mount --rbind /dev "$root/dev"
mount -t proc -o nosuid,nodev,noexec proc "$root/proc"
exec "$@"
"#;

/// Creates `ROOT/NAME` when absent; true when created here. Panics when it
/// exists as anything but a directory (a mount onto a symlink would follow
/// it out of the root).
fn ensure_dir(root: &Path, name: &str) -> bool {
    let p = root.join(name);
    match fs::symlink_metadata(&p) {
        Ok(m) if m.is_dir() => false,
        Ok(_) => panic!(
            "{} exists and is not a directory; refusing to mount onto it",
            p.display()
        ),
        Err(_) => {
            fs::create_dir(&p).unwrap_or_else(|e| panic!("mkdir {}: {e}", p.display()));
            fs::set_permissions(&p, fs::Permissions::from_mode(0o755))
                .unwrap_or_else(|e| panic!("chmod {}: {e}", p.display()));
            true
        }
    }
}

/// Mount points of the test process's namespace at or below `dir`.
pub fn mounts_below(dir: &Path) -> Vec<String> {
    let dir = dir.to_string_lossy().into_owned();
    let info = fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
    info.lines()
        .filter_map(|l| l.split(' ').nth(4))
        .map(|m| m.replace("\\040", " "))
        .filter(|m| m == &dir || m.starts_with(&format!("{dir}/")))
        .collect()
}

/// Runs `argv` (`argv[0]` an absolute path inside the root) in `root` as a
/// container runtime would, with only `PATH=/usr/bin:/bin` and `env` in the
/// environment. Returns the exit status, stdout and stderr. Needs root.
pub fn run_in_root(
    root: &Path,
    argv: &[&str],
    env: &[(&str, &str)],
) -> (ExitStatus, String, String) {
    run_in_root_at(root, "/", argv, env)
}

/// [`run_in_root`] with the working directory `cwd` (an in-root path that
/// must exist), as a container's `WORKDIR`.
pub fn run_in_root_at(
    root: &Path,
    cwd: &str,
    argv: &[&str],
    env: &[(&str, &str)],
) -> (ExitStatus, String, String) {
    assert!(!argv.is_empty(), "run_in_root: empty argv");
    let root =
        fs::canonicalize(root).unwrap_or_else(|e| panic!("run_in_root: {}: {e}", root.display()));
    assert!(
        root != Path::new("/"),
        "run_in_root: refusing to use the host / as a root"
    );
    let made_dev = ensure_dir(&root, "dev");
    let made_proc = ensure_dir(&root, "proc");

    let mut vars: Vec<String> = vec![ROOT_PATH.to_string()];
    vars.extend(env.iter().map(|(k, v)| format!("{k}={v}")));

    let mut cmd = Command::new("unshare");
    cmd.env_clear()
        .env("PATH", HOST_PATH)
        .args([
            "--mount",
            "--pid",
            "--fork",
            "--kill-child",
            "--propagation",
            "private",
            "--",
            "/bin/sh",
            "-c",
            SETUP_SH,
            "stage-chroot",
        ])
        .arg(&root);
    match chroot_exec() {
        Some(helper) => {
            cmd.arg(helper).arg(&root);
            if cwd != "/" {
                cmd.args(["-C", cwd]);
            }
            cmd.args(&vars).arg("--").args(argv);
        }
        None => {
            assert!(
                env.iter().all(|(k, _)| !k.starts_with("LD_")) && cwd == "/",
                "run_in_root: LD_* variables and a working directory need the static helper (gcc -static failed)"
            );
            cmd.arg("env")
                .arg("-i")
                .args(&vars)
                .arg("chroot")
                .arg(&root)
                .args(argv);
        }
    }
    let result = run_with_timeout(cmd);

    let leaked = mounts_below(&root);
    if made_proc {
        let _ = fs::remove_dir(root.join("proc"));
    }
    if made_dev {
        let _ = fs::remove_dir(root.join("dev"));
    }
    assert!(
        leaked.is_empty(),
        "mounts leaked out of the private namespace: {leaked:?}"
    );
    result
}

/// Runs `cmd` with piped output, killing it after [`TIMEOUT`].
fn run_with_timeout(mut cmd: Command) -> (ExitStatus, String, String) {
    cmd.stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = cmd.spawn().expect("cannot spawn unshare");
    let mut out = child.stdout.take().expect("stdout piped");
    let mut err = child.stderr.take().expect("stderr piped");
    let t_out = std::thread::spawn(move || {
        let mut v = Vec::new();
        let _ = out.read_to_end(&mut v);
        v
    });
    let t_err = std::thread::spawn(move || {
        let mut v = Vec::new();
        let _ = err.read_to_end(&mut v);
        v
    });
    let deadline = Instant::now() + TIMEOUT;
    let status = loop {
        match child.try_wait().expect("wait for unshare") {
            Some(s) => break s,
            None if Instant::now() >= deadline => {
                // --kill-child takes the whole namespace down with unshare.
                let _ = child.kill();
                let s = child.wait().expect("wait for killed unshare");
                let stderr =
                    String::from_utf8_lossy(&t_err.join().unwrap_or_default()).into_owned();
                panic!("program in root timed out after {TIMEOUT:?} ({s}); stderr:\n{stderr}");
            }
            None => std::thread::sleep(Duration::from_millis(20)),
        }
    };
    let stdout = String::from_utf8_lossy(&t_out.join().unwrap_or_default()).into_owned();
    let stderr = String::from_utf8_lossy(&t_err.join().unwrap_or_default()).into_owned();
    (status, stdout, stderr)
}
