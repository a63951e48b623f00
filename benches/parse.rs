//! `ElfInfo` of this machine's real libraries (the closure of curl, git and
//! python3): from bytes already in memory (`elf::parse`) against from open
//! files through the chunked file reader (`elf::parse_file`), which reads only
//! the ranges it needs; and the libgcc_s question through `elf::read_file`
//! against the exhaustive scan.

mod common;

use std::fs::File;
use std::hint::black_box;
use std::time::Duration;

use closure::elf::symbols::first_undefined_of;
use closure::elf::{parse, parse_file, read_file};
use criterion::{Criterion, Throughput};

fn bench_parse(c: &mut Criterion) {
    let fs = common::host_fs();
    let programs = common::host_programs("parse");
    if programs.is_empty() {
        eprintln!("parse: skipped: none of {:?} here", common::PROGRAMS);
        return;
    }
    let g = common::trace(&fs, &programs);
    let paths: Vec<_> = common::object_files(&fs, &g)
        .into_iter()
        .filter(|p| {
            let ok = File::open(p).is_ok_and(|f| parse_file(&f).is_ok());
            if !ok {
                eprintln!("parse: leaving out {}: does not parse", p.display());
            }
            ok
        })
        .collect();
    let bytes: Vec<Vec<u8>> = paths
        .iter()
        .map(|p| std::fs::read(p).expect("readable"))
        .collect();
    let files: Vec<File> = paths
        .iter()
        .map(|p| File::open(p).expect("readable"))
        .collect();
    let total: usize = bytes.iter().map(Vec::len).sum();
    eprintln!(
        "parse: {} objects, {:.1} MiB",
        paths.len(),
        total as f64 / (1024.0 * 1024.0)
    );

    let mut group = c.benchmark_group("parse");
    group.throughput(Throughput::Elements(paths.len() as u64));
    group.bench_function("all/bytes", |b| {
        b.iter(|| {
            for data in &bytes {
                black_box(parse(data.as_slice()).ok());
            }
        })
    });
    group.bench_function("all/parse_file", |b| {
        b.iter(|| {
            for f in &files {
                black_box(parse_file(f).ok());
            }
        })
    });
    group.bench_function("all/open+parse_file", |b| {
        b.iter(|| {
            for p in &paths {
                let f = File::open(p).expect("readable");
                black_box(parse_file(&f).ok());
            }
        })
    });
    group.finish();

    // The libgcc_s question (does the object use pthread_cancel,
    // pthread_exit or backtrace?) as the resolver asks it, in the same read
    // as the parse (`read_file` with the names, against `read_file` without
    // them: the difference is the question's cost), and the exhaustive scan
    // of string and symbol tables alone; all objects, then the one with the
    // largest string table (looked up through its GNU hash table).
    const NAMES: &[&[u8]] = &[b"pthread_cancel", b"pthread_exit", b"backtrace"];
    let infos: Vec<_> = files
        .iter()
        .map(|f| parse_file(f).expect("parses"))
        .collect();
    let lens: Vec<u64> = bytes.iter().map(|b| b.len() as u64).collect();
    let largest = (0..infos.len()).max_by_key(|&i| {
        infos[i]
            .tables
            .strtab()
            .map_or(0, |(s, e)| e.saturating_sub(s))
    });
    let mut group = c.benchmark_group("unwind");
    let sets: Vec<(&str, Vec<usize>)> = [("all", (0..files.len()).collect())]
        .into_iter()
        .chain(largest.map(|i| ("largest", vec![i])))
        .collect();
    if let Some(i) = largest {
        eprintln!("unwind: largest string table: {}", paths[i].display());
    }
    for (set, which) in &sets {
        group.throughput(Throughput::Elements(which.len() as u64));
        group.bench_function(format!("{set}/read_file without names"), |b| {
            b.iter(|| {
                for &i in which {
                    black_box(read_file(&files[i], lens[i], &[]).info.is_ok());
                }
            })
        });
        group.bench_function(format!("{set}/read_file with names"), |b| {
            b.iter(|| {
                for &i in which {
                    black_box(read_file(&files[i], lens[i], NAMES).uses);
                }
            })
        });
        group.bench_function(format!("{set}/exhaustive scan"), |b| {
            b.iter(|| {
                for &i in which {
                    black_box(first_undefined_of(&files[i], &infos[i], NAMES));
                }
            })
        });
    }
    group.finish();

    // One big library alone: libc.
    if let Some(i) = paths.iter().position(|p| {
        p.file_name()
            .is_some_and(|n| n.to_string_lossy().starts_with("libc.so"))
    }) {
        let mut group = c.benchmark_group("parse/libc");
        group.throughput(Throughput::Elements(1));
        group.bench_function("bytes", |b| {
            b.iter(|| black_box(parse(bytes[i].as_slice()).ok()))
        });
        group.bench_function("parse_file", |b| {
            b.iter(|| black_box(parse_file(&files[i]).ok()))
        });
        group.finish();
    }
}

fn main() {
    let mut c = Criterion::default()
        .sample_size(20)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3))
        .configure_from_args();
    bench_parse(&mut c);
    c.final_summary();
}
