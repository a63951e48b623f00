//! Library names an object's read-only data spells (`--dlopen-strings`).
//!
//! Owns the heuristic for plugins that application code loads with
//! `dlopen("libfoo.so.1", …)` and declares nowhere (no `DT_NEEDED`, no
//! `.note.dlopen`). The name is a string literal, which the linker puts in
//! read-only data: a loadable segment that is neither writable nor
//! executable (`-z separate-code`, the default of current binutils on
//! x86), else the read-only, executable one it shares with the code. Only
//! an object that calls `dlopen` or `dlmopen` is looked at
//! ([`calls_dlopen`]). Its segments are read in windows, so memory stays
//! flat whatever their size. Every NUL-terminated string there that looks
//! like a library file name ([`is_library_name`]: a file name ending in
//! `.so`, or `.so.` and dot-separated numbers, without `/` or as an
//! absolute path or one that starts with `$ORIGIN/`, made only of letters,
//! digits and `._+-`) is a candidate,
//! except in the dynamic string table (the object's own `DT_NEEDED` names
//! and SONAME) and the `PT_INTERP` string ([`dlopen_candidates`]). Nothing
//! here can tell whether the object really passes the string to `dlopen`;
//! the caller treats the names as candidates (one not found is a warning,
//! never a problem).

use std::collections::BTreeSet;
use std::fs::File;

use super::ElfInfo;

/// Longest name kept (`NAME_MAX` for a file name without `/`; also the
/// longest absolute path looked at).
pub const MAX_NAME: usize = 255;
/// Most names kept per object.
pub const MAX_NAMES: usize = 256;
/// Bytes read at once.
const WINDOW: usize = 64 << 10;
/// Most bytes of one object looked at.
const MAX_SCAN: u64 = 256 << 20;

/// Whether `file` has `dlopen` or `dlmopen` as an undefined dynamic symbol
/// that a relocation uses (it calls it, through the PLT or a pointer).
pub fn calls_dlopen(file: &File, info: &ElfInfo) -> bool {
    super::symbols::first_undefined_of(file, info, &[b"dlopen", b"dlmopen"]).is_some()
}

/// The library names `file` (described by `info`) spells in its read-only
/// data, for [`library_names`]: its dynamic string table, which holds its
/// own `DT_NEEDED` names and SONAME, is no data, and its `PT_INTERP`
/// string is its interpreter.
pub fn dlopen_candidates(file: &File, info: &ElfInfo, len: u64) -> Vec<Vec<u8>> {
    let skip: Vec<(u64, u64)> = info.tables.strtab().into_iter().collect();
    let mut names = library_names(file, len, &skip);
    names.retain(|n| info.interp.as_deref() != Some(n.as_slice()));
    names
}

/// The library names spelled in `file`'s read-only data (`len` bytes in
/// all), except strings that start inside one of the file ranges `skip`
/// (`(start, end)`), each once, in the order the data spells them (the
/// order a program that opens a list of names in turn opens them, and the
/// order the trace takes them in), at most [`MAX_NAMES`]. Does not check
/// whether the object calls `dlopen` ([`calls_dlopen`]).
pub fn library_names(file: &File, len: u64, skip: &[(u64, u64)]) -> Vec<Vec<u8>> {
    let mut ranges = super::read_only_data(file, len);
    if ranges.is_empty() {
        ranges = super::loadable_ranges(file, len, super::PF_W);
    }
    let mut found = Names::default();
    let mut budget = MAX_SCAN;
    for (at, size) in ranges {
        let end = at.saturating_add(size).min(len);
        let mut pos = at;
        while pos < end && budget > 0 {
            let n = (end - pos).min(WINDOW as u64).min(budget) as usize;
            let Ok(buf) = super::read_vec_at(file, n, pos) else {
                break;
            };
            budget -= n as u64;
            let last = pos + n as u64 >= end;
            scan(&buf, pos, pos == at, skip, &mut found);
            if last || found.order.len() >= MAX_NAMES {
                break;
            }
            // Windows overlap by a whole name and its NUL, so a name cut by
            // the end of one window lies whole in the next.
            pos += (n - (MAX_NAME + 1)) as u64;
        }
    }
    found.order
}

