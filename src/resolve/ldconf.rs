//! Parsing `ld.so.conf` inside a root filesystem.
//!
//! This module owns the reading of `ldconfig`'s configuration: the line
//! syntax (comments, `include` with glob patterns, the obsolete `hwcap`
//! directive, one directory per line), the expansion of `include` patterns
//! (its own `glob(3)` matcher over sorted in-root directory listings), and
//! the resulting ordered, de-duplicated list of existing directories; and
//! the name list of the loader's `/etc/ld.so.preload` ([`preload_names`]). All
//! file access goes through [`RootFs`], so every path, including symlinks
//! with absolute targets, stays inside the root.
//!
//! It never scans the listed directories for libraries, never adds
//! `ldconfig`'s built-in directories (callers append those), never writes a
//! cache, and never fails: problems become warnings in [`LdConf::warnings`].

use std::collections::HashSet;
use std::ffi::OsString;
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::path::{Path, PathBuf};

use crate::rootfs::{EntryKind, LookupError, OpenError, RootFs};

/// Largest configuration file read, in bytes.
pub const MAX_CONF_SIZE: u64 = 1 << 20;
/// How deeply `include` directives may nest.
pub const MAX_INCLUDE_DEPTH: usize = 16;
/// How many configuration files one parse reads at most.
pub const MAX_CONF_FILES: usize = 1024;
/// Longest `include` pattern, and longest path it may match (`PATH_MAX`:
/// `glob(3)` gets `ENAMETOOLONG` past it too).
pub const MAX_GLOB_PATH: usize = 4096;
/// Most paths one `include` pattern may expand to at any of its steps.
pub const MAX_GLOB_MATCHES: usize = 4096;
/// Path components all `include` patterns of one parse may look up
/// (listings and directory checks, each costing its path's depth). A root
/// with directory links such as `self -> .` and a pattern like `/*/*/*/…`
/// would otherwise take time exponential in the pattern's length.
pub const GLOB_BUDGET: usize = 1 << 18;

/// The directories an `ld.so.conf` tree configures.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LdConf {
    /// Existing directories in configuration order, de-duplicated by their
    /// canonical in-root path (first spelling kept), as written in the file
    /// with trailing whitespace and `/` removed.
    pub dirs: Vec<PathBuf>,
    /// Things a person may want to fix, each naming the file and line.
    pub warnings: Vec<String>,
}

/// Parses the configuration file `conf` (usually `/etc/ld.so.conf`) inside
/// `fs`, following `include` directives. A missing file gives an empty
/// result; unreadable parts are reported in [`LdConf::warnings`].
pub fn parse(fs: &RootFs, conf: &Path) -> LdConf {
    let mut p = Parser {
        fs,
        out: LdConf::default(),
        seen_dirs: HashSet::new(),
        parsed: HashSet::new(),
        stack: Vec::new(),
        files_read: 0,
        glob_budget: GLOB_BUDGET,
    };
    let mut start = conf.as_os_str().as_bytes().to_vec();
    if start.first() != Some(&b'/') {
        start.insert(0, b'/');
    }
    p.parse_file(&start, None);
    p.out
}

/// State of one parse.
struct Parser<'a> {
    fs: &'a RootFs,
    out: LdConf,
    /// Canonical in-root paths of the directories already listed.
    seen_dirs: HashSet<PathBuf>,
    /// Canonical in-root paths of the files already parsed.
    parsed: HashSet<PathBuf>,
    /// Canonical in-root paths of the files being parsed (include chain).
    stack: Vec<PathBuf>,
    files_read: usize,
    /// What is left of [`GLOB_BUDGET`].
    glob_budget: usize,
}

/// Where a directive came from, for messages.
struct Origin<'b> {
    file: &'b [u8],
    line: usize,
}

impl std::fmt::Display for Origin<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}:{}", String::from_utf8_lossy(self.file), self.line)
    }
}

