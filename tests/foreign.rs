//! Real foreign roots (issue 5): Debian 12 arm64, s390x, armhf, armel,
//! ppc64el, mips64el, i386 and mipsel sysroots made from the distribution's own packages, compared with the real glibc
//! loader of that architecture running under qemu-user.
//!
//! Newer glibc in the same roots (since the forty-first stop): Debian 13's and testing's
//! `libc6` (arm64, armhf, i386, s390x, ppc64el) and the cross packages of the MIPS ports
//! (2.40, 2.42) put in place of a root's 2.36 (`swap_glibc`), and the 2.41 and 2.43 cross
//! packages of the other ports in roots of their own; `EI_ABIVERSION` bounds
//! (`abi_versions_*`) and the rules whose answer changed between releases
//! (`assert_version_rules`) asked of each.
//!
//! For each architecture: `dpkg --add-architecture`, `apt-get update` when
//! needed, `apt-get download` of `curl` and its dependency closure
//! (`apt-cache depends --recurse` without recommends/suggests/…; ~32
//! packages, ~11 MB; cached in `$CARGO_TARGET_TMPDIR/foreign-debs/ARCH`, so
//! reruns need no network), `dpkg-deb -x` of each into a fresh sysroot.
//! Debian 12 packages install into `/lib/<triplet>` and
//! `/usr/lib/<triplet>` and ship the interpreter's `PT_INTERP` path
//! (`/lib/ld-linux-aarch64.so.1`, `/lib/ld64.so.1`,
//! `/lib/ld-linux-armhf.so.3`, `/lib64/ld64.so.2`, `/lib64/ld.so.1`,
//! `/lib/ld-linux.so.2`, `/lib/ld.so.1`) as a link into
//! `/lib/<triplet>` or as the file there; `dpkg-deb -x` leaves
//! `/lib` a real directory (no usrmerge links), which the loader does not
//! care about, so none are added.
//!
//! There is no `/etc/ld.so.cache`: the host's `ldconfig -r` cannot index
//! libraries of another architecture (it writes a cache with no entries),
//! so the first comparison is cache-less (the loader falls back to its
//! default directories); a second one runs with that empty cache written by
//! the host `ldconfig`, which both the loader and closure must ignore. The
//! host's x86-64 `ldconfig` does index i386 libraries, so for i386 that
//! second cache is a real one.
//!
//! The loader's answer: the static `qemu-ARCH-static` is copied into the
//! sysroot and run in a chroot (private mount and PID namespaces, see
//! `support::chroot`) as `/qemu-ARCH-static INTERP --list /usr/bin/curl`
//! and as `LD_TRACE_LOADED_OBJECTS=1 /qemu-ARCH-static /usr/bin/curl`.
//! Its loaded paths must equal closure's (minus what closure adds for
//! run-time loads: glibc dlopens `libgcc_s.so.1` for `pthread_exit`, which
//! libldap uses, and `ld.so --list` cannot show that). Then curl is staged
//! and `curl --version` runs in the staged root under qemu.
//!
//! Ports Debian 12 does not ship (riscv64, big-endian ppc64, 32-bit
//! powerpc, big-endian 32-bit MIPS) are checked through its
//! `libc6-ARCH-cross` packages: the same glibc 2.36, built natively for the
//! port and repackaged under `/usr/TRIPLET`, laid out as a port's root
//! would hold it; their loaders list `libm.so.6`, whose `libc.so.6` has
//! copies in legacy subdirectories and in a cache (see `cross_chains`).
//!
//! Skips, with the reason printed, when not root, when qemu-user-static,
//! dpkg or apt are absent, or when the packages cannot be fetched.

use std::collections::BTreeSet;
use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use closure::resolve::ldcache::{self, CacheEntry};

use crate::support::chroot::{is_root, run_in_root};
use crate::support::oracle::{
    closure_bin, closure_ldd_lines, compared_logs, hwcaps_help_lines, isa_stops, ldd_lines,
    parse_trace, run_closure, run_closure_with_run_time, ClosureRun, LoaderTrace,
};

/// One foreign architecture.
struct Foreign {
    /// Debian architecture name.
    arch: &'static str,
    /// qemu-user binary name.
    qemu: &'static str,
    /// glibc `PT_INTERP`.
    interp: &'static str,
    /// Multiarch triplet.
    triplet: &'static str,
    /// What `curl --version` says about its build.
    host_tag: &'static str,
}

const ARM64: Foreign = Foreign {
    arch: "arm64",
    qemu: "qemu-aarch64-static",
    interp: "/lib/ld-linux-aarch64.so.1",
    triplet: "aarch64-linux-gnu",
    host_tag: "(aarch64-unknown-linux-gnu)",
};

const S390X: Foreign = Foreign {
    arch: "s390x",
    qemu: "qemu-s390x-static",
    interp: "/lib/ld64.so.1",
    triplet: "s390x-linux-gnu",
    host_tag: "(s390x-ibm-linux-gnu)",
};

const ARMHF: Foreign = Foreign {
    arch: "armhf",
    qemu: "qemu-arm-static",
    interp: "/lib/ld-linux-armhf.so.3",
    triplet: "arm-linux-gnueabihf",
    host_tag: "(arm-unknown-linux-gnueabihf)",
};

const ARMEL: Foreign = Foreign {
    arch: "armel",
    qemu: "qemu-arm-static",
    interp: "/lib/ld-linux.so.3",
    triplet: "arm-linux-gnueabi",
    host_tag: "(arm-unknown-linux-gnueabi)",
};

const PPC64EL: Foreign = Foreign {
    arch: "ppc64el",
    qemu: "qemu-ppc64le-static",
    interp: "/lib64/ld64.so.2",
    triplet: "powerpc64le-linux-gnu",
    host_tag: "(powerpc64le-unknown-linux-gnu)",
};

const MIPS64EL: Foreign = Foreign {
    arch: "mips64el",
    qemu: "qemu-mips64el-static",
    interp: "/lib64/ld.so.1",
    triplet: "mips64el-linux-gnuabi64",
    host_tag: "(mips64el-unknown-linux-gnuabi64)",
};

const I386: Foreign = Foreign {
    arch: "i386",
    qemu: "qemu-i386-static",
    interp: "/lib/ld-linux.so.2",
    triplet: "i386-linux-gnu",
    host_tag: "(i686-pc-linux-gnu)",
};

const MIPSEL: Foreign = Foreign {
    arch: "mipsel",
    qemu: "qemu-mipsel-static",
    interp: "/lib/ld.so.1",
    triplet: "mipsel-linux-gnu",
    host_tag: "(mipsel-unknown-linux-gnu)",
};

const CURL: &str = "/usr/bin/curl";

/// `found_via` values of what the loader loads only at run time (not in
/// `ld.so --list`).
const RUN_TIME_VIA: [&str; 4] = ["libgcc_s", "dlopen-note", "nsswitch", "gconv"];

/// apt and dpkg keep global state: one of them at a time in this process.
static APT: Mutex<()> = Mutex::new(());

const HOST_PATH: &str = "/usr/sbin:/usr/bin:/sbin:/bin";

// ---------------------------------------------------------------------------------------------
// Running host tools
// ---------------------------------------------------------------------------------------------

fn tool(program: &str, args: &[&str], dir: Option<&Path>) -> std::io::Result<Output> {
    let mut cmd = Command::new(program);
    cmd.args(args)
        .env("PATH", HOST_PATH)
        .env("DEBIAN_FRONTEND", "noninteractive")
        .env("LC_ALL", "C")
        .stdin(Stdio::null());
    if let Some(d) = dir {
        cmd.current_dir(d);
    }
    cmd.output()
}

fn text(out: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// Runs an apt/dpkg command, retrying for a while when another process
/// holds the dpkg or apt lock. Err: what it printed.
fn apt(program: &str, args: &[&str], dir: Option<&Path>) -> Result<Output, String> {
    let deadline = Instant::now() + Duration::from_secs(90);
    loop {
        let out = tool(program, args, dir).map_err(|e| format!("cannot run {program}: {e}"))?;
        if out.status.success() {
            return Ok(out);
        }
        let t = text(&out);
        let locked = t.contains("Could not get lock") || t.contains("Unable to lock");
        if !locked || Instant::now() > deadline {
            return Err(format!("{program} {}: {}", args.join(" "), t.trim()));
        }
        std::thread::sleep(Duration::from_secs(2));
    }
}

fn runs(program: &str, arg: &str) -> bool {
    tool(program, &[arg], None).is_ok_and(|o| o.status.success())
}

// ---------------------------------------------------------------------------------------------
// The packages
// ---------------------------------------------------------------------------------------------

/// The cache of downloaded packages for one architecture.
fn cache_dir(arch: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_TARGET_TMPDIR"))
        .join("foreign-debs")
        .join(arch)
}

const STAMP: &str = "packages.list";

/// Packages fetched besides curl's closure: `libc-bin` for the
/// architecture's own `ldconfig`, run under qemu to write a native cache.
const EXTRA_PACKAGES: &[&str] = &["libc-bin"];

/// The cached `.deb` files, when a previous run downloaded them all.
fn cached_debs(dir: &Path) -> Option<Vec<PathBuf>> {
    let list = fs::read_to_string(dir.join(STAMP)).ok()?;
    let names: Vec<&str> = list.lines().filter(|l| !l.is_empty()).collect();
    let debs: Vec<PathBuf> = fs::read_dir(dir)
        .ok()?
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|x| x == "deb"))
        .collect();
    let has = |pkg: &str| {
        debs.iter().any(|d| {
            d.file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.starts_with(&format!("{pkg}_")))
        })
    };
    if names.is_empty() || !names.iter().chain(EXTRA_PACKAGES).all(|n| has(n)) {
        return None;
    }
    let mut debs = debs;
    debs.sort();
    Some(debs)
}

/// `curl:ARCH` and the packages it depends on, recursively (no
/// recommends, suggests, …), without the `:ARCH` suffix. Empty when apt
/// does not know the architecture's packages (yet).
fn closure_packages(arch: &str) -> Vec<String> {
    let Ok(out) = tool(
        "apt-cache",
        &[
            "depends",
            "--recurse",
            "--no-recommends",
            "--no-suggests",
            "--no-conflicts",
            "--no-breaks",
            "--no-replaces",
            "--no-enhances",
            &format!("curl:{arch}"),
        ],
        None,
    ) else {
        return Vec::new();
    };
    if !out.status.success() {
        return Vec::new();
    }
    let suffix = format!(":{arch}");
    let mut set: BTreeSet<String> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter(|l| !l.starts_with(' ') && !l.starts_with('<'))
        .filter_map(|l| l.trim().strip_suffix(&suffix).map(str::to_string))
        .collect();
    set.extend(EXTRA_PACKAGES.iter().map(|p| p.to_string()));
    if !set.contains("libc6") || !set.contains("curl") {
        return Vec::new();
    }
    set.into_iter().collect()
}

/// Makes apt know `arch` (adding the architecture and updating the
/// lists when needed) and returns the package closure of curl. Err: why
/// it is not possible here.
fn apt_packages(arch: &str) -> Result<Vec<String>, String> {
    let foreign = tool("dpkg", &["--print-foreign-architectures"], None)
        .map_err(|e| format!("cannot run dpkg: {e}"))?;
    let known = String::from_utf8_lossy(&foreign.stdout)
        .lines()
        .any(|l| l.trim() == arch);
    if !known {
        apt("dpkg", &["--add-architecture", arch], None)
            .map_err(|e| format!("dpkg --add-architecture {arch} failed: {e}"))?;
    }
    let pkgs = closure_packages(arch);
    if !pkgs.is_empty() {
        return Ok(pkgs);
    }
    apt("apt-get", &["update", "-qq"], None)
        .map_err(|e| format!("apt-get update failed (is the Debian mirror reachable?): {e}"))?;
    let pkgs = closure_packages(arch);
    if pkgs.is_empty() {
        return Err(format!(
            "apt knows no curl:{arch} even after apt-get update (sources without {arch}?)"
        ));
    }
    Ok(pkgs)
}

/// Downloads `pkgs` for `arch` into `dir` (emptied first).
fn download(arch: &str, pkgs: &[String], dir: &Path) -> Result<(), String> {
    let _ = fs::remove_dir_all(dir);
    fs::create_dir_all(dir).map_err(|e| format!("mkdir {}: {e}", dir.display()))?;
    let specs: Vec<String> = pkgs.iter().map(|p| format!("{p}:{arch}")).collect();
    let mut args = vec!["-q", "-o", "APT::Sandbox::User=root", "download"];
    args.extend(specs.iter().map(String::as_str));
    apt("apt-get", &args, Some(dir))?;
    fs::write(dir.join(STAMP), pkgs.join("\n") + "\n").map_err(|e| format!("write stamp: {e}"))?;
    Ok(())
}

/// The `.deb` files of curl's closure for `arch`: from the cache, else
/// downloaded (updating the lists once when a download fails, e.g. on
/// stale lists). Err: why not.
fn debs(arch: &str) -> Result<Vec<PathBuf>, String> {
    let dir = cache_dir(arch);
    let _guard = APT.lock().unwrap_or_else(|e| e.into_inner());
    if let Some(d) = cached_debs(&dir) {
        println!("{arch}: {} cached packages in {}", d.len(), dir.display());
        return Ok(d);
    }
    let started = Instant::now();
    let pkgs = apt_packages(arch)?;
    if let Err(first) = download(arch, &pkgs, &dir) {
        println!("{arch}: download failed ({first}); updating the lists and retrying");
        apt("apt-get", &["update", "-qq"], None)
            .map_err(|e| format!("apt-get update failed (is the Debian mirror reachable?): {e}"))?;
        let pkgs = apt_packages(arch)?;
        download(arch, &pkgs, &dir).map_err(|e| {
            format!("apt-get download failed (is the Debian mirror reachable?): {e}")
        })?;
    }
    let d = cached_debs(&dir).ok_or_else(|| {
        format!(
            "apt-get download left an incomplete set of packages in {}",
            dir.display()
        )
    })?;
    println!(
        "{arch}: downloaded {} packages in {:?}: {}",
        d.len(),
        started.elapsed(),
        pkgs.join(" ")
    );
    Ok(d)
}

// ---------------------------------------------------------------------------------------------
// The sysroot and the loader's answer
// ---------------------------------------------------------------------------------------------

