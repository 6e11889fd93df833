//! The allocator the `badgestation` binary uses (see `src/main.rs`), so that a
//! bench running the hub or the station in-process measures what ships.

#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;
