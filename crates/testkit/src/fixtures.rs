//! Request bodies that tests build again and again: a valid user, a security group, a `$ref`. Each returns plain
//! JSON, so a test can change one property before sending it.

use serde_json::{Value, json};

/// A password that satisfies Entra's complexity rule.
pub const GOOD_PASSWORD: &str = "Correct-Horse-42";

/// A valid user body for `upn` (the mail nickname is its local part, the display name is given).
pub fn user(upn: &str, display_name: &str) -> Value {
    let nickname: String =
        upn.split('@').next().unwrap_or_default().chars().filter(char::is_ascii_alphanumeric).collect();
    json!({
        "accountEnabled": true,
        "displayName": display_name,
        "mailNickname": nickname,
        "userPrincipalName": upn,
        "passwordProfile": { "forceChangePasswordNextSignIn": true, "password": GOOD_PASSWORD },
    })
}

/// A security group body (Graph's required properties, assigned membership).
pub fn group(display_name: &str) -> Value {
    let nickname: String = display_name.chars().filter(char::is_ascii_alphanumeric).collect();
    json!({
        "displayName": display_name,
        "mailEnabled": false,
        "mailNickname": if nickname.is_empty() { "group".to_owned() } else { nickname },
        "securityEnabled": true,
    })
}

/// A `$ref` body naming object `id` as `{base}/v1.0/directoryObjects/{id}`.
pub fn reference(base: &str, id: &str) -> Value {
    json!({ "@odata.id": format!("{base}/v1.0/directoryObjects/{id}") })
}
