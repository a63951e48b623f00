//! `--format dot`: Graphviz. Roots are boxes, the interpreter dashed,
//! missing libraries red; edges are labelled with the search step.

use std::io::{self, Write};

use super::edge_label;
use crate::graph::{DepGraph, NodeKind};
use crate::util::show;

fn quote(s: &str) -> String {
    let mut q = String::with_capacity(s.len() + 2);
    q.push('"');
    for c in s.chars() {
        if c == '"' || c == '\\' {
            q.push('\\');
        }
        q.push(c);
    }
    q.push('"');
    q
}

/// Writes a `digraph` of the whole graph, nodes and edges in a stable order.
pub fn render(g: &DepGraph, out: &mut dyn Write) -> io::Result<()> {
    writeln!(out, "digraph closure {{")?;
    writeln!(out, "    rankdir=LR;")?;
    writeln!(out, "    node [shape=ellipse, fontname=\"monospace\"];")?;
    // Stable ids: position in the sorted key index.
    let ids: std::collections::BTreeMap<_, usize> =
        g.index.values().enumerate().map(|(k, &i)| (i, k)).collect();
    for (key_pos, &i) in g.index.values().enumerate() {
        let n = &g.graph[i];
        let (label, attrs) = match n.kind {
            NodeKind::Root => (show(&n.path), "shape=box, style=bold"),
            NodeKind::Interpreter => (show(&n.path), "style=dashed"),
            NodeKind::Library => (show(&n.path), ""),
            NodeKind::Missing => (
                format!("{} (not found)", show(&n.path)),
                "color=red, fontcolor=red, style=bold",
            ),
        };
        let sep = if attrs.is_empty() { "" } else { ", " };
        writeln!(out, "    n{key_pos} [label={}{sep}{attrs}];", quote(&label))?;
    }
    for &i in g.index.values() {
        for (target, edge) in g.children(i) {
            let to = &g.graph[target];
            let color = if to.kind == NodeKind::Missing {
                ", color=red"
            } else {
                ""
            };
            let label = if to.kind == NodeKind::Missing {
                "not found".to_string()
            } else {
                edge_label(edge)
            };
            writeln!(
                out,
                "    n{} -> n{} [label={}{color}];",
                ids[&i],
                ids[&target],
                quote(&label)
            )?;
        }
    }
    writeln!(out, "}}")
}
