//! Helpers shared by the integration tests.

#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// The `badgestation` binary Cargo built for these tests.
pub fn binary() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_badgestation"))
}

/// A `badgestation` command on `data_dir`, isolated from the caller's
/// environment and home directory.
pub fn command(data_dir: &Path) -> Command {
    let mut cmd = Command::new(binary());
    cmd.env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .env("HOME", data_dir)
        .arg("--data-dir")
        .arg(data_dir);
    cmd
}

/// Runs a command and returns its output; panics with stderr if it could not start.
pub fn run(cmd: &mut Command) -> Output {
    cmd.output().expect("run badgestation")
}

/// Stdout as text.
pub fn stdout(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

/// Stderr as text.
pub fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}
