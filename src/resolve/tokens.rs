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
}
