//! `.note.dlopen`: the libraries an object says it may `dlopen`; and the
//! x86 ISA levels a GNU property note says an object needs.
//!
//! Owns parsing of ELF dlopen metadata (UAPI.12): notes with owner `FDO`
//! and type `0x407c0c0a` whose descriptor is NUL-terminated JSON — an array
//! of objects with `soname` (array of alternatives, or one string in the
//! older single-object form), `feature`, `description` and `priority`
//! (`required`, `recommended` (default), `suggested`). Unknown keys are
//! ignored; malformed notes become warnings. GNU property notes (owner
//! `GNU`, `NT_GNU_PROPERTY_TYPE_0`): only `GNU_PROPERTY_X86_ISA_1_NEEDED`
//! is read ([`x86_isa_needed`]). Input parsing only: it uses
//! `serde_json::Value`, no report types.

/// The note type of dlopen metadata.
pub const NT_FDO_DLOPEN_METADATA: u32 = 0x407c_0c0a;

/// How much an object wants a dlopen dependency.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Priority {
    /// The object does not work without it.
    Required,
    /// Default: most users want it.
    Recommended,
    /// Optional extras.
    Suggested,
}

impl Priority {
    /// The JSON spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            Priority::Required => "required",
            Priority::Recommended => "recommended",
            Priority::Suggested => "suggested",
        }
    }
}

/// One dlopen dependency an object declares.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DlopenEntry {
    /// Alternatives, in preference order.
    pub sonames: Vec<Vec<u8>>,
    /// The feature it serves, if named.
    pub feature: Option<String>,
    /// A description, if given.
    pub description: Option<String>,
    /// Priority.
    pub priority: Priority,
}

fn u32_at(b: &[u8], off: usize, big: bool) -> Option<u32> {
    let s = b.get(off..off.checked_add(4)?)?;
    let a = [s[0], s[1], s[2], s[3]];
    Some(if big {
        u32::from_be_bytes(a)
    } else {
        u32::from_le_bytes(a)
    })
}

fn pad(n: usize, align: usize) -> Option<usize> {
    n.checked_add(align - 1).map(|v| v / align * align)
}

/// Calls `f(name, type, descriptor)` for each note of one `PT_NOTE`
/// segment (or `SHT_NOTE` section) of alignment `align` (4 or 8), in
/// order, the name without its NUL; stops at the first malformed header.
fn for_each_note(bytes: &[u8], big: bool, align: u64, mut f: impl FnMut(&[u8], u32, &[u8])) {
    let align = if align == 8 { 8 } else { 4 };
    let mut off = 0usize;
    while off + 12 <= bytes.len() {
        let (Some(namesz), Some(descsz), Some(ntype)) = (
            u32_at(bytes, off, big),
            u32_at(bytes, off + 4, big),
            u32_at(bytes, off + 8, big),
        ) else {
            break;
        };
        let name_start = off + 12;
        let Some(name_end) = name_start.checked_add(namesz as usize) else {
            break;
        };
        // Name and descriptor each start at an offset aligned to the
        // segment's alignment (4, or 8 as in .note.gnu.property).
        let Some(desc_start) = pad(name_end, align) else {
            break;
        };
        let Some(desc_end) = desc_start.checked_add(descsz as usize) else {
            break;
        };
        if desc_end > bytes.len() || name_end > bytes.len() {
            break;
        }
        let name = &bytes[name_start..name_end];
        let name = name.strip_suffix(b"\0").unwrap_or(name);
        f(name, ntype, &bytes[desc_start..desc_end]);
        let Some(next) = pad(desc_end, align) else {
            break;
        };
        if next <= off {
            break;
        }
        off = next;
    }
}

/// Parses the notes in one `PT_NOTE` segment (or `SHT_NOTE` section) of
/// alignment `align` (4 or 8), returning the dlopen entries and warnings.
pub fn parse_segment(bytes: &[u8], big: bool, align: u64) -> (Vec<DlopenEntry>, Vec<String>) {
    let (out, warnings, _) = parse_notes(bytes, big, align, false);
    (out, warnings)
}