impl Parser<'_> {
    fn warn(&mut self, msg: String) {
        self.out.warnings.push(msg);
    }

    /// Parses one file given by its in-root path; `from` is the include
    /// directive that named it.
    fn parse_file(&mut self, path_bytes: &[u8], from: Option<&Origin<'_>>) {
        let path = bytes_path(path_bytes);
        let shown = String::from_utf8_lossy(path_bytes).into_owned();
        let via = from
            .map(|o| format!(" (included from {o})"))
            .unwrap_or_default();
        let canonical = match self.fs.kind(&path) {
            Ok((_, EntryKind::Dir)) => return, // ldconfig reads nothing from it
            Ok((r, _)) => r.canonical,
            Err(LookupError::NotFound) => return,
            Err(e) => {
                self.warn(format!("{shown}{via}: cannot open configuration file: {e}"));
                return;
            }
        };
        if self.stack.contains(&canonical) {
            self.warn(format!("{shown}{via}: include cycle, file skipped"));
            return;
        }
        // Parsing a file a second time adds no directory (all of them are
        // already listed), so every file is read once.
        if self.parsed.contains(&canonical) {
            return;
        }
        if self.stack.len() >= MAX_INCLUDE_DEPTH {
            self.warn(format!(
                "{shown}{via}: includes nested deeper than {MAX_INCLUDE_DEPTH} levels, file skipped"
            ));
            return;
        }
        if self.files_read >= MAX_CONF_FILES {
            self.warn(format!(
                "{shown}{via}: more than {MAX_CONF_FILES} configuration files, file skipped"
            ));
            return;
        }
        self.files_read += 1;
        let text = match self.fs.read(&path, MAX_CONF_SIZE) {
            Ok(t) => t,
            Err(OpenError::Lookup(LookupError::NotFound)) => return,
            Err(OpenError::TooLarge(n)) => {
                self.warn(format!(
                    "{shown}{via}: configuration file of {n} bytes is larger than \
                     {MAX_CONF_SIZE} bytes, ignored"
                ));
                return;
            }
            Err(e) => {
                self.warn(format!("{shown}{via}: cannot read configuration file: {e}"));
                return;
            }
        };
        self.parsed.insert(canonical.clone());
        self.stack.push(canonical);
        self.parse_text(path_bytes, &text);
        self.stack.pop();
    }

    /// Interprets the lines of the file `file` (an in-root path).
    fn parse_text(&mut self, file: &[u8], text: &[u8]) {
        // Like getline(3): the last line need not end in a newline.
        let body = text.strip_suffix(b"\n").unwrap_or(text);
        if text.is_empty() {
            return;
        }
        for (i, raw) in body.split(|&b| b == b'\n').enumerate() {
            let origin = Origin { file, line: i + 1 };
            // C string semantics: a NUL ends the line; `#` starts a comment.
            let line = until(raw, |b| b == 0 || b == b'#');
            let Some(start) = line.iter().position(|&b| !is_c_space(b)) else {
                continue; // blank
            };
            let line = line.get(start..).unwrap_or(&[]);
            if let Some(rest) = keyword(line, b"include", false) {
                let patterns: Vec<&[u8]> = rest
                    .split(|&b| b == b' ' || b == b'\t')
                    .filter(|p| !p.is_empty())
                    .collect();
                for pattern in patterns {
                    self.include(file, pattern, &origin);
                }
            } else if keyword(line, b"hwcap", true).is_some() {
                self.warn(format!(
                    "{origin}: hwcap directive ignored (glibc 2.32 and later ignore it)"
                ));
            } else {
                self.add_dir(line, &origin);
            }
        }
    }

    /// Expands one `include` pattern and parses every match in sorted order.
    fn include(&mut self, file: &[u8], pattern: &[u8], origin: &Origin<'_>) {
        if pattern.iter().any(|&b| is_c_space(b)) {
            self.warn(format!(
                "{origin}: include pattern {:?} contains a whitespace character; \
                 it is matched literally, as ldconfig does",
                String::from_utf8_lossy(pattern)
            ));
        }
        let full = if pattern.first() == Some(&b'/') {
            pattern.to_vec()
        } else {
            let mut dir = parent_of(file);
            if !dir.ends_with(b"/") {
                dir.push(b'/');
            }
            dir.extend_from_slice(pattern);
            dir
        };
        let fs = self.fs;
        match glob(fs, &full, &mut self.glob_budget) {
            Ok(matches) => {
                for m in matches {
                    self.parse_file(&m, Some(origin));
                }
            }
            Err(why) => self.warn(format!(
                "{origin}: include pattern {:?} skipped: {why}",
                String::from_utf8_lossy(pattern)
            )),
        }
    }

    /// Adds a directory line (already stripped of comment and leading
    /// whitespace).
    fn add_dir(&mut self, line: &[u8], origin: &Origin<'_>) {
        let mut dir = line;
        while let Some((&last, rest)) = dir.split_last() {
            if !is_c_space(last) {
                break;
            }
            dir = rest;
        }
        while let Some(rest) = dir.strip_suffix(b"/") {
            dir = rest;
        }
        if dir.is_empty() {
            return; // `/` alone: ldconfig drops it too
        }
        let shown = String::from_utf8_lossy(dir).into_owned();
        if dir.contains(&b'=') {
            self.warn(format!(
                "{origin}: directory {shown:?} contains '='; it is taken literally \
                 (ldconfig before glibc 2.37 cut a DIR=TYPE suffix there)"
            ));
        }
        if dir.first() != Some(&b'/') {
            self.warn(format!(
                "{origin}: relative directory {shown:?} ignored (ldconfig would resolve it \
                 against its working directory)"
            ));
            return;
        }
        let path = bytes_path(dir);
        let canonical = match self.fs.kind(&path) {
            Ok((r, EntryKind::Dir)) => r.canonical,
            Ok(_) => {
                self.warn(format!("{origin}: {shown} is not a directory, ignored"));
                return;
            }
            Err(LookupError::NotFound) => return,
            Err(e) => {
                self.warn(format!("{origin}: {shown}: {e}, ignored"));
                return;
            }
        };
        if self.seen_dirs.insert(canonical) {
            self.out.dirs.push(path);
        }
    }
}

