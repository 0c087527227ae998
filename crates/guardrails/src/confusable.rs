//! The impersonation check's comparison key: NFKC, then removal of default-ignorable code points, then the UTS #39
//! confusable skeleton, then case folding, then removal of spaces and the separators people put in names and
//! mailbox names (`.`, `_`, `-`). The skeleton comes before case folding: a capital I is confusable with l, a small i
//! is not. Each name also gets a second key with case folding first ([`folded_key`]), compared only with the same
//! kind of key, so that writing a name in capitals (`ALICE`, whose capital I's skeleton is l) does not evade the
//! check.

use serde_json::{Map, Value};
use unicode_normalization::UnicodeNormalization;

use crate::attrs::attribute_value;

/// Keys shorter than this are not compared (a two-letter nickname resembles too much).
pub const MIN_KEY_CHARS: usize = 3;

/// Unicode's `Default_Ignorable_Code_Point` ranges (DerivedCoreProperties.txt).
const DEFAULT_IGNORABLE: &[(u32, u32)] = &[
    (0x00AD, 0x00AD),
    (0x034F, 0x034F),
    (0x061C, 0x061C),
    (0x115F, 0x1160),
    (0x17B4, 0x17B5),
    (0x180B, 0x180F),
    (0x200B, 0x200F),
    (0x202A, 0x202E),
    (0x2060, 0x206F),
    (0x3164, 0x3164),
    (0xFE00, 0xFE0F),
    (0xFEFF, 0xFEFF),
    (0xFFA0, 0xFFA0),
    (0xFFF0, 0xFFF8),
    (0x1BCA0, 0x1BCA3),
    (0x1D173, 0x1D17A),
    (0xE0000, 0xE0FFF),
];

fn is_default_ignorable(c: char) -> bool {
    let code = c as u32;
    DEFAULT_IGNORABLE.iter().any(|(low, high)| (*low..=*high).contains(&code))
}

/// The comparison key of a name.
pub fn comparison_key(text: &str) -> String {
    let visible: String = text.nfkc().filter(|c| !is_default_ignorable(*c)).collect();
    let skeleton: String = unicode_security::skeleton(&visible).collect();
    skeleton
        .chars()
        .flat_map(char::to_lowercase)
        .filter(|c| !c.is_whitespace() && !matches!(c, '.' | '_' | '-'))
        .collect()
}

/// The second comparison key of a name: case folding first, then the same steps as [`comparison_key`].
pub fn folded_key(text: &str) -> String {
    let folded: String = text.nfkc().flat_map(char::to_lowercase).collect();
    comparison_key(&folded)
}

/// The local part of a mail address or UPN; for a B2B UPN (`ada_contoso.example#EXT#@fabrikam.example`), the part
/// before `_<domain>#EXT#`.
pub fn local_part(address: &str) -> &str {
    let local = address.split('@').next().unwrap_or(address);
    match local.find("#EXT#") {
        Some(ext) => {
            let guest = &local[..ext];
            guest.rfind('_').map_or(guest, |underscore| &guest[..underscore])
        }
        None => local,
    }
}

/// The comparison keys of a user's JSON: displayName, givenName + surname, and the local parts of mail,
/// mailNickname and userPrincipalName, each as its skeleton key (`s:`) and its folded key (`f:`). Empty and too-short
/// keys are left out; duplicates are removed.
pub fn identity_keys(user: &Map<String, Value>) -> Vec<String> {
    let text = |name: &str| attribute_value(user, name).and_then(Value::as_str);
    let mut names: Vec<String> = Vec::new();
    if let Some(display_name) = text("displayName") {
        names.push(display_name.to_owned());
    }
    if let (Some(given), Some(surname)) = (text("givenName"), text("surname")) {
        names.push(format!("{given} {surname}"));
    }
    for address in ["mail", "mailNickname", "userPrincipalName"] {
        if let Some(value) = text(address) {
            names.push(local_part(value).to_owned());
        }
    }
    let mut keys: Vec<String> = names
        .iter()
        .flat_map(|name| [format!("s:{}", comparison_key(name)), format!("f:{}", folded_key(name))])
        .filter(|key| key.chars().count() >= MIN_KEY_CHARS + 2)
        .collect();
    keys.sort();
    keys.dedup();
    keys
}

/// A target user an inbound user must not resemble.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ProtectedIdentity {
    pub id: String,
    pub display_name: String,
    /// [`identity_keys`] of the user.
    pub keys: Vec<String>,
}

impl ProtectedIdentity {
    /// A protected identity from the target user's JSON.
    pub fn from_user(id: impl Into<String>, user: &Map<String, Value>) -> ProtectedIdentity {
        let display_name = attribute_value(user, "displayName").and_then(Value::as_str).unwrap_or_default().to_owned();
        ProtectedIdentity { id: id.into(), display_name, keys: identity_keys(user) }
    }
}
