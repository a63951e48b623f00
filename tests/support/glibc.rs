//! Other generations of glibc for the loader oracle: Debian's `libc6` and
//! `libc-bin` (its static `ldconfig`) of another release, with `libc6-dev`
//! and `linux-libc-dev` to build programs against it, fetched with a
//! private apt configuration (its own sources, lists and cache below
//! `$CARGO_TARGET_TMPDIR/glibc/RELEASE`, so the host's apt state is never
//! touched) and unpacked once. [`super::oracle::TestRoot::with_glibc`] then
//! builds a root around that release's `libc.so.6`, `ld.so` and `ldconfig`,
//! and links programs for a release older than this machine's start files
//! against its own (`gcc --sysroot`).
//!
//! [`debian_package`] fetches one package of any release and
//! architecture the same way (another architecture's `libc6`, a newer
//! `musl`).
//!
//! bullseye has glibc 2.31 (legacy hwcap subdirectories, no
//! `glibc-hwcaps`), trixie 2.41 (`glibc-hwcaps` only), forky (testing)
//! 2.43 and experimental 2.44 when this was written; this machine's
//! bookworm 2.36 has both kinds of subdirectory.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Mutex;

/// One unpacked glibc release.
#[derive(Clone, Debug)]
pub struct Glibc {
    /// Debian release name.
    pub release: &'static str,
    /// The package version (`2.31-13+deb11u11`).
    pub version: String,
    /// Host paths of the unpacked files.
    pub libc: PathBuf,
    pub ldso: PathBuf,
    pub ldconfig: PathBuf,
    /// Older than 2.34: a program linked with this machine's start files
    /// and `libc.so` (`__libc_start_main@GLIBC_2.34`) cannot run on it.
    pub before_2_34: bool,
    /// The unpacked packages, headers and start files included: the
    /// `gcc --sysroot` that builds programs for this release.
    pub dev_root: PathBuf,
}

impl Glibc {
    /// The arguments that make gcc build against this release's headers, start files and
    /// `libc.so` (Debian's gcc looks in its own multiarch directories before a `--sysroot`'s:
    /// `-B` and `-L` put the release's first).
    pub fn gcc_args(&self) -> Vec<String> {
        let lib = |dir: &str| self.dev_root.join(dir).display().to_string();
        vec![
            format!("--sysroot={}", self.dev_root.display()),
            format!("-B{}/", lib("usr/lib/x86_64-linux-gnu")),
            format!("-L{}", lib("usr/lib/x86_64-linux-gnu")),
            format!("-L{}", lib("lib/x86_64-linux-gnu")),
        ]
    }
}

/// One fetch at a time (apt's locks are per directory, the cache too).
static FETCH: Mutex<()> = Mutex::new(());

fn cache_dir(release: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_TARGET_TMPDIR"))
        .join("glibc")
        .join(release)
}

/// The apt options that make every state and cache directory private, for
/// packages of Debian architecture `arch`.
fn apt_options(dir: &Path, lists: &Path, arch: &str) -> Vec<String> {
    let d = |sub: &str| dir.join(sub).display().to_string();
    vec![
        "-q".into(),
        "-o".into(),
        format!("Dir::Etc::SourceList={}", d("sources.list")),
        "-o".into(),
        "Dir::Etc::SourceParts=/dev/null".into(),
        "-o".into(),
        format!("Dir::State::Lists={}", lists.display()),
        "-o".into(),
        format!("Dir::Cache={}", d("cache")),
        "-o".into(),
        format!("APT::Architectures={arch}"),
        "-o".into(),
        "APT::Sandbox::User=root".into(),
    ]
}

fn run(program: &str, args: &[String], cwd: &Path) -> Result<(), String> {
    let out = Command::new(program)
        .args(args)
        .current_dir(cwd)
        .env("PATH", "/usr/sbin:/usr/bin:/sbin:/bin")
        .output()
        .map_err(|e| format!("cannot run {program}: {e}"))?;
    if out.status.success() {
        return Ok(());
    }
    Err(format!(
        "{program} {} failed: {}{}",
        args.join(" "),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    ))
}

/// `path` (relative to `root`) with every symbolic link followed inside
/// `root`: an absolute target is taken from `root`.
fn resolve_in(root: &Path, path: &str) -> Option<PathBuf> {
    let mut current = PathBuf::from(path.trim_start_matches('/'));
    for _ in 0..16 {
        let host = root.join(&current);
        let meta = fs::symlink_metadata(&host).ok()?;
        if !meta.file_type().is_symlink() {
            return Some(host);
        }
        let target = fs::read_link(&host).ok()?;
        current = if target.is_absolute() {
            target.strip_prefix("/").ok()?.to_path_buf()
        } else {
            current.parent()?.join(target)
        };
    }
    None
}

