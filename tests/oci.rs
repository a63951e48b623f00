//! Container output end to end: `--oci`, `--layer`, `--sbom`, `--base` and
//! the dpkg provenance entries, checked with the tools that consume them.
//!
//! - Reproducibility: two runs give the same manifest digest, also after
//!   `touch`ing every file of the sysroot; `SOURCE_DATE_EPOCH` sets the times.
//! - The layer's bytes: sorted relative names, parents first, owner 0:0, no
//!   user names, fixed mtime, links as tar links, PAX for long names, the
//!   trailing zero blocks; `--layer x.tar` equals the gunzipped blob.
//! - Consumers: `skopeo inspect` accepts the layout, `umoci unpack` unpacks
//!   it and the program runs from the unpacked rootfs in a chroot; the SBOM
//!   validates with `pyspdxtools` (PyPI spdx-tools); the status.d entries
//!   parse with `dpkg-query --admindir` and python3-debian's deb822.
//! - `--base`: a base holding glibc → the layer omits glibc and the program
//!   runs in base + layer; a base with an older libc → a version problem
//!   naming GLIBC_2.34, exit 1, nothing written; a usrmerged base under a
//!   non-merged sysroot → no real `/lib` in the layer.
//!
//! Tests that need a host tool that is absent print `skipping <name>: …`;
//! running programs in a chroot needs root (`skipping <name>: needs root`).

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::io::Read;
use std::os::unix::fs::MetadataExt;
use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use md5::Md5;
use serde_json::Value;
use sha2::{Digest, Sha256};
use tempfile::TempDir;

use crate::support::chroot::{is_root, run_in_root, skip_unless_root};
use crate::support::elfgen::{self, ElfSpec, Kind};

const LDSO: &str = "/lib64/ld-linux-x86-64.so.2";
const TRIPLET_DIR: &str = "/lib/x86_64-linux-gnu";
const PROG: &str = "/usr/bin/true";

// ---------------------------------------------------------------------------------------------
// Helpers
// ---------------------------------------------------------------------------------------------