/// [`parse_segment`], and with `x86` in the same walk
/// [`x86_isa_needed`]'s answer (`None` without `x86`).
pub fn parse_notes(
    bytes: &[u8],
    big: bool,
    align: u64,
    x86: bool,
) -> (Vec<DlopenEntry>, Vec<String>, Option<Option<u32>>) {
    let mut out = Vec::new();
    let mut warnings = Vec::new();
    let mut isa = None;
    let prop_align = if align == 8 { 8 } else { 4 };
    for_each_note(bytes, big, align, |name, ntype, desc| {
        if name == b"FDO" && ntype == NT_FDO_DLOPEN_METADATA {
            let json = desc.split(|&b| b == 0).next().unwrap_or_default();
            match parse_payload(json) {
                Ok(mut v) => out.append(&mut v),
                Err(e) => warnings.push(format!("malformed .note.dlopen: {e}")),
            }
        } else if x86 && isa.is_none() && name == b"GNU" && ntype == NT_GNU_PROPERTY_TYPE_0 {
            isa = Some(isa_property(desc, big, prop_align));
        }
    });
    (out, warnings, isa)
}

/// The `GNU_PROPERTY_X86_ISA_1_NEEDED` value among the properties of one
/// property note's descriptor, each padded to `align`.
fn isa_property(desc: &[u8], big: bool, align: usize) -> Option<u32> {
    let mut off = 0usize;
    while off + 8 <= desc.len() {
        let (Some(kind), Some(size)) = (u32_at(desc, off, big), u32_at(desc, off + 4, big)) else {
            break;
        };
        let data = off + 8;
        let end = data
            .checked_add(size as usize)
            .filter(|&e| e <= desc.len())?;
        if kind == GNU_PROPERTY_X86_ISA_1_NEEDED && size == 4 {
            return u32_at(desc, data, big);
        }
        off = pad(end, align)?;
    }
    None
}

/// The note type of GNU program properties (`.note.gnu.property`).
pub const NT_GNU_PROPERTY_TYPE_0: u32 = 5;

/// `GNU_PROPERTY_X86_ISA_1_NEEDED`: the x86 ISA levels an object needs,
/// one bit each (`GNU_PROPERTY_X86_ISA_1_BASELINE` 1, `_V2` 2, `_V3` 4,
/// `_V4` 8), as binutils 2.36 and later write it.
pub const GNU_PROPERTY_X86_ISA_1_NEEDED: u32 = 0xc000_8002;

/// The `GNU_PROPERTY_X86_ISA_1_NEEDED` bits of the first GNU property note
/// in one note segment of alignment `align` (an x86 object's; properties
/// are padded to 8 bytes in a 64-bit object, 4 in a 32-bit one, which the
/// segment's alignment is). `None` without that note or property, as the
/// loader takes only the first property note of an object.
pub fn x86_isa_needed(bytes: &[u8], big: bool, align: u64) -> Option<Option<u32>> {
    parse_notes(bytes, big, align, true).2
}