/// `s` up to (not including) the first byte for which `stop` holds.
fn until(s: &[u8], stop: impl Fn(u8) -> bool) -> &[u8] {
    match s.iter().position(|&b| stop(b)) {
        Some(n) => s.get(..n).unwrap_or(s),
        None => s,
    }
}

/// If `line` starts with `word` followed by a blank (space or tab), the text
/// after that blank.
fn keyword<'l>(line: &'l [u8], word: &[u8], ignore_case: bool) -> Option<&'l [u8]> {
    let head = line.get(..word.len())?;
    let same = if ignore_case {
        head.eq_ignore_ascii_case(word)
    } else {
        head == word
    };
    match line.get(word.len()) {
        Some(b' ' | b'\t') if same => line.get(word.len() + 1..),
        _ => None,
    }
}

/// C `isspace` in the C locale.
fn is_c_space(b: u8) -> bool {
    matches!(b, b' ' | b'\t' | b'\n' | 0x0b | 0x0c | b'\r')
}

/// An in-root path from bytes.
fn bytes_path(b: &[u8]) -> PathBuf {
    PathBuf::from(OsString::from_vec(b.to_vec()))
}

/// `dirname` of an absolute in-root path, as bytes (`/` for top-level files).
fn parent_of(file: &[u8]) -> Vec<u8> {
    let trimmed = {
        let mut f = file;
        while let Some(rest) = f.strip_suffix(b"/") {
            f = rest;
        }
        f
    };
    match trimmed.iter().rposition(|&b| b == b'/') {
        Some(0) | None => b"/".to_vec(),
        Some(n) => trimmed.get(..n).unwrap_or(b"/").to_vec(),
    }
}

/// Expands an absolute glob pattern inside the root: the in-root paths of
/// every match, sorted by bytes as `glob(3)` sorts them in the C locale.
/// Components without wildcards are taken as they are (their existence is
/// checked by the caller); components with wildcards are matched against
/// directory listings. A pattern ending in `/` matches directories only.
/// Every lookup is charged to `budget`; a pattern that is too long, matches
/// too many paths or exhausts the budget is an error (none of it is used).
fn glob(fs: &RootFs, pattern: &[u8], budget: &mut usize) -> Result<Vec<Vec<u8>>, &'static str> {
    if pattern.len() > MAX_GLOB_PATH {
        return Err("longer than PATH_MAX");
    }
    let mut spend = |p: &[u8]| -> Result<(), &'static str> {
        let cost = 1 + p.iter().filter(|&&b| b == b'/').count();
        *budget = budget
            .checked_sub(cost)
            .ok_or("it expands through too many directories (a directory loop?)")?;
        Ok(())
    };
    let components: Vec<&[u8]> = pattern
        .split(|&b| b == b'/')
        .filter(|c| !c.is_empty())
        .collect();
    let dirs_only = pattern.ends_with(b"/");
    let mut current: Vec<Vec<u8>> = vec![Vec::new()];
    let last = components.len().saturating_sub(1);
    for (i, comp) in components.iter().enumerate() {
        let is_last = i == last;
        let mut next = Vec::new();
        for base in &current {
            if !has_wildcard(comp) {
                let mut p = base.clone();
                p.push(b'/');
                p.extend_from_slice(&unescape(comp));
                next.push(p);
                continue;
            }
            let dir = if base.is_empty() {
                b"/".to_vec()
            } else {
                base.clone()
            };
            spend(&dir)?;
            let Ok((_, names)) = fs.read_dir(&bytes_path(&dir)) else {
                continue;
            };
            for name in names {
                let name = name.as_bytes();
                if !fnmatch(comp, name) {
                    continue;
                }
                let mut p = base.clone();
                p.push(b'/');
                p.extend_from_slice(name);
                if p.len() > MAX_GLOB_PATH {
                    continue;
                }
                if !is_last || dirs_only {
                    spend(&p)?;
                    if !fs.is_dir(&bytes_path(&p)) {
                        continue;
                    }
                }
                if next.len() >= MAX_GLOB_MATCHES {
                    return Err("it matches too many paths");
                }
                next.push(p);
            }
        }
        current = next;
        if current.is_empty() {
            return Ok(current);
        }
    }
    if components.is_empty() {
        return Ok(vec![b"/".to_vec()]);
    }
    current.sort();
    current.dedup();
    Ok(current)
}

