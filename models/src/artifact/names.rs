//! The closed sets of names an artefact spells: model families, threshold rules and the
//! row sets calibration and family choice used. Each is an enum serialised as the same
//! string every format-3 artefact holds, and parsed back from it.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// A name that is not one of its set, with what it names and what was expected.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UnknownName {
    /// What the name names (`model family`, `threshold_rule`, ...).
    pub what: &'static str,
    /// The name found.
    pub found: String,
    /// Every name of the set.
    pub expected: &'static [&'static str],
}

impl fmt::Display for UnknownName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "unknown {} {:?} (expected ", self.what, self.found)?;
        for (i, name) in self.expected.iter().enumerate() {
            let sep = match i {
                0 => "",
                _ if i + 1 == self.expected.len() => " or ",
                _ => ", ",
            };
            write!(f, "{sep}{name:?}")?;
        }
        f.write_str(")")
    }
}

impl std::error::Error for UnknownName {}

/// A unit enum whose values are spelled as the given strings: `as_str`, `Display`,
/// `FromStr` (an [`UnknownName`] naming the set) and serde as that string.
macro_rules! named_enum {
    (
        $(#[$meta:meta])*
        pub enum $name:ident: $what:literal {
            $($(#[$vmeta:meta])* $variant:ident = $text:literal,)+
        }
    ) => {
        $(#[$meta])*
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
        pub enum $name {
            $($(#[$vmeta])* $variant,)+
        }

        impl $name {
            /// Every value, in declaration order.
            pub const ALL: &'static [$name] = &[$($name::$variant,)+];

            /// The name artefacts spell it with.
            pub const fn as_str(self) -> &'static str {
                match self {
                    $($name::$variant => $text,)+
                }
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.as_str())
            }
        }

        impl FromStr for $name {
            type Err = UnknownName;

            fn from_str(s: &str) -> Result<Self, UnknownName> {
                match s {
                    $($text => Ok($name::$variant),)+
                    _ => Err(UnknownName {
                        what: $what,
                        found: s.to_owned(),
                        expected: &[$($text,)+],
                    }),
                }
            }
        }

        impl Serialize for $name {
            fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
                serializer.serialize_str(self.as_str())
            }
        }

        impl<'de> Deserialize<'de> for $name {
            fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
                String::deserialize(deserializer)?
                    .parse()
                    .map_err(serde::de::Error::custom)
            }
        }
    };
}

named_enum! {
    /// The name of a model family ([`super::Family`] without its data), as
    /// [`super::CandidateMetrics::family`] and `ComponentModel`'s `family` field spell it.
    pub enum FamilyName: "model family" {
        /// L2 logistic regression.
        Logistic = "logistic",
        /// Bagged decision trees.
        BaggedTrees = "bagged_trees",
    }
}

named_enum! {
    /// How a component's threshold was chosen (see docs/models.md, "Thresholds").
    pub enum ThresholdRule: "threshold_rule" {
        /// None was: the component has no model (`skipped_reason` says why).
        None = "none",
        /// Among the thresholds reaching the precision target within the alert budget
        /// on the validation period, the middle (or top) of the highest-recall band.
        EventTarget = "event_target",
        /// No threshold reached the target: the best event F1 within the budget.
        EventMaxF1 = "event_max_f1",
        /// [`ThresholdRule::EventTarget`] on the training rows: the validation period
        /// held no failure of the component.
        EventTargetTraining = "event_target_training",
        /// [`ThresholdRule::EventMaxF1`] on the training rows.
        EventMaxF1Training = "event_max_f1_training",
    }
}

impl ThresholdRule {
    /// The rule as chosen on the training rows instead of the validation period
    /// (`EventTarget` becomes `EventTargetTraining`, ...); the others are unchanged.
    pub(crate) fn on_training_rows(self) -> ThresholdRule {
        match self {
            ThresholdRule::EventTarget => ThresholdRule::EventTargetTraining,
            ThresholdRule::EventMaxF1 => ThresholdRule::EventMaxF1Training,
            other => other,
        }
    }
}

named_enum! {
    /// The rows that fitted a component's Platt calibration.
    pub enum CalibrationSet: "calibration_set" {
        /// None: identity calibration (the first half of validation lacked a positive
        /// or a negative row, or the component was not calibrated).
        None = "none",
        /// The first half of the validation period.
        ValidationFirstHalf = "validation_first_half",
    }
}

named_enum! {
    /// The rows a component's candidate families were compared on.
    pub enum SelectionSet: "selection_set" {
        /// The first half of the validation period (when it has both classes).
        ValidationFirstHalf = "validation_first_half",
        /// The whole validation period (its first half lacked a class).
        Validation = "validation",
        /// The training rows (the validation period held no failure).
        Training = "training",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_name_reads_back_and_an_unknown_one_names_its_set() {
        fn round_trip<T>(all: &[T])
        where
            T: Copy + fmt::Debug + PartialEq + FromStr<Err = UnknownName> + Serialize,
            for<'de> T: Deserialize<'de>,
            T: fmt::Display,
        {
            for &v in all {
                let json = serde_json::to_string(&v).unwrap();
                assert_eq!(json, format!("\"{v}\""));
                assert_eq!(serde_json::from_str::<T>(&json).unwrap(), v);
                assert_eq!(v.to_string().parse::<T>().unwrap(), v);
            }
        }
        round_trip(FamilyName::ALL);
        round_trip(ThresholdRule::ALL);
        round_trip(CalibrationSet::ALL);
        round_trip(SelectionSet::ALL);
        // The strings every format-3 writer used.
        let spelled = |all: &[&dyn fmt::Display]| -> Vec<String> {
            all.iter().map(|v| v.to_string()).collect()
        };
        assert_eq!(
            spelled(&[&FamilyName::Logistic, &FamilyName::BaggedTrees]),
            ["logistic", "bagged_trees"]
        );
        assert_eq!(
            ThresholdRule::ALL
                .iter()
                .map(|r| r.as_str())
                .collect::<Vec<_>>(),
            [
                "none",
                "event_target",
                "event_max_f1",
                "event_target_training",
                "event_max_f1_training"
            ]
        );
        assert_eq!(
            spelled(&[&CalibrationSet::None, &CalibrationSet::ValidationFirstHalf]),
            ["none", "validation_first_half"]
        );
        assert_eq!(
            SelectionSet::ALL
                .iter()
                .map(|s| s.as_str())
                .collect::<Vec<_>>(),
            ["validation_first_half", "validation", "training"]
        );
        let err = "target_precision".parse::<ThresholdRule>().unwrap_err();
        assert_eq!(
            err.to_string(),
            r#"unknown threshold_rule "target_precision" (expected "none", "event_target", "event_max_f1", "event_target_training" or "event_max_f1_training")"#
        );
        let err = serde_json::from_str::<FamilyName>(r#""forest""#).unwrap_err();
        assert!(
            err.to_string().starts_with(
                r#"unknown model family "forest" (expected "logistic" or "bagged_trees")"#
            ),
            "{err}"
        );
        assert_eq!(
            ThresholdRule::EventMaxF1.on_training_rows(),
            ThresholdRule::EventMaxF1Training
        );
        assert_eq!(ThresholdRule::None.on_training_rows(), ThresholdRule::None);
    }
}
