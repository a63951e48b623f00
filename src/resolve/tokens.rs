//! Dynamic string tokens: `$ORIGIN`, `$LIB`, `$PLATFORM` and their braced forms.
//!
//! Owns the lexical rules of glibc's `is_dst`/`_dl_dst_substitute`: a token
//! name must not be followed by `[A-Za-z0-9_]`, braces close right after the
//! name, unknown `$` sequences are copied literally, and a known token whose
//! value is unknown makes the whole string unusable (`None`).

/// Values the tokens expand to for one object.
#[derive(Debug, Clone, Copy)]
pub struct TokenValues<'a> {
    /// `$ORIGIN`: the directory of the object carrying the string.
    pub origin: Option<&'a [u8]>,
    /// `$LIB`.
    pub lib: Option<&'a [u8]>,
    /// `$PLATFORM`.
    pub platform: Option<&'a [u8]>,
}

/// Which known token starts `input` (the bytes right after a `$`), and how
/// many bytes it spans.
fn is_dst(input: &[u8], name: &[u8]) -> usize {
    let (curly, rest) = match input.first() {
        Some(b'{') => (true, &input[1..]),
        _ => (false, input),
    };
    if !rest.starts_with(name) {
        return 0;
    }
    let next = rest.get(name.len()).copied();
    if curly {
        if next == Some(b'}') {
            name.len() + 2
        } else {
            0
        }
    } else if matches!(next, Some(c) if c.is_ascii_alphanumeric() || c == b'_') {
        0
    } else {
        name.len()
    }
}

/// Whether `s` contains any known token.
pub fn has_dst(s: &[u8]) -> bool {
    s.iter().enumerate().any(|(i, &c)| {
        c == b'$'
            && [&b"ORIGIN"[..], b"LIB", b"PLATFORM"]
                .iter()
                .any(|n| is_dst(&s[i + 1..], n) != 0)
    })
}

/// Expands every token in `s`. `None` when a token's value is unknown.
pub fn expand(s: &[u8], v: &TokenValues<'_>) -> Option<Vec<u8>> {
    let mut out = Vec::with_capacity(s.len());
    let mut i = 0;
    while i < s.len() {
        if s[i] == b'$' {
            let rest = &s[i + 1..];
            let tokens: [(&[u8], Option<&[u8]>); 3] = [
                (b"ORIGIN", v.origin),
                (b"PLATFORM", v.platform),
                (b"LIB", v.lib),
            ];
            let mut matched = false;
            for (name, value) in tokens {
                let n = is_dst(rest, name);
                if n != 0 {
                    out.extend_from_slice(value?);
                    i += 1 + n;
                    matched = true;
                    break;
                }
            }
            if matched {
                continue;
            }
        }
        out.push(s[i]);
        i += 1;
    }
    Some(out)
}

