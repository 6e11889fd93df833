//! The `READERS` setting: which reader profiles to run on which devices.
//!
//! ```text
//! READERS = entry [, entry]...
//! entry   = [NAME=]PROFILE[:DEVICE][@BAUD]
//! DEVICE  = /path/to/node          a device node or a stable symlink (/dev/serial/by-id/…)
//!         | VID:PID[:SERIAL]       a USB device, found again by id after every replug
//! ```
//!
//! Examples: `rdm6300:/dev/ttyUSB0`, `wedge-hid:ffff:0035`,
//! `gate=rdm6300:1a86:7523@19200`, or just `rdm6300` (the first connected
//! device with one of the profile's USB ids). `NAME` is the reader id stored
//! with each scan; without it the id is the entry as written, minus `@BAUD`.
//! `@BAUD` overrides a serial profile's baud rate.

use std::fmt;
use std::path::PathBuf;
use std::str::FromStr;

/// A USB vendor and product id, written `1a86:7523`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Deserialize)]
#[serde(try_from = "String")]
pub struct UsbId {
    /// Vendor id.
    pub vid: u16,
    /// Product id.
    pub pid: u16,
}

impl fmt::Display for UsbId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:04x}:{:04x}", self.vid, self.pid)
    }
}

impl FromStr for UsbId {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let parse = |part: &str| {
            (part.len() == 4 && part.bytes().all(|b| b.is_ascii_hexdigit()))
                .then(|| u16::from_str_radix(part, 16).ok())
                .flatten()
        };
        match s.split_once(':') {
            Some((vid, pid)) => match (parse(vid), parse(pid)) {
                (Some(vid), Some(pid)) => Ok(UsbId { vid, pid }),
                _ => Err(format!("{s:?} is not a USB id; write VID:PID as two 4-digit hex numbers, e.g. 1a86:7523")),
            },
            None => Err(format!("{s:?} is not a USB id; write VID:PID as two 4-digit hex numbers, e.g. 1a86:7523")),
        }
    }
}

impl TryFrom<String> for UsbId {
    type Error = String;
    fn try_from(s: String) -> Result<Self, Self::Error> {
        s.parse()
    }
}

/// A USB device to look for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UsbMatch {
    /// Any of these ids.
    pub ids: Vec<UsbId>,
    /// Only the device with this serial number, when set.
    pub serial: Option<String>,
}

impl UsbMatch {
    /// Whether a device with `id` and `serial` matches.
    #[must_use]
    pub fn matches(&self, id: UsbId, serial: Option<&str>) -> bool {
        self.ids.contains(&id) && self.serial.as_deref().is_none_or(|wanted| serial == Some(wanted))
    }
}

impl fmt::Display for UsbMatch {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let ids: Vec<String> = self.ids.iter().map(UsbId::to_string).collect();
        f.write_str(&ids.join(" or "))?;
        if let Some(serial) = &self.serial {
            write!(f, " with serial number {serial}")?;
        }
        Ok(())
    }
}

/// Which device a reader uses.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    /// A device node or symlink, opened as given.
    Path(PathBuf),
    /// A USB device, found by id (again after every replug).
    Usb(UsbMatch),
    /// Any device with one of the profile's USB ids.
    ProfileDefault,
}

/// One parsed `READERS` entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReaderSpec {
    /// The reader id: `NAME`, or the entry as written without `@BAUD`.
    pub id: String,
    /// The profile name.
    pub profile: String,
    /// The device.
    pub target: Target,
    /// A baud rate overriding the profile's.
    pub baud: Option<u32>,
}

/// A `READERS` entry that cannot be parsed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "{entry:?}: {problem}; write each entry as PROFILE[:DEVICE][@BAUD], e.g. rdm6300:/dev/ttyUSB0 or wedge-hid:ffff:0035"
)]
pub struct SpecError {
    /// The entry as written.
    pub entry: String,
    /// What is wrong with it.
    pub problem: String,
}

fn valid_name(name: &str) -> bool {
    !name.is_empty() && name.chars().all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c))
}

