//! A sysroot in a temporary directory, built file by file, and a runner for
//! the `closure` binary.
//!
//! Every path given to [`FakeRoot`] is an *in-root* path (`/usr/lib/x.so`).
//! Writing goes through the host file system, so parent directories are
//! created through any *relative* directory symlinks already planted (such
//! as `lib -> usr/lib`); a write that would leave the temporary directory
//! (through an absolute link) panics instead of touching the host.
//!
//! [`FakeRoot::ld_cache`] writes `/etc/ld.so.cache` with the crate's own
//! encoder, taking each entry's flags from the ELF file the entry names
//! (resolved inside the root by a small resolver of this module, not by the
//! crate) and the byte order from the first entry's file.
#![allow(dead_code)]

use std::ffi::OsStr;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::process::Command;

use closure::resolve::ldcache::{self, CacheEntry};
use serde_json::Value;

use super::elfgen::{self, Arch, ElfSpec, Kind};

/// The exit status, stdout and stderr of one run of the binary. A process
/// killed by a signal reports `128 + signal`, as a shell would.
pub type RunResult = (i32, String, String);

/// Path of the binary under test.
pub fn closure_bin() -> &'static str {
    env!("CARGO_BIN_EXE_closure")
}

/// Runs the binary with exactly these arguments (no `--sysroot` added).
pub fn run_raw<S: AsRef<OsStr>>(args: &[S]) -> RunResult {
    let out = Command::new(closure_bin())
        .args(args)
        .env_remove("LD_LIBRARY_PATH")
        .env_remove("LD_PRELOAD")
        .output()
        .expect("cannot spawn the closure binary");
    let code = match (out.status.code(), out.status.signal()) {
        (Some(c), _) => c,
        (None, Some(sig)) => 128 + sig,
        (None, None) => -1,
    };
    (
        code,
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// A root filesystem under a temporary directory (removed on drop).
pub struct FakeRoot {
    dir: tempfile::TempDir,
    host_root: PathBuf,
}

impl Default for FakeRoot {
    fn default() -> Self {
        Self::new()
    }
}

impl FakeRoot {
    /// An empty root.
    pub fn new() -> FakeRoot {
        let dir = tempfile::Builder::new()
            .prefix("closure-fakeroot-")
            .tempdir()
            .expect("cannot create a temporary directory");
        let host_root = std::fs::canonicalize(dir.path()).expect("canonicalize tempdir");
        FakeRoot { dir, host_root }
    }

    /// Host path of the root directory.
    pub fn path(&self) -> &Path {
        &self.host_root
    }

    /// The root as a string, for `--sysroot`.
    pub fn sysroot(&self) -> String {
        self.host_root.display().to_string()
    }

    /// Host path of an in-root path, taken lexically (no link is followed).
    pub fn host(&self, in_root: &str) -> PathBuf {
        let rel = in_root.trim_start_matches('/');
        if rel.is_empty() {
            self.host_root.clone()
        } else {
            self.host_root.join(rel)
        }
    }

    /// Creates the parent directories of `in_root` and returns the host path
    /// to write, refusing anything that would land outside the root.
    fn prepare(&self, in_root: &str) -> PathBuf {
        assert!(
            in_root.starts_with('/'),
            "in-root paths are absolute: {in_root}"
        );
        let host = self.host(in_root);
        let parent = host.parent().expect("a path below the root");
        std::fs::create_dir_all(parent)
            .unwrap_or_else(|e| panic!("create_dir_all {}: {e}", parent.display()));
        let real_parent = std::fs::canonicalize(parent).expect("canonicalize parent");
        assert!(
            real_parent.starts_with(&self.host_root),
            "writing {in_root} would leave the fake root (parent resolves to {})",
            real_parent.display()
        );
        host
    }

    /// Writes a file with the given bytes.
    pub fn file(&self, in_root: &str, bytes: impl AsRef<[u8]>) -> &Self {
        let host = self.prepare(in_root);
        std::fs::write(&host, bytes.as_ref())
            .unwrap_or_else(|e| panic!("write {}: {e}", host.display()));
        self
    }

    /// Writes a file and sets its permission bits.
    pub fn file_mode(&self, in_root: &str, bytes: impl AsRef<[u8]>, mode: u32) -> &Self {
        use std::os::unix::fs::PermissionsExt;
        self.file(in_root, bytes);
        std::fs::set_permissions(self.host(in_root), std::fs::Permissions::from_mode(mode))
            .expect("chmod");
        self
    }

    /// Writes the synthetic ELF file described by `spec` (mode 0755).
    pub fn elf(&self, in_root: &str, spec: &ElfSpec) -> &Self {
        self.file_mode(in_root, elfgen::build(spec), 0o755)
    }

    /// Plants a symlink `in_root -> target`; `target` is stored byte for byte
    /// (relative or absolute; an absolute one is meant inside the root).
    pub fn symlink(&self, in_root: &str, target: &str) -> &Self {
        let host = self.prepare(in_root);
        std::os::unix::fs::symlink(target, &host)
            .unwrap_or_else(|e| panic!("symlink {} -> {target}: {e}", host.display()));
        self
    }

    /// Creates a directory (and its parents).
    pub fn dir(&self, in_root: &str) -> &Self {
        if in_root.trim_start_matches('/').is_empty() {
            return self;
        }
        let host = self.host(in_root);
        std::fs::create_dir_all(&host)
            .unwrap_or_else(|e| panic!("create_dir_all {}: {e}", host.display()));
        let real = std::fs::canonicalize(&host).expect("canonicalize dir");
        assert!(
            real.starts_with(&self.host_root),
            "directory {in_root} would leave the fake root"
        );
        self
    }

    /// Resolves an in-root path with chroot semantics (absolute link targets
    /// restart at the root, `..` is clamped at the root, at most 40 links),
    /// independently of the crate under test. `None` when it does not exist.
    pub fn resolve(&self, in_root: &str) -> Option<PathBuf> {
        let mut pending: Vec<Vec<u8>> = Vec::new();
        let push = |pending: &mut Vec<Vec<u8>>, p: &[u8]| {
            for part in p.split(|&b| b == b'/').rev() {
                if !part.is_empty() {
                    pending.push(part.to_vec());
                }
            }
        };
        push(&mut pending, in_root.as_bytes());
        let mut cur = PathBuf::from("/");
        let mut hops = 0;
        while let Some(c) = pending.pop() {
            if c == b"." {
                continue;
            }
            if c == b".." {
                cur.pop();
                continue;
            }
            let cand = cur.join(OsStr::from_bytes(&c));
            let host = self.host(cand.to_str()?);
            let meta = std::fs::symlink_metadata(&host).ok()?;
            if meta.file_type().is_symlink() {
                hops += 1;
                if hops > 40 {
                    return None;
                }
                let t = std::fs::read_link(&host).ok()?;
                if t.as_os_str().as_bytes().starts_with(b"/") {
                    cur = PathBuf::from("/");
                }
                push(&mut pending, t.as_os_str().as_bytes());
                continue;
            }
            cur = cand;
        }
        Some(cur)
    }

    /// Reads a file inside the root (following links inside the root).
    pub fn read(&self, in_root: &str) -> Vec<u8> {
        let real = self
            .resolve(in_root)
            .unwrap_or_else(|| panic!("{in_root} does not exist in the fake root"));
        std::fs::read(self.host(real.to_str().unwrap())).expect("read")
    }

    /// The `ld.so.cache` flags `ldconfig` would record for the ELF file at
    /// `in_root`, and whether that file is big-endian.
    pub fn cache_flags(&self, in_root: &str) -> (i32, bool) {
        let bytes = self.read(in_root);
        let info =
            closure::elf::parse(&bytes[..]).unwrap_or_else(|e| panic!("{in_root} is not ELF: {e}"));
        let id = info.ident;
        (
            ldcache::flags_for(id.machine, id.is_64, id.e_flags),
            id.big_endian,
        )
    }

    /// Writes `/etc/ld.so.cache` naming `(soname, path)` pairs, in
    /// `ld.so.conf` order (the first of equal keys wins). Flags come from
    /// each file; the byte order from the first entry's file.
    pub fn ld_cache(&self, entries: &[(&str, &str)]) -> &Self {
        let big = entries
            .first()
            .map(|(_, p)| self.cache_flags(p).1)
            .unwrap_or(false);
        self.ld_cache_endian(entries, big)
    }

    /// [`FakeRoot::ld_cache`] with an explicit byte order.
    pub fn ld_cache_endian(&self, entries: &[(&str, &str)], big_endian: bool) -> &Self {
        let list: Vec<CacheEntry> = entries
            .iter()
            .map(|(soname, path)| CacheEntry {
                flags: self.cache_flags(path).0,
                key: soname.as_bytes().to_vec(),
                value: path.as_bytes().to_vec(),
                hwcap: 0,
            })
            .collect();
        self.ld_cache_raw(&list, big_endian)
    }

    /// Writes `/etc/ld.so.cache` from explicit entries.
    pub fn ld_cache_raw(&self, entries: &[CacheEntry], big_endian: bool) -> &Self {
        let bytes = ldcache::write_new(
            entries,
            big_endian,
            Some(b"ldconfig (closure test fakeroot) stable release version 2.36"),
        );
        self.file("/etc/ld.so.cache", bytes)
    }

    /// Runs the binary with `--sysroot <this root>` followed by `args`.
    pub fn run(&self, args: &[&str]) -> RunResult {
        let mut all: Vec<&OsStr> = vec![OsStr::new("--sysroot"), self.host_root.as_os_str()];
        all.extend(args.iter().map(OsStr::new));
        run_raw(&all)
    }

    /// Runs with `--format json` and returns (exit code, report, stderr).
    /// Panics (showing stderr) when stdout is not one JSON value.
    pub fn json_run(&self, args: &[&str]) -> (i32, Value, String) {
        let mut all = args.to_vec();
        all.extend(["--format", "json"]);
        let (code, out, err) = self.run(&all);
        let v: Value = serde_json::from_str(&out).unwrap_or_else(|e| {
            panic!("stdout is not JSON ({e}); exit {code}\nstdout:\n{out}\nstderr:\n{err}")
        });
        (code, v, err)
    }

    /// The JSON report of `args` (see [`FakeRoot::json_run`]).
    pub fn json(&self, args: &[&str]) -> Value {
        self.json_run(args).1
    }

    /// Lays out a Debian-style multiarch base for `arch` (see [`Layout`]):
    /// the multiarch directories, the interpreter (SONAME = its file name)
    /// and `libc.so.6` (needs the interpreter, defines `GLIBC_2.17` and
    /// `GLIBC_2.34`), and the `PT_INTERP` path. Returns the in-root path of
    /// the real libc file.
    pub fn debian_base(&self, arch: Arch, layout: Layout) -> String {
        let t = arch.triplet();
        let interp = arch.interp();
        let (interp_dir, base) = interp.rsplit_once('/').unwrap();
        let libdir = if layout.merged_usr {
            self.dir(&format!("/usr/lib/{t}"));
            if std::fs::symlink_metadata(self.host("/lib")).is_err() {
                self.symlink("/lib", "usr/lib");
            }
            if interp_dir == "/lib64" && std::fs::symlink_metadata(self.host("/lib64")).is_err() {
                self.dir("/usr/lib64");
                self.symlink("/lib64", "usr/lib64");
            }
            format!("/usr/lib/{t}")
        } else {
            self.dir(&format!("/lib/{t}"));
            self.dir(&format!("/usr/lib/{t}"));
            self.dir(interp_dir);
            format!("/lib/{t}")
        };
        let interp_spec = ElfSpec {
            arch: Some(arch),
            kind: Kind::Shared,
            soname: Some(base.to_string()),
            verdefs: vec!["GLIBC_2.17".into()],
            ..Default::default()
        };
        if layout.interp_symlink {
            self.elf(&format!("{libdir}/{base}"), &interp_spec);
            if interp_dir == "/lib" {
                // /lib/ld-linux-aarch64.so.1 -> aarch64-linux-gnu/ld-linux-aarch64.so.1
                self.symlink(interp, &format!("{t}/{base}"));
            } else {
                // /lib64/ld64.so.2 -> /lib/powerpc64le-linux-gnu/ld64.so.2
                self.symlink(interp, &format!("/lib/{t}/{base}"));
            }
        } else {
            self.elf(interp, &interp_spec);
        }
        let libc = format!("{libdir}/libc.so.6");
        self.elf(
            &libc,
            &ElfSpec {
                arch: Some(arch),
                kind: Kind::Shared,
                interp: Some(interp.to_string()),
                soname: Some("libc.so.6".into()),
                needed: vec![base.to_string()],
                verdefs: vec!["GLIBC_2.17".into(), "GLIBC_2.34".into()],
                ..Default::default()
            },
        );
        libc
    }

    /// A shared library for `arch` with a SONAME and DT_NEEDED entries.
    pub fn lib(&self, in_root: &str, arch: Arch, soname: &str, needed: &[&str]) -> &Self {
        self.elf(
            in_root,
            &ElfSpec {
                arch: Some(arch),
                kind: Kind::Shared,
                soname: Some(soname.to_string()),
                needed: needed.iter().map(|n| n.to_string()).collect(),
                ..Default::default()
            },
        )
    }

    /// A PIE program for `arch` with DT_NEEDED entries and an optional RUNPATH.
    pub fn exe(&self, in_root: &str, arch: Arch, needed: &[&str], runpath: Option<&str>) -> &Self {
        self.elf(
            in_root,
            &ElfSpec {
                arch: Some(arch),
                kind: Kind::Exec,
                needed: needed.iter().map(|n| n.to_string()).collect(),
                runpath: runpath.map(str::to_string),
                ..Default::default()
            },
        )
    }
}

/// How [`FakeRoot::debian_base`] lays out the base system.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Layout {
    /// Merged /usr (`/lib -> usr/lib`, `/lib64 -> usr/lib64`, Debian 12):
    /// the real files live in `/usr/lib/<triplet>/`. Otherwise `/lib` is a
    /// real directory and the base files live in `/lib/<triplet>/`.
    pub merged_usr: bool,
    /// The `PT_INTERP` path is a symlink into `/lib/<triplet>/` (relative
    /// for `/lib/ld-*`, absolute for `/lib64/ld-*`), as Debian ships it;
    /// otherwise the interpreter is a regular file at that path.
    pub interp_symlink: bool,
}

impl Layout {
    /// Debian 12: merged /usr, interpreter reached through a symlink.
    pub const DEBIAN12: Layout = Layout {
        merged_usr: true,
        interp_symlink: true,
    };
}

/// The object with exactly this `path` in a JSON report.
pub fn object<'a>(report: &'a Value, path: &str) -> Option<&'a Value> {
    report["objects"]
        .as_array()?
        .iter()
        .find(|o| o["path"].as_str() == Some(path))
}

/// `path -> found_via` of every object in a JSON report, sorted by path.
pub fn found_via(report: &Value) -> Vec<(String, String)> {
    let mut v: Vec<(String, String)> = report["objects"]
        .as_array()
        .map(|a| {
            a.iter()
                .map(|o| {
                    (
                        o["path"].as_str().unwrap_or_default().to_string(),
                        o["found_via"].as_str().unwrap_or_default().to_string(),
                    )
                })
                .collect()
        })
        .unwrap_or_default();
    v.sort();
    v
}

/// The `soname`s of the `missing` array of a JSON report.
pub fn missing_names(report: &Value) -> Vec<String> {
    report["missing"]
        .as_array()
        .map(|a| {
            a.iter()
                .map(|m| m["soname"].as_str().unwrap_or_default().to_string())
                .collect()
        })
        .unwrap_or_default()
}

/// Builds a `Vec<(String, String)>` from string pairs, sorted (for
/// comparison with [`found_via`]).
pub fn pairs(v: &[(&str, &str)]) -> Vec<(String, String)> {
    let mut out: Vec<(String, String)> = v
        .iter()
        .map(|(a, b)| (a.to_string(), b.to_string()))
        .collect();
    out.sort();
    out
}
