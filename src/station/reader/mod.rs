//! Badge readers: from bytes on a serial port or reports on hidraw to
//! [`RawRead`]s for the recorder, on one named thread per device.
//!
//! # Layers
//!
//! * **Decoders**, pure state machines over byte streams, tested on byte
//!   slices: [`em4100`] (RDM6300, ID-12LA/ID-20LA), [`line`](mod@line) (ASCII lines
//!   with idle flush), [`hid`] (boot-keyboard reports), and the text formats
//!   applied to a line or a typed read: [`wiegand`], [`magstripe`],
//!   [`barcode`]. [`debounce`] undoes a reader's own repetition, [`wedge`]
//!   tells a reader's burst of keys from a person typing (for the GUI).
//! * **[`pipeline::Pipeline`]** chains framing, text format and debounce as a
//!   reader [`profile`] says, and raises a warning after a run of failed
//!   frames (usually a wrong baud rate).
//! * **Reader threads** ([`serial`], [`hidraw`]) own one device each: find
//!   it (by path, or by USB VID:PID through [`sysfs`]/hidapi), open it, read
//!   with a short timeout so they notice a stop request, and on unplug report
//!   [`ReaderEvent::Disconnected`] and look for the device again with a
//!   backoff capped at [`MAX_BACKOFF`]. They send reads to the recorder and
//!   [`ReaderEvent`]s to whoever listens, and never touch the database.
//! * **Configuration**: [`spec`] parses `READERS` from the `.env` file;
//!   [`profile`] holds the reader profiles (`hardware/readers/*.toml`, built
//!   in, plus the user's own in `DATA_DIR/readers/`).
//!
//! The station runtime starts one thread per configured
//! reader with [`spawn`]; `badgestation readers test` does the same without
//! a recorder.

pub mod barcode;
pub mod debounce;
pub mod em4100;
pub mod hid;
pub mod hidraw;
pub mod line;
pub mod magstripe;
pub mod pipeline;
pub mod profile;
pub mod serial;
pub mod sysfs;
pub mod wedge;
pub mod wiegand;
mod worker;

use std::fmt;
use std::path::PathBuf;
use crate::worker::WorkerThread;
use std::time::Duration;

use crossbeam_channel::Sender;

use crate::clock::SharedClock;
use crate::model::{RawRead, Waker};

pub use profile::{Profile, ProfileSet, Transport};
pub use crate::station::config::readers::{ReaderSpec, Target, UsbId, UsbMatch};

/// The longest wait between two attempts to find or open a device.
pub const MAX_BACKOFF: Duration = Duration::from_secs(2);

/// A complete frame from a framer: the text and when its first byte arrived
/// (on the station's monotonic clock).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Frame {
    /// The frame's text (for EM4100, already the badge id).
    pub text: String,
    /// When its first byte arrived.
    pub started: Duration,
}

