//! The integration tests: one test binary (ripgrep's layout), one module per
//! area, shared helpers in `common`. They use real parts: SQLite files on
//! disk, the real `badgestation` binary, pseudo-terminals, a hub on
//! `127.0.0.1:0`.

mod cli;
mod common;
mod damaged;
mod fakehub;
mod faultproxy;
#[cfg(feature = "hub")]
mod fleet;
#[cfg(feature = "hub")]
mod hublimits;
#[cfg(feature = "gui")]
mod gui;
#[cfg(feature = "hub")]
mod hub;
mod layers;
#[cfg(feature = "hub")]
mod learn;
#[cfg(feature = "hub")]
mod pg;
mod readers;
mod readme;
mod roster;
mod sound;
mod station;
mod sync;
#[cfg(feature = "hub")]
mod tls;
#[cfg(feature = "hub")]
mod transfer;
