//! [`Scopes`]: what a token may be used for (RFC 6749 §3.3).

use std::fmt;
use std::sync::Arc;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// The scope that grants every other one: Magento's `Magento_Backend::all`, the resource of
/// its Administrators role. A token holding it passes every scope check.
pub const ALL_SCOPES: &str = "Magento_Backend::all";
/// The most scopes one token holds.
pub const MAX_SCOPES: usize = 64;
/// The longest scope accepted, in bytes (Magento's ACL resource ids are far shorter).
pub const MAX_SCOPE_LEN: usize = 128;

/// A set of scopes: RFC 6749 scope-tokens (printable ASCII but space, `"` and `\`), such
/// as Magento's ACL resource ids (`Magento_Catalog::products`). Kept sorted and without
/// duplicates; cheap to clone (shared), and empty without an allocation.
///
/// ```
/// use tower_bearer::token::{ALL_SCOPES, Scopes};
///
/// let scopes = Scopes::new(["Magento_Sales::sales", "Magento_Catalog::products"])?;
/// assert!(scopes.grants("Magento_Catalog::products"));
/// assert!(!scopes.grants("Magento_Customer::manage"));
/// assert_eq!(scopes.to_string(), "Magento_Catalog::products Magento_Sales::sales");
///
/// assert!(Scopes::new([ALL_SCOPES])?.grants("anything"));
/// assert!(Scopes::new(["has space"]).is_err());
/// # Ok::<(), tower_bearer::token::InvalidScope>(())
/// ```
#[derive(Clone, Default, PartialEq, Eq, Hash)]
pub struct Scopes(Option<Arc<[Box<str>]>>);

/// A scope was refused: empty, too long, with a character RFC 6749 does not allow, or one
/// too many.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum InvalidScope {
    /// An empty scope.
    #[error("a scope is empty")]
    Empty,
    /// A scope over [`MAX_SCOPE_LEN`] bytes.
    #[error("a scope is longer than {MAX_SCOPE_LEN} bytes")]
    TooLong,
    /// A scope with a space, a quote, a backslash, a control or a non-ASCII character.
    #[error("a scope may hold only printable ASCII but space, '\"' and '\\\\'")]
    BadCharacter,
    /// More than [`MAX_SCOPES`] scopes.
    #[error("a token holds at most {MAX_SCOPES} scopes")]
    TooMany,
}

impl Scopes {
    /// The scopes given, checked, sorted and without duplicates.
    ///
    /// # Errors
    /// [`InvalidScope`] for an empty, over-long or malformed scope, or more than
    /// [`MAX_SCOPES`] of them.
    pub fn new<I, S>(scopes: I) -> Result<Self, InvalidScope>
    where
        I: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        let mut list: Vec<Box<str>> = Vec::new();
        for scope in scopes {
            let scope = scope.as_ref();
            check(scope)?;
            // Duplicates do not count; the list stays small all the same.
            if list.len() == 4 * MAX_SCOPES {
                list.sort_unstable();
                list.dedup();
                if list.len() > MAX_SCOPES {
                    return Err(InvalidScope::TooMany);
                }
            }
            list.push(scope.into());
        }
        list.sort_unstable();
        list.dedup();
        if list.len() > MAX_SCOPES {
            return Err(InvalidScope::TooMany);
        }
        Ok(Self((!list.is_empty()).then(|| list.into())))
    }

    /// Scopes from RFC 6749's space-separated form (`"a b c"`; runs of spaces allowed).
    ///
    /// # Errors
    /// As [`Scopes::new`].
    pub fn parse(text: &str) -> Result<Self, InvalidScope> {
        Self::new(text.split(' ').filter(|scope| !scope.is_empty()))
    }

    /// The wildcard alone: every scope ([`ALL_SCOPES`]).
    pub fn all() -> Self {
        Self(Some(Arc::from([Box::<str>::from(ALL_SCOPES)])))
    }

    /// Whether there is no scope.
    pub fn is_empty(&self) -> bool {
        self.0.is_none()
    }

    /// How many scopes there are.
    pub fn len(&self) -> usize {
        self.0.as_deref().map_or(0, <[_]>::len)
    }

    /// The scopes, sorted.
    pub fn iter(&self) -> impl Iterator<Item = &str> {
        self.0
            .as_deref()
            .unwrap_or_default()
            .iter()
            .map(|scope| &**scope)
    }

    /// Whether `scope` is one of these, exactly.
    pub fn contains(&self, scope: &str) -> bool {
        self.0
            .as_deref()
            .is_some_and(|list| list.binary_search_by(|held| (**held).cmp(scope)).is_ok())
    }

    /// Whether these scopes grant `scope`: they hold it, or the wildcard [`ALL_SCOPES`].
    pub fn grants(&self, scope: &str) -> bool {
        self.contains(scope) || self.contains(ALL_SCOPES)
    }

    /// Whether these scopes grant every one of `required`.
    pub fn grants_all(&self, required: &Scopes) -> bool {
        required.iter().all(|scope| self.grants(scope))
    }
}

