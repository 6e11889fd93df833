//! The `badgestation` binary: everything lives in the library; see `badgestation::cli`.

use std::process::ExitCode;

/// mimalloc instead of glibc's malloc: the hub allocates and frees each batch's
/// strings on whichever worker thread serves it, and glibc spent about a fifth
/// of the hub's CPU in `malloc`, `free` and `malloc_consolidate` at batch 100
/// (BENCHMARKS.md, issue 11, "Seventh round"). The benches that run the hub or
/// the station in-process declare the same allocator, so they measure this.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    badgestation::cli::main()
}
