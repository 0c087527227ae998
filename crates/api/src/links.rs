//! Absolute `@odata.nextLink` and `@odata.deltaLink` URLs. They keep the host the client used, because clients
//! (Microsoft's SDK among them) only send their token to that host.

/// Percent-encodes a query name or value (keeping the characters OData links leave readable).
pub(crate) fn encode_component(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for byte in text.bytes() {
        match byte {
            b'A'..=b'Z'
            | b'a'..=b'z'
            | b'0'..=b'9'
            | b'-'
            | b'_'
            | b'.'
            | b'~'
            | b'$'
            | b','
            | b'('
            | b')'
            | b'\''
            | b'/'
            | b':' => out.push(byte as char),
            other => out.push_str(&format!("%{other:02X}")),
        }
    }
    out
}

/// `base` + `path` + the query made of `pairs`.
pub(crate) fn link(base: &str, path: &str, pairs: &[(String, String)]) -> String {
    let mut url = format!("{base}{path}");
    for (idx, (name, value)) in pairs.iter().enumerate() {
        url.push(if idx == 0 { '?' } else { '&' });
        url.push_str(&encode_component(name));
        url.push('=');
        url.push_str(&encode_component(value));
    }
    url
}
