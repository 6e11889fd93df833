//! HTTPS (issue 14): the hub serving TLS itself (`--tls-cert`, `--tls-key`),
//! stations trusting a site's own certificate authority through
//! `CLOUD_CA_FILE`, clear errors for unusable certificate, key and CA files,
//! the loud warning of a hub on a public address without TLS, and station
//! enrolment over HTTPS. The CA and the hub's certificate are made afresh in
//! each test with rcgen (nothing committed that could expire).

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use badgestation::hub::{Hub, HubConfig, TlsFiles};
use badgestation::model::Secret;
use serde_json::Value;

use crate::common;

const MASTER: &str = "tls-master-key-0123456789abcdef0123456789ab";

/// A site CA and a hub certificate (for `localhost` and `127.0.0.1`) signed
/// by it, as PEM files; and a second, unrelated CA.
struct Pki {
    ca: PathBuf,
    other_ca: PathBuf,
    cert: PathBuf,
    key: PathBuf,
    other_key: PathBuf,
}

fn make_ca(name: &str) -> rcgen::CertifiedIssuer<'static, rcgen::KeyPair> {
    let mut params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
    params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    params.distinguished_name.push(rcgen::DnType::CommonName, name);
    params.key_usages = vec![rcgen::KeyUsagePurpose::KeyCertSign, rcgen::KeyUsagePurpose::CrlSign];
    rcgen::CertifiedIssuer::self_signed(params, rcgen::KeyPair::generate().unwrap()).unwrap()
}

fn make_pki(dir: &Path) -> Pki {
    let ca = make_ca("BadgeStation test site CA");
    let other = make_ca("Some other CA");
    let key = rcgen::KeyPair::generate().unwrap();
    let mut params = rcgen::CertificateParams::new(vec!["localhost".to_owned(), "127.0.0.1".to_owned()]).unwrap();
    params.distinguished_name.push(rcgen::DnType::CommonName, "hub.test");
    let cert = params.signed_by(&key, &ca).unwrap();
    let pki = Pki {
        ca: dir.join("site-ca.pem"),
        other_ca: dir.join("other-ca.pem"),
        cert: dir.join("hub.crt"),
        key: dir.join("hub.key"),
        other_key: dir.join("other.key"),
    };
    std::fs::write(&pki.ca, ca.pem()).unwrap();
    std::fs::write(&pki.other_ca, other.pem()).unwrap();
    std::fs::write(&pki.cert, cert.pem()).unwrap();
    std::fs::write(&pki.key, key.serialize_pem()).unwrap();
    std::fs::write(&pki.other_key, rcgen::KeyPair::generate().unwrap().serialize_pem()).unwrap();
    pki
}

fn tls_hub(dir: &Path, pki: &Pki) -> Hub {
    let mut config = HubConfig::new(dir.join("hub.db").display().to_string(), Secret::new(MASTER));
    config.listen = "127.0.0.1:0".parse().unwrap();
    config.stats_max_age = Duration::ZERO;
    config.tls = Some(TlsFiles { cert: pki.cert.clone(), key: pki.key.clone() });
    Hub::start(&config).unwrap()
}

/// Live scans at the hub, asked over HTTPS trusting the site CA.
fn hub_scan_count(hub: &Hub, ca: &Path) -> u64 {
    let roots = badgestation::station::config::read_ca_file(ca).unwrap();
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .tls_config(badgestation::station::sync::client::tls_config(&roots))
        .build()
        .into();
    let body: Value = agent
        .get(format!("{}/v1/admin/scan-count", hub.url()))
        .header("Authorization", format!("Bearer {MASTER}"))
        .call()
        .unwrap()
        .body_mut()
        .read_json()
        .unwrap();
    body["count"].as_u64().unwrap()
}

fn station_dir(root: &Path, name: &str, env: &str) -> PathBuf {
    let dir = root.join(name);
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join(".env"), env).unwrap();
    dir
}

fn station(dir: &Path, args: &[&str]) -> std::process::Output {
    common::run(common::command(dir).args(args))
}

fn add_key(root: &Path, station_name: &str) -> String {
    let out = common::run(common::command(root).args(["hub", "key", "add", station_name, "--database"]).arg(root.join("hub.db")));
    assert!(out.status.success(), "{}", common::stderr(&out));
    common::stdout(&out).trim().to_owned()
}

