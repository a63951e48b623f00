//! `--why SONAME|PATH`: every chain of `DT_NEEDED` edges from a root to an
//! object, so a person can see who drags a library in.
//!
//! A target matches a node by its path, canonical path, SONAME, or (for a
//! missing node) the name sought. Chains are simple paths (no object twice),
//! enumerated depth-first in `DT_NEEDED` order from each root, at most
//! [`MAX_CHAINS`] of them.

use std::io::{self, Write};

use petgraph::stable_graph::NodeIndex;

use crate::graph::DepGraph;
use crate::util::show;

/// Most chains printed.
pub const MAX_CHAINS: usize = 200;

/// Nodes that `target` names.
pub fn matches(g: &DepGraph, target: &[u8]) -> Vec<NodeIndex> {
    g.index
        .values()
        .copied()
        .filter(|&i| {
            let n = &g.graph[i];
            n.path == target
                || n.canonical
                    .as_ref()
                    .is_some_and(|c| c.as_os_str().as_encoded_bytes() == target)
                || n.info.as_ref().and_then(|i| i.soname.as_deref()) == Some(target)
        })
        .collect()
}

/// Every chain from a root to one of `targets`, as lists of (node, name).
pub fn chains(g: &DepGraph, targets: &[NodeIndex]) -> Vec<Vec<(NodeIndex, Vec<u8>)>> {
    let mut out = Vec::new();
    for &root in &g.root_nodes {
        let mut path = vec![(root, g.graph[root].path.clone())];
        dfs(g, targets, &mut path, &mut out);
    }
    out.sort();
    out.dedup();
    out
}

fn dfs(
    g: &DepGraph,
    targets: &[NodeIndex],
    path: &mut Vec<(NodeIndex, Vec<u8>)>,
    out: &mut Vec<Vec<(NodeIndex, Vec<u8>)>>,
) {
    if out.len() >= MAX_CHAINS {
        return;
    }
    let (last, _) = path[path.len() - 1];
    if targets.contains(&last) && path.len() > 1 {
        out.push(path.clone());
        return;
    }
    for (child, e) in g.children(last) {
        if path.iter().any(|(n, _)| *n == child) {
            continue;
        }
        path.push((child, e.name.clone()));
        dfs(g, targets, path, out);
        path.pop();
    }
}

/// Writes the chains to `target`, one per line: `root -> name (path) -> …`.
/// Returns whether anything matched.
pub fn render(g: &DepGraph, target: &[u8], out: &mut dyn Write) -> io::Result<bool> {
    let nodes = matches(g, target);
    if nodes.is_empty() {
        return Ok(false);
    }
    let found = chains(g, &nodes);
    for chain in &found {
        let mut parts = Vec::new();
        for (k, (n, name)) in chain.iter().enumerate() {
            let node = &g.graph[*n];
            if k == 0 {
                parts.push(show(&node.path));
            } else if node.missing.is_some() {
                parts.push(format!("{} (not found)", show(name)));
            } else if *name == node.path {
                parts.push(show(name));
            } else {
                parts.push(format!("{} ({})", show(name), show(&node.path)));
            }
        }
        writeln!(out, "{}", parts.join(" -> "))?;
    }
    if found.len() >= MAX_CHAINS {
        writeln!(out, "(stopped after {MAX_CHAINS} chains)")?;
    }
    Ok(true)
}
