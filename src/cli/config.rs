//! Raw arguments → validated library options, in exactly one place.
//!
//! Nothing outside this module sees clap types. It also expands directory
//! roots into the files under them (sorted, links not followed).

use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use super::{Args, DlopenPriorityArg, FormatArg};
use crate::elf::notes::Priority;
use crate::error::{Error, Result};
use crate::graph::BuildOptions;
use crate::report::Format;
use crate::resolve::{Hwcaps, Options};
use crate::rootfs::{EntryKind, RootFs};

/// Validated settings of one run.
#[derive(Debug, Clone)]
pub struct Config {
    /// Host path of the sysroot.
    pub sysroot: PathBuf,
    /// Roots as in-root paths.
    pub roots: Vec<PathBuf>,
    /// Report format.
    pub format: Format,
    /// Search options.
    pub resolve: Options,
    /// Graph options.
    pub build: BuildOptions,
    /// Suppress warnings.
    pub quiet: bool,
    /// Staging output directory.
    pub out: Option<PathBuf>,
    /// `--include` arguments.
    pub includes: Vec<String>,
    /// `--base-files`.
    pub base_files: bool,
    /// `--force`.
    pub force: bool,
    /// `--link`.
    pub link: bool,
    /// `--allow-missing`.
    pub allow_missing: bool,
    /// `--oci`, `--layer`, `--sbom`, `--base`, `--user`, provenance.
    pub oci: crate::oci::OciOptions,
    /// `--check-symbols`.
    pub check_symbols: bool,
    /// Check the staged root after staging (no `--no-verify`).
    pub verify: bool,
    /// `--verbose`: print every search step.
    pub verbose: bool,
    /// `--forbid`: audit findings that are problems.
    pub forbid: std::collections::BTreeSet<crate::audit::Category>,
}

impl Config {
    /// Validates `args`.
    pub fn from_args(a: &Args) -> Result<Config> {
        let hwcaps = parse_hwcaps(&a.hwcaps)?;
        if !a.cwd.starts_with('/') {
            return Err(Error::Usage(
                "--cwd must be an absolute path inside the sysroot".into(),
            ));
        }
        let roots = a
            .roots
            .iter()
            .map(|r| {
                if r.is_absolute() {
                    r.clone()
                } else {
                    Path::new("/").join(r)
                }
            })
            .collect();
        Ok(Config {
            sysroot: a.sysroot.clone(),
            roots,
            format: match a.format {
                FormatArg::Tree => Format::Tree,
                FormatArg::List => Format::List,
                FormatArg::Ldd => Format::Ldd,
                FormatArg::Json => Format::Json,
                FormatArg::Dot => Format::Dot,
                FormatArg::Size => Format::Size,
                FormatArg::Audit => Format::Audit,
            },
            resolve: Options {
                library_path: a.library_path.as_ref().map(|s| s.as_bytes().to_vec()),
                preload: a.preload.as_ref().map(|s| s.as_bytes().to_vec()),
                audit: a.ld_audit.as_ref().map(|s| s.as_bytes().to_vec()),
                platform: a.platform.as_ref().map(|s| s.as_bytes().to_vec()),
                hwcaps,
                cwd: a.cwd.as_bytes().to_vec(),
                use_cache: !a.inhibit_cache,
                secure: a.secure,
                // Only `--verbose` prints a found name's search.
                found_searches: a.verbose,
            },
            build: BuildOptions {
                dlopen_priority: dlopen_priority(a.dlopen_priority),
                dlopen_features: a.dlopen_features.clone(),
                dlopen_strings: a.dlopen_strings,
                libgcc: true,
                gconv: a.gconv.as_deref().map(crate::runtime::GconvSpec::parse),
                ..BuildOptions::default()
            },
            quiet: a.quiet,
            out: a.out.clone(),
            includes: a.includes.clone(),
            base_files: a.base_files,
            force: a.force,
            link: a.link,
            allow_missing: a.allow_missing,
            oci: oci_options(a)?,
            check_symbols: a.check_symbols,
            verify: !a.no_verify,
            verbose: a.verbose,
            forbid: crate::audit::Category::parse_list(&a.forbid)?,
        })
    }
}

/// `--hwcaps`: `baseline`, or active glibc-hwcaps names, most capable first.
pub fn parse_hwcaps(arg: &str) -> Result<Hwcaps> {
    if arg == "baseline" {
        return Ok(Hwcaps::Baseline);
    }
    let names: Vec<Vec<u8>> = arg
        .split(',')
        .filter(|s| !s.is_empty())
        .map(|s| s.as_bytes().to_vec())
        .collect();
    if names.iter().any(|n| n.contains(&b'/')) {
        return Err(Error::Usage(format!(
            "--hwcaps {arg}: names cannot contain '/'"
        )));
    }
    Ok(Hwcaps::Active(names))
}