/// The first of `paths` that exists in `root`, links followed.
fn first_in(root: &Path, paths: &[&str]) -> Option<PathBuf> {
    paths.iter().find_map(|p| resolve_in(root, p))
}

/// Fetches `packages` (`NAME:ARCH/RELEASE` or `NAME/RELEASE`) of Debian
/// `release` for architecture `arch` with a private apt state in `dir` (made
/// afresh) and unpacks them into `dir/root`; the version of the first
/// package, from its file name. Writes `dir/version` last, so a fetch cut
/// short is done again. The package lists are `lists` when given (shared by
/// every fetch of that release and architecture, brought up to date once:
/// its `updated` stamp), else `dir/lists`.
fn fetch(
    dir: &Path,
    release: &str,
    arch: &str,
    packages: &[String],
    lists: Option<&Path>,
) -> Result<String, String> {
    let _ = fs::remove_dir_all(dir);
    for sub in ["cache/archives/partial", "debs", "root"] {
        fs::create_dir_all(dir.join(sub)).map_err(|e| format!("mkdir: {e}"))?;
    }
    let own = dir.join("lists");
    let lists = lists.unwrap_or(&own);
    fs::create_dir_all(lists.join("partial")).map_err(|e| format!("mkdir: {e}"))?;
    fs::write(
        dir.join("sources.list"),
        format!("deb http://deb.debian.org/debian {release} main\n"),
    )
    .map_err(|e| format!("write sources.list: {e}"))?;
    let update = || -> Result<(), String> {
        let mut args = apt_options(dir, lists, arch);
        args.push("update".into());
        run("apt-get", &args, dir)?;
        fs::write(lists.join("updated"), "").map_err(|e| format!("write stamp: {e}"))
    };
    let mut updated = false;
    if !lists.join("updated").is_file() {
        update()?;
        updated = true;
    }
    let mut args = apt_options(dir, lists, arch);
    args.push("download".into());
    args.extend(packages.iter().cloned());
    if let Err(why) = run("apt-get", &args, &dir.join("debs")) {
        // Shared lists from an earlier day can name files the mirror has dropped.
        if updated {
            return Err(why);
        }
        update()?;
        run("apt-get", &args, &dir.join("debs"))?;
    }
    let first = packages[0].split([':', '/']).next().unwrap_or_default();
    let prefix = format!("{first}_");
    let mut version = String::new();
    let mut debs: Vec<PathBuf> = fs::read_dir(dir.join("debs"))
        .map_err(|e| format!("read debs: {e}"))?
        .flatten()
        .map(|e| e.path())
        .collect();
    debs.sort();
    for deb in &debs {
        let name = deb.file_name().unwrap_or_default().to_string_lossy();
        if let Some(rest) = name.strip_prefix(&prefix) {
            version = rest.split('_').next().unwrap_or_default().to_string();
        }
        let root = dir.join("root");
        run(
            "dpkg-deb",
            &[
                "-x".into(),
                deb.display().to_string(),
                root.display().to_string(),
            ],
            dir,
        )?;
    }
    if version.is_empty() {
        return Err(format!(
            "apt-get download fetched no {first} for {release} {arch}"
        ));
    }
    relative_links(&dir.join("root"), &dir.join("root"))?;
    fs::write(dir.join("version"), &version).map_err(|e| format!("write stamp: {e}"))?;
    Ok(version)
}

/// Rewrites every symbolic link below `dir` whose target is absolute (taken from `root`) to
/// the same target spelled relative to the link: the linker follows links of a `--sysroot`
/// on the host (`/lib64/ld-linux-x86-64.so.2 -> /lib/x86_64-linux-gnu/ld-2.31.so`).
fn relative_links(root: &Path, dir: &Path) -> Result<(), String> {
    let entries = fs::read_dir(dir).map_err(|e| format!("read {}: {e}", dir.display()))?;
    for entry in entries.flatten() {
        let path = entry.path();
        let kind = entry
            .file_type()
            .map_err(|e| format!("{}: {e}", path.display()))?;
        if kind.is_dir() {
            relative_links(root, &path)?;
            continue;
        }
        if !kind.is_symlink() {
            continue;
        }
        let target = fs::read_link(&path).map_err(|e| format!("{}: {e}", path.display()))?;
        let Ok(inside) = target.strip_prefix("/") else {
            continue;
        };
        let depth = path
            .parent()
            .and_then(|p| p.strip_prefix(root).ok())
            .map_or(0, |p| p.components().count());
        let mut relative = PathBuf::new();
        for _ in 0..depth {
            relative.push("..");
        }
        relative.push(inside);
        fs::remove_file(&path).map_err(|e| format!("{}: {e}", path.display()))?;
        std::os::unix::fs::symlink(&relative, &path)
            .map_err(|e| format!("{}: {e}", path.display()))?;
    }
    Ok(())
}

