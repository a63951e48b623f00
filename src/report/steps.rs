//! `--verbose`: every search step, in the loader's order, like
//! `LD_DEBUG=libs`.
//!
//! For each root, its load is replayed breadth-first over the graph's edges
//! (in `DT_NEEDED` order): for every name, the directories tried in order
//! and the verdict on each candidate file there, then what the name
//! resolved to. Names matched against an object already loaded say so; the
//! program's interpreter is named first, then its audit modules, each with
//! the searches of its namespace (glibc loads them before anything else),
//! from [`DepGraph::audits`]. Run-time loads follow the start-up, one after
//! another, each with what it brings in, as `dlopen` loads them, and the
//! `.note.dlopen` names no search found among them, in the trace's order
//! ([`DepGraph::runtime_log`]). The search
//! records of found names
//! exist only when the graph was built with `BuildOptions::keep_search`;
//! without them only the outcome is shown.

use std::collections::{BTreeSet, VecDeque};
use std::io::{self, Write};

use petgraph::stable_graph::NodeIndex;

use crate::graph::{AuditAnswer, AuditLoad, DepGraph, Edge, NodeKind, RuntimeFailure, RuntimeStep};
use crate::resolve::{Searched, Tried, Via};
use crate::util::show;

/// Writes the search steps of every root of `g`.
pub fn render(g: &DepGraph, out: &mut dyn Write) -> io::Result<()> {
    for (ri, &root) in g.root_nodes.iter().enumerate() {
        let rnode = &g.graph[root];
        writeln!(out, "search: loading {}", show(&rnode.path))?;
        let mut load = Load {
            g,
            ri,
            root,
            audits: g.audits.get(&ri),
            seen: BTreeSet::from([root]),
            later: Vec::new(),
        };
        load.walk(root, out)?;
        load.run_time(out)?;
    }
    Ok(())
}

/// One root's load as it is replayed.
struct Load<'g> {
    g: &'g DepGraph,
    ri: usize,
    root: NodeIndex,
    /// The audit modules' namespaces, replayed from their logs, not from
    /// the graph's edges (which merge the namespaces).
    audits: Option<&'g Vec<AuditLoad>>,
    /// The objects loaded so far.
    seen: BTreeSet<NodeIndex>,
    /// Run-time edges met so far (requester, object, edge), replayed after
    /// the start-up.
    later: Vec<(NodeIndex, NodeIndex, &'g Edge)>,
}

impl<'g> Load<'g> {
    /// What the program (or libc for it) opens once it runs, one `dlopen`
    /// after another, each object's own dependencies right after it: in
    /// the trace's order ([`DepGraph::runtime_log`]) when it was kept, with
    /// the `.note.dlopen` names no search found among them; then any
    /// run-time edge met in the walk and not logged, in the order met.
    fn run_time(&mut self, out: &mut dyn Write) -> io::Result<()> {
        let g = self.g;
        let log = g.runtime_log.get(&self.ri);
        let mut shown = false;
        let mut header = |out: &mut dyn Write| -> io::Result<()> {
            if !shown {
                shown = true;
                writeln!(out, "  then at run time:")?;
            }
            Ok(())
        };
        let mut used: BTreeSet<usize> = BTreeSet::new();
        for step in log.into_iter().flatten() {
            match step {
                RuntimeStep::Load {
                    requester,
                    name,
                    searched,
                } => {
                    // An edge to an object before one to a missing node:
                    // a required `.note.dlopen` entry found nowhere has a
                    // missing edge under its first name (its `Miss` step
                    // says so), and a later entry may load that name (the
                    // walk keeps one edge per name: that one may be the
                    // missing one).
                    let this = |(i, (n, _, e)): &(usize, &(NodeIndex, NodeIndex, &Edge))| {
                        !used.contains(i) && g.graph[*n].path == *requester && *e.name == **name
                    };
                    let missing = |c: NodeIndex| g.graph[c].kind == NodeKind::Missing;
                    let mut met = self.later.iter().enumerate().filter(this);
                    let kept = met.clone().find(|(_, (_, c, _))| !missing(*c));
                    // An edge the walk did not keep (its requester needs
                    // the name at start-up too, say).
                    let other = |loaded: bool| {
                        g.index.get(requester).and_then(|&n| {
                            g.children(n)
                                .into_iter()
                                .find(|(c, e)| {
                                    e.via.is_runtime()
                                        && *e.name == **name
                                        && g.graph[*c].roots.contains(&self.ri)
                                        && (!loaded || !missing(*c))
                                })
                                .map(|(c, e)| (n, c, e))
                        })
                    };
                    let found = match kept
                        .map(Some)
                        .unwrap_or_else(|| other(true).is_none().then(|| met.next()).flatten())
                    {
                        Some((i, &(n, child, e))) => {
                            used.insert(i);
                            Some((n, child, e))
                        }
                        None => other(true).or_else(|| other(false)),
                    };
                    if let Some((n, child, e)) = found {
                        header(out)?;
                        self.runtime_edge(n, child, e, *searched, out)?;
                    }
                }
                RuntimeStep::Miss(miss) => {
                    header(out)?;
                    let how = (miss.via, Some(miss.detail.as_str()));
                    opened(&miss.name, &miss.requester, how, out)?;
                    steps(&miss.searched, None, out)?;
                    writeln!(out, "    => not found ({})", miss.outcome)?;
                }
                RuntimeStep::Failed(f) => {
                    header(out)?;
                    failed(f, out)?;
                }
            }
        }
        let mut i = 0;
        while let Some(&(n, child, e)) = self.later.get(i) {
            i += 1;
            // A required `.note.dlopen` entry's missing edge: its names'
            // searches are in the log.
            if used.contains(&(i - 1))
                || (log.is_some()
                    && e.via == Via::DlopenNote
                    && g.graph[child].kind == NodeKind::Missing)
            {
                continue;
            }
            header(out)?;
            self.runtime_edge(n, child, e, false, out)?;
        }
        Ok(())
    }