/// Roots from this many on are looked up on all cores ([`expand_roots`]);
/// `cli::main` starts the thread pool early for such a command line.
pub const PARALLEL_LOOKUPS: usize = 64;

/// Expands roots: a directory stands for every ELF file or script below it
/// (sorted by path; symlinks to such files count, links to directories are
/// not descended); anything else is kept as given. A root that does not
/// exist, or a directory holding no ELF file or script, is an error.
///
/// With `only_programs` (for `--include`), plain files that are not ELF or
/// scripts are dropped and a directory may hold none.
pub fn expand_roots(fs: &RootFs, roots: &[PathBuf], only_programs: bool) -> Result<Vec<Vec<u8>>> {
    // A script only counts when it can be executed: an included module
    // with a `#!` line but no execute bit is data.
    let is_program = |p: &Path| {
        let exec = || {
            fs.metadata(p).is_ok_and(|(_, m)| {
                std::os::unix::fs::PermissionsExt::mode(&m.permissions()) & 0o111 != 0
            })
        };
        fs.read_head(p, 4).is_ok_and(|h| {
            h.starts_with(b"\x7fELF") || (h.starts_with(b"#!") && (!only_programs || exec()))
        })
    };
    // Many roots (a whole /usr/bin) are looked up on all cores first; the
    // loop below keeps their order and reports the first bad one.
    let metas: Vec<_> = if roots.len() >= PARALLEL_LOOKUPS {
        use rayon::prelude::*;
        roots.par_iter().map(|r| fs.kind(r)).collect()
    } else {
        roots.iter().map(|r| fs.kind(r)).collect()
    };
    let mut out = Vec::new();
    for (r, meta) in roots.iter().zip(metas) {
        let (resolved, kind) = meta.map_err(|e| Error::Lookup {
            path: r.clone(),
            source: e,
        })?;
        if kind != EntryKind::Dir {
            if !only_programs || is_program(r) {
                out.push(r.as_os_str().as_bytes().to_vec());
            }
            continue;
        }
        let before = out.len();
        let entries = fs
            .walk_tree(&resolved.canonical)
            .map_err(|e| Error::Lookup {
                path: r.clone(),
                source: e,
            })?;
        for (in_root, kind) in entries {
            // Regular files and symlinks (kept as links when staging);
            // what a link leads to is checked below, inside the root.
            if !matches!(kind, EntryKind::File | EntryKind::Symlink) {
                continue;
            }
            // Only ELF files and scripts are entry points.
            if is_program(&in_root) {
                out.push(in_root.as_os_str().as_bytes().to_vec());
            }
        }
        if out.len() == before && !only_programs {
            return Err(Error::BadRoot {
                path: r.clone(),
                reason: "directory holds no ELF file or script".into(),
            });
        }
    }
    Ok(out)
}

/// The container-output options of `a`; `SOURCE_DATE_EPOCH` (the only
/// environment variable read) gives every timestamp.
fn oci_options(a: &Args) -> Result<crate::oci::OciOptions> {
    if let Some(l) = &a.layer {
        crate::oci::layer_is_gzip(l)?;
    }
    let mtime = match std::env::var_os("SOURCE_DATE_EPOCH") {
        None => 0,
        Some(v) => v
            .to_str()
            .and_then(|s| s.trim().parse::<u64>().ok())
            .ok_or_else(|| {
                Error::Usage(format!(
                    "SOURCE_DATE_EPOCH={}: not a number of seconds",
                    v.to_string_lossy()
                ))
            })?,
    };
    Ok(crate::oci::OciOptions {
        layout: a.oci.clone(),
        layer: a.layer.clone(),
        sbom: a.sbom.clone(),
        base: a.base.clone(),
        user: a.user.clone(),
        provenance: match (a.provenance, a.no_provenance) {
            (_, true) => Some(false),
            (true, false) => Some(true),
            (false, false) => None,
        },
        mtime,
        tag: "latest".into(),
    })
}

/// The lowest `.note.dlopen` priority followed (`None`: none).
pub fn dlopen_priority(p: DlopenPriorityArg) -> Option<Priority> {
    match p {
        DlopenPriorityArg::Required => Some(Priority::Required),
        DlopenPriorityArg::Recommended => Some(Priority::Recommended),
        DlopenPriorityArg::Suggested => Some(Priority::Suggested),
        DlopenPriorityArg::None => None,
    }
}