/// A hub serving TLS with a certificate of the site's own CA: a station
/// whose `CLOUD_CA_FILE` names that CA (a path relative to the data
/// directory) syncs its scans; the same station without it fails clearly
/// (the message names CLOUD_CA_FILE) and keeps the scan pending; a CA file
/// of another CA fails the same way. Plain HTTP to the TLS port gets no
/// answer.
#[test]
fn a_station_syncs_to_a_tls_hub_through_cloud_ca_file_and_fails_clearly_without_it() {
    let root = tempfile::tempdir().unwrap();
    let pki = make_pki(root.path());
    let hub = tls_hub(root.path(), &pki);
    assert!(hub.url().starts_with("https://127.0.0.1:"), "{}", hub.url());
    let key = add_key(root.path(), "Gate");
    let dir = station_dir(
        root.path(),
        "gate",
        &format!("CLOUD_API_URL={}\nCLOUD_API_KEY={key}\nSTATION_NAME=Gate\nCLOUD_CA_FILE=site-ca.pem\n", hub.url()),
    );
    std::fs::copy(&pki.ca, dir.join("site-ca.pem")).unwrap();

    let check = station(&dir, &["config", "check"]);
    assert!(check.status.success(), "{}{}", common::stdout(&check), common::stderr(&check));
    assert!(common::stdout(&check).contains("site-ca.pem"), "{}", common::stdout(&check));

    assert!(station(&dir, &["scan", "41"]).status.success());
    let sync = station(&dir, &["sync"]);
    assert!(sync.status.success(), "{}{}", common::stdout(&sync), common::stderr(&sync));
    assert_eq!(hub_scan_count(&hub, &pki.ca), 1);

    // Without the CA file: the system's trust store does not know the site CA.
    assert!(station(&dir, &["scan", "42"]).status.success());
    for ca in ["", "other-ca.pem"] {
        std::fs::copy(&pki.other_ca, dir.join("other-ca.pem")).unwrap();
        let setting = format!("CLOUD_CA_FILE={ca}");
        let failed = station(&dir, &["sync", "--set", &setting]);
        let text = format!("{}{}", common::stdout(&failed), common::stderr(&failed));
        assert_eq!(failed.status.code(), Some(1), "{text}");
        assert!(text.contains("CLOUD_CA_FILE") && text.contains("certificate"), "with {setting:?}: {text}");
    }
    assert_eq!(hub_scan_count(&hub, &pki.ca), 1, "nothing got through without trust");
    let pending = station(&dir, &["scans", "list", "--status", "pending"]);
    assert!(common::stdout(&pending).contains("42"), "the scan waits: {}", common::stdout(&pending));

    // Plain HTTP to the TLS port: no HTTP answer.
    let plain = hub.url().replace("https://", "http://");
    let agent: ureq::Agent = ureq::Agent::config_builder().timeout_global(Some(Duration::from_secs(10))).build().into();
    assert!(agent.get(&plain).call().is_err(), "plain HTTP must not be answered on the TLS port");

    // The dashboard's session cookie is Secure on a hub that serves TLS itself.
    let roots = badgestation::station::config::read_ca_file(&pki.ca).unwrap();
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .tls_config(badgestation::station::sync::client::tls_config(&roots))
        .build()
        .into();
    let opened = agent.post(format!("{}/v1/session", hub.url())).header("Authorization", format!("Bearer {MASTER}")).send_empty().unwrap();
    let cookie = opened.headers().get("set-cookie").and_then(|v| v.to_str().ok()).unwrap_or_default().to_owned();
    assert!(cookie.contains("; Secure") && cookie.contains("HttpOnly"), "{cookie}");

    // And with the CA again, the waiting scan goes through.
    assert!(station(&dir, &["sync"]).status.success());
    assert_eq!(hub_scan_count(&hub, &pki.ca), 2);
}