/// Why bytes or a frame were rejected. Each rejection counts towards the
/// "check the baud rate" warning.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FrameError {
    /// A non-hex byte where an EM4100 frame needs a hex digit.
    #[error("byte {byte:#04x} at position {position} of an EM4100 frame is not a hex digit")]
    NotHex {
        /// Position in the frame (STX is 0).
        position: usize,
        /// The byte.
        byte: u8,
    },
    /// No ETX (or CR LF ETX) after the digits.
    #[error("EM4100 frame does not end with ETX (found byte {byte:#04x})")]
    BadEnd {
        /// The byte found instead.
        byte: u8,
    },
    /// The XOR checksum does not match.
    #[error("EM4100 checksum is {got:02X} but the data gives {expected:02X}")]
    Checksum {
        /// Computed from the data bytes.
        expected: u8,
        /// Sent in the frame.
        got: u8,
    },
    /// Bytes outside any frame.
    #[error("{bytes} bytes of noise outside any frame")]
    Noise {
        /// How many.
        bytes: usize,
    },
    /// A line that is not text.
    #[error("line is not text ({detail})")]
    NotText {
        /// What was wrong.
        detail: String,
    },
    /// A line longer than the decoder keeps.
    #[error("line longer than {max} bytes without CR or LF")]
    Overlong {
        /// The limit.
        max: usize,
    },
    /// Outside the profile's length limits.
    #[error("read has {len} characters, the profile accepts {min}–{max}")]
    Length {
        /// Characters in the read.
        len: usize,
        /// Profile minimum.
        min: usize,
        /// Profile maximum.
        max: usize,
    },
    /// A character the profile does not accept.
    #[error("character {found:?} is not allowed by the profile's charset {charset}")]
    Charset {
        /// The character.
        found: char,
        /// The charset's name.
        charset: &'static str,
    },
    /// A HID report too short to be a keyboard report.
    #[error("HID report of {len} bytes is too short for a keyboard report")]
    ShortReport {
        /// Its length (after the report id).
        len: usize,
    },
    /// A Wiegand frame that does not parse or fails parity.
    #[error(transparent)]
    Wiegand(#[from] wiegand::WiegandError),
    /// A magstripe read without a usable track.
    #[error(transparent)]
    Magstripe(#[from] magstripe::MagstripeError),
}

/// What a reader thread reports. Every event names its reader by the id
/// given in `READERS`.
#[derive(Debug, Clone, PartialEq)]
pub enum ReaderEvent {
    /// The device was found and opened; reads can arrive.
    Connected {
        /// Reader id.
        reader: String,
        /// The device node in use (resolved from a VID:PID or a symlink).
        path: PathBuf,
    },
    /// The device went away (unplugged, or a read error). The thread keeps
    /// looking for it and reports `Connected` when it is back.
    Disconnected {
        /// Reader id.
        reader: String,
        /// What the read returned.
        reason: String,
    },
    /// Something the operator or an admin should fix: the device cannot be
    /// found or opened (with the fix), or many frames in a row were bad
    /// (check the baud rate). Each distinct problem is reported once until
    /// it changes; the reader keeps trying.
    Error {
        /// Reader id.
        reader: String,
        /// What is wrong and what to do.
        error: ReaderError,
    },
    /// A badge was decoded and handed to the recorder. Its outcome comes as
    /// a scan event from the recorder thread, usually after this event (the
    /// two threads race, so a consumer must not rely on the order).
    Read {
        /// Reader id.
        reader: String,
        /// The decoded badge text.
        badge: String,
        /// When the read was complete, on the station's monotonic clock.
        at_mono: Duration,
        /// From the frame's first byte to its last.
        took: Duration,
    },
}

impl ReaderEvent {
    /// The id of the reader that sent it.
    #[must_use]
    pub fn reader(&self) -> &str {
        match self {
            ReaderEvent::Connected { reader, .. }
            | ReaderEvent::Disconnected { reader, .. }
            | ReaderEvent::Error { reader, .. }
            | ReaderEvent::Read { reader, .. } => reader,
        }
    }
}

impl fmt::Display for ReaderEvent {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ReaderEvent::Connected { reader, path } => write!(f, "reader {reader}: connected ({})", path.display()),
            ReaderEvent::Disconnected { reader, reason } => {
                write!(f, "reader {reader}: disconnected ({reason}); waiting for it to come back")
            }
            ReaderEvent::Error { reader, error } => write!(f, "reader {reader}: {error}"),
            ReaderEvent::Read { reader, badge, took, .. } => {
                write!(f, "reader {reader}: read {badge} (frame {:.1} ms)", took.as_secs_f64() * 1000.0)
            }
        }
    }
}

/// Problems with a reader device, each saying what to do.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ReaderError {
    /// The configured path does not exist.
    #[error("{path} does not exist: is the reader plugged in? `badgestation devices` lists what is connected")]
    PathNotFound {
        /// The configured path.
        path: PathBuf,
    },
    /// No device with the USB id is connected.
    #[error("no {transport} device {usb} is connected: plug the reader in (`badgestation devices` lists what is connected)")]
    UsbNotFound {
        /// `serial` or `HID`.
        transport: &'static str,
        /// The id(s) looked for.
        usb: String,
    },
    /// The user may not open the device node.
    #[error(
        "cannot open {path}: permission denied; add this user to the `{group}` group \
         (sudo usermod -aG {group} $USER, then log in again) or install the udev rules with \
         scripts/install_udev_rules.sh"
    )]
    PermissionDenied {
        /// The device node.
        path: PathBuf,
        /// The group that owns such nodes under our udev rules.
        group: &'static str,
    },
    /// Another program holds the device.
    #[error("{path} is in use by another program (a serial monitor, ModemManager, another badgestation?); close it")]
    Busy {
        /// The device node.
        path: PathBuf,
    },
    /// Any other failure to open the device.
    #[error("cannot open {path}: {detail}")]
    Open {
        /// The device node.
        path: PathBuf,
        /// What the system said.
        detail: String,
    },
    /// The exclusive grab of a keyboard reader's input node failed: reads
    /// still work, but the card numbers also type into other windows.
    #[error(
        "cannot grab {path} ({detail}): card numbers will also type into other windows; \
         run scripts/install_udev_rules.sh so this user may open the reader's input node, \
         or set grab = false in the profile to accept it"
    )]
    Grab {
        /// The evdev node.
        path: PathBuf,
        /// What the system said.
        detail: String,
    },
    /// Many frames in a row failed their checks.
    #[error(
        "{count} reads in a row were garbled (last: {last}); {hint}"
    )]
    BadFrames {
        /// Failures in a row so far.
        count: u32,
        /// The last failure.
        last: FrameError,
        /// What to check, from the profile.
        hint: String,
    },
}

