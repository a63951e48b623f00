//! `--format tree` (the default): an indented tree per root, each edge
//! annotated with the search step that satisfied it. An object already shown
//! for this root is not expanded again; missing libraries say so inline.

use std::io::{self, Write};

use petgraph::stable_graph::NodeIndex;

use super::edge_label;
use crate::graph::{DepGraph, NodeKind};
use crate::util::show;

/// Writes the tree of every root.
pub fn render(g: &DepGraph, out: &mut dyn Write) -> io::Result<()> {
    for &root in &g.root_nodes {
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
        let mut shown = vec![root];
        walk(g, root, 1, &mut shown, out)?;
    }
    Ok(())
}

fn walk(
    g: &DepGraph,
    n: NodeIndex,
    depth: usize,
    shown: &mut Vec<NodeIndex>,
    out: &mut dyn Write,
) -> io::Result<()> {
    for (child, e) in g.children(n) {
        let c = &g.graph[child];
        let indent = "    ".repeat(depth);
        if c.kind == NodeKind::Missing {
            let why = match c.missing.as_ref().and_then(|m| m.fatal.as_ref()) {
                Some((p, r)) => format!("loader aborts on {}: {r}", show(p)),
                None => "not found".into(),
            };
            writeln!(out, "{indent}{} => {why}", show(&e.name))?;
            continue;
        }
        // Expand an object under the edge that loaded it; later references
        // (already loaded, or shown earlier in this tree) stay one line.
        let again = shown.contains(&child) || e.via == crate::resolve::Via::Loaded;
        writeln!(
            out,
            "{indent}{} => {} [{}]{}",
            show(&e.name),
            show(&c.path),
            edge_label(e),
            if shown.contains(&child)
                && e.via != crate::resolve::Via::Loaded
                && !g.children(child).is_empty()
            {
                " (see above)"
            } else {
                ""
            }
        )?;
        if !again {
            shown.push(child);
            walk(g, child, depth + 1, shown, out)?;
        }
    }
    Ok(())
}
