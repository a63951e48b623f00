//! Small byte-string helpers shared by several modules.
//!
//! Owns nothing but pure functions over bytes: natural ("version-like")
//! ordering and lossy display. No I/O.

use std::cmp::Ordering;

/// Compares two byte strings so that runs of digits compare as numbers
/// (`GLIBC_2.9` < `GLIBC_2.34`); otherwise bytewise.
pub fn natural_cmp(a: &[u8], b: &[u8]) -> Ordering {
    let (mut i, mut j) = (0, 0);
    while i < a.len() && j < b.len() {
        if a[i].is_ascii_digit() && b[j].is_ascii_digit() {
            let si = i;
            while i < a.len() && a[i].is_ascii_digit() {
                i += 1;
            }
            let sj = j;
            while j < b.len() && b[j].is_ascii_digit() {
                j += 1;
            }
            let na = trim_zeros(&a[si..i]);
            let nb = trim_zeros(&b[sj..j]);
            let ord = na.len().cmp(&nb.len()).then_with(|| na.cmp(nb));
            if ord != Ordering::Equal {
                return ord;
            }
        } else {
            if a[i] != b[j] {
                return a[i].cmp(&b[j]);
            }
            i += 1;
            j += 1;
        }
    }
    (a.len() - i).cmp(&(b.len() - j))
}

fn trim_zeros(d: &[u8]) -> &[u8] {
    let k = d.iter().position(|&c| c != b'0').unwrap_or(d.len());
    &d[k..]
}

/// Lossy display of a byte string.
pub fn show(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions_sort_numerically() {
        assert_eq!(natural_cmp(b"GLIBC_2.9", b"GLIBC_2.34"), Ordering::Less);
        assert_eq!(natural_cmp(b"GLIBC_2.34", b"GLIBC_2.34"), Ordering::Equal);
        assert_eq!(natural_cmp(b"GLIBC_2.3.4", b"GLIBC_2.3"), Ordering::Greater);
    }
}
