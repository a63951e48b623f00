//! The `closure` binary: everything lives in the library's `cli` module.

/// A run makes many small, short-lived allocations (paths, names, search
/// records); mimalloc serves them markedly faster than the system allocator.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> std::process::ExitCode {
    closure::cli::main()
}
