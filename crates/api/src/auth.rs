//! Access tokens like Entra's app-only tokens: EdDSA-signed JWTs carrying the tenant (`tid`), the client
//! (`appid`) and its application roles (`roles`). The signing key is persisted in the store on first start, so
//! tokens survive restarts and every server on one database accepts every other's tokens.
//!
//! The tenant of a request is the token's tenant, never a URL part: [`Caller`] is all a handler knows.

use std::sync::Arc;

use axum::extract::{FromRequestParts, Request, State};
use axum::http::header::AUTHORIZATION;
use axum::http::request::Parts;
use axum::middleware::Next;
use axum::response::Response;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::jwk::{AlgorithmParameters, Jwk};
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde::{Deserialize, Serialize};
use tenantsync_model::{AppRole, ClientId, Clock, RoleSet, TenantId};
use tenantsync_store::Store;

use crate::{ApiError, AppState};

/// The audience of every token, as Entra issues them for Microsoft Graph.
pub const GRAPH_AUDIENCE: &str = "https://graph.microsoft.com";
/// Token lifetime in seconds (`expires_in`).
pub const TOKEN_LIFETIME_SECONDS: i64 = 3600;
const SIGNING_KEY_SETTING: &str = "token_signing_key.ed25519.v1";
/// PKCS#8 v1 prefix of an Ed25519 private key: the 32-byte seed follows.
const ED25519_PKCS8_PREFIX: [u8; 16] =
    [0x30, 0x2e, 0x02, 0x01, 0x00, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x04, 0x22, 0x04, 0x20];

/// The Ed25519 key that signs access tokens, with its public half as a JWK.
pub struct SigningKey {
    encoding: EncodingKey,
    decoding: DecodingKey,
    kid: String,
    jwk: Jwk,
}

impl std::fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "SigningKey(kid={}, ***)", self.kid)
    }
}

impl SigningKey {
    /// Builds the key from its 32-byte seed.
    pub fn from_seed(seed: &[u8; 32]) -> Result<SigningKey, ApiError> {
        let mut der = ED25519_PKCS8_PREFIX.to_vec();
        der.extend_from_slice(seed);
        let encoding = EncodingKey::from_ed_der(&der);
        let mut jwk = Jwk::from_encoding_key(&encoding, Algorithm::EdDSA).map_err(ApiError::internal)?;
        let AlgorithmParameters::OctetKeyPair(params) = &jwk.algorithm else {
            return Err(ApiError::internal(std::io::Error::other("an Ed25519 key gives an OKP JWK")));
        };
        let decoding = DecodingKey::from_ed_components(&params.x).map_err(ApiError::internal)?;
        let kid = params.x.chars().take(16).collect::<String>();
        jwk.common.key_id = Some(kid.clone());
        Ok(SigningKey { encoding, decoding, kid, jwk })
    }

    /// The persisted key, created from fresh randomness if this database has none yet.
    pub async fn load_or_create(store: &dyn Store) -> Result<SigningKey, ApiError> {
        let mut seed = [0u8; 32];
        getrandom::fill(&mut seed).map_err(|err| ApiError::internal(std::io::Error::other(err.to_string())))?;
        let candidate = URL_SAFE_NO_PAD.encode(seed);
        let stored = store.get_or_insert_setting(SIGNING_KEY_SETTING, &candidate).await.map_err(ApiError::internal)?;
        let bytes = URL_SAFE_NO_PAD.decode(stored.as_bytes()).map_err(ApiError::internal)?;
        let seed: [u8; 32] = bytes
            .try_into()
            .map_err(|_| ApiError::internal(std::io::Error::other("stored signing key is not 32 bytes")))?;
        SigningKey::from_seed(&seed)
    }

    /// The public key set, as served at `/{tenant}/discovery/v2.0/keys`.
    pub fn jwks(&self) -> serde_json::Value {
        serde_json::json!({ "keys": [self.jwk] })
    }
}

#[derive(Debug, Serialize, Deserialize)]
struct Claims {
    aud: String,
    iss: String,
    iat: i64,
    nbf: i64,
    exp: i64,
    tid: String,
    appid: String,
    azp: String,
    sub: String,
    idtyp: String,
    ver: String,
    roles: Vec<String>,
    /// The partner tenant a partner-bound credential writes for (not an Entra claim; absent otherwise).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    partner_tid: Option<String>,
}

