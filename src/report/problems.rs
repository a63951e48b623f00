//! The problems of a closure, in words a person can act on (for stderr).
//!
//! For each missing library: who needs it, every place searched in order
//! with what was found there and why it was passed over, and the notes that
//! apply (RUNPATH not inherited, NODEFLIB, stale cache, …). For each missing
//! symbol version: the object, the library and the newest version it has.
//! Ends with one summary line per kind of problem.

use std::io::{self, Write};

use crate::graph::{DepGraph, RefusedWhy};
use crate::resolve::{Tried, Via};
use crate::util::show;

/// Writes every problem of `g`; writes nothing for a clean graph.
pub fn render(g: &DepGraph, out: &mut dyn Write) -> io::Result<()> {
    let missing = g.missing();
    for n in &missing {
        let Some(m) = &n.missing else { continue };
        match &m.fatal {
            Some((path, reason)) => writeln!(
                out,
                "error: {} (needed by {}): the loader would abort on {}: {reason}",
                show(&m.soname),
                show(&m.needed_by),
                show(path)
            )?,
            // A run-time load's name found whose `dlopen` fails (its notes
            // say why).
            None if (m.searched.iter())
                .any(|s| s.candidates.iter().any(|(_, t)| *t == Tried::Used)) =>
            {
                writeln!(
                    out,
                    "error: {} (needed by {}): found, but cannot be loaded",
                    show(&m.soname),
                    show(&m.needed_by)
                )?
            }
            None => writeln!(
                out,
                "error: {} (needed by {}): not found",
                show(&m.soname),
                show(&m.needed_by)
            )?,
        }
        if !m.searched.is_empty() {
            writeln!(out, "  searched, in order:")?;
        }
        for s in &m.searched {
            let source = match (s.via, &s.owner) {
                (Via::Rpath, Some(o)) => format!("DT_RPATH of {}", show(o)),
                (Via::Runpath, Some(o)) => format!("DT_RUNPATH of {}", show(o)),
                (Via::LdLibraryPath, _) => "--library-path".into(),
                (Via::Cache, _) => "/etc/ld.so.cache".into(),
                (Via::Default, _) => "default directory".into(),
                (Via::Direct, _) => "path given in DT_NEEDED".into(),
                (v, _) => v.as_str().into(),
            };
            let what: Vec<String> = s
                .candidates
                .iter()
                .filter(|(_, t)| *t != Tried::Absent)
                .map(|(p, t)| match t {
                    Tried::Skipped(w) => format!("{} skipped: {w}", show(p)),
                    Tried::Fatal(w) => format!("{} aborts the load: {w}", show(p)),
                    Tried::ListEnded(w) => {
                        format!("{}: {w}; rest of this list not searched", show(p))
                    }
                    Tried::Used => format!("{} used", show(p)),
                    Tried::Denied => {
                        format!("{} exists but cannot be read (permission denied)", show(p))
                    }
                    Tried::Absent => String::new(),
                })
                .collect();
            let dir = if s.via == Via::Cache {
                if s.candidates.is_empty() {
                    "ld.so.cache: no entry".to_string()
                } else {
                    "ld.so.cache".to_string()
                }
            } else if s.via == Via::Direct {
                // The path the name expanded to (its tokens replaced).
                s.candidates
                    .first()
                    .map_or_else(|| show(&s.dir), |(p, _)| show(p))
            } else if s.dir.is_empty() {
                "(empty entry: the working directory)".to_string()
            } else {
                show(&s.dir)
            };
            if what.is_empty() {
                writeln!(out, "    {dir}  [{source}]")?;
            } else {
                writeln!(out, "    {dir}  [{source}]: {}", what.join("; "))?;
            }
        }
        for note in &m.notes {
            writeln!(out, "  note: {note}")?;
        }
    }
    for r in &g.refused {
        let then = match r.why {
            RefusedWhy::Verneed(_) => "glibc refuses to load it",
            RefusedWhy::IsaLevel { .. } | RefusedWhy::Pie | RefusedWhy::Executable => {
                "the loader stops the program"
            }
        };
        writeln!(
            out,
            "error: {}: {}: {then}",
            show(&r.object),
            r.why.describe()
        )?;
    }
    for v in &g.missing_versions {
        if let Some(n) = v.unsupported_verdef {
            writeln!(
                out,
                "error: {} requires version {} of {} ({}): unsupported version {n} of Verdef \
                 record (glibc meets it before a definition of that version)",
                show(&v.object),
                show(&v.version),
                show(&v.library),
                show(&v.library_path)
            )?;
            continue;
        }
        write!(
            out,
            "error: {} requires version {} of {} ({}), which does not define it",
            show(&v.object),
            show(&v.version),
            show(&v.library),
            show(&v.library_path)
        )?;
        match &v.highest {
            Some(h) => writeln!(out, "; it provides up to {}", show(h))?,
            None => writeln!(out)?,
        }
    }
    for u in &g.undefined_symbols {
        let version = match &u.version {
            Some(v) => format!(", version {}", show(v)),
            None => String::new(),
        };
        // A `dlopen` that maps the object fails instead of the start-up.
        let by = match &u.loaded_by {
            Some(p) => format!(", loaded at run time by {}: that dlopen fails", show(p)),
            None => String::new(),
        };
        writeln!(
            out,
            "error: undefined symbol: {}{version} (needed by {}{by})",
            show(&u.symbol),
            show(&u.object)
        )?;
    }
    let mut parts = Vec::new();
    if !missing.is_empty() {
        parts.push(plural(
            missing.len(),
            "missing library",
            "missing libraries",
        ));
    }
    if !g.refused.is_empty() {
        parts.push(plural(g.refused.len(), "refused object", "refused objects"));
    }
    if !g.missing_versions.is_empty() {
        parts.push(plural(
            g.missing_versions.len(),
            "missing symbol version",
            "missing symbol versions",
        ));
    }
    if !g.undefined_symbols.is_empty() {
        parts.push(plural(
            g.undefined_symbols.len(),
            "undefined symbol",
            "undefined symbols",
        ));
    }
    if !parts.is_empty() {
        writeln!(out, "summary: {}", parts.join(", "))?;
    }
    Ok(())
}

fn plural(n: usize, one: &str, many: &str) -> String {
    format!("{n} {}", if n == 1 { one } else { many })
}
