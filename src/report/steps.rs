//! `--verbose`: every search step, in the loader's order, like
//! `LD_DEBUG=libs`.
//!
//! For each root, its load is replayed breadth-first over the graph's edges
//! (in `DT_NEEDED` order): for every name, the directories tried in order
//! and the verdict on each candidate file there, then what the name
//! resolved to. Names matched against an object already loaded say so; the
//! program's interpreter is named first. The search records of found names
//! exist only when the graph was built with `BuildOptions::keep_search`;
//! without them only the outcome is shown.

use std::collections::{BTreeSet, VecDeque};
use std::io::{self, Write};

use petgraph::stable_graph::NodeIndex;

use crate::graph::{DepGraph, NodeKind};
use crate::resolve::{Searched, Tried, Via};
use crate::util::show;

/// Writes the search steps of every root of `g`.
pub fn render(g: &DepGraph, out: &mut dyn Write) -> io::Result<()> {
    for (ri, &root) in g.root_nodes.iter().enumerate() {
        let rnode = &g.graph[root];
        writeln!(out, "search: loading {}", show(&rnode.path))?;
        let mut seen: BTreeSet<NodeIndex> = BTreeSet::from([root]);
        let mut queue = VecDeque::from([root]);
        while let Some(n) = queue.pop_front() {
            let requester = &g.graph[n].path;
            // Each name once per requester: the merged graph can hold an
            // edge per way other roots' loads satisfied it.
            let mut names: BTreeSet<&[u8]> = BTreeSet::new();
            for (child, e) in g.children(n) {
                let c = &g.graph[child];
                if !c.roots.contains(&ri) {
                    continue; // an edge of another root's load
                }
                if !names.insert(&e.name) {
                    continue;
                }
                if e.via == Via::Interpreter {
                    match &c.missing {
                        Some(m) => {
                            writeln!(
                                out,
                                "  interpreter {} (needed by {}): cannot be used",
                                show(&e.name),
                                show(requester)
                            )?;
                            for note in &m.notes {
                                writeln!(out, "    note: {note}")?;
                            }
                        }
                        None => writeln!(
                            out,
                            "  interpreter {} (needed by {}) => {}",
                            show(&e.name),
                            show(requester),
                            show(&c.path)
                        )?,
                    }
                } else {
                    writeln!(
                        out,
                        "  find library={}; needed by {}",
                        show(&e.name),
                        show(requester)
                    )?;
                    if let Some(m) = &c.missing {
                        steps(&m.searched, out)?;
                        match &m.fatal {
                            Some((p, why)) => {
                                writeln!(out, "    => the loader aborts on {}: {why}", show(p))?
                            }
                            None => writeln!(out, "    => not found")?,
                        }
                        for note in &m.notes {
                            writeln!(out, "    note: {note}")?;
                        }
                    } else {
                        // Whether this root's load searched for the name
                        // (the edge's own step may be another root's: a
                        // library one program loads first is already
                        // loaded when another program's dependency asks).
                        let key = (ri, requester.clone(), e.name.clone());
                        match g.searches.get(&key) {
                            Some(s) => {
                                steps(s, out)?;
                                let via = s
                                    .iter()
                                    .find(|s| s.candidates.iter().any(|(_, t)| *t == Tried::Used))
                                    .map_or(e.via, |s| s.via);
                                writeln!(out, "    => {} [{}]", show(&c.path), via.as_str())?;
                            }
                            // Run-time loads keep no search record.
                            None if e.via.is_runtime() => {
                                writeln!(out, "    => {} [{}]", show(&c.path), e.via.as_str())?
                            }
                            None => writeln!(out, "    => already loaded as {}", show(&c.path))?,
                        }
                    }
                }
                if c.kind != NodeKind::Missing && seen.insert(child) {
                    queue.push_back(child);
                }
            }
        }
    }
    Ok(())
}

/// The directories of one search and the verdict on each candidate.
fn steps(searched: &[Searched], out: &mut dyn Write) -> io::Result<()> {
    for s in searched {
        if s.via == Via::Cache {
            if s.candidates.is_empty() {
                writeln!(out, "    search cache=/etc/ld.so.cache: no entry")?;
                continue;
            }
            writeln!(out, "    search cache=/etc/ld.so.cache")?;
        } else {
            let dir = if s.dir.is_empty() {
                "(empty entry: the working directory)".to_string()
            } else {
                show(&s.dir)
            };
            writeln!(out, "    search path={dir}  ({})", source(s))?;
        }
        for (path, tried) in &s.candidates {
            writeln!(out, "      trying file={}: {}", show(path), verdict(tried))?;
        }
    }
    Ok(())
}

/// Where a searched directory came from.
fn source(s: &Searched) -> String {
    let owner = s.owner.as_deref().map(show).unwrap_or_default();
    match s.via {
        Via::Rpath => format!("RPATH from file {owner}"),
        Via::Runpath => format!("RUNPATH from file {owner}"),
        Via::LdLibraryPath => "LD_LIBRARY_PATH".into(),
        Via::Default => "system search path".into(),
        Via::Direct => "path given in DT_NEEDED".into(),
        other => other.as_str().into(),
    }
}

fn verdict(t: &Tried) -> String {
    match t {
        Tried::Absent => "no such file".into(),
        Tried::Denied => "cannot be read (permission denied)".into(),
        Tried::Skipped(why) => format!("skipped: {why}"),
        Tried::Fatal(why) => format!("the loader aborts: {why}"),
        Tried::ListEnded(why) => format!("{why}; rest of this list not searched"),
        Tried::Used => "used".into(),
    }
}
