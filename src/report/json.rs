//! `--format json`: one object, schema version 1 (see docs/cli-contract.md).
//!
//! The only module that knows serde: it maps the graph onto plain DTOs.
//! Byte strings are shown as UTF-8 (lossily, for the rare non-UTF-8 name).
//! Everything is sorted, so equal inputs give equal bytes.

use std::io::{self, Write};

use serde::Serialize;

use crate::graph::DepGraph;
use crate::resolve::Tried;
use crate::util::show;

#[derive(Serialize)]
struct Report {
    schema_version: u32,
    sysroot: String,
    roots: Vec<String>,
    objects: Vec<Object>,
    missing: Vec<Missing>,
    missing_versions: Vec<MissingVersion>,
    undefined_symbols: Vec<UndefinedSymbol>,
    /// Plugins' symbols only an `RTLD_GLOBAL` open of another plugin binds
    /// (an extension, with `--check-symbols`: only when any; warnings).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    global_only_symbols: Vec<GlobalOnlySymbol>,
    /// Objects the loader refuses to load (an extension: only when any).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    refused: Vec<Refused>,
    warnings: Vec<String>,
    /// The attack-surface findings of what would be staged (`crate::audit`).
    #[serde(skip_serializing_if = "Option::is_none")]
    audit: Option<Vec<AuditFinding>>,
}

#[derive(Serialize)]
struct Object {
    path: String,
    realpath: Option<String>,
    kind: &'static str,
    soname: Option<String>,
    needed: Vec<String>,
    found_via: &'static str,
    needed_by: Vec<String>,
    roots: Vec<String>,
    size: u64,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    hwcaps_variants: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    script: Option<String>,
}

#[derive(Serialize)]
struct Missing {
    soname: String,
    needed_by: String,
    searched: Vec<String>,
    tried: Vec<Candidate>,
    notes: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    fatal: Option<Fatal>,
    roots: Vec<String>,
}

#[derive(Serialize)]
struct Candidate {
    path: String,
    result: String,
}

#[derive(Serialize)]
struct Fatal {
    path: String,
    reason: String,
}

#[derive(Serialize)]
struct MissingVersion {
    version: String,
    library: String,
    library_path: String,
    object: String,
    highest_defined: Option<String>,
    /// Why the loader fails the requirement when it is not "not found" (an
    /// extension: only then).
    #[serde(skip_serializing_if = "Option::is_none")]
    reason: Option<String>,
}

#[derive(Serialize)]
struct Refused {
    object: String,
    reason: String,
}

#[derive(Serialize)]
struct UndefinedSymbol {
    symbol: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    version: Option<String>,
    object: String,
    /// The object whose `dlopen` maps `object` (absent: the start-up).
    #[serde(skip_serializing_if = "Option::is_none")]
    loaded_by: Option<String>,
}

#[derive(Serialize)]
struct GlobalOnlySymbol {
    symbol: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    version: Option<String>,
    object: String,
    loaded_by: String,
    /// The objects other `dlopen`s map that would bind it.
    defined_by: Vec<String>,
}

fn tried_text(t: &Tried) -> String {
    match t {
        Tried::Absent => "absent".into(),
        Tried::Denied => "skipped: exists but cannot be read (permission denied)".into(),
        Tried::Skipped(w) => format!("skipped: {w}"),
        Tried::Fatal(w) => format!("fatal: {w}"),
        Tried::ListEnded(w) => format!("search list ended: {w}"),
        Tried::Used => "used".into(),
    }
}

/// The sysroot to print in reports; set by the caller through [`render_with_sysroot`].
pub fn render(g: &DepGraph, out: &mut dyn Write) -> io::Result<()> {
    render_with_sysroot(g, "/", out)
}

/// Writes the JSON report, naming `sysroot` as given by the user.
pub fn render_with_sysroot(g: &DepGraph, sysroot: &str, out: &mut dyn Write) -> io::Result<()> {
    render_with_audit(g, sysroot, None, out)
}

#[derive(Serialize)]
struct AuditFinding {
    category: &'static str,
    path: String,
    detail: String,
    pulled_in_by: Vec<AuditOrigin>,
    forbidden: bool,
}

#[derive(Serialize)]
struct AuditOrigin {
    kind: &'static str,
    path: String,
}

#[derive(Serialize)]
struct AuditReport {
    schema_version: u32,
    root: String,
    summary: String,
    audit: Vec<AuditFinding>,
}

fn audit_findings(a: &crate::audit::Audit) -> Vec<AuditFinding> {
    a.findings
        .iter()
        .map(|f| AuditFinding {
            category: f.category.name(),
            path: f.path.display().to_string(),
            detail: f.detail.clone(),
            pulled_in_by: f
                .pulled_in_by
                .iter()
                .map(|o| AuditOrigin {
                    kind: o.kind(),
                    path: o.value(),
                })
                .collect(),
            forbidden: a.is_forbidden(f),
        })
        .collect()
}

