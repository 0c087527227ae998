//! Identifier newtypes. A bare `Uuid` never crosses a crate boundary: the type says what an id names.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::ModelError;

macro_rules! guid_id {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
        #[serde(transparent)]
        pub struct $name(Uuid);

        impl $name {
            /// A new random (version 4) identifier.
            pub fn new_random() -> Self {
                Self(Uuid::new_v4())
            }
            pub fn from_uuid(uuid: Uuid) -> Self {
                Self(uuid)
            }
            pub fn as_uuid(&self) -> &Uuid {
                &self.0
            }
            /// Parses the hyphenated form (case-insensitive, braces not accepted).
            pub fn parse(text: &str) -> Result<Self, ModelError> {
                if text.len() != 36 {
                    return Err(ModelError::InvalidId { text: text.to_owned() });
                }
                Uuid::parse_str(text).map(Self).map_err(|_| ModelError::InvalidId { text: text.to_owned() })
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                self.0.hyphenated().fmt(f)
            }
        }

        impl FromStr for $name {
            type Err = ModelError;
            fn from_str(text: &str) -> Result<Self, ModelError> {
                Self::parse(text)
            }
        }
    };
}

guid_id!(
    /// A tenant's directory id (Entra's `tid`).
    TenantId
);
guid_id!(
    /// The object id of a user or group, unique across all tenants.
    ObjectId
);
guid_id!(
    /// An application (client) id of an app credential.
    ClientId
);

impl ObjectId {
    /// A time-ordered (version 7) id: keeps primary-key inserts append-only in both backends.
    pub fn new_time_ordered() -> Self {
        Self(Uuid::now_v7())
    }
}
