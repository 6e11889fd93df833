//! A fault-injecting HTTP proxy in front of a real hub: the flaky link or
//! the misbehaving proxy that stations meet in the field, and nothing else
//! fake. Shared by the integration tests and `benches/sync_drain.rs`.
//!
//! One request per connection (`Connection: close` both ways). Each request
//! is either forwarded untouched or meets one [`Fault`]: the next scripted
//! one if any are queued, else a seeded random one at the configured rate.

#![allow(dead_code)]

use std::collections::VecDeque;
use std::io::{Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

/// What the proxy does to one request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    /// Closes the connection before forwarding (the hub never sees it).
    Reset,
    /// Forwards, then closes without an answer (the hub stored it; the
    /// station never hears so).
    LostReply,
    /// Forwards, then sends the hub's status line, headers and only half the
    /// body.
    Truncated,
    /// Answers `429` with `Retry-After: 1` itself.
    TooMany,
    /// Answers `502` with an HTML page itself.
    BadGateway,
    /// Answers `400` with an HTML page itself (a proxy's filter).
    HtmlBadRequest,
    /// Answers `413` with an HTML page itself (a proxy's body limit).
    HtmlTooLarge,
    /// Forwards and answers `200 {}`.
    EmptyObject,
    /// Answers `415` with an HTML page itself (a proxy that refuses
    /// compressed request bodies).
    HtmlUnsupportedMedia,
}

/// The faults a "link that drops half the requests" mixes, in equal parts.
pub const FLAKY_LINK: [Fault; 5] = [Fault::Reset, Fault::LostReply, Fault::Truncated, Fault::TooMany, Fault::BadGateway];

struct Plan {
    /// Faults for the next requests, each for any path (`None`) or for one
    /// path exactly (query string ignored).
    scripted: VecDeque<(Option<String>, Fault)>,
    rate: f64,
    mix: Vec<Fault>,
    rng: fastrand::Rng,
}

/// One request as it crossed the proxy: the bytes on the wire each way
/// (headers included).
#[derive(Debug, Clone)]
pub struct Exchange {
    /// The request path.
    pub path: String,
    /// The request head as forwarded (lowercase it to look for a header).
    pub head: String,
    /// Request head plus body, in bytes.
    pub request_bytes: usize,
    /// The answer as relayed, in bytes.
    pub response_bytes: usize,
}

/// A running proxy. Stops on drop.
pub struct FaultProxy {
    addr: SocketAddr,
    plan: Arc<Mutex<Plan>>,
    stop: Arc<AtomicBool>,
    faults: Arc<AtomicU64>,
    requests: Arc<AtomicU64>,
    exchanges: Arc<Mutex<Vec<Exchange>>>,
    thread: Option<JoinHandle<()>>,
}

impl FaultProxy {
    /// A proxy to `upstream` on `127.0.0.1:0` that passes everything.
    pub fn start(upstream: SocketAddr) -> FaultProxy {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind proxy");
        let addr = listener.local_addr().expect("addr");
        listener.set_nonblocking(true).expect("nonblocking");
        let plan = Arc::new(Mutex::new(Plan {
            scripted: VecDeque::new(),
            rate: 0.0,
            mix: FLAKY_LINK.to_vec(),
            rng: fastrand::Rng::with_seed(1),
        }));
        let stop = Arc::new(AtomicBool::new(false));
        let faults = Arc::new(AtomicU64::new(0));
        let requests = Arc::new(AtomicU64::new(0));
        let exchanges = Arc::new(Mutex::new(Vec::new()));
        let (p, s, f, r) = (Arc::clone(&plan), Arc::clone(&stop), Arc::clone(&faults), Arc::clone(&requests));
        let log = Arc::clone(&exchanges);
        let thread = std::thread::Builder::new()
            .name("fault-proxy".into())
            .spawn(move || {
                while !s.load(Ordering::SeqCst) {
                    match listener.accept() {
                        Ok((client, _)) => {
                            let (p, f, r, log) = (Arc::clone(&p), Arc::clone(&f), Arc::clone(&r), Arc::clone(&log));
                            let _ = std::thread::Builder::new()
                                .name("fault-proxy-conn".into())
                                .spawn(move || serve(client, upstream, &p, &f, &r, &log));
                        }
                        Err(_) => std::thread::sleep(Duration::from_millis(2)),
                    }
                }
            })
            .expect("proxy thread");
        FaultProxy { addr, plan, stop, faults, requests, exchanges, thread: Some(thread) }
    }

    /// Its base URL.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// From now on, each request meets a random fault of `mix` with
    /// probability `rate`, drawn from a generator seeded with `seed`.
    pub fn set_random(&self, rate: f64, seed: u64, mix: &[Fault]) {
        let mut plan = self.plan.lock().unwrap();
        plan.rate = rate;
        plan.mix = mix.to_vec();
        plan.rng = fastrand::Rng::with_seed(seed);
    }

    /// The next requests (to exactly `path`, when given) meet these faults,
    /// in order, before any random ones.
    pub fn script(&self, path: Option<&str>, faults: &[Fault]) {
        let mut plan = self.plan.lock().unwrap();
        plan.scripted.extend(faults.iter().map(|f| (path.map(str::to_owned), *f)));
    }

    /// Faults injected so far.
    pub fn faults(&self) -> u64 {
        self.faults.load(Ordering::SeqCst)
    }

    /// Requests seen so far.
    pub fn requests(&self) -> u64 {
        self.requests.load(Ordering::SeqCst)
    }

