//! Reader profiles: what a reader family speaks, as data.
//!
//! One TOML file per reader family or model in `hardware/readers/`, built
//! into the binary with `include_str!`; the file name (without `.toml`) is
//! the profile name used in `READERS`. Users add or override profiles with
//! their own files in `DATA_DIR/readers/*.toml` (a user file wins over a
//! built-in of the same name). A profile gives the transport, the USB ids
//! to look for, the serial settings, the decoder and its options, the
//! debounce time and, for HID readers, whether to grab the keyboard node.
//! `hardware/readers/README.md` documents every key.

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use super::em4100::Em4100Output;
use super::line::{Charset, TextRules};
use crate::station::config::readers::UsbId;
use super::wiegand::{WiegandFormat, WiegandOutput};

/// The built-in profiles: (name, TOML text).
pub const BUILTIN: &[(&str, &str)] = &[
    ("rdm6300", include_str!("../../../hardware/readers/rdm6300.toml")),
    ("rdm6300-hex", include_str!("../../../hardware/readers/rdm6300-hex.toml")),
    ("id-12la", include_str!("../../../hardware/readers/id-12la.toml")),
    ("serial-line", include_str!("../../../hardware/readers/serial-line.toml")),
    ("wiegand26-serial", include_str!("../../../hardware/readers/wiegand26-serial.toml")),
    ("magstripe-serial", include_str!("../../../hardware/readers/magstripe-serial.toml")),
    ("barcode-serial", include_str!("../../../hardware/readers/barcode-serial.toml")),
    ("wedge-hid", include_str!("../../../hardware/readers/wedge-hid.toml")),
    ("pcprox-hid", include_str!("../../../hardware/readers/pcprox-hid.toml")),
    ("omnikey-5427ck-hid", include_str!("../../../hardware/readers/omnikey-5427ck-hid.toml")),
    ("magtek-hid", include_str!("../../../hardware/readers/magtek-hid.toml")),
];

/// How the reader is attached.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Transport {
    /// A serial port (`/dev/ttyUSB*`, `/dev/ttyACM*`, a UART).
    Serial,
    /// A USB HID keyboard read through hidraw.
    Hid,
}

impl Transport {
    /// How a person would say it.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Transport::Serial => "serial",
            Transport::Hid => "HID",
        }
    }
}

/// Serial parity.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Parity {
    /// No parity bit.
    #[default]
    None,
    /// Even parity.
    Even,
    /// Odd parity.
    Odd,
}

/// Serial line settings.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SerialSettings {
    /// Bits per second.
    pub baud: u32,
    /// 5–8.
    pub data_bits: u8,
    /// Parity.
    pub parity: Parity,
    /// 1 or 2.
    pub stop_bits: u8,
}

impl Default for SerialSettings {
    fn default() -> Self {
        SerialSettings { baud: 9600, data_bits: 8, parity: Parity::None, stop_bits: 1 }
    }
}

impl SerialSettings {
    /// `9600 8N1`.
    #[must_use]
    pub fn describe(&self) -> String {
        let parity = match self.parity {
            Parity::None => 'N',
            Parity::Even => 'E',
            Parity::Odd => 'O',
        };
        format!("{} {}{}{}", self.baud, self.data_bits, parity, self.stop_bits)
    }
}

/// HID settings.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct HidSettings {
    /// Hold an exclusive grab (EVIOCGRAB) on the reader's keyboard input
    /// node(s) so card numbers do not also type into other windows.
    pub grab: bool,
    /// The keyboard report's id on composite devices; unset means "read it
    /// from the report descriptor".
    pub report_id: Option<u8>,
}

impl Default for HidSettings {
    fn default() -> Self {
        HidSettings { grab: true, report_id: None }
    }
}

fn default_min_len() -> usize {
    TextRules::default().min_len
}

fn default_max_len() -> usize {
    TextRules::default().max_len
}

fn default_track() -> u8 {
    2
}

fn default_em4100_output() -> Em4100Output {
    Em4100Output::Decimal
}