/// Unusable TLS files stop the hub with a message naming the file and the
/// flag; an unusable `CLOUD_CA_FILE` is a `config check` problem naming the
/// variable and the file.
#[test]
fn bad_certificate_key_and_ca_files_are_named() {
    let root = tempfile::tempdir().unwrap();
    let pki = make_pki(root.path());
    let garbage = root.path().join("garbage.pem");
    std::fs::write(&garbage, "not a certificate\n").unwrap();
    let missing = root.path().join("missing.pem");
    let start = |cert: &Path, key: &Path| {
        let mut config = HubConfig::new(root.path().join("hub.db").display().to_string(), Secret::new(MASTER));
        config.listen = "127.0.0.1:0".parse().unwrap();
        config.tls = Some(TlsFiles { cert: cert.to_path_buf(), key: key.to_path_buf() });
        Hub::start(&config).err().map(|e| e.to_string()).unwrap_or_default()
    };
    let cases = [
        (start(&missing, &pki.key), vec!["--tls-cert", "missing.pem", "cannot read"]),
        (start(&garbage, &pki.key), vec!["--tls-cert", "garbage.pem", "no certificate"]),
        (start(&pki.cert, &garbage), vec!["--tls-key", "garbage.pem", "private key"]),
        (start(&pki.cert, &pki.cert), vec!["--tls-key", "hub.crt", "private key"]),
        (start(&pki.cert, &pki.other_key), vec!["--tls-cert", "--tls-key", "do not work together"]),
    ];
    for (message, needles) in cases {
        for needle in needles {
            assert!(message.contains(needle), "{needle:?} missing from {message:?}");
        }
    }

    let dir = station_dir(root.path(), "station", "CLOUD_API_URL=https://hub.test\nCLOUD_API_KEY=k\n");
    for (ca, needle) in [(missing.display().to_string(), "cannot read"), (pki.key.display().to_string(), "no certificate")] {
        let check = station(&dir, &["config", "check", "--set", &format!("CLOUD_CA_FILE={ca}")]);
        let text = common::stdout(&check);
        assert_eq!(check.status.code(), Some(1), "{text}");
        assert!(text.contains("CLOUD_CA_FILE") && text.contains(&ca) && text.contains(needle), "{text}");
    }
}

/// Starts the hub binary, returns it and the URL it printed.
fn spawn_hub(root: &Path, args: &[&str]) -> (std::process::Child, String, BufReader<std::process::ChildStderr>) {
    let mut child = Command::new(common::binary())
        .env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .env("HUB_API_KEY", MASTER)
        .args(["--data-dir"])
        .arg(root)
        .args(["hub", "--database"])
        .arg(root.join("hub.db"))
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap()).read_line(&mut line).unwrap();
    let url = line.trim().strip_prefix("listening on ").unwrap_or_else(|| panic!("{line:?}")).to_owned();
    let stderr = BufReader::new(child.stderr.take().unwrap());
    (child, url, stderr)
}

/// Stops a hub binary with SIGTERM and returns everything it wrote to stderr.
fn stop(mut child: std::process::Child, mut stderr: BufReader<std::process::ChildStderr>) -> String {
    let status = Command::new("kill").args(["-TERM", &child.id().to_string()]).status().unwrap();
    assert!(status.success());
    child.wait().unwrap();
    let mut text = String::new();
    std::io::Read::read_to_string(&mut stderr, &mut text).unwrap();
    text
}

/// A hub listening on all interfaces without TLS says so loudly at start:
/// a banner on stderr and a warning in the log. On loopback, or with TLS,
/// it does not.
#[test]
fn a_hub_on_a_public_address_without_tls_warns_loudly() {
    let root = tempfile::tempdir().unwrap();
    let pki = make_pki(root.path());
    let (child, url, stderr) = spawn_hub(root.path(), &["--listen", "0.0.0.0:0"]);
    assert!(url.starts_with("http://0.0.0.0:"), "{url}");
    let text = stop(child, stderr);
    assert!(text.contains("!!!!!!!!") && text.contains("WITHOUT TLS") && text.contains("--tls-cert"), "{text}");
    assert!(text.lines().any(|l| l.contains("WARN") && l.contains("WITHOUT TLS")), "a log line too: {text}");

    let (child, _, stderr) = spawn_hub(root.path(), &["--listen", "127.0.0.1:0"]);
    assert!(!stop(child, stderr).contains("WITHOUT TLS"), "loopback is not warned about");
    let cert = pki.cert.display().to_string();
    let key = pki.key.display().to_string();
    let (child, url, stderr) = spawn_hub(root.path(), &["--listen", "0.0.0.0:0", "--tls-cert", &cert, "--tls-key", &key]);
    assert!(url.starts_with("https://0.0.0.0:"), "{url}");
    assert!(!stop(child, stderr).contains("WITHOUT TLS"), "TLS is not warned about");
}

