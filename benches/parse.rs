//! `ElfInfo` of this machine's real libraries (the closure of curl, git and
//! python3): from bytes already in memory (`elf::parse`) against from open
//! files through the chunked file reader (`elf::parse_file`), which reads only
//! the ranges it needs.

mod common;

use std::fs::File;
use std::hint::black_box;
use std::time::Duration;

use closure::elf::{parse, parse_file};
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
