//! Provenance from the sysroot's dpkg database: which Debian package owns
//! each staged file.
//!
//! Owns reading `/var/lib/dpkg/status` (deb822 paragraphs) and
//! `/var/lib/dpkg/info/*.list` inside the sysroot, matching listed paths to
//! staged files, and writing the distroless convention that scanners read:
//! one `/var/lib/dpkg/status.d/<package>` file per package that contributed
//! a file (its status paragraph as dpkg keeps it, without `Conffiles`, which
//! names files that are not staged) and `<package>.md5sums` with the MD5 of
//! each staged file of that package. The sysroot's release files
//! ([`OS_IDENTITY`]) go with them, or scanners know the packages but not the
//! release to look their advisories up in.
//!
//! dpkg records paths as the package ships them; on a merged-/usr system it
//! lists `/lib/x86_64-linux-gnu/libc.so.6` while the staged file is
//! `/usr/lib/x86_64-linux-gnu/libc.so.6`. A listed path matches a staged
//! file when its directory, resolved inside the sysroot, is the staged
//! file's directory and the names are equal. Listed paths are only resolved
//! when their file name is the name of a staged file, so a large database
//! costs one read of each list.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::io::Read;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use md5::{Digest, Md5};

use crate::error::Result;
use crate::resolve::bytes_path;
use crate::rootfs::RootFs;
use crate::stage::{Item, Plan};

/// The dpkg administrative directory inside the sysroot.
pub const ADMINDIR: &str = "/var/lib/dpkg";
/// Where the per-package entries go in the staged root.
pub const STATUS_D: &str = "/var/lib/dpkg/status.d";

/// Largest status file or list read (bytes).
const READ_LIMIT: u64 = 256 << 20;

/// One installed package, as its status paragraph says.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Package {
    /// `Package`.
    pub name: String,
    /// `Architecture` (`amd64`, `all`, …).
    pub arch: String,
    /// `Version`.
    pub version: String,
    /// `Source` (name only, without a version in parentheses), if given.
    pub source: Option<String>,
    /// `Maintainer`, if given.
    pub maintainer: Option<String>,
    /// `Homepage`, if given.
    pub homepage: Option<String>,
    /// The paragraph as stored, without `Conffiles`, ending in a newline.
    pub paragraph: String,
}

/// A package with the staged files it owns.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Owned {
    /// The package.
    pub package: Package,
    /// The name of its entry in `status.d` (the package name, or
    /// `name:arch` when two architectures of one name contribute).
    pub entry: String,
    /// (path as dpkg lists it, staged plan path, canonical sysroot source),
    /// sorted.
    pub files: Vec<(Vec<u8>, PathBuf, PathBuf)>,
}

/// The dpkg database of a sysroot.
#[derive(Debug, Clone, Default)]
pub struct Database {
    /// Installed packages.
    pub packages: Vec<Package>,
    /// In-root paths of the `info/*.list` files and the package each
    /// belongs to (index into `packages`).
    lists: Vec<(PathBuf, usize)>,
}

/// What the sysroot's `/etc/os-release` says, for package URLs.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct OsRelease {
    /// `ID` (`debian`, `ubuntu`).
    pub id: Option<String>,
    /// `VERSION_ID` (`12`).
    pub version_id: Option<String>,
}

impl OsRelease {
    /// Reads `/etc/os-release` (else `/usr/lib/os-release`) of the sysroot;
    /// empty when neither is readable.
    pub fn read(fs: &RootFs) -> OsRelease {
        let bytes = fs
            .read(Path::new("/etc/os-release"), 1 << 20)
            .or_else(|_| fs.read(Path::new("/usr/lib/os-release"), 1 << 20))
            .unwrap_or_default();
        let text = String::from_utf8_lossy(&bytes);
        let mut r = OsRelease::default();
        for line in text.lines() {
            let Some((k, v)) = line.split_once('=') else {
                continue;
            };
            let v = v.trim().trim_matches('"').trim_matches('\'').to_string();
            if v.is_empty() {
                continue;
            }
            match k.trim() {
                "ID" => r.id = Some(v),
                "VERSION_ID" => r.version_id = Some(v),
                _ => {}
            }
        }
        r
    }
}

/// Splits deb822 text into paragraphs of (field name, value) with the raw
/// lines of each field kept for rewriting.
fn paragraphs(text: &str) -> Vec<Vec<(String, String, String)>> {
    let mut out = Vec::new();
    let mut cur: Vec<(String, String, String)> = Vec::new();
    for line in text.lines() {
        if line.trim().is_empty() {
            if !cur.is_empty() {
                out.push(std::mem::take(&mut cur));
            }
            continue;
        }
        if line.starts_with(' ') || line.starts_with('\t') {
            if let Some(last) = cur.last_mut() {
                last.1.push('\n');
                last.1.push_str(line);
                last.2.push_str(line);
                last.2.push('\n');
            }
            continue;
        }
        if line.starts_with('#') {
            continue;
        }
        let (k, v) = match line.split_once(':') {
            Some((k, v)) => (k.trim().to_string(), v.trim().to_string()),
            None => (line.trim().to_string(), String::new()),
        };
        cur.push((k, v, format!("{line}\n")));
    }
    if !cur.is_empty() {
        out.push(cur);
    }
    out
}