    /// One run-time load: its search, then what it brings in. An object
    /// loaded before is "already loaded", unless a search found it
    /// (`searched`: another name, the same file), which is shown.
    fn runtime_edge(
        &mut self,
        n: NodeIndex,
        child: NodeIndex,
        e: &'g Edge,
        searched: bool,
        out: &mut dyn Write,
    ) -> io::Result<()> {
        let g = self.g;
        let requester = &g.graph[n].path;
        let key = (self.ri, requester.clone(), e.name.to_vec());
        if let Some(s) = g.searches.get(&key).filter(|_| searched) {
            if self.seen.contains(&child) {
                runtime_find(requester, e, out)?;
                steps(s, None, out)?;
                let via = s
                    .iter()
                    .find(|s| s.candidates.iter().any(|(_, t)| *t == Tried::Used))
                    .map_or(e.via, |s| s.via);
                let path = show(&g.graph[child].path);
                return writeln!(out, "    => {path} [{}] (loaded already)", via.as_str());
            }
        }
        if self.seen.contains(&child) {
            runtime_find(requester, e, out)?;
            return writeln!(
                out,
                "    => already loaded as {}",
                show(&g.graph[child].path)
            );
        }
        edge(g, self.ri, requester, child, e, None, out)?;
        if g.graph[child].kind != NodeKind::Missing {
            self.seen.insert(child);
            self.walk(child, out)?;
        }
        Ok(())
    }

