//! Debounce for readers that re-send while a card stays on the antenna.
//!
//! An RDM6300 repeats its frame every ~100–200 ms while a tag is in the
//! field; some wedge readers repeat every 0.5–1 s while a card is held. A
//! card counts once per presentation: the first sighting passes, repeats
//! are suppressed while the same id keeps being seen, and it passes again
//! only after it has been absent for the profile's debounce time (measured
//! from its *last* sighting, so a card held for a minute is still one read).
//!
//! One antenna holds one card, so only the last id is remembered: a
//! different card always passes. This is not the station's duplicate rule
//! (`DUPLICATE_BADGE_*`, applied by the recorder over minutes); it only
//! undoes the reader's own repetition.

use std::time::Duration;

/// Remembers the last id and when it was last seen.
#[derive(Debug, Clone)]
pub struct Debouncer {
    window: Duration,
    last: Option<(String, Duration)>,
}

impl Debouncer {
    /// A debouncer with the given absence time; zero lets everything through.
    #[must_use]
    pub fn new(window: Duration) -> Self {
        Debouncer { window, last: None }
    }

    /// Whether a read of `id` at `now` is a new presentation. Every call,
    /// passed or not, counts as a sighting.
    pub fn accept(&mut self, id: &str, now: Duration) -> bool {
        let repeat = self
            .last
            .as_ref()
            .is_some_and(|(last, seen)| last == id && now.saturating_sub(*seen) < self.window);
        match &mut self.last {
            Some((last, seen)) if last == id => *seen = now,
            _ => self.last = Some((id.to_owned(), now)),
        }
        !repeat
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(millis: u64) -> Duration {
        Duration::from_millis(millis)
    }

    /// An RDM6300 re-sending every 150 ms for two seconds counts once; after
    /// 500 ms of absence the card counts again.
    #[test]
    fn held_card_counts_once_until_absent() {
        let mut d = Debouncer::new(ms(500));
        let passed: Vec<u64> = (0..14).map(|i| i * 150).filter(|&t| d.accept("0004372425", ms(t))).collect();
        assert_eq!(passed, [0], "a card held for 2 s is one read");
        assert!(!d.accept("0004372425", ms(1950 + 499)), "499 ms after the last sighting it is still present");
        assert!(d.accept("0004372425", ms(2449 + 500)), "500 ms of absence makes it a new presentation");
    }

    /// A different card passes at once, and switching back passes too: the
    /// first card was off the antenna meanwhile.
    #[test]
    fn different_cards_pass() {
        let mut d = Debouncer::new(ms(500));
        assert!(d.accept("A", ms(0)));
        assert!(d.accept("B", ms(100)));
        assert!(d.accept("A", ms(200)));
        assert!(!d.accept("A", ms(300)));
    }

    /// A zero window lets every repetition through.
    #[test]
    fn zero_window_is_off() {
        let mut d = Debouncer::new(Duration::ZERO);
        assert!(d.accept("A", ms(0)));
        assert!(d.accept("A", ms(0)));
    }
}