/// Extracts every package into a fresh sysroot.
fn sysroot(f: &Foreign, debs: &[PathBuf]) -> tempfile::TempDir {
    let dir = tempfile::Builder::new()
        .prefix(&format!("closure-foreign-{}-", f.arch))
        .tempdir()
        .expect("tempdir");
    for deb in debs {
        let out = tool(
            "dpkg-deb",
            &[
                "-x",
                deb.to_str().expect("UTF-8 path"),
                dir.path().to_str().expect("UTF-8 path"),
            ],
            None,
        )
        .expect("run dpkg-deb");
        assert!(
            out.status.success(),
            "dpkg-deb -x {} failed: {}",
            deb.display(),
            text(&out)
        );
    }
    let root = dir.path();
    let interp = root.join(f.interp.trim_start_matches('/'));
    assert!(
        fs::symlink_metadata(&interp).is_ok(),
        "libc6:{} did not install {}",
        f.arch,
        f.interp
    );
    assert!(
        root.join(format!("lib/{}/libc.so.6", f.triplet)).is_file(),
        "libc6:{} did not install /lib/{}/libc.so.6 (layout changed?)",
        f.arch,
        f.triplet
    );
    assert!(root.join("usr/bin/curl").is_file(), "no /usr/bin/curl");
    dir
}

/// Copies the static qemu into `root` as `/QEMU`.
fn add_qemu(f: &Foreign, root: &Path) {
    let to = root.join(f.qemu);
    fs::copy(Path::new("/usr/bin").join(f.qemu), &to).expect("copy qemu into the root");
    fs::set_permissions(&to, fs::Permissions::from_mode(0o755)).expect("chmod qemu");
}

/// Runs `argv` through qemu in `root`; panics when the run fails.
fn qemu(f: &Foreign, root: &Path, argv: &[&str], env: &[(&str, &str)]) -> (String, String) {
    let q = format!("/{}", f.qemu);
    let mut all = vec![q.as_str()];
    all.extend_from_slice(argv);
    let (status, out, err) = run_in_root(root, &all, env);
    assert!(
        status.success(),
        "{all:?} (env {env:?}) in {} failed ({status}):\nstdout:\n{out}\nstderr:\n{err}",
        root.display()
    );
    (out, err)
}

/// The loader's loaded paths for curl, both as `ld.so --list` and through
/// the program's own `PT_INTERP` with `LD_TRACE_LOADED_OBJECTS=1`; they
/// must agree with each other.
fn loader_loaded(f: &Foreign, root: &Path) -> BTreeSet<String> {
    loader_answer(f, root).0
}

/// [`loader_loaded`], and the trace's own lines.
fn loader_answer(f: &Foreign, root: &Path) -> (BTreeSet<String>, String) {
    let clean = |t: &LoaderTrace| -> BTreeSet<String> {
        assert!(
            t.not_found.is_empty(),
            "the loader misses {:?}",
            t.not_found
        );
        // qemu's vdso line has no name: "\t (0x...)".
        t.loaded
            .iter()
            .filter(|p| !p.is_empty() && p.starts_with('/'))
            .cloned()
            .collect()
    };
    let (out, _) = qemu(f, root, &[f.interp, "--list", CURL], &[]);
    let list = clean(&parse_trace(&out));
    let (out2, _) = qemu(f, root, &[CURL], &[("LD_TRACE_LOADED_OBJECTS", "1")]);
    let traced = clean(&parse_trace(&out2));
    assert_eq!(
        list, traced,
        "ld.so --list and LD_TRACE_LOADED_OBJECTS disagree:\n--list:\n{out}\ntrace:\n{out2}"
    );
    assert!(list.contains(f.interp), "{out}");
    assert!(list.len() > 20, "suspiciously short list:\n{out}");
    (list, out2)
}

/// closure's loaded paths without the run-time loads, and those loads.
fn closure_loaded(run: &ClosureRun) -> (BTreeSet<String>, BTreeSet<String>) {
    let run_time: BTreeSet<String> = run
        .objects
        .iter()
        .filter(|o| RUN_TIME_VIA.contains(&o.found_via.as_str()))
        .map(|o| o.path.clone())
        .collect();
    let loaded = run
        .loaded()
        .into_iter()
        .filter(|p| !run_time.contains(p))
        .collect();
    (loaded, run_time)
}

/// Asserts closure agrees with the loader on `root`.
fn compare(f: &Foreign, root: &Path, what: &str) -> BTreeSet<String> {
    let (want, trace) = loader_answer(f, root);
    let run = run_closure(root, &[CURL], &[]);
    assert_eq!(
        run.status,
        0,
        "{} {what}: closure exit {}\n{}",
        f.arch,
        run.status,
        run.dump()
    );
    assert!(
        run.missing.is_empty(),
        "{} {what}: closure misses {:?}",
        f.arch,
        run.missing_names()
    );
    let (got, run_time) = closure_loaded(&run);
    assert_eq!(
        got,
        want,
        "{} {what}: loaded paths differ\n  only ld.so:   {:?}\n  only closure: {:?}",
        f.arch,
        want.difference(&got).collect::<Vec<_>>(),
        got.difference(&want).collect::<Vec<_>>()
    );
    // `--format ldd` prints the loader's lines in its order (the link map
    // of this architecture's glibc: where it puts its interpreter back).
    let ours = closure_ldd_lines(root, &[CURL], &[])
        .remove(CURL)
        .unwrap_or_default();
    assert_eq!(
        ours,
        ldd_lines(&trace),
        "{} {what}: `closure --format ldd` (left) differs from the loader's lines (right)",
        f.arch
    );
    // `--verbose` tries the files this architecture's loader tries.
    let (_, log) = qemu(
        f,
        root,
        &[CURL],
        &[("LD_TRACE_LOADED_OBJECTS", "1"), ("LD_DEBUG", "libs")],
    );
    let out = std::process::Command::new(closure_bin())
        .arg("--sysroot")
        .arg(root)
        .args([
            "--root",
            CURL,
            "--format",
            "list",
            "--startup-only",
            "--verbose",
        ])
        .stdin(std::process::Stdio::null())
        .output()
        .expect("run closure --verbose");
    let verbose = String::from_utf8_lossy(&out.stderr);
    let (mine, theirs) = compared_logs(&verbose, &log, root);
    assert!(
        theirs.len() > 20,
        "{} {what}: a short search log:\n{log}",
        f.arch
    );
    assert_eq!(
        mine, theirs,
        "{} {what}: `closure --verbose` (left) tries other files than the loader (right)",
        f.arch
    );
    // `--check-symbols` against `ldd -r`'s trace (every symbol bound now,
    // warnings on): the symbols neither binds, and whether a version is
    // missing. (closure counted no symbol of a MIPS object hashed only by
    // `DT_MIPS_XHASH` until the forty-first stop: Debian's glibc 2.40 and
    // 2.42 libc.so.6 defined nothing to it.)
    let (out, err) = qemu(
        f,
        root,
        &[CURL],
        &[
            ("LD_TRACE_LOADED_OBJECTS", "1"),
            ("LD_BIND_NOW", "1"),
            ("LD_WARN", "yes"),
        ],
    );
    let both = format!("{out}{err}");
    let theirs: BTreeSet<String> = both
        .lines()
        .filter_map(|l| l.split("undefined symbol: ").nth(1))
        .map(|rest| {
            rest.split([' ', ',', '\t'])
                .next()
                .unwrap_or(rest)
                .to_string()
        })
        .collect();
    let checked = run_closure(root, &[CURL], &["--check-symbols"]);
    let json = checked.json.as_ref().expect("closure's JSON");
    let ours: BTreeSet<String> = json["undefined_symbols"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|u| u["symbol"].as_str().map(str::to_string))
        .collect();
    let versions = json["missing_versions"].as_array().map_or(0, Vec::len);
    assert_eq!(
        (ours, versions > 0),
        (theirs, both.contains("version `")),
        "{} {what}: --check-symbols (left) against the loader's bound trace (right):\n{both}",
        f.arch
    );
    // What closure adds beyond ld.so --list is libgcc_s (for libldap's
    // pthread_exit), from the same multiarch directory.
    let gcc = format!("/lib/{}/libgcc_s.so.1", f.triplet);
    assert!(
        run_time.iter().all(|p| *p == gcc),
        "{} {what}: unexpected run-time loads {run_time:?}",
        f.arch
    );
    println!(
        "{} {what}: closure and ld.so agree on {} objects (+ run-time {run_time:?})",
        f.arch,
        got.len()
    );
    want
}

/// Why a foreign-root test cannot run here, if it cannot.
fn unavailable(f: &Foreign) -> Option<String> {
    if !is_root() {
        return Some("needs root (chroot, dpkg --add-architecture)".into());
    }
    if !Path::new("/usr/bin").join(f.qemu).is_file() {
        return Some(format!(
            "/usr/bin/{} is not installed (apt-get install qemu-user-static)",
            f.qemu
        ));
    }
    for (p, a) in [
        ("dpkg", "--version"),
        ("dpkg-deb", "--version"),
        ("apt-get", "--version"),
        ("apt-cache", "--version"),
    ] {
        if !runs(p, a) {
            return Some(format!("{p} is not available (not a Debian host?)"));
        }
    }
    None
}

/// Copies the root's `libz.so.1` into `sub` below its multiarch directory.
fn copy_libz_into(f: &Foreign, root: &Path, sub: &str) {
    let lib = root.join(format!("lib/{}", f.triplet));
    fs::create_dir_all(lib.join(sub)).expect("mkdir");
    fs::copy(lib.join("libz.so.1"), lib.join(sub).join("libz.so.1")).expect("copy libz");
}

/// Skips (printing why) or gives a fresh sysroot of `f`'s packages with
/// qemu in it.
fn prepared_root(name: &str, f: &Foreign) -> Option<tempfile::TempDir> {
    if let Some(why) = unavailable(f) {
        println!("skipping {name}: {why}");
        return None;
    }
    let debs = match debs(f.arch) {
        Ok(d) => d,
        Err(why) => {
            println!("skipping {name}: {why}");
            return None;
        }
    };
    let dir = sysroot(f, &debs);
    add_qemu(f, dir.path());
    Some(dir)
}

/// curl staged from `root` (under the baseline) into a fresh directory,
/// with qemu added: the directory to keep and the staged root in it.
fn staged_curl(name: &str, f: &Foreign, root: &Path) -> (tempfile::TempDir, PathBuf) {
    let out_dir = tempfile::Builder::new()
        .prefix("closure-foreign-out-")
        .tempdir()
        .expect("tempdir");
    let out = out_dir.path().join("out");
    let run = crate::support::fakeroot::run_raw(&[
        "--sysroot",
        root.to_str().expect("UTF-8"),
        "--root",
        CURL,
        "--out",
        out.to_str().expect("UTF-8"),
    ]);
    assert_eq!(run.0, 0, "{name}: staging failed:\n{}\n{}", run.1, run.2);
    add_qemu(f, &out);
    (out_dir, out)
}

/// Stages curl from `root` under the baseline and checks, for each (qemu
/// CPU, the copy of libz that CPU's loader takes there), that it takes it
/// and that the staged root's loader loads for curl what the sysroot's does.
fn baseline_staging_serves(name: &str, f: &Foreign, root: &Path, cpus: &[(&str, String)]) {
    let (_out_dir, out) = staged_curl(name, f, root);
    for (cpu, takes) in cpus {
        let real = loader_pick(f, root, cpu, "libz.so.1");
        assert_eq!(&real, takes, "{name}: the premise on {cpu}");
        let (full, _) = qemu(f, root, &["-cpu", cpu, f.interp, "--list", CURL], &[]);
        let (staged, _) = qemu(f, &out, &["-cpu", cpu, f.interp, "--list", CURL], &[]);
        assert_eq!(
            parse_trace(&staged).loaded,
            parse_trace(&full).loaded,
            "{name}: on {cpu} the staged root loads otherwise"
        );
        println!("{name}: {cpu} takes {real}; the staged root loads the same");
    }
}

fn foreign_root_matches_qemu_loader(name: &str, f: &Foreign) {
    let started = Instant::now();
    let Some(dir) = prepared_root(name, f) else {
        return;
    };
    let root = dir.path();

    // 1. No ld.so.cache.
    assert!(!root.join("etc/ld.so.cache").exists());
    let want = compare(f, root, "without ld.so.cache");

    // 2. Stage curl (with closure's own check of the staged root); the
    //    staged root runs `curl --version` and its loader loads the same
    //    paths.
    let (_out_dir, out) = staged_curl(name, f, root);
    assert!(
        out.join(format!("lib/{}/libgcc_s.so.1", f.triplet))
            .is_file(),
        "libgcc_s.so.1 (for pthread_exit) not staged"
    );
    let (version, _) = qemu(f, &out, &[CURL, "--version"], &[]);
    assert!(
        version.starts_with("curl ") && version.contains(f.host_tag),
        "curl --version in the staged root:\n{version}"
    );
    let staged = loader_loaded(f, &out);
    assert_eq!(staged, want, "the staged root loads other paths");

    // 3. With the cache the host's ldconfig writes for this root: it has no
    //    entries for a foreign architecture; loader and closure fall back
    //    to the default directories alike.
    fs::write(
        root.join("etc/ld.so.conf"),
        "include /etc/ld.so.conf.d/*.conf\n",
    )
    .expect("write ld.so.conf");
    let ldconfig = ["/usr/sbin/ldconfig", "/sbin/ldconfig"]
        .into_iter()
        .find(|p| Path::new(p).is_file());
    match ldconfig.map(|l| tool(l, &["-X", "-r", root.to_str().expect("UTF-8")], None)) {
        Some(Ok(o)) if o.status.success() && root.join("etc/ld.so.cache").is_file() => {
            let listed = tool(
                ldconfig.expect("found"),
                &[
                    "-p",
                    "-C",
                    root.join("etc/ld.so.cache").to_str().expect("UTF-8"),
                ],
                None,
            )
            .map(|o| text(&o))
            .unwrap_or_default();
            println!(
                "{}: host ldconfig -r wrote: {}",
                f.arch,
                listed.lines().next().unwrap_or("?")
            );
            compare(f, root, "with the host ldconfig's cache");
        }
        other => println!(
            "{}: host ldconfig -r could not write a cache ({other:?}); only the cache-less comparison ran",
            f.arch
        ),
    }
    println!("{name}: {:?}", started.elapsed());
}

#[test]
fn arm64_debian_root_matches_qemu_loader() {
    foreign_root_matches_qemu_loader("arm64_debian_root_matches_qemu_loader", &ARM64);
}

