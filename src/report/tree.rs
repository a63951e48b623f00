//! `--format tree` (the default): an indented tree per root, each edge
//! annotated with the search step that satisfied it. An object is expanded
//! under the edge that loaded it in that root's load; other references are
//! one line (already loaded); missing libraries say so inline.

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::io::{self, Write};

use petgraph::stable_graph::NodeIndex;

use super::edge_label;
use crate::graph::{DepGraph, NodeKind};
use crate::resolve::Via;
use crate::util::show;

/// Writes the tree of every root.
pub fn render(g: &DepGraph, out: &mut dyn Write) -> io::Result<()> {
    for (ri, &root) in g.root_nodes.iter().enumerate() {
        let node = &g.graph[root];
        write!(out, "{}", show(&node.path))?;
        if let Some(line) = &node.script {
            write!(out, " (script: #!{})", show(line))?;
        } else if node
            .info
            .as_ref()
            .is_some_and(|i| !i.is_dynamic() && i.interp.is_none())
        {
            write!(out, " (static)")?;
        }
        writeln!(out)?;
        if node.script.is_some() {
            // A script's programs (`#!` interpreter, `env NAME`) are roots
            // of their own: each shown with its own load.
            for (child, e) in g.children(root) {
                let c = &g.graph[child];
                writeln!(
                    out,
                    "    {} => {} [{}]",
                    show(&e.name),
                    show(&c.path),
                    edge_label(e)
                )?;
                if let Some(ci) = g.root_nodes.iter().position(|&r| r == child) {
                    Tree::new(g, child, ci).walk(child, 2, &mut vec![child], out)?;
                }
            }
            continue;
        }
        Tree::new(g, root, ri).walk(root, 1, &mut vec![root], out)?;
    }
    Ok(())
}

/// One root's tree.
struct Tree<'g> {
    g: &'g DepGraph,
    /// The root's index.
    root: usize,
    /// The edge (requester, name) through which the root's load first
    /// reaches each object: [`loading_edges`].
    loaded_by: BTreeMap<NodeIndex, (NodeIndex, Vec<u8>)>,
}

/// For one root, the edge through which its load first reaches each object,
/// as the loader loads: breadth-first over the start-up edges in
/// `DT_NEEDED` order, then the run-time loads. The merged graph holds every
/// root's edges, and whether an edge found its object already loaded
/// depends on the root.
fn loading_edges(
    g: &DepGraph,
    root: NodeIndex,
    ri: usize,
) -> BTreeMap<NodeIndex, (NodeIndex, Vec<u8>)> {
    let mut loaded_by = BTreeMap::new();
    for run_time in [false, true] {
        let mut seen = BTreeSet::from([root]);
        let mut q = VecDeque::from([root]);
        while let Some(n) = q.pop_front() {
            for (child, e) in g.children(n) {
                if !g.graph[child].roots.contains(&ri) || (e.via.is_runtime() && !run_time) {
                    continue;
                }
                loaded_by
                    .entry(child)
                    .or_insert_with(|| (n, e.name.to_vec()));
                if seen.insert(child) {
                    q.push_back(child);
                }
            }
        }
    }
    loaded_by
}

impl<'g> Tree<'g> {
    fn new(g: &'g DepGraph, root: NodeIndex, ri: usize) -> Tree<'g> {
        Tree {
            g,
            root: ri,
            loaded_by: loading_edges(g, root, ri),
        }
    }

    fn walk(
        &self,
        n: NodeIndex,
        depth: usize,
        shown: &mut Vec<NodeIndex>,
        out: &mut dyn Write,
    ) -> io::Result<()> {
        let g = self.g;
        let mut names: BTreeSet<&[u8]> = BTreeSet::new();
        for (child, e) in g.children(n) {
            let c = &g.graph[child];
            // Another root's edge, or the same name again.
            if !c.roots.contains(&self.root) || !names.insert(&e.name) {
                continue;
            }
            let indent = "    ".repeat(depth);
            if c.kind == NodeKind::Missing {
                let why = match c.missing.as_ref().and_then(|m| m.fatal.as_ref()) {
                    Some((p, r)) => format!("loader aborts on {}: {r}", show(p)),
                    None => "not found".into(),
                };
                writeln!(out, "{indent}{} => {why}", show(&e.name))?;
                continue;
            }
            // Expanded under the edge that loaded it; a later reference is
            // one line: already loaded, or (another name that turned out
            // to be the same file) shown above.
            let loads = self
                .loaded_by
                .get(&child)
                .is_some_and(|(from, name)| *from == n && **name == *e.name);
            let label = if loads || !e.already_loaded {
                edge_label(e)
            } else {
                let mut loaded = e.clone();
                loaded.via = Via::Loaded;
                edge_label(&loaded)
            };
            let again = !loads || shown.contains(&child);
            let see_above = again && (loads || !e.already_loaded) && !g.children(child).is_empty();
            writeln!(
                out,
                "{indent}{} => {} [{label}]{}",
                show(&e.name),
                show(&c.path),
                if see_above { " (see above)" } else { "" }
            )?;
            if !again {
                shown.push(child);
                self.walk(child, depth + 1, shown, out)?;
            }
        }
        Ok(())
    }
}