fn field<'a>(p: &'a [(String, String, String)], name: &str) -> Option<&'a str> {
    p.iter()
        .find(|(k, _, _)| k.eq_ignore_ascii_case(name))
        .map(|(_, v, _)| v.as_str())
}

impl Database {
    /// Reads the database of `fs`; `None` when the sysroot has no
    /// `/var/lib/dpkg/status`.
    pub fn read(fs: &RootFs) -> Result<Option<Database>> {
        let status_path = Path::new(ADMINDIR).join("status");
        let Ok(bytes) = fs.read(&status_path, READ_LIMIT) else {
            return Ok(None);
        };
        let text = String::from_utf8_lossy(&bytes);
        let mut db = Database::default();
        for p in paragraphs(&text) {
            let (Some(name), Some(version)) = (field(&p, "Package"), field(&p, "Version")) else {
                continue;
            };
            let installed = field(&p, "Status")
                .map(|s| s.split_whitespace().nth(2) == Some("installed"))
                .unwrap_or(false);
            if !installed {
                continue;
            }
            let paragraph: String = p
                .iter()
                .filter(|(k, _, _)| !k.eq_ignore_ascii_case("Conffiles"))
                .map(|(_, _, raw)| raw.as_str())
                .collect();
            db.packages.push(Package {
                name: name.to_string(),
                arch: field(&p, "Architecture").unwrap_or("").to_string(),
                version: version.to_string(),
                source: field(&p, "Source")
                    .and_then(|s| s.split_whitespace().next())
                    .map(str::to_string),
                maintainer: field(&p, "Maintainer").map(str::to_string),
                homepage: field(&p, "Homepage").map(str::to_string),
                paragraph,
            });
        }
        let info = Path::new(ADMINDIR).join("info");
        if let Ok((_, names)) = fs.read_dir(&info) {
            for n in names {
                let b = n.as_bytes();
                let Some(stem) = b.strip_suffix(b".list") else {
                    continue;
                };
                let stem = String::from_utf8_lossy(stem);
                let (pkg, arch) = match stem.split_once(':') {
                    Some((p, a)) => (p.to_string(), Some(a.to_string())),
                    None => (stem.to_string(), None),
                };
                let found = db
                    .packages
                    .iter()
                    .position(|p| p.name == pkg && arch.as_ref().is_none_or(|a| *a == p.arch));
                if let Some(i) = found {
                    db.lists.push((info.join(&n), i));
                }
            }
        }
        Ok(Some(db))
    }

    /// The packages owning the regular files of `plan` (copies from the
    /// sysroot and hard links to them), each with its files, sorted by
    /// package name. A file listed by several packages goes to the first
    /// list read (lists are read in name order).
    pub fn owners(&self, fs: &RootFs, plan: &Plan) -> Vec<Owned> {
        // Staged files by file name: (canonical source, plan path).
        let mut by_name: HashMap<Vec<u8>, Vec<(PathBuf, PathBuf)>> = HashMap::new();
        for (path, item) in &plan.items {
            let source = match item {
                Item::File { source, .. } => source.clone(),
                Item::Hardlink { to } => match plan.items.get(to) {
                    Some(Item::File { source, .. }) => source.clone(),
                    _ => continue,
                },
                _ => continue,
            };
            let Some(name) = source.file_name() else {
                continue;
            };
            by_name
                .entry(name.as_bytes().to_vec())
                .or_default()
                .push((source, path.clone()));
        }
        let mut dirs: HashMap<Vec<u8>, Option<PathBuf>> = HashMap::new();
        let mut taken: BTreeSet<PathBuf> = BTreeSet::new();
        let mut owned: BTreeMap<usize, Vec<(Vec<u8>, PathBuf, PathBuf)>> = BTreeMap::new();
        for (list, pkg) in &self.lists {
            let Ok(bytes) = fs.read(list, READ_LIMIT) else {
                continue;
            };
            for line in bytes.split(|&c| c == b'\n') {
                let Some(slash) = line.iter().rposition(|&c| c == b'/') else {
                    continue;
                };
                let (dir, name) = (&line[..slash], &line[slash + 1..]);
                let Some(cands) = by_name.get(name) else {
                    continue;
                };
                let canon_dir = dirs
                    .entry(dir.to_vec())
                    .or_insert_with(|| {
                        let d = if dir.is_empty() { b"/".as_slice() } else { dir };
                        fs.resolve(&bytes_path(d)).ok().map(|r| r.canonical)
                    })
                    .clone();
                let Some(canon_dir) = canon_dir else {
                    continue;
                };
                for (source, staged) in cands {
                    if source.parent() == Some(canon_dir.as_path()) && !taken.contains(staged) {
                        taken.insert(staged.clone());
                        owned.entry(*pkg).or_default().push((
                            line.to_vec(),
                            staged.clone(),
                            source.clone(),
                        ));
                    }
                }
            }
        }
        let mut names: BTreeMap<&str, usize> = BTreeMap::new();
        for &i in owned.keys() {
            *names.entry(self.packages[i].name.as_str()).or_default() += 1;
        }
        let mut out: Vec<Owned> = owned
            .into_iter()
            .map(|(i, mut files)| {
                files.sort();
                let p = &self.packages[i];
                let entry = if names.get(p.name.as_str()).copied().unwrap_or(0) > 1 {
                    format!("{}:{}", p.name, p.arch)
                } else {
                    p.name.clone()
                };
                Owned {
                    package: p.clone(),
                    entry,
                    files,
                }
            })
            .collect();
        out.sort_by(|a, b| a.entry.cmp(&b.entry));
        out
    }
}

