//! Everything a station runs: configuration, its SQLite store, the recorder,
//! the reader threads, the roster, the sync worker, Excel export and the
//! runtime that starts them. The window ([`crate::gui`]) and the command line
//! ([`crate::cli`]) sit on top of this; the hub never uses it.

pub mod config;
pub mod export;
pub mod reader;
pub mod recorder;
pub mod roster;
pub mod runtime;
pub mod store;
pub mod sync;
