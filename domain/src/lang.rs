//! The languages fixahead speaks to people: English and Simplified Chinese.
//!
//! A [`Lang`] picks the text of a profile's catalogue ([`crate::Profile::title_in`],
//! [`crate::FaultDef::title_in`], ...). It comes from a user's setting (`"en"`, `"zh"`),
//! a language tag (`zh-CN`, `en-US`) or an HTTP `Accept-Language` header
//! ([`Lang::from_accept_language`]). English is the default and the source text:
//! whatever has no Chinese version is shown in English.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::DomainError;

/// A language of the user interface and of catalogue text.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize,
)]
#[serde(rename_all = "lowercase")]
pub enum Lang {
    /// English, the default and the source text of every profile.
    #[default]
    En,
    /// Simplified Chinese (mainland China, Singapore).
    Zh,
}

impl Lang {
    /// Every language, the default first.
    pub const ALL: [Lang; 2] = [Lang::En, Lang::Zh];

    /// The short name used in settings and JSON: `en` or `zh`.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::En => "en",
            Self::Zh => "zh",
        }
    }

    /// The tag for an HTML `lang` attribute: `en` or `zh-Hans` (the script, not a
    /// country, is what a browser needs to pick Simplified glyphs).
    pub const fn html_lang(self) -> &'static str {
        match self {
            Self::En => "en",
            Self::Zh => "zh-Hans",
        }
    }

    /// The language to answer an HTTP `Accept-Language` header (RFC 9110, section
    /// 12.5.4) with, or `None` if the header accepts neither.
    ///
    /// Each entry is a language range with an optional weight (`zh-CN`, `zh;q=0.9`,
    /// `*;q=0.1`). A range counts for the language [`Lang::from_str`] reads it as, so
    /// `zh-TW` counts for neither. A language's weight is the highest of the ranges that
    /// count for it (our English is one variant, so `en-US;q=0, en-GB` accepts it); a
    /// language no range counts for gets the weight of `*`, if given. Weight 0 means
    /// "not acceptable". The highest weight wins; on a tie, the language whose range
    /// comes first in the header, then English. Malformed entries (a bad range, a
    /// weight that is not a qvalue, any other parameter) are ignored. Any input is
    /// answered, none panics.
    pub fn from_accept_language(header: &str) -> Option<Lang> {
        // Per language: (weight in thousandths, position of the entry it came from).
        let mut explicit: [Option<(u16, usize)>; 2] = [None, None];
        let mut wildcard: Option<(u16, usize)> = None;
        for (position, entry) in header.split(',').enumerate() {
            let Some((range, q)) = parse_entry(entry) else {
                continue;
            };
            if range == "*" {
                // A repeated `*` is contradictory; the first one counts.
                wildcard.get_or_insert((q, position));
                continue;
            }
            let Ok(lang) = range.parse::<Lang>() else {
                continue;
            };
            let slot = &mut explicit[lang as usize];
            if slot.is_none_or(|(best, _)| q > best) {
                *slot = Some((q, position));
            }
        }
        Lang::ALL
            .into_iter()
            .filter_map(|lang| {
                let (q, position) = explicit[lang as usize].or(wildcard)?;
                (q > 0).then_some((q, position, lang))
            })
            // Highest weight, then earliest entry, then the default language.
            .min_by_key(|&(q, position, lang)| (std::cmp::Reverse(q), position, lang))
            .map(|(_, _, lang)| lang)
    }
}

impl fmt::Display for Lang {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Traditional Chinese is the norm in these regions: `zh-TW` without a script means
/// Traditional.
const TRADITIONAL_REGIONS: [&str; 3] = ["tw", "hk", "mo"];

impl FromStr for Lang {
    type Err = DomainError;

