//! Finding serial ports and a HID reader's input nodes through sysfs, so
//! the build and the station need no libudev.
//!
//! A tty's USB identity is found by walking up from
//! `/sys/class/tty/<name>/device` to the first ancestor with `idVendor`
//! (for `ttyUSB*` that is two levels up, past the usb-serial port and the
//! interface; for `ttyACM*` one, past the interface). Device nodes are
//! re-enumerated on every (re)connect, never cached: after a replug the
//! kernel may hand out another number.
//!
//! [`Sysfs`] takes the `/sys` and `/dev` roots as paths so tests can build a
//! fake tree.

use std::path::{Path, PathBuf};

use crate::station::config::readers::{UsbId, UsbMatch};

/// A USB device's identity as sysfs shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UsbInfo {
    /// Vendor and product id.
    pub id: UsbId,
    /// `serial`, if the device has one.
    pub serial: Option<String>,
    /// `manufacturer` string.
    pub manufacturer: Option<String>,
    /// `product` string.
    pub product: Option<String>,
}

/// A serial port.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SerialPort {
    /// The device node, e.g. `/dev/ttyUSB0`.
    pub path: PathBuf,
    /// Its USB device, if it is on USB.
    pub usb: Option<UsbInfo>,
}

/// The `/sys` and `/dev` trees to look in.
#[derive(Debug, Clone)]
pub struct Sysfs {
    sys: PathBuf,
    dev: PathBuf,
}

impl Default for Sysfs {
    fn default() -> Self {
        Sysfs::system()
    }
}

fn read_trimmed(path: &Path) -> Option<String> {
    std::fs::read_to_string(path).ok().map(|s| s.trim().to_owned()).filter(|s| !s.is_empty())
}

impl Sysfs {
    /// The real `/sys` and `/dev`.
    #[must_use]
    pub fn system() -> Self {
        Sysfs { sys: PathBuf::from("/sys"), dev: PathBuf::from("/dev") }
    }

    /// Other roots (tests).
    #[must_use]
    pub fn at(sys: impl Into<PathBuf>, dev: impl Into<PathBuf>) -> Self {
        Sysfs { sys: sys.into(), dev: dev.into() }
    }

    /// The USB device above a sysfs device directory, if any.
    #[must_use]
    pub fn usb_above(device: &Path) -> Option<UsbInfo> {
        let start = device.canonicalize().ok()?;
        for dir in start.ancestors().take(8) {
            let Some(vid) = read_trimmed(&dir.join("idVendor")) else { continue };
            let pid = read_trimmed(&dir.join("idProduct"))?;
            let id = format!("{vid}:{pid}").parse().ok()?;
            return Some(UsbInfo {
                id,
                serial: read_trimmed(&dir.join("serial")),
                manufacturer: read_trimmed(&dir.join("manufacturer")),
                product: read_trimmed(&dir.join("product")),
            });
        }
        None
    }

    /// Serial ports backed by hardware: ttys with a `device` link, without
    /// the unused legacy `ttyS*` placeholders (UART type 0), sorted by path.
    #[must_use]
    pub fn serial_ports(&self) -> Vec<SerialPort> {
        let Ok(entries) = std::fs::read_dir(self.sys.join("class/tty")) else {
            return Vec::new();
        };
        let mut ports: Vec<SerialPort> = entries
            .filter_map(Result::ok)
            .filter_map(|entry| {
                let class_dir = entry.path();
                let device = class_dir.join("device");
                if !device.exists() {
                    return None;
                }
                if read_trimmed(&class_dir.join("type")).as_deref() == Some("0") {
                    return None;
                }
                Some(SerialPort { path: self.dev.join(entry.file_name()), usb: Self::usb_above(&device) })
            })
            .collect();
        ports.sort_by(|a, b| a.path.cmp(&b.path));
        ports
    }

    /// The first serial port (by path) whose USB device matches.
    #[must_use]
    pub fn find_serial(&self, wanted: &UsbMatch) -> Option<PathBuf> {
        self.serial_ports()
            .into_iter()
            .find(|port| port.usb.as_ref().is_some_and(|usb| wanted.matches(usb.id, usb.serial.as_deref())))
            .map(|port| port.path)
    }

    /// The evdev nodes (`/dev/input/eventN`) of the input devices the kernel
    /// made for a hidraw node (`/dev/hidrawN`): the nodes to grab so a
    /// keyboard-wedge reader stops typing into other windows.
    #[must_use]
    pub fn event_nodes_of_hidraw(&self, hidraw: &Path) -> Vec<PathBuf> {
        let Some(name) = hidraw.file_name() else {
            return Vec::new();
        };
        let inputs = self.sys.join("class/hidraw").join(name).join("device/input");
        let mut nodes: Vec<PathBuf> = std::fs::read_dir(inputs)
            .into_iter()
            .flatten()
            .filter_map(Result::ok)
            .filter_map(|input| std::fs::read_dir(input.path()).ok())
            .flatten()
            .filter_map(Result::ok)
            .map(|entry| entry.file_name())
            .filter(|name| name.to_string_lossy().starts_with("event"))
            .map(|name| self.dev.join("input").join(name))
            .collect();
        nodes.sort();
        nodes
    }
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::symlink;