/// Whether a pattern component has an unescaped `*`, `?` or `[`.
fn has_wildcard(comp: &[u8]) -> bool {
    let mut escaped = false;
    for &b in comp {
        if escaped {
            escaped = false;
        } else if b == b'\\' {
            escaped = true;
        } else if matches!(b, b'*' | b'?' | b'[') {
            return true;
        }
    }
    false
}

/// Removes backslash escapes from a component without wildcards.
fn unescape(comp: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(comp.len());
    let mut escaped = false;
    for &b in comp {
        if !escaped && b == b'\\' {
            escaped = true;
            continue;
        }
        escaped = false;
        out.push(b);
    }
    if escaped {
        out.push(b'\\'); // a trailing backslash stands for itself
    }
    out
}

/// One element of a compiled pattern component.
#[derive(Debug, PartialEq, Eq)]
enum Token {
    /// `*`: any run of bytes.
    Star,
    /// `?`: any one byte.
    Any,
    /// A literal byte.
    Lit(u8),
    /// A bracket expression.
    Set { negated: bool, items: Vec<SetItem> },
}

/// One member of a bracket expression.
#[derive(Debug, PartialEq, Eq)]
enum SetItem {
    Byte(u8),
    Range(u8, u8),
    Class(CharClass),
    /// An unknown `[:name:]`: the bracket matches nothing, as in glibc.
    BadClass,
}

/// The POSIX character classes of the C locale.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum CharClass {
    Alnum,
    Alpha,
    Blank,
    Cntrl,
    Digit,
    Graph,
    Lower,
    Print,
    Punct,
    Space,
    Upper,
    Xdigit,
}

impl CharClass {
    fn from_name(name: &[u8]) -> Option<CharClass> {
        Some(match name {
            b"alnum" => CharClass::Alnum,
            b"alpha" => CharClass::Alpha,
            b"blank" => CharClass::Blank,
            b"cntrl" => CharClass::Cntrl,
            b"digit" => CharClass::Digit,
            b"graph" => CharClass::Graph,
            b"lower" => CharClass::Lower,
            b"print" => CharClass::Print,
            b"punct" => CharClass::Punct,
            b"space" => CharClass::Space,
            b"upper" => CharClass::Upper,
            b"xdigit" => CharClass::Xdigit,
            _ => return None,
        })
    }

    fn contains(self, b: u8) -> bool {
        match self {
            CharClass::Alnum => b.is_ascii_alphanumeric(),
            CharClass::Alpha => b.is_ascii_alphabetic(),
            CharClass::Blank => b == b' ' || b == b'\t',
            CharClass::Cntrl => b.is_ascii_control(),
            CharClass::Digit => b.is_ascii_digit(),
            CharClass::Graph => b.is_ascii_graphic(),
            CharClass::Lower => b.is_ascii_lowercase(),
            CharClass::Print => b.is_ascii_graphic() || b == b' ',
            CharClass::Punct => b.is_ascii_punctuation(),
            CharClass::Space => is_c_space(b),
            CharClass::Upper => b.is_ascii_uppercase(),
            CharClass::Xdigit => b.is_ascii_hexdigit(),
        }
    }
}

impl Token {
    /// Whether this single-byte token matches `b`.
    fn matches(&self, b: u8) -> bool {
        match self {
            Token::Star => true,
            Token::Any => true,
            Token::Lit(l) => *l == b,
            Token::Set { negated, items } => {
                if items.contains(&SetItem::BadClass) {
                    return false;
                }
                let hit = items.iter().any(|it| match *it {
                    SetItem::Byte(x) => x == b,
                    SetItem::Range(lo, hi) => lo <= b && b <= hi,
                    SetItem::Class(c) => c.contains(b),
                    SetItem::BadClass => false,
                });
                hit != *negated
            }
        }
    }
}

