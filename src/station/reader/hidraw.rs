//! HID keyboard-wedge readers read through hidraw (hidapi's pure-Rust
//! Linux backend: no libudev), for the reader thread in `worker`.
//!
//! The device is found by path (`/dev/hidrawN`) or by USB VID:PID (and
//! serial number) through hidapi's sysfs enumeration on every (re)connect;
//! of a composite device's interfaces the keyboard one (usage page 1,
//! usage 6) is preferred. On opening, the report descriptor says whether
//! keyboard reports carry a report id (composite devices), unless the
//! profile sets one. Unplug: hidapi reports "unexpected poll error (device
//! disconnected)" (POLLHUP/POLLERR); any read error counts as gone.
//!
//! # The exclusive grab, and its trade-off
//!
//! The kernel hands every report both to hidraw and to the input layer, so
//! reading hidraw does **not** stop the card number from also being typed
//! into whatever window (or text console) has focus. With `grab = true` in
//! the profile the thread also opens the reader's evdev node(s)
//! (`/sys/class/hidraw/hidrawN/device/input/input*/event*`) and holds
//! `EVIOCGRAB` on them: the input layer then delivers the keys only to us,
//! and we never read them, so they go nowhere else. Measured in a QEMU guest
//! (readers.md §1.3): with the grab held, another evdev reader got 0 bytes
//! while hidraw still got all 22 reports.
//!
//! The price: while the station runs, that reader cannot type anywhere else
//! (not into a terminal, not into the station window's manual entry field);
//! opening the evdev node needs its own permission (our udev rules give it
//! to `plugdev`); and the grab is per input node, so a reader that is also
//! configured for the window's keyboard-wedge input would be silent there.
//! The kernel drops the grab when the file closes, so a crash or a kill
//! cannot leave the keyboard grabbed. A failed grab is reported as a
//! [`ReaderError::Grab`] warning and reading goes on without it.

use std::ffi::CString;
use std::path::{Path, PathBuf};
use std::time::Duration;

use evdev::raw_stream::RawDevice;
use hidapi::{HidApi, HidDevice};

use super::hid::keyboard_report_id;
use super::profile::HidSettings;
use crate::station::config::readers::{Target, UsbId, UsbMatch};
use super::sysfs::Sysfs;
use super::worker::{Connector, Opened, Port, PortRead};
use super::{ReaderConfig, ReaderError};

/// The group that owns hidraw and input nodes of readers under our udev rules.
const HID_GROUP: &str = "plugdev";
/// Generic Desktop / Keyboard.
const KEYBOARD_USAGE: (u16, u16) = (0x01, 0x06);

/// One hidraw node as hidapi lists it (one row per node, its usages merged).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HidNode {
    /// `/dev/hidrawN`.
    pub path: PathBuf,
    /// Vendor and product id.
    pub id: UsbId,
    /// Serial number, if any.
    pub serial: Option<String>,
    /// Manufacturer string.
    pub manufacturer: Option<String>,
    /// Product string.
    pub product: Option<String>,
    /// Whether one of its top-level usages is a keyboard.
    pub keyboard: bool,
}

/// Every hidraw node hidapi can see, sorted by path.
pub fn hid_nodes() -> Result<Vec<HidNode>, String> {
    HidApi::new().map(|api| nodes_of(&api)).map_err(|e| format!("cannot list HID devices: {e}"))
}

/// The nodes an enumerated `HidApi` holds.
fn nodes_of(api: &HidApi) -> Vec<HidNode> {
    let mut nodes: Vec<HidNode> = Vec::new();
    for info in api.device_list() {
        let path = PathBuf::from(info.path().to_string_lossy().into_owned());
        let keyboard = (info.usage_page(), info.usage()) == KEYBOARD_USAGE;
        if let Some(node) = nodes.iter_mut().find(|n| n.path == path) {
            node.keyboard |= keyboard;
            continue;
        }
        let text = |s: Option<&str>| s.map(str::trim).filter(|s| !s.is_empty()).map(str::to_owned);
        nodes.push(HidNode {
            path,
            id: UsbId { vid: info.vendor_id(), pid: info.product_id() },
            serial: text(info.serial_number()),
            manufacturer: text(info.manufacturer_string()),
            product: text(info.product_string()),
            keyboard,
        });
    }
    nodes.sort_by(|a, b| a.path.cmp(&b.path));
    nodes
}

/// The node to open for `wanted`: a matching keyboard interface if there
/// is one, else the first match.
#[must_use]
pub fn find_node(nodes: &[HidNode], wanted: &UsbMatch) -> Option<PathBuf> {
    let matching = || nodes.iter().filter(|n| wanted.matches(n.id, n.serial.as_deref()));
    matching().find(|n| n.keyboard).or_else(|| matching().next()).map(|n| n.path.clone())
}

/// Finds and opens a HID reader.
pub(crate) struct HidConnector {
    target: Target,
    settings: HidSettings,
    sysfs: Sysfs,
}

impl HidConnector {
    pub(crate) fn new(config: &ReaderConfig) -> Self {
        HidConnector { target: config.target.clone(), settings: config.profile.hid, sysfs: Sysfs::system() }
    }