/// Issues and checks access tokens.
pub struct TokenIssuer {
    key: SigningKey,
    clock: Arc<dyn Clock>,
    /// Tokens whose signature and claims were checked, by their exact text: a client sends the same token with
    /// every request for an hour, and a map lookup costs far less than an Ed25519 verification (issue 14). The
    /// lifetime is still checked on every request. Bounded: emptied when full.
    verified: std::sync::Mutex<std::collections::HashMap<Box<str>, VerifiedToken>>,
}

/// What a token's checked claims say, kept by [`TokenIssuer::verify`].
#[derive(Clone)]
struct VerifiedToken {
    caller: Caller,
    nbf: i64,
    exp: i64,
}

/// How many verified tokens [`TokenIssuer`] keeps.
const VERIFIED_TOKENS_KEPT: usize = 4096;

/// An access token just issued.
#[derive(Debug)]
pub struct IssuedToken {
    pub access_token: String,
    pub expires_in: i64,
}

impl TokenIssuer {
    pub fn new(key: SigningKey, clock: Arc<dyn Clock>) -> Self {
        Self { key, clock, verified: std::sync::Mutex::new(std::collections::HashMap::new()) }
    }

    pub fn jwks(&self) -> serde_json::Value {
        self.key.jwks()
    }

    /// Signs a token for `client_id` of `tenant` with `roles` (and the partner a partner-bound credential writes
    /// for); `issuer_base` is this server's URL.
    pub fn issue(
        &self,
        issuer_base: &str,
        tenant: TenantId,
        client_id: ClientId,
        roles: &RoleSet,
        partner: Option<TenantId>,
    ) -> Result<IssuedToken, ApiError> {
        let now = self.clock.now().unix_timestamp();
        let claims = Claims {
            aud: GRAPH_AUDIENCE.to_owned(),
            iss: format!("{}/{tenant}/v2.0", issuer_base.trim_end_matches('/')),
            iat: now,
            nbf: now,
            exp: now + TOKEN_LIFETIME_SECONDS,
            tid: tenant.to_string(),
            appid: client_id.to_string(),
            azp: client_id.to_string(),
            sub: client_id.to_string(),
            idtyp: "app".to_owned(),
            ver: "2.0".to_owned(),
            roles: roles.to_strings(),
            partner_tid: partner.map(|partner| partner.to_string()),
        };
        let mut header = Header::new(Algorithm::EdDSA);
        header.kid = Some(self.key.kid.clone());
        let access_token = jsonwebtoken::encode(&header, &claims, &self.key.encoding).map_err(ApiError::internal)?;
        Ok(IssuedToken { access_token, expires_in: TOKEN_LIFETIME_SECONDS })
    }

    /// Checks a bearer token's signature, audience and lifetime (on the injected clock).
    pub fn verify(&self, token: &str) -> Result<Caller, ApiError> {
        let known = self.verified.lock().expect("the verified-token map is never poisoned").get(token).cloned();
        let verified = match known {
            Some(verified) => verified,
            None => {
                let verified = self.verify_signature(token)?;
                let mut kept = self.verified.lock().expect("the verified-token map is never poisoned");
                if kept.len() >= VERIFIED_TOKENS_KEPT {
                    kept.clear();
                }
                kept.insert(token.into(), verified.clone());
                verified
            }
        };
        let now = self.clock.now().unix_timestamp();
        if verified.exp <= now {
            return Err(ApiError::Unauthenticated("Lifetime validation failed, the token is expired.".to_owned()));
        }
        if verified.nbf > now + 300 {
            return Err(ApiError::Unauthenticated("Access token validation failure.".to_owned()));
        }
        Ok(verified.caller)
    }