/// Compiles one pattern component (no `/` inside).
fn compile(pat: &[u8]) -> Vec<Token> {
    let mut out = Vec::with_capacity(pat.len());
    let mut i = 0;
    while let Some(&b) = pat.get(i) {
        match b {
            b'*' => {
                if out.last() != Some(&Token::Star) {
                    out.push(Token::Star);
                }
                i += 1;
            }
            b'?' => {
                out.push(Token::Any);
                i += 1;
            }
            b'\\' => match pat.get(i + 1) {
                Some(&e) => {
                    out.push(Token::Lit(e));
                    i += 2;
                }
                None => {
                    out.push(Token::Lit(b'\\'));
                    i += 1;
                }
            },
            b'[' => match compile_set(pat, i + 1) {
                Some((tok, next)) => {
                    out.push(tok);
                    i = next;
                }
                None => {
                    // No closing bracket: `[` is an ordinary byte.
                    out.push(Token::Lit(b'['));
                    i += 1;
                }
            },
            _ => {
                out.push(Token::Lit(b));
                i += 1;
            }
        }
    }
    out
}

/// Compiles the bracket expression whose body starts at `start` (just after
/// `[`); returns the token and the index after the closing `]`.
fn compile_set(pat: &[u8], start: usize) -> Option<(Token, usize)> {
    let mut i = start;
    let negated = matches!(pat.get(i), Some(b'!' | b'^'));
    if negated {
        i += 1;
    }
    let mut items = Vec::new();
    let mut first = true;
    loop {
        let b = *pat.get(i)?;
        if b == b']' && !first {
            return Some((Token::Set { negated, items }, i + 1));
        }
        first = false;
        // A character class `[:name:]`.
        if b == b'[' && pat.get(i + 1) == Some(&b':') {
            let body = pat.get(i + 2..)?;
            if let Some(end) = body.windows(2).position(|w| w == b":]") {
                let name = body.get(..end)?;
                items.push(match CharClass::from_name(name) {
                    Some(c) => SetItem::Class(c),
                    None => SetItem::BadClass,
                });
                i += 2 + end + 2;
                continue;
            }
        }
        let (lo, after) = if b == b'\\' {
            (*pat.get(i + 1)?, i + 2)
        } else {
            (b, i + 1)
        };
        // A range `lo-hi`, unless the `-` is the last member.
        if pat.get(after) == Some(&b'-') && pat.get(after + 1).is_some_and(|&c| c != b']') {
            let h = *pat.get(after + 1)?;
            let (hi, next) = if h == b'\\' {
                (*pat.get(after + 2)?, after + 3)
            } else {
                (h, after + 2)
            };
            items.push(SetItem::Range(lo, hi));
            i = next;
        } else {
            items.push(SetItem::Byte(lo));
            i = after;
        }
    }
}

/// `fnmatch(3)` of one pattern component against one file name, with
/// `FNM_PERIOD` semantics: a leading `.` must be matched by a literal `.`.
fn fnmatch(pat: &[u8], name: &[u8]) -> bool {
    let toks = compile(pat);
    if name.first() == Some(&b'.') && toks.first() != Some(&Token::Lit(b'.')) {
        return false;
    }
    // Greedy matching with backtracking to the last `*`; every other token
    // consumes exactly one byte.
    let (mut ti, mut ni) = (0usize, 0usize);
    let mut star: Option<(usize, usize)> = None;
    while let Some(&b) = name.get(ni) {
        match toks.get(ti) {
            Some(Token::Star) => {
                star = Some((ti, ni));
                ti += 1;
            }
            Some(t) if t.matches(b) => {
                ti += 1;
                ni += 1;
            }
            _ => match star {
                Some((st, sn)) => {
                    ti = st + 1;
                    ni = sn + 1;
                    star = Some((st, sn + 1));
                }
                None => return false,
            },
        }
    }
    while toks.get(ti) == Some(&Token::Star) {
        ti += 1;
    }
    ti == toks.len()
}