/// How frames become badge text.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Deserialize)]
#[serde(tag = "kind", rename_all = "kebab-case", deny_unknown_fields)]
pub enum DecoderConfig {
    /// EM4100 frames (RDM6300, ID-12LA/ID-20LA). Serial only.
    Em4100 {
        /// Decimal (default) or hex.
        #[serde(default = "default_em4100_output")]
        output: Em4100Output,
    },
    /// Plain text, one read per line (serial) or per Enter (HID).
    Text {
        /// Allowed characters.
        #[serde(default)]
        charset: Charset,
        /// Fewest characters.
        #[serde(default = "default_min_len")]
        min_len: usize,
        /// Most characters.
        #[serde(default = "default_max_len")]
        max_len: usize,
    },
    /// Wiegand frames printed by a converter, as binary digits or hex.
    Wiegand {
        /// The card format.
        format: WiegandFormat,
        /// What to record.
        #[serde(default)]
        output: WiegandOutput,
    },
    /// Magnetic stripe tracks; the card number is recorded.
    Magstripe {
        /// The track to prefer (the other is used when it is missing).
        #[serde(default = "default_track")]
        track: u8,
    },
    /// Barcode/QR data with any AIM symbology prefix removed.
    Barcode {
        /// Fewest characters after the prefix.
        #[serde(default = "default_min_len")]
        min_len: usize,
        /// Most characters after the prefix.
        #[serde(default = "default_max_len")]
        max_len: usize,
    },
}

impl DecoderConfig {
    /// `em4100 frames (decimal)`, `text lines`, …
    #[must_use]
    pub fn describe(&self) -> String {
        match self {
            DecoderConfig::Em4100 { .. } => "EM4100 frames (STX, 10 hex, checksum, ETX)".to_owned(),
            DecoderConfig::Text { charset, min_len, max_len } => {
                format!("text reads of {min_len}–{max_len} characters ({})", charset.as_str())
            }
            DecoderConfig::Wiegand { format, .. } => format!("Wiegand {format} frames"),
            DecoderConfig::Magstripe { .. } => "magnetic stripe tracks".to_owned(),
            DecoderConfig::Barcode { .. } => "barcode data".to_owned(),
        }
    }

    /// The text rules for the decoders that have them.
    #[must_use]
    pub fn text_rules(&self) -> TextRules {
        match *self {
            DecoderConfig::Text { charset, min_len, max_len } => TextRules { charset, min_len, max_len },
            DecoderConfig::Barcode { min_len, max_len } => TextRules { charset: Charset::Any, min_len, max_len },
            _ => TextRules::default(),
        }
    }
}

/// A reader profile; see the module docs and `hardware/readers/README.md`.
#[derive(Debug, Clone, PartialEq, Eq, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Profile {
    /// What reader this is, for people.
    pub description: String,
    /// Serial or HID.
    pub transport: Transport,
    /// USB ids to look for when `READERS` names no device, and to suggest
    /// this profile in `badgestation devices`.
    #[serde(default)]
    pub usb: Vec<UsbId>,
    /// A card held on the reader counts once until it has been absent this
    /// long.
    #[serde(default = "Profile::default_debounce_millis")]
    pub debounce_millis: u64,
    /// Text decoders end a read after this long without input (0: only a
    /// terminator ends it).
    #[serde(default = "Profile::default_idle_flush_millis")]
    pub idle_flush_millis: u64,
    /// Serial settings (serial transport).
    #[serde(default)]
    pub serial: SerialSettings,
    /// HID settings (HID transport).
    #[serde(default)]
    pub hid: HidSettings,
    /// How frames become badge text.
    pub decoder: DecoderConfig,
}

impl Profile {
    fn default_debounce_millis() -> u64 {
        500
    }
    fn default_idle_flush_millis() -> u64 {
        200
    }

    /// The debounce time.
    #[must_use]
    pub fn debounce(&self) -> Duration {
        Duration::from_millis(self.debounce_millis)
    }

    /// The idle flush time, if any.
    #[must_use]
    pub fn idle_flush(&self) -> Option<Duration> {
        (self.idle_flush_millis > 0).then(|| Duration::from_millis(self.idle_flush_millis))
    }

    /// Parses and checks a profile.
    pub fn from_toml(text: &str) -> Result<Profile, String> {
        let profile: Profile = toml::from_str(text).map_err(|e| e.to_string().trim().to_owned())?;
        profile.validate()?;
        Ok(profile)
    }

    /// Checks what the types cannot.
    fn validate(&self) -> Result<(), String> {
        if self.transport == Transport::Hid && matches!(self.decoder, DecoderConfig::Em4100 { .. }) {
            return Err("the em4100 decoder reads serial frames; a HID reader types text (use kind = \"text\")".into());
        }
        if let DecoderConfig::Magstripe { track } = self.decoder
            && !(1..=2).contains(&track)
        {
            return Err(format!("decoder.track = {track}: use 1 or 2"));
        }
        let rules = self.decoder.text_rules();
        if rules.min_len == 0 || rules.min_len > rules.max_len {
            return Err(format!("decoder min_len {} / max_len {} must satisfy 1 ≤ min_len ≤ max_len", rules.min_len, rules.max_len));
        }
        let serial = &self.serial;
        if serial.baud == 0 || !(5..=8).contains(&serial.data_bits) || !(1..=2).contains(&serial.stop_bits) {
            return Err(format!("serial settings {} are not valid: baud > 0, data_bits 5–8, stop_bits 1 or 2", serial.describe()));
        }
        Ok(())
    }
}