    use super::*;

    fn write(path: &Path, text: &str) {
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, text).unwrap();
    }

    /// Builds a sysfs tree shaped like the kernel's: a CH340 ttyUSB0 (two
    /// levels below its USB device), a CDC ttyACM0 (one level), an unused
    /// ttyS0 and a virtual tty0 without device.
    fn fake_sysfs() -> (tempfile::TempDir, Sysfs) {
        let root = tempfile::tempdir().unwrap();
        let sys = root.path().join("sys");
        let usb1 = sys.join("devices/pci0000:00/usb1/1-2");
        write(&usb1.join("idVendor"), "1a86\n");
        write(&usb1.join("idProduct"), "7523\n");
        write(&usb1.join("product"), "USB Serial\n");
        let usb2 = sys.join("devices/pci0000:00/usb1/1-3");
        write(&usb2.join("idVendor"), "0403\n");
        write(&usb2.join("idProduct"), "6015\n");
        write(&usb2.join("serial"), "DN05XYZ\n");
        let ttyusb = usb1.join("1-2:1.0/ttyUSB0");
        let ttyacm = usb2.join("1-3:1.0");
        let uart = sys.join("devices/platform/serial8250");
        for dir in [&ttyusb, &ttyacm, &uart] {
            std::fs::create_dir_all(dir).unwrap();
        }
        let class = sys.join("class/tty");
        for (name, device) in [("ttyUSB0", Some(&ttyusb)), ("ttyACM0", Some(&ttyacm)), ("ttyS0", Some(&uart)), ("tty0", None)] {
            std::fs::create_dir_all(class.join(name)).unwrap();
            if let Some(device) = device {
                symlink(device, class.join(name).join("device")).unwrap();
            }
        }
        write(&class.join("ttyS0/type"), "0\n");
        let hidraw = sys.join("class/hidraw/hidraw1/device/input");
        std::fs::create_dir_all(hidraw.join("input7/event4")).unwrap();
        std::fs::create_dir_all(hidraw.join("input8/event5")).unwrap();
        std::fs::create_dir_all(hidraw.join("input8/mouse0")).unwrap();
        let fs = Sysfs::at(sys, root.path().join("dev"));
        (root, fs)
    }

    /// USB ttys are listed with their ids; placeholder UARTs and virtual
    /// consoles are not.
    #[test]
    fn lists_usb_serial_ports() {
        let (root, fs) = fake_sysfs();
        let ports = fs.serial_ports();
        let dev = root.path().join("dev");
        assert_eq!(ports.iter().map(|p| p.path.clone()).collect::<Vec<_>>(), [dev.join("ttyACM0"), dev.join("ttyUSB0")]);
        let acm = ports[0].usb.as_ref().unwrap();
        assert_eq!((acm.id.to_string().as_str(), acm.serial.as_deref()), ("0403:6015", Some("DN05XYZ")));
        let ch340 = ports[1].usb.as_ref().unwrap();
        assert_eq!((ch340.id.to_string().as_str(), ch340.product.as_deref()), ("1a86:7523", Some("USB Serial")));
    }

    /// A port is found by VID:PID, by any of several ids, and by serial
    /// number; a wrong serial finds nothing.
    #[test]
    fn finds_ports_by_usb_id() {
        let (root, fs) = fake_sysfs();
        let dev = root.path().join("dev");
        let id = |s: &str| s.parse::<UsbId>().unwrap();
        let m = |ids: &[&str], serial: Option<&str>| UsbMatch { ids: ids.iter().map(|s| id(s)).collect(), serial: serial.map(Into::into) };
        assert_eq!(fs.find_serial(&m(&["1a86:7523"], None)), Some(dev.join("ttyUSB0")));
        assert_eq!(fs.find_serial(&m(&["10c4:ea60", "0403:6015"], None)), Some(dev.join("ttyACM0")));
        assert_eq!(fs.find_serial(&m(&["0403:6015"], Some("DN05XYZ"))), Some(dev.join("ttyACM0")));
        assert_eq!(fs.find_serial(&m(&["0403:6015"], Some("OTHER"))), None);
        assert_eq!(fs.find_serial(&m(&["ffff:0035"], None)), None);
    }

    /// The event nodes under a hidraw device are found; other input nodes
    /// (mouse0) are not grabbed.
    #[test]
    fn event_nodes_of_a_hidraw_device() {
        let (root, fs) = fake_sysfs();
        let input = root.path().join("dev/input");
        assert_eq!(fs.event_nodes_of_hidraw(Path::new("/dev/hidraw1")), [input.join("event4"), input.join("event5")]);
        assert!(fs.event_nodes_of_hidraw(Path::new("/dev/hidraw9")).is_empty());
    }
}
