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
    let owner = e.owner().map(show).unwrap_or_default();
    match e.via {
        Via::Rpath => format!("rpath of {owner}"),
        Via::Runpath => format!("runpath of {owner}"),
        Via::LdLibraryPath => "LD_LIBRARY_PATH".into(),
        Via::Cache => "ld.so.cache".into(),
        Via::Default => "default dir".into(),
        Via::Interpreter => "interpreter".into(),
        Via::Loaded => match e.detail() {
            Some(d) => format!("already loaded: {d}"),
            None => "already loaded".into(),
        },
        Via::Direct => "path".into(),
        Via::Root => "root".into(),
        Via::Include => "include".into(),
        Via::DlopenNote
        | Via::DlopenString
        | Via::Nsswitch
        | Via::Libgcc
        | Via::Gconv
        | Via::Preload
        | Via::Audit => match e.detail() {
            Some(d) => format!("{} {d}", e.via.as_str()),
            None => e.via.as_str().into(),
        },
    }
}

/// The objects one root loads at start-up, in the order the loader's link
/// map holds them (what `ld.so` lists when tracing), each with the name the
/// loader knows it by: the name it was first loaded by, for a `DT_NEEDED`
/// path the path its tokens expanded to, for the interpreter its own path.
///
/// The map is filled breadth-first over edges in `DT_NEEDED` order
/// (preloads first), a name not found taking its place where it was asked
/// for. Run-time loads are not in it. The interpreter is in it only when a
/// start-up edge other than `PT_INTERP` leads to it (a `DT_NEEDED` naming
/// it, as libc's does): glibc takes itself out of the map while loading
/// and puts itself back right after the object before it in the search
/// order, which leaves out names not found (`rtld.c`, checked against the
/// loader: `support::oracle::assert_same_ldd_lines`). When nothing names
/// it, glibc 2.36 and earlier leave it out and glibc 2.41 lists it first
/// (`DepGraph::root_rtld_alone`) — unless the program names nothing at all:
/// the loader then says "statically linked", as earlier releases do
/// (checked on 2.41 and 2.43 under qemu). An interpreter that cannot be
/// used comes last, as not found.
pub fn load_order(g: &DepGraph, root: NodeIndex, ri: usize) -> Vec<(NodeIndex, Vec<u8>)> {
    let mut seen = std::collections::BTreeSet::from([root]);
    let mut order: Vec<(NodeIndex, Vec<u8>)> = Vec::new();
    let mut q = std::collections::VecDeque::from([root]);
    // A program's interpreter that cannot be used: no loader runs at all,
    // but the name is listed last as not found.
    let mut no_interp = None;
    while let Some(n) = q.pop_front() {
        let mut names = std::collections::BTreeSet::new();
        for (child, e) in g.children(n) {
            // Root `ri`'s edges, each name once: another root's load can
            // have resolved the same name from `n` elsewhere.
            if !g.graph[child].roots.contains(&ri) || !names.insert(&e.name) {
                continue;
            }
            if e.via == Via::Interpreter && g.graph[child].kind == NodeKind::Missing {
                no_interp = Some((child, e.name.to_vec()));
            }
            if e.via == Via::Interpreter || e.via.outside_link_map() || !seen.insert(child) {
                continue;
            }
            let node = &g.graph[child];
            if node.kind != NodeKind::Missing {
                q.push_back(child);
            }
            // A `DT_NEEDED` path has its tokens expanded before the loader
            // opens it, and is known by what it expanded to (a preload
            // keeps the name as given).
            let name = match (e.via, node.kind) {
                (_, NodeKind::Missing) if e.name.contains(&b'/') => {
                    opened_path(node).map_or(&*e.name, Vec::as_slice)
                }
                (Via::Direct, _) => &node.path[..],
                _ => &e.name[..],
            };
            order.push((child, name.to_vec()));
        }
    }
    let interp = order
        .iter()
        .position(|&(n, _)| g.graph[n].kind == NodeKind::Interpreter);
    if let Some(at) = interp {
        // Known first by its own path (`PT_INTERP`), whatever names it.
        let (n, _) = order.remove(at);
        let entry = (n, g.graph[n].path.clone());
        let after = order[..at]
            .iter()
            .rposition(|&(n, _)| g.graph[n].kind != NodeKind::Missing)
            .map_or(0, |p| p + 1);
        order.insert(after, entry);
    } else if !order.is_empty() && g.root_rtld_alone.get(ri).copied().unwrap_or(false) {
        let own = g
            .children(root)
            .into_iter()
            .find(|(c, e)| e.via == Via::Interpreter && g.graph[*c].kind == NodeKind::Interpreter);
        if let Some((n, _)) = own {
            order.insert(0, (n, g.graph[n].path.clone()));
        }
    }
    order.extend(no_interp);
    order
}

/// The path a name with a `/` expanded to, for a missing node: what the
/// loader tried to open.
fn opened_path(node: &crate::graph::Node) -> Option<&Vec<u8>> {
    let m = node.missing.as_ref()?;
    let s = m.searched.iter().find(|s| s.via == Via::Direct)?;
    s.candidates.first().map(|(p, _)| p)
}