#[test]
fn s390x_debian_root_matches_qemu_loader() {
    foreign_root_matches_qemu_loader("s390x_debian_root_matches_qemu_loader", &S390X);
}

#[test]
fn armhf_debian_root_matches_qemu_loader() {
    foreign_root_matches_qemu_loader("armhf_debian_root_matches_qemu_loader", &ARMHF);
}

#[test]
fn ppc64el_debian_root_matches_qemu_loader() {
    foreign_root_matches_qemu_loader("ppc64el_debian_root_matches_qemu_loader", &PPC64EL);
}

#[test]
fn mips64el_debian_root_matches_qemu_loader() {
    foreign_root_matches_qemu_loader("mips64el_debian_root_matches_qemu_loader", &MIPS64EL);
}

#[test]
fn i386_debian_root_matches_qemu_loader() {
    foreign_root_matches_qemu_loader("i386_debian_root_matches_qemu_loader", &I386);
}

#[test]
fn mipsel_debian_root_matches_qemu_loader() {
    foreign_root_matches_qemu_loader("mipsel_debian_root_matches_qemu_loader", &MIPSEL);
}

/// The object named `file` that `--list` under qemu's `cpu` loads for curl.
fn loader_pick(f: &Foreign, root: &Path, cpu: &str, file: &str) -> String {
    let (out, _) = qemu(f, root, &["-cpu", cpu, f.interp, "--list", CURL], &[]);
    let t = parse_trace(&out);
    assert!(
        t.not_found.is_empty(),
        "the loader misses {:?}",
        t.not_found
    );
    t.loaded
        .iter()
        .find(|p| p.ends_with(&format!("/{file}")))
        .cloned()
        .unwrap_or_else(|| panic!("the loader loads no {file}:\n{out}"))
}

/// The object named `file` that `closure` loads for curl with `args`.
fn closure_pick(root: &Path, args: &[&str], file: &str) -> String {
    closure_pick_for(root, CURL, args, file)
}

/// The object named `file` that `closure` loads for the root `program`.
fn closure_pick_for(root: &Path, program: &str, args: &[&str], file: &str) -> String {
    let run = run_closure(root, &[program], args);
    assert!(run.missing.is_empty(), "{}", run.dump());
    run.loaded()
        .into_iter()
        .find(|p| p.ends_with(&format!("/{file}")))
        .unwrap_or_else(|| panic!("closure loads no {file}:\n{}", run.dump()))
}

/// The chain of picks as each is removed: `real` (the loader's) must
/// equal `ours` (closure's) every time, down to `base`, which ends it.
fn pick_chain(
    root: &Path,
    base: &str,
    real: impl Fn() -> String,
    ours: impl Fn() -> String,
    what: &str,
) -> Vec<String> {
    let mut chain = Vec::new();
    loop {
        let (real, ours) = (real(), ours());
        assert_eq!(
            ours, real,
            "{what} picks {ours}, the loader {real} (after {chain:?})"
        );
        chain.push(real.clone());
        if real == base {
            return chain;
        }
        fs::remove_file(root.join(real.trim_start_matches('/'))).expect("remove the pick");
    }
}

/// glibc 2.36's legacy hwcap subdirectories on a foreign architecture: a
/// copy of `libz.so.1` in each of `subdirs` of the multiarch directory;
/// for each (qemu CPU, closure options), the loader's pick must be
/// closure's, then that copy is removed and the next one compared, down to
/// the directory itself. Then the same with an `ld.so.cache` written by
/// the architecture's own `ldconfig` (under qemu), which tags the copies
/// in capability and `tls` subdirectories with their bits; removing a pick
/// leaves its entry stale, and the search goes on. Returns each CPU's
/// chains of picks (without and with the cache).
fn legacy_chains(
    name: &str,
    f: &Foreign,
    subdirs: &[&str],
    cpus: &[(&str, &[&str])],
) -> Option<Vec<Vec<String>>> {
    let dir = prepared_root(name, f)?;
    Some(legacy_chains_in(name, f, dir.path(), subdirs, cpus))
}

/// [`legacy_chains`] in a root made already.
fn legacy_chains_in(
    name: &str,
    f: &Foreign,
    root: &Path,
    subdirs: &[&str],
    cpus: &[(&str, &[&str])],
) -> Vec<Vec<String>> {
    let lib = format!("/lib/{}", f.triplet);
    let base = format!("{lib}/libz.so.1");
    let mut chains = Vec::new();
    for (cached, (cpu, args)) in [false, true]
        .into_iter()
        .flat_map(|c| cpus.iter().map(move |cpu| (c, cpu)))
    {
        for sub in subdirs {
            let d = root.join(format!("{}/{sub}", lib.trim_start_matches('/')));
            fs::create_dir_all(&d).expect("mkdir");
            fs::copy(root.join(base.trim_start_matches('/')), d.join("libz.so.1"))
                .expect("copy libz");
        }
        if cached {
            let _ = fs::remove_file(root.join("etc/ld.so.cache"));
            qemu(f, root, &["/sbin/ldconfig", "-X"], &[]);
            let (listed, _) = qemu(f, root, &["/sbin/ldconfig", "-p"], &[]);
            let tagged = listed
                .lines()
                .filter(|l| l.contains("libz.so.1 ") && l.contains("hwcap:"))
                .count();
            assert!(tagged > 0, "{name}: ldconfig tagged no copy:\n{listed}");
        }
        let chain = pick_chain(
            root,
            &base,
            || loader_pick(f, root, cpu, "libz.so.1"),
            || closure_pick(root, args, "libz.so.1"),
            &format!("{name}: qemu -cpu {cpu}, cache {cached}: closure {args:?}"),
        );
        let with = if cached { "with" } else { "without" };
        println!("{name}: qemu -cpu {cpu}, closure {args:?}, {with} ld.so.cache: {chain:?}");
        chains.push(chain);
    }
    chains
}

#[test]
fn arm64_legacy_hwcap_subdirectories_match_qemu_loader() {
    let name = "arm64_legacy_hwcap_subdirectories_match_qemu_loader";
    // Cortex-A72 has no LSE atomics (the baseline); qemu's `max` has.
    let subdirs = [
        "tls/aarch64/atomics",
        "tls/aarch64",
        "tls/atomics",
        "tls",
        "aarch64/atomics",
        "aarch64",
        "atomics",
    ];
    let cpus: [(&str, &[&str]); 2] = [("cortex-a72", &[]), ("max", &["--hwcaps", "atomics"])];
    let Some(chains) = legacy_chains(name, &ARM64, &subdirs, &cpus) else {
        return;
    };
    // Each CPU went through several copies, and the CPU with atomics
    // through more: the capability and the flag both count. With the
    // cache the first pick is a tagged entry's.
    assert!(chains[0].len() > 2, "{chains:?}");
    assert!(chains[1].len() > chains[0].len(), "{chains:?}");
    assert_eq!(chains.len(), 4);
}

#[test]
fn s390x_legacy_hwcap_subdirectories_match_qemu_loader() {
    let name = "s390x_legacy_hwcap_subdirectories_match_qemu_loader";
    // qemu's s390x CPU: zarch, ldisp, eimm, vx and vxe among the important
    // capabilities (no dfp, no vxe2), and no AT_PLATFORM.
    let subdirs = [
        "tls/vxe/vx/eimm/ldisp/zarch",
        "tls/vxe",
        "tls/dfp",
        "tls",
        "vxe/ldisp",
        "vx/eimm",
        "dfp",
        "eimm",
        "zarch",
    ];
    let cpus: [(&str, &[&str]); 1] = [(
        "max",
        &[
            "--platform=",
            "--hwcaps",
            "z15,z14,z13,zarch,ldisp,eimm,vx,vxe",
        ],
    )];
    let Some(chains) = legacy_chains(name, &S390X, &subdirs, &cpus) else {
        return;
    };
    assert!(chains[0].len() > 2, "{chains:?}");
    assert_eq!(chains.len(), 2);
}

#[test]
fn armhf_legacy_hwcap_subdirectories_match_qemu_loader() {
    let name = "armhf_legacy_hwcap_subdirectories_match_qemu_loader";
    // Cortex-R5F has VFP and no NEON (every hard-float CPU has VFP, so
    // closure's default model does), Cortex-A15 both (platform `v7l`),
    // qemu's `max` both as an ARMv8 CPU (platform `v8l`). The layout
    // Debian's armhf packages used for NEON builds is `neon/vfp/`.
    let subdirs = [
        "tls/v7l/neon/vfp",
        "tls/v8l",
        "tls/neon/vfp",
        "tls/vfp",
        "tls",
        "v7l/neon",
        "neon/vfp",
        "v8l",
        "vfp",
        "neon",
    ];
    let cpus: [(&str, &[&str]); 3] = [
        ("cortex-r5f", &[]),
        ("cortex-a15", &["--hwcaps", "neon"]),
        ("max", &["--platform", "v8l", "--hwcaps", "neon"]),
    ];
    let Some(chains) = legacy_chains(name, &ARMHF, &subdirs, &cpus) else {
        return;
    };
    // Without NEON fewer copies are tried than with it; the cache (whose
    // `tls/` entries carry Arm's own TLS capability bit, which the loader
    // does not take) changes the first pick.
    assert!(chains[0].len() > 2, "{chains:?}");
    assert!(chains[1].len() > chains[0].len(), "{chains:?}");
    assert_ne!(chains[1][0], chains[4][0], "{chains:?}");
    assert_eq!(chains.len(), 6);
}

#[test]
fn ppc64el_legacy_hwcap_subdirectories_match_qemu_loader() {
    let name = "ppc64el_legacy_hwcap_subdirectories_match_qemu_loader";
    // qemu's POWER9 has `dfp` and `altivec` (as every POWER8 and later
    // CPU, so closure's default model does) and gives no AT_PLATFORM:
    // `power9/` is never searched, and the platform-tagged cache entries
    // POWER's `ldconfig` writes for `power9/` and `tls/power9/` are not
    // taken.
    let subdirs = [
        "tls/power9/altivec/dfp",
        "tls/altivec",
        "tls/power9",
        "tls/dfp",
        "tls",
        "power9",
        "altivec/dfp",
        "altivec",
        "dfp",
    ];
    let cpus: [(&str, &[&str]); 1] = [("power9", &["--platform=", "--hwcaps", "power9"])];
    let Some(chains) = legacy_chains(name, &PPC64EL, &subdirs, &cpus) else {
        return;
    };
    assert!(chains[0].len() > 2, "{chains:?}");
    assert!(
        chains.iter().flatten().all(|p| !p.contains("power9")),
        "{chains:?}"
    );
    assert_eq!(chains.len(), 2);
}

#[test]
fn ppc64el_baseline_stages_what_a_cpu_of_another_platform_takes() {
    let name = "ppc64el_baseline_stages_what_a_cpu_of_another_platform_takes";
    // closure's default POWER model is a POWER9 (platform `power9`): with a
    // copy of libz in `power9/`, tagged with that platform's bit by POWER's
    // own `ldconfig`, its baseline pick is that copy. A CPU of another
    // platform (qemu's POWER8 and POWER9 give no AT_PLATFORM at all) skips
    // the entry and takes the plain one after it, so under baseline both
    // are staged, and the staged root's loader loads what the sysroot's
    // does on each of those CPUs.
    let f = &PPC64EL;
    let Some(dir) = prepared_root(name, f) else {
        return;
    };
    let root = dir.path();
    copy_libz_into(f, root, "power9");
    qemu(f, root, &["/sbin/ldconfig", "-X"], &[]);
    let ours = closure_pick(root, &[], "libz.so.1");
    assert!(
        ours.ends_with("/power9/libz.so.1"),
        "{name}: the premise: closure's baseline pick is the power9 copy, not {ours}"
    );
    // qemu's CPUs, with no platform, take the plain copy.
    let plain = format!("/lib/{}/libz.so.1", f.triplet);
    baseline_staging_serves(
        name,
        f,
        root,
        &[("power8", plain.clone()), ("power9", plain)],
    );
}

#[test]
fn mips64el_legacy_hwcap_subdirectories_match_qemu_loader() {
    let name = "mips64el_legacy_hwcap_subdirectories_match_qemu_loader";
    // MIPS has no important capabilities (a Loongson CPU's AT_HWCAP bits
    // change nothing), and its kernel (like qemu) gives no AT_PLATFORM on
    // most CPUs: `tls/` is the only legacy subdirectory, which closure's
    // default model has too. Its loader takes no cache entry tagged `tls`
    // (its `ldconfig` writes one): with the cache the plain library is
    // the first pick.
    let subdirs = ["tls/mips64", "tls", "mips64", "octeon"];
    let cpus: [(&str, &[&str]); 2] = [("MIPS64R2-generic", &[]), ("Loongson-3A4000", &[])];
    let Some(chains) = legacy_chains(name, &MIPS64EL, &subdirs, &cpus) else {
        return;
    };
    let lib = "/lib/mips64el-linux-gnuabi64";
    let searched = vec![format!("{lib}/tls/libz.so.1"), format!("{lib}/libz.so.1")];
    let cached = vec![format!("{lib}/libz.so.1")];
    assert_eq!(chains, [searched.clone(), searched, cached.clone(), cached]);
}

#[test]
fn armel_legacy_hwcap_subdirectories_match_qemu_loader() {
    let name = "armel_legacy_hwcap_subdirectories_match_qemu_loader";
    // Soft-float Arm: VFP is not implied. The ARM926 has VFP (`v5l`, the default platform),
    // the ARM1176 too (`v6l`), the Cortex-A15 VFP and NEON (`v7l`); closure counts each
    // capability only when `--hwcaps` names it.
    let subdirs = [
        "tls/v7l/neon/vfp",
        "tls/vfp",
        "tls",
        "v5l",
        "v6l/vfp",
        "neon/vfp",
        "vfp",
    ];
    let cpus: [(&str, &[&str]); 3] = [
        ("arm926", &["--hwcaps", "vfp"]),
        ("arm1176", &["--platform", "v6l", "--hwcaps", "vfp"]),
        ("cortex-a15", &["--platform", "v7l", "--hwcaps", "neon,vfp"]),
    ];
    let Some(chains) = legacy_chains(name, &ARMEL, &subdirs, &cpus) else {
        return;
    };
    assert!(chains[0].len() > 2, "{chains:?}");
    assert!(chains[2].len() > chains[0].len(), "{chains:?}");
    assert_eq!(chains.len(), 6);
}

