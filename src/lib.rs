//! BadgeStation: an offline-first badge-scanning station.
//!
//! People tap a badge on a USB or serial reader; the station greets them by
//! name, stores the scan durably in SQLite first, and uploads scans in
//! batches with idempotency keys to a cloud API (the *hub*), so that the hub
//! ends up with every scan exactly once whatever the network does.
//!
//! # Layout
//!
//! ```text
//!  badge readers                        station process (station::runtime)                         hub
//!  ─────────────   ┌─────────────────────────────────────────────────────────────────────┐   ──────────
//!  serial (tty) ─▶ │ reader threads ──RawRead──▶ recorder thread ──ScanEvent──▶ UI / log   │
//!  HID (hidraw) ─▶ │ (one per device)  (bounded)  owns the write      (unbounded,  (egui)     │
//!  keyboard wedge ▶│ UI key events ───RawRead──▶  connection and      + waker)               │
//!                  │                              the counters                               │
//!                  │                                 │ commit, then event                    │
//!                  │            checkpoint thread ◀──┤ (WAL folded in off the commit path)   │
//!                  │                                 ▼ SyncChange (after each mark)          │
//!                  │                  sync worker thread ──── per-batch upload thread ──HTTP──┼─▶ POST /v1/scans/batch
//!                  │                  (own connection)  ◀────────────────────────────────────┼── GET /, heartbeat
//!                  │                  roster watcher thread (employee.xlsx → roster swap)     │
//!                  └─────────────────────────────────────────────────────────────────────┘
//!  admin CLI (same library, no threads): status · scan · scans list · sync · roster · export · config check · devices · enroll · hub
//! ```
//!
//! The code is laid out in layers; an arrow (`use crate::…`) only ever
//! points down, and `tests/it/layers.rs` fails on a cycle or an upward arrow.
//!
//! * **The vocabulary**, used by everyone:
//!   * [`model`] — [`model::RawRead`] (untrusted badge text from a reader),
//!     [`model::ScanRecord`] (a stored scan), [`model::ScanEvent`] (the
//!     recorder's verdict), [`model::Counters`], [`model::Secret`];
//!   * [`clock`] — wall and monotonic time, injectable for tests;
//!   * [`api`] — the wire types of cloud API v1, shared by sync and hub;
//!   * [`bundle`] — the signed offline-transfer file (`bundle export`,
//!     `hub import-bundle`), shared by station and hub;
//!   * [`worker`] — [`worker::WorkerThread`], the named thread every
//!     long-lived worker runs on, stopped and joined when dropped;
//!   * [`roster_xlsx`] — reading and validating `employee.xlsx` without
//!     storing it, shared by the station's import and the hub's.
//! * **Shared storage**: [`sqlite`] — opening a station or hub database
//!   (refusing damaged, foreign or newer files; WAL, `synchronous=FULL`;
//!   migrations by `user_version`).
//! * [`station`] — **everything a station runs**:
//!   * storage and configuration: [`station::config`] (TrackAttendance's
//!     `.env` variables with defaults, ranges and sources; the `READERS`
//!     syntax) and [`station::store`] (the station database and its queries,
//!     the **checkpoint thread**);
//!   * [`station::recorder`] — **the recorder thread**: sanitise, roster
//!     lookup, duplicate rule on the monotonic clock, insert + commit, *then*
//!     the event. It owns the only write connection for scans and the
//!     operator's counters;
//!   * [`station::reader`] — **the reader threads**, one per device in
//!     `READERS`: serial and hidraw, decoders, debounce, hot-plug with
//!     backoff, reader profiles, and the keyboard-wedge burst detector;
//!   * [`station::roster`] — the in-memory roster map, swapped atomically on
//!     import; `employee.xlsx` import, the **roster watcher thread**, and
//!     the forgot-badge name search;
//!   * [`station::sync`] — **the sync worker thread**: batches of pending
//!     scans with their stored idempotency keys, each sent on its own
//!     **upload thread** while the previous one is marked, retries,
//!     auto-sync, heartbeats, clear epochs, the business-unit summary, and
//!     what the station learns from the hub ([`station::sync::learn`]: the
//!     roster, and the scan feed behind the duplicate rule across gates);
//!   * [`station::export`] — scans to an Excel file (constant memory);
//!   * [`station::sound`] — welcome, duplicate and refused sounds on the
//!     **sound thread**, through a player found at run time (no audio
//!     library linked);
//!   * [`station::runtime`] — **the station runtime**: starts all of the
//!     above, merges their events into one [`station::runtime::StationEvent`]
//!     stream, and shuts them down in order. `run --headless` and the window
//!     both use it.
//! * `hub` (feature `hub`) — the cloud API server stations upload to: axum
//!   routes over a storage trait with an embedded SQLite backend; station,
//!   read-only dashboard and master keys, dashboard sessions and station
//!   enrolment codes; HTTPS itself with rustls when given a certificate. It
//!   uses only the vocabulary and [`sqlite`], never a station module. Its
//!   dashboard (`/dashboard/`) reads an attendance board (`hub::board`:
//!   who arrived, flow, live feed) that each hub process derives from the
//!   database by following scan ids.
//! * The front ends, on top, imported by nothing below them:
//!   * `gui` (feature `gui`) — **the operator window** (egui/eframe) on the
//!     station runtime: the screen from events, problem banners, wedge
//!     capture, admin panel with PIN keypad, forgot-badge lookup, shutdown
//!     flow (also on SIGTERM/SIGINT);
//!   * [`cli`] — the `badgestation` command line (it opens the window for a
//!     bare `badgestation`); `main.rs` only calls it.
//!
//! # The promises
//!
//! 1. A scan is acknowledged (event, green screen) only after its commit.
//! 2. Every scan gets its idempotency key when recorded, stored and never
//!    recomputed, so the hub stores it exactly once.
//! 3. Transient upload trouble keeps scans `pending`; only a hub rejection
//!    makes one `failed`.
//! 4. Nothing is deleted by sync or by a remote clear; old epochs are archived.
//! 5. The duplicate window is measured on a clock wall-clock jumps cannot
//!    break.
//!
//! Threads talk over crossbeam channels, bounded where back-pressure is
//! wanted (reads, commands) and unbounded where a sender must never wait
//! (the station's event stream), and call a [`model::Waker`] after each
//! event, so a UI repaints only when something changed.

pub mod api;
pub mod bundle;
pub mod cli;
pub mod clock;
#[cfg(feature = "gui")]
pub mod gui;
#[cfg(feature = "hub")]
pub mod hub;
pub mod model;
pub mod roster_xlsx;
pub mod sqlite;
pub mod station;
pub mod worker;
