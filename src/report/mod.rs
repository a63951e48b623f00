//! Rendering a [`DepGraph`] for people and programs.
//!
//! Owns the output formats: one module per format, each a function writing
//! to `&mut dyn Write`. Renderers never compute closure facts themselves;
//! they read the graph. Only [`json`] knows serde. The problems summary for
//! stderr ([`problems`]) lives here too, so the words are the same everywhere.

pub mod dot;
pub mod json;
pub mod ldd;
pub mod list;
pub mod problems;
pub mod size;
pub mod steps;
pub mod tree;
pub mod why;

use std::io::{self, Write};

use petgraph::stable_graph::NodeIndex;

use crate::graph::{DepGraph, Edge, NodeKind};
use crate::resolve::Via;
use crate::util::show;

/// The report formats of `--format`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// Indented dependency tree with how each edge was found.
    Tree,
    /// One path per line.
    List,
    /// What `ldd` prints.
    Ldd,
    /// One JSON object (schema version 1).
    Json,
    /// Graphviz.
    Dot,
    /// The attack surface of what would be staged (`crate::audit`; it
    /// needs the sysroot and the staging plan, so [`render`] cannot make it).
    Audit,
    /// Bytes per file, the total, and per root (without the sysroot share).
    Size,
}

/// Renders `g` in `format`.
pub fn render(g: &DepGraph, format: Format, out: &mut dyn Write) -> io::Result<()> {
    match format {
        Format::Tree => tree::render(g, out),
        Format::List => list::render(g, out),
        Format::Ldd => ldd::render(g, out),
        Format::Json => json::render(g, out),
        Format::Dot => dot::render(g, out),
        Format::Audit => Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            "the audit format needs the sysroot: use closure::audit::cli::audit_unstaged",
        )),
        Format::Size => size::render(g, None, out),
    }
}

/// A short bracketed description of how an edge was satisfied.
pub fn edge_label(e: &Edge) -> String {
    let owner = e.owner.as_deref().map(show).unwrap_or_default();
    match e.via {
        Via::Rpath => format!("rpath of {owner}"),
        Via::Runpath => format!("runpath of {owner}"),
        Via::LdLibraryPath => "LD_LIBRARY_PATH".into(),
        Via::Cache => "ld.so.cache".into(),
        Via::Default => "default dir".into(),
        Via::Interpreter => "interpreter".into(),
        Via::Loaded => "already loaded".into(),
        Via::Direct => "path".into(),
        Via::Root => "root".into(),
        Via::Include => "include".into(),
        Via::DlopenNote
        | Via::DlopenString
        | Via::Nsswitch
        | Via::Libgcc
        | Via::Gconv
        | Via::Preload => match &e.detail {
            Some(d) => format!("{} {d}", e.via.as_str()),
            None => e.via.as_str().into(),
        },
    }
}

/// The load order of one root: breadth-first over edges in `DT_NEEDED`
/// order, with the first name each object was reached by; the interpreter
/// last (as `ld.so` lists it).
pub fn load_order(g: &DepGraph, root: NodeIndex) -> Vec<(NodeIndex, Vec<u8>)> {
    let mut seen = vec![root];
    let mut order: Vec<(NodeIndex, Vec<u8>)> = Vec::new();
    let mut interp: Option<(NodeIndex, Vec<u8>)> = None;
    let mut q = std::collections::VecDeque::from([root]);
    while let Some(n) = q.pop_front() {
        for (child, e) in g.children(n) {
            if seen.contains(&child) {
                continue;
            }
            seen.push(child);
            match g.graph[child].kind {
                NodeKind::Interpreter if e.via == Via::Interpreter => {
                    interp = Some((child, e.name.clone()));
                    continue;
                }
                NodeKind::Missing => {}
                _ => q.push_back(child),
            }
            order.push((child, e.name.clone()));
        }
    }
    order.extend(interp);
    order
}