/// Expands `s`, one search-path element or a `DT_NEEDED` name, as glibc
/// does for a program in secure mode (`AT_SECURE`: setuid, setgid or file
/// capabilities, run by another user; `_dl_dst_substitute` with
/// `__libc_enable_secure`). `$ORIGIN` expands only when it starts the
/// string and is followed by `/` or its end; anywhere else the whole
/// string is dropped (`None`). When `s` belongs to the program itself,
/// `trusted` holds the loader's default directories, and a string in which
/// `$ORIGIN` expanded must, normalised lexically, lie below one of them
/// (`is_trusted_path_normalize`); otherwise it is dropped too. glibc 2.41
/// and later (`normalized`) then use that normalised string (`/usr/bin/../lib`
/// is loaded from as `/usr/lib`); 2.36 keeps the expansion as it is. `$LIB`
/// and `$PLATFORM` are the loader's own values and need no check.
pub fn expand_secure(
    s: &[u8],
    v: &TokenValues<'_>,
    trusted: Option<&[Vec<u8>]>,
    normalized: bool,
) -> Result<Vec<u8>, Dropped> {
    let mut out = Vec::with_capacity(s.len());
    let mut origin_used = false;
    let mut i = 0;
    while i < s.len() {
        if s[i] == b'$' {
            let rest = &s[i + 1..];
            let n = is_dst(rest, b"ORIGIN");
            if n != 0 {
                if i != 0 || !matches!(rest.get(n), None | Some(b'/')) {
                    return Err(Dropped::OriginPlace);
                }
                out.extend_from_slice(v.origin.ok_or(Dropped::Unknown)?);
                origin_used = true;
                i += 1 + n;
                continue;
            }
            let mut matched = false;
            for (name, value) in [(&b"PLATFORM"[..], v.platform), (b"LIB", v.lib)] {
                let n = is_dst(rest, name);
                if n != 0 {
                    out.extend_from_slice(value.ok_or(Dropped::Unknown)?);
                    i += 1 + n;
                    matched = true;
                    break;
                }
            }
            if matched {
                continue;
            }
        }
        out.push(s[i]);
        i += 1;
    }
    match trusted {
        Some(dirs) if origin_used => {
            let mut n = normalize(&out);
            if !is_trusted(&n, dirs) {
                return Err(Dropped::Untrusted);
            }
            if !normalized {
                return Ok(out);
            }
            // The trailing slash the normal form always has, only where
            // the expansion had one.
            if out.last() != Some(&b'/') && n.len() > 1 {
                n.pop();
            }
            Ok(n)
        }
        _ => Ok(out),
    }
}

/// Why [`expand_secure`] drops a string.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dropped {
    /// A token whose value is unknown (as outside secure mode).
    Unknown,
    /// `$ORIGIN` not at the start, or not followed by `/` or the end.
    OriginPlace,
    /// The program's `$ORIGIN` leads outside the default directories.
    Untrusted,
}

impl Dropped {
    /// Why, in words (for notes).
    pub fn reason(self) -> &'static str {
        match self {
            Dropped::Unknown => "a token's value is unknown",
            Dropped::OriginPlace => {
                "in secure mode $ORIGIN must start the element and be followed by '/' or its end"
            }
            Dropped::Untrusted => {
                "in secure mode the program's $ORIGIN must lead into a default directory"
            }
        }
    }
}

/// The normal form of `path` that glibc's `is_trusted_path_normalize`
/// makes: `.` and `..` components and repeated slashes removed lexically (a
/// `..` drops the component before it, never the leading `/`), ending in
/// `/`.
fn normalize(path: &[u8]) -> Vec<u8> {
    let mut n: Vec<u8> = Vec::with_capacity(path.len() + 1);
    let mut i = 0;
    while i < path.len() {
        if path[i] == b'/' {
            let next = |k: usize| path.get(i + k).copied();
            if next(1) == Some(b'.') {
                if next(2) == Some(b'.') && matches!(next(3), None | Some(b'/')) {
                    // Back to the previous slash (kept out), as glibc's
                    // `while (wnp > npath && *--wnp != '/')`.
                    while let Some(c) = n.pop() {
                        if c == b'/' {
                            break;
                        }
                    }
                    i += 3;
                    continue;
                }
                if matches!(next(2), None | Some(b'/')) {
                    i += 2;
                    continue;
                }
            }
            if n.last() == Some(&b'/') {
                i += 1;
                continue;
            }
        }
        n.push(path[i]);
        i += 1;
    }
    if n.last() != Some(&b'/') {
        n.push(b'/');
    }
    n
}