/// Enrolment end to end over HTTPS: `hub key enroll` prints a code;
/// `badgestation enroll URL CODE` (trusting the site CA through
/// `CLOUD_CA_FILE`) stores the station's key in the data directory with
/// mode 0600; `config check` says the enrolled key is used, and the station
/// syncs with it. An explicit `CLOUD_API_KEY` wins over it, and `config
/// check` says so. The code does not work a second time.
#[test]
fn a_station_enrolls_over_https_and_syncs_with_its_own_key() {
    let root = tempfile::tempdir().unwrap();
    let pki = make_pki(root.path());
    let hub = tls_hub(root.path(), &pki);
    let enroll = common::run(
        common::command(root.path())
            .args(["hub", "key", "enroll", "Gate", "--url", &hub.url(), "--database"])
            .arg(root.path().join("hub.db")),
    );
    assert!(enroll.status.success(), "{}", common::stderr(&enroll));
    let code = common::stdout(&enroll).trim().to_owned();
    assert!(common::stderr(&enroll).contains(&format!("badgestation enroll {} {code}", hub.url())), "{}", common::stderr(&enroll));

    let env = format!("CLOUD_API_URL={}\nSTATION_NAME=Gate\nCLOUD_CA_FILE={}\n", hub.url(), pki.ca.display());
    let dir = station_dir(root.path(), "gate", &env);
    let out = station(&dir, &["enroll", &hub.url(), &code]);
    assert!(out.status.success(), "{}{}", common::stdout(&out), common::stderr(&out));
    assert!(common::stdout(&out).contains("enrolled as station \"Gate\""), "{}", common::stdout(&out));
    let file = dir.join("cloud_api.key");
    let key = std::fs::read_to_string(&file).unwrap().trim().to_owned();
    assert!(key.starts_with("bsk_"), "{key}");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        assert_eq!(std::fs::metadata(&file).unwrap().permissions().mode() & 0o777, 0o600);
    }
    let check = common::stdout(&station(&dir, &["config", "check"]));
    assert!(check.contains("[enrolled key file]") && check.contains("the enrolled key in"), "{check}");
    assert!(!check.contains(&key), "the key is never printed: {check}");

    assert!(station(&dir, &["scan", "41"]).status.success());
    let sync = station(&dir, &["sync"]);
    assert!(sync.status.success(), "{}{}", common::stdout(&sync), common::stderr(&sync));
    assert_eq!(hub_scan_count(&hub, &pki.ca), 1);

    let explicit = station(&dir, &["config", "check", "--set", "CLOUD_API_KEY=an-older-key"]);
    let text = common::stdout(&explicit);
    assert!(text.contains("the explicit setting wins") && text.contains("is not used"), "{text}");

    let again = station(&dir, &["enroll", &hub.url(), &code]);
    assert!(!again.status.success());
    assert!(common::stderr(&again).contains("already used"), "{}", common::stderr(&again));
    assert_eq!(std::fs::read_to_string(&file).unwrap().trim(), key, "a refused enrolment keeps the key");
}

/// The TLS handshake is bounded like the request headers: a client that
/// connects to the TLS port and says nothing is disconnected after the
/// request timeout, and does not hold up a real client meanwhile.
#[test]
fn a_stalled_tls_handshake_is_closed_after_the_header_timeout() {
    use std::io::Read as _;
    let root = tempfile::tempdir().unwrap();
    let pki = make_pki(root.path());
    let mut config = HubConfig::new(root.path().join("hub.db").display().to_string(), Secret::new(MASTER));
    config.listen = "127.0.0.1:0".parse().unwrap();
    config.request_timeout = Duration::from_secs(1);
    config.tls = Some(TlsFiles { cert: pki.cert.clone(), key: pki.key.clone() });
    let hub = Hub::start(&config).unwrap();

    let mut silent = std::net::TcpStream::connect(hub.addr()).unwrap();
    silent.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
    // Meanwhile a real client is served.
    assert_eq!(hub_scan_count(&hub, &pki.ca), 0);
    let started = std::time::Instant::now();
    let mut buf = [0u8; 16];
    let read = silent.read(&mut buf);
    assert!(matches!(read, Ok(0)) || read.is_err(), "the hub closed the silent connection: {read:?}");
    assert!(started.elapsed() < Duration::from_secs(15), "closed by the 1 s timeout, not the test's 20 s read timeout");
}