/// Where a profile came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ProfileOrigin {
    /// Built into the binary (`hardware/readers/`).
    BuiltIn,
    /// A user file.
    File(PathBuf),
}

impl fmt::Display for ProfileOrigin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ProfileOrigin::BuiltIn => f.write_str("built in"),
            ProfileOrigin::File(path) => write!(f, "{}", path.display()),
        }
    }
}

/// A profile with its name and origin.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NamedProfile {
    /// The name used in `READERS`.
    pub name: String,
    /// Where it came from.
    pub origin: ProfileOrigin,
    /// The profile.
    pub profile: Profile,
}

/// A user profile file that could not be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("reader profile {path} is not used: {problem}; fix the file or remove it")]
pub struct ProfileFileError {
    /// The file.
    pub path: PathBuf,
    /// What is wrong.
    pub problem: String,
}

/// All known profiles by name.
#[derive(Debug, Clone, Default)]
pub struct ProfileSet {
    profiles: BTreeMap<String, NamedProfile>,
}

impl ProfileSet {
    /// The built-in profiles. (Each is parsed by a unit test, so none is
    /// skipped in practice; a broken one would be logged, not panic.)
    #[must_use]
    pub fn builtin() -> ProfileSet {
        let mut set = ProfileSet::default();
        for (name, text) in BUILTIN {
            match Profile::from_toml(text) {
                Ok(profile) => set.insert(name, ProfileOrigin::BuiltIn, profile),
                Err(problem) => tracing::error!(profile = name, %problem, "built-in reader profile is broken"),
            }
        }
        set
    }

    /// The built-in profiles plus the user's `DATA_DIR/readers/*.toml`
    /// (user files win), and what was wrong with any user file.
    #[must_use]
    pub fn load(data_dir: &Path) -> (ProfileSet, Vec<ProfileFileError>) {
        let mut set = ProfileSet::builtin();
        let mut problems = Vec::new();
        let dir = data_dir.join("readers");
        let Ok(entries) = std::fs::read_dir(&dir) else {
            return (set, problems);
        };
        let mut paths: Vec<PathBuf> =
            entries.filter_map(Result::ok).map(|e| e.path()).filter(|p| p.extension().is_some_and(|e| e == "toml")).collect();
        paths.sort();
        for path in paths {
            let Some(name) = path.file_stem().and_then(|s| s.to_str()).map(str::to_owned) else {
                continue;
            };
            let result = std::fs::read_to_string(&path).map_err(|e| e.to_string()).and_then(|text| Profile::from_toml(&text));
            match result {
                Ok(profile) => set.insert(&name, ProfileOrigin::File(path), profile),
                Err(problem) => problems.push(ProfileFileError { path, problem }),
            }
        }
        (set, problems)
    }

    fn insert(&mut self, name: &str, origin: ProfileOrigin, profile: Profile) {
        self.profiles.insert(name.to_owned(), NamedProfile { name: name.to_owned(), origin, profile });
    }

    /// A profile by name.
    #[must_use]
    pub fn get(&self, name: &str) -> Option<&NamedProfile> {
        self.profiles.get(name)
    }

    /// Every profile, by name.
    pub fn iter(&self) -> impl Iterator<Item = &NamedProfile> {
        self.profiles.values()
    }

    /// The names, comma-separated, for messages.
    #[must_use]
    pub fn names(&self) -> String {
        self.profiles.keys().map(String::as_str).collect::<Vec<_>>().join(", ")
    }

    /// The profiles of `transport` that list `id`.
    pub fn matching(&self, transport: Transport, id: UsbId) -> impl Iterator<Item = &NamedProfile> {
        self.iter().filter(move |p| p.profile.transport == transport && p.profile.usb.contains(&id))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every built-in profile parses and validates, and every file in
    /// hardware/readers/ is built in (none forgotten in BUILTIN).
    #[test]
    fn builtin_profiles_parse_and_are_complete() {
        for (name, text) in BUILTIN {
            Profile::from_toml(text).unwrap_or_else(|e| panic!("{name}: {e}"));
        }
        assert_eq!(ProfileSet::builtin().iter().count(), BUILTIN.len());
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("hardware/readers");
        let mut files: Vec<String> = std::fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().path())
            .filter(|p| p.extension().is_some_and(|e| e == "toml"))
            .map(|p| p.file_stem().unwrap().to_string_lossy().into_owned())
            .collect();
        files.sort();
        let mut built: Vec<&str> = BUILTIN.iter().map(|(n, _)| *n).collect();
        built.sort_unstable();
        assert_eq!(files, built);
    }