    /// The signature, audience and claims of a token, without its lifetime.
    fn verify_signature(&self, token: &str) -> Result<VerifiedToken, ApiError> {
        let invalid = || ApiError::Unauthenticated("Access token validation failure.".to_owned());
        let mut validation = Validation::new(Algorithm::EdDSA);
        validation.set_audience(&[GRAPH_AUDIENCE]);
        validation.validate_exp = false;
        validation.validate_nbf = false;
        validation.required_spec_claims.clear();
        let data = jsonwebtoken::decode::<Claims>(token, &self.key.decoding, &validation).map_err(|_| invalid())?;
        let claims = data.claims;
        let tenant = TenantId::parse(&claims.tid).map_err(|_| invalid())?;
        let client_id = ClientId::parse(&claims.appid).map_err(|_| invalid())?;
        let roles = RoleSet::parse_list(&claims.roles.join(",")).map_err(|_| invalid())?;
        let partner = claims.partner_tid.as_deref().map(TenantId::parse).transpose().map_err(|_| invalid())?;
        Ok(VerifiedToken { caller: Caller { tenant, client_id, roles, partner }, nbf: claims.nbf, exp: claims.exp })
    }
}

/// Who is calling: the tenant and client of the bearer token, and its roles.
#[derive(Clone, Debug)]
pub struct Caller {
    pub tenant: TenantId,
    pub client_id: ClientId,
    pub roles: RoleSet,
    /// A partner-bound credential's partner: every write of this caller is an inbound write of that partner
    /// (`crate::partner_writes`).
    pub partner: Option<TenantId>,
}

impl Caller {
    /// Refuses with 403 unless the token holds one of `accepted`.
    pub fn require(&self, accepted: &[AppRole]) -> Result<(), ApiError> {
        if self.roles.has_any(accepted) { Ok(()) } else { Err(ApiError::Forbidden) }
    }
}

impl<S: Send + Sync> FromRequestParts<S> for Caller {
    type Rejection = ApiError;
    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        parts
            .extensions
            .get::<Caller>()
            .cloned()
            .ok_or_else(|| ApiError::Unauthenticated("Access token is empty.".to_owned()))
    }
}

/// Middleware of `/v1.0`: a valid bearer token of an existing tenant, or 401.
pub(crate) async fn require_bearer(
    State(state): State<AppState>,
    mut req: Request,
    next: Next,
) -> Result<Response, ApiError> {
    let header = req.headers().get(AUTHORIZATION).and_then(|value| value.to_str().ok()).unwrap_or("");
    let token = header
        .strip_prefix("Bearer ")
        .or_else(|| header.strip_prefix("bearer "))
        .map(str::trim)
        .filter(|token| !token.is_empty())
        .ok_or_else(|| ApiError::Unauthenticated("Access token is empty.".to_owned()))?;
    let caller = state.tokens.verify(token)?;
    if state.directory.get_tenant(caller.tenant).await?.is_none() {
        return Err(ApiError::Unauthenticated("Access token validation failure: unknown tenant.".to_owned()));
    }
    if caller.partner.is_some() {
        let route = req.extensions().get::<axum::extract::MatchedPath>().map_or("", |path| path.as_str());
        crate::partner_writes::check_route(req.method(), route)?;
    }
    tracing::Span::current().record("tenant_id", tracing::field::display(caller.tenant));
    req.extensions_mut().insert(caller);
    Ok(next.run(req).await)
}

/// The roles that allow reading and writing each kind of resource, least privileged first.
pub(crate) mod roles {
    use tenantsync_model::AppRole::{self, *};

    pub const USER_READ: &[AppRole] = &[UserReadAll, UserReadWriteAll, DirectoryReadAll, DirectoryReadWriteAll];
    pub const USER_WRITE: &[AppRole] = &[UserReadWriteAll, DirectoryReadWriteAll];
    pub const GROUP_READ: &[AppRole] =
        &[GroupReadAll, GroupReadWriteAll, GroupMemberReadWriteAll, DirectoryReadAll, DirectoryReadWriteAll];
    pub const GROUP_WRITE: &[AppRole] = &[GroupReadWriteAll, DirectoryReadWriteAll];
    pub const MEMBER_WRITE: &[AppRole] = &[GroupMemberReadWriteAll, GroupReadWriteAll, DirectoryReadWriteAll];
    pub const DIRECTORY_READ: &[AppRole] = &[DirectoryReadAll, DirectoryReadWriteAll];
}
