//! The `closure` binary: everything lives in the library's `cli` module.

fn main() -> std::process::ExitCode {
    closure::cli::main()
}