impl FromStr for ReaderSpec {
    type Err = SpecError;
    fn from_str(entry: &str) -> Result<Self, SpecError> {
        let entry = entry.trim();
        let fail = |problem: String| SpecError { entry: entry.to_owned(), problem };
        let (without_baud, baud) = match entry.rsplit_once('@') {
            Some((rest, baud)) => match baud.parse::<u32>() {
                Ok(baud) if baud > 0 => (rest, Some(baud)),
                _ => return Err(fail(format!("{baud:?} after @ is not a baud rate"))),
            },
            None => (entry, None),
        };
        // A NAME= prefix, when the '=' comes before any ':' (paths may contain '=').
        let (name, body) = match without_baud.split_once('=') {
            Some((name, body)) if !name.contains(':') => (Some(name.trim()), body.trim()),
            _ => (None, without_baud),
        };
        if let Some(name) = name.filter(|n| !valid_name(n)) {
            return Err(fail(format!("reader name {name:?} may only use letters, digits, '-', '_' and '.'")));
        }
        let (profile, device) = match body.split_once(':') {
            Some((profile, device)) => (profile.trim(), Some(device.trim())),
            None => (body.trim(), None),
        };
        if !valid_name(profile) {
            return Err(fail(format!("{profile:?} is not a profile name")));
        }
        let target = match device {
            None => Target::ProfileDefault,
            Some("") => return Err(fail("nothing after ':'".to_owned())),
            Some(path) if path.starts_with('/') => Target::Path(PathBuf::from(path)),
            Some(usb) => {
                let mut parts = usb.splitn(3, ':');
                let id = format!("{}:{}", parts.next().unwrap_or_default(), parts.next().unwrap_or_default());
                let id = id.parse::<UsbId>().map_err(|e| fail(format!("device {e} or an absolute path")))?;
                let serial = parts.next().map(str::to_owned).filter(|s| !s.is_empty());
                Target::Usb(UsbMatch { ids: vec![id], serial })
            }
        };
        Ok(ReaderSpec { id: name.unwrap_or(without_baud).trim().to_owned(), profile: profile.to_owned(), target, baud })
    }
}

/// Parses the whole `READERS` value; each entry separately, so one bad
/// entry does not hide the others. An empty value means no readers.
pub fn parse_readers(text: &str) -> Vec<Result<ReaderSpec, SpecError>> {
    text.split(',').filter(|e| !e.trim().is_empty()).map(str::parse).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn usb(text: &str) -> UsbId {
        text.parse().unwrap()
    }

    /// The documented forms parse into the right profile, device, id and baud.
    #[test]
    fn documented_forms() {
        let specs: Vec<ReaderSpec> = parse_readers(
            " rdm6300:/dev/ttyUSB0, wedge-hid:ffff:0035 ,gate=rdm6300:1a86:7523:A9XK2@19200, rdm6300,\
             id-12la:/dev/serial/by-path/pci-0000:00:14.0-usb-0:2:1.0-port0",
        )
        .into_iter()
        .collect::<Result<_, _>>()
        .unwrap();
        assert_eq!(specs.len(), 5);
        assert_eq!(
            specs[0],
            ReaderSpec {
                id: "rdm6300:/dev/ttyUSB0".into(),
                profile: "rdm6300".into(),
                target: Target::Path("/dev/ttyUSB0".into()),
                baud: None
            }
        );
        assert_eq!(specs[1].target, Target::Usb(UsbMatch { ids: vec![usb("ffff:0035")], serial: None }));
        assert_eq!(specs[1].id, "wedge-hid:ffff:0035");
        assert_eq!(specs[2].id, "gate");
        assert_eq!(specs[2].baud, Some(19200));
        assert_eq!(specs[2].target, Target::Usb(UsbMatch { ids: vec![usb("1a86:7523")], serial: Some("A9XK2".into()) }));
        assert_eq!(specs[3].target, Target::ProfileDefault);
        assert_eq!(specs[4].target, Target::Path("/dev/serial/by-path/pci-0000:00:14.0-usb-0:2:1.0-port0".into()));
    }

    /// Each kind of mistake is refused with a message that names the entry
    /// and shows the syntax; good entries next to it still parse.
    #[test]
    fn mistakes_are_named() {
        let results = parse_readers("rdm6300:/dev/ttyUSB0@fast, rdm6300:, :/dev/x, rdm6300:1a86-7523, bad name=rdm6300, ok");
        let errors: Vec<String> = results.iter().filter_map(|r| r.as_ref().err()).map(ToString::to_string).collect();
        assert_eq!(errors.len(), 5, "{errors:#?}");
        assert!(errors[0].starts_with("\"rdm6300:/dev/ttyUSB0@fast\": \"fast\" after @ is not a baud rate"));
        assert!(errors[1].contains("nothing after ':'"));
        assert!(errors[2].contains("is not a profile name"));
        assert!(errors[3].contains("VID:PID"));
        assert!(errors[4].contains("reader name"));
        assert!(errors.iter().all(|e| e.contains("PROFILE[:DEVICE][@BAUD]")));
        assert_eq!(results.last().unwrap().as_ref().unwrap().profile, "ok");
        assert!(parse_readers("  ").is_empty());
    }

    /// USB ids print as lowercase hex and match serial numbers only when one
    /// is asked for.
    #[test]
    fn usb_matching() {
        let id = usb("FFFF:0035");
        assert_eq!(id.to_string(), "ffff:0035");
        let any = UsbMatch { ids: vec![id], serial: None };
        assert!(any.matches(id, None) && any.matches(id, Some("X")));
        assert!(!any.matches(usb("ffff:0036"), None));
        let one = UsbMatch { ids: vec![id], serial: Some("X".into()) };
        assert!(one.matches(id, Some("X")) && !one.matches(id, Some("Y")) && !one.matches(id, None));
        assert!("ffff:35".parse::<UsbId>().is_err());
    }
}
