//! What glibc only loads at run time, chosen from configuration files.
//!
//! Owns reading `/etc/nsswitch.conf` (which NSS services are named) and the
//! gconv configuration (`gconv-modules`, `gconv-modules.d/*.conf`: which
//! module files implement which character sets). The graph turns these
//! into dlopen-style loads (`graph::build`); `.note.dlopen` parsing lives in
//! `elf::notes`. Nothing here resolves libraries.

use std::path::{Path, PathBuf};

use crate::error::{Error, Result};
use crate::rootfs::RootFs;

/// The services named in an `nsswitch.conf`, in first-seen order, without
/// `[STATUS=action]` blocks.
pub fn nss_services(conf: &[u8]) -> Vec<Vec<u8>> {
    let mut out: Vec<Vec<u8>> = Vec::new();
    for line in conf.split(|&b| b == b'\n') {
        let line = line.split(|&b| b == b'#').next().unwrap_or_default();
        let Some(colon) = line.iter().position(|&b| b == b':') else {
            continue;
        };
        let mut in_action = false;
        for word in line[colon + 1..]
            .split(|b| b.is_ascii_whitespace())
            .filter(|w| !w.is_empty())
        {
            if word.starts_with(b"[") {
                in_action = !word.ends_with(b"]");
                continue;
            }
            if in_action {
                in_action = !word.ends_with(b"]");
                continue;
            }
            if !out.iter().any(|s| s == word) {
                out.push(word.to_vec());
            }
        }
    }
    out
}

/// Which gconv modules to stage.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum GconvSpec {
    /// Every module of the gconv directory.
    All,
    /// Modules converting from or to these character sets (aliases allowed).
    Charsets(Vec<String>),
}

impl GconvSpec {
    /// Parses `all` or a comma-separated list.
    pub fn parse(s: &str) -> GconvSpec {
        if s.eq_ignore_ascii_case("all") {
            GconvSpec::All
        } else {
            GconvSpec::Charsets(
                s.split(',')
                    .filter(|c| !c.is_empty())
                    .map(|c| c.trim_end_matches('/').to_ascii_uppercase())
                    .collect(),
            )
        }
    }
}

/// The gconv files to stage for a spec: configuration files, and module
/// files (ELF, loaded by full path).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct GconvSelection {
    /// The gconv directory used.
    pub dir: PathBuf,
    /// `gconv-modules`, `gconv-modules.cache`, `gconv-modules.d/*.conf`.
    pub config: Vec<PathBuf>,
    /// Module `.so` files.
    pub modules: Vec<PathBuf>,
    /// Requested character sets no module handles.
    pub unknown: Vec<String>,
}

/// Candidate gconv directories for a target `$LIB` value.
pub fn gconv_dirs(lib: &[u8]) -> Vec<PathBuf> {
    let lib = String::from_utf8_lossy(lib);
    vec![
        PathBuf::from(format!("/usr/{lib}/gconv")),
        PathBuf::from(format!("/{lib}/gconv")),
        PathBuf::from("/usr/lib/gconv"),
        PathBuf::from("/usr/lib64/gconv"),
    ]
}

/// Chooses the gconv files for `spec` from the first of `dirs` that holds
/// a `gconv-modules` file or directory.
pub fn gconv_select(fs: &RootFs, dirs: &[PathBuf], spec: &GconvSpec) -> Result<GconvSelection> {
    let Some(dir) = dirs.iter().find(|d| {
        fs.kind(&d.join("gconv-modules")).is_ok() || fs.is_dir(&d.join("gconv-modules.d"))
    }) else {
        return Err(Error::Usage(format!(
            "--gconv: no gconv directory in the sysroot (looked in {})",
            dirs.iter()
                .map(|d| d.display().to_string())
                .collect::<Vec<_>>()
                .join(", ")
        )));
    };
    let mut sel = GconvSelection {
        dir: dir.clone(),
        ..Default::default()
    };
    for name in ["gconv-modules", "gconv-modules.cache"] {
        let p = dir.join(name);
        if fs
            .kind(&p)
            .is_ok_and(|(_, k)| k == crate::rootfs::EntryKind::File)
        {
            sel.config.push(p);
        }
    }
    if let Ok((_, names)) = fs.read_dir(&dir.join("gconv-modules.d")) {
        for n in names {
            if n.as_encoded_bytes().ends_with(b".conf") {
                sel.config.push(dir.join("gconv-modules.d").join(n));
            }
        }
    }
    // (from, to, file) modules and alias → name.
    let mut modules: Vec<(String, String, String)> = Vec::new();
    let mut aliases: Vec<(String, String)> = Vec::new();
    for conf in &sel.config {
        if conf.ends_with("gconv-modules.cache") {
            continue;
        }
        let Ok(text) = fs.read(conf, 4 << 20) else {
            continue;
        };
        for line in String::from_utf8_lossy(&text).lines() {
            let line = line.split('#').next().unwrap_or_default();
            let w: Vec<&str> = line.split_whitespace().collect();
            let norm = |s: &str| s.trim_end_matches('/').to_ascii_uppercase();
            match w.as_slice() {
                ["alias", a, t, ..] => aliases.push((norm(a), norm(t))),
                ["module", f, t, file, ..] => modules.push((norm(f), norm(t), file.to_string())),
                _ => {}
            }
        }
    }
    let mut files: Vec<String> = Vec::new();
    match spec {
        GconvSpec::All => files.extend(modules.iter().map(|m| m.2.clone())),
        GconvSpec::Charsets(sets) => {
            for c in sets {
                let name = aliases
                    .iter()
                    .find(|(a, _)| a == c)
                    .map(|(_, t)| t.clone())
                    .unwrap_or_else(|| c.clone());
                let hits: Vec<String> = modules
                    .iter()
                    .filter(|(f, t, _)| *f == name || *t == name)
                    .map(|m| m.2.clone())
                    .collect();
                if hits.is_empty() && !builtin_charset(&name) {
                    sel.unknown.push(c.clone());
                }
                files.extend(hits);
            }
        }
    }
    files.sort();
    files.dedup();
    for f in files {
        let p = if f.starts_with('/') {
            PathBuf::from(format!("{f}.so"))
        } else {
            dir.join(format!("{f}.so"))
        };
        if fs.kind(Path::new(&p)).is_ok() {
            sel.modules.push(p);
        }
    }
    Ok(sel)
}

/// Character sets glibc converts without any module.
fn builtin_charset(name: &str) -> bool {
    matches!(
        name,
        "INTERNAL"
            | "UTF-8"
            | "ISO-10646/UTF8"
            | "UCS-4"
            | "UCS-4LE"
            | "ISO-10646/UCS4"
            | "UCS-2"
            | "UCS-2LE"
            | "UNICODEBIG"
            | "UNICODELITTLE"
            | "ANSI_X3.4-1968"
            | "ASCII"
            | "WCHAR_T"
            | "UTF-16"
            | "UTF-32"
            | "UTF-7"
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nss_services_skip_actions_and_comments() {
        let conf = b"passwd: files systemd\n# hosts: nis\nhosts: files mdns4_minimal [NOTFOUND=return] dns myhostname\nnetgroup: nis\n";
        let s: Vec<String> = nss_services(conf)
            .into_iter()
            .map(|v| String::from_utf8(v).unwrap())
            .collect();
        assert_eq!(
            s,
            [
                "files",
                "systemd",
                "mdns4_minimal",
                "dns",
                "myhostname",
                "nis"
            ]
        );
    }
}
