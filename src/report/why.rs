//! `--why SONAME|PATH`: every chain of edges from a root to an object, so a
//! person can see who drags a library in.
//!
//! A target matches a node by its path, canonical path, SONAME, or (for a
//! missing node) the name sought. Chains are simple paths (no object twice),
//! enumerated depth-first in `DT_NEEDED` order from each root, at most
//! [`MAX_CHAINS`] of them. Edges are `DT_NEEDED` names and the run-time
//! loads the tracer follows; a run-time edge says which (`dlopen-note`,
//! `dlopen-string`, `nsswitch`, `libgcc_s`, `gconv`, `preload`).

use std::io::{self, Write};

use petgraph::stable_graph::NodeIndex;

use crate::graph::DepGraph;
use crate::resolve::Via;
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

/// One step of a chain: the node reached, the name it was asked for by,
/// and how the edge was followed.
pub type Step = (NodeIndex, Vec<u8>, Via);

/// Every chain from a root to one of `targets` (the root's own step says
/// [`Via::Root`]).
pub fn chains(g: &DepGraph, targets: &[NodeIndex]) -> Vec<Vec<Step>> {
    let mut out = Vec::new();
    for (ri, &root) in g.root_nodes.iter().enumerate() {
        let mut path = vec![(root, g.graph[root].path.clone(), Via::Root)];
        dfs(g, ri, targets, &mut path, &mut out);
    }
    out.sort();
    out.dedup();
    out
}

/// Chains of root `ri`'s load only: another root's may have resolved a
/// name of a shared object elsewhere.
fn dfs(
    g: &DepGraph,
    ri: usize,
    targets: &[NodeIndex],
    path: &mut Vec<Step>,
    out: &mut Vec<Vec<Step>>,
) {
    if out.len() >= MAX_CHAINS {
        return;
    }
    let last = path[path.len() - 1].0;
    if targets.contains(&last) && path.len() > 1 {
        out.push(path.clone());
        return;
    }
    for (child, e) in g.children(last) {
        if !g.graph[child].roots.contains(&ri) || path.iter().any(|(n, _, _)| *n == child) {
            continue;
        }
        path.push((child, e.name.to_vec(), e.via));
        dfs(g, ri, targets, path, out);
        path.pop();
    }
}

/// The name of a run-time load, for an edge the loader does not follow at
/// start-up.
fn runtime(via: Via) -> Option<&'static str> {
    matches!(
        via,
        Via::DlopenNote
            | Via::DlopenString
            | Via::Nsswitch
            | Via::Libgcc
            | Via::Gconv
            | Via::Preload
            | Via::Audit
    )
    .then(|| via.as_str())
}

/// Writes the chains to `target`, one per line: `root -> name (path) -> …`,
/// a run-time edge as `name (path, dlopen-note)`.
/// Returns whether anything matched.
pub fn render(g: &DepGraph, target: &[u8], out: &mut dyn Write) -> io::Result<bool> {
    let nodes = matches(g, target);
    if nodes.is_empty() {
        return Ok(false);
    }
    let found = chains(g, &nodes);
    for chain in &found {
        let mut parts = Vec::new();
        for (k, (n, name, via)) in chain.iter().enumerate() {
            let node = &g.graph[*n];
            let how = runtime(*via).map(|v| format!(", {v}")).unwrap_or_default();
            if k == 0 {
                parts.push(show(&node.path));
            } else if node.missing.is_some() {
                parts.push(format!("{} (not found{how})", show(name)));
            } else if *name == node.path {
                match runtime(*via) {
                    Some(v) => parts.push(format!("{} ({v})", show(name))),
                    None => parts.push(show(name)),
                }
            } else {
                parts.push(format!("{} ({}{how})", show(name), show(&node.path)));
            }
        }
        writeln!(out, "{}", parts.join(" -> "))?;
    }
    if found.len() >= MAX_CHAINS {
        writeln!(out, "(stopped after {MAX_CHAINS} chains)")?;
    }
    Ok(true)
}