#[test]
fn i386_legacy_hwcap_subdirectories_match_qemu_loader() {
    let name = "i386_legacy_hwcap_subdirectories_match_qemu_loader";
    // glibc's i386 loader takes its platform from `cpuid` (`i686` with
    // CMOV, which Debian's i386 baseline needs: qemu's `pentium` dies on
    // the loader's first CMOV) and counts `sse2`, its one important
    // capability, when the CPU has SSE2: qemu's `max` and `coreduo` have
    // it, the `pentium3` not. closure counts it when `--hwcaps` names it.
    // The `i586/` and `i386/` copies are for platforms no such CPU has.
    let subdirs = [
        "tls/i686/sse2",
        "tls/i586/sse2",
        "tls/sse2",
        "tls/i686",
        "tls",
        "i686/sse2",
        "i586/sse2",
        "sse2",
        "i686",
        "i586",
        "i386",
    ];
    let cpus: [(&str, &[&str]); 3] = [
        ("max", &["--hwcaps", "sse2"]),
        ("coreduo", &["--hwcaps", "sse2"]),
        ("pentium3", &[]),
    ];
    let Some(chains) = legacy_chains(name, &I386, &subdirs, &cpus) else {
        return;
    };
    assert_eq!(chains.len(), 6);
    let has = |c: &Vec<String>, part: &str| c.iter().any(|p| p.contains(part));
    for (i, c) in chains.iter().enumerate() {
        assert!(c.len() > 2, "{chains:?}");
        assert!(!has(c, "/i586/") && !has(c, "/i386/"), "{chains:?}");
        // The CPU without SSE2 (the third of each three) takes no sse2 copy.
        assert_eq!(has(c, "/sse2/"), i % 3 != 2, "{chains:?}");
    }
    assert!(chains[0].len() > chains[2].len(), "{chains:?}");
}

#[test]
fn mipsel_legacy_hwcap_subdirectories_match_qemu_loader() {
    let name = "mipsel_legacy_hwcap_subdirectories_match_qemu_loader";
    // 32-bit MIPS as 64-bit MIPS: no important capabilities, no
    // AT_PLATFORM from qemu's CPUs, `tls/` the only legacy subdirectory;
    // no cache entry tagged `tls` is taken.
    let subdirs = ["tls/mips32", "tls", "mips32", "loongson2f", "octeon"];
    let cpus: [(&str, &[&str]); 2] = [("24Kf", &[]), ("74Kf", &[])];
    let Some(chains) = legacy_chains(name, &MIPSEL, &subdirs, &cpus) else {
        return;
    };
    let lib = "/lib/mipsel-linux-gnu";
    let searched = vec![format!("{lib}/tls/libz.so.1"), format!("{lib}/libz.so.1")];
    let cached = vec![format!("{lib}/libz.so.1")];
    assert_eq!(chains, [searched.clone(), searched, cached.clone(), cached]);
}

#[test]
fn i386_baseline_stages_what_either_cpu_takes() {
    let name = "i386_baseline_stages_what_either_cpu_takes";
    // closure's baseline i386 CPU has no SSE2, so its pick is the plain
    // libz; a CPU with SSE2 takes the `sse2/` copy. Staged under baseline,
    // the root holds both, and its loader loads what the sysroot's does on
    // either CPU, with and without the cache of i386's own `ldconfig`.
    let f = &I386;
    let Some(dir) = prepared_root(name, f) else {
        return;
    };
    let root = dir.path();
    let lib = format!("lib/{}", f.triplet);
    copy_libz_into(f, root, "sse2");
    for cached in [false, true] {
        if cached {
            qemu(f, root, &["/sbin/ldconfig", "-X"], &[]);
        }
        let ours = closure_pick(root, &[], "libz.so.1");
        assert_eq!(
            ours,
            format!("/{lib}/libz.so.1"),
            "{name}: the premise: closure's baseline pick is the plain copy"
        );
        baseline_staging_serves(
            &format!("{name} (cache {cached})"),
            f,
            root,
            &[
                ("pentium3", format!("/{lib}/libz.so.1")),
                ("max", format!("/{lib}/sse2/libz.so.1")),
            ],
        );
    }
}

// ---------------------------------------------------------------------------------------------
// glibc 2.36 of architectures without a Debian 12 port: `libc6-ARCH-cross`
// ---------------------------------------------------------------------------------------------

/// A glibc of another architecture from Debian 12's `libc6-PKG-cross`
/// package: the distribution's own build of glibc 2.36, repackaged under
/// `/usr/TRIPLET/lib`. Its loader searches the paths of a native build
/// (`/lib/TRIPLET`, …), so a root with the libraries in `/lib/TRIPLET` and
/// the loader at its `PT_INTERP` path is what a root of that port would
/// hold of glibc. There is no program: the loader lists `libm.so.6`, which
/// needs `libc.so.6`, and closure is given the same library as its root.
struct Cross {
    /// `libc6-{pkg}-cross`.
    pkg: &'static str,
    qemu: &'static str,
    triplet: &'static str,
    /// The loader's `PT_INTERP` path.
    interp: &'static str,
}

/// A [`Cross`] from its four facts.
const fn cross(
    pkg: &'static str,
    qemu: &'static str,
    triplet: &'static str,
    interp: &'static str,
) -> Cross {
    Cross {
        pkg,
        qemu,
        triplet,
        interp,
    }
}

const CROSS_RISCV64: Cross = cross(
    "riscv64",
    "qemu-riscv64-static",
    "riscv64-linux-gnu",
    "/lib/ld-linux-riscv64-lp64d.so.1",
);

const CROSS_PPC64: Cross = cross(
    "ppc64",
    "qemu-ppc64-static",
    "powerpc64-linux-gnu",
    "/lib64/ld64.so.1",
);

const CROSS_POWERPC: Cross = cross(
    "powerpc",
    "qemu-ppc-static",
    "powerpc-linux-gnu",
    "/lib/ld.so.1",
);

const CROSS_MIPS: Cross = cross("mips", "qemu-mips-static", "mips-linux-gnu", "/lib/ld.so.1");

/// The `.deb` of `libc6-{pkg}-cross`: cached, else downloaded (an `all`
/// package: no foreign architecture needed). Err: why not.
fn cross_deb(c: &Cross) -> Result<PathBuf, String> {
    let dir = cache_dir(&format!("cross-{}", c.pkg));
    let pkg = format!("libc6-{}-cross", c.pkg);
    let _guard = APT.lock().unwrap_or_else(|e| e.into_inner());
    let find = || -> Option<PathBuf> {
        fs::read_dir(&dir)
            .ok()?
            .flatten()
            .map(|e| e.path())
            .find(|p| {
                p.file_name()
                    .and_then(|n| n.to_str())
                    .is_some_and(|n| n.starts_with(&format!("{pkg}_")) && n.ends_with(".deb"))
            })
    };
    if let Some(d) = find() {
        return Ok(d);
    }
    fs::create_dir_all(&dir).map_err(|e| format!("mkdir {}: {e}", dir.display()))?;
    let args = [
        "-q",
        "-o",
        "APT::Sandbox::User=root",
        "download",
        pkg.as_str(),
    ];
    if let Err(first) = apt("apt-get", &args, Some(&dir)) {
        println!("{pkg}: download failed ({first}); updating the lists and retrying");
        apt("apt-get", &["update", "-qq"], None)
            .map_err(|e| format!("apt-get update failed (is the Debian mirror reachable?): {e}"))?;
        apt("apt-get", &args, Some(&dir))
            .map_err(|e| format!("apt-get download {pkg} failed: {e}"))?;
    }
    find().ok_or_else(|| format!("apt-get download left no {pkg} in {}", dir.display()))
}

/// Skips (with the reason) or gives a fresh root holding the cross glibc
/// in `/lib/TRIPLET`, its loader linked at `PT_INTERP`, `/etc`, and qemu.
fn cross_root(name: &str, c: &Cross) -> Option<tempfile::TempDir> {
    let why = if !is_root() {
        Some("needs root (chroot)".to_string())
    } else if !Path::new("/usr/bin").join(c.qemu).is_file() {
        Some(format!(
            "/usr/bin/{} is not installed (apt-get install qemu-user-static)",
            c.qemu
        ))
    } else if !runs("dpkg-deb", "--version") || !runs("apt-get", "--version") {
        Some("dpkg-deb or apt-get is not available (not a Debian host?)".to_string())
    } else {
        None
    };
    if let Some(why) = why {
        println!("skipping {name}: {why}");
        return None;
    }
    let deb = match cross_deb(c) {
        Ok(d) => d,
        Err(why) => {
            println!("skipping {name}: {why}");
            return None;
        }
    };
    let unpacked = tempfile::Builder::new()
        .prefix("closure-cross-deb-")
        .tempdir()
        .expect("tempdir");
    let out = tool(
        "dpkg-deb",
        &[
            "-x",
            deb.to_str().expect("UTF-8 path"),
            unpacked.path().to_str().expect("UTF-8 path"),
        ],
        None,
    )
    .expect("run dpkg-deb");
    assert!(out.status.success(), "dpkg-deb -x: {}", text(&out));
    Some(cross_root_from(name, c, unpacked.path()))
}

/// The root of [`cross_root`] from a `libc6-{pkg}-cross` package unpacked in `unpacked`.
fn cross_root_from(name: &str, c: &Cross, unpacked: &Path) -> tempfile::TempDir {
    let dir = tempfile::Builder::new()
        .prefix(&format!("closure-cross-{}-", c.pkg))
        .tempdir()
        .expect("tempdir");
    let root = dir.path();
    let lib = root.join("lib").join(c.triplet);
    fs::create_dir_all(&lib).expect("mkdir lib");
    fs::create_dir_all(root.join("etc")).expect("mkdir etc");
    // `lib` holds the libraries; `lib64` only a loader on some ports.
    for sub in ["lib", "lib64"] {
        let from = unpacked.join("usr").join(c.triplet).join(sub);
        for e in fs::read_dir(&from).into_iter().flatten().flatten() {
            if e.file_type().is_ok_and(|t| t.is_file()) {
                fs::copy(e.path(), lib.join(e.file_name())).expect("copy a library");
            }
        }
    }
    let interp_name = Path::new(c.interp).file_name().expect("a file name");
    assert!(
        lib.join(interp_name).is_file(),
        "{name}: the package has no {}",
        interp_name.to_string_lossy()
    );
    let link = root.join(c.interp.trim_start_matches('/'));
    if !link.exists() {
        fs::create_dir_all(link.parent().expect("a parent")).expect("mkdir");
        std::os::unix::fs::symlink(Path::new("/lib").join(c.triplet).join(interp_name), &link)
            .expect("link the loader");
    }
    let to = root.join(c.qemu);
    fs::copy(Path::new("/usr/bin").join(c.qemu), &to).expect("copy qemu into the root");
    fs::set_permissions(&to, fs::Permissions::from_mode(0o755)).expect("chmod qemu");
    dir
}

/// The `libc.so.6` the root's loader, under qemu's `cpu`, loads for
/// `libm.so.6`.
fn cross_loader_pick(c: &Cross, root: &Path, cpu: &str) -> String {
    let out = cross_loader_list(c, root, cpu);
    let t = parse_trace(&out);
    assert!(
        t.not_found.is_empty(),
        "the loader misses {:?}",
        t.not_found
    );
    t.loaded
        .iter()
        .find(|p| p.ends_with("/libc.so.6"))
        .cloned()
        .unwrap_or_else(|| panic!("the loader loads no libc.so.6:\n{out}"))
}

/// What the root's loader, under qemu's `cpu` (qemu's default CPU when
/// empty), prints for `ld.so --list /lib/TRIPLET/libm.so.6`.
fn cross_loader_list(c: &Cross, root: &Path, cpu: &str) -> String {
    let q = format!("/{}", c.qemu);
    let libm = format!("/lib/{}/libm.so.6", c.triplet);
    let mut argv = vec![q.as_str()];
    if !cpu.is_empty() {
        argv.extend(["-cpu", cpu]);
    }
    argv.extend([c.interp, "--list", libm.as_str()]);
    let (status, out, err) = run_in_root(root, &argv, &[]);
    assert!(status.success(), "{argv:?} failed:\n{out}\n{err}");
    out
}

/// closure's `libc.so.6` for `libm.so.6` with `args`.
fn cross_closure_pick(c: &Cross, root: &Path, args: &[&str]) -> String {
    let libm = format!("/lib/{}/libm.so.6", c.triplet);
    closure_pick_for(root, &libm, args, "libc.so.6")
}

/// The legacy subdirectories of a cross glibc: for each (qemu CPU,
/// closure options), a copy of `libc.so.6` in each of `subdirs` of
/// `/lib/TRIPLET`; the loader's pick must be closure's, then it is removed
/// and the next compared, down to the directory itself. Then a cache
/// (written with `closure`'s own writer, in the layout `ldconfig` writes)
/// with copies outside the default directories, one entry per tag in
/// `tags` (a legacy hwcap value, e.g. `tls`'s bit 63) beside the plain
/// entry: which the loader takes on that CPU must be closure's. Returns,
/// per CPU, the chain of picks and the cache pick.
fn cross_chains(
    name: &str,
    c: &Cross,
    subdirs: &[&str],
    cpus: &[(&str, &[&str])],
    tags: &[(&str, u64)],
) -> Option<Vec<(Vec<String>, String)>> {
    let dir = cross_root(name, c)?;
    let root = dir.path();
    let lib = format!("/lib/{}", c.triplet);
    let base = format!("{lib}/libc.so.6");
    let libc = root.join(base.trim_start_matches('/'));
    // The cache's flags come from libc's own header.
    let head = fs::read(&libc).expect("read libc");
    let is_64 = head[4] == 2;
    let big = head[5] == 2;
    let u16_at = |o: usize| {
        let b = [head[o], head[o + 1]];
        if big {
            u16::from_be_bytes(b)
        } else {
            u16::from_le_bytes(b)
        }
    };
    let u32_at = |o: usize| {
        let b = [head[o], head[o + 1], head[o + 2], head[o + 3]];
        if big {
            u32::from_be_bytes(b)
        } else {
            u32::from_le_bytes(b)
        }
    };
    let flags = ldcache::flags_for(u16_at(18), is_64, u32_at(if is_64 { 48 } else { 36 }));
    let mut out = Vec::new();
    for (cpu, args) in cpus {
        for sub in subdirs {
            let d = root.join(format!("{}/{sub}", lib.trim_start_matches('/')));
            fs::create_dir_all(&d).expect("mkdir");
            fs::copy(&libc, d.join("libc.so.6")).expect("copy libc");
        }
        let chain = pick_chain(
            root,
            &base,
            || cross_loader_pick(c, root, cpu),
            || cross_closure_pick(c, root, args),
            &format!("{name}: qemu -cpu {cpu}: closure {args:?}"),
        );
        // The cache: the plain entry and one per tag, each tagged copy in
        // a directory of its own outside the default ones.
        let mut entries = vec![CacheEntry {
            flags,
            key: b"libc.so.6".to_vec(),
            value: base.clone().into_bytes(),
            hwcap: 0,
        }];
        for (tag, bits) in tags {
            let d = root.join(format!("opt/{tag}"));
            fs::create_dir_all(&d).expect("mkdir");
            fs::copy(&libc, d.join("libc.so.6")).expect("copy libc");
            entries.push(CacheEntry {
                flags,
                key: b"libc.so.6".to_vec(),
                value: format!("/opt/{tag}/libc.so.6").into_bytes(),
                hwcap: *bits,
            });
        }
        let cache = root.join("etc/ld.so.cache");
        fs::write(&cache, ldcache::write_new(&entries, big, None)).expect("write the cache");
        let real = cross_loader_pick(c, root, cpu);
        let ours = cross_closure_pick(c, root, args);
        assert_eq!(
            ours, real,
            "{name}: qemu -cpu {cpu} with a cache tagged {tags:?}: closure {args:?} picks {ours}, the loader {real}"
        );
        fs::remove_file(&cache).expect("remove the cache");
        println!("{name}: qemu -cpu {cpu}, closure {args:?}: {chain:?}; with the cache {real}");
        out.push((chain, real));
    }
    Some(out)
}

