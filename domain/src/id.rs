use std::fmt;

use serde::{Deserialize, Serialize};

use crate::{DomainError, Result};

/// A device identifier: 1-64 characters of `[A-Za-z0-9_-]`.
///
/// The restricted alphabet keeps ids safe inside MQTT topics (no `/`, `+`, `#`), SQL,
/// URLs and file names without escaping.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct DeviceId(String);

impl DeviceId {
    /// Longest accepted id, in bytes (all accepted characters are ASCII).
    pub const MAX_LEN: usize = 64;

    /// Parses a device id, rejecting anything outside the documented alphabet.
    pub fn parse(s: &str) -> Result<Self> {
        if Self::is_valid(s) {
            Ok(Self(s.to_owned()))
        } else {
            Err(DomainError::InvalidDeviceId(s.chars().take(80).collect()))
        }
    }

    /// Whether `s` is a valid device id.
    pub fn is_valid(s: &str) -> bool {
        !s.is_empty()
            && s.len() <= Self::MAX_LEN
            && s.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
    }

    /// The id as a string slice.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// OpenAPI: a string of 1-64 characters of `[A-Za-z0-9_-]`.
#[cfg(feature = "openapi")]
impl utoipa::PartialSchema for DeviceId {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        use utoipa::openapi::schema::{ObjectBuilder, Type};
        ObjectBuilder::new()
            .schema_type(Type::String)
            .min_length(Some(1))
            .max_length(Some(64))
            .pattern(Some("^[A-Za-z0-9_-]+$"))
            .examples(["wm-0001"])
            .into()
    }
}

#[cfg(feature = "openapi")]
impl utoipa::ToSchema for DeviceId {}

impl fmt::Display for DeviceId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl TryFrom<String> for DeviceId {
    type Error = DomainError;
    fn try_from(s: String) -> Result<Self> {
        if Self::is_valid(&s) {
            Ok(Self(s))
        } else {
            Err(DomainError::InvalidDeviceId(s.chars().take(80).collect()))
        }
    }
}

impl From<DeviceId> for String {
    fn from(id: DeviceId) -> String {
        id.0
    }
}

impl AsRef<str> for DeviceId {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_the_documented_alphabet() {
        assert!(DeviceId::parse("wm-0001_A").is_ok());
        assert!(DeviceId::parse(&"a".repeat(64)).is_ok());
    }

    #[test]
    fn rejects_everything_else() {
        for bad in ["", "a/b", "a+b", "a#", "ä", " a", &"a".repeat(65)] {
            assert!(DeviceId::parse(bad).is_err(), "{bad:?} accepted");
        }
    }
}
