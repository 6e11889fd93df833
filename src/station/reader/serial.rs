//! Serial reader devices: opening a tty with the profile's line settings
//! and reading it with a timeout, for the reader thread in `worker`.
//!
//! The port is found by path, or by USB VID:PID (and serial number) through
//! [`Sysfs`] on every (re)connect. It is opened exclusively (TIOCEXCL and
//! flock, serialport's default) in raw mode, and its input buffer is cleared
//! after opening: bytes received before the settings applied may be garbled.
//!
//! Unplug, as serialport reports it on Linux: `ppoll` sees POLLHUP and the
//! read fails with `BrokenPipe`, or a vanished ttyACM returns `Ok(0)` (EOF);
//! any error other than a timeout or an interrupt counts as "gone" (EIO,
//! ENXIO, ENODEV), so the thread closes the port and looks for it again.

use std::io::{self, Read};
use std::path::{Path, PathBuf};
use std::time::Duration;

use serialport::{ClearBuffer, DataBits, FlowControl, SerialPort, StopBits, TTYPort};

use super::profile::{Parity, SerialSettings};
use crate::station::config::readers::{Target, UsbMatch};
use super::sysfs::Sysfs;
use super::worker::{Connector, Opened, Port, PortRead, READ_TIMEOUT};
use super::{ReaderConfig, ReaderError};

/// The group that owns serial device nodes on Debian and under our udev rules.
const SERIAL_GROUP: &str = "dialout";

/// Finds and opens a serial reader.
pub(crate) struct SerialConnector {
    target: Target,
    settings: SerialSettings,
    sysfs: Sysfs,
}

impl SerialConnector {
    pub(crate) fn new(config: &ReaderConfig) -> Self {
        SerialConnector { target: config.target.clone(), settings: config.profile.serial, sysfs: Sysfs::system() }
    }

    fn find(&self) -> Result<PathBuf, ReaderError> {
        match &self.target {
            Target::Path(path) if path.exists() => Ok(path.clone()),
            Target::Path(path) => Err(ReaderError::PathNotFound { path: path.clone() }),
            Target::Usb(wanted) => self.find_usb(wanted),
            // Resolved to Usb when the config was built; kept total here.
            Target::ProfileDefault => Err(ReaderError::UsbNotFound { transport: "serial", usb: "(no USB id given)".into() }),
        }
    }

    fn find_usb(&self, wanted: &UsbMatch) -> Result<PathBuf, ReaderError> {
        self.sysfs
            .find_serial(wanted)
            .ok_or_else(|| ReaderError::UsbNotFound { transport: "serial", usb: wanted.to_string() })
    }
}

/// Opens `path` with `settings`; errors say what to do.
pub(crate) fn open(path: &Path, settings: SerialSettings) -> Result<TTYPort, ReaderError> {
    let data_bits = match settings.data_bits {
        5 => DataBits::Five,
        6 => DataBits::Six,
        7 => DataBits::Seven,
        _ => DataBits::Eight,
    };
    let parity = match settings.parity {
        Parity::None => serialport::Parity::None,
        Parity::Even => serialport::Parity::Even,
        Parity::Odd => serialport::Parity::Odd,
    };
    let stop_bits = if settings.stop_bits == 2 { StopBits::Two } else { StopBits::One };
    let port = serialport::new(path.to_string_lossy(), settings.baud)
        .data_bits(data_bits)
        .parity(parity)
        .stop_bits(stop_bits)
        .flow_control(FlowControl::None)
        .timeout(READ_TIMEOUT)
        .open_native()
        .map_err(|error| open_error(path, &error))?;
    if let Err(error) = port.clear(ClearBuffer::Input) {
        tracing::debug!(path = %path.display(), %error, "could not clear the input buffer");
    }
    Ok(port)
}

fn open_error(path: &Path, error: &serialport::Error) -> ReaderError {
    let path = path.to_path_buf();
    match error.kind() {
        serialport::ErrorKind::Io(io::ErrorKind::NotFound) => ReaderError::PathNotFound { path },
        serialport::ErrorKind::Io(io::ErrorKind::PermissionDenied) => {
            ReaderError::PermissionDenied { path, group: SERIAL_GROUP }
        }
        serialport::ErrorKind::NoDevice => ReaderError::Busy { path },
        _ => ReaderError::Open { path, detail: error.description.clone() },
    }
}

