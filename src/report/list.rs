//! `--format list`: every object of the closure, one path per line, sorted.

use std::io::{self, Write};

use crate::graph::DepGraph;

/// Writes the sorted, unique paths of every object (roots, libraries, interpreters).
pub fn render(g: &DepGraph, out: &mut dyn Write) -> io::Result<()> {
    for n in g.objects() {
        out.write_all(&n.path)?;
        out.write_all(b"\n")?;
    }
    Ok(())
}