    fn find(&self, api: &HidApi) -> Result<PathBuf, ReaderError> {
        match &self.target {
            Target::Path(path) if path.exists() => Ok(path.clone()),
            Target::Path(path) => Err(ReaderError::PathNotFound { path: path.clone() }),
            Target::Usb(wanted) => find_node(&nodes_of(api), wanted)
                .ok_or_else(|| ReaderError::UsbNotFound { transport: "HID", usb: wanted.to_string() }),
            Target::ProfileDefault => Err(ReaderError::UsbNotFound { transport: "HID", usb: "(no USB id given)".into() }),
        }
    }

    /// Grabs the evdev nodes of `hidraw`; failures become warnings.
    fn grab(&self, hidraw: &Path, warnings: &mut Vec<ReaderError>) -> Vec<RawDevice> {
        let mut grabbed = Vec::new();
        for node in self.sysfs.event_nodes_of_hidraw(hidraw) {
            match RawDevice::open(&node).and_then(|mut device| device.grab().map(|()| device)) {
                Ok(device) => grabbed.push(device),
                Err(error) => warnings.push(ReaderError::Grab { path: node, detail: error.to_string() }),
            }
        }
        grabbed
    }
}

/// Why a hidraw node could not be opened, asked of the file system because
/// hidapi only returns a message.
fn open_error(path: &Path, hidapi_message: String) -> ReaderError {
    let path = path.to_path_buf();
    match std::fs::OpenOptions::new().read(true).write(true).open(&path) {
        Err(e) if e.kind() == std::io::ErrorKind::PermissionDenied => ReaderError::PermissionDenied { path, group: HID_GROUP },
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => ReaderError::PathNotFound { path },
        _ => ReaderError::Open { path, detail: hidapi_message },
    }
}

impl Connector for HidConnector {
    type Port = HidReaderPort;

    fn connect(&mut self) -> Result<Opened<HidReaderPort>, ReaderError> {
        // Enumerates hidraw through sysfs (again on every reconnect: the node
        // number may change after a replug).
        let api = HidApi::new()
            .map_err(|e| ReaderError::Open { path: "/sys/class/hidraw".into(), detail: format!("cannot list HID devices: {e}") })?;
        let path = self.find(&api)?;
        let real = path.canonicalize().unwrap_or_else(|_| path.clone());
        let c_path = CString::new(real.to_string_lossy().into_owned())
            .map_err(|_| ReaderError::Open { path: path.clone(), detail: "the path contains a NUL byte".into() })?;
        let device = api.open_path(&c_path).map_err(|e| open_error(&real, e.to_string()))?;
        let report_id = self.settings.report_id.or_else(|| {
            let mut descriptor = [0u8; hidapi::MAX_REPORT_DESCRIPTOR_SIZE];
            device.get_report_descriptor(&mut descriptor).ok().and_then(|n| keyboard_report_id(&descriptor[..n]))
        });
        let mut warnings = Vec::new();
        let grabs = if self.settings.grab { self.grab(&real, &mut warnings) } else { Vec::new() };
        Ok(Opened { port: HidReaderPort { device, _grabs: grabs }, path: real, warnings, report_id })
    }
}

/// An open hidraw node, with the grabbed evdev nodes (released when dropped).
pub(crate) struct HidReaderPort {
    device: HidDevice,
    _grabs: Vec<RawDevice>,
}

impl Port for HidReaderPort {
    fn read(&mut self, buf: &mut [u8], timeout: Duration) -> PortRead {
        // Round up, so a flush deadline is not missed by a fraction of a millisecond.
        let millis = i32::try_from(timeout.as_micros().div_ceil(1000)).unwrap_or(i32::MAX);
        match self.device.read_timeout(buf, millis) {
            Ok(0) => PortRead::Idle,
            Ok(n) => PortRead::Data(n),
            Err(error) => PortRead::Gone(error.to_string()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn node(path: &str, id: &str, serial: Option<&str>, keyboard: bool) -> HidNode {
        HidNode {
            path: path.into(),
            id: id.parse().unwrap(),
            serial: serial.map(Into::into),
            manufacturer: None,
            product: None,
            keyboard,
        }
    }

    /// Of a composite reader's nodes the keyboard interface is chosen; a
    /// serial number picks one of two identical readers.
    #[test]
    fn chooses_the_keyboard_interface() {
        let nodes = [
            node("/dev/hidraw0", "ffff:0035", Some("A"), false),
            node("/dev/hidraw1", "ffff:0035", Some("A"), true),
            node("/dev/hidraw2", "ffff:0035", Some("B"), true),
            node("/dev/hidraw3", "0627:0001", None, true),
        ];
        let id: UsbId = "ffff:0035".parse().unwrap();
        assert_eq!(find_node(&nodes, &UsbMatch { ids: vec![id], serial: None }), Some("/dev/hidraw1".into()));
        assert_eq!(find_node(&nodes, &UsbMatch { ids: vec![id], serial: Some("B".into()) }), Some("/dev/hidraw2".into()));
        assert_eq!(find_node(&nodes[..1], &UsbMatch { ids: vec![id], serial: None }), Some("/dev/hidraw0".into()));
        assert_eq!(find_node(&nodes, &UsbMatch { ids: vec!["0c27:3bfa".parse().unwrap()], serial: None }), None);
    }

    /// A hidraw path that does not exist is reported as such, with the hint
    /// to list devices.
    #[test]
    fn missing_node() {
        let error = open_error(Path::new("/dev/hidraw-badgestation-none"), "failed".into());
        assert!(matches!(error, ReaderError::PathNotFound { .. }));
    }
}