/// Names found so far: each once, in the order first met.
#[derive(Default)]
struct Names {
    order: Vec<Vec<u8>>,
    seen: BTreeSet<Vec<u8>>,
}

impl Names {
    fn add(&mut self, s: &[u8]) {
        if self.order.len() < MAX_NAMES && !self.seen.contains(s) {
            self.seen.insert(s.to_vec());
            self.order.push(s.to_vec());
        }
    }
}

/// Adds to `out` every library name in `buf`, a window of a segment read
/// from file offset `base`: strings run from a NUL (or the segment's
/// start, `first`) to a NUL. A string the window cuts is left to the
/// window that holds it whole; one that the segment's end cuts is no C
/// string. Strings that start in a `skip` range are passed over.
fn scan(buf: &[u8], base: u64, first: bool, skip: &[(u64, u64)], out: &mut Names) {
    for hit in memchr::memmem::find_iter(buf, b".so") {
        let from = hit.saturating_sub(MAX_NAME);
        let start = match memchr::memrchr(0, &buf[from..hit]) {
            Some(z) => from + z + 1,
            None if from == 0 && first => 0,
            None => continue,
        };
        let to = (hit + MAX_NAME + 1).min(buf.len());
        let Some(z) = memchr::memchr(0, &buf[hit..to]) else {
            continue;
        };
        let at = base + start as u64;
        if skip.iter().any(|&(from, to)| (from..to).contains(&at)) {
            continue;
        }
        let s = &buf[start..hit + z];
        if is_library_name(s) {
            out.add(s);
        }
    }
}

/// The dynamic string tokens a `dlopen` name may hold in its directory
/// part (glibc expands them relative to the caller), each followed there
/// by `/`.
const TOKENS: [&[u8]; 6] = [
    b"${ORIGIN}",
    b"$ORIGIN",
    b"${PLATFORM}",
    b"$PLATFORM",
    b"${LIB}",
    b"$LIB",
];

