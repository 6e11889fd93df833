//! `badgestation export [--out DIR] [--epoch current|all]`: scans to Excel
//! through [`crate::station::export::export_scans`], with a progress bar when stderr
//! is a terminal and a few plain progress lines otherwise; and
//! `badgestation bundle export --out FILE`: unsynced scans to a signed
//! offline bundle through [`crate::station::sync::bundle::export_bundle`].

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

/// `badgestation bundle export --out FILE`
pub fn bundle_export(ctx: &Context, out: &std::path::Path) -> anyhow::Result<ExitCode> {
    use anyhow::Context as _;
    let store = ctx.open_store()?;
    let summary = crate::station::sync::bundle::export_bundle(&store, &ctx.config.cloud.api_key, out)
        .with_context(|| format!("bundle export to {}", out.display()))?;
    outln!(
        "wrote {} unsynced scans of station {:?} to {} ({} pending, {} archived and never uploaded; {} bytes), signed \
         with this station's CLOUD_API_KEY. Import it at the hub: badgestation hub import-bundle {} (or the \
         dashboard's \"Import a bundle\"). Nothing was marked synced here.",
        summary.pending + summary.cleared,
        summary.station_name,
        summary.path.display(),
        summary.pending,
        summary.cleared,
        summary.bytes,
        summary.path.display()
    );
    Ok(ExitCode::SUCCESS)
}