impl Connector for SerialConnector {
    type Port = SerialReaderPort;

    fn connect(&mut self) -> Result<Opened<SerialReaderPort>, ReaderError> {
        let path = self.find()?;
        let port = open(&path, self.settings)?;
        let shown = path.canonicalize().unwrap_or(path);
        Ok(Opened { port: SerialReaderPort { port, timeout: READ_TIMEOUT }, path: shown, warnings: Vec::new(), report_id: None })
    }
}

/// An open serial port.
pub(crate) struct SerialReaderPort {
    port: TTYPort,
    timeout: Duration,
}

impl Port for SerialReaderPort {
    fn read(&mut self, buf: &mut [u8], timeout: Duration) -> PortRead {
        if timeout != self.timeout {
            if let Err(error) = self.port.set_timeout(timeout) {
                return PortRead::Gone(format!("cannot set the read timeout: {error}"));
            }
            self.timeout = timeout;
        }
        read_port(&mut self.port, buf)
    }
}

/// One read, classified.
pub(crate) fn read_port(port: &mut impl Read, buf: &mut [u8]) -> PortRead {
    match port.read(buf) {
        Ok(0) => PortRead::Gone("end of file: the device was unplugged".to_owned()),
        Ok(n) => PortRead::Data(n),
        Err(e) if matches!(e.kind(), io::ErrorKind::TimedOut | io::ErrorKind::Interrupted | io::ErrorKind::WouldBlock) => {
            PortRead::Idle
        }
        Err(e) if e.kind() == io::ErrorKind::BrokenPipe => PortRead::Gone("the device hung up (unplugged?)".to_owned()),
        Err(e) => PortRead::Gone(e.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Opening a path that does not exist, or is not a tty, gives errors
    /// that name the path (and, for a missing one, how to find devices).
    #[test]
    fn open_errors_name_the_path() {
        let missing = Path::new("/dev/badgestation-no-such-tty");
        let error = open(missing, SerialSettings::default()).unwrap_err();
        assert_eq!(error, ReaderError::PathNotFound { path: missing.to_path_buf() });
        assert!(error.to_string().contains("badgestation devices"));
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("not-a-tty");
        std::fs::write(&file, b"").unwrap();
        let error = open(&file, SerialSettings::default()).unwrap_err();
        assert!(matches!(&error, ReaderError::Open { path, .. } if path == &file), "{error:?}");
    }

    /// serialport's error kinds map to the fixes: permission → dialout and
    /// udev rules, busy → close the other program.
    #[test]
    fn error_kinds_map_to_fixes() {
        let path = Path::new("/dev/ttyUSB0");
        let denied = serialport::Error::new(serialport::ErrorKind::Io(io::ErrorKind::PermissionDenied), "Permission denied");
        let message = open_error(path, &denied).to_string();
        assert!(message.contains("dialout") && message.contains("scripts/install_udev_rules.sh"), "{message}");
        let busy = serialport::Error::new(serialport::ErrorKind::NoDevice, "Unable to acquire exclusive lock");
        assert_eq!(open_error(path, &busy), ReaderError::Busy { path: path.to_path_buf() });
    }

    /// EOF and hang-ups are unplugs; timeouts and interrupts are idle.
    #[test]
    fn read_results_are_classified() {
        struct Scripted(Vec<io::Result<usize>>);
        impl Read for Scripted {
            fn read(&mut self, _: &mut [u8]) -> io::Result<usize> {
                self.0.remove(0)
            }
        }
        let mut port = Scripted(vec![
            Ok(3),
            Err(io::ErrorKind::TimedOut.into()),
            Err(io::ErrorKind::Interrupted.into()),
            Ok(0),
            Err(io::ErrorKind::BrokenPipe.into()),
            Err(io::Error::other("Input/output error")),
        ]);
        let mut buf = [0u8; 8];
        let results: Vec<String> = (0..6)
            .map(|_| match read_port(&mut port, &mut buf) {
                PortRead::Data(n) => format!("data {n}"),
                PortRead::Idle => "idle".to_owned(),
                PortRead::Gone(reason) => format!("gone: {reason}"),
            })
            .collect();
        assert_eq!(
            results,
            [
                "data 3",
                "idle",
                "idle",
                "gone: end of file: the device was unplugged",
                "gone: the device hung up (unplugged?)",
                "gone: Input/output error"
            ]
        );
    }
}
