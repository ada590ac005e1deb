//! The QEMU releases generated bindings were made to read, and which of
//! them have a command or event.
//!
//! Bindings generated with older releases' schemas (see
//! `qapi_codegen::Config::older_schema`) list those releases and the
//! schema's own in their module's `RELEASES`, and give every command and
//! event an [`Availability`] over them:
//!
//! ```
//! use qapi_types::{Command, QemuVersion};
//! # #[cfg(feature = "qmp")] {
//! use qapi_types::qmp::commands::QueryStatus;
//!
//! assert_eq!(QueryStatus::AVAILABILITY.has(QemuVersion::new(7, 2)), Some(true));
//! # }
//! ```

use serde::{Deserialize, Serialize};
use serde_json::Value;

/// A QEMU release, `major.minor` (the micro number never changes the
/// schema).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct QemuVersion {
    pub major: u16,
    pub minor: u16,
}

impl QemuVersion {
    pub const fn new(major: u16, minor: u16) -> QemuVersion {
        QemuVersion { major, minor }
    }
}

impl std::fmt::Display for QemuVersion {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}.{}", self.major, self.minor)
    }
}

/// Which of the releases the bindings were generated from have a
/// command or event: a bit per release of the bindings' `RELEASES`
/// (oldest first, the schema's own last).  Asking is a short scan and a
/// bit test, with no allocation.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Availability {
    releases: &'static [QemuVersion],
    mask: u64,
}

impl Availability {
    /// Nothing known: bindings generated without older releases.
    pub const UNKNOWN: Availability = Availability {
        releases: &[],
        mask: 0,
    };

    /// Bit `i` of `mask` for `releases[i]` (generated code builds these).
    pub const fn new(releases: &'static [QemuVersion], mask: u64) -> Availability {
        Availability { releases, mask }
    }

    /// The releases the bindings know, oldest first.
    pub fn releases(&self) -> &'static [QemuVersion] {
        self.releases
    }

    /// Whether `release` has it: `None` when the bindings were not made
    /// with that release's schema (see [`likely`](Self::likely)).
    pub fn has(&self, release: QemuVersion) -> Option<bool> {
        let i = self.releases.iter().position(|r| *r == release)?;
        Some(self.mask & (1 << i) != 0)
    }

    /// The answer for the newest known release not after `release` (the
    /// oldest known one for an earlier release): what a release between
    /// two known ones most likely has.  `None` when nothing is known.
    pub fn likely(&self, release: QemuVersion) -> Option<bool> {
        let i =
            self.releases
                .iter()
                .rposition(|r| *r <= release)
                .or(if self.releases.is_empty() {
                    None
                } else {
                    Some(0)
                })?;
        Some(self.mask & (1 << i) != 0)
    }

    /// The oldest known release that has it, when it has stayed since.
    pub fn since(&self) -> Option<QemuVersion> {
        let mut first = None;
        for (i, r) in self.releases.iter().enumerate().rev() {
            if self.mask & (1 << i) == 0 {
                break;
            }
            first = Some(*r);
        }
        first
    }
}

/// A member whose type changed between releases, for values an older
/// release sends that the current type (`T`) does not take: those are
/// kept as the older type `O` (the older release's Rust type when it is
/// a built-in one, else its JSON).  Serializes as the value it holds.
#[derive(Clone, Debug, PartialEq)]
pub enum Compat<T, O = Value> {
    /// The form of the schema the bindings come from.
    Current(T),
    /// An older release's form.
    Older(O),
}

impl<T, O> Compat<T, O> {
    /// The current form, if that is what was sent.
    pub fn current(&self) -> Option<&T> {
        match self {
            Compat::Current(t) => Some(t),
            Compat::Older(_) => None,
        }
    }
}

impl<T: Serialize, O: Serialize> Serialize for Compat<T, O> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            Compat::Current(t) => t.serialize(s),
            Compat::Older(o) => o.serialize(s),
        }
    }
}

impl<'de, T: serde::de::DeserializeOwned, O: serde::de::DeserializeOwned> Deserialize<'de>
    for Compat<T, O>
{
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let value = Value::deserialize(d)?;
        match T::deserialize(&value) {
            Ok(t) => Ok(Compat::Current(t)),
            // Neither form: the current form's error says what is wrong.
            Err(e) => O::deserialize(value)
                .map(Compat::Older)
                .map_err(|_| serde::de::Error::custom(e)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const RELEASES: &[QemuVersion] = &[
        QemuVersion::new(6, 2),
        QemuVersion::new(7, 2),
        QemuVersion::new(8, 2),
    ];

    #[test]
    fn availability_answers_by_release() {
        // In 7.2 and 8.2, not 6.2.
        let a = Availability::new(RELEASES, 0b110);
        assert_eq!(a.has(QemuVersion::new(6, 2)), Some(false));
        assert_eq!(a.has(QemuVersion::new(7, 2)), Some(true));
        assert_eq!(a.has(QemuVersion::new(8, 0)), None);
        assert_eq!(a.likely(QemuVersion::new(8, 0)), Some(true));
        assert_eq!(a.likely(QemuVersion::new(5, 2)), Some(false));
        assert_eq!(a.likely(QemuVersion::new(11, 0)), Some(true));
        assert_eq!(a.since(), Some(QemuVersion::new(7, 2)));
        // Dropped in 7.2, back in 8.2: only since 8.2.
        assert_eq!(
            Availability::new(RELEASES, 0b101).since(),
            Some(QemuVersion::new(8, 2))
        );
        assert_eq!(Availability::UNKNOWN.has(QemuVersion::new(7, 2)), None);
        assert_eq!(Availability::UNKNOWN.likely(QemuVersion::new(7, 2)), None);
    }

    #[test]
    fn compat_takes_either_form() {
        let c: Compat<String, i64> = serde_json::from_str("\"a\"").unwrap();
        assert_eq!(c, Compat::Current("a".into()));
        let c: Compat<String, i64> = serde_json::from_str("3").unwrap();
        assert_eq!(c, Compat::Older(3));
        assert_eq!(serde_json::to_string(&c).unwrap(), "3");
        let e = serde_json::from_str::<Compat<String, i64>>("true").unwrap_err();
        assert!(e.to_string().contains("expected a string"), "{e}");
    }
}