/// Whether `normal` ([`normalize`]d, not empty) starts with one of `dirs`
/// (each taken with a trailing `/`): glibc's `is_trusted_path_normalize`.
fn is_trusted(normal: &[u8], dirs: &[Vec<u8>]) -> bool {
    dirs.iter().any(|d| {
        let mut d = d.clone();
        if d.last() != Some(&b'/') {
            d.push(b'/');
        }
        normal.starts_with(&d)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const V: TokenValues<'static> = TokenValues {
        origin: Some(b"/app/bin"),
        lib: Some(b"lib/x86_64-linux-gnu"),
        platform: Some(b"x86_64"),
    };

    #[test]
    fn lexical_rules() {
        let e = |s: &str| expand(s.as_bytes(), &V).map(|v| String::from_utf8(v).unwrap());
        assert_eq!(e("$ORIGIN/../lib").unwrap(), "/app/bin/../lib");
        assert_eq!(e("${ORIGIN}/x").unwrap(), "/app/bin/x");
        assert_eq!(e("$ORIGINX/y").unwrap(), "$ORIGINX/y");
        assert_eq!(e("${ORIGIN/y").unwrap(), "${ORIGIN/y");
        assert_eq!(
            e("/usr/$LIB/$PLATFORM").unwrap(),
            "/usr/lib/x86_64-linux-gnu/x86_64"
        );
        assert_eq!(e("/a/$FOO").unwrap(), "/a/$FOO");
        assert_eq!(e("$ORIGIN$ORIGIN").unwrap(), "/app/bin/app/bin");
        let unknown = TokenValues {
            platform: None,
            ..V
        };
        assert_eq!(expand(b"/x/$PLATFORM", &unknown), None);
        assert!(has_dst(b"a/${LIB}"));
        assert!(!has_dst(b"a/$LIBX"));
    }

    #[test]
    fn secure_mode_rules() {
        let dirs: Vec<Vec<u8>> = [
            "/lib/x86_64-linux-gnu",
            "/usr/lib/x86_64-linux-gnu",
            "/lib",
            "/usr/lib",
        ]
        .iter()
        .map(|d| d.as_bytes().to_vec())
        .collect();
        let at = |origin: &'static str| TokenValues {
            origin: Some(origin.as_bytes()),
            ..V
        };
        let e = |s: &str, v: TokenValues<'_>, exe: bool| {
            expand_secure(s.as_bytes(), &v, exe.then_some(&dirs[..]), false)
                .ok()
                .map(|v| String::from_utf8(v).unwrap())
        };
        // A library's $ORIGIN: only at the start, before '/' or the end.
        assert_eq!(e("$ORIGIN/../lib", V, false).unwrap(), "/app/bin/../lib");
        assert_eq!(e("${ORIGIN}", V, false).unwrap(), "/app/bin");
        assert_eq!(e("/x/$ORIGIN", V, false), None);
        assert_eq!(e("$ORIGIN-x", V, false), None);
        assert_eq!(e("$ORIGIN/a/$ORIGIN", V, false), None);
        assert_eq!(e("$ORIGINX/y", V, false).unwrap(), "$ORIGINX/y");
        assert_eq!(
            e("/usr/$LIB", V, false).unwrap(),
            "/usr/lib/x86_64-linux-gnu"
        );
        // The program's: also below a default directory once normalised.
        assert_eq!(e("$ORIGIN/../lib", V, true), None);
        assert_eq!(
            e(
                "$ORIGIN/../lib/x86_64-linux-gnu/extra",
                at("/usr/bin"),
                true
            )
            .unwrap(),
            "/usr/bin/../lib/x86_64-linux-gnu/extra"
        );
        assert_eq!(e("$ORIGIN", at("/usr/lib"), true).unwrap(), "/usr/lib");
        assert_eq!(e("$ORIGIN", at("/usr/libexec"), true), None);
        assert_eq!(
            e("$ORIGIN/./..//lib/", at("/usr/x"), true).unwrap(),
            "/usr/x/./..//lib/"
        );
        assert_eq!(
            e("$ORIGIN/../../../lib", at("/a"), true).unwrap(),
            "/a/../../../lib"
        );
        // No $ORIGIN: nothing to check, even for the program.
        assert_eq!(e("/opt/lib", V, true).unwrap(), "/opt/lib");
        let why =
            |s: &str, exe: bool| expand_secure(s.as_bytes(), &V, exe.then_some(&dirs[..]), false);
        assert_eq!(why("/x/$ORIGIN", false), Err(Dropped::OriginPlace));
        assert_eq!(why("$ORIGIN/../lib", true), Err(Dropped::Untrusted));
        let no_platform = TokenValues {
            platform: None,
            ..V
        };
        assert_eq!(
            expand_secure(b"/a/$PLATFORM", &no_platform, None, false),
            Err(Dropped::Unknown)
        );
    }
}