/// [`glibc`] of each of `releases` that can be had; for one that cannot,
/// `skipping NAME on RELEASE: WHY` is printed.
pub fn available(name: &str, releases: &[&'static str]) -> Vec<Glibc> {
    let mut out = Vec::new();
    for release in releases {
        match glibc(release) {
            Ok(g) => out.push(g),
            Err(why) => println!("skipping {name} on {release}: {why}"),
        }
    }
    out
}

/// The glibc of Debian `release`, fetched and unpacked when not cached.
/// Err: why it cannot be had here (no apt, no mirror).
pub fn glibc(release: &'static str) -> Result<Glibc, String> {
    let _guard = FETCH.lock().unwrap_or_else(|e| e.into_inner());
    let dir = cache_dir(release);
    let root = dir.join("root");
    let stamp = dir.join("version");
    // A cache from before the development files were fetched lacks crt1.o, one from
    // before its links were made relative an absolute `/lib64/ld-linux-x86-64.so.2`.
    let dev = root.join("usr/lib/x86_64-linux-gnu/crt1.o");
    let interp = fs::read_link(root.join("lib64/ld-linux-x86-64.so.2")).unwrap_or_default();
    if !stamp.is_file() || !dev.is_file() || interp.is_absolute() {
        // `/release`: the installed version is newer than an older
        // release's, and no source of these lists has it.
        let packages =
            ["libc6", "libc-bin", "libc6-dev", "linux-libc-dev"].map(|p| format!("{p}/{release}"));
        fetch(&dir, release, "amd64", &packages, None)?;
    }
    let version = fs::read_to_string(&stamp).map_err(|e| format!("read stamp: {e}"))?;
    let find = |what: &str, paths: &[&str]| {
        first_in(&root, paths).ok_or_else(|| format!("libc6 of {release} has no {what}"))
    };
    let minor: u32 = version
        .trim()
        .strip_prefix("2.")
        .and_then(|rest| rest.split(|c: char| !c.is_ascii_digit()).next())
        .and_then(|m| m.parse().ok())
        .ok_or_else(|| format!("libc6 of {release} has an odd version {version:?}"))?;
    Ok(Glibc {
        release,
        version: version.trim().to_string(),
        before_2_34: minor < 34,
        libc: find(
            "libc.so.6",
            &[
                "/lib/x86_64-linux-gnu/libc.so.6",
                "/usr/lib/x86_64-linux-gnu/libc.so.6",
            ],
        )?,
        ldso: find(
            "ld-linux-x86-64.so.2",
            &[
                "/lib64/ld-linux-x86-64.so.2",
                "/usr/lib64/ld-linux-x86-64.so.2",
                "/lib/x86_64-linux-gnu/ld-linux-x86-64.so.2",
            ],
        )?,
        ldconfig: find("ldconfig", &["/sbin/ldconfig", "/usr/sbin/ldconfig"])?,
        dev_root: root,
    })
}

/// The `libc6` package of Debian `release` for architecture `arch`
/// (`arm64`, `s390x`, …): [`debian_package`].
pub fn foreign_libc6(release: &str, arch: &str) -> Result<(PathBuf, String), String> {
    debian_package(release, arch, "libc6")
}

/// Package `package` of Debian `release` for architecture `arch`, fetched
/// with its own private apt state below
/// `$CARGO_TARGET_TMPDIR/glibc/RELEASE-ARCH-PACKAGE` and unpacked there
/// once: the unpacked tree and the package version. Err: why it cannot be
/// had (no apt, no mirror, a mirror without that architecture's file).
pub fn debian_package(
    release: &str,
    arch: &str,
    package: &str,
) -> Result<(PathBuf, String), String> {
    let _guard = FETCH.lock().unwrap_or_else(|e| e.into_inner());
    let dir = cache_dir(&format!("{release}-{arch}-{package}"));
    let stamp = dir.join("version");
    if !stamp.is_file() {
        // One set of lists per release and architecture: a test fetches up to a dozen
        // packages of one release.
        let lists = cache_dir(&format!("{release}-{arch}-lists"));
        fetch(
            &dir,
            release,
            arch,
            &[format!("{package}:{arch}/{release}")],
            Some(&lists),
        )?;
    }
    let version = fs::read_to_string(&stamp).map_err(|e| format!("read stamp: {e}"))?;
    Ok((dir.join("root"), version.trim().to_string()))
}