/// The names `/etc/ld.so.preload` lists, as glibc's `rtld` reads them: a
/// `#` starts a comment that ends with the line, and names are separated
/// by spaces, tabs, newlines or `:`. In file order, duplicates kept (the
/// loader tries each; a second one of a loaded name loads nothing).
pub fn preload_names(file: &[u8]) -> Vec<Vec<u8>> {
    let mut names = Vec::new();
    for line in file.split(|&b| b == b'\n') {
        let line = line.split(|&b| b == b'#').next().unwrap_or_default();
        names.extend(
            line.split(|&b| matches!(b, b' ' | b'\t' | b':'))
                .filter(|n| !n.is_empty())
                .map(<[u8]>::to_vec),
        );
    }
    names
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::symlink;
    use std::process::Command;

    #[test]
    fn preload_names_split_like_rtld() {
        let names = |s: &str| -> Vec<String> {
            preload_names(s.as_bytes())
                .into_iter()
                .map(|n| String::from_utf8(n).unwrap())
                .collect()
        };
        assert_eq!(names(""), Vec::<String>::new());
        assert_eq!(names("# only a comment\n\n  \t:\n"), Vec::<String>::new());
        assert_eq!(
            names("/a/libx.so:liby.so\tlibz.so # not:this\nlibw.so"),
            ["/a/libx.so", "liby.so", "libz.so", "libw.so"]
        );
        // A comment ends with its line; `\r` is part of a name, as in rtld.
        assert_eq!(names("#x\nlibq.so\r\n"), ["libq.so\r"]);
        assert_eq!(names("liba.so liba.so"), ["liba.so", "liba.so"]);
    }

    struct Root {
        dir: tempfile::TempDir,
        fs: RootFs,
    }

    impl Root {
        fn new() -> Root {
            let dir = tempfile::tempdir().unwrap();
            let fs = RootFs::new(dir.path()).unwrap();
            Root { dir, fs }
        }
        fn host(&self, p: &str) -> PathBuf {
            self.dir.path().join(p.trim_start_matches('/'))
        }
        fn file(&self, p: &str, text: &str) {
            let h = self.host(p);
            std::fs::create_dir_all(h.parent().unwrap()).unwrap();
            std::fs::write(h, text).unwrap();
        }
        fn dirs(&self, ps: &[&str]) {
            for p in ps {
                std::fs::create_dir_all(self.host(p)).unwrap();
            }
        }
        fn parse(&self) -> LdConf {
            parse(&self.fs, Path::new("/etc/ld.so.conf"))
        }
    }

    fn paths(v: &[&str]) -> Vec<PathBuf> {
        v.iter().map(PathBuf::from).collect()
    }

    #[test]
    fn comments_blank_lines_whitespace_and_slashes() {
        let r = Root::new();
        r.dirs(&["/a", "/b", "/c d", "/e", "/f#g"]);
        r.file(
            "/etc/ld.so.conf",
            "# comment\n\n   \t\n  /a  # trailing comment\n/b///\n/c d \t \n\t/e/\r\n/f#g\n/\n",
        );
        let c = r.parse();
        // `/f#g` is `/f` (a comment starts anywhere), which does not exist.
        assert_eq!(c.dirs, paths(&["/a", "/b", "/c d", "/e"]));
        assert!(c.warnings.is_empty(), "{:?}", c.warnings);
    }

    #[test]
    fn missing_and_oversized_files() {
        let r = Root::new();
        assert_eq!(r.parse(), LdConf::default());
        r.file("/etc/ld.so.conf", &"#".repeat(MAX_CONF_SIZE as usize + 1));
        let c = r.parse();
        assert!(c.dirs.is_empty());
        assert_eq!(c.warnings.len(), 1);
        assert!(c.warnings[0].contains("larger than"), "{:?}", c.warnings);
    }

    #[test]
    fn includes_relative_absolute_multiple_and_sorted() {
        let r = Root::new();
        r.dirs(&["/d1", "/d2", "/d3", "/d4", "/d5", "/d6"]);
        r.file(
            "/etc/ld.so.conf",
            "/d1\ninclude ld.so.conf.d/*.conf  /etc/extra/x?.conf\tnomatch/*.conf\n/d6\n",
        );
        r.file("/etc/ld.so.conf.d/20-b.conf", "/d3\n");
        r.file("/etc/ld.so.conf.d/10-a.conf", "/d2\n");
        r.file("/etc/ld.so.conf.d/.hidden.conf", "/d5\n");
        r.file("/etc/ld.so.conf.d/30-c.conf.dpkg-old", "/d5\n");
        r.file("/etc/extra/x1.conf", "/d4\n");
        r.file("/etc/extra/x10.conf", "/d5\n");
        let c = r.parse();
        assert_eq!(c.dirs, paths(&["/d1", "/d2", "/d3", "/d4", "/d6"]));
        assert!(c.warnings.is_empty(), "{:?}", c.warnings);
    }

    #[test]
    fn glob_brackets_and_nested_relative_includes() {
        let r = Root::new();
        r.dirs(&["/n1", "/n2", "/n3", "/n4", "/n5"]);
        r.file(
            "/etc/ld.so.conf",
            "include conf.[a-c]/[!x]*.conf\ninclude conf.e/[[:digit:]]?.conf\n",
        );
        r.file("/etc/conf.a/1.conf", "/n1\ninclude sub/*.conf\n");
        r.file("/etc/conf.a/x.conf", "/n5\n");
        r.file("/etc/conf.a/sub/s.conf", "/n2\n");
        r.file("/etc/conf.d/1.conf", "/n5\n");
        r.file("/etc/conf.b/2.conf", "/n3\n");
        r.file("/etc/conf.e/ab.conf", "/n5\n");
        r.file("/etc/conf.e/1a.conf", "/n4\n");
        let c = r.parse();
        assert_eq!(c.dirs, paths(&["/n1", "/n2", "/n3", "/n4"]));
    }

    #[test]
    fn glob_sorts_whole_paths() {
        // glob(3) sorts the full result paths: "a-b/x" < "a/x".
        let r = Root::new();
        r.dirs(&["/p1", "/p2"]);
        r.file("/etc/ld.so.conf", "include /etc/*/x.conf\n");
        r.file("/etc/a/x.conf", "/p2\n");
        r.file("/etc/a-b/x.conf", "/p1\n");
        assert_eq!(r.parse().dirs, paths(&["/p1", "/p2"]));
    }

    #[test]
    fn include_cycles_and_depth_limit() {
        let r = Root::new();
        r.dirs(&["/c1", "/c2"]);
        r.file("/etc/ld.so.conf", "include a.conf\n");
        r.file("/etc/a.conf", "/c1\ninclude b.conf\n");
        r.file(
            "/etc/b.conf",
            "include /etc/a.conf\n/c2\ninclude ld.so.conf\n",
        );
        let c = r.parse();
        assert_eq!(c.dirs, paths(&["/c1", "/c2"]));
        assert_eq!(c.warnings.len(), 2, "{:?}", c.warnings);
        assert!(c.warnings.iter().all(|w| w.contains("include cycle")));

        let r = Root::new();
        r.dirs(&["/deep"]);
        r.file("/etc/ld.so.conf", "include c0\n");
        for i in 0..30 {
            r.file(&format!("/etc/c{i}"), &format!("include c{}\n", i + 1));
        }
        r.file("/etc/c30", "/deep\n");
        let c = r.parse();
        assert!(c.dirs.is_empty());
        assert_eq!(c.warnings.len(), 1);
        assert!(c.warnings[0].contains("nested deeper"), "{:?}", c.warnings);
    }

    #[test]
    fn hwcap_equals_relative_and_nonexistent() {
        let r = Root::new();
        r.dirs(&["/x=libc6", "/ok"]);
        r.file("/file", "");
        r.file(
            "/etc/ld.so.conf",
            "HWCAP 1 tls\nhwcap\t0 nosegneg\n/x=libc6\nrelative/dir\n/nope\n/file\n/ok\n\
             include\nincludes /x\n",
        );
        let c = r.parse();
        assert_eq!(c.dirs, paths(&["/x=libc6", "/ok"]));
        let w = c.warnings.join("\n");
        // `include` without a blank after it, and `includes`, are directories.
        assert_eq!(c.warnings.len(), 7, "{w}");
        assert!(w.contains(":8: relative directory \"include\""), "{w}");
        assert!(
            w.contains("/etc/ld.so.conf:1: hwcap directive ignored"),
            "{w}"
        );
        assert!(
            w.contains("/etc/ld.so.conf:2: hwcap directive ignored"),
            "{w}"
        );
        assert!(w.contains("'='"), "{w}");
        assert!(w.contains("relative directory"), "{w}");
        assert!(w.contains("/file is not a directory"), "{w}");
    }

    #[test]
    fn merged_usr_dedupe_keeps_first_spelling() {
        let r = Root::new();
        r.dirs(&["/usr/lib/x86_64-linux-gnu", "/usr/local/lib"]);
        symlink("usr/lib", r.host("/lib")).unwrap();
        r.file(
            "/etc/ld.so.conf",
            "/lib/x86_64-linux-gnu\n/usr/local/lib\n/usr/lib/x86_64-linux-gnu/\n/lib/../lib/x86_64-linux-gnu\n",
        );
        let c = r.parse();
        assert_eq!(c.dirs, paths(&["/lib/x86_64-linux-gnu", "/usr/local/lib"]));
    }

    #[test]
    fn symlinked_conf_dir_with_absolute_target_stays_in_root() {
        let r = Root::new();
        let outside = tempfile::tempdir().unwrap();
        std::fs::write(outside.path().join("a.conf"), "/outside\n").unwrap();
        std::fs::create_dir_all(r.host("/outside")).unwrap();
        std::fs::create_dir_all(r.host("/inside")).unwrap();
        // The same absolute path inside the root holds a different file.
        let target = outside.path().to_str().unwrap().to_owned();
        r.file(&format!("{target}/a.conf"), "/inside\n");
        std::fs::create_dir_all(r.host("/etc")).unwrap();
        symlink(&target, r.host("/etc/ld.so.conf.d")).unwrap();
        r.file("/etc/ld.so.conf", "include /etc/ld.so.conf.d/*.conf\n");
        let c = r.parse();
        assert_eq!(c.dirs, paths(&["/inside"]));
        // A relative include inside the linked directory also stays inside.
        symlink("/etc/../../../..", r.host("/up")).unwrap();
        r.file("/etc/ld.so.conf", "include /up/etc/ld.so.conf.d/*.conf\n");
        assert_eq!(r.parse().dirs, paths(&["/inside"]));
    }

    #[test]
    fn fnmatch_cases() {
        let yes: &[(&str, &str)] = &[
            ("*.conf", "a.conf"),
            ("x?.conf", "x1.conf"),
            ("[a-c]*", "b"),
            ("[!a-c]*", "d"),
            ("[^a-c]*", "d"),
            ("[]x]", "]"),
            ("[a-]", "-"),
            ("[[:digit:]][[:alpha:]]", "1z"),
            ("\\*", "*"),
            ("a\\?b", "a?b"),
            ("[", "["),
            ("a[b", "a[b"),
            (".*", ".hidden"),
            ("*a*b*c", "xxaxxbxxc"),
            ("**", "abc"),
        ];
        for (p, n) in yes {
            assert!(fnmatch(p.as_bytes(), n.as_bytes()), "{p} should match {n}");
        }
        let no: &[(&str, &str)] = &[
            ("*.conf", ".hidden.conf"),
            ("?x", ".x"),
            ("[.]x", ".x"),
            ("x?.conf", "x10.conf"),
            ("[a-c]", "d"),
            ("[!a-c]", "b"),
            ("[[:nope:]]", "a"),
            ("a\\?b", "axb"),
            ("*a*b*c", "xxaxxbxx"),
            ("abc", "ab"),
        ];
        for (p, n) in no {
            assert!(
                !fnmatch(p.as_bytes(), n.as_bytes()),
                "{p} should not match {n}"
            );
        }
    }

    #[test]
    fn garbage_never_panics() {
        let r = Root::new();
        r.dirs(&["/d"]);
        let mut seed = 42u64;
        let alphabet = b"/d*?[]!^-\\: \t\n#includehwcap=.\0\r\xff";
        for round in 0..300 {
            let mut text = Vec::new();
            for _ in 0..(round % 97) {
                seed = seed
                    .wrapping_mul(6_364_136_223_846_793_005)
                    .wrapping_add(1_442_695_040_888_963_407);
                let i = (seed >> 33) as usize % alphabet.len();
                text.push(alphabet[i]);
            }
            std::fs::create_dir_all(r.host("/etc")).unwrap();
            std::fs::write(r.host("/etc/ld.so.conf"), &text).unwrap();
            let _ = r.parse();
        }
        for p in ["[", "[!", "[a-", "[[:", "[[:x", "\\", "[\\", "[a-\\"] {
            let _ = fnmatch(p.as_bytes(), b"a");
            let mut budget = GLOB_BUDGET;
            let _ = glob(&r.fs, format!("/{p}").as_bytes(), &mut budget);
        }
    }

    /// The configured directories `ldconfig -v -N` prints, without the
    /// built-in ones; `None` when ldconfig cannot be run. The bool says
    /// whether built-ins could be told apart (glibc >= 2.36 prints origins).
    fn ldconfig_dirs() -> Option<(Vec<PathBuf>, bool)> {
        let out = Command::new("ldconfig")
            .args(["-v", "-N"])
            .output()
            .or_else(|_| Command::new("/sbin/ldconfig").args(["-v", "-N"]).output());
        let out = match out {
            Ok(o) => o,
            Err(e) => {
                eprintln!("skipping: ldconfig not runnable: {e}");
                return None;
            }
        };
        let text = String::from_utf8_lossy(&out.stdout);
        let mut dirs = Vec::new();
        let mut knows_origin = false;
        for line in text.lines() {
            if line.starts_with(['\t', ' ']) || line.contains(": (hwcap: ") {
                continue;
            }
            if let Some((dir, origin)) = line.split_once(": (from ") {
                knows_origin = true;
                if !origin.starts_with("<builtin>") {
                    dirs.push(PathBuf::from(dir));
                }
            } else if let Some(dir) = line.strip_suffix(':') {
                dirs.push(PathBuf::from(dir));
            }
        }
        Some((dirs, knows_origin))
    }

    #[test]
    fn host_conf_matches_ldconfig() {
        if !Path::new("/etc/ld.so.conf").exists() {
            eprintln!("skipping: no /etc/ld.so.conf");
            return;
        }
        let fs = RootFs::new(Path::new("/")).unwrap();
        let ours = parse(&fs, Path::new("/etc/ld.so.conf"));
        let Some((theirs, exact)) = ldconfig_dirs() else {
            return;
        };
        if exact {
            assert_eq!(ours.dirs, theirs, "warnings: {:?}", ours.warnings);
        } else {
            // Older ldconfig: configured dirs first, then built-ins.
            assert!(
                theirs.starts_with(&ours.dirs),
                "{:?} vs {theirs:?}",
                ours.dirs
            );
        }
    }
}
