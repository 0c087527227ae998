//! Opaque continuation tokens: `$skiptoken` for list paging and `$deltatoken`/`$skiptoken` for delta rounds.
//! They are base64url text of a small versioned record; a token that does not decode is a bad request, never a
//! crash.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use tenantsync_model::ObjectId;

use crate::GraphError;

fn encode(text: &str) -> String {
    URL_SAFE_NO_PAD.encode(text)
}

fn decode(token: &str) -> Option<String> {
    let bytes = URL_SAFE_NO_PAD.decode(token.trim_end_matches('=')).ok()?;
    String::from_utf8(bytes).ok()
}

/// The position of a list page: the sort order's name, the last sort key and id.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PageToken {
    pub order: String,
    pub value: String,
    pub id: ObjectId,
}

impl PageToken {
    pub fn encode(&self) -> String {
        encode(&format!("p1\n{}\n{}\n{}", self.order, self.id, self.value))
    }
    pub fn decode(token: &str) -> Result<PageToken, GraphError> {
        let bad = || GraphError::bad("The $skiptoken is not valid.");
        let text = decode(token).ok_or_else(bad)?;
        let mut parts = text.splitn(4, '\n');
        let (Some("p1"), Some(order), Some(id), Some(value)) = (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return Err(bad());
        };
        Ok(PageToken { order: order.to_owned(), value: value.to_owned(), id: ObjectId::parse(id).map_err(|_| bad())? })
    }
}

/// Where a delta round stands, for one kind of object (`users` or `groups`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DeltaToken {
    Initial { snapshot: i64, after: Option<ObjectId> },
    Changes { after: i64 },
}

impl DeltaToken {
    pub fn encode(&self, resource: &str) -> String {
        match self {
            DeltaToken::Initial { snapshot, after } => {
                let after = after.map(|id| id.to_string()).unwrap_or_default();
                encode(&format!("d1\n{resource}\ni\n{snapshot}\n{after}"))
            }
            DeltaToken::Changes { after } => encode(&format!("d1\n{resource}\nc\n{after}\n")),
        }
    }

    /// Decodes a token issued for `resource`; a token of another resource or a garbled one is refused.
    pub fn decode(token: &str, resource: &str) -> Result<DeltaToken, GraphError> {
        let bad = || GraphError::bad("The delta token is not valid.");
        let text = decode(token).ok_or_else(bad)?;
        let parts: Vec<&str> = text.split('\n').collect();
        let [version, token_resource, phase, seq, after] = parts.as_slice() else { return Err(bad()) };
        if *version != "d1" || *token_resource != resource {
            return Err(bad());
        }
        let seq: i64 = seq.parse().map_err(|_| bad())?;
        if seq < 0 {
            return Err(bad());
        }
        match *phase {
            "i" => {
                let after = if after.is_empty() { None } else { Some(ObjectId::parse(after).map_err(|_| bad())?) };
                Ok(DeltaToken::Initial { snapshot: seq, after })
            }
            "c" if after.is_empty() => Ok(DeltaToken::Changes { after: seq }),
            _ => Err(bad()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_round_trip_and_reject_garbage() {
        let id = ObjectId::new_random();
        let page = PageToken { order: "displayName".into(), value: "ada\nlovelace".into(), id };
        assert_eq!(PageToken::decode(&page.encode()).unwrap(), page);
        for token in [
            DeltaToken::Initial { snapshot: 7, after: Some(id) },
            DeltaToken::Initial { snapshot: 0, after: None },
            DeltaToken::Changes { after: 42 },
        ] {
            assert_eq!(DeltaToken::decode(&token.encode("users"), "users").unwrap(), token);
            assert!(DeltaToken::decode(&token.encode("users"), "groups").is_err());
        }
        for garbage in ["", "!!!", "abc", &encode("d1\nusers\nc\n-1\n"), &encode("d1\nusers\nx\n1\n")] {
            assert!(DeltaToken::decode(garbage, "users").is_err(), "{garbage}");
            assert!(PageToken::decode(garbage).is_err(), "{garbage}");
        }
    }
}