    /// Reads `en`, `zh` or a BCP 47 language tag of either, case-insensitively: any
    /// `en-*` (`en-US`, `en-GB`) is English; `zh`, `zh-CN`, `zh-SG`, `zh-Hans`,
    /// `zh-Hans-TW` and `zh-cmn-Hans` are Simplified Chinese. Traditional Chinese
    /// (`zh-Hant`, and `zh-TW`, `zh-HK`, `zh-MO` without `Hans`), other scripts and
    /// other Chinese languages (`zh-yue`) are refused, as are other languages and
    /// malformed tags.
    fn from_str(s: &str) -> Result<Self, DomainError> {
        let refuse = |reason: &'static str| DomainError::UnsupportedLanguage {
            tag: s.to_owned(),
            reason,
        };
        let well_formed = s.split('-').enumerate().all(|(i, sub)| {
            let len_ok = if i == 0 {
                (2..=3).contains(&sub.len())
            } else {
                (1..=8).contains(&sub.len())
            };
            len_ok
                && if i == 0 {
                    sub.bytes().all(|b| b.is_ascii_alphabetic())
                } else {
                    sub.bytes().all(|b| b.is_ascii_alphanumeric())
                }
        });
        if !well_formed {
            return Err(refuse("not a language tag (such as en, en-US, zh, zh-CN)"));
        }
        let mut subtags = s.split('-');
        let primary = subtags.next().unwrap_or_default();
        if primary.eq_ignore_ascii_case("en") {
            return Ok(Self::En);
        }
        if !primary.eq_ignore_ascii_case("zh") {
            return Err(refuse(
                "only English (en) and Simplified Chinese (zh) are offered",
            ));
        }
        let traditional = "Traditional Chinese is not offered, only Simplified (zh-Hans, zh-CN)";
        let mut script = None;
        let mut region = None;
        for (i, sub) in subtags.enumerate() {
            let alpha = sub.bytes().all(|b| b.is_ascii_alphabetic());
            match sub.len() {
                // An extension or private use: nothing after it is script or region.
                1 => break,
                // An extended language subtag right after `zh`: Mandarin (`cmn`) is
                // what we write; Cantonese and the rest are other languages.
                3 if i == 0 && alpha && !sub.eq_ignore_ascii_case("cmn") => {
                    return Err(refuse("only Mandarin in Simplified characters is offered"));
                }
                4 if alpha && script.is_none() && region.is_none() => script = Some(sub),
                2 if alpha && region.is_none() => region = Some(sub),
                3 if sub.bytes().all(|b| b.is_ascii_digit()) && region.is_none() => {
                    region = Some(sub)
                }
                // `cmn`, variants.
                _ => {}
            }
        }
        match script {
            Some(script) if script.eq_ignore_ascii_case("hans") => Ok(Self::Zh),
            Some(script) if script.eq_ignore_ascii_case("hant") => Err(refuse(traditional)),
            Some(_) => Err(refuse("only Chinese in Simplified characters is offered")),
            None if region.is_some_and(|r| {
                TRADITIONAL_REGIONS
                    .iter()
                    .any(|t| r.eq_ignore_ascii_case(t))
            }) =>
            {
                Err(refuse(traditional))
            }
            None => Ok(Self::Zh),
        }
    }
}

/// One `Accept-Language` entry: its range and weight in thousandths, or `None` if it is
/// empty or malformed. The range is not checked here beyond being non-empty.
fn parse_entry(entry: &str) -> Option<(&str, u16)> {
    let mut parts = entry.split(';');
    let range = parts.next()?.trim_matches([' ', '\t']);
    if range.is_empty() {
        return None;
    }
    let mut q = None;
    for param in parts {
        let (name, value) = param.trim_matches([' ', '\t']).split_once('=')?;
        if !name.eq_ignore_ascii_case("q") || q.is_some() {
            return None;
        }
        q = Some(parse_qvalue(value)?);
    }
    Some((range, q.unwrap_or(1000)))
}