/// bit 63 of a cache entry's hwcap: a copy in a `tls/` subdirectory.
const TLS: u64 = 1 << 63;

#[test]
fn riscv64_glibc_2_36_searches_tls_subdirectories() {
    let name = "riscv64_glibc_2_36_searches_tls_subdirectories";
    // glibc 2.36 for RISC-V: no important capabilities, no AT_PLATFORM,
    // `tls/` searched before each directory (closure searched none until
    // the thirty-eighth stop), and a cache entry tagged `tls` taken.
    let subdirs = ["tls/riscv64", "tls", "riscv64", "rv64"];
    let cpus: [(&str, &[&str]); 1] = [("rv64", &[])];
    let Some(r) = cross_chains(name, &CROSS_RISCV64, &subdirs, &cpus, &[("tls", TLS)]) else {
        return;
    };
    let lib = "/lib/riscv64-linux-gnu";
    assert_eq!(
        r[0].0,
        [format!("{lib}/tls/libc.so.6"), format!("{lib}/libc.so.6")]
    );
    assert_eq!(r[0].1, "/opt/tls/libc.so.6");
}

#[test]
fn big_endian_ppc64_legacy_subdirectories_match_qemu_loader() {
    let name = "big_endian_ppc64_legacy_subdirectories_match_qemu_loader";
    // Big-endian POWER (ELFv1): `dfp` and `altivec` count only on CPUs that
    // have them (POWER5+ neither, the 970 AltiVec, POWER9 both); qemu gives
    // no AT_PLATFORM.
    let subdirs = [
        "tls/altivec/dfp",
        "tls/altivec",
        "tls/dfp",
        "tls",
        "altivec/dfp",
        "altivec",
        "dfp",
        "power9",
    ];
    let cpus: [(&str, &[&str]); 3] = [
        ("power5+", &["--platform="]),
        ("970", &["--platform=", "--hwcaps", "altivec"]),
        ("power9", &["--platform=", "--hwcaps", "dfp,altivec"]),
    ];
    let tags = [("altivec", 1 << 28)];
    let Some(r) = cross_chains(name, &CROSS_PPC64, &subdirs, &cpus, &tags) else {
        return;
    };
    // More copies tried with each capability more; the cache's AltiVec
    // entry taken only where the CPU has AltiVec.
    assert!(
        r[0].0.len() < r[1].0.len() && r[1].0.len() < r[2].0.len(),
        "{r:?}"
    );
    assert!(
        r.iter().flat_map(|x| &x.0).all(|p| !p.contains("power9")),
        "{r:?}"
    );
    assert_eq!(r[0].1, "/lib/powerpc64-linux-gnu/libc.so.6");
    assert_eq!(r[1].1, "/opt/altivec/libc.so.6");
    assert_eq!(r[2].1, "/opt/altivec/libc.so.6");
}

#[test]
fn powerpc_legacy_subdirectories_match_qemu_loader() {
    let name = "powerpc_legacy_subdirectories_match_qemu_loader";
    // 32-bit PowerPC: the same capabilities as 64-bit POWER (the e500mc
    // has neither, the 7400 AltiVec); closure modelled no legacy
    // subdirectory for it until the thirty-eighth stop. No platform by
    // default (its kernels name each CPU; qemu names none).
    let subdirs = ["tls/altivec", "tls/dfp", "tls", "altivec", "dfp", "ppc"];
    let cpus: [(&str, &[&str]); 2] = [("e500mc", &[]), ("7400", &["--hwcaps", "altivec"])];
    let tags = [("altivec", 1 << 28)];
    let Some(r) = cross_chains(name, &CROSS_POWERPC, &subdirs, &cpus, &tags) else {
        return;
    };
    let lib = "/lib/powerpc-linux-gnu";
    assert_eq!(
        r[0].0,
        [format!("{lib}/tls/libc.so.6"), format!("{lib}/libc.so.6")]
    );
    assert!(r[1].0.len() > r[0].0.len(), "{r:?}");
    assert_eq!(r[0].1, format!("{lib}/libc.so.6"));
    assert_eq!(r[1].1, "/opt/altivec/libc.so.6");
}

#[test]
fn big_endian_mips_legacy_subdirectories_match_qemu_loader() {
    let name = "big_endian_mips_legacy_subdirectories_match_qemu_loader";
    // 32-bit big-endian MIPS as mipsel: `tls/` searched, no cache entry
    // tagged `tls` taken.
    let subdirs = ["tls/mips32", "tls", "mips32", "octeon"];
    let cpus: [(&str, &[&str]); 2] = [("24Kf", &[]), ("74Kf", &[])];
    let Some(r) = cross_chains(name, &CROSS_MIPS, &subdirs, &cpus, &[("tls", TLS)]) else {
        return;
    };
    let lib = "/lib/mips-linux-gnu";
    for (chain, cached) in &r {
        assert_eq!(
            *chain,
            [format!("{lib}/tls/libc.so.6"), format!("{lib}/libc.so.6")]
        );
        assert_eq!(*cached, format!("{lib}/libc.so.6"));
    }
}

const CROSS_M68K: Cross = cross("m68k", "qemu-m68k-static", "m68k-linux-gnu", "/lib/ld.so.1");

const CROSS_HPPA: Cross = cross("hppa", "qemu-hppa-static", "hppa-linux-gnu", "/lib/ld.so.1");

const CROSS_SPARC64: Cross = cross(
    "sparc64",
    "qemu-sparc64-static",
    "sparc64-linux-gnu",
    "/lib64/ld-linux.so.2",
);

/// Every port checked through a `libc6-ARCH-cross` package.
const CROSS_PORTS: [&Cross; 7] = [
    &CROSS_RISCV64,
    &CROSS_PPC64,
    &CROSS_POWERPC,
    &CROSS_MIPS,
    &CROSS_M68K,
    &CROSS_HPPA,
    &CROSS_SPARC64,
];

#[test]
fn debian_ports_glibc_roots_match_qemu_loader() {
    let name = "debian_ports_glibc_roots_match_qemu_loader";
    // m68k, PA-RISC and 64-bit SPARC glibc 2.36 (Debian ports): the
    // loader's lines for `libm.so.6` must be closure's, in order — its
    // default directories are `/lib/TRIPLET` and the rest, which closure
    // knew for none of them until the thirty-eighth stop ("libc.so.6 =>
    // not found"). Then the legacy subdirectories: `tls`, and on PA-RISC
    // the platform `PARISC` the kernel (and qemu) gives.
    for (c, platform) in [
        (&CROSS_M68K, None),
        (&CROSS_HPPA, Some("PARISC")),
        (&CROSS_SPARC64, None),
    ] {
        let Some(dir) = cross_root(name, c) else {
            return;
        };
        let root = dir.path();
        let listed = cross_loader_list(c, root, "");
        let theirs = ldd_lines(&listed);
        let libm = format!("/lib/{}/libm.so.6", c.triplet);
        let ours = closure_ldd_lines(root, &[libm.as_str()], &[])
            .remove(&libm)
            .unwrap_or_default();
        assert_eq!(
            ours, theirs,
            "{name}: {}: the loader printed:\n{listed}",
            c.pkg
        );
        assert!(
            theirs
                .iter()
                .any(|l| l == &format!("libc.so.6 => /lib/{}/libc.so.6", c.triplet)),
            "{theirs:?}"
        );
        drop(dir);
        let mut subdirs = vec!["tls/v9v", "tls", "v9v", "ultra3"];
        if let Some(p) = platform {
            subdirs.extend([format!("tls/{p}").leak() as &str, p]);
        }
        let cpus: [(&str, &[&str]); 1] = [("", &[])];
        let Some(r) = cross_chains(name, c, &subdirs, &cpus, &[("tls", TLS)]) else {
            return;
        };
        let lib = format!("/lib/{}", c.triplet);
        let mut want = vec![];
        if let Some(p) = platform {
            want.push(format!("{lib}/tls/{p}/libc.so.6"));
        }
        want.push(format!("{lib}/tls/libc.so.6"));
        if let Some(p) = platform {
            want.push(format!("{lib}/{p}/libc.so.6"));
        }
        want.push(format!("{lib}/libc.so.6"));
        assert_eq!(r[0].0, want, "{name}: {}", c.pkg);
        assert_eq!(r[0].1, "/opt/tls/libc.so.6", "{name}: {}", c.pkg);
    }
}

#[test]
fn armhf_baseline_stages_what_a_cpu_skipping_the_platform_copy_takes_later() {
    let name = "armhf_baseline_stages_what_a_cpu_skipping_the_platform_copy_takes_later";
    // The baseline armhf CPU's platform is `v7l`; an ARMv8 CPU running
    // 32-bit code (qemu's `max`) is `v8l` and skips `v7l/`. With libz only
    // in `/lib/TRIPLET/v7l/` and in `/usr/lib/TRIPLET/` (a later default
    // directory), the baseline pick is the `v7l` copy and the `v8l` CPU's
    // the `/usr/lib` one, which a search of the pick's directory alone
    // does not find: the search is run again as that CPU, so both are
    // staged and the staged root loads what the sysroot does on both.
    let f = &ARMHF;
    let Some(dir) = prepared_root(name, f) else {
        return;
    };
    let root = dir.path();
    let lib = format!("lib/{}", f.triplet);
    let usr = format!("usr/lib/{}", f.triplet);
    let real = fs::canonicalize(root.join(format!("{lib}/libz.so.1"))).expect("libz");
    fs::create_dir_all(root.join(format!("{lib}/v7l"))).expect("mkdir");
    fs::copy(&real, root.join(format!("{lib}/v7l/libz.so.1"))).expect("copy libz");
    fs::copy(&real, root.join(format!("{usr}/libz.so.1"))).expect("copy libz");
    fs::remove_file(root.join(format!("{lib}/libz.so.1"))).expect("remove the link");
    fs::remove_file(&real).expect("remove libz");
    let ours = closure_pick(root, &[], "libz.so.1");
    assert_eq!(ours, format!("/{lib}/v7l/libz.so.1"), "{name}: the premise");
    baseline_staging_serves(
        name,
        f,
        root,
        &[
            ("cortex-a15", format!("/{lib}/v7l/libz.so.1")),
            ("max", format!("/{usr}/libz.so.1")),
        ],
    );
}

// ---------------------------------------------------------------------------------------------
// glibc-hwcaps names
// ---------------------------------------------------------------------------------------------

/// Names a loader of this suite may not know: a newer glibc's (`z17`:
/// s390x since 2.42; `z16` since 2.36), another architecture's, or none's.
const OTHER_HWCAPS: [&str; 5] = ["z17", "z16", "power10", "x86-64-v3", "haswell"];

/// closure run on a test's root with the arguments given.
type ClosureWith<'a> = Box<dyn Fn(&[&str]) -> ClosureRun + 'a>;

/// How a test compares one loader's `glibc-hwcaps` names with closure's.
struct HwcapsCase<'a> {
    /// For messages.
    what: String,
    root: &'a Path,
    /// The loader's `ld.so --help` on the CPU that `real` runs it on.
    help: String,
    /// The in-root directory of `file`, the library compared.
    dir: String,
    file: &'a str,
    /// The loader's pick of `file`.
    real: Box<dyn Fn() -> String + 'a>,
    /// closure's run with these arguments.
    ours: ClosureWith<'a>,
    /// Writes the root's `ld.so.cache` with its own `ldconfig`, if it has one.
    ldconfig: Option<Box<dyn Fn() + 'a>>,
    /// i386: an `x86-64-vN` name is the CPU's ISA level, and no warning's.
    x86_levels_name_the_cpu: bool,
}