/// Parses one JSON payload (array of objects, or a single object).
pub fn parse_payload(json: &[u8]) -> Result<Vec<DlopenEntry>, String> {
    let v: serde_json::Value = serde_json::from_slice(json).map_err(|e| e.to_string())?;
    let items = match v {
        serde_json::Value::Array(a) => a,
        o @ serde_json::Value::Object(_) => vec![o],
        _ => return Err("payload is neither an array nor an object".into()),
    };
    let mut out = Vec::new();
    for item in items {
        let serde_json::Value::Object(map) = item else {
            return Err("an entry is not an object".into());
        };
        let sonames: Vec<Vec<u8>> = match map.get("soname") {
            Some(serde_json::Value::Array(a)) => a
                .iter()
                .filter_map(|s| s.as_str())
                .map(|s| s.as_bytes().to_vec())
                .collect(),
            Some(serde_json::Value::String(s)) => vec![s.as_bytes().to_vec()],
            _ => return Err("an entry has no soname".into()),
        };
        if sonames.is_empty() {
            return Err("an entry has an empty soname list".into());
        }
        let priority = match map.get("priority").and_then(|p| p.as_str()) {
            None | Some("recommended") => Priority::Recommended,
            Some("required") => Priority::Required,
            Some("suggested") => Priority::Suggested,
            Some(other) => return Err(format!("unknown priority {other:?}")),
        };
        out.push(DlopenEntry {
            sonames,
            feature: map
                .get("feature")
                .and_then(|f| f.as_str())
                .map(String::from),
            description: map
                .get("description")
                .and_then(|f| f.as_str())
                .map(String::from),
            priority,
        });
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn note(json: &str, align: usize) -> Vec<u8> {
        let mut desc = json.as_bytes().to_vec();
        desc.push(0);
        let mut v = Vec::new();
        v.extend_from_slice(&4u32.to_le_bytes());
        v.extend_from_slice(&(desc.len() as u32).to_le_bytes());
        v.extend_from_slice(&NT_FDO_DLOPEN_METADATA.to_le_bytes());
        v.extend_from_slice(b"FDO\0");
        while v.len() % align != 0 {
            v.push(0);
        }
        v.extend_from_slice(&desc);
        while v.len() % align != 0 {
            v.push(0);
        }
        v
    }

    #[test]
    fn both_payload_shapes_and_priorities() {
        let mut seg = note(
            r#"[{"soname":["libfoo.so.2","libfoo.so.1"],"feature":"foo","priority":"required","x":1},{"soname":["libbar.so.1"]}]"#,
            4,
        );
        seg.extend(note(
            r#"{"soname":"libold.so.0","priority":"suggested"}"#,
            4,
        ));
        let (e, w) = parse_segment(&seg, false, 4);
        assert!(w.is_empty(), "{w:?}");
        assert_eq!(e.len(), 3);
        assert_eq!(e[0].sonames[1], b"libfoo.so.1");
        assert_eq!(e[0].priority, Priority::Required);
        assert_eq!(e[1].priority, Priority::Recommended);
        assert_eq!(e[2].priority, Priority::Suggested);
        let (e8, _) = parse_segment(&note(r#"[{"soname":["a.so"]}]"#, 8), false, 8);
        assert_eq!(e8.len(), 1);
    }

    #[test]
    fn garbage_is_a_warning_not_a_panic() {
        let (e, w) = parse_segment(&note("{not json", 4), false, 4);
        assert!(e.is_empty());
        assert_eq!(w.len(), 1);
        for cut in 0..40 {
            let seg = note(r#"[{"soname":["libx.so"]}]"#, 4);
            let _ = parse_segment(&seg[..cut.min(seg.len())], false, 4);
        }
    }

    /// A GNU property note: `props` as (type, data) pairs, each padded to
    /// `align`, in the byte order `big` says.
    fn properties(props: &[(u32, &[u8])], align: usize, big: bool) -> Vec<u8> {
        let w = |v: &mut Vec<u8>, x: u32| {
            v.extend_from_slice(&if big {
                x.to_be_bytes()
            } else {
                x.to_le_bytes()
            })
        };
        let mut desc = Vec::new();
        for (kind, data) in props {
            w(&mut desc, *kind);
            w(&mut desc, data.len() as u32);
            desc.extend_from_slice(data);
            while desc.len() % align != 0 {
                desc.push(0);
            }
        }
        let mut v = Vec::new();
        w(&mut v, 4);
        w(&mut v, desc.len() as u32);
        w(&mut v, NT_GNU_PROPERTY_TYPE_0);
        v.extend_from_slice(b"GNU\0");
        v.extend_from_slice(&desc);
        v
    }

    /// The ISA property is found among others (an 8-byte-aligned 64-bit
    /// note, a 4-byte 32-bit one, either byte order), after a dlopen
    /// note; the first property note decides, with or without the ISA
    /// property; a property running past its note ends the search.
    #[test]
    fn the_x86_isa_property_is_read_from_the_first_property_note() {
        let feature = (0xc000_0002u32, &3u32.to_le_bytes()[..]);
        let isa = (GNU_PROPERTY_X86_ISA_1_NEEDED, &4u32.to_le_bytes()[..]);
        let seg = properties(&[feature, isa], 8, false);
        assert_eq!(x86_isa_needed(&seg, false, 8), Some(Some(4)));
        let mut seg = note(r#"[{"soname":["a.so"]}]"#, 4);
        seg.extend(properties(&[isa], 4, false));
        assert_eq!(x86_isa_needed(&seg, false, 4), Some(Some(4)));
        let be = (GNU_PROPERTY_X86_ISA_1_NEEDED, &2u32.to_be_bytes()[..]);
        assert_eq!(
            x86_isa_needed(&properties(&[be], 8, true), true, 8),
            Some(Some(2))
        );
        let mut seg = properties(&[feature], 8, false);
        seg.extend(properties(&[isa], 8, false));
        assert_eq!(x86_isa_needed(&seg, false, 8), Some(None));
        assert_eq!(x86_isa_needed(&note("[]", 4), false, 4), None);
        let mut cut = properties(&[isa], 8, false);
        cut[4] = 0; // descsz 0: the property lies outside its note
        assert_eq!(x86_isa_needed(&cut, false, 8), Some(None));
        let odd = (
            GNU_PROPERTY_X86_ISA_1_NEEDED,
            &[1u8, 0, 0, 0, 0, 0, 0, 0][..],
        );
        assert_eq!(
            x86_isa_needed(&properties(&[odd], 8, false), false, 8),
            Some(None)
        );
    }
}
