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
//!  badge readers                      station process                                    hub
//!  ─────────────   ┌──────────────────────────────────────────────────────────────┐   ──────────
//!  serial (tty) ─▶ │ reader threads ──RawRead──▶ recorder thread ──ScanEvent──▶ UI │
//!  HID (hidraw) ─▶ │ (one per device)  (bounded)  owns the write     (waker)  (egui) │
//!  keyboard wedge ▶│ UI key events ───RawRead──▶  connection                        │
//!                  │                                 │ commit, then event          │
//!                  │                                 ▼                             │
//!                  │                  sync worker thread ──HTTP──────────────────────┼─▶ POST /v1/scans/batch
//!                  │                  (own connection)   ◀─────────────────────────────┼── GET / (epoch, clock)
//!                  └──────────────────────────────────────────────────────────────┘
//!  admin CLI (same library, no threads): status · scan · scans list · roster · export · config check · devices · hub
//! ```
//!
//! * [`model`] — the vocabulary: [`model::RawRead`] (untrusted badge text
//!   from a reader), [`model::ScanRecord`] (a stored scan),
//!   [`model::ScanEvent`] (the recorder's verdict), [`model::Counters`].
//! * [`config`] — TrackAttendance's `.env` variables with defaults, ranges and
//!   the source of every value.
//! * [`store`] — the SQLite database (WAL, `synchronous=FULL`, migrations by
//!   `user_version`) and its queries.
//! * [`recorder`] — **the recorder thread**: sanitise, roster lookup,
//!   duplicate rule on the monotonic clock, insert + commit, *then* the event.
//!   It owns the only write connection for scans.
//! * [`reader`] — **the reader threads**, one per device in `READERS`:
//!   serial and hidraw, decoders (EM4100, lines, Wiegand, magstripe,
//!   barcode, HID keyboard reports), debounce, hot-plug with backoff, reader
//!   profiles (`hardware/readers/*.toml`), and the keyboard-wedge burst
//!   detector the GUI feeds.
//! * [`runtime`] — **the station runtime**: starts the recorder, the readers,
//!   the sync worker and the roster watcher, merges their events into one
//!   [`runtime::StationEvent`] stream, and shuts them down in order.
//!   `run --headless` and the GUI both use it.
//! * [`sync`] — **the sync worker thread**: batches of pending scans with their
//!   stored idempotency keys, retries, auto-sync, heartbeats, clear epochs.
//! * [`roster`] — the in-memory roster map, swapped atomically on import;
//!   [`roster::import`] reads `employee.xlsx`, [`roster::watcher`] re-imports
//!   it when it changes, [`roster::summary`] uploads business-unit counts.
//! * [`export`] — every scan to an Excel file (constant memory, temp file
//!   then rename), for the CLI, the GUI and epoch backups.
//! * [`counters`] — the operator's counters, updated after each commit.
//! * [`api`] — the wire types of cloud API v1, shared by sync worker and hub.
//! * [`clock`] — wall and monotonic time, injectable for tests.
//! * [`cli`] — the `badgestation` command line; `main.rs` only calls it.
//! * `hub` (feature `hub`) — the cloud API server stations upload to: axum
//!   routes over a storage trait with an embedded SQLite backend.
//! * `gui` (feature `gui`) — **the operator window** (egui/eframe): renders
//!   the runtime's events, feeds the keyboard wedge, admin panel, shutdown
//!   flow. It runs on the same [`runtime`] as `run --headless`.
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
//! Threads talk over bounded crossbeam channels and call a [`model::Waker`]
//! after each event, so a UI repaints only when something changed.

pub mod api;
pub mod cli;
pub mod clock;
#[cfg(feature = "gui")]
pub mod gui;
#[cfg(feature = "hub")]
pub mod hub;
pub mod model;
pub mod sqlite;
pub mod station;
pub mod worker;