fn check(scope: &str) -> Result<(), InvalidScope> {
    if scope.is_empty() {
        return Err(InvalidScope::Empty);
    }
    if scope.len() > MAX_SCOPE_LEN {
        return Err(InvalidScope::TooLong);
    }
    // RFC 6749 §3.3: scope-token = 1*( %x21 / %x23-5B / %x5D-7E )
    let allowed =
        |byte: u8| byte == 0x21 || (0x23..=0x5b).contains(&byte) || (0x5d..=0x7e).contains(&byte);
    if !scope.bytes().all(allowed) {
        return Err(InvalidScope::BadCharacter);
    }
    Ok(())
}

impl fmt::Display for Scopes {
    /// RFC 6749's form: the scopes separated by single spaces.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, scope) in self.iter().enumerate() {
            if i > 0 {
                f.write_str(" ")?;
            }
            f.write_str(scope)?;
        }
        Ok(())
    }
}

impl fmt::Debug for Scopes {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_set().entries(self.iter()).finish()
    }
}

impl Serialize for Scopes {
    /// A JSON array of strings.
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_seq(self.iter())
    }
}

impl<'de> Deserialize<'de> for Scopes {
    /// A sequence of strings, checked as [`Scopes::new`] checks them.
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let list = Vec::<String>::deserialize(deserializer)?;
        Scopes::new(list).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scopes_are_checked_to_rfc_6749() {
        for good in [
            "a",
            "Magento_Catalog::products",
            "!#[]~",
            &"x".repeat(MAX_SCOPE_LEN),
        ] {
            assert!(Scopes::new([good]).is_ok(), "{good}");
        }
        let refusals = [
            ("", InvalidScope::Empty),
            ("a b", InvalidScope::BadCharacter),
            ("a\"b", InvalidScope::BadCharacter),
            ("a\\b", InvalidScope::BadCharacter),
            ("tab\t", InvalidScope::BadCharacter),
            ("é", InvalidScope::BadCharacter),
        ];
        for (bad, why) in refusals {
            assert_eq!(Scopes::new([bad]), Err(why), "{bad:?}");
        }
        assert_eq!(
            Scopes::new([&"x".repeat(MAX_SCOPE_LEN + 1)]),
            Err(InvalidScope::TooLong)
        );
        let many: Vec<String> = (0..=MAX_SCOPES).map(|i| format!("s{i}")).collect();
        assert_eq!(Scopes::new(&many), Err(InvalidScope::TooMany));
        assert_eq!(
            Scopes::new(&many[..MAX_SCOPES]).map(|s| s.len()),
            Ok(MAX_SCOPES)
        );
        let repeated = vec!["a"; 10 * MAX_SCOPES];
        assert_eq!(
            Scopes::new(&repeated).map(|s| s.len()),
            Ok(1),
            "duplicates do not count"
        );
    }

    #[test]
    fn scopes_are_sorted_deduplicated_and_round_trip_through_json_and_text() {
        let scopes = Scopes::parse("b  a b").unwrap();
        assert_eq!(scopes.iter().collect::<Vec<_>>(), ["a", "b"]);
        assert_eq!(scopes.to_string(), "a b");
        let json = serde_json::to_string(&scopes).unwrap();
        assert_eq!(json, r#"["a","b"]"#);
        assert_eq!(serde_json::from_str::<Scopes>(&json).unwrap(), scopes);
        assert!(serde_json::from_str::<Scopes>(r#"["a b"]"#).is_err());
        assert!(Scopes::parse("").unwrap().is_empty());
        assert!(!scopes.is_empty());
        assert_eq!(Scopes::default().to_string(), "");
        assert_eq!(format!("{scopes:?}"), r#"{"a", "b"}"#);
    }

    #[test]
    fn the_wildcard_grants_everything_and_an_exact_scope_only_itself() {
        let catalog = Scopes::new(["Magento_Catalog::products"]).unwrap();
        let required = Scopes::new(["Magento_Catalog::products", "Magento_Sales::sales"]).unwrap();
        assert!(!catalog.grants_all(&required));
        assert!(catalog.grants_all(&Scopes::default()));
        assert!(Scopes::all().grants_all(&required));
        assert!(!catalog.grants("Magento_Catalog"), "no prefix matching");
    }
}