    /// Every USB id of a built-in profile has a rule in
    /// hardware/udev/99-badgestation.rules (tty rule for serial profiles,
    /// hidraw and input rules for HID ones), so installing the rules gives
    /// access to every reader we know.
    #[test]
    fn udev_rules_cover_every_profile() {
        let rules = include_str!("../../../hardware/udev/99-badgestation.rules");
        for named in ProfileSet::builtin().iter() {
            for id in &named.profile.usb {
                let ids = format!("ATTRS{{idVendor}}==\"{:04x}\", ATTRS{{idProduct}}==\"{:04x}\"", id.vid, id.pid);
                let subsystems: &[&str] = match named.profile.transport {
                    Transport::Serial => &["SUBSYSTEM==\"tty\""],
                    Transport::Hid => &["KERNEL==\"hidraw*\"", "SUBSYSTEM==\"input\""],
                };
                for subsystem in subsystems {
                    assert!(
                        rules.lines().any(|l| l.starts_with(subsystem) && l.contains(&ids)),
                        "{}: no {subsystem} rule for {id}",
                        named.name
                    );
                }
            }
        }
    }

    /// Unknown keys (typos) and impossible combinations are refused with a
    /// message naming the problem.
    #[test]
    fn bad_profiles_are_refused() {
        let typo = "description = \"x\"\ntransport = \"serial\"\ndebounce_milis = 5\n[decoder]\nkind = \"text\"\n";
        assert!(Profile::from_toml(typo).unwrap_err().contains("debounce_milis"));
        let typo_in_decoder = "description = \"x\"\ntransport = \"serial\"\n[decoder]\nkind = \"em4100\"\nouptut = \"hex\"\n";
        assert!(Profile::from_toml(typo_in_decoder).unwrap_err().contains("ouptut"));
        let hid_em = "description = \"x\"\ntransport = \"hid\"\n[decoder]\nkind = \"em4100\"\n";
        assert!(Profile::from_toml(hid_em).unwrap_err().contains("em4100 decoder reads serial frames"));
        let bad_usb = "description = \"x\"\ntransport = \"hid\"\nusb = [\"ffff-0035\"]\n[decoder]\nkind = \"text\"\n";
        assert!(Profile::from_toml(bad_usb).unwrap_err().contains("VID:PID"));
        let lens = "description = \"x\"\ntransport = \"serial\"\n[decoder]\nkind = \"text\"\nmin_len = 9\nmax_len = 4\n";
        assert!(Profile::from_toml(lens).unwrap_err().contains("min_len"));
    }

    /// A user file overrides the built-in profile of the same name, adds new
    /// ones, and a broken file is reported (by path) without hiding the rest.
    #[test]
    fn user_profiles() {
        let dir = tempfile::tempdir().unwrap();
        let readers = dir.path().join("readers");
        std::fs::create_dir(&readers).unwrap();
        let fast = BUILTIN[0].1.replace("baud = 9600", "baud = 19200");
        assert_ne!(fast, BUILTIN[0].1, "the rdm6300 profile sets baud = 9600");
        std::fs::write(readers.join("rdm6300.toml"), fast).unwrap();
        std::fs::write(readers.join("gate-7.toml"), "description = \"x\"\ntransport = \"serial\"\n[decoder]\nkind = \"text\"\n").unwrap();
        std::fs::write(readers.join("broken.toml"), "transport = \"carrier-pigeon\"").unwrap();
        std::fs::write(readers.join("notes.txt"), "not a profile").unwrap();
        let (set, problems) = ProfileSet::load(dir.path());
        assert_eq!(set.get("rdm6300").unwrap().profile.serial.baud, 19200);
        assert!(matches!(set.get("rdm6300").unwrap().origin, ProfileOrigin::File(_)));
        assert!(set.get("gate-7").is_some());
        assert!(set.get("broken").is_none());
        assert_eq!(problems.len(), 1);
        assert!(problems[0].to_string().contains("broken.toml"), "{}", problems[0]);
        assert_eq!(set.get("wedge-hid").unwrap().origin, ProfileOrigin::BuiltIn);
    }
}
