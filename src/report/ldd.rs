//! `--format ldd`: the lines `ldd` prints, so scripts that parse them keep working.
//!
//! Load addresses are not printed (nothing is loaded) and the vDSO line is
//! left out. The lines are the loader's, in its order and with its names
//! ([`load_order`]). With several roots each block starts with `root:` as `ldd`
//! does for several files.

use std::io::{self, Write};

use super::load_order;
use crate::graph::{DepGraph, NodeKind};

/// Writes `ldd`-style lines per root.
pub fn render(g: &DepGraph, out: &mut dyn Write) -> io::Result<()> {
    let many = g.root_nodes.len() > 1;
    for (i, &root) in g.root_nodes.iter().enumerate() {
        if many {
            out.write_all(&g.roots[i])?;
            out.write_all(b":\n")?;
        }
        let info = g.graph[root].info.as_ref();
        if info.is_none_or(|i| !i.is_dynamic() && i.interp.is_none()) {
            out.write_all(b"\tnot a dynamic executable\n")?;
            continue;
        }
        let order = load_order(g, root);
        if order.is_empty() {
            out.write_all(b"\tstatically linked\n")?;
        }
        for (n, name) in order {
            let node = &g.graph[n];
            out.write_all(b"\t")?;
            if node.kind == NodeKind::Missing {
                out.write_all(&name)?;
                out.write_all(b" => not found\n")?;
            } else if name == node.path {
                out.write_all(&node.path)?;
                out.write_all(b"\n")?;
            } else {
                out.write_all(&name)?;
                out.write_all(b" => ")?;
                out.write_all(&node.path)?;
                out.write_all(b"\n")?;
            }
        }
    }
    Ok(())
}