    /// Every exchange so far, with its bytes on the wire.
    pub fn exchanges(&self) -> Vec<Exchange> {
        self.exchanges.lock().unwrap().clone()
    }
}

impl Drop for FaultProxy {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// Reads one HTTP/1.1 request (headers and a `Content-Length` body).
fn read_request(stream: &mut TcpStream) -> Option<(String, Vec<u8>, Vec<u8>)> {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 16 * 1024];
    let header_end = loop {
        if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break i + 4;
        }
        let n = stream.read(&mut chunk).ok()?;
        if n == 0 {
            return None;
        }
        buf.extend_from_slice(&chunk[..n]);
    };
    let head = String::from_utf8_lossy(&buf[..header_end]).into_owned();
    let length = head
        .lines()
        .find_map(|l| l.split_once(':').filter(|(k, _)| k.eq_ignore_ascii_case("content-length")))
        .and_then(|(_, v)| v.trim().parse::<usize>().ok())
        .unwrap_or(0);
    let mut body = buf[header_end..].to_vec();
    while body.len() < length {
        let n = stream.read(&mut chunk).ok()?;
        if n == 0 {
            return None;
        }
        body.extend_from_slice(&chunk[..n]);
    }
    let path = head.split_whitespace().nth(1).unwrap_or("/").to_owned();
    // Rewrite the head to close after one exchange.
    let mut rewritten = String::new();
    for line in head.trim_end().lines() {
        if !line.to_ascii_lowercase().starts_with("connection:") {
            rewritten.push_str(line);
            rewritten.push_str("\r\n");
        }
    }
    rewritten.push_str("Connection: close\r\n\r\n");
    Some((path, rewritten.into_bytes(), body))
}

fn forward(upstream: SocketAddr, head: &[u8], body: &[u8]) -> Option<Vec<u8>> {
    let mut hub = TcpStream::connect(upstream).ok()?;
    hub.set_read_timeout(Some(Duration::from_secs(60))).ok()?;
    hub.write_all(head).ok()?;
    hub.write_all(body).ok()?;
    let mut response = Vec::new();
    hub.read_to_end(&mut response).ok()?;
    Some(response)
}

fn canned(status: &str, content_type: &str, extra: &str, body: &str) -> Vec<u8> {
    format!(
        "HTTP/1.1 {status}\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\n{extra}Connection: close\r\n\r\n{body}",
        body.len()
    )
    .into_bytes()
}

fn serve(
    mut client: TcpStream,
    upstream: SocketAddr,
    plan: &Mutex<Plan>,
    faults: &AtomicU64,
    requests: &AtomicU64,
    exchanges: &Mutex<Vec<Exchange>>,
) {
    let _ = client.set_nonblocking(false);
    let _ = client.set_read_timeout(Some(Duration::from_secs(30)));
    let Some((path, head, body)) = read_request(&mut client) else { return };
    requests.fetch_add(1, Ordering::SeqCst);
    let fault = {
        let mut plan = plan.lock().unwrap();
        let bare = path.split('?').next().unwrap_or_default();
        let scripted = plan.scripted.iter().position(|(p, _)| p.as_deref().is_none_or(|p| p == bare));
        if let Some(i) = scripted {
            plan.scripted.remove(i).map(|(_, fault)| fault)
        } else if plan.rate > 0.0 && plan.rng.f64() < plan.rate {
            let n = plan.mix.len();
            let i = plan.rng.usize(..n);
            Some(plan.mix[i])
        } else {
            None
        }
    };
    if fault.is_some() {
        faults.fetch_add(1, Ordering::SeqCst);
    }
    let html = |title: &str| format!("<html><head><title>{title}</title></head><body><center><h1>{title}</h1></center><hr><center>nginx</center></body></html>");
    let reply = match fault {
        Some(Fault::Reset) => None,
        Some(Fault::LostReply) => {
            let _ = forward(upstream, &head, &body);
            None
        }
        Some(Fault::Truncated) => forward(upstream, &head, &body).map(|r| {
            let split = r.windows(4).position(|w| w == b"\r\n\r\n").map_or(r.len(), |i| i + 4);
            let keep = split + (r.len() - split) / 2;
            r[..keep].to_vec()
        }),
        Some(Fault::TooMany) => Some(canned(
            "429 Too Many Requests",
            "application/json",
            "Retry-After: 1\r\n",
            r#"{"statusCode":429,"error":"Too Many Requests","message":"slow down"}"#,
        )),
        Some(Fault::BadGateway) => Some(canned("502 Bad Gateway", "text/html", "", &html("502 Bad Gateway"))),
        Some(Fault::HtmlBadRequest) => Some(canned("400 Bad Request", "text/html", "", &html("400 Bad Request"))),
        Some(Fault::HtmlTooLarge) => {
            Some(canned("413 Request Entity Too Large", "text/html", "", &html("413 Request Entity Too Large")))
        }
        Some(Fault::HtmlUnsupportedMedia) => {
            Some(canned("415 Unsupported Media Type", "text/html", "", &html("415 Unsupported Media Type")))
        }
        Some(Fault::EmptyObject) => {
            let _ = forward(upstream, &head, &body);
            Some(canned("200 OK", "application/json", "", "{}"))
        }
        None => forward(upstream, &head, &body),
    };
    exchanges.lock().unwrap().push(Exchange {
        path: path.clone(),
        head: String::from_utf8_lossy(&head).into_owned(),
        request_bytes: head.len() + body.len(),
        response_bytes: reply.as_ref().map_or(0, Vec::len),
    });
    if let Some(reply) = reply {
        let _ = client.write_all(&reply);
    }
    let _ = client.shutdown(Shutdown::Both);
}