/// Runs `closure ARGS` with `env` (and no inherited SOURCE_DATE_EPOCH).
fn closure_env(args: &[&str], env: &[(&str, &str)]) -> (i32, String, String) {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_closure"));
    cmd.args(args)
        .env_remove("LD_LIBRARY_PATH")
        .env_remove("LD_PRELOAD")
        .env_remove("SOURCE_DATE_EPOCH")
        .stdin(Stdio::null());
    for (k, v) in env {
        cmd.env(k, v);
    }
    let out = cmd.output().expect("cannot spawn closure");
    let code = match (out.status.code(), out.status.signal()) {
        (Some(c), _) => c,
        (None, Some(s)) => 128 + s,
        _ => -1,
    };
    (
        code,
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn closure(args: &[&str]) -> (i32, String, String) {
    closure_env(args, &[])
}

/// Runs closure and asserts exit 0; returns stdout.
fn closure_ok(args: &[&str], env: &[(&str, &str)]) -> String {
    let (code, out, err) = closure_env(args, env);
    assert_eq!(
        code, 0,
        "closure {args:?}: exit code\nstdout:\n{out}\nstderr:\n{err}"
    );
    out
}

fn s(p: &Path) -> &str {
    p.to_str().expect("test paths are UTF-8")
}

fn tempdir(prefix: &str) -> TempDir {
    tempfile::Builder::new()
        .prefix(prefix)
        .tempdir()
        .expect("tempdir")
}

fn sha256_hex(b: &[u8]) -> String {
    hex(&Sha256::digest(b))
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

fn md5_hex(b: &[u8]) -> String {
    hex(&Md5::digest(b))
}

fn gunzip(b: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    flate2::read::GzDecoder::new(b)
        .read_to_end(&mut out)
        .expect("gunzip");
    out
}

/// True (after printing why) when a host tool or file is absent.
fn lacks(test: &str, what: &str) -> bool {
    let present = if what.starts_with('/') {
        Path::new(what).exists()
    } else {
        Command::new("sh")
            .args(["-c", &format!("command -v {what}")])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .map(|s| s.success())
            .unwrap_or(false)
    };
    if !present {
        println!("skipping {test}: {what} is not installed on this host");
    }
    !present
}

/// The host needs an x86_64 Debian-style glibc and /usr/bin/true.
fn lacks_host_glibc(test: &str) -> bool {
    lacks(test, LDSO) || lacks(test, &format!("{TRIPLET_DIR}/libc.so.6")) || lacks(test, PROG)
}

fn copy_file(from: &Path, to: &Path) {
    fs::create_dir_all(to.parent().expect("parent")).expect("mkdir");
    fs::copy(from, to).unwrap_or_else(|e| panic!("cp {} {}: {e}", from.display(), to.display()));
}

fn symlink(target: &str, link: &Path) {
    fs::create_dir_all(link.parent().expect("parent")).expect("mkdir");
    std::os::unix::fs::symlink(target, link)
        .unwrap_or_else(|e| panic!("symlink {} -> {target}: {e}", link.display()));
}

fn write(p: &Path, bytes: impl AsRef<[u8]>) {
    fs::create_dir_all(p.parent().expect("parent")).expect("mkdir");
    fs::write(p, bytes).unwrap_or_else(|e| panic!("write {}: {e}", p.display()));
}

fn host_glibc() -> (PathBuf, PathBuf) {
    let libc = fs::canonicalize(Path::new(TRIPLET_DIR).join("libc.so.6")).expect("host libc");
    let ldso = fs::canonicalize(LDSO).expect("host ld.so");
    (libc, ldso)
}

/// A usrmerged Debian-style root at `dir` holding the host's glibc (as
/// Debian 12 lays it out: `/lib -> usr/lib`, the loader link absolute).
fn usrmerged_glibc(dir: &Path) {
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

const STATUS: &str = "\
Package: libc6
Status: install ok installed
Priority: optional
Section: libs
Maintainer: GNU Libc Maintainers <debian-glibc@lists.debian.org>
Architecture: amd64
Multi-Arch: same
Source: glibc
Version: 2.36-9+deb12u4
Conffiles:
 /etc/ld.so.conf.d/x86_64-linux-gnu.conf d4e7a7b88a71b5ffd9e2644e71a0cfab
Description: GNU C Library: Shared libraries
 Contains the standard libraries that are used by nearly all programs on
 the system.

Package: coreutils
Essential: yes
Status: install ok installed
Priority: required
Section: utils
Maintainer: Michael Stone <mstone@debian.org>
Architecture: amd64
Version: 9.1-1
Description: GNU core utilities

Package: oldstuff
Status: deinstall ok config-files
Architecture: all
Version: 1.0
Description: removed, only its configuration is left

";

/// A throwaway sysroot: usrmerged glibc, the host's /usr/bin/true, a CA
/// bundle, and a dpkg database that lists glibc under /lib (as Debian 12's
/// merged-/usr does) and `true` under /bin.
struct TinyRoot {
    dir: TempDir,
}

impl TinyRoot {
    fn new() -> TinyRoot {
        let dir = tempdir("closure-oci-sys-");
        let r = dir.path();
        usrmerged_glibc(r);
        copy_file(Path::new(PROG), &r.join("usr/bin/true"));
        write(
            &r.join("etc/ssl/certs/ca-certificates.crt"),
            "-----BEGIN CERTIFICATE-----\nnot really\n-----END CERTIFICATE-----\n",
        );
        write(&r.join("var/lib/dpkg/status"), STATUS);
        write(
            &r.join("var/lib/dpkg/info/libc6:amd64.list"),
            "/.\n/lib\n/lib/x86_64-linux-gnu\n/lib/x86_64-linux-gnu/libc.so.6\n\
             /lib/x86_64-linux-gnu/ld-linux-x86-64.so.2\n/lib64\n/lib64/ld-linux-x86-64.so.2\n",
        );
        write(
            &r.join("var/lib/dpkg/info/coreutils.list"),
            "/.\n/bin\n/bin/true\n",
        );
        write(
            &r.join("var/lib/dpkg/info/oldstuff.list"),
            "/usr/bin/true\n",
        );
        write(&r.join("etc/os-release"), "ID=debian\nVERSION_ID=\"12\"\n");
        TinyRoot { dir }
    }

    fn path(&self) -> &Path {
        self.dir.path()
    }
}

/// One tar entry, after PAX headers are applied.
#[derive(Debug, Clone)]
struct TarEntry {
    name: String,
    typeflag: u8,
    mode: u32,
    uid: u64,
    gid: u64,
    mtime: u64,
    uname: Vec<u8>,
    gname: Vec<u8>,
    linkname: String,
    data: Vec<u8>,
    /// Whether a PAX header came before it.
    pax: bool,
}

fn octal(f: &[u8]) -> u64 {
    let s: String = f
        .iter()
        .take_while(|&&c| c != 0 && c != b' ')
        .map(|&c| c as char)
        .collect();
    u64::from_str_radix(s.trim(), 8).unwrap_or_else(|_| panic!("bad octal field {f:?}"))
}

fn cstr(f: &[u8]) -> String {
    let n = f.iter().position(|&c| c == 0).unwrap_or(f.len());
    String::from_utf8_lossy(&f[..n]).into_owned()
}

/// Parses a tar archive strictly: checksums verified, PAX `x` headers
/// applied, must end in two zero blocks with nothing after them.
fn parse_tar(b: &[u8]) -> Vec<TarEntry> {
    assert_eq!(b.len() % 512, 0, "tar length is not a multiple of 512");
    let mut out = Vec::new();
    let mut i = 0;
    let mut pax: BTreeMap<String, String> = BTreeMap::new();
    let mut had_pax = false;
    loop {
        let h = &b[i..i + 512];
        if h.iter().all(|&c| c == 0) {
            assert!(
                b[i..].iter().all(|&c| c == 0) && b.len() - i == 1024,
                "the archive must end with exactly two zero blocks"
            );
            break;
        }
        let mut copy = h.to_vec();
        copy[148..156].copy_from_slice(b"        ");
        let sum: u64 = copy.iter().map(|&c| u64::from(c)).sum();
        assert_eq!(octal(&h[148..156]), sum, "header checksum at {i}");
        assert_eq!(&h[257..263], b"ustar\0", "ustar magic");
        let size = octal(&h[124..136]) as usize;
        let data = b[i + 512..i + 512 + size].to_vec();
        i += 512 + size.div_ceil(512) * 512;
        if h[156] == b'x' {
            let mut rest = &data[..];
            while !rest.is_empty() {
                let sp = rest.iter().position(|&c| c == b' ').expect("pax length");
                let len: usize = std::str::from_utf8(&rest[..sp]).unwrap().parse().unwrap();
                let rec = &rest[sp + 1..len - 1];
                let eq = rec.iter().position(|&c| c == b'=').expect("pax =");
                pax.insert(
                    String::from_utf8_lossy(&rec[..eq]).into_owned(),
                    String::from_utf8_lossy(&rec[eq + 1..]).into_owned(),
                );
                rest = &rest[len..];
            }
            had_pax = true;
            continue;
        }
        let mut name = cstr(&h[0..100]);
        let prefix = cstr(&h[345..500]);
        if !prefix.is_empty() {
            name = format!("{prefix}/{name}");
        }
        let mut linkname = cstr(&h[157..257]);
        if let Some(p) = pax.remove("path") {
            name = p;
        }
        if let Some(l) = pax.remove("linkpath") {
            linkname = l;
        }
        pax.clear();
        out.push(TarEntry {
            name,
            typeflag: h[156],
            mode: octal(&h[100..108]) as u32,
            uid: octal(&h[108..116]),
            gid: octal(&h[116..124]),
            mtime: octal(&h[136..148]),
            uname: h[265..297]
                .iter()
                .copied()
                .take_while(|&c| c != 0)
                .collect(),
            gname: h[297..329]
                .iter()
                .copied()
                .take_while(|&c| c != 0)
                .collect(),
            linkname,
            data,
            pax: had_pax,
        });
        had_pax = false;
    }
    out
}

fn entry<'a>(t: &'a [TarEntry], name: &str) -> Option<&'a TarEntry> {
    t.iter().find(|e| e.name.trim_end_matches('/') == name)
}

fn names(t: &[TarEntry]) -> BTreeSet<String> {
    t.iter()
        .map(|e| e.name.trim_end_matches('/').to_string())
        .collect()
}

/// Reads an image layout: (manifest digest, manifest, config, layer blob).
fn read_layout(dir: &Path) -> (String, Value, Value, Vec<u8>) {
    let layout: Value =
        serde_json::from_slice(&fs::read(dir.join("oci-layout")).expect("oci-layout")).unwrap();
    assert_eq!(layout["imageLayoutVersion"], "1.0.0");
    let index: Value =
        serde_json::from_slice(&fs::read(dir.join("index.json")).expect("index.json")).unwrap();
    assert_eq!(index["schemaVersion"], 2);
    assert_eq!(
        index["mediaType"],
        "application/vnd.oci.image.index.v1+json"
    );
    let m = &index["manifests"][0];
    assert_eq!(
        m["annotations"]["org.opencontainers.image.ref.name"],
        "latest"
    );
    assert_eq!(m["mediaType"], "application/vnd.oci.image.manifest.v1+json");
    let blob = |d: &Value| -> Vec<u8> {
        let d = d.as_str().expect("digest");
        let hex = d.strip_prefix("sha256:").expect("sha256 digest");
        let b = fs::read(dir.join("blobs/sha256").join(hex)).expect("blob");
        assert_eq!(sha256_hex(&b), hex, "blob {d} is not named by its digest");
        b
    };
    let digest = m["digest"].as_str().unwrap().to_string();
    let mbytes = blob(&m["digest"]);
    assert_eq!(m["size"].as_u64(), Some(mbytes.len() as u64));
    let manifest: Value = serde_json::from_slice(&mbytes).unwrap();
    assert_eq!(manifest["schemaVersion"], 2);
    assert_eq!(
        manifest["config"]["mediaType"],
        "application/vnd.oci.image.config.v1+json"
    );
    let cbytes = blob(&manifest["config"]["digest"]);
    assert_eq!(
        manifest["config"]["size"].as_u64(),
        Some(cbytes.len() as u64)
    );
    let config: Value = serde_json::from_slice(&cbytes).unwrap();
    let layers = manifest["layers"].as_array().expect("layers");
    assert_eq!(layers.len(), 1);
    assert_eq!(
        layers[0]["mediaType"],
        "application/vnd.oci.image.layer.v1.tar+gzip"
    );
    let layer = blob(&layers[0]["digest"]);
    assert_eq!(layers[0]["size"].as_u64(), Some(layer.len() as u64));
    (digest, manifest, config, layer)
}

/// Every file below `dir` with its bytes (links as their targets).
fn tree_bytes(dir: &Path) -> BTreeMap<String, Vec<u8>> {
    let mut m = BTreeMap::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in fs::read_dir(&d).expect("read_dir") {
            let p = e.expect("entry").path();
            let meta = fs::symlink_metadata(&p).expect("lstat");
            let rel = p.strip_prefix(dir).unwrap().display().to_string();
            if meta.is_dir() {
                stack.push(p);
            } else if meta.file_type().is_symlink() {
                m.insert(
                    rel,
                    fs::read_link(&p)
                        .unwrap()
                        .into_os_string()
                        .into_encoded_bytes(),
                );
            } else {
                m.insert(rel, fs::read(&p).expect("read"));
            }
        }
    }
    m
}

/// Sets every entry below `dir` (links themselves too) to another mtime.
fn touch_all(dir: &Path, when: &str) {
    let st = Command::new("find")
        .arg(dir)
        .args(["-exec", "touch", "-h", "-d", when, "{}", "+"])
        .status()
        .expect("find -exec touch");
    assert!(st.success(), "touch {}", dir.display());
}

/// The digest printed on stdout.
fn printed_digest(stdout: &str) -> String {
    let d = stdout.trim().to_string();
    assert!(
        d.len() == 71 && d.starts_with("sha256:") && d[7..].bytes().all(|c| c.is_ascii_hexdigit()),
        "stdout is not one manifest digest: {stdout:?}"
    );
    d
}

// ---------------------------------------------------------------------------------------------
// Reproducibility and the layer's bytes
// ---------------------------------------------------------------------------------------------

#[test]
fn oci_layout_is_reproducible_and_layer_is_canonical() {
    let test = "oci_layout_is_reproducible_and_layer_is_canonical";
    if lacks_host_glibc(test) {
        return;
    }
    let root = TinyRoot::new();
    let work = tempdir("closure-oci-out-");
    let w = work.path();
    let run = |oci: &str, layer: &str, env: &[(&str, &str)]| -> String {
        let out = closure_ok(
            &[
                "--sysroot",
                s(root.path()),
                "--root",
                PROG,
                "--include",
                "/etc/ssl/certs/ca-certificates.crt",
                "--user",
                "65532",
                "--oci",
                s(&w.join(oci)),
                "--layer",
                s(&w.join(layer)),
            ],
            env,
        );
        printed_digest(&out)
    };
    let a = run("a", "a.tar", &[]);
    let b = run("b", "b.tar.gz", &[]);
    touch_all(root.path(), "2001-02-03 04:05:06");
    let c = run("c", "c.tar", &[]);
    assert_eq!(a, b, "two runs, two manifest digests");
    assert_eq!(a, c, "touching the sysroot changed the manifest digest");
    assert_eq!(
        tree_bytes(&w.join("a")),
        tree_bytes(&w.join("c")),
        "layouts differ"
    );

    let (digest, _manifest, config, blob) = read_layout(&w.join("a"));
    assert_eq!(digest, a, "printed digest vs index.json");
    let tar = fs::read(w.join("a.tar")).unwrap();
    assert_eq!(
        gunzip(&blob),
        tar,
        "--layer a.tar vs the gunzipped layer blob"
    );
    assert_eq!(
        fs::read(w.join("b.tar.gz")).unwrap(),
        blob,
        "--layer b.tar.gz vs the blob"
    );
    assert_eq!(
        &blob[..4],
        &[0x1f, 0x8b, 8, 0],
        "gzip magic, deflate, no flags (no name)"
    );
    assert_eq!(&blob[4..8], &[0, 0, 0, 0], "gzip MTIME must be 0");

    // The config.
    assert_eq!(config["architecture"], "amd64");
    assert_eq!(config["os"], "linux");
    assert_eq!(config["rootfs"]["type"], "layers");
    assert_eq!(
        config["rootfs"]["diff_ids"][0].as_str(),
        Some(format!("sha256:{}", sha256_hex(&tar)).as_str())
    );
    assert_eq!(config["config"]["Entrypoint"], serde_json::json!([PROG]));
    assert_eq!(config["config"]["User"], "65532");
    let env: Vec<&str> = config["config"]["Env"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap())
        .collect();
    assert!(env.contains(&"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"));
    assert!(env.contains(&"SSL_CERT_FILE=/etc/ssl/certs/ca-certificates.crt"));
    assert_eq!(config["created"], "1970-01-01T00:00:00Z");

    // The layer's entries.
    let t = parse_tar(&tar);
    let list: Vec<&str> = t.iter().map(|e| e.name.trim_end_matches('/')).collect();
    let mut sorted = list.clone();
    sorted.sort_by(|x, y| x.as_bytes().cmp(y.as_bytes()));
    assert_eq!(list, sorted, "entries are not sorted by path bytes");
    let mut seen: BTreeSet<&str> = BTreeSet::new();
    for e in &t {
        let n = e.name.trim_end_matches('/');
        assert!(!n.starts_with('/') && !n.starts_with("./"), "name {n:?}");
        if let Some((parent, _)) = n.rsplit_once('/') {
            assert!(seen.contains(parent), "{n}: parent {parent} not before it");
            assert_eq!(entry(&t, parent).map(|p| p.typeflag), Some(b'5'));
        }
        assert_eq!((e.uid, e.gid, e.mtime), (0, 0, 0), "{n}: owner or mtime");
        assert!(
            e.uname.is_empty() && e.gname.is_empty(),
            "{n}: user/group names"
        );
        assert_eq!(e.mode & !0o7777, 0, "{n}: mode {:o}", e.mode);
        assert_eq!(
            e.typeflag == b'5',
            e.name.ends_with('/'),
            "{n}: directory slash"
        );
        seen.insert(n);
    }
    assert_eq!(list.len(), seen.len(), "duplicate entries");
    let link = |n: &str| entry(&t, n).map(|e| (e.typeflag, e.linkname.clone()));
    assert_eq!(link("lib"), Some((b'2', "usr/lib".into())));
    assert_eq!(
        link("usr/lib64/ld-linux-x86-64.so.2"),
        Some((b'2', "/lib/x86_64-linux-gnu/ld-linux-x86-64.so.2".into()))
    );
    let prog = entry(&t, "usr/bin/true").expect("usr/bin/true in the layer");
    assert_eq!(prog.typeflag, b'0');
    assert_eq!(prog.data, fs::read(PROG).unwrap());
    assert_eq!(prog.mode, fs::metadata(PROG).unwrap().mode() & 0o7777);
    assert!(entry(&t, "usr/lib/x86_64-linux-gnu/libc.so.6").is_some());
    assert!(entry(&t, "etc/ssl/certs/ca-certificates.crt").is_some());

    // Provenance: only the packages that own staged files, Conffiles gone,
    // md5sums of the staged files under the paths dpkg lists.
    let status_d: BTreeSet<String> = list
        .iter()
        .filter_map(|n| n.strip_prefix("var/lib/dpkg/status.d/"))
        .map(str::to_string)
        .collect();
    let want: BTreeSet<String> = ["coreutils", "coreutils.md5sums", "libc6", "libc6.md5sums"]
        .iter()
        .map(|x| x.to_string())
        .collect();
    assert_eq!(status_d, want);
    let libc6 = String::from_utf8(
        entry(&t, "var/lib/dpkg/status.d/libc6")
            .unwrap()
            .data
            .clone(),
    )
    .unwrap();
    assert!(libc6.starts_with("Package: libc6\nStatus: install ok installed\n"));
    assert!(libc6.contains("\nVersion: 2.36-9+deb12u4\n") && libc6.contains("\nSource: glibc\n"));
    assert!(!libc6.contains("Conffiles"), "{libc6}");
    assert!(
        libc6.ends_with("\n\n"),
        "an entry ends its paragraph with a blank line"
    );
    let sums = String::from_utf8(
        entry(&t, "var/lib/dpkg/status.d/libc6.md5sums")
            .unwrap()
            .data
            .clone(),
    )
    .unwrap();
    let (libc, ldso) = host_glibc();
    assert_eq!(
        sums,
        format!(
            "{}  lib/x86_64-linux-gnu/ld-linux-x86-64.so.2\n{}  lib/x86_64-linux-gnu/libc.so.6\n",
            md5_hex(&fs::read(ldso).unwrap()),
            md5_hex(&fs::read(libc).unwrap())
        )
    );
    let core = entry(&t, "var/lib/dpkg/status.d/coreutils.md5sums").unwrap();
    assert_eq!(
        String::from_utf8_lossy(&core.data),
        format!("{}  bin/true\n", md5_hex(&fs::read(PROG).unwrap()))
    );

    // SOURCE_DATE_EPOCH sets every time.
    let d = run("d", "d.tar", &[("SOURCE_DATE_EPOCH", "1700000000")]);
    assert_ne!(d, a);
    let (_, _, config, _) = read_layout(&w.join("d"));
    assert_eq!(config["created"], "2023-11-14T22:13:20Z");
    let td = parse_tar(&fs::read(w.join("d.tar")).unwrap());
    assert!(td.iter().all(|e| e.mtime == 1_700_000_000));

    // A second run into the same layout keeps it valid and identical.
    let again = run("a", "a2.tar", &[]);
    assert_eq!(again, a);
    let _ = read_layout(&w.join("a"));
}

#[test]
fn oci_layer_long_names_and_hard_links() {
    let test = "oci_layer_long_names_and_hard_links";
    if lacks_host_glibc(test) {
        return;
    }
    let root = TinyRoot::new();
    let r = root.path();
    let long_dir = format!("data/{}/{}", "d".repeat(60), "e".repeat(60));
    write(&r.join(&long_dir).join("file.txt"), "long\n");
    symlink(
        &format!("/{long_dir}/file.txt"),
        &r.join(format!(
            "{long_dir}/link-to-file-with-a-long-absolute-target"
        )),
    );
    write(&r.join("data/z-first"), "shared\n");
    fs::hard_link(r.join("data/z-first"), r.join("data/a-second")).unwrap();
    let work = tempdir("closure-oci-long-");
    let tar_path = work.path().join("l.tar");
    closure_ok(
        &[
            "--sysroot",
            s(r),
            "--root",
            PROG,
            "--include",
            "/data",
            "--layer",
            s(&tar_path),
        ],
        &[],
    );
    let t = parse_tar(&fs::read(&tar_path).unwrap());
    let f = entry(&t, &format!("{long_dir}/file.txt")).expect("long name present");
    assert!(f.pax, "a name over 100 bytes needs a PAX header");
    assert_eq!(f.data, b"long\n");
    let l = entry(
        &t,
        &format!("{long_dir}/link-to-file-with-a-long-absolute-target"),
    )
    .expect("long link");
    assert_eq!(l.typeflag, b'2');
    assert_eq!(l.linkname, format!("/{long_dir}/file.txt"));
    // One inode, two names: the first in archive order holds the bytes.
    let a = entry(&t, "data/a-second").expect("a-second");
    let z = entry(&t, "data/z-first").expect("z-first");
    assert_eq!((a.typeflag, a.data.as_slice()), (b'0', &b"shared\n"[..]));
    assert_eq!((z.typeflag, z.linkname.as_str()), (b'1', "data/a-second"));

    // GNU tar extracts it as written.
    if lacks(test, "tar") {
        return;
    }
    let x = work.path().join("x");
    fs::create_dir(&x).unwrap();
    let st = Command::new("tar")
        .arg("-xf")
        .arg(&tar_path)
        .arg("-C")
        .arg(&x)
        .status()
        .expect("tar -x");
    assert!(st.success());
    assert_eq!(
        fs::read(x.join(&long_dir).join("file.txt")).unwrap(),
        b"long\n"
    );
    let ia = fs::metadata(x.join("data/a-second")).unwrap().ino();
    let iz = fs::metadata(x.join("data/z-first")).unwrap().ino();
    assert_eq!(ia, iz, "hard link extracted as two inodes");
}

#[test]
fn oci_with_out_stages_the_same_plan() {
    let test = "oci_with_out_stages_the_same_plan";
    if lacks_host_glibc(test) {
        return;
    }
    let root = TinyRoot::new();
    let work = tempdir("closure-oci-both-");
    let out = work.path().join("out");
    let tar = work.path().join("l.tar");
    let stdout = closure_ok(
        &[
            "--sysroot",
            s(root.path()),
            "--root",
            PROG,
            "--out",
            s(&out),
            "--oci",
            s(&work.path().join("img")),
            "--layer",
            s(&tar),
        ],
        &[],
    );
    printed_digest(&stdout);
    let t = parse_tar(&fs::read(&tar).unwrap());
    let staged: BTreeSet<String> = tree_bytes(&out).into_keys().collect();
    let in_layer: BTreeSet<String> = t
        .iter()
        .filter(|e| e.typeflag != b'5')
        .map(|e| e.name.clone())
        .collect();
    assert_eq!(staged, in_layer, "--out tree vs layer entries");
    for e in t.iter().filter(|e| e.typeflag == b'0') {
        assert_eq!(fs::read(out.join(&e.name)).unwrap(), e.data, "{}", e.name);
    }
}

#[test]
fn oci_usage_errors() {
    let test = "oci_usage_errors";
    if lacks_host_glibc(test) {
        return;
    }
    let root = TinyRoot::new();
    let work = tempdir("closure-oci-usage-");
    let base = ["--sysroot", s(root.path()), "--root", PROG];
    let zip = work.path().join("x.zip");
    let (code, _, err) = closure(&[&base[..], &["--layer", s(&zip)]].concat());
    assert_eq!(code, 2, "--layer x.zip: {err}");
    assert!(err.contains(".tar"), "{err}");
    let busy = work.path().join("busy");
    write(&busy.join("something"), "x");
    let (code, _, err) = closure(&[&base[..], &["--oci", s(&busy)]].concat());
    assert_eq!(code, 2, "--oci into a non-empty directory: {err}");
    assert!(err.contains("OCI image layout"), "{err}");
    let (code, _, err) = closure_env(
        &[&base[..], &["--oci", s(&work.path().join("new"))]].concat(),
        &[("SOURCE_DATE_EPOCH", "yesterday")],
    );
    assert_eq!(code, 2, "bad SOURCE_DATE_EPOCH: {err}");
    assert!(err.contains("SOURCE_DATE_EPOCH"), "{err}");
}

// ---------------------------------------------------------------------------------------------
// Consumers: skopeo, umoci, spdx-tools, dpkg-query, deb822
// ---------------------------------------------------------------------------------------------

#[test]
fn oci_skopeo_umoci_and_run_from_unpacked_rootfs() {
    let test = "oci_skopeo_umoci_and_run_from_unpacked_rootfs";
    let curl = "/usr/bin/curl";
    if lacks(test, curl) {
        return;
    }
    let work = tempdir("closure-oci-curl-");
    let img = work.path().join("img");
    let digest = printed_digest(&closure_ok(
        &["--root", curl, "--oci", s(&img), "--user", "65532"],
        &[],
    ));
    let (d, _, config, _) = read_layout(&img);
    assert_eq!(d, digest);
    assert_eq!(config["config"]["Entrypoint"], serde_json::json!([curl]));

    if lacks(test, "skopeo") {
        return;
    }
    let out = Command::new("skopeo")
        .arg("inspect")
        .arg(format!("oci:{}:latest", img.display()))
        .output()
        .expect("skopeo");
    assert!(
        out.status.success(),
        "skopeo inspect: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let info: Value = serde_json::from_slice(&out.stdout).expect("skopeo JSON");
    assert_eq!(info["Digest"].as_str(), Some(digest.as_str()));
    assert_eq!(info["Architecture"], "amd64");
    assert_eq!(info["Os"], "linux");

    if lacks(test, "umoci") {
        return;
    }
    let bundle = work.path().join("bundle");
    let mut cmd = Command::new("umoci");
    cmd.arg("unpack");
    if !is_root() {
        cmd.arg("--rootless");
    }
    let out = cmd
        .arg("--image")
        .arg(format!("{}:latest", img.display()))
        .arg(&bundle)
        .output()
        .expect("umoci");
    assert!(
        out.status.success(),
        "umoci unpack: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let rootfs = bundle.join("rootfs");
    assert_eq!(
        fs::read(rootfs.join("usr/bin/curl")).unwrap(),
        fs::read(curl).unwrap()
    );
    let runtime: Value =
        serde_json::from_slice(&fs::read(bundle.join("config.json")).unwrap()).unwrap();
    assert_eq!(runtime["process"]["user"]["uid"], 65532);
    // The release scanners read, through the image's own link when the
    // host's is one (`/etc/os-release -> ../usr/lib/os-release`).
    let release = Path::new("/etc/os-release").exists();
    if release {
        assert_eq!(
            fs::read(rootfs.join("etc/os-release")).unwrap(),
            fs::read("/etc/os-release").unwrap()
        );
    }
    if skip_unless_root(test) {
        return;
    }
    let (status, stdout, stderr) = run_in_root(&rootfs, &[curl, "--version"], &[]);
    assert!(
        status.success(),
        "curl --version in the unpacked rootfs: {status}\n{stderr}"
    );
    assert!(stdout.starts_with("curl "), "{stdout}");
    if release {
        let (status, stdout, stderr) =
            run_in_root(&rootfs, &[curl, "-s", "file:///etc/os-release"], &[]);
        assert!(status.success(), "curl file:///etc/os-release: {stderr}");
        assert_eq!(stdout, fs::read_to_string("/etc/os-release").unwrap());
    }
}

/// The files that identify the release, as `closure` looks for them.
const OS_IDENTITY: [&str; 4] = [
    "etc/os-release",
    "usr/lib/os-release",
    "etc/debian_version",
    "etc/lsb-release",
];

/// The key's value in os-release text (quotes removed).
fn os_release_value(text: &str, key: &str) -> Option<String> {
    text.lines()
        .filter_map(|l| l.split_once('='))
        .find(|(k, _)| *k == key)
        .map(|(_, v)| v.trim_matches('"').to_string())
}

#[test]
fn oci_provenance_stages_the_release_scanners_identify() {
    let test = "oci_provenance_stages_the_release_scanners_identify";
    let cat = "/usr/bin/cat";
    if lacks(test, cat) || lacks(test, "/var/lib/dpkg/status") || lacks(test, "/etc/os-release") {
        return;
    }
    let work = tempdir("closure-oci-release-");
    let layer = |name: &str, extra: &[&str]| {
        let tar = work.path().join(name);
        let mut args = vec!["--root", cat, "--layer", s(&tar)];
        args.extend_from_slice(extra);
        closure_ok(&args, &[]);
        parse_tar(&fs::read(&tar).unwrap())
    };
    let on_host: Vec<&str> = OS_IDENTITY
        .into_iter()
        .filter(|p| fs::symlink_metadata(Path::new("/").join(p)).is_ok())
        .collect();
    assert!(!on_host.is_empty());

    // Provenance on (the default of an image): each file or link as the
    // host has it, and the package owning them has its status.d entry.
    let t = layer("on.tar", &[]);
    for p in &on_host {
        let host = Path::new("/").join(p);
        let e = entry(&t, p).unwrap_or_else(|| panic!("{p} is not in the layer"));
        if fs::symlink_metadata(&host)
            .unwrap()
            .file_type()
            .is_symlink()
        {
            assert_eq!(e.typeflag, b'2', "{p}");
            assert_eq!(Path::new(&e.linkname), fs::read_link(&host).unwrap(), "{p}");
        } else {
            assert_eq!(e.data, fs::read(&host).unwrap(), "{p}");
        }
    }
    // What Syft and Grype read: /etc/os-release, through the layer's link.
    let mut release = entry(&t, "etc/os-release").expect("etc/os-release");
    if release.typeflag == b'2' {
        let target = Path::new("/etc").join(&release.linkname);
        let target = fs::canonicalize(target).unwrap();
        release = entry(&t, target.to_str().unwrap().trim_start_matches('/'))
            .expect("the link's target is in the layer");
    }
    let text = String::from_utf8_lossy(&release.data).into_owned();
    let host = fs::read_to_string("/etc/os-release").unwrap();
    for key in ["ID", "VERSION_ID"] {
        assert_eq!(
            os_release_value(&text, key),
            os_release_value(&host, key),
            "{key}"
        );
    }
    // Each identity file is in the md5sums of a staged status.d entry.
    let sums: String = t
        .iter()
        .filter(|e| e.name.starts_with("var/lib/dpkg/status.d/") && e.name.ends_with(".md5sums"))
        .map(|e| String::from_utf8_lossy(&e.data).into_owned())
        .collect();
    for p in &on_host {
        let host = Path::new("/").join(p);
        if fs::symlink_metadata(&host)
            .unwrap()
            .file_type()
            .is_symlink()
        {
            continue;
        }
        let line = format!("{}  {p}", md5_hex(&fs::read(&host).unwrap()));
        assert!(sums.lines().any(|l| l == line), "no md5sums line {line:?}");
    }

    // Without provenance (`--no-provenance`, or `--out` alone) none of them.
    let t = layer("off.tar", &["--no-provenance"]);
    for p in OS_IDENTITY {
        assert!(entry(&t, p).is_none(), "{p} staged with --no-provenance");
    }
    let out = work.path().join("out");
    closure_ok(&["--root", cat, "--out", s(&out)], &[]);
    for p in OS_IDENTITY {
        assert!(
            fs::symlink_metadata(out.join(p)).is_err(),
            "{p} staged by --out alone"
        );
    }
    closure_ok(
        &["--root", cat, "--out", s(&out), "--force", "--provenance"],
        &[],
    );
    assert_eq!(
        fs::read(out.join("etc/os-release")).unwrap(),
        fs::read("/etc/os-release").unwrap()
    );

    // A base that identifies itself keeps its own: none are staged.
    let base = work.path().join("base");
    write(&base.join("etc/os-release"), "ID=distroless\n");
    let t = layer("base.tar", &["--base", s(&base)]);
    for p in OS_IDENTITY {
        assert!(
            entry(&t, p).is_none(),
            "{p} staged onto a base with its own"
        );
    }
    // One that does not gets the sysroot's.
    fs::remove_file(base.join("etc/os-release")).unwrap();
    let t = layer("bare.tar", &["--base", s(&base)]);
    for p in &on_host {
        assert!(
            entry(&t, p).is_some(),
            "{p} not staged onto a base without one"
        );
    }
}

/// How to run spdx-tools' validator: `pyspdxtools`, else the module.
fn pyspdxtools() -> Option<Vec<String>> {
    let ok = |argv: &[&str]| {
        Command::new(argv[0])
            .args(&argv[1..])
            .arg("--help")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .map(|s| s.success())
            .unwrap_or(false)
    };
    for argv in [
        vec!["pyspdxtools"],
        vec!["python3", "-m", "spdx_tools.spdx.clitools.pyspdxtools"],
        vec![
            "/usr/bin/python3",
            "-m",
            "spdx_tools.spdx.clitools.pyspdxtools",
        ],
    ] {
        if ok(&argv) {
            return Some(argv.into_iter().map(String::from).collect());
        }
    }
    None
}

#[test]
fn oci_sbom_is_valid_spdx() {
    let test = "oci_sbom_is_valid_spdx";
    let curl = "/usr/bin/curl";
    if lacks(test, curl) || lacks(test, "/var/lib/dpkg/status") {
        return;
    }
    let work = tempdir("closure-oci-sbom-");
    let sbom = work.path().join("curl.spdx.json");
    let tar = work.path().join("curl.tar");
    closure_ok(
        &["--root", curl, "--sbom", s(&sbom), "--layer", s(&tar)],
        &[],
    );
    let doc: Value = serde_json::from_slice(&fs::read(&sbom).unwrap()).expect("SBOM is JSON");
    assert_eq!(doc["spdxVersion"], "SPDX-2.3");
    assert_eq!(doc["dataLicense"], "CC0-1.0");
    let packages = doc["packages"].as_array().unwrap();
    let libc6 = packages
        .iter()
        .find(|p| p["name"] == "libc6")
        .expect("libc6 package");
    let purl = libc6["externalRefs"][0]["referenceLocator"]
        .as_str()
        .unwrap();
    assert!(
        purl.starts_with("pkg:deb/debian/libc6@") && purl.contains("arch=amd64"),
        "{purl}"
    );
    assert!(libc6["versionInfo"].as_str().is_some_and(|v| !v.is_empty()));
    // Every regular file of the layer is a file of the SBOM, with matching checksums.
    let t = parse_tar(&fs::read(&tar).unwrap());
    let files: BTreeMap<String, &Value> = doc["files"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| (f["fileName"].as_str().unwrap().to_string(), f))
        .collect();
    for e in t.iter().filter(|e| e.typeflag == b'0') {
        let f = files
            .get(&format!("./{}", e.name))
            .unwrap_or_else(|| panic!("{} missing from the SBOM", e.name));
        let sums: BTreeMap<&str, &str> = f["checksums"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| {
                (
                    c["algorithm"].as_str().unwrap(),
                    c["checksumValue"].as_str().unwrap(),
                )
            })
            .collect();
        assert_eq!(
            sums.get("SHA256").copied(),
            Some(sha256_hex(&e.data).as_str())
        );
        assert!(sums.contains_key("SHA1"));
    }
    let rels = doc["relationships"].as_array().unwrap();
    let has = |a: &str, ty: &str| {
        rels.iter()
            .any(|r| r["spdxElementId"] == a && r["relationshipType"] == ty)
    };
    assert!(has("SPDXRef-DOCUMENT", "DESCRIBES"));
    assert!(has(libc6["SPDXID"].as_str().unwrap(), "CONTAINS"));
    // The release, as Trivy finds an SBOM's OS: a package whose identifier
    // starts `SPDXRef-OperatingSystem`, named by os-release's ID and
    // VERSION_ID, containing the Debian packages.
    if let Ok(release) = fs::read_to_string("/etc/os-release") {
        let os: Vec<&Value> = packages
            .iter()
            .filter(|p| {
                p["SPDXID"]
                    .as_str()
                    .is_some_and(|i| i.starts_with("SPDXRef-OperatingSystem"))
            })
            .collect();
        assert_eq!(os.len(), 1, "one OS package");
        let os = os[0];
        assert_eq!(os["primaryPackagePurpose"], "OPERATING-SYSTEM");
        assert_eq!(
            os["name"].as_str().map(str::to_string),
            os_release_value(&release, "ID")
        );
        assert_eq!(
            os["versionInfo"].as_str().map(str::to_string),
            os_release_value(&release, "VERSION_ID")
        );
        assert!(rels.iter().any(|r| r["spdxElementId"] == os["SPDXID"]
            && r["relationshipType"] == "CONTAINS"
            && r["relatedSpdxElement"] == libc6["SPDXID"]));
    }

    let Some(tool) = pyspdxtools() else {
        println!("skipping {test}: pyspdxtools (PyPI spdx-tools) is not installed on this host");
        return;
    };
    let out = Command::new(&tool[0])
        .args(&tool[1..])
        .arg("-i")
        .arg(&sbom)
        .output()
        .expect("pyspdxtools");
    assert!(
        out.status.success(),
        "pyspdxtools -i: {}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn oci_dpkg_entries_parse_with_debian_tools() {
    let test = "oci_dpkg_entries_parse_with_debian_tools";
    let curl = "/usr/bin/curl";
    if lacks(test, curl) || lacks(test, "/var/lib/dpkg/status") {
        return;
    }
    let work = tempdir("closure-oci-dpkg-");
    let tar = work.path().join("curl.tar");
    closure_ok(&["--root", curl, "--layer", s(&tar)], &[]);
    let t = parse_tar(&fs::read(&tar).unwrap());
    let entries: BTreeMap<String, Vec<u8>> = t
        .iter()
        .filter_map(|e| {
            e.name
                .strip_prefix("var/lib/dpkg/status.d/")
                .filter(|n| !n.is_empty())
                .map(|n| (n.to_string(), e.data.clone()))
        })
        .collect();
    let pkgs: BTreeSet<String> = entries
        .keys()
        .filter(|n| !n.ends_with(".md5sums"))
        .cloned()
        .collect();
    for want in ["curl", "libc6", "libcurl4"] {
        assert!(
            pkgs.contains(want),
            "no status.d entry for {want}: {pkgs:?}"
        );
    }
    // md5sums: each line names a file dpkg lists, and its sum is that of
    // the staged bytes.
    for (name, sums) in entries.iter().filter(|(n, _)| n.ends_with(".md5sums")) {
        for line in String::from_utf8_lossy(sums).lines() {
            let (sum, path) = line.split_once("  ").expect("md5sums line");
            let canon = fs::canonicalize(format!("/{path}")).expect("listed path exists");
            let staged = canon.to_str().unwrap().trim_start_matches('/');
            let e = entry(&t, staged).unwrap_or_else(|| panic!("{name}: {staged} not staged"));
            let bytes = if e.typeflag == b'1' {
                &entry(&t, &e.linkname).unwrap().data
            } else {
                &e.data
            };
            assert_eq!(sum, md5_hex(bytes), "{name}: {path}");
        }
    }

    // dpkg-query on an admin directory whose status is the entries, concatenated.
    if !lacks(test, "dpkg-query") {
        let admin = work.path().join("admin");
        fs::create_dir_all(admin.join("info")).unwrap();
        let mut status = Vec::new();
        for p in &pkgs {
            status.extend_from_slice(&entries[p]);
        }
        fs::write(admin.join("status"), &status).unwrap();
        let out = Command::new("dpkg-query")
            .arg(format!("--admindir={}", admin.display()))
            .args(["-W", "-f", "${Package}\t${Version}\t${db:Status-Abbrev}\n"])
            .output()
            .expect("dpkg-query");
        assert!(
            out.status.success(),
            "dpkg-query: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let listed: BTreeSet<String> = String::from_utf8_lossy(&out.stdout)
            .lines()
            .map(|l| {
                let f: Vec<&str> = l.split('\t').collect();
                assert_eq!(f.get(2).map(|s| s.trim()), Some("ii"), "{l}");
                f[0].to_string()
            })
            .collect();
        assert_eq!(listed, pkgs, "dpkg-query -W vs the status.d entries");
        let host = Command::new("dpkg-query")
            .args(["-W", "-f", "${Version}", "libc6"])
            .output()
            .expect("dpkg-query on the host");
        let mine = String::from_utf8_lossy(&entries["libc6"]).into_owned();
        assert!(
            mine.contains(&format!(
                "\nVersion: {}\n",
                String::from_utf8_lossy(&host.stdout)
            )),
            "libc6 version differs from the host's dpkg database"
        );
    }

    // python3-debian's deb822 reads each entry as exactly one paragraph.
    let script = "import sys\nfrom debian import deb822\nfor f in sys.argv[1:]:\n    ps = list(deb822.Deb822.iter_paragraphs(open(f, 'rb')))\n    assert len(ps) == 1, f\n    print(ps[0]['Package'])\n";
    let dir = work.path().join("entries");
    fs::create_dir_all(&dir).unwrap();
    let mut files = Vec::new();
    for p in &pkgs {
        let f = dir.join(p);
        fs::write(&f, &entries[p]).unwrap();
        files.push(f);
    }
    let python = ["/usr/bin/python3", "python3"].into_iter().find(|py| {
        Command::new(py)
            .args(["-c", "import debian.deb822"])
            .stderr(Stdio::null())
            .status()
            .map(|s| s.success())
            .unwrap_or(false)
    });
    let Some(python) = python else {
        println!("skipping {test} (deb822 part): python3-debian is not installed on this host");
        return;
    };
    let out = Command::new(python)
        .arg("-c")
        .arg(script)
        .args(&files)
        .output()
        .expect("python3");
    assert!(
        out.status.success(),
        "deb822: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let parsed: BTreeSet<String> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(str::to_string)
        .collect();
    assert_eq!(parsed, pkgs);
}

// ---------------------------------------------------------------------------------------------
// --base
// ---------------------------------------------------------------------------------------------

/// A distroless-like base root holding the host's glibc.
fn glibc_base() -> TempDir {
    let base = tempdir("closure-oci-base-");
    usrmerged_glibc(base.path());
    write(
        &base.path().join("etc/passwd"),
        "root:x:0:0:root:/root:/sbin/nologin\n",
    );
    fs::create_dir_all(base.path().join("tmp")).unwrap();
    base
}

/// `cp -a BASE/. DEST/`, then the layer extracted over it.
fn compose(base: &Path, layer: &Path, dest: &Path) {
    fs::create_dir_all(dest).unwrap();
    let mut src = base.as_os_str().to_owned();
    src.push("/.");
    let cp = Command::new("cp")
        .args(["-a", "--no-dereference"])
        .arg(&src)
        .arg(dest)
        .status()
        .expect("cp");
    assert!(cp.success(), "cp -a base");
    let x = Command::new("tar")
        .arg("-xpf")
        .arg(layer)
        .arg("-C")
        .arg(dest)
        .status()
        .expect("tar");
    assert!(x.success(), "tar -x layer over base");
}

#[test]
fn oci_base_omits_glibc_and_program_runs_composed() {
    let test = "oci_base_omits_glibc_and_program_runs_composed";
    if lacks_host_glibc(test) || lacks(test, "tar") {
        return;
    }
    let root = TinyRoot::new();
    let work = tempdir("closure-oci-compose-");
    // Identical glibc, and a base whose libc differs in bytes but is the
    // same library (same SONAME and versions): both provide glibc.
    let same = glibc_base();
    let patched = glibc_base();
    let libc = patched.path().join("usr/lib/x86_64-linux-gnu/libc.so.6");
    let mut bytes = fs::read(&libc).unwrap();
    bytes.extend_from_slice(&[0u8; 64]);
    fs::write(&libc, bytes).unwrap();
    for (name, base) in [("same", &same), ("patched", &patched)] {
        let tar = work.path().join(format!("{name}.tar"));
        let oci = work.path().join(format!("{name}.oci"));
        let stdout = closure_ok(
            &[
                "--sysroot",
                s(root.path()),
                "--root",
                PROG,
                "--base",
                s(base.path()),
                "--layer",
                s(&tar),
                "--oci",
                s(&oci),
            ],
            &[],
        );
        printed_digest(&stdout);
        let t = parse_tar(&fs::read(&tar).unwrap());
        let n = names(&t);
        for gone in [
            "usr/lib/x86_64-linux-gnu/libc.so.6",
            "usr/lib/x86_64-linux-gnu/ld-linux-x86-64.so.2",
            "usr/lib64/ld-linux-x86-64.so.2",
            "lib",
            "lib64",
            "usr/lib",
        ] {
            assert!(
                !n.contains(gone),
                "{name}: {gone} staged although the base has it: {n:?}"
            );
        }
        assert!(n.contains("usr/bin/true"), "{name}: {n:?}");
        // Provenance describes only what is staged.
        assert!(
            n.contains("var/lib/dpkg/status.d/coreutils"),
            "{name}: {n:?}"
        );
        assert!(!n.contains("var/lib/dpkg/status.d/libc6"), "{name}: {n:?}");
        let composed = work.path().join(format!("{name}.composed"));
        compose(base.path(), &tar, &composed);
        assert!(fs::symlink_metadata(composed.join("lib"))
            .unwrap()
            .file_type()
            .is_symlink());
        if skip_unless_root(test) {
            continue;
        }
        let (status, out, err) = run_in_root(&composed, &[PROG, "--version"], &[]);
        assert!(
            status.success(),
            "{name}: true --version in base+layer: {status}\n{err}"
        );
        assert!(out.contains("true (GNU coreutils)"), "{name}: {out}");
    }
}

#[test]
fn oci_base_layout_follows_its_usrmerge_links() {
    let test = "oci_base_layout_follows_its_usrmerge_links";
    if lacks_host_glibc(test) || lacks(test, "tar") {
        return;
    }
    // A non-merged sysroot: real /lib and /lib64 directories.
    let sys = tempdir("closure-oci-nonmerged-");
    let r = sys.path();
    let (libc, ldso) = host_glibc();
    copy_file(&libc, &r.join("lib/x86_64-linux-gnu/libc.so.6"));
    copy_file(&ldso, &r.join("lib/x86_64-linux-gnu/ld-linux-x86-64.so.2"));
    copy_file(&ldso, &r.join("lib64/ld-linux-x86-64.so.2"));
    copy_file(Path::new(PROG), &r.join("usr/bin/true"));
    write(&r.join("lib/x86_64-linux-gnu/extra.dat"), "extra\n");
    let base = glibc_base();
    let work = tempdir("closure-oci-merge-");
    let tar = work.path().join("l.tar");
    closure_ok(
        &[
            "--sysroot",
            s(r),
            "--root",
            PROG,
            "--include",
            "/lib/x86_64-linux-gnu/extra.dat",
            "--base",
            s(base.path()),
            "--layer",
            s(&tar),
        ],
        &[],
    );
    let t = parse_tar(&fs::read(&tar).unwrap());
    let n = names(&t);
    assert!(
        !n.iter().any(|x| x == "lib"
            || x.starts_with("lib/")
            || x == "lib64"
            || x.starts_with("lib64/")),
        "the layer must not replace the base's /lib and /lib64 links: {n:?}"
    );
    let extra =
        entry(&t, "usr/lib/x86_64-linux-gnu/extra.dat").expect("mapped through lib -> usr/lib");
    assert_eq!(extra.data, b"extra\n");
    for d in ["usr", "usr/lib", "usr/lib/x86_64-linux-gnu"] {
        assert_eq!(entry(&t, d).map(|e| e.typeflag), Some(b'5'), "{d}: {n:?}");
    }
    assert!(!n.contains("usr/lib/x86_64-linux-gnu/libc.so.6"));
    let composed = work.path().join("composed");
    compose(base.path(), &tar, &composed);
    assert!(fs::symlink_metadata(composed.join("lib"))
        .unwrap()
        .file_type()
        .is_symlink());
    assert_eq!(
        fs::read(composed.join("lib/x86_64-linux-gnu/extra.dat")).unwrap(),
        b"extra\n"
    );
    if skip_unless_root(test) {
        return;
    }
    let (status, _, err) = run_in_root(&composed, &[PROG], &[]);
    assert!(status.success(), "true in base+layer: {status}\n{err}");
}

#[test]
fn oci_base_with_older_glibc_is_a_version_problem() {
    let test = "oci_base_with_older_glibc_is_a_version_problem";
    if lacks_host_glibc(test) {
        return;
    }
    let root = TinyRoot::new();
    // The base's libc.so.6 defines versions up to GLIBC_2.17 only.
    let base = glibc_base();
    let old = elfgen::build(&ElfSpec {
        kind: Kind::Shared,
        soname: Some("libc.so.6".into()),
        verdefs: [
            "GLIBC_2.2.5",
            "GLIBC_2.3",
            "GLIBC_2.3.4",
            "GLIBC_2.4",
            "GLIBC_2.14",
            "GLIBC_2.17",
        ]
        .iter()
        .map(|v| v.to_string())
        .collect(),
        defined: vec![("__libc_start_main".into(), Some("GLIBC_2.2.5".into()))],
        ..ElfSpec::default()
    });
    fs::write(base.path().join("usr/lib/x86_64-linux-gnu/libc.so.6"), old).unwrap();
    let work = tempdir("closure-oci-old-");
    let oci = work.path().join("img");
    let (code, stdout, err) = closure(&[
        "--sysroot",
        s(root.path()),
        "--root",
        PROG,
        "--base",
        s(base.path()),
        "--oci",
        s(&oci),
    ]);
    assert_eq!(code, 1, "stdout:\n{stdout}\nstderr:\n{err}");
    assert!(err.contains("GLIBC_2.34"), "{err}");
    assert!(err.contains("libc.so.6") && err.contains("--base"), "{err}");
    assert!(
        err.contains("GLIBC_2.17"),
        "the newest version the base has: {err}"
    );
    assert!(
        !oci.join("index.json").exists(),
        "an image was written despite the problem"
    );
    assert!(stdout.is_empty(), "{stdout}");
    // The same check without any output asked for.
    let (code, _, err2) = closure(&[
        "--sysroot",
        s(root.path()),
        "--root",
        PROG,
        "--base",
        s(base.path()),
        "--format",
        "list",
    ]);
    assert_eq!(code, 1, "{err2}");
    assert!(err2.contains("GLIBC_2.34"), "{err2}");
}

/// The raw `security.capability` value of a host file, if any.
fn caps_of(path: &Path) -> Option<Vec<u8>> {
    closure::audit::caps::read_raw(path, path).expect("read capabilities")
}

/// A file's capabilities travel in the layer as a PAX
/// `SCHILY.xattr.security.capability` record (what GNU tar and umoci read),
/// byte for byte, and `umoci unpack` and `tar --xattrs` restore them. Fails
/// if the layer leaves them out (as it did before) or alters the value.
#[test]
fn oci_layer_carries_file_capabilities() {
    let test = "oci_layer_carries_file_capabilities";
    if lacks_host_glibc(test) || skip_unless_root(test) {
        return;
    }
    let work = tempdir("closure-oci-caps-");
    let sys = work.path().join("root");
    usrmerged_glibc(&sys);
    let prog = sys.join("usr/bin/pinger");
    copy_file(Path::new(PROG), &prog);
    let set = Command::new("setcap")
        .arg("cap_net_raw+ep")
        .arg(&prog)
        .output();
    match &set {
        Ok(o) if o.status.success() => {}
        other => {
            println!("skipping {test}: cannot set a file capability here ({other:?})");
            return;
        }
    }
    let want = caps_of(&prog).expect("the sysroot's file has capabilities");
    let img = work.path().join("img");
    closure_ok(
        &[
            "--sysroot",
            s(&sys),
            "--root",
            "/usr/bin/pinger",
            "--oci",
            s(&img),
        ],
        &[],
    );
    let (_, _, _, layer) = read_layout(&img);
    let tar = gunzip(&layer);
    let mut record = b" SCHILY.xattr.security.capability=".to_vec();
    record.extend_from_slice(&want);
    record.push(b'\n');
    let found = tar.windows(record.len()).filter(|w| *w == record).count();
    assert_eq!(found, 1, "the layer holds the record once");

    let untarred = work.path().join("untarred");
    fs::create_dir(&untarred).expect("mkdir");
    let layer_file = work.path().join("layer.tar");
    fs::write(&layer_file, &tar).expect("write layer");
    let out = Command::new("tar")
        .args(["--xattrs", "--xattrs-include=*", "-xpf"])
        .arg(&layer_file)
        .arg("-C")
        .arg(&untarred)
        .output()
        .expect("tar");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        caps_of(&untarred.join("usr/bin/pinger")),
        Some(want.clone())
    );

    if lacks(test, "umoci") {
        return;
    }
    let bundle = work.path().join("bundle");
    let out = Command::new("umoci")
        .arg("unpack")
        .arg("--image")
        .arg(format!("{}:latest", img.display()))
        .arg(&bundle)
        .output()
        .expect("umoci");
    assert!(
        out.status.success(),
        "umoci unpack: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        caps_of(&bundle.join("rootfs/usr/bin/pinger")),
        Some(want),
        "umoci unpack"
    );
}
