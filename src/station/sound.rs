//! Short sounds for the outcome of a scan: welcome, duplicate, refused.
//!
//! The window (and `run --headless`) calls [`Sounds::play`] when the
//! recorder's event arrives, i.e. after the commit, never before: a sound,
//! like the green screen, means "stored".
//!
//! **No audio library is linked**, so building needs nothing beyond rustup
//! (no `libasound2-dev`). The sounds are WAV files bundled in
//! `assets/sounds/` (synthesised by [`synthesise`], licence in
//! `assets/sounds/LICENSE.txt`; a test keeps the files equal to the
//! generator); at start they are written, at the configured volume, to a
//! temporary directory and played by the first player found on `PATH`:
//! `pw-play` (PipeWire), `paplay` (PulseAudio), `aplay` (ALSA).
//!
//! Playing runs on its own named thread with a small bounded queue; a full
//! queue drops the sound, so a burst of scans never waits for audio. Where
//! there is no player, or the player cannot open an audio device (a kiosk
//! without speakers, a server), the station stays silent and says so once
//! in the log; nothing else changes.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};

use crossbeam_channel::{Sender, TrySendError};

use crate::model::ScanEvent;

/// Sample rate of the bundled sounds.
pub const SAMPLE_RATE: u32 = 22_050;

/// Players tried in order, each with the arguments before the file.
pub const PLAYERS: &[(&str, &[&str])] = &[("pw-play", &[]), ("paplay", &[]), ("aplay", &["-q"])];

/// Which sound.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Cue {
    /// A scan was stored (rising two-tone).
    Welcome,
    /// A duplicate within the window, stored (`warn`): two equal beeps.
    Duplicate,
    /// Not stored: refused duplicate, bad read, NOT SAVED (falling, low).
    Refused,
}

impl Cue {
    /// Every cue.
    pub const ALL: [Cue; 3] = [Cue::Welcome, Cue::Duplicate, Cue::Refused];

    /// The bundled file's name.
    #[must_use]
    pub fn file_name(self) -> &'static str {
        match self {
            Cue::Welcome => "welcome.wav",
            Cue::Duplicate => "duplicate.wav",
            Cue::Refused => "refused.wav",
        }
    }

    /// The bundled WAV.
    #[must_use]
    pub fn bundled(self) -> &'static [u8] {
        match self {
            Cue::Welcome => include_bytes!("../../assets/sounds/welcome.wav"),
            Cue::Duplicate => include_bytes!("../../assets/sounds/duplicate.wav"),
            Cue::Refused => include_bytes!("../../assets/sounds/refused.wav"),
        }
    }

    /// The cue for a recorder event (`None` for counter updates). Called
    /// with the event the recorder sends after its commit.
    #[must_use]
    pub fn for_event(event: &ScanEvent) -> Option<Cue> {
        match event {
            ScanEvent::Recorded { .. } => Some(Cue::Welcome),
            ScanEvent::DuplicateWarned { .. } => Some(Cue::Duplicate),
            ScanEvent::Blocked { .. } | ScanEvent::Rejected { .. } | ScanEvent::StoreFailed { .. } => Some(Cue::Refused),
            ScanEvent::CountersChanged(_) => None,
        }
    }

    /// The tones: (frequency Hz at start, at end, milliseconds); 0 Hz is silence.
    fn tones(self) -> &'static [(f32, f32, u32)] {
        match self {
            Cue::Welcome => &[(880.0, 880.0, 90), (0.0, 0.0, 20), (1320.0, 1320.0, 140)],
            Cue::Duplicate => &[(660.0, 660.0, 110), (0.0, 0.0, 70), (660.0, 660.0, 110)],
            Cue::Refused => &[(392.0, 330.0, 180), (0.0, 0.0, 30), (262.0, 196.0, 260)],
        }
    }
}

/// Synthesises a cue as a 16-bit mono WAV at full volume: sine tones
/// (with a third harmonic for presence on small speakers), 6 ms fades so
/// nothing clicks. This is how the files in `assets/sounds/` were made.
#[must_use]
pub fn synthesise(cue: Cue) -> Vec<u8> {
    let mut samples: Vec<i16> = Vec::new();
    for &(from, to, millis) in cue.tones() {
        let count = (SAMPLE_RATE * millis / 1000) as usize;
        let fade = (SAMPLE_RATE * 6 / 1000) as usize;
        let mut phase = 0.0f64;
        for i in 0..count {
            let t = i as f64 / count as f64;
            let freq = f64::from(from) + (f64::from(to) - f64::from(from)) * t;
            phase += std::f64::consts::TAU * freq / f64::from(SAMPLE_RATE);
            let envelope = (i.min(count - 1 - i) as f64 / fade as f64).min(1.0);
            let value = if freq == 0.0 { 0.0 } else { 0.8 * phase.sin() + 0.2 * (3.0 * phase).sin() };
            samples.push((value * envelope * 0.7 * f64::from(i16::MAX)).round() as i16);
        }
    }
    wav(&samples)
}