/// An RFC 9110 qvalue (`0`, `0.8`, `0.125`, `1`, `1.000`) in thousandths.
fn parse_qvalue(value: &str) -> Option<u16> {
    let (int, frac) = value.split_once('.').unwrap_or((value, ""));
    if frac.len() > 3 || !frac.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let frac_thousandths = frac
        .bytes()
        .chain(std::iter::repeat(b'0'))
        .take(3)
        .fold(0u16, |acc, b| acc * 10 + u16::from(b - b'0'));
    match int {
        "0" => Some(frac_thousandths),
        "1" if frac_thousandths == 0 => Some(1000),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_default_and_serde() {
        assert_eq!(Lang::default(), Lang::En);
        assert_eq!(Lang::En.as_str(), "en");
        assert_eq!(Lang::Zh.to_string(), "zh");
        assert_eq!(Lang::En.html_lang(), "en");
        assert_eq!(Lang::Zh.html_lang(), "zh-Hans");
        assert_eq!(serde_json::to_string(&Lang::Zh).unwrap(), "\"zh\"");
        assert_eq!(serde_json::from_str::<Lang>("\"en\"").unwrap(), Lang::En);
        assert!(serde_json::from_str::<Lang>("\"zh-CN\"").is_err());
        for lang in Lang::ALL {
            assert_eq!(lang.as_str().parse::<Lang>().unwrap(), lang);
        }
    }

    #[test]
    fn parses_tags() {
        for tag in [
            "en",
            "EN",
            "en-US",
            "en-gb",
            "En-Latn-US",
            "en-US-x-twain",
            "eN-001",
        ] {
            assert_eq!(tag.parse::<Lang>().unwrap(), Lang::En, "{tag}");
        }
        for tag in [
            "zh",
            "ZH",
            "zh-CN",
            "zh-cn",
            "zh-SG",
            "zh-MY",
            "zh-Hans",
            "zh-HANS",
            "zh-Hans-CN",
            "zh-Hans-TW",
            "zh-Hans-HK",
            "zh-cmn-Hans-CN",
            "zh-CN-x-private",
            "zh-156",
        ] {
            assert_eq!(tag.parse::<Lang>().unwrap(), Lang::Zh, "{tag}");
        }
        for (tag, why) in [
            ("zh-TW", "Traditional"),
            ("zh-tw", "Traditional"),
            ("zh-HK", "Traditional"),
            ("zh-MO", "Traditional"),
            ("zh-Hant", "Traditional"),
            ("zh-hant-CN", "Traditional"),
            ("zh-Latn", "Simplified characters"),
            ("zh-yue", "Mandarin"),
            ("fr", "only English"),
            ("fr-CA", "only English"),
            ("", "not a language tag"),
            ("e", "not a language tag"),
            ("en-", "not a language tag"),
            ("en_US", "not a language tag"),
            (" en", "not a language tag"),
            ("zh-CN-toolongsubtag", "not a language tag"),
            ("*", "not a language tag"),
            ("中文", "not a language tag"),
        ] {
            let err = tag.parse::<Lang>().unwrap_err().to_string();
            assert!(err.contains(why), "{tag:?}: {err}");
            assert!(err.contains(&format!("{tag:?}")), "{tag:?}: {err}");
        }
    }

    #[test]
    fn accept_language_honours_weights() {
        let pick = Lang::from_accept_language;
        assert_eq!(pick("zh-CN,zh;q=0.9,en;q=0.8"), Some(Lang::Zh));
        assert_eq!(pick("en-US,en;q=0.9,zh-CN;q=0.8"), Some(Lang::En));
        assert_eq!(pick("en;q=0.5, zh;q=0.6"), Some(Lang::Zh));
        assert_eq!(pick("zh-CN;q=0.5, en;q=0.5"), Some(Lang::Zh), "tie: first");
        assert_eq!(pick("en ; q=0.5 , zh-CN ; Q=0.501"), Some(Lang::Zh));
        assert_eq!(pick("zh-Hans;q=1.000, en;q=1"), Some(Lang::Zh));
        // Only Traditional Chinese or other languages: nothing we speak.
        assert_eq!(pick("zh-TW,zh-HK;q=0.9"), None);
        assert_eq!(pick("fr-FR,fr;q=0.9,de;q=0.5"), None);
        assert_eq!(pick("zh-TW,zh;q=0.8,en;q=0.9"), Some(Lang::En));
        assert_eq!(pick("zh-TW,zh;q=0.8,en;q=0.7"), Some(Lang::Zh));
        // The wildcard stands for every language no range names.
        assert_eq!(pick("*"), Some(Lang::En));
        assert_eq!(pick("fr, *;q=0.1"), Some(Lang::En));
        assert_eq!(pick("*;q=0.5, en;q=0.4"), Some(Lang::Zh));
        assert_eq!(pick("en;q=0, *"), Some(Lang::Zh));
        assert_eq!(pick("*;q=0"), None);
        // q=0: not acceptable.
        assert_eq!(pick("en;q=0, zh;q=0"), None);
        assert_eq!(pick("zh;q=0, en;q=0.001"), Some(Lang::En));
        assert_eq!(pick("en-US;q=0, en-GB;q=0.3, zh;q=0.2"), Some(Lang::En));
        // Malformed entries are ignored, the rest still count.
        for header in [
            "zh;q=2, en;q=0.1",
            "zh;q=0.1234, en;q=0.1",
            "zh;q=, en;q=0.1",
            "zh;q=abc, en;q=0.1",
            "zh;q=-0, en;q=0.1",
            "zh;q=1.001, en;q=0.1",
            "zh;q=0.5;q=0.6, en;q=0.1",
            "zh;level=1, en;q=0.1",
            "zh;q, en;q=0.1",
            "zh;q=NaN, en;q=0.1",
            "zh;q=1e-1, en;q=0.1",
            "zh_CN, en;q=0.1",
            ",,;, en;q=0.1",
        ] {
            assert_eq!(pick(header), Some(Lang::En), "{header}");
        }
        for header in ["", " ", ",", ";q=1", "q=1", "\u{4e2d}\u{6587}", "--"] {
            assert_eq!(pick(header), None, "{header:?}");
        }
    }

    #[test]
    fn qvalues() {
        for (v, q) in [
            ("0", 0),
            ("0.", 0),
            ("0.5", 500),
            ("0.05", 50),
            ("0.125", 125),
            ("1", 1000),
            ("1.", 1000),
            ("1.0", 1000),
            ("1.000", 1000),
        ] {
            assert_eq!(parse_qvalue(v), Some(q), "{v}");
        }
        for v in [
            "", ".5", "2", "01", "1.5", "0.1234", "+0.5", "0,5", " 0.5", "٠.٥",
        ] {
            assert_eq!(parse_qvalue(v), None, "{v:?}");
        }
    }

    #[test]
    fn odd_input_never_panics() {
        use proptest::prelude::*;
        use proptest::test_runner::{Config, TestRunner};
        // Headers built from the pieces a parser trips over, and arbitrary strings.
        let piece = prop_oneof![
            Just(",".to_owned()),
            Just(";".to_owned()),
            Just("=".to_owned()),
            Just("q".to_owned()),
            Just("Q".to_owned()),
            Just("-".to_owned()),
            Just(".".to_owned()),
            Just("*".to_owned()),
            Just(" ".to_owned()),
            Just("\t".to_owned()),
            Just("zh".to_owned()),
            Just("en".to_owned()),
            Just("Hans".to_owned()),
            Just("TW".to_owned()),
            Just("\u{4e2d}".to_owned()),
            Just("\u{e9}".to_owned()),
            Just("\u{0}".to_owned()),
            "[0-9]{0,5}",
            "\\PC{0,6}",
        ];
        let header = prop_oneof![
            proptest::collection::vec(piece, 0..24).prop_map(|v| v.concat()),
            any::<String>(),
        ];
        let mut runner = TestRunner::new(Config {
            cases: 2000,
            failure_persistence: None,
            ..Config::default()
        });
        runner
            .run(&header, |h| {
                let picked = Lang::from_accept_language(&h);
                // Whatever it picks, some entry of the header named it or `*`.
                if let Some(lang) = picked {
                    let named = h.to_ascii_lowercase().contains(lang.as_str());
                    prop_assert!(named || h.contains('*'), "{h:?} -> {lang}");
                }
                let _ = h.parse::<Lang>();
                for part in h.split([',', ';']) {
                    let _ = part.parse::<Lang>();
                }
                Ok(())
            })
            .unwrap();
    }
}
