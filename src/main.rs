//! The `badgestation` binary: everything lives in the library; see `badgestation::cli`.

use std::process::ExitCode;

fn main() -> ExitCode {
    badgestation::cli::main()
}