fn wav(samples: &[i16]) -> Vec<u8> {
    let data_len = (samples.len() * 2) as u32;
    let mut out = Vec::with_capacity(44 + data_len as usize);
    out.extend_from_slice(b"RIFF");
    out.extend_from_slice(&(36 + data_len).to_le_bytes());
    out.extend_from_slice(b"WAVEfmt ");
    out.extend_from_slice(&16u32.to_le_bytes());
    out.extend_from_slice(&1u16.to_le_bytes()); // PCM
    out.extend_from_slice(&1u16.to_le_bytes()); // mono
    out.extend_from_slice(&SAMPLE_RATE.to_le_bytes());
    out.extend_from_slice(&(SAMPLE_RATE * 2).to_le_bytes());
    out.extend_from_slice(&2u16.to_le_bytes());
    out.extend_from_slice(&16u16.to_le_bytes());
    out.extend_from_slice(b"data");
    out.extend_from_slice(&data_len.to_le_bytes());
    for s in samples {
        out.extend_from_slice(&s.to_le_bytes());
    }
    out
}

/// A bundled WAV at `volume` (0.0–1.0): the samples scaled.
#[must_use]
pub fn at_volume(wav_bytes: &[u8], volume: f32) -> Vec<u8> {
    let volume = f64::from(volume.clamp(0.0, 1.0));
    let mut out = wav_bytes.to_vec();
    for chunk in out[44.min(wav_bytes.len())..].chunks_exact_mut(2) {
        let sample = f64::from(i16::from_le_bytes([chunk[0], chunk[1]])) * volume;
        chunk.copy_from_slice(&(sample.round() as i16).to_le_bytes());
    }
    out
}

/// Whether sounds can be heard, as the admin panel shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SoundState {
    /// A player was found; sounds play (unless turned off).
    Ready {
        /// The player's name.
        player: String,
    },
    /// Silent, and why (no player, no audio device, files not writable).
    Silent(String),
}

struct Shared {
    state: SoundState,
    dir: PathBuf,
}

impl Drop for Shared {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// The sound player; see the module docs. Cheap to clone.
#[derive(Clone)]
pub struct Sounds {
    queue: Option<Sender<Cue>>,
    shared: Arc<Mutex<Shared>>,
    enabled: Arc<std::sync::atomic::AtomicBool>,
}

impl Sounds {
    /// Finds a player on `PATH` and starts the sound thread; `enabled`
    /// and `volume` are `VOICE_ENABLED` and `VOICE_VOLUME`.
    #[must_use]
    pub fn start(enabled: bool, volume: f32) -> Sounds {
        Sounds::start_with(enabled, volume, &std::env::var_os("PATH").unwrap_or_default(), Vec::new())
    }

    /// [`Sounds::start`] with an explicit search path and extra environment
    /// for the player (tests).
    #[must_use]
    pub fn start_with(enabled: bool, volume: f32, path: &std::ffi::OsStr, env: Vec<(String, String)>) -> Sounds {
        // One directory per instance, removed when the last clone goes.
        static INSTANCE: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
        let instance = INSTANCE.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let dir = std::env::temp_dir().join(format!("badgestation-sounds-{}-{instance}", std::process::id()));
        let player = PLAYERS.iter().find_map(|(name, args)| {
            std::env::split_paths(path).map(|d| d.join(name)).find(|p| p.is_file()).map(|p| (p, *args))
        });
        let state = match (&player, write_files(&dir, volume)) {
            (None, _) => SoundState::Silent("no sound player found (pw-play, paplay or aplay); sounds are off".into()),
            (Some(_), Err(error)) => SoundState::Silent(format!("cannot write the sound files to {}: {error}; sounds are off", dir.display())),
            (Some((path, _)), Ok(())) => SoundState::Ready { player: path.display().to_string() },
        };
        if let SoundState::Silent(why) = &state {
            tracing::info!("{why}");
        }
        let shared = Arc::new(Mutex::new(Shared { state, dir }));
        let enabled = Arc::new(std::sync::atomic::AtomicBool::new(enabled));
        let queue = player.and_then(|(program, args)| {
            // Small on purpose: a burst of scans drops sounds, never waits.
            let (tx, rx) = crossbeam_channel::bounded::<Cue>(2);
            let shared = shared.clone();
            let spawned = std::thread::Builder::new().name("sound".into()).spawn(move || {
                for cue in rx {
                    let file = match shared.lock() {
                        Ok(s) if matches!(s.state, SoundState::Ready { .. }) => s.dir.join(cue.file_name()),
                        _ => continue,
                    };
                    let result = Command::new(&program)
                        .args(args)
                        .arg(&file)
                        .envs(env.iter().map(|(k, v)| (k, v)))
                        .stdin(Stdio::null())
                        .stdout(Stdio::null())
                        .stderr(Stdio::piped())
                        .output();
                    let failure = match result {
                        Ok(output) if output.status.success() => None,
                        Ok(output) => {
                            let stderr = String::from_utf8_lossy(&output.stderr);
                            Some(stderr.lines().rev().find(|l| !l.trim().is_empty()).unwrap_or("no message").trim().to_owned())
                        }
                        Err(error) => Some(error.to_string()),
                    };
                    if let Some(why) = failure {
                        let why = format!(
                            "no audio device ({} said: {why}); sounds are off until the station restarts",
                            program.display()
                        );
                        tracing::info!("{why}");
                        if let Ok(mut s) = shared.lock() {
                            s.state = SoundState::Silent(why);
                        }
                    }
                }
            });
            spawned.ok().map(|_| tx)
        });
        Sounds { queue, shared, enabled }
    }

