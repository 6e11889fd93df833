//! `badgestation enroll URL CODE`: trades a one-time enrolment code from the
//! hub operator (`badgestation hub key enroll NAME`) for this station's own
//! API key, and stores it privately in the data directory
//! ([`ENROLLED_KEY_FILE`], mode 0600), where the configuration picks it up
//! as `CLOUD_API_KEY` unless one is set explicitly.
//!
//! The request is `POST URL/v1/enroll` **\[ext\]** over the same TLS trust as
//! sync (`CLOUD_CA_FILE`). The key is written to a temporary file with mode
//! 0600, synced, and renamed over the old one, so a crash leaves either the
//! old key or the new one, never half a key, and the key is never readable
//! by other users, not even for a moment.

use std::io::Write as _;
use std::path::Path;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{Context as _, bail};

use super::Context;
use super::out::outln;
use crate::api::{EnrollRequest, EnrollResponse, ErrorBody};
use crate::station::config::{ENROLLED_KEY_FILE, Source};

/// How long the enrolment request may take.
const ENROLL_TIMEOUT: Duration = Duration::from_secs(30);

/// Runs `badgestation enroll URL CODE`.
pub fn enroll(ctx: &Context, url: &str, code: &str) -> anyhow::Result<ExitCode> {
    let config = &ctx.config;
    let base = url.trim().trim_end_matches('/');
    if !(base.starts_with("http://") || base.starts_with("https://")) || base.split_once("://").is_none_or(|(_, h)| h.is_empty()) {
        bail!("{url:?} is not the hub's address; give it as http://HOST:PORT or https://HOST:PORT (as the hub operator printed it)");
    }
    if let Some(path) = &config.cloud.ca_file {
        // A CA file that cannot be used would fail the handshake with a vaguer message.
        crate::station::config::read_ca_file(path).map_err(anyhow::Error::msg)?;
    }
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .tls_config(crate::station::sync::client::tls_config_from(config))
        .timeout_global(Some(ENROLL_TIMEOUT))
        .user_agent(format!("badgestation/{}", env!("CARGO_PKG_VERSION")))
        .build()
        .into();
    let endpoint = format!("{base}/v1/enroll");
    let mut response = agent
        .post(&endpoint)
        .send_json(&EnrollRequest { code: code.to_owned() })
        .map_err(|e| tls_hint(&e, base))
        .with_context(|| format!("cannot reach the hub at {base}"))?;
    let status = response.status().as_u16();
    let body = response.body_mut().read_to_string().with_context(|| format!("the hub's answer from {endpoint} was cut off"))?;
    if status != 200 {
        let message = serde_json::from_str::<ErrorBody>(&body).map_or_else(|_| body.chars().take(200).collect(), |e| e.message);
        if status == 404 {
            bail!("the hub at {base} has no enrolment route (HTTP 404: {message}); is this a BadgeStation hub, and the right address?");
        }
        bail!("the hub refused the enrolment code (HTTP {status}): {message}");
    }
    let answer: EnrollResponse =
        serde_json::from_str(&body).with_context(|| format!("the hub at {base} answered with something that is not an enrolment"))?;
    let file = config.data_dir.join(ENROLLED_KEY_FILE);
    write_private(&file, &answer.api_key).with_context(|| format!("cannot store the key in {}", file.display()))?;

    outln!("enrolled as station {:?}; its key is stored in {} (readable by this user only)", answer.station_name, file.display());
    let source = |name: &str| config.settings.iter().find(|s| s.name == name).map(|s| s.source);
    if matches!(source("CLOUD_API_KEY"), Some(Source::DotEnv | Source::Environment | Source::Flag)) {
        outln!(
            "note: CLOUD_API_KEY is also set explicitly ({}), and an explicit setting wins over the enrolled key. \
             Remove it to use the new key (`badgestation config check` shows which is used).",
            source("CLOUD_API_KEY").map_or_else(String::new, |s| s.to_string())
        );
    }
    if config.cloud.api_url.as_deref() != Some(base) {
        outln!("next: set CLOUD_API_URL={base} in {} so the station uploads to this hub", config.env_file.display());
    }
    if config.station.name.as_deref() != Some(answer.station_name.as_str()) {
        outln!(
            "next: set STATION_NAME={:?} in {}: the key uploads only scans of that station",
            answer.station_name,
            config.env_file.display()
        );
    }
    Ok(ExitCode::SUCCESS)
}

/// A transport error, with the fix for the usual TLS case.
fn tls_hint(error: &ureq::Error, base: &str) -> anyhow::Error {
    let text = error.to_string();
    if base.starts_with("https://") && (text.contains("UnknownIssuer") || text.contains("certificate")) {
        anyhow::anyhow!(
            "{text}: this station does not trust the hub's certificate. If the site uses its own certificate \
             authority, set CLOUD_CA_FILE to its CA certificate (PEM) in .env"
        )
    } else {
        anyhow::anyhow!("{text}")
    }
}

/// Writes `key` to `path` with mode 0600: a temporary file in the same
/// directory, synced, then renamed over `path`.
fn write_private(path: &Path, key: &str) -> std::io::Result<()> {
    let dir = path.parent().unwrap_or(Path::new("."));
    let tmp = dir.join(format!(".{ENROLLED_KEY_FILE}.tmp"));
    let _ = std::fs::remove_file(&tmp);
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let mut file = options.open(&tmp)?;
    file.write_all(key.as_bytes())?;
    file.write_all(b"\n")?;
    file.sync_all()?;
    drop(file);
    std::fs::rename(&tmp, path)?;
    if let Ok(dir) = std::fs::File::open(dir) {
        let _ = dir.sync_all();
    }
    Ok(())
}