/// A copy of `file` goes into `dir/glibc-hwcaps/N/` for each name N the
/// loader's `--help` lists and each of [`OTHER_HWCAPS`] it does not. Then
/// closure with `--hwcaps N` must take that copy exactly when the loader
/// lists N (those are the names it searches on a CPU that has them; it
/// never searches another), and warn of the others; with the names this
/// CPU has, in reverse order, and all the others, take what the loader
/// takes; and under the baseline record exactly the listed copies as
/// variants. The same again with the root's own `ld.so.cache`, which
/// indexes every `glibc-hwcaps` subdirectory `ldconfig` finds. Returns
/// the listed names.
fn hwcaps_names_match(c: &HwcapsCase<'_>) -> Vec<String> {
    let lines = hwcaps_help_lines(&c.help);
    let listed: Vec<&str> = lines.iter().map(|(n, _)| n.as_str()).collect();
    let has: Vec<&str> = lines
        .iter()
        .filter(|(_, searched)| *searched)
        .map(|(n, _)| n.as_str())
        .collect();
    let others: Vec<&str> = OTHER_HWCAPS
        .into_iter()
        .filter(|o| !listed.contains(o))
        .collect();
    let base = format!("{}/{}", c.dir, c.file);
    let copy = |n: &str| format!("{}/glibc-hwcaps/{n}/{}", c.dir, c.file);
    let at = |p: &str| c.root.join(p.trim_start_matches('/'));
    for n in listed.iter().chain(&others) {
        let to = at(&copy(n));
        fs::create_dir_all(to.parent().expect("a parent")).expect("mkdir");
        fs::copy(at(&base), &to).expect("copy the library");
    }
    let pick = |run: &ClosureRun| {
        assert!(run.missing.is_empty(), "{}", run.dump());
        run.loaded()
            .into_iter()
            .find(|p| p.ends_with(&format!("/{}", c.file)))
            .unwrap_or_else(|| panic!("closure loads no {}:\n{}", c.file, run.dump()))
    };
    let warned = |run: &ClosureRun, n: &str| {
        run.json.as_ref().expect("JSON")["warnings"]
            .as_array()
            .expect("warnings")
            .iter()
            .any(|w| {
                w.as_str()
                    .is_some_and(|w| w.starts_with(&format!("--hwcaps {n}:")))
            })
    };
    let what = &c.what;
    for cached in [false, true] {
        if cached {
            let Some(ldconfig) = &c.ldconfig else {
                break;
            };
            ldconfig();
        }
        for n in listed.iter().chain(&others) {
            let run = (c.ours)(&["--hwcaps", n]);
            let names_cpu = c.x86_levels_name_the_cpu && n.starts_with("x86-64-v");
            let known = listed.contains(n);
            let want = if known { copy(n) } else { base.clone() };
            assert_eq!(
                pick(&run),
                want,
                "{what}, cache {cached}: --hwcaps {n} (the loader lists {listed:?})"
            );
            assert_eq!(
                warned(&run, n),
                !known && !names_cpu,
                "{what}: --hwcaps {n}:\n{}",
                run.stderr
            );
        }
        let mut named: Vec<&str> = has.iter().rev().copied().collect();
        named.extend(&others);
        let named = named.join(",");
        let real = (c.real)();
        let ours = pick(&(c.ours)(&["--hwcaps", &named]));
        assert_eq!(
            ours, real,
            "{what}, cache {cached}: closure --hwcaps {named} picks {ours}, the loader {real}"
        );
        let run = (c.ours)(&[]);
        let json = run.json.as_ref().expect("JSON");
        let object = json["objects"]
            .as_array()
            .expect("objects")
            .iter()
            .find(|o| o["path"] == base.as_str())
            .unwrap_or_else(|| panic!("{what}: no {base} under the baseline:\n{}", run.dump()));
        let variants: BTreeSet<String> = object["hwcaps_variants"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|v| v.as_str().map(str::to_string))
            .collect();
        let want: BTreeSet<String> = listed.iter().map(|n| copy(n)).collect();
        assert_eq!(
            variants, want,
            "{what}, cache {cached}: the baseline's variants"
        );
        println!("{what}, cache {cached}: the loader lists {listed:?}, takes {real} with {has:?}");
    }
    listed.into_iter().map(str::to_string).collect()
}

/// [`hwcaps_names_match`] for `libz.so.1` of curl in a Debian root of
/// `f`, the loader run on qemu's `cpu`, and the root's own `ldconfig`.
fn debian_hwcaps_names(name: &str, f: &Foreign, cpu: &str) -> Option<Vec<String>> {
    let dir = prepared_root(name, f)?;
    let root = dir.path();
    let (help, _) = qemu(f, root, &["-cpu", cpu, f.interp, "--help"], &[]);
    let listed = hwcaps_names_match(&HwcapsCase {
        what: format!("{name}: {}", f.arch),
        root,
        help,
        dir: format!("/lib/{}", f.triplet),
        file: "libz.so.1",
        real: Box::new(|| loader_pick(f, root, cpu, "libz.so.1")),
        ours: Box::new(|args| run_closure(root, &[CURL], args)),
        ldconfig: Some(Box::new(|| {
            let _ = fs::remove_file(root.join("etc/ld.so.cache"));
            qemu(f, root, &["/sbin/ldconfig", "-X"], &[]);
            let (listed, _) = qemu(f, root, &["/sbin/ldconfig", "-p"], &[]);
            assert!(
                listed.contains("/glibc-hwcaps/z17/libz.so.1"),
                "{name}: ldconfig indexed no glibc-hwcaps copy:\n{listed}"
            );
        })),
        x86_levels_name_the_cpu: f.arch == "i386",
    });
    Some(listed)
}

#[test]
fn glibc_hwcaps_names_are_each_debian_loaders_own() {
    let name = "glibc_hwcaps_names_are_each_debian_loaders_own";
    // A loader searches only the glibc-hwcaps names compiled into it, and
    // in its own order. closure searched every name `--hwcaps` gave, in
    // the order given, and recorded every subdirectory as a variant; now
    // it reads the loader's names from its bytes. s390x's glibc 2.36 knows
    // `z16` but not `z17` (2.42); POWER's knows `power10` first; the
    // others know none.
    let cases = [
        (&S390X, "max"),
        (&PPC64EL, "power10"),
        (&ARM64, "max"),
        (&ARMHF, "max"),
        (&I386, "max"),
        (&MIPS64EL, "MIPS64R2-generic"),
        (&MIPSEL, "74Kf"),
    ];
    for (f, cpu) in cases {
        let Some(listed) = debian_hwcaps_names(name, f, cpu) else {
            return;
        };
        match f.arch {
            "s390x" => assert!(
                listed.iter().any(|n| n == "z16") && !listed.iter().any(|n| n == "z17"),
                "{name}: the premise: {listed:?}"
            ),
            "ppc64el" => assert_eq!(listed, ["power10", "power9"], "{name}: the premise"),
            _ => assert!(listed.is_empty(), "{name}: {}: {listed:?}", f.arch),
        }
    }
}

#[test]
fn glibc_hwcaps_names_are_each_cross_loaders_own() {
    let name = "glibc_hwcaps_names_are_each_cross_loaders_own";
    // The ports' glibc 2.36 (Debian's cross packages): no names at all,
    // so no `--hwcaps` name is searched and no subdirectory is a variant.
    for c in CROSS_PORTS {
        let Some(dir) = cross_root(name, c) else {
            return;
        };
        let root = dir.path();
        let q = format!("/{}", c.qemu);
        let (status, help, err) = run_in_root(root, &[q.as_str(), c.interp, "--help"], &[]);
        assert!(status.success(), "{name}: {}: --help: {err}", c.pkg);
        let libm = format!("/lib/{}/libm.so.6", c.triplet);
        let listed = hwcaps_names_match(&HwcapsCase {
            what: format!("{name}: {}", c.pkg),
            root,
            help,
            dir: format!("/lib/{}", c.triplet),
            file: "libc.so.6",
            real: Box::new(|| cross_loader_pick(c, root, "")),
            ours: Box::new(|args| run_closure(root, &[libm.as_str()], args)),
            ldconfig: None,
            x86_levels_name_the_cpu: false,
        });
        assert!(listed.is_empty(), "{name}: {}: {listed:?}", c.pkg);
    }
}

// ---------------------------------------------------------------------------------------------
// x86 ISA levels on i386
// ---------------------------------------------------------------------------------------------

/// An i386 `libisa.so.1` marked as needing `level` (`ld -m elf_i386 -z LEVEL`), built from a
/// C file with no headers (`gcc -m32 -c` needs no 32-bit libraries). Err: why it cannot be.
fn i386_marked_library(dir: &Path, level: &str) -> Result<PathBuf, String> {
    let src = dir.join("isa.c");
    fs::write(&src, "int closure_isa(void) { return 1; }\n").map_err(|e| e.to_string())?;
    let obj = dir.join("isa.o");
    let out = dir.join(format!("libisa-{level}.so"));
    let steps: [(&str, Vec<&str>); 2] = [
        (
            "gcc",
            vec![
                "-m32",
                "-fPIC",
                "-c",
                "-o",
                obj.to_str().expect("UTF-8"),
                src.to_str().expect("UTF-8"),
            ],
        ),
        (
            "ld",
            vec![
                "-m",
                "elf_i386",
                "-shared",
                "-z",
                level,
                "-soname",
                "libisa.so.1",
                "-o",
                out.to_str().expect("UTF-8"),
                obj.to_str().expect("UTF-8"),
            ],
        ),
    ];
    for (program, args) in steps {
        let o = tool(program, &args, None).map_err(|e| format!("cannot run {program}: {e}"))?;
        if !o.status.success() {
            return Err(format!("{program} {args:?} failed: {}", text(&o)));
        }
    }
    Ok(out)
}

#[test]
fn i386_isa_levels_match_qemu_loader() {
    let name = "i386_isa_levels_match_qemu_loader";
    // glibc 2.36's i386 loader checks each object's GNU_PROPERTY_X86_ISA_1_NEEDED against
    // the CPU as x86-64's does; the x86-64 baseline includes SSE2, which Debian's i386
    // baseline, an i686, may lack. curl is given a `DT_NEEDED` on a library marked with one
    // level at a time and run under qemu's `pentium3` (no SSE2), `coreduo` (SSE2, no
    // SSE4.2: no x86-64-v2) and `max`: the loader runs curl or stops it naming the library,
    // and closure, told the CPU (nothing, `sse2`, `sse2,x86-64-v3`), must refuse the same.
    let f = &I386;
    let Some(dir) = prepared_root(name, f) else {
        return;
    };
    let root = dir.path();
    let work = tempfile::tempdir().expect("tempdir");
    let lib = root.join(format!("lib/{}/libisa.so.1", f.triplet));
    let curl = root.join(CURL.trim_start_matches('/'));
    let o = tool(
        "patchelf",
        &["--add-needed", "libisa.so.1", curl.to_str().expect("UTF-8")],
        None,
    )
    .expect("run patchelf");
    assert!(o.status.success(), "patchelf: {}", text(&o));
    let cpus: [(&str, &[&str]); 3] = [
        ("pentium3", &[]),
        ("coreduo", &["--hwcaps", "sse2"]),
        ("max", &["--hwcaps", "sse2,x86-64-v3"]),
    ];
    let mut stops = 0;
    for level in ["x86-64-baseline", "x86-64-v2", "x86-64-v3"] {
        let built = match i386_marked_library(work.path(), level) {
            Ok(p) => p,
            Err(why) => {
                println!("skipping {name}: cannot build an i386 library: {why}");
                return;
            }
        };
        fs::copy(&built, &lib).expect("install libisa");
        for (cpu, args) in cpus {
            let q = format!("/{}", f.qemu);
            let (_, _, err) = run_in_root(root, &[q.as_str(), "-cpu", cpu, CURL, "--version"], &[]);
            let stopped = isa_stops(&err);
            let run = run_closure(root, &[CURL], args);
            let refused = run.refused_objects();
            assert_eq!(
                refused,
                stopped,
                "{name}: {level} on {cpu} (closure {args:?}):\n{err}\n{}",
                run.dump()
            );
            println!("{name}: {level} on {cpu}: stopped at {stopped:?}");
            stops += stopped.len();
        }
    }
    // pentium3 for every level, coreduo for two, max for none.
    assert_eq!(stops, 5, "{name}: the premise");
}

/// The `n`-byte unsigned integer at `o` of `b`, in the byte order `big` says.
fn read_uint(b: &[u8], o: usize, n: usize, big: bool) -> u64 {
    (0..n).fold(0u64, |v, i| {
        (v << 8) | u64::from(b[o + if big { i } else { n - 1 - i }])
    })
}

/// An ELF object's class (64-bit?), byte order (big?) and the file offset of each of its
/// program headers.
fn program_headers(bytes: &[u8]) -> (bool, bool, Vec<usize>) {
    let is_64 = bytes[4] == 2;
    let big = bytes[5] == 2;
    let read = |o: usize, n: usize| read_uint(bytes, o, n, big);
    let (phoff, entsize, count) = if is_64 {
        (read(0x20, 8), read(0x36, 2), read(0x38, 2))
    } else {
        (read(0x1c, 4), read(0x2a, 2), read(0x2c, 2))
    };
    let headers = (0..count as usize)
        .map(|i| phoff as usize + i * entsize as usize)
        .collect();
    (is_64, big, headers)
}

/// What [`with_stack`] does to a `PT_GNU_STACK` header.
#[derive(Clone, Copy)]
enum Stack {
    /// Made `PT_NULL`, which the loader skips.
    Drop,
    /// Given `PF_X`.
    Exec,
    /// `PF_X` taken away.
    NoExec,
}

/// `bytes` (an ELF object) with its `PT_GNU_STACK` header changed.
fn with_stack(mut bytes: Vec<u8>, change: Stack) -> Vec<u8> {
    let (is_64, big, headers) = program_headers(&bytes);
    let read = |b: &[u8], o: usize, n: usize| read_uint(b, o, n, big);
    let headers = headers.into_iter();
    let found = headers.clone().find(|&o| read(&bytes, o, 4) == 0x6474_e551);
    let write = |b: &mut [u8], o: usize, v: u32| {
        let v = if big {
            v.to_be_bytes()
        } else {
            v.to_le_bytes()
        };
        b[o..o + 4].copy_from_slice(&v);
    };
    // p_flags: right after p_type in ELF64, the seventh word in ELF32.
    let flags_at = |header: usize| header + if is_64 { 4 } else { 24 };
    let Some(header) = found else {
        // Debian's ppc64 (ELFv1) libraries have none: `Drop` and `NoExec` leave them so,
        // `Exec` makes their `PT_NOTE` header one (the loader reads only its flags).
        if let Stack::Exec = change {
            let note = headers
                .clone()
                .find(|&o| read(&bytes, o, 4) == 4)
                .expect("a PT_NOTE to turn into a PT_GNU_STACK");
            write(&mut bytes, note, 0x6474_e551);
            write(&mut bytes, flags_at(note), 7);
        }
        return bytes;
    };
    let at = flags_at(header);
    let flags = read(&bytes, at, 4) as u32;
    match change {
        Stack::Drop => write(&mut bytes, header, 0),
        Stack::Exec => write(&mut bytes, at, flags | 1),
        Stack::NoExec => write(&mut bytes, at, flags & !1),
    }
    bytes
}