impl ReaderError {
    /// Whether this only says the device is absent (expected while it is
    /// unplugged, so not repeated after a disconnect).
    #[must_use]
    pub fn is_absent(&self) -> bool {
        matches!(self, ReaderError::PathNotFound { .. } | ReaderError::UsbNotFound { .. })
    }
}

/// A reader as configured: its id, profile and device. Build it from a
/// `READERS` entry with [`ReaderConfig::resolve`].
#[derive(Debug, Clone, PartialEq)]
pub struct ReaderConfig {
    /// The id stored with each scan and shown in events.
    pub id: String,
    /// The profile's name.
    pub profile_name: String,
    /// The profile, with any `READERS` override (baud) applied.
    pub profile: Profile,
    /// Which device to open.
    pub target: Target,
}

/// A `READERS` entry that names something that does not exist or fit.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SetupError {
    /// No profile of that name.
    #[error(
        "READERS entry {entry:?}: there is no reader profile {profile:?}; known profiles: {known} \
         (your own go in DATA_DIR/readers/NAME.toml)"
    )]
    UnknownProfile {
        /// The reader id.
        entry: String,
        /// The profile asked for.
        profile: String,
        /// The known names.
        known: String,
    },
    /// No device given and the profile lists no USB ids.
    #[error(
        "READERS entry {entry:?}: profile {profile} lists no USB ids, so name the device, \
         e.g. {profile}:/dev/ttyUSB0 or {profile}:VID:PID (`badgestation devices` lists them)"
    )]
    NoDevice {
        /// The reader id.
        entry: String,
        /// The profile.
        profile: String,
    },
    /// `@BAUD` on a HID profile.
    #[error("READERS entry {entry:?}: @{baud} sets a baud rate, but {profile} is a HID reader; remove @{baud}")]
    BaudOnHid {
        /// The reader id.
        entry: String,
        /// The profile.
        profile: String,
        /// The baud given.
        baud: u32,
    },
    /// Two entries with the same id.
    #[error("READERS names the reader {id:?} twice; give one a name of its own: NAME=PROFILE:DEVICE")]
    DuplicateId {
        /// The id.
        id: String,
    },
}

impl ReaderConfig {
    /// The reader an entry describes, with its profile looked up and
    /// `@BAUD` applied.
    pub fn resolve(spec: &ReaderSpec, profiles: &ProfileSet) -> Result<ReaderConfig, SetupError> {
        let named = profiles.get(&spec.profile).ok_or_else(|| SetupError::UnknownProfile {
            entry: spec.id.clone(),
            profile: spec.profile.clone(),
            known: profiles.names(),
        })?;
        let mut profile = named.profile.clone();
        if let Some(baud) = spec.baud {
            if profile.transport == Transport::Hid {
                return Err(SetupError::BaudOnHid { entry: spec.id.clone(), profile: spec.profile.clone(), baud });
            }
            profile.serial.baud = baud;
        }
        let target = match &spec.target {
            Target::ProfileDefault if profile.usb.is_empty() => {
                return Err(SetupError::NoDevice { entry: spec.id.clone(), profile: spec.profile.clone() });
            }
            Target::ProfileDefault => Target::Usb(UsbMatch { ids: profile.usb.clone(), serial: None }),
            other => other.clone(),
        };
        Ok(ReaderConfig { id: spec.id.clone(), profile_name: spec.profile.clone(), profile, target })
    }

    /// Every entry resolved; the first problem stops it (a station should not
    /// start with half its readers silently missing).
    pub fn resolve_all(specs: &[ReaderSpec], profiles: &ProfileSet) -> Result<Vec<ReaderConfig>, SetupError> {
        let mut configs: Vec<ReaderConfig> = Vec::with_capacity(specs.len());
        for spec in specs {
            if configs.iter().any(|c| c.id == spec.id) {
                return Err(SetupError::DuplicateId { id: spec.id.clone() });
            }
            configs.push(ReaderConfig::resolve(spec, profiles)?);
        }
        Ok(configs)
    }
}

