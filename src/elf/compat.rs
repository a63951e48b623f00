//! Can this loader map that file? glibc's `open_verify` checks, statically.
//!
//! Owns the decision, for one candidate file found during a search, between
//! *accept*, *skip* (the loader silently goes on to the next directory: wrong
//! class, wrong machine, wrong ABI flags) and *fatal* (the loader aborts the
//! whole program: bad magic, wrong byte order, bad ABI fields, too short). It
//! looks only at the first 64 bytes of the candidate.

use super::{machine, Ident};

/// The outcome of checking one candidate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// The loader maps this file.
    Accept,
    /// The loader ignores this file and keeps searching.
    Skip(String),
    /// The loader stops with this error.
    Fatal(String),
}

const EI_NIDENT: usize = 16;
const ELFOSABI_SYSV: u8 = 0;
const ELFOSABI_GNU: u8 = 3;
const ELFOSABI_ARM_AEABI: u8 = 64;

/// `LIBC_ABI_MAX` of the loader for `machine`: with `ELFOSABI_GNU` (and on
/// MIPS with `ELFOSABI_SYSV` too) an `EI_ABIVERSION` below it is accepted.
/// Each port numbers its own ABI tags (`libc-abis`), so the bound is per
/// architecture; measured by patching a library's `EI_ABIVERSION` under
/// each loader (glibc 2.31 to 2.43 on x86-64; 2.36 on every port Debian
/// builds, and 2.40 to 2.43 where Debian 13 and testing have it): the same
/// in every release. Debian's MIPS glibc 2.40 and 2.42 mark their own
/// libraries 5 (`libc.so.6` included). Ports that cannot be run here
/// (Alpha, LoongArch, SuperH, x32, …) keep the common 4.
fn libc_abi_max(machine: u16) -> u8 {
    match machine {
        machine::MIPS => 6,
        machine::AARCH64 | machine::ARM | machine::S390 | machine::M68K | machine::PARISC => 3,
        _ => 4,
    }
}

fn u16_at(b: &[u8], off: usize, big: bool) -> u16 {
    let a = [b[off], b[off + 1]];
    if big {
        u16::from_be_bytes(a)
    } else {
        u16::from_le_bytes(a)
    }
}

fn u32_at(b: &[u8], off: usize, big: bool) -> u32 {
    let a = [b[off], b[off + 1], b[off + 2], b[off + 3]];
    if big {
        u32::from_be_bytes(a)
    } else {
        u32::from_le_bytes(a)
    }
}

/// Checks the header bytes `head` (at least the first 64 bytes of the file,
/// or the whole file if shorter) of a candidate against the loader `target`
/// (the identity of the program being loaded, which matches its `ld.so`).
pub fn check(target: &Ident, head: &[u8]) -> Verdict {
    let ehdr_size = if target.is_64 { 64 } else { 52 };
    if head.len() < ehdr_size {
        return Verdict::Fatal("file too short".into());
    }
    if &head[..4] != b"\x7fELF" {
        return Verdict::Fatal("invalid ELF header".into());
    }
    let class64 = match head[4] {
        1 => false,
        2 => true,
        _ => return Verdict::Fatal("invalid ELF header".into()),
    };
    if class64 != target.is_64 {
        return Verdict::Skip(format!(
            "wrong ELF class: ELFCLASS{}",
            if class64 { 64 } else { 32 }
        ));
    }
    let big = match head[5] {
        1 => false,
        2 => true,
        _ => return Verdict::Fatal("invalid ELF header".into()),
    };
    if big != target.big_endian {
        return Verdict::Fatal(format!(
            "ELF file data encoding not {}-endian",
            if target.big_endian { "big" } else { "little" }
        ));
    }
    if head[6] != 1 {
        return Verdict::Fatal("ELF file version ident does not match current one".into());
    }
    let osabi = head[7];
    let abiv = head[8];
    let osabi_ok = osabi == ELFOSABI_SYSV
        || osabi == ELFOSABI_GNU
        || (target.machine == machine::ARM && osabi == ELFOSABI_ARM_AEABI);
    if !osabi_ok {
        return Verdict::Fatal("ELF file OS ABI invalid".into());
    }
    let abiv_ok = match osabi {
        ELFOSABI_GNU => abiv < libc_abi_max(target.machine),
        ELFOSABI_SYSV if target.machine == machine::MIPS => abiv < libc_abi_max(machine::MIPS),
        _ => abiv == 0,
    };
    if !abiv_ok {
        return Verdict::Fatal("ELF file ABI version invalid".into());
    }
    if head[9..EI_NIDENT].iter().any(|&b| b != 0) {
        return Verdict::Fatal("nonzero padding in e_ident".into());
    }
    let e_type = u16_at(head, 16, big);
    let e_machine = u16_at(head, 18, big);
    let e_version = u32_at(head, 20, big);
    if e_version != 1 {
        return Verdict::Fatal("ELF file version does not match current one".into());
    }
    // e_flags and e_phentsize sit at class-dependent offsets.
    let (flags_off, phentsize_off, phentsize_want) =
        if class64 { (48, 54, 56) } else { (36, 42, 32) };
    let e_flags = u32_at(head, flags_off, big);
    if e_machine != target.machine {
        return Verdict::Skip(format!(
            "wrong machine: {} (need {})",
            super::machine_name(e_machine),
            super::machine_name(target.machine)
        ));
    }
    if let Some(v) = flags_mismatch(target, e_flags) {
        return v;
    }
    if e_type != 2 && e_type != 3 {
        return Verdict::Fatal("only ET_DYN and ET_EXEC can be loaded".into());
    }
    if u16_at(head, phentsize_off, big) != phentsize_want {
        return Verdict::Fatal("ELF file's phentsize not the expected size".into());
    }
    Verdict::Accept
}