/// Whether glibc 2.41 and later take an object without `PT_GNU_STACK` to
/// need an executable stack depends on the architecture (its
/// `DEFAULT_STACK_PERMS`): each Debian loader of those releases that the
/// mirror has and qemu runs loads three copies of a small library of its own
/// package — as built, without `PT_GNU_STACK`, with `PF_X` added — through
/// `LD_AUDIT`, which loads the way a `dlopen` does (the same refusal:
/// "cannot enable executable stack as shared object requires"). A program
/// (synthetic, for that architecture, with a non-executable stack) names
/// the three in its `.note.dlopen`: closure must warn of exactly the copies
/// the loader refuses. The built copy loads everywhere and the `PF_X` one
/// nowhere from 2.41 on, so each such loader is shown to check at all; the
/// 2.40 one (MIPS) refuses none, as 2.36 does.
#[test]
fn exec_stack_defaults_are_each_loaders_own() {
    use crate::support::elfgen::{self, Arch, ElfSpec, Kind};
    let name = "exec_stack_defaults_are_each_loaders_own";
    let arches = [
        ("amd64", Arch::X86_64, "qemu-x86_64-static"),
        ("i386", Arch::I386, "qemu-i386-static"),
        ("arm64", Arch::Aarch64, "qemu-aarch64-static"),
        ("armhf", Arch::Armhf, "qemu-arm-static"),
        ("riscv64", Arch::Riscv64, "qemu-riscv64-static"),
        ("ppc64el", Arch::Ppc64le, "qemu-ppc64le-static"),
        ("s390x", Arch::S390x, "qemu-s390x-static"),
    ];
    if !is_root() {
        println!("skipping {name}: needs root (chroot)");
        return;
    }
    // Debian builds MIPS glibc only as cross packages since Debian 13 (`libc6-ARCH-cross`,
    // files below `/usr/TRIPLET`): 2.40 in Debian 13, 2.42 in unstable.
    // So do the ports Debian does not release (2.41 in Debian 13, 2.43 in unstable).
    let ports = [
        ("mips64el", Arch::Mips64el, "qemu-mips64el-static"),
        ("powerpc", Arch::Ppc, "qemu-ppc-static"),
        ("ppc64", Arch::Ppc64, "qemu-ppc64-static"),
        ("sparc64", Arch::Sparc64, "qemu-sparc64-static"),
        ("hppa", Arch::Hppa, "qemu-hppa-static"),
        ("m68k", Arch::M68k, "qemu-m68k-static"),
    ];
    let mut checked = Vec::new();
    let libc6 = ["trixie", "forky"]
        .into_iter()
        .flat_map(|release| arches.map(|(d, a, q)| (release, d, a, q)));
    let cross = ["trixie", "sid"]
        .into_iter()
        .flat_map(|release| ports.map(|(d, a, q)| (release, d, a, q)));
    for (release, debian, arch, qemu) in libc6.chain(cross) {
        if !Path::new("/usr/bin").join(qemu).is_file() {
            println!("skipping {name} on {debian}: /usr/bin/{qemu} is not installed");
            continue;
        }
        let cross = ports.iter().any(|p| p.1 == arch);
        let found = if cross {
            let package = format!("libc6-{debian}-cross");
            crate::support::glibc::debian_package(release, "amd64", &package)
        } else {
            crate::support::glibc::foreign_libc6(release, debian)
        };
        let (unpacked, version) = match found {
            Ok(found) => found,
            Err(why) => {
                println!("skipping {name} on {release} {debian}: {why}");
                continue;
            }
        };
        {
            let what = format!("{name}: {release} {debian} ({version})");
            let dir = tempfile::tempdir().expect("tempdir");
            let root = dir.path();
            if cross {
                // The port's layout: libraries in /usr/lib/TRIPLET, the loader linked at
                // `PT_INTERP`.
                let lib = root.join("usr/lib").join(arch.triplet());
                fs::create_dir_all(&lib).expect("mkdir lib");
                for sub in ["lib", "lib64"] {
                    let from = unpacked.join("usr").join(arch.triplet()).join(sub);
                    for e in fs::read_dir(&from).into_iter().flatten().flatten() {
                        if e.path().is_file() {
                            fs::copy(e.path(), lib.join(e.file_name())).expect("copy a library");
                        }
                    }
                }
                std::os::unix::fs::symlink("usr/lib", root.join("lib")).expect("symlink");
                let interp = root.join(arch.interp().trim_start_matches('/'));
                fs::create_dir_all(interp.parent().expect("a parent")).expect("mkdir");
                let loader = Path::new(arch.interp()).file_name().expect("a name");
                std::os::unix::fs::symlink(
                    Path::new("/usr/lib").join(arch.triplet()).join(loader),
                    &interp,
                )
                .expect("link the loader");
            } else {
                let copied = Command::new("cp")
                    .arg("-a")
                    .arg(unpacked.join("."))
                    .arg(root)
                    .status()
                    .expect("cp");
                assert!(copied.success(), "{what}: cp -a");
            }
            for (link, to) in [("lib", "usr/lib"), ("lib64", "usr/lib64")] {
                if !root.join(link).exists() && root.join(to).is_dir() {
                    std::os::unix::fs::symlink(to, root.join(link)).expect("symlink");
                }
            }
            let to = root.join(qemu);
            fs::copy(Path::new("/usr/bin").join(qemu), &to).expect("copy qemu");
            fs::set_permissions(&to, fs::Permissions::from_mode(0o755)).expect("chmod qemu");
            let libdir = format!("/usr/lib/{}", arch.triplet());
            // Debian's MIPS glibc is built with an executable stack (every library of the
            // package says RWE), which leaves a dlopen nothing to refuse: its `libc.so.6`, the
            // program here, and the small library get `PF_X` taken away, so the stack starts
            // non-executable as on the other ports (a no-op there).
            let libc = root.join(&libdir[1..]).join("libc.so.6");
            let bytes = fs::read(&libc).unwrap_or_else(|e| panic!("{what}: libc.so.6: {e}"));
            fs::write(&libc, with_stack(bytes, Stack::NoExec)).expect("write libc.so.6");
            let small = fs::read(root.join(&libdir[1..]).join("libBrokenLocale.so.1"))
                .unwrap_or_else(|e| panic!("{what}: libBrokenLocale.so.1: {e}"));
            let small = with_stack(small, Stack::NoExec);
            let copies = [
                ("libbuilt.so", small.clone()),
                ("libnostack.so", with_stack(small.clone(), Stack::Drop)),
                ("libexecstack.so", with_stack(small, Stack::Exec)),
            ];
            for (file, bytes) in &copies {
                fs::write(root.join(&libdir[1..]).join(file), bytes).expect("write copy");
            }
            let mut refused = BTreeSet::new();
            for (file, _) in &copies {
                let audit = format!("{libdir}/{file}");
                let argv = [
                    &format!("/{qemu}")[..],
                    arch.interp(),
                    &format!("{libdir}/libc.so.6")[..],
                ];
                let (_, out, err) = run_in_root(root, &argv, &[("LD_AUDIT", &audit)]);
                assert!(
                    err.contains(&format!("object '{audit}' cannot be loaded as audit")),
                    "{what}: {file}: the loader did not try the audit object:\n{out}\n{err}"
                );
                if err.contains("cannot enable executable stack") {
                    refused.insert(file.to_string());
                }
            }
            // glibc 2.40 and earlier make the stack executable for such a dlopen.
            let minor: u32 = version
                .strip_prefix("2.")
                .and_then(|v| v.split(|c: char| !c.is_ascii_digit()).next())
                .and_then(|m| m.parse().ok())
                .unwrap_or(0);
            assert!(
                !refused.contains("libbuilt.so")
                    && refused.contains("libexecstack.so") == (minor >= 41),
                "{what}: the loader refused {refused:?}"
            );
            let note = copies
                .iter()
                .map(|(file, _)| format!(r#"{{"soname":["{file}"],"priority":"required"}}"#))
                .collect::<Vec<_>>()
                .join(",");
            let prog = elfgen::build(&ElfSpec {
                arch: Some(arch),
                kind: Kind::Exec,
                interp: Some(arch.interp().into()),
                needed: vec!["libc.so.6".into()],
                note_dlopen: Some(format!("[{note}]")),
                ..Default::default()
            });
            fs::create_dir_all(root.join("app")).expect("mkdir app");
            fs::write(root.join("app/prog"), prog).expect("write prog");
            let ours = run_closure_with_run_time(root, "/app/prog", &[]);
            let warned = ours.run_time_warned("cannot enable executable stack");
            assert_eq!(warned, refused, "{what}:\n{}", ours.dump());
            println!("{what}: the loader refuses {refused:?}");
            checked.push(format!("{release} {debian}"));
        }
    }
    println!("{name}: checked {checked:?}");
}

// ---------------------------------------------------------------------------------------------
// EI_ABIVERSION: each port's bound, and newer glibc in the same roots
// ---------------------------------------------------------------------------------------------

/// The `EI_ABIVERSION` values 0 to 7 that the loader and that closure accept, with `EI_OSABI`
/// `osabi`, for the file `lib` of `root`, which the loader's `--list` of `program` loads (run
/// through `qemu`). Accepted: the loader prints `NAME => lib`; closure loads `lib` for
/// `--root program`. The file is restored afterwards.
fn abi_versions_accepted(
    root: &Path,
    qemu: &str,
    interp: &str,
    program: &str,
    lib: &str,
    osabi: u8,
) -> (Vec<u8>, Vec<u8>) {
    let host = root.join(lib.trim_start_matches('/'));
    let original = fs::read(&host).unwrap_or_else(|e| panic!("{}: {e}", host.display()));
    let name = lib.rsplit('/').next().unwrap_or(lib);
    let line = format!("{name} => {lib} ");
    let q = format!("/{qemu}");
    let (mut loader, mut ours) = (Vec::new(), Vec::new());
    for version in 0..8u8 {
        let mut patched = original.clone();
        patched[7] = osabi;
        patched[8] = version;
        fs::write(&host, &patched).expect("patch EI_OSABI and EI_ABIVERSION");
        let (status, out, _) = run_in_root(root, &[q.as_str(), interp, "--list", program], &[]);
        if status.success() && out.contains(&line) {
            loader.push(version);
        }
        let run = run_closure(root, &[program], &[]);
        if run.loaded().contains(lib) {
            ours.push(version);
        }
    }
    fs::write(&host, &original).expect("restore the file");
    (loader, ours)
}

/// Asserts closure accepts the `EI_ABIVERSION` values the root's loader accepts, under
/// `ELFOSABI_SYSV` and `ELFOSABI_GNU`, for `libc.so.6` as `libm.so.6` needs it; returns the
/// loader's bound under `ELFOSABI_GNU` (one past the highest value it takes).
fn assert_abi_versions(what: &str, root: &Path, qemu: &str, interp: &str, triplet: &str) -> u8 {
    let libm = format!("/lib/{triplet}/libm.so.6");
    let libc = format!("/lib/{triplet}/libc.so.6");
    let mut bound = 0;
    for osabi in [0u8, 3] {
        let (loader, ours) = abi_versions_accepted(root, qemu, interp, &libm, &libc, osabi);
        assert!(
            loader.first() == Some(&0),
            "{what}: the premise: the loader takes libc.so.6 as built ({loader:?})"
        );
        assert_eq!(
            ours, loader,
            "{what}: EI_OSABI {osabi}: closure takes EI_ABIVERSION {ours:?}, the loader {loader:?}"
        );
        if osabi == 3 {
            bound = loader.last().map_or(0, |v| v + 1);
        }
        println!("{what}: EI_OSABI {osabi}: EI_ABIVERSION {loader:?} taken by both");
    }
    bound
}

#[test]
fn abi_versions_each_port_accepts_match_qemu_loaders() {
    let name = "abi_versions_each_port_accepts_match_qemu_loaders";
    // Each port numbers its own ABI tags (glibc's `libc-abis`), so the `EI_ABIVERSION` its
    // loader takes under `ELFOSABI_GNU` has its own bound: 3 on AArch64, Arm and s390x, 4 on
    // x86 and POWER, 6 on MIPS, where `ELFOSABI_SYSV` takes the same values. closure took 4
    // everywhere and at most 3 with SYSV on MIPS until the forty-first stop, and so called
    // every library of Debian's MIPS glibc 2.40 and 2.42, marked 5, a fatal error.
    let mut bounds = Vec::new();
    for f in [
        &ARM64, &S390X, &ARMHF, &ARMEL, &PPC64EL, &MIPS64EL, &I386, &MIPSEL,
    ] {
        let Some(dir) = prepared_root(name, f) else {
            return;
        };
        let what = format!("{name}: {}", f.arch);
        bounds.push((
            f.arch,
            assert_abi_versions(&what, dir.path(), f.qemu, f.interp, f.triplet),
        ));
    }
    println!("{name}: ELFOSABI_GNU bounds {bounds:?}");
    let distinct: BTreeSet<u8> = bounds.iter().map(|&(_, b)| b).collect();
    assert!(
        distinct.len() > 1,
        "{name}: the premise: the ports' bounds differ ({bounds:?})"
    );
}

#[test]
fn abi_versions_of_ports_debian_12_does_not_ship_match_qemu_loaders() {
    let name = "abi_versions_of_ports_debian_12_does_not_ship_match_qemu_loaders";
    // The same for the glibc 2.36 of the `libc6-ARCH-cross` packages.
    for c in CROSS_PORTS {
        let Some(dir) = cross_root(name, c) else {
            return;
        };
        let what = format!("{name}: {}", c.pkg);
        assert_abi_versions(&what, dir.path(), c.qemu, c.interp, c.triplet);
    }
}

#[test]
fn ports_with_glibc_of_debian_13_and_unstable_match_qemu_loaders() {
    let name = "ports_with_glibc_of_debian_13_and_unstable_match_qemu_loaders";
    // The cross packages of Debian 13 (2.41) and unstable (2.43) for the ports Debian does
    // not release: the loader's lines for `libm.so.6` and the `EI_ABIVERSION` bound.
    for release in ["trixie", "sid"] {
        // MIPS: `mips64el_roots_with_glibc_2_40_and_2_42_match_qemu_loader`.
        for c in CROSS_PORTS.into_iter().filter(|c| c.pkg != "mips") {
            if !is_root() {
                println!("skipping {name}: needs root (chroot)");
                return;
            }
            let package = format!("libc6-{}-cross", c.pkg);
            let (unpacked, version) =
                match crate::support::glibc::debian_package(release, "amd64", &package) {
                    Ok(found) => found,
                    Err(why) => {
                        println!("skipping {name} on {release} {package}: {why}");
                        continue;
                    }
                };
            let dir = cross_root_from(name, c, &unpacked);
            let root = dir.path();
            let what = format!("{name}: {release} {package} {version}");
            let listed = cross_loader_list(c, root, "");
            let libm = format!("/lib/{}/libm.so.6", c.triplet);
            let ours = closure_ldd_lines(root, &[libm.as_str()], &[])
                .remove(&libm)
                .unwrap_or_default();
            assert_eq!(
                ours,
                ldd_lines(&listed),
                "{what}: the loader printed:\n{listed}"
            );
            assert_abi_versions(&what, root, c.qemu, c.interp, c.triplet);
        }
    }
}

/// Puts the glibc of `unpacked` (a `libc6` or `libc6-ARCH-cross` package's files) into the
/// Debian 12 root of `f` in place of its own: every library of its multiarch directories,
/// and its loader at `PT_INTERP`. The loader's release version, from `--version`.
fn swap_glibc(what: &str, f: &Foreign, root: &Path, unpacked: &Path) -> String {
    let lib = root.join("lib").join(f.triplet);
    let loader = Path::new(f.interp)
        .file_name()
        .expect("a loader name")
        .to_os_string();
    let mut copied = 0;
    for dir in [
        format!("lib/{}", f.triplet),
        format!("usr/lib/{}", f.triplet),
        format!("usr/{}/lib", f.triplet),
        format!("usr/{}/lib64", f.triplet),
    ] {
        for e in fs::read_dir(unpacked.join(dir))
            .into_iter()
            .flatten()
            .flatten()
        {
            let file = e.file_name();
            let is_lib = file.to_string_lossy().contains(".so");
            // Links followed: the files they name, under their names.
            if !is_lib || !e.path().is_file() {
                continue;
            }
            let to = lib.join(&file);
            let _ = fs::remove_file(&to);
            fs::copy(e.path(), &to).unwrap_or_else(|err| panic!("{what}: copy {file:?}: {err}"));
            copied += 1;
        }
    }
    assert!(
        lib.join(&loader).is_file() && copied > 5,
        "{what}: the package gave {copied} libraries and no {loader:?}"
    );
    let interp = root.join(f.interp.trim_start_matches('/'));
    if interp != lib.join(&loader) {
        let _ = fs::remove_file(&interp);
        std::os::unix::fs::symlink(Path::new("/lib").join(f.triplet).join(&loader), &interp)
            .expect("link the loader");
    }
    let (out, _) = qemu(f, root, &[f.interp, "--version"], &[]);
    out.lines()
        .next()
        .and_then(|l| l.split("release version ").nth(1))
        .map(|v| v.trim_end_matches('.').to_string())
        .unwrap_or_else(|| panic!("{what}: the loader's --version:\n{out}"))
}

/// `bytes` (an ELF object of either class and byte order) with every `_DYNAMIC` entry tagged
/// `from` tagged `to`.
fn retag_dynamic(mut bytes: Vec<u8>, from: u64, to: u64) -> Vec<u8> {
    let (is_64, big, headers) = program_headers(&bytes);
    let read = |b: &[u8], o: usize, n: usize| read_uint(b, o, n, big);
    let word = if is_64 { 8 } else { 4 };
    let header = headers
        .into_iter()
        .find(|&o| read(&bytes, o, 4) == 2)
        .expect("a PT_DYNAMIC");
    let (offset, size) = if is_64 {
        (read(&bytes, header + 8, 8), read(&bytes, header + 32, 8))
    } else {
        (read(&bytes, header + 4, 4), read(&bytes, header + 16, 4))
    };
    for at in (offset as usize..(offset + size) as usize).step_by(2 * word) {
        if read(&bytes, at, word) == from {
            for i in 0..word {
                let shift = 8 * if big { word - 1 - i } else { i };
                bytes[at + i] = (to >> shift) as u8;
            }
        }
    }
    bytes
}

/// Two rules whose answer changed between glibc releases, asked of the loader of `f` in
/// `root` (traced through the program's own `PT_INTERP` with `LD_TRACE_LOADED_OBJECTS`, as
/// `ldd` does: glibc 2.36's `ld.so --list` stops with an error where that trace goes on) and
/// of closure:
/// - a file where a relative `DT_RUNPATH` directory should be (`lib/TRIPLET/libc.so.6`,
///   from `/`): up to glibc 2.38 the ENOTDIR ends the list and `libq.so.1`, in the
///   directory after it, is not found; from 2.39 the search goes on;
/// - a program none of whose `DT_NEEDED` names its loader (one library that exists
///   nowhere): glibc 2.41 and later list the loader first, earlier ones do not; and one
///   with no `DT_NEEDED` at all, "statically linked" in every release.
///
/// Returns whether libq was found and the loader's lines for the two programs.
fn assert_version_rules(what: &str, f: &Foreign, root: &Path) -> (bool, Vec<Vec<String>>) {
    let patchelf = |args: &[&str], file: &str| {
        let mut all: Vec<&str> = args.to_vec();
        let host = root.join(file.trim_start_matches('/'));
        let host = host.to_str().expect("UTF-8 path");
        all.push(host);
        let out = tool("patchelf", &all, None).expect("run patchelf");
        assert!(
            out.status.success(),
            "{what}: patchelf {all:?}: {}",
            text(&out)
        );
    };
    fs::create_dir_all(root.join("app/bin")).expect("mkdir");
    fs::create_dir_all(root.join("opt/x")).expect("mkdir");
    let lib = format!("lib/{}", f.triplet);
    fs::copy(
        root.join(&lib).join("libz.so.1"),
        root.join("opt/x/libq.so.1"),
    )
    .expect("copy libz");
    patchelf(&["--set-soname", "libq.so.1"], "/opt/x/libq.so.1");
    let curl = fs::read(root.join(CURL.trim_start_matches('/'))).expect("read curl");
    fs::write(root.join("app/bin/curlx"), &curl).expect("write");
    fs::set_permissions(
        root.join("app/bin/curlx"),
        fs::Permissions::from_mode(0o755),
    )
    .expect("chmod");
    patchelf(&["--add-needed", "libq.so.1"], "/app/bin/curlx");
    patchelf(
        &["--set-rpath", &format!("{lib}/libc.so.6:/opt/x")],
        "/app/bin/curlx",
    );
    let (out, _) = qemu(
        f,
        root,
        &["/app/bin/curlx"],
        &[("LD_TRACE_LOADED_OBJECTS", "1")],
    );
    let trace = parse_trace(&out);
    let found = trace.loaded.contains("/opt/x/libq.so.1");
    assert!(
        found || trace.not_found.contains("libq.so.1"),
        "{what}: the premise: libq found or not:
{out}"
    );
    let run = run_closure(root, &["/app/bin/curlx"], &["--cwd", "/"]);
    assert_eq!(
        (
            run.loaded().contains("/opt/x/libq.so.1"),
            run.missing_names()
        ),
        (found, trace.not_found.clone()),
        "{what}: closure on a file in a relative RUNPATH directory:
{out}
{}",
        run.dump()
    );
    // Programs without needs: curl with its `DT_NEEDED` entries removed and its version
    // needs and version indexes retagged `DT_CHECKSUM`, which the loader does not read —
    // `bare` then names nothing, `alone` only a library that exists nowhere.
    let needed = tool(
        "readelf",
        &["-dW", root.join("app/bin/curlx").to_str().expect("UTF-8")],
        None,
    )
    .map(|o| text(&o))
    .unwrap_or_default();
    let mut stripped = curl;
    for tag in [0x6fff_fffe, 0x6fff_ffff, 0x6fff_fff0] {
        stripped = retag_dynamic(stripped, tag, 0x6fff_fdf8);
    }
    let mut lines = Vec::new();
    for program in ["/app/bin/bare", "/app/bin/alone"] {
        let host = root.join(program.trim_start_matches('/'));
        fs::write(&host, &stripped).expect("write");
        fs::set_permissions(&host, fs::Permissions::from_mode(0o755)).expect("chmod");
        for line in needed.lines().filter(|l| l.contains("(NEEDED)")) {
            let name = line
                .split('[')
                .nth(1)
                .and_then(|r| r.strip_suffix(']'))
                .expect("a NEEDED name");
            if name != "libq.so.1" {
                patchelf(&["--remove-needed", name], program);
            }
        }
        if program.ends_with("alone") {
            patchelf(&["--add-needed", "libnowhere.so.1"], program);
        }
        let (out, _) = qemu(f, root, &[program], &[("LD_TRACE_LOADED_OBJECTS", "1")]);
        let theirs = ldd_lines(&out);
        let ours = closure_ldd_lines(root, &[program], &[])
            .remove(program)
            .unwrap_or_default();
        assert_eq!(
            ours, theirs,
            "{what}: `closure --format ldd` of {program} (left), the loader's (right)"
        );
        lines.push(theirs);
    }
    println!("{what}: libq found past ENOTDIR: {found}; without needs: {lines:?}");
    (found, lines)
}

/// curl's root of `f` with the glibc of Debian `release`'s `package` (of Debian architecture
/// `debian`): closure must agree with that loader on everything [`compare`] asks, and on the
/// `EI_ABIVERSION` values it takes. The glibc version it ran.
fn newer_glibc_root(
    name: &str,
    f: &Foreign,
    release: &str,
    debian: &str,
    package: &str,
) -> Option<String> {
    let (unpacked, version) = match crate::support::glibc::debian_package(release, debian, package)
    {
        Ok(found) => found,
        Err(why) => {
            println!("skipping {name} on {release} {package}: {why}");
            return None;
        }
    };
    let dir = prepared_root(name, f)?;
    let root = dir.path();
    let what = format!("{name}: {} {release} {package} {version}", f.arch);
    let release_version = swap_glibc(&what, f, root, &unpacked);
    let what = format!("{what} (glibc {release_version})");
    compare(f, root, &what);
    assert_abi_versions(&what, root, f.qemu, f.interp, f.triplet);
    assert_version_rules(&what, f, root);
    // glibc 2.37 dropped the legacy hwcap subdirectories: copies of libz in `tls/` and the
    // rest are passed over by the loader, with or without a cache written by the root's
    // own (Debian 12) `ldconfig`, which tags them.
    let (subdirs, cpu): (&[&str], &str) = match f.arch {
        "arm64" => (&["tls/aarch64", "tls", "aarch64", "atomics"], "max"),
        "armhf" => (
            &["tls/v8l", "tls/neon/vfp", "tls", "v8l", "neon/vfp", "vfp"],
            "max",
        ),
        "i386" => (
            &["tls/i686/sse2", "tls", "i686/sse2", "sse2", "i686"],
            "max",
        ),
        "s390x" => (&["tls/vxe", "tls", "vxe", "zarch"], "max"),
        "ppc64el" => (&["tls/power9", "tls", "power9", "altivec"], "power9"),
        _ => (
            &["tls/mips64", "tls", "mips64", "octeon"],
            "MIPS64R2-generic",
        ),
    };
    let chains = legacy_chains_in(&what, f, root, subdirs, &[(cpu, &[])]);
    let plain = format!("/lib/{}/libz.so.1", f.triplet);
    assert!(
        chains.iter().all(|c| *c == [plain.clone()]),
        "{what}: the premise: a loader without legacy subdirectories: {chains:?}"
    );
    // The `glibc-hwcaps` names this release's loader knows (s390x's 2.43 knows `z17`,
    // 2.36 did not), without a cache: the root's `ldconfig` is Debian 12's (the one the
    // chains above wrote goes).
    let _ = fs::remove_file(root.join("etc/ld.so.cache"));
    let hw_cpu = if f.arch == "ppc64el" { "power10" } else { cpu };
    let (help, _) = qemu(f, root, &["-cpu", hw_cpu, f.interp, "--help"], &[]);
    let listed = hwcaps_names_match(&HwcapsCase {
        what: what.clone(),
        root,
        help,
        dir: format!("/lib/{}", f.triplet),
        file: "libz.so.1",
        real: Box::new(|| loader_pick(f, root, hw_cpu, "libz.so.1")),
        ours: Box::new(|args| run_closure(root, &[CURL], args)),
        ldconfig: None,
        x86_levels_name_the_cpu: f.arch == "i386",
    });
    println!("{what}: glibc-hwcaps {listed:?}");
    Some(release_version)
}

#[test]
fn mips64el_roots_with_glibc_2_40_and_2_42_match_qemu_loader() {
    let name = "mips64el_roots_with_glibc_2_40_and_2_42_match_qemu_loader";
    // Debian 13 and unstable build the MIPS glibc only as cross packages (2.40 and 2.42 when
    // this was written): in the Debian 12 mips64el root of curl instead of its own 2.36.
    // Their libraries are marked EI_ABIVERSION 5, which closure called a fatal error until
    // the forty-first stop; and they are the releases between 2.36 and 2.41 this machine can
    // run (2.40: the loader goes on past ENOTDIR, lists itself only when named).
    let mut seen = Vec::new();
    // The rules of the releases between, against Debian 12's own 2.36 first.
    if let Some(dir) = prepared_root(name, &MIPS64EL) {
        let what = format!("{name}: mips64el Debian 12 (glibc 2.36)");
        let (found, lines) = assert_version_rules(&what, &MIPS64EL, dir.path());
        assert_eq!(
            (found, lines),
            (
                false,
                vec![
                    vec!["statically linked".to_string()],
                    vec!["libnowhere.so.1 => not found".to_string()]
                ]
            ),
            "{what}: the premise"
        );
    }
    for release in ["trixie", "sid"] {
        if let Some(v) = newer_glibc_root(name, &MIPS64EL, release, "amd64", "libc6-mips64el-cross")
        {
            seen.push(v);
        }
    }
    println!("{name}: glibc {seen:?}");
}

#[test]
fn roots_with_glibc_of_debian_13_and_testing_match_qemu_loaders() {
    let name = "roots_with_glibc_of_debian_13_and_testing_match_qemu_loaders";
    // The Debian 12 roots of curl with the `libc6` of Debian 13 (2.41) and of testing
    // (2.43) in place of their own: every question of [`compare`] and the `EI_ABIVERSION`
    // bound, asked of the newer loaders (Debian 13's mirror has no s390x or ppc64el libc6).
    for (f, releases) in [
        (&ARM64, &["trixie", "forky"][..]),
        (&ARMHF, &["trixie", "forky"][..]),
        (&I386, &["trixie", "forky"][..]),
        (&S390X, &["forky"][..]),
        (&PPC64EL, &["forky"][..]),
    ] {
        for release in releases {
            newer_glibc_root(name, f, release, f.arch, "libc6");
        }
    }
}