/// What a reader thread is connected to.
pub struct ReaderLinks<E> {
    /// The station clock; reads are stamped with its `now_mono()`.
    pub clock: SharedClock,
    /// Where decoded reads go (the recorder's queue).
    pub reads: Sender<RawRead>,
    /// Where events go.
    pub events: Sender<E>,
    /// Called after each event.
    pub waker: Waker,
    /// Held by the thread until it ends. Give every reader a clone of one
    /// sender: its receiver disconnects once all of them have stopped, which
    /// lets a caller wait for them while it keeps draining events.
    pub alive: Sender<()>,
}

/// Owns a reader thread; dropping it stops and joins the thread.
#[derive(Debug)]
pub struct ReaderHandle {
    id: String,
    thread: WorkerThread,
}

impl ReaderHandle {
    /// The reader's id.
    #[must_use]
    pub fn id(&self) -> &str {
        &self.id
    }

    /// Asks the thread to stop; it notices within one read timeout.
    pub fn request_stop(&mut self) {
        self.thread.request_stop();
    }

    /// Stops the thread and waits for it.
    pub fn join(self) {
        self.thread.join();
    }
}

/// Starts the thread for one reader, named `reader <id>`.
pub fn spawn<E: From<ReaderEvent> + Send + 'static>(
    config: ReaderConfig,
    links: ReaderLinks<E>,
) -> std::io::Result<ReaderHandle> {
    let id = config.id.clone();
    let thread = WorkerThread::spawn_stoppable(format!("reader {id}"), move |stop_rx| {
        let pipeline = pipeline::Pipeline::new(&config.profile);
        let hint = profile_hint(&config);
        let worker = worker::Worker::new(config.id.clone(), pipeline, hint, links, stop_rx);
        match config.profile.transport {
            Transport::Serial => worker.run(serial::SerialConnector::new(&config)),
            Transport::Hid => worker.run(hidraw::HidConnector::new(&config)),
        }
    })?;
    Ok(ReaderHandle { id, thread })
}

/// What to check when frames keep failing, for [`ReaderError::BadFrames`].
fn profile_hint(config: &ReaderConfig) -> String {
    let profile = &config.profile;
    match profile.transport {
        Transport::Serial => format!(
            "check the reader's baud rate and format: profile {} expects {} {} (for another baud, \
             append @BAUD to the reader's READERS entry, e.g. {}:/dev/ttyUSB0@19200)",
            config.profile_name,
            profile.serial.describe(),
            profile.decoder.describe(),
            config.profile_name,
        ),
        Transport::Hid => format!(
            "check that the reader types what profile {} expects ({})",
            config.profile_name,
            profile.decoder.describe()
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(text: &str) -> ReaderSpec {
        text.parse().unwrap()
    }

    /// An entry without a device looks for the profile's USB ids; @BAUD
    /// overrides the profile's baud rate.
    #[test]
    fn resolve_applies_profile_defaults_and_overrides() {
        let profiles = ProfileSet::builtin();
        let config = ReaderConfig::resolve(&spec("rdm6300@19200"), &profiles).unwrap();
        assert_eq!(config.profile.serial.baud, 19200);
        let Target::Usb(wanted) = &config.target else { panic!("{:?}", config.target) };
        assert!(wanted.ids.contains(&"1a86:7523".parse().unwrap()));
        let config = ReaderConfig::resolve(&spec("rdm6300:/dev/ttyUSB3"), &profiles).unwrap();
        assert_eq!(config.target, Target::Path("/dev/ttyUSB3".into()));
        assert_eq!(config.profile.serial.baud, 9600);
    }

    /// Unknown profiles (listing the known ones), missing devices, a baud
    /// on a HID reader and duplicate ids are refused with the fix.
    #[test]
    fn resolve_refuses_what_cannot_run() {
        let profiles = ProfileSet::builtin();
        let unknown = ReaderConfig::resolve(&spec("rdm630:/dev/ttyUSB0"), &profiles).unwrap_err().to_string();
        assert!(unknown.contains("rdm6300, rdm6300-hex") && unknown.contains("DATA_DIR/readers"), "{unknown}");
        let no_device = ReaderConfig::resolve(&spec("serial-line"), &profiles).unwrap_err().to_string();
        assert!(no_device.contains("serial-line:/dev/ttyUSB0"), "{no_device}");
        assert!(matches!(ReaderConfig::resolve(&spec("wedge-hid@9600"), &profiles), Err(SetupError::BaudOnHid { .. })));
        let twice = [spec("rdm6300:/dev/ttyUSB0"), spec("rdm6300:/dev/ttyUSB0")];
        assert_eq!(
            ReaderConfig::resolve_all(&twice, &profiles),
            Err(SetupError::DuplicateId { id: "rdm6300:/dev/ttyUSB0".into() })
        );
    }
}
