//! The attack-surface audit (`--format audit`, `--forbid`, the surface line
//! after staging, the `audit` field of the JSON report, `closure audit
//! DIR`), driven through the binary.
//!
//! Closures come from the committed `sample-rootfs/` (its `/app/bin/start.sh`
//! is a `#!/bin/sh` script, `/usr/bin/sh -> dash`) and from synthetic roots
//! built with `support::fakeroot`. Device nodes (`mknod`) and file
//! capabilities (`setcap`, else `setfattr`) need root; those tests print
//! `skipping <name>: needs root` otherwise.

use std::fs;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::Value;

use crate::support::chroot::skip_unless_root;
use crate::support::elfgen::Arch;
use crate::support::fakeroot::{run_raw, FakeRoot, Layout};

const X: Arch = Arch::X86_64;
const T: &str = "x86_64-linux-gnu";
const CLEAN: &str = "surface: no shell, no package manager, 0 setuid files";
const START_SH_SURFACE: &str = "surface: 2 shell paths (/usr/bin/dash, /usr/bin/sh from root \
                                /app/bin/start.sh), no package manager, 0 setuid files";

fn sample() -> String {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("sample-rootfs")
        .display()
        .to_string()
}

fn s(p: &Path) -> &str {
    p.to_str().expect("test paths are UTF-8")
}

/// A fresh temporary directory and the (absent) `--out` path inside it.
fn out_dir() -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::Builder::new()
        .prefix("closure-audit-")
        .tempdir()
        .expect("tempdir");
    let out = dir.path().join("out");
    (dir, out)
}

/// Names of the entries of a directory, sorted.
fn entries(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = fs::read_dir(dir)
        .expect("read_dir")
        .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
        .collect();
    v.sort();
    v
}

/// `(category, path, ["root /x", "include y"])` of every finding in an
/// `audit` JSON array.
fn findings(audit: &Value) -> Vec<(String, String, Vec<String>)> {
    audit
        .as_array()
        .unwrap_or_else(|| panic!("audit is not an array: {audit}"))
        .iter()
        .map(|f| {
            let origins = f["pulled_in_by"]
                .as_array()
                .expect("pulled_in_by")
                .iter()
                .map(|o| {
                    format!(
                        "{} {}",
                        o["kind"].as_str().expect("kind"),
                        o["path"].as_str().expect("path")
                    )
                })
                .collect();
            (
                f["category"].as_str().expect("category").to_string(),
                f["path"].as_str().expect("path").to_string(),
                origins,
            )
        })
        .collect()
}

fn finding(category: &str, path: &str, origins: &[&str]) -> (String, String, Vec<String>) {
    (
        category.to_string(),
        path.to_string(),
        origins.iter().map(|o| o.to_string()).collect(),
    )
}

fn json(stdout: &str) -> Value {
    serde_json::from_str(stdout).unwrap_or_else(|e| panic!("not JSON ({e}):\n{stdout}"))
}

/// A Debian 12 style root with `/app/bin/app` (needs libc) and `/bin ->
/// usr/bin`.
fn base_root() -> FakeRoot {
    let r = FakeRoot::new();
    r.debian_base(X, Layout::DEBIAN12);
    r.symlink("/bin", "usr/bin");
    r.exe("/app/bin/app", X, &["libc.so.6"], None);
    r
}