/// MD5 of a sysroot file as lowercase hex.
pub fn md5_file(fs: &RootFs, source: &Path) -> Result<String> {
    let f = fs.open(source).map_err(|e| crate::error::Error::Output {
        path: source.to_path_buf(),
        reason: format!("cannot read from the sysroot: {e}"),
    })?;
    let mut h = Md5::new();
    let mut buf = vec![0u8; 1 << 16];
    let mut r = &f.file;
    loop {
        let n = r
            .read(&mut buf)
            .map_err(|e| crate::error::Error::io(source, e))?;
        if n == 0 {
            break;
        }
        h.update(&buf[..n]);
    }
    Ok(super::hex(&h.finalize()))
}

/// The files that say which distribution and release the staged packages
/// come from, where scanners look for them: Syft and Grype read
/// `/etc/os-release`, else `/usr/lib/os-release`; Trivy knows a Debian root
/// by `/etc/debian_version` and an Ubuntu one by `/etc/lsb-release`. Without
/// them the `status.d` entries are packages of no known release, which
/// Trivy does not match against any advisories ("OS is not detected").
pub const OS_IDENTITY: [&str; 4] = [
    "/etc/os-release",
    "/usr/lib/os-release",
    "/etc/debian_version",
    "/etc/lsb-release",
];

/// Adds the sysroot's [`OS_IDENTITY`] files to `plan`, each as it is opened
/// by name (a link such as `/etc/os-release -> ../usr/lib/os-release` and
/// its target), paths mapped through `base`'s directory links. A base that
/// has any of them identifies the image itself: nothing is added then.
/// Returns whether anything was added.
pub fn add_os_identity(fs: &RootFs, base: Option<&RootFs>, plan: &mut Plan) -> Result<bool> {
    if let Some(base) = base {
        let has = |p: &&str| base.symlink_metadata(&super::base::map_path(base, Path::new(p)));
        if OS_IDENTITY.iter().any(|p| has(p).is_ok()) {
            return Ok(false);
        }
    }
    let mut own = Plan::default();
    for p in OS_IDENTITY {
        let p = Path::new(p);
        // Present, and not a dangling or looping link.
        if fs.kind(p).is_ok() {
            own.add_path(fs, p)?;
        }
    }
    let added = !own.items.is_empty();
    for (path, item) in own.items {
        let path = match base {
            Some(base) => super::base::map_path(base, &path),
            None => path,
        };
        plan.items.entry(path).or_insert(item);
    }
    Ok(added)
}

/// Adds `status.d/<entry>` and `status.d/<entry>.md5sums` for every owning
/// package to `plan`.
pub fn add_to_plan(fs: &RootFs, plan: &mut Plan, owned: &[Owned]) -> Result<()> {
    for o in owned {
        let mut status = o.package.paragraph.clone();
        if !status.ends_with('\n') {
            status.push('\n');
        }
        // A blank line ends the paragraph, as in dpkg's status file, so the
        // entries concatenate into a valid status file.
        status.push('\n');
        let mut sums = Vec::new();
        for (listed, _, source) in &o.files {
            let md5 = md5_file(fs, source)?;
            sums.extend_from_slice(md5.as_bytes());
            sums.extend_from_slice(b"  ");
            let rel = listed.strip_prefix(b"/").unwrap_or(listed);
            sums.extend_from_slice(rel);
            sums.push(b'\n');
        }
        let dir = Path::new(STATUS_D);
        plan.add_generated(fs, &dir.join(&o.entry), status.into_bytes(), 0o644);
        plan.add_generated(fs, &dir.join(format!("{}.md5sums", o.entry)), sums, 0o644);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paragraphs_keep_continuations_and_drop_nothing_else() {
        let text = "Package: a\nStatus: install ok installed\nConffiles:\n /etc/a 0123\nDescription: x\n more\n\nPackage: b\n";
        let p = paragraphs(text);
        assert_eq!(p.len(), 2);
        assert_eq!(field(&p[0], "Description"), Some("x\n more"));
        assert_eq!(p[0][2].2, "Conffiles:\n /etc/a 0123\n");
        assert_eq!(field(&p[1], "package"), Some("b"));
    }
}