/// Writes the report of `closure audit DIR --format json`: `schema_version`,
/// `root` (as given), `summary` (the surface line) and `audit`.
pub fn render_audit(a: &crate::audit::Audit, root: &str, out: &mut dyn Write) -> io::Result<()> {
    let report = AuditReport {
        schema_version: 1,
        root: root.to_string(),
        summary: a.summary(),
        audit: audit_findings(a),
    };
    serde_json::to_writer_pretty(&mut *out, &report).map_err(io::Error::other)?;
    out.write_all(b"\n")
}

/// Writes the JSON report with an `audit` array when `audit` is given.
pub fn render_with_audit(
    g: &DepGraph,
    sysroot: &str,
    audit: Option<&crate::audit::Audit>,
    out: &mut dyn Write,
) -> io::Result<()> {
    let root_names = |set: &std::collections::BTreeSet<usize>| -> Vec<String> {
        set.iter().map(|&i| show(&g.roots[i])).collect()
    };
    let objects = g
        .objects()
        .into_iter()
        .map(|n| Object {
            path: show(&n.path),
            realpath: n.canonical.as_ref().map(|c| c.display().to_string()),
            kind: match n.kind {
                crate::graph::NodeKind::Root => "root",
                crate::graph::NodeKind::Interpreter => "interpreter",
                crate::graph::NodeKind::Library => "library",
                crate::graph::NodeKind::Missing => "missing",
            },
            soname: n.info.as_ref().and_then(|i| i.soname.as_deref()).map(show),
            needed: n
                .info
                .as_ref()
                .map(|i| i.needed.iter().map(|s| show(s)).collect())
                .unwrap_or_default(),
            found_via: n.via.as_str(),
            needed_by: g
                .index
                .get(&n.path)
                .map(|&ix| g.needed_by(ix).into_iter().map(show).collect())
                .unwrap_or_default(),
            roots: root_names(&n.roots),
            size: n.size,
            hwcaps_variants: n.variants.iter().map(|v| show(&v.path)).collect(),
            script: n.script.as_deref().map(show),
        })
        .collect();
    let missing = g
        .missing()
        .into_iter()
        .filter_map(|n| {
            let m = n.missing.as_ref()?;
            Some(Missing {
                soname: show(&m.soname),
                needed_by: show(&m.needed_by),
                searched: m.searched.iter().map(|s| show(&s.dir)).collect(),
                tried: m
                    .searched
                    .iter()
                    .flat_map(|s| s.candidates.iter())
                    .map(|(p, t)| Candidate {
                        path: show(p),
                        result: tried_text(t),
                    })
                    .collect(),
                notes: m.notes.clone(),
                fatal: m.fatal.as_ref().map(|(p, r)| Fatal {
                    path: show(p),
                    reason: r.clone(),
                }),
                roots: root_names(&n.roots),
            })
        })
        .collect();
    let missing_versions = g
        .missing_versions
        .iter()
        .map(|v| MissingVersion {
            version: show(&v.version),
            library: show(&v.library),
            library_path: show(&v.library_path),
            object: show(&v.object),
            highest_defined: v.highest.as_deref().map(show),
            reason: v
                .unsupported_verdef
                .map(|n| format!("unsupported version {n} of Verdef record")),
        })
        .collect();
    let report = Report {
        schema_version: 1,
        sysroot: sysroot.to_string(),
        roots: g.roots.iter().map(|r| show(r)).collect(),
        objects,
        missing,
        missing_versions,
        undefined_symbols: g
            .undefined_symbols
            .iter()
            .map(|u| UndefinedSymbol {
                symbol: show(&u.symbol),
                version: u.version.as_deref().map(show),
                object: show(&u.object),
                loaded_by: u.loaded_by.as_deref().map(show),
            })
            .collect(),
        global_only_symbols: (g.global_only_symbols.iter())
            .map(|u| GlobalOnlySymbol {
                symbol: show(&u.symbol),
                version: u.version.as_deref().map(show),
                object: show(&u.object),
                loaded_by: show(&u.loaded_by),
                defined_by: u.defined_by.iter().map(|d| show(d)).collect(),
            })
            .collect(),
        refused: g
            .refused
            .iter()
            .map(|r| Refused {
                object: show(&r.object),
                reason: r.why.describe(),
            })
            .collect(),
        warnings: g.warnings.clone(),
        audit: audit.map(audit_findings),
    };
    serde_json::to_writer_pretty(&mut *out, &report).map_err(|e| match e.io_error_kind() {
        Some(kind) => io::Error::new(kind, e),
        None => io::Error::other(e),
    })?;
    out.write_all(b"\n")
}