/// Whether `s` looks like a library a program would `dlopen`: at most
/// [`MAX_NAME`] bytes of letters, digits and `._+-/`; no `/`, or a path
/// that is absolute or starts with a token (`$ORIGIN/`, and `$LIB` or
/// `$PLATFORM` as a directory anywhere in it, braced or not); its file
/// name a stem that starts with a letter, digit or `_`, then `.so`, then
/// nothing or `.N` groups of digits (`libfoo.so`, `libfoo.so.1.2`,
/// `/usr/lib/app/plugin.so`, `$ORIGIN/../lib/plugin.so`).
pub fn is_library_name(s: &[u8]) -> bool {
    if s.is_empty() || s.len() > MAX_NAME {
        return false;
    }
    let (dir, base) = match s.iter().rposition(|&b| b == b'/') {
        Some(i) => (&s[..=i], &s[i + 1..]),
        None => (&s[..0], s),
    };
    // The directory with each token folded to one letter.
    let mut plain = Vec::with_capacity(dir.len());
    let mut rest = dir;
    let mut leading_token = false;
    while let Some(&b) = rest.first() {
        let token = TOKENS
            .iter()
            .find(|t| rest.starts_with(t) && rest.get(t.len()) == Some(&b'/'));
        match token {
            Some(t) => {
                leading_token |= plain.is_empty();
                plain.push(b'T');
                rest = &rest[t.len()..];
            }
            None => {
                plain.push(b);
                rest = &rest[1..];
            }
        }
    }
    let allowed =
        |b: &u8| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'+' | b'-' | b'/');
    if !plain.iter().chain(base).all(allowed) {
        return false;
    }
    if !dir.is_empty() && dir[0] != b'/' && !leading_token {
        return false;
    }
    if !base
        .first()
        .is_some_and(|&b| b.is_ascii_alphanumeric() || b == b'_')
    {
        return false;
    }
    memchr::memmem::find_iter(base, b".so").any(|i| {
        let rest = &base[i + 3..];
        i > 0
            && (rest.is_empty()
                || rest.strip_prefix(b".").is_some_and(|r| {
                    r.split(|&b| b == b'.')
                        .all(|g| !g.is_empty() && g.iter().all(u8::is_ascii_digit))
                }))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn library_names_are_told_from_other_strings() {
        for yes in [
            "libfoo.so",
            "libfoo.so.1",
            "libGL.so.1.7.0",
            "libstdc++.so.6",
            "pam_unix.so",
            "ld-linux-x86-64.so.2",
            "/usr/lib/app/plugin.so",
            "/opt/x/lib/libz.so.1",
            "libfoo.so.so",
            "a.so",
            "$ORIGIN/libp.so",
            "${ORIGIN}/../lib/libp.so.1",
            "/opt/$LIB/libp.so",
            "$ORIGIN/../${PLATFORM}/libp.so",
        ] {
            assert!(is_library_name(yes.as_bytes()), "{yes}");
        }
        for no in [
            "",
            ".so",
            "lib.so.",
            "libfoo.so.1.",
            "libfoo.so..1",
            "libfoo.so.1a",
            "libfoo.sox",
            "libfoo.so1",
            "lib%s.so",
            "libfoo.so.%d",
            "plugins/libfoo.so",
            "./libfoo.so",
            "/usr/lib/",
            "/usr/lib/.so",
            "lib foo.so",
            "libfoo.so\n",
            "-libfoo.so",
            ".libfoo.so",
            "error loading libfoo.so",
            "$ORIGIN",
            "$ORIGINAL/libp.so",
            "$HOME/libp.so",
            "lib$LIB.so",
            "$ORIGINlibp.so",
            "x/$ORIGIN/libp.so",
        ] {
            assert!(!is_library_name(no.as_bytes()), "{no:?}");
        }
        let long = format!("lib{}.so", "x".repeat(MAX_NAME - 6));
        assert_eq!(long.len(), MAX_NAME);
        assert!(is_library_name(long.as_bytes()));
        let longer = format!("lib{}.so", "x".repeat(MAX_NAME - 5));
        assert!(!is_library_name(longer.as_bytes()));
    }

    /// A 64-bit little-endian ELF file of `len` bytes (filled with `fill`)
    /// whose program headers are the given `(p_flags, p_offset, p_filesz)`
    /// loadable segments.
    fn elf(len: usize, fill: u8, segments: &[(u32, u64, u64)]) -> Vec<u8> {
        let mut b = vec![fill; len];
        b[..64 + 56 * segments.len()].fill(0);
        b[..7].copy_from_slice(b"\x7fELF\x02\x01\x01");
        b[16..18].copy_from_slice(&3u16.to_le_bytes());
        b[18..20].copy_from_slice(&62u16.to_le_bytes());
        b[32..40].copy_from_slice(&64u64.to_le_bytes());
        b[54..56].copy_from_slice(&56u16.to_le_bytes());
        b[56..58].copy_from_slice(&(segments.len() as u16).to_le_bytes());
        for (i, &(flags, offset, size)) in segments.iter().enumerate() {
            let p = &mut b[64 + 56 * i..64 + 56 * (i + 1)];
            p[0..4].copy_from_slice(&1u32.to_le_bytes());
            p[4..8].copy_from_slice(&flags.to_le_bytes());
            p[8..16].copy_from_slice(&offset.to_le_bytes());
            p[32..40].copy_from_slice(&size.to_le_bytes());
        }
        b
    }

    fn names_of(bytes: &[u8]) -> Vec<String> {
        names_skipping(bytes, &[])
    }

    fn names_skipping(bytes: &[u8], skip: &[(u64, u64)]) -> Vec<String> {
        let t = tempfile::NamedTempFile::new().unwrap();
        std::fs::write(t.path(), bytes).unwrap();
        let f = File::open(t.path()).unwrap();
        library_names(&f, bytes.len() as u64, skip)
            .into_iter()
            .map(|n| String::from_utf8(n).unwrap())
            .collect()
    }

    fn put(b: &mut [u8], at: usize, s: &str) {
        b[at - 1] = 0;
        b[at..at + s.len()].copy_from_slice(s.as_bytes());
        b[at + s.len()] = 0;
    }

    /// Names are found anywhere in the read-only segment, across window
    /// boundaries and at its very start, in the order of their offsets,
    /// and nowhere else; strings the
    /// segment cuts, unterminated ones and other strings are not names.
    /// Fails if windows do not overlap by a name, or the code segment is
    /// searched when a read-only one exists.
    #[test]
    fn names_are_read_from_read_only_data_only() {
        let (ro, rx) = ((0x1000u64, 0x30000u64), (0x40000u64, 0x1000u64));
        let len = 0x50000;
        // PF_R; PF_R|PF_X; PF_R|PF_W.
        let mut b = elf(
            len,
            b'x',
            &[(4, ro.0, ro.1), (5, rx.0, rx.1), (6, 0x48000, 0x100)],
        );
        let w = WINDOW;
        let spots = [
            (ro.0 as usize, "libstart.so.1"),
            (ro.0 as usize + 100, "libplain.so"),
            (ro.0 as usize + w - 5, "libcut.so.2"),
            (
                ro.0 as usize + w - (MAX_NAME + 1) - 3,
                "/usr/lib/app/libedge.so",
            ),
            (ro.0 as usize + 2 * w - 300, "libtwo.so.3.4"),
            (ro.0 as usize + 3000, "lib%s.so"),
            (rx.0 as usize + 16, "libcode.so.1"),
            (0x48010, "libdata.so.1"),
            (0x800, "libnoseg.so.1"),
        ];
        for (at, s) in spots {
            put(&mut b, at, s);
        }
        // The segment's last bytes: a name with no NUL after it.
        let tail = (ro.0 + ro.1) as usize - 10;
        b[tail - 1] = 0;
        b[tail..tail + 10].copy_from_slice(b"libtail.so");
        // (In the order of their offsets: each once, the overlap of two
        // windows read twice.)
        assert_eq!(
            names_of(&b),
            [
                "libstart.so.1",
                "libplain.so",
                "/usr/lib/app/libedge.so",
                "libcut.so.2",
                "libtwo.so.3.4",
            ]
        );
        // Strings that start in a skipped range (a dynamic string table).
        let at = ro.0 + 100;
        assert_eq!(
            names_skipping(&b, &[(at - 1, at + 1)]),
            [
                "libstart.so.1",
                "/usr/lib/app/libedge.so",
                "libcut.so.2",
                "libtwo.so.3.4",
            ]
        );
        assert_eq!(names_skipping(&b, &[(at + 1, at + 11)]).len(), 5);
        // Without a read-only segment, the read-only code segment is looked at.
        let mut c = elf(len, b'x', &[(5, rx.0, rx.1), (6, 0x48000, 0x100)]);
        put(&mut c, rx.0 as usize + 16, "libcode.so.1");
        put(&mut c, 0x48010, "libdata.so.1");
        assert_eq!(names_of(&c), ["libcode.so.1"]);
        // Not an ELF file: nothing.
        assert!(names_of(b"\0libfoo.so.1\0").is_empty());
    }

    /// A segment full of `.so` hits costs bounded work per hit and keeps
    /// at most [`MAX_NAMES`] names.
    #[test]
    fn many_names_are_capped() {
        let len = 0x40000;
        let mut b = elf(len, 0, &[(4, 0x1000, 0x3f000)]);
        let mut at = 0x1001;
        let mut n = 0;
        while at + 20 < len {
            put(&mut b, at, &format!("lib{n:05}.so"));
            at += 12;
            n += 1;
        }
        let got = names_of(&b);
        assert_eq!(got.len(), MAX_NAMES);
        assert!(got.windows(2).all(|w| w[0] < w[1]));
        // A region of `.so.so.so…` with no NUL: no name, and quickly.
        let mut c = elf(len, 0, &[(4, 0x1000, 0x3f000)]);
        for (i, x) in c[0x1000..].iter_mut().enumerate() {
            *x = b".so"[i % 3];
        }
        assert!(names_of(&c).is_empty());
    }
}