/// The architecture-specific `e_flags` checks of `elf_machine_matches_host`
/// and ARM's header-validity check.
fn flags_mismatch(target: &Ident, flags: u32) -> Option<Verdict> {
    match target.machine {
        machine::PPC64 => {
            let want = target.e_flags & 3;
            let have = flags & 3;
            (have != 0 && want != 0 && have != want).then(|| {
                Verdict::Skip(format!("wrong PowerPC64 ABI: ELFv{have} (need ELFv{want})"))
            })
        }
        machine::RISCV => {
            let want = target.e_flags & 6;
            let have = flags & 6;
            (have != want).then(|| Verdict::Skip("wrong RISC-V float ABI".into()))
        }
        machine::MIPS => {
            let abi2 = 0x20;
            let nan2008 = 0x400;
            ((flags & abi2) != (target.e_flags & abi2)
                || (flags & nan2008) != (target.e_flags & nan2008))
                .then(|| Verdict::Skip("wrong MIPS ABI or NaN mode".into()))
        }
        machine::ARM => {
            const EABI_MASK: u32 = 0xff00_0000;
            const EABI5: u32 = 0x0500_0000;
            const SOFT: u32 = 0x200;
            const HARD: u32 = 0x400;
            if flags & EABI_MASK != EABI5 {
                return None;
            }
            let target_hard = target.e_flags & HARD != 0;
            let target_soft = target.e_flags & SOFT != 0;
            if target_hard && flags & SOFT != 0 {
                Some(Verdict::Fatal(
                    "soft-float library cannot load into a hard-float (armhf) program".into(),
                ))
            } else if target_soft && flags & HARD != 0 {
                Some(Verdict::Fatal(
                    "hard-float library cannot load into a soft-float (armel) program".into(),
                ))
            } else {
                None
            }
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn x86_64() -> Ident {
        Ident {
            is_64: true,
            big_endian: false,
            osabi: 0,
            abiversion: 0,
            e_type: 3,
            machine: machine::X86_64,
            e_flags: 0,
        }
    }

    fn header64(machine: u16) -> Vec<u8> {
        let mut h = vec![0u8; 64];
        h[..4].copy_from_slice(b"\x7fELF");
        h[4] = 2;
        h[5] = 1;
        h[6] = 1;
        h[16..18].copy_from_slice(&3u16.to_le_bytes());
        h[18..20].copy_from_slice(&machine.to_le_bytes());
        h[20..24].copy_from_slice(&1u32.to_le_bytes());
        h[54..56].copy_from_slice(&56u16.to_le_bytes());
        h
    }

    #[test]
    fn skip_and_fatal_follow_glibc() {
        let t = x86_64();
        assert_eq!(check(&t, &header64(62)), Verdict::Accept);
        assert!(matches!(check(&t, &header64(183)), Verdict::Skip(_)));
        let mut c32 = header64(62);
        c32[4] = 1;
        assert!(matches!(check(&t, &c32), Verdict::Skip(s) if s.contains("ELFCLASS32")));
        let mut be = header64(62);
        be[5] = 2;
        assert!(matches!(check(&t, &be), Verdict::Fatal(_)));
        assert!(matches!(check(&t, b"INPUT(x)"), Verdict::Fatal(_)));
        let mut pad = header64(62);
        pad[12] = 1;
        assert!(matches!(check(&t, &pad), Verdict::Fatal(_)));
        let mut abi = header64(62);
        abi[7] = 3;
        abi[8] = 2;
        assert_eq!(check(&t, &abi), Verdict::Accept);
        abi[8] = 9;
        assert!(matches!(check(&t, &abi), Verdict::Fatal(_)));
    }

    #[test]
    fn abi_version_bounds_are_each_ports_own() {
        // (machine, highest EI_ABIVERSION taken with ELFOSABI_GNU, the same with SYSV).
        for (m, gnu, sysv) in [
            (machine::X86_64, 3, 0),
            (machine::AARCH64, 2, 0),
            (machine::S390, 2, 0),
            (machine::MIPS, 5, 5),
            (machine::PPC64, 3, 0),
        ] {
            let t = Ident {
                machine: m,
                ..x86_64()
            };
            for (osabi, highest) in [(ELFOSABI_GNU, gnu), (ELFOSABI_SYSV, sysv)] {
                let mut h = header64(m);
                h[7] = osabi;
                h[8] = highest;
                assert_eq!(check(&t, &h), Verdict::Accept, "{m} {osabi} {highest}");
                h[8] = highest + 1;
                assert_eq!(
                    check(&t, &h),
                    Verdict::Fatal("ELF file ABI version invalid".into()),
                    "{m} {osabi} {}",
                    highest + 1
                );
            }
        }
    }
}