    /// Breadth-first from `start` (loaded already): every name of every
    /// object it reaches, run-time ones kept for later.
    fn walk(&mut self, start: NodeIndex, out: &mut dyn Write) -> io::Result<()> {
        let g = self.g;
        let ri = self.ri;
        let mut queue = VecDeque::from([start]);
        while let Some(n) = queue.pop_front() {
            let requester = &g.graph[n].path;
            // This root's edges from `n`, each name once: the merged graph
            // can hold an edge per way other roots' loads satisfied it.
            let mut names: BTreeSet<&[u8]> = BTreeSet::new();
            let mut edges: Vec<(NodeIndex, &Edge)> = Vec::new();
            for (child, e) in g.children(n) {
                if !g.graph[child].roots.contains(&ri)
                    || (self.audits.is_some() && e.via == Via::Audit)
                    || !names.insert(&e.name)
                {
                    continue;
                }
                if e.via.is_runtime() {
                    self.later.push((n, child, e));
                } else {
                    edges.push((child, e));
                }
            }
            if n == self.root {
                // The interpreter, the audit modules, then the preloads in
                // the loader's order (one that cannot be loaded has only its
                // search record), then the program's own names.
                let (preloads, rest): (Vec<_>, Vec<_>) =
                    edges.into_iter().partition(|(_, e)| e.via == Via::Preload);
                let (interp, needed): (Vec<_>, Vec<_>) = rest
                    .into_iter()
                    .partition(|(_, e)| e.via == Via::Interpreter);
                edges = interp;
                for &(child, e) in &edges {
                    edge(g, ri, requester, child, e, None, out)?;
                }
                for load in self.audits.into_iter().flatten() {
                    audit(load, out)?;
                }
                let mut done: BTreeSet<&[u8]> = BTreeSet::new();
                for (name, from) in &g.preloads {
                    if let Some(&(child, e)) = preloads.iter().find(|(_, e)| *e.name == **name) {
                        if !done.insert(name) {
                            continue; // loaded already, under this very name
                        }
                        edge(g, ri, requester, child, e, Some(from), out)?;
                        edges.push((child, e));
                    } else if let Some(s) = g.searches.get(&(ri, Vec::new(), name.clone())) {
                        // Not loaded: the loader searches again each time
                        // the name is preloaded.
                        writeln!(out, "  find library={}; preloaded from {from}", show(name))?;
                        steps(s, Some(from), out)?;
                        writeln!(out, "    => cannot be preloaded: ignored")?;
                    }
                }
                for &(child, e) in &needed {
                    edge(g, ri, requester, child, e, None, out)?;
                }
                edges.extend(needed);
            } else {
                for &(child, e) in &edges {
                    edge(g, ri, requester, child, e, None, out)?;
                }
            }
            for (child, _) in edges {
                if g.graph[child].kind != NodeKind::Missing && self.seen.insert(child) {
                    queue.push_back(child);
                }
            }
        }
        Ok(())
    }
}

/// A `dlopen` that failed once its search found the file: the searches
/// it made, up to the failure, then why it failed and what follows (the
/// loader unloads what it brought in).
fn failed(f: &RuntimeFailure, out: &mut dyn Write) -> io::Result<()> {
    opened(&f.name, &f.requester, (f.via, Some(f.detail.as_str())), out)?;
    let mut searches = f.searches.iter().peekable();
    let own = searches.next_if(|s| s.requester == f.requester && s.name == f.name);
    for (i, s) in own.into_iter().chain(searches).enumerate() {
        if i > 0 || s.requester != f.requester || s.name != f.name {
            writeln!(
                out,
                "  find library={}; needed by {}",
                show(&s.name),
                show(&s.requester)
            )?;
        }
        steps(&s.searched, None, out)?;
        let used = (s.searched.iter())
            .flat_map(|r| &r.candidates)
            .find(|(_, t)| *t == Tried::Used);
        match used {
            Some((path, _)) => writeln!(out, "    => {}", show(path))?,
            None if s.found => writeln!(out, "    => found")?,
            None => writeln!(out, "    => not found")?,
        }
    }
    writeln!(
        out,
        "    => the dlopen fails: {}; the loader unloads what it loaded ({})",
        f.why, f.outcome
    )
}

/// The first line of a run-time load's steps.
fn runtime_find(requester: &[u8], e: &Edge, out: &mut dyn Write) -> io::Result<()> {
    opened(&e.name, requester, (e.via, e.detail()), out)
}

/// The first line of a run-time load of `name` by `requester`, how (its
/// kind and detail).
fn opened(
    name: &[u8],
    requester: &[u8],
    (via, detail): (Via, Option<&str>),
    out: &mut dyn Write,
) -> io::Result<()> {
    let (name, requester, via) = (show(name), show(requester), via.as_str());
    match detail {
        Some(d) => writeln!(
            out,
            "  find library={name}; opened at run time by {requester} [{via}: {d}]"
        ),
        None => writeln!(
            out,
            "  find library={name}; opened at run time by {requester} [{via}]"
        ),
    }
}