#[test]
fn script_root_reports_the_shell_and_the_root_that_brought_it() {
    let sysroot = sample();
    let (_dir, out) = out_dir();
    let (code, _, err) = run_raw(&[
        "--sysroot",
        &sysroot,
        "--root",
        "/app/bin/server",
        "--root",
        "/app/bin/start.sh",
        "--out",
        s(&out),
    ]);
    assert_eq!(code, 0, "{err}");
    assert!(out.join("usr/bin/dash").is_file());
    // Findings are stated after staging even off a terminal; only the
    // script is credited, not the server beside it.
    let line = err
        .lines()
        .find(|l| l.starts_with("surface:"))
        .unwrap_or_else(|| panic!("no surface line on stderr:\n{err}"));
    assert_eq!(line, START_SH_SURFACE);

    let (code, stdout, err) = run_raw(&[
        "--sysroot",
        &sysroot,
        "--root",
        "/app/bin/start.sh",
        "--format",
        "audit",
    ]);
    assert_eq!(code, 0, "{err}");
    assert!(err.is_empty(), "{err}");
    assert_eq!(
        stdout,
        format!(
            "shell: /usr/bin/dash (named dash); pulled in by root /app/bin/start.sh\n\
             shell: /usr/bin/sh (symlink to dash, resolving to /usr/bin/dash); \
             pulled in by root /app/bin/start.sh\n{START_SH_SURFACE}\n"
        )
    );

    let (code, stdout, err) = run_raw(&[
        "--sysroot",
        &sysroot,
        "--root",
        "/app/bin/server",
        "--root",
        "/app/bin/start.sh",
        "--format",
        "json",
    ]);
    assert_eq!(code, 0, "{err}");
    let report = json(&stdout);
    assert_eq!(
        findings(&report["audit"]),
        vec![
            finding("shell", "/usr/bin/dash", &["root /app/bin/start.sh"]),
            finding("shell", "/usr/bin/sh", &["root /app/bin/start.sh"]),
        ]
    );
    assert_eq!(report["audit"][0]["forbidden"], Value::Bool(false));
    // The existing fields are still there.
    for field in [
        "objects",
        "missing",
        "missing_versions",
        "undefined_symbols",
    ] {
        assert!(report[field].is_array(), "{field} missing");
    }

    // The staged root, audited as a directory: the same shells.
    let (code, stdout, err) = run_raw(&["audit", s(&out)]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(
        stdout,
        "shell: /usr/bin/dash (named dash)\n\
         shell: /usr/bin/sh (symlink to dash, resolving to /usr/bin/dash)\n\
         surface: 2 shell paths (/usr/bin/dash, /usr/bin/sh), no package manager, 0 setuid files\n"
    );
}

#[test]
fn an_interpreter_the_user_gave_is_credited_to_itself_not_to_the_script() {
    // start.sh runs `#!/bin/sh`. Given too — itself, or through a directory
    // above it (`/bin`: a root counts as given when a given path is one of
    // its ancestors) — `/bin/sh` is credited to itself; the script that
    // names it gets the credit only when the user did not give it
    // (`script_root_reports_the_shell_and_the_root_that_brought_it`).
    let sysroot = sample();
    let shells = |args: &[&str]| {
        let mut all = vec!["--sysroot", &sysroot, "--root", "/app/bin/start.sh"];
        all.extend_from_slice(args);
        all.extend_from_slice(&["--format", "json"]);
        let (code, stdout, err) = run_raw(&all);
        assert_eq!(code, 0, "{err}");
        findings(&json(&stdout)["audit"])
    };
    assert_eq!(
        shells(&["--root", "/bin/sh"]),
        vec![
            finding("shell", "/usr/bin/dash", &["root /bin/sh"]),
            finding("shell", "/usr/bin/sh", &["root /bin/sh"]),
        ]
    );
    assert_eq!(
        shells(&["--root", "/bin"]),
        vec![
            finding(
                "shell",
                "/usr/bin/dash",
                &["root /bin/sh", "root /usr/bin/dash", "root /usr/bin/sh"]
            ),
            finding(
                "shell",
                "/usr/bin/sh",
                &["root /bin/sh", "root /usr/bin/sh"]
            ),
        ]
    );
}

#[test]
fn forbid_shell_fails_before_anything_is_written() {
    let sysroot = sample();
    let (dir, out) = out_dir();
    let (code, stdout, err) = run_raw(&[
        "--sysroot",
        &sysroot,
        "--root",
        "/app/bin/start.sh",
        "--out",
        s(&out),
        "--forbid",
        "shell",
    ]);
    assert_eq!(code, 1, "stdout:\n{stdout}\nstderr:\n{err}");
    assert!(!out.exists(), "--out was created");
    assert!(
        entries(dir.path()).is_empty(),
        "something was written beside --out: {:?}",
        entries(dir.path())
    );
    assert!(
        err.contains(
            "error: forbidden shell: /usr/bin/dash (named dash), pulled in by root /app/bin/start.sh\n"
        ),
        "{err}"
    );
    assert!(err.contains("nothing staged"), "{err}");

    // An existing output is left exactly as it was, even with --force.
    fs::create_dir(&out).expect("mkdir out");
    fs::write(out.join("keep"), "mine").expect("write");
    let (code, _, err) = run_raw(&[
        "--sysroot",
        &sysroot,
        "--root",
        "/app/bin/start.sh",
        "--out",
        s(&out),
        "--force",
        "--forbid",
        "setuid,shell",
    ]);
    assert_eq!(code, 1, "{err}");
    assert_eq!(entries(&out), vec!["keep".to_string()]);

    // Without staging the report still prints in full; the exit says 1.
    let (code, stdout, err) = run_raw(&[
        "--sysroot",
        &sysroot,
        "--root",
        "/app/bin/start.sh",
        "--format",
        "list",
        "--forbid",
        "shell",
    ]);
    assert_eq!(code, 1, "{err}");
    assert!(
        stdout.contains("/usr/bin/dash") || stdout.contains("/bin/sh"),
        "{stdout}"
    );
    assert!(err.contains("error: forbidden shell"), "{err}");

    // Forbidding what is not there stages normally.
    let (_dir2, out2) = out_dir();
    let (code, _, err) = run_raw(&[
        "--sysroot",
        &sysroot,
        "--root",
        "/app/bin/start.sh",
        "--out",
        s(&out2),
        "--forbid",
        "package-manager,setuid,setgid,capabilities,world-writable,devices",
    ]);
    assert_eq!(code, 0, "{err}");
    assert!(out2.join("app/bin/start.sh").is_file());

    // An unknown category is a usage error.
    let (code, _, err) = run_raw(&[
        "--sysroot",
        &sysroot,
        "--root",
        "/app/bin/server",
        "--forbid",
        "shell,nonsense",
    ]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("nonsense"), "{err}");
}

#[test]
fn setuid_and_setgid_fixtures_are_reported_with_their_roots() {
    let r = base_root();
    r.exe("/app/bin/helper", X, &["libc.so.6"], None);
    r.exe("/app/bin/grouped", X, &["libc.so.6"], None);
    fs::set_permissions(
        r.host("/app/bin/helper"),
        fs::Permissions::from_mode(0o4755),
    )
    .expect("chmod 4755");
    fs::set_permissions(
        r.host("/app/bin/grouped"),
        fs::Permissions::from_mode(0o2755),
    )
    .expect("chmod 2755");
    let args = [
        "--root",
        "/app/bin/app",
        "--root",
        "/app/bin/helper",
        "--root",
        "/app/bin/grouped",
    ];
    let (code, report, err) = r.json_run(&args);
    assert_eq!(code, 0, "{err}");
    assert_eq!(
        findings(&report["audit"]),
        vec![
            finding("setgid", "/app/bin/grouped", &["root /app/bin/grouped"]),
            finding("setuid", "/app/bin/helper", &["root /app/bin/helper"]),
        ]
    );
    assert_eq!(report["audit"][1]["detail"], "mode 4755");

    let (_dir, out) = out_dir();
    let mut staging = args.to_vec();
    staging.extend(["--out", s(&out)]);
    let (code, _, err) = r.run(&staging);
    assert_eq!(code, 0, "{err}");
    let line = err
        .lines()
        .find(|l| l.starts_with("surface:"))
        .unwrap_or_else(|| panic!("no surface line:\n{err}"));
    assert_eq!(
        line,
        "surface: no shell, no package manager, \
         1 setuid file (/app/bin/helper from root /app/bin/helper), \
         1 setgid file (/app/bin/grouped from root /app/bin/grouped)"
    );
    let mode = fs::metadata(out.join("app/bin/helper"))
        .expect("staged")
        .mode();
    assert_eq!(mode & 0o7777, 0o4755, "staged mode {mode:o}");

    let (_dir2, out2) = out_dir();
    let mut forbidden = args.to_vec();
    forbidden.extend(["--out", s(&out2), "--forbid", "setuid"]);
    let (code, _, err) = r.run(&forbidden);
    assert_eq!(code, 1, "{err}");
    assert!(
        err.contains("error: forbidden setuid: /app/bin/helper (mode 4755), pulled in by root /app/bin/helper"),
        "{err}"
    );
    assert!(!err.contains("forbidden setgid"), "{err}");
    assert!(!out2.exists());
}

#[test]
fn included_package_managers_are_reported_with_their_include() {
    let r = base_root();
    r.lib(
        &format!("/usr/lib/{T}/libapt-pkg.so.6.0"),
        X,
        "libapt-pkg.so.6.0",
        &["libc.so.6"],
    );
    r.exe(
        "/usr/bin/apt-get",
        X,
        &["libapt-pkg.so.6.0", "libc.so.6"],
        None,
    );
    r.symlink("/usr/bin/apt", "apt-get");
    // Executable but neither ELF nor a script: staged as data, not traced,
    // credited to the glob as typed.
    r.file_mode("/usr/local/bin/pip3", "pip launcher\n", 0o755);
    r.file_mode("/usr/local/bin/pip3.11", "another\n", 0o755);
    // Not executable: data that happens to have such a name, no finding.
    r.file("/usr/local/bin/pip3.12", "data\n");
    let args = [
        "--root",
        "/app/bin/app",
        "--include",
        "/usr/bin/apt-get",
        "--include",
        "/usr/local/bin/pip3*",
    ];
    let (code, report, err) = r.json_run(&args);
    assert_eq!(code, 0, "{err}");
    assert_eq!(
        findings(&report["audit"]),
        vec![
            finding(
                "package-manager",
                "/usr/bin/apt-get",
                &["include /usr/bin/apt-get"]
            ),
            finding(
                "package-manager",
                "/usr/local/bin/pip3",
                &["include /usr/local/bin/pip3*"]
            ),
            finding(
                "package-manager",
                "/usr/local/bin/pip3.11",
                &["include /usr/local/bin/pip3*"]
            ),
        ]
    );

    // A link to a package manager is one too, credited to its include.
    let (code, stdout, err) = r.run(&[
        "--root",
        "/app/bin/app",
        "--include",
        "/usr/bin/apt",
        "--format",
        "audit",
    ]);
    assert_eq!(code, 0, "{err}");
    assert!(
        stdout.contains(
            "package-manager: /usr/bin/apt (symlink to apt-get, resolving to /usr/bin/apt-get); \
             pulled in by include /usr/bin/apt\n"
        ),
        "{stdout}"
    );
    assert!(
        stdout.contains("package-manager: /usr/bin/apt-get (named apt-get); pulled in by include /usr/bin/apt\n"),
        "{stdout}"
    );

    let (_dir, out) = out_dir();
    let mut forbidden = args.to_vec();
    forbidden.extend(["--out", s(&out), "--forbid", "package-manager"]);
    let (code, _, err) = r.run(&forbidden);
    assert_eq!(code, 1, "{err}");
    assert!(
        err.contains("error: forbidden package-manager: /usr/bin/apt-get (named apt-get), pulled in by include /usr/bin/apt-get"),
        "{err}"
    );
    assert!(!out.exists());
}

#[test]
fn clean_server_staging_reports_nothing() {
    let sysroot = sample();
    let (_dir, out) = out_dir();
    let (code, stdout, err) = run_raw(&[
        "--sysroot",
        &sysroot,
        "--root",
        "/app/bin/server",
        "--out",
        s(&out),
        "--forbid",
        "all",
    ]);
    assert_eq!(code, 0, "{err}");
    assert!(stdout.is_empty(), "{stdout}");
    assert!(err.is_empty(), "a clean staging wrote to stderr: {err}");
    assert!(out.join("app/bin/server").is_file());

    let (code, stdout, err) = run_raw(&[
        "--sysroot",
        &sysroot,
        "--root",
        "/app/bin/server",
        "--format",
        "audit",
    ]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(stdout, format!("{CLEAN}\n"));

    let (code, stdout, err) = run_raw(&[
        "--sysroot",
        &sysroot,
        "--root",
        "/app/bin/server",
        "--format",
        "json",
    ]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(json(&stdout)["audit"], Value::Array(Vec::new()));

    let (code, stdout, err) = run_raw(&["audit", s(&out), "--forbid", "all"]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(stdout, format!("{CLEAN}\n"));
}

/// A directory laid out like an unpacked image: busybox with a `sh ->
/// busybox` link and an `ls` hard link, a setuid file, a world-writable
/// file and directory, a sticky `/tmp`, and a data file named `dash`.
fn image_dir() -> tempfile::TempDir {
    let d = tempfile::Builder::new()
        .prefix("closure-audit-image-")
        .tempdir()
        .expect("tempdir");
    let p = |rel: &str| d.path().join(rel);
    for dir in ["bin", "data", "scratch", "tmp", "usr/bin"] {
        fs::create_dir_all(p(dir)).expect("mkdir");
    }
    fs::write(p("bin/busybox"), "not really busybox").expect("write");
    fs::set_permissions(p("bin/busybox"), fs::Permissions::from_mode(0o755)).expect("chmod");
    std::os::unix::fs::symlink("busybox", p("bin/sh")).expect("symlink");
    fs::hard_link(p("bin/busybox"), p("bin/ls")).expect("hard link");
    fs::write(p("usr/bin/passwd"), "x").expect("write");
    fs::set_permissions(p("usr/bin/passwd"), fs::Permissions::from_mode(0o4755)).expect("chmod");
    fs::write(p("data/shared.txt"), "x").expect("write");
    fs::set_permissions(p("data/shared.txt"), fs::Permissions::from_mode(0o666)).expect("chmod");
    fs::set_permissions(p("scratch"), fs::Permissions::from_mode(0o777)).expect("chmod");
    fs::set_permissions(p("tmp"), fs::Permissions::from_mode(0o1777)).expect("chmod");
    // dpkg's record of the package `dash`: data, not a shell.
    fs::create_dir_all(p("var/lib/dpkg/status.d")).expect("mkdir");
    fs::write(p("var/lib/dpkg/status.d/dash"), "Package: dash\n").expect("write");
    fs::set_permissions(
        p("var/lib/dpkg/status.d/dash"),
        fs::Permissions::from_mode(0o644),
    )
    .expect("chmod");
    d
}

const IMAGE_LINES: &str = "shell: /bin/busybox (named busybox)\n\
shell: /bin/ls (hard link to /bin/busybox)\n\
shell: /bin/sh (symlink to busybox, resolving to /bin/busybox)\n\
world-writable: /data/shared.txt (file mode 0666)\n";

#[test]
fn audit_dir_reports_busybox_links_setuid_and_world_writable() {
    let d = image_dir();
    let (code, stdout, err) = run_raw(&["audit", s(d.path())]);
    assert_eq!(code, 0, "{err}");
    assert!(err.is_empty(), "{err}");
    assert_eq!(
        stdout,
        format!(
            "{IMAGE_LINES}\
             world-writable: /scratch (directory mode 0777, no sticky bit)\n\
             setuid: /usr/bin/passwd (mode 4755)\n\
             surface: 3 shell paths (/bin/busybox, /bin/ls, /bin/sh), no package manager, \
             1 setuid file (/usr/bin/passwd), 2 world-writable paths (/data/shared.txt, /scratch)\n"
        )
    );

    let (code, stdout, err) = run_raw(&[
        "audit",
        "--format",
        "json",
        "--forbid",
        "world-writable",
        s(d.path()),
    ]);
    assert_eq!(code, 1, "{err}");
    let report = json(&stdout);
    assert_eq!(report["schema_version"], 1);
    assert_eq!(report["root"], s(d.path()));
    let forbidden: Vec<&str> = report["audit"]
        .as_array()
        .expect("audit")
        .iter()
        .filter(|f| f["forbidden"] == Value::Bool(true))
        .map(|f| f["path"].as_str().expect("path"))
        .collect();
    assert_eq!(forbidden, vec!["/data/shared.txt", "/scratch"]);
    assert_eq!(
        err,
        "error: forbidden world-writable: /data/shared.txt (file mode 0666)\n\
         error: forbidden world-writable: /scratch (directory mode 0777, no sticky bit)\n"
    );

    // --quiet: only the verdict.
    let (code, stdout, _) = run_raw(&["audit", "-q", "--forbid", "shell", s(d.path())]);
    assert_eq!(code, 1);
    assert!(stdout.is_empty(), "{stdout}");

    // Not a directory, no directory: usage errors.
    let file = d.path().join("data/shared.txt");
    let (code, _, err) = run_raw(&["audit", s(&file)]);
    assert_eq!(code, 2, "{err}");
    let (code, _, err) = run_raw(&["audit"]);
    assert_eq!(code, 2, "{err}");
    let (code, _, err) = run_raw(&["audit", "--forbid", "bogus", s(d.path())]);
    assert_eq!(code, 2, "{err}");
}

/// Gives `path` the capability `cap_net_raw=ep` with `setcap`, else by
/// writing the raw attribute with `setfattr`. `Err` says why neither worked.
fn set_cap_net_raw(path: &Path) -> Result<(), String> {
    let tried = Command::new("setcap")
        .arg("cap_net_raw+ep")
        .arg(path)
        .output();
    if let Ok(o) = &tried {
        if o.status.success() {
            return Ok(());
        }
    }
    // vfs_cap_data revision 2, effective; permitted bit 13 (cap_net_raw).
    let value = "0x0100000200200000000000000000000000000000";
    let fallback = Command::new("setfattr")
        .args(["-n", "security.capability", "-v", value])
        .arg(path)
        .output();
    match fallback {
        Ok(o) if o.status.success() => Ok(()),
        other => Err(format!("setcap: {tried:?}; setfattr: {other:?}")),
    }
}

#[test]
fn audit_dir_reports_device_nodes_and_capabilities() {
    let name = "audit_dir_reports_device_nodes_and_capabilities";
    if skip_unless_root(name) {
        return;
    }
    let d = image_dir();
    fs::create_dir(d.path().join("dev")).expect("mkdir dev");
    let null = d.path().join("dev/null");
    let made = Command::new("mknod")
        .args(["-m", "666"])
        .arg(&null)
        .args(["c", "1", "3"])
        .status()
        .expect("run mknod");
    assert!(made.success(), "mknod failed");
    let ping = d.path().join("usr/bin/ping");
    fs::write(&ping, "x").expect("write");
    fs::set_permissions(&ping, fs::Permissions::from_mode(0o755)).expect("chmod");
    if let Err(why) = set_cap_net_raw(&ping) {
        println!("skipping {name}: cannot set a file capability here ({why})");
        return;
    }
    let (code, stdout, err) = run_raw(&["audit", "--forbid", "devices,capabilities", s(d.path())]);
    assert_eq!(code, 1, "{err}");
    assert!(
        stdout.starts_with(IMAGE_LINES),
        "unexpected report:\n{stdout}"
    );
    assert!(
        stdout.contains("devices: /dev/null (character device 1:3, mode 0666) [forbidden]\n"),
        "{stdout}"
    );
    assert!(
        stdout.contains("capabilities: /usr/bin/ping (cap_net_raw=ep) [forbidden]\n"),
        "{stdout}"
    );
    assert!(
        stdout.ends_with(
            ", 1 file with capabilities (/usr/bin/ping), \
             2 world-writable paths (/data/shared.txt, /scratch), 1 device node (/dev/null)\n"
        ),
        "{stdout}"
    );
    assert_eq!(
        err,
        "error: forbidden devices: /dev/null (character device 1:3, mode 0666)\n\
         error: forbidden capabilities: /usr/bin/ping (cap_net_raw=ep)\n"
    );
}

/// Without `/proc` (unmounted in a private mount namespace) the audit
/// still reads a file's capabilities, from the file opened by name in its
/// held directory instead of through `/proc/self/fd`.
#[test]
fn audit_dir_reads_capabilities_without_proc() {
    let name = "audit_dir_reads_capabilities_without_proc";
    if skip_unless_root(name) {
        return;
    }
    let d = image_dir();
    let ping = d.path().join("usr/bin/ping");
    fs::write(&ping, "x").expect("write");
    fs::set_permissions(&ping, fs::Permissions::from_mode(0o755)).expect("chmod");
    if let Err(why) = set_cap_net_raw(&ping) {
        println!("skipping {name}: cannot set a file capability here ({why})");
        return;
    }
    let run = |umount: bool| {
        let script = if umount {
            "umount -l /proc && test ! -e /proc/self && exec \"$0\" \"$@\""
        } else {
            "exec \"$0\" \"$@\""
        };
        Command::new("unshare")
            .args(["--mount", "--propagation", "private", "sh", "-c", script])
            .arg(crate::support::oracle::closure_bin())
            .args(["audit", s(d.path())])
            .env_remove("LD_LIBRARY_PATH")
            .output()
            .expect("run unshare")
    };
    let with = run(false);
    if !with.status.success() {
        println!(
            "skipping {name}: no private mount namespace here: {}",
            String::from_utf8_lossy(&with.stderr)
        );
        return;
    }
    let without = run(true);
    let stderr = String::from_utf8_lossy(&without.stderr);
    assert!(without.status.success(), "{stderr}");
    let report = String::from_utf8_lossy(&without.stdout);
    assert!(
        report.contains("capabilities: /usr/bin/ping (cap_net_raw=ep)\n"),
        "{report}{stderr}"
    );
    assert_eq!(report, String::from_utf8_lossy(&with.stdout));
}

#[test]
fn capabilities_in_the_closure_are_read_from_the_sysroot() {
    let name = "capabilities_in_the_closure_are_read_from_the_sysroot";
    if skip_unless_root(name) {
        return;
    }
    let r = base_root();
    r.exe("/app/bin/pinger", X, &["libc.so.6"], None);
    if let Err(why) = set_cap_net_raw(&r.host("/app/bin/pinger")) {
        println!("skipping {name}: cannot set a file capability here ({why})");
        return;
    }
    let (_dir, out) = out_dir();
    let (code, _, err) = r.run(&[
        "--root",
        "/app/bin/pinger",
        "--out",
        s(&out),
        "--forbid",
        "capabilities",
    ]);
    assert_eq!(code, 1, "{err}");
    assert!(
        err.contains(
            "error: forbidden capabilities: /app/bin/pinger (cap_net_raw=ep), pulled in by root /app/bin/pinger\n"
        ),
        "{err}"
    );
    assert!(!out.exists());
}