    /// Plays `cue` if sounds are on and can be heard; never waits.
    pub fn play(&self, cue: Cue) {
        if !self.enabled() {
            return;
        }
        if let Some(queue) = &self.queue {
            match queue.try_send(cue) {
                Ok(()) | Err(TrySendError::Full(_)) => {}
                Err(TrySendError::Disconnected(_)) => tracing::debug!("sound thread gone"),
            }
        }
    }

    /// Whether sounds are on (`VOICE_ENABLED`, or the admin panel).
    #[must_use]
    pub fn enabled(&self) -> bool {
        self.enabled.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// Turns sounds on or off until the station restarts.
    pub fn set_enabled(&self, on: bool) {
        self.enabled.store(on, std::sync::atomic::Ordering::Relaxed);
    }

    /// Sets the volume (0.0–1.0) until the station restarts.
    pub fn set_volume(&self, volume: f32) {
        if let Ok(shared) = self.shared.lock()
            && let Err(error) = write_files(&shared.dir, volume)
        {
            tracing::warn!("cannot change the sound volume: {error}");
        }
    }

    /// Whether sounds can be heard, and if not, why.
    #[must_use]
    pub fn state(&self) -> SoundState {
        self.shared.lock().map_or_else(|_| SoundState::Silent("sound thread failed".into()), |s| s.state.clone())
    }
}

fn write_files(dir: &Path, volume: f32) -> std::io::Result<()> {
    std::fs::create_dir_all(dir)?;
    for cue in Cue::ALL {
        let tmp = dir.join(format!("{}.tmp", cue.file_name()));
        std::fs::write(&tmp, at_volume(cue.bundled(), volume))?;
        std::fs::rename(&tmp, dir.join(cue.file_name()))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The bundled files are exactly what the generator makes, so they can
    /// be regenerated and reviewed (`cargo test --lib station::sound --
    /// --ignored regenerate` rewrites them).
    #[test]
    fn bundled_sounds_match_the_generator() {
        for cue in Cue::ALL {
            assert!(cue.bundled() == synthesise(cue).as_slice(), "{} differs; regenerate it", cue.file_name());
        }
    }

    /// Rewrites assets/sounds/*.wav from the generator.
    #[test]
    #[ignore = "writes the bundled assets"]
    fn regenerate() {
        for cue in Cue::ALL {
            std::fs::write(Path::new(env!("CARGO_MANIFEST_DIR")).join("assets/sounds").join(cue.file_name()), synthesise(cue)).unwrap();
        }
    }

    /// The three cues differ, are short, and the volume scales samples.
    #[test]
    fn cues_are_distinct_short_and_scaled() {
        let sounds: Vec<Vec<u8>> = Cue::ALL.iter().map(|c| synthesise(*c)).collect();
        assert!(sounds[0] != sounds[1] && sounds[1] != sounds[2] && sounds[0] != sounds[2]);
        for s in &sounds {
            let millis = (s.len() - 44) as u32 / 2 * 1000 / SAMPLE_RATE;
            assert!((200..=600).contains(&millis), "{millis} ms");
        }
        let half = at_volume(&sounds[0], 0.5);
        let peak = |w: &[u8]| w[44..].chunks_exact(2).map(|c| i16::from_le_bytes([c[0], c[1]]).unsigned_abs()).max().unwrap();
        assert_eq!(peak(&half), (f64::from(peak(&sounds[0])) * 0.5).round() as u16);
        assert!(at_volume(&sounds[0], 0.0)[44..].iter().all(|&b| b == 0));
    }
}