/// The steps of one edge of root `ri`'s load, asked for by `requester`,
/// or `preloaded` from `LD_PRELOAD` or `/etc/ld.so.preload`.
fn edge(
    g: &DepGraph,
    ri: usize,
    requester: &[u8],
    child: NodeIndex,
    e: &Edge,
    preloaded: Option<&str>,
    out: &mut dyn Write,
) -> io::Result<()> {
    let c = &g.graph[child];
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
        return Ok(());
    }
    match preloaded {
        Some(from) => writeln!(
            out,
            "  find library={}; preloaded from {from}",
            show(&e.name)
        )?,
        None if e.via.is_runtime() => runtime_find(requester, e, out)?,
        None => writeln!(
            out,
            "  find library={}; needed by {}",
            show(&e.name),
            show(requester)
        )?,
    }
    if let Some(m) = &c.missing {
        steps(&m.searched, None, out)?;
        match &m.fatal {
            Some((p, why)) => writeln!(out, "    => the loader aborts on {}: {why}", show(p))?,
            None => writeln!(out, "    => not found")?,
        }
        for note in &m.notes {
            writeln!(out, "    note: {note}")?;
        }
        return Ok(());
    }
    // Whether this root's load searched for the name (the edge's own step
    // may be another root's: a library one program loads first is already
    // loaded when another program's dependency asks). A preload's search is
    // the loader's own, kept apart from the program's names.
    let by = if e.via == Via::Preload {
        &[][..]
    } else {
        requester
    };
    let key = (ri, by.to_vec(), e.name.to_vec());
    match g.searches.get(&key) {
        Some(s) => {
            steps(s, preloaded, out)?;
            let via = s
                .iter()
                .find(|s| s.candidates.iter().any(|(_, t)| *t == Tried::Used))
                .map_or(e.via, |s| s.via);
            // A plugin's name no search found, answered by SONAME.
            match e.detail().filter(|_| via == Via::Loaded) {
                Some(d) => writeln!(out, "    => {} [{}: {d}]", show(&c.path), via.as_str()),
                None => writeln!(out, "    => {} [{}]", show(&c.path), via.as_str()),
            }
        }
        // Run-time loads keep no search record.
        None if e.via.outside_link_map() => {
            writeln!(out, "    => {} [{}]", show(&c.path), e.via.as_str())
        }
        // A plugin's name answered by what its host program loaded.
        None => match e.detail().filter(|_| e.via == Via::Loaded) {
            Some(d) => writeln!(out, "    => already loaded as {} ({d})", show(&c.path)),
            None => writeln!(out, "    => already loaded as {}", show(&c.path)),
        },
    }
}

/// One audit module's load: each name looked up in its namespace, the
/// module's own first, and whether the loader ignores the module.
fn audit(load: &AuditLoad, out: &mut dyn Write) -> io::Result<()> {
    let module = show(&load.name);
    for step in &load.steps {
        match &step.requester {
            None => writeln!(
                out,
                "  find library={}; audit module from {}",
                show(&step.name),
                load.tag
            )?,
            Some(by) => writeln!(
                out,
                "  find library={}; needed by {} (in the namespace of audit module {module})",
                show(&step.name),
                show(by)
            )?,
        }
        steps(&step.searched, None, out)?;
        match &step.answer {
            AuditAnswer::Found(path, via) => {
                writeln!(out, "    => {} [{}]", show(path), via.as_str())?
            }
            AuditAnswer::Loaded(path) => writeln!(out, "    => already loaded as {}", show(path))?,
            AuditAnswer::NotFound => writeln!(out, "    => not found")?,
            AuditAnswer::Skipped => writeln!(out, "    => skipped (a warning says why)")?,
        }
    }
    match &load.ignored {
        Some(why) if load.steps.is_empty() => writeln!(
            out,
            "  audit module {module} from {}: not loaded: {why}",
            load.tag
        ),
        Some(why) => writeln!(
            out,
            "  audit module {module}: cannot be loaded as audit interface: {why}; ignored"
        ),
        None => writeln!(
            out,
            "  audit module {module}: loaded, in a namespace of its own"
        ),
    }
}

/// The directories of one search and the verdict on each candidate (a
/// path `preloaded` from a list is given there, not in `DT_NEEDED`).
fn steps(searched: &[Searched], preloaded: Option<&str>, out: &mut dyn Write) -> io::Result<()> {
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
            let source = match (s.via, preloaded) {
                (Via::Direct, Some(from)) => format!("path given in {from}"),
                _ => source(s),
            };
            writeln!(out, "    search path={dir}  ({source})")?;
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
