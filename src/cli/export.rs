//! `badgestation export [--out DIR] [--epoch current|all]`: scans to Excel
//! through [`crate::station::export::export_scans`], with a progress bar when stderr
//! is a terminal and a few plain progress lines otherwise.

use super::out::outln;
use std::io::IsTerminal as _;
use std::path::PathBuf;
use std::process::ExitCode;

use indicatif::{ProgressBar, ProgressStyle};

use super::Context;
use crate::station::export::{ExportOptions, ExportScope, export_scans};

/// `badgestation export`
pub fn export(ctx: &Context, out: Option<PathBuf>, scope: ExportScope) -> anyhow::Result<ExitCode> {
    let store = ctx.open_store()?;
    let options = ExportOptions {
        out_dir: out.unwrap_or_else(|| ctx.config.exports_dir()),
        scope,
        station_name: ctx.config.station.name.clone(),
        file_prefix: None,
    };
    let exported = if std::io::stderr().is_terminal() {
        let bar = ProgressBar::new(0);
        if let Ok(style) = ProgressStyle::with_template("{bar:40} {pos}/{len} scans  {elapsed_precise}") {
            bar.set_style(style);
        }
        let result = export_scans(&store, &options, &mut |done, total| {
            bar.set_length(total);
            bar.set_position(done);
        });
        bar.finish_and_clear();
        result?
    } else {
        // Plain lines at every quarter, for logs and pipes.
        let mut next_quarter = 1;
        export_scans(&store, &options, &mut |done, total| {
            while total > 0 && next_quarter < 4 && done * 4 >= total * next_quarter {
                eprintln!("exporting: {done} of {total} scans");
                next_quarter += 1;
            }
        })?
    };
    outln!("exported {} scans to {}", exported.rows, exported.path.display());
    Ok(ExitCode::SUCCESS)
}
