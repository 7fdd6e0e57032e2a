//! Access-token validation beyond the signature.
//!
//! In order: the header (pinned algorithm, `typ`, a `kid`), the key (resolved by `kid`,
//! unknown ones trigger one bounded JWKS refetch), the signature, the registered claims
//! (`iss`, `aud`, `exp`, `nbf`, `iat` with a bounded clock skew; `sub`, `sid`, `jti`
//! present and well-formed), and last the session: a token of an ended session is refused.
//!
//! A token that passed everything but the session is remembered for a short while, keyed
//! by its exact text, so the next request with it skips the header, key and signature
//! checks (Ed25519 verification is most of a validation's cost: about 70 µs of the
//! router's CPU per signed-in request, measured with `perf` under the load harness). Its
//! expiry and its session are checked on every use, so a remembered token stops working
//! at the same moment an unremembered one would.

use std::{sync::Arc, time::Duration};

use foldhash::fast::RandomState;
use jsonwebtoken::{Validation, errors::ErrorKind};
use moka::sync::Cache;
use uuid::Uuid;

use super::{
    Caller, Principal,
    claims::{ACCESS_TOKEN_ALGORITHM, ACCESS_TOKEN_TYPE, AccessClaims},
    keys::KeyResolver,
    sessions::SessionStatus,
};
use crate::AppError;

/// What a valid token must say, and how much clock difference is tolerated.
#[derive(Debug, Clone)]
pub struct TokenPolicy {
    pub issuer: String,
    pub audience: String,
    pub clock_skew: Duration,
}

/// Why a token was refused. Only [`TokenError::client_message`] reaches the client.
#[derive(Debug, thiserror::Error)]
pub enum TokenError {
    #[error("the Authorization header is not `Bearer <token>`")]
    MalformedHeader,
    #[error("the token is not a well-formed JWT: {0}")]
    Malformed(String),
    #[error("algorithm {0:?} is not accepted")]
    AlgorithmNotAccepted(jsonwebtoken::Algorithm),
    #[error("token type {0:?} is not an access token")]
    WrongType(Option<String>),
    #[error("the token names no key id")]
    MissingKeyId,
    #[error("no published key has id {0:?}")]
    UnknownKey(String),
    #[error("the signature does not verify")]
    BadSignature,
    #[error("the token has expired")]
    Expired,
    #[error("the token is not valid yet")]
    NotYetValid,
    #[error("the token was issued in the future")]
    IssuedInFuture,
    #[error("wrong issuer")]
    WrongIssuer,
    #[error("wrong audience")]
    WrongAudience,
    #[error("invalid claims: {0}")]
    InvalidClaims(String),
    #[error("the session has ended")]
    SessionEnded,
    #[error("token validation could not complete: {0:#}")]
    Unavailable(anyhow::Error),
}

impl TokenError {
    /// A short, safe explanation; the detailed reason is logged, not sent.
    pub fn client_message(&self) -> &'static str {
        match self {
            TokenError::Expired => "the access token has expired; refresh it",
            TokenError::SessionEnded => "this session has ended; sign in again",
            TokenError::MalformedHeader => "the Authorization header must be `Bearer <access token>`",
            TokenError::Unavailable(_) => "sign-in cannot be checked right now; please retry",
            _ => "the access token is invalid",
        }
    }
}

impl From<TokenError> for AppError {
    fn from(error: TokenError) -> Self {
        match error {
            TokenError::Unavailable(cause) => AppError::Unavailable(cause),
            other => {
                tracing::debug!(reason = %other, "access token refused");
                AppError::Unauthenticated(other.client_message().to_owned())
            }
        }
    }
}

/// How long a verified token is remembered. Shorter than the JWKS cache's 300 s, so a
/// withdrawn signing key is honoured no longer than it already is.
const VERIFIED_TOKEN_TTL: Duration = Duration::from_secs(60);
/// Memory bound of the remembered tokens (about 5,000 tokens of ~550 bytes each).
const VERIFIED_TOKEN_MAX_BYTES: u64 = 4 * 1024 * 1024;

/// What a token proved once its header, key, signature and claims checked out. What can
/// still change is checked on every use: the time (`exp`) and the session.
struct VerifiedToken {
    principal: Principal,
    expires_at: i64,
}

/// Validates access tokens; one per process, shared by every request.
pub struct TokenValidator {
    keys: Arc<dyn KeyResolver>,
    sessions: Arc<dyn SessionStatus>,
    validation: Validation,
    clock_skew: Duration,
    /// Token text → what it proved. Hashed with foldhash: a look-up of a ~550-byte token
    /// takes ~140 ns against ~240 with SipHash. Entries still compare the full text.
    verified: Cache<String, Arc<VerifiedToken>, RandomState>,
}

impl TokenValidator {
    pub fn new(policy: &TokenPolicy, keys: Arc<dyn KeyResolver>, sessions: Arc<dyn SessionStatus>) -> Self {
        let mut validation = Validation::new(ACCESS_TOKEN_ALGORITHM);
        validation.algorithms = vec![ACCESS_TOKEN_ALGORITHM];
        validation.set_issuer(&[&policy.issuer]);
        validation.set_audience(&[&policy.audience]);
        validation.set_required_spec_claims(&["exp", "nbf", "iss", "aud", "sub"]);
        validation.validate_exp = true;
        validation.validate_nbf = true;
        validation.leeway = policy.clock_skew.as_secs();
        Self {
            keys,
            sessions,
            validation,
            clock_skew: policy.clock_skew,
            verified: Cache::builder()
                .weigher(|token: &String, _: &Arc<VerifiedToken>| u32::try_from(token.len() + 256).unwrap_or(u32::MAX))
                .max_capacity(VERIFIED_TOKEN_MAX_BYTES)
                .time_to_live(VERIFIED_TOKEN_TTL)
                .build_with_hasher(RandomState::default()),
        }
    }

    /// The caller a request's `Authorization` header identifies: anonymous without one.
    pub async fn authenticate(&self, authorization: Option<&str>) -> Result<Caller, TokenError> {
        Ok(match self.verified_bearer(authorization).await? {
            Some(verified) => Caller::User(verified.principal.clone()),
            None => Caller::Anonymous,
        })
    }

    /// Whether `authorization` is absent or carries a valid token of an active session:
    /// the same checks as [`Self::authenticate`], for a gate (the router) that needs the
    /// verdict and not the caller.
    pub async fn admits(&self, authorization: Option<&str>) -> Result<(), TokenError> {
        self.verified_bearer(authorization).await.map(drop)
    }

    /// What the header's bearer token proved, if there is a header.
    async fn verified_bearer(&self, authorization: Option<&str>) -> Result<Option<Arc<VerifiedToken>>, TokenError> {
        let Some(header) = authorization else {
            return Ok(None);
        };
        let token = bearer_token(header).ok_or(TokenError::MalformedHeader)?;
        self.verified_and_current(token).await.map(Some)
    }

    /// What `token` proved, once its expiry and session are checked again.
    async fn verified_and_current(&self, token: &str) -> Result<Arc<VerifiedToken>, TokenError> {
        let verified = match self.verified.get(token) {
            Some(verified) => verified,
            None => {
                let verified = Arc::new(self.verify(token).await?);
                self.verified.insert(token.to_owned(), verified.clone());
                verified
            }
        };
        // The rule `jsonwebtoken` applied when the token was first verified.
        let now = chrono::Utc::now().timestamp();
        if verified.expires_at < now - self.clock_skew.as_secs() as i64 {
            return Err(TokenError::Expired);
        }
        let active = self
            .sessions
            .is_active(verified.principal.session_id)
            .await
            .map_err(TokenError::Unavailable)?;
        if !active {
            return Err(TokenError::SessionEnded);
        }
        Ok(verified)
    }

    /// Everything about `token` that cannot change: header, key, signature and claims.
    async fn verify(&self, token: &str) -> Result<VerifiedToken, TokenError> {
        let header = jsonwebtoken::decode_header(token).map_err(|error| TokenError::Malformed(error.to_string()))?;
        if header.alg != ACCESS_TOKEN_ALGORITHM {
            return Err(TokenError::AlgorithmNotAccepted(header.alg));
        }
        let typ_ok = header.typ.as_deref().is_some_and(|typ| {
            typ.eq_ignore_ascii_case(ACCESS_TOKEN_TYPE) || typ.eq_ignore_ascii_case("application/at+jwt")
        });
        if !typ_ok {
            return Err(TokenError::WrongType(header.typ));
        }
        let kid = header.kid.ok_or(TokenError::MissingKeyId)?;
        let key = self
            .keys
            .resolve(&kid)
            .await
            .map_err(TokenError::Unavailable)?
            .ok_or(TokenError::UnknownKey(kid))?;
        let claims = jsonwebtoken::decode::<AccessClaims>(token, &key, &self.validation)
            .map_err(|error| match error.kind() {
                ErrorKind::InvalidSignature => TokenError::BadSignature,
                ErrorKind::ExpiredSignature => TokenError::Expired,
                ErrorKind::ImmatureSignature => TokenError::NotYetValid,
                ErrorKind::InvalidIssuer => TokenError::WrongIssuer,
                ErrorKind::InvalidAudience => TokenError::WrongAudience,
                ErrorKind::InvalidAlgorithm => TokenError::AlgorithmNotAccepted(ACCESS_TOKEN_ALGORITHM),
                ErrorKind::Json(_) | ErrorKind::MissingRequiredClaim(_) => TokenError::InvalidClaims(error.to_string()),
                _ => TokenError::Malformed(error.to_string()),
            })?
            .claims;
        let now = chrono::Utc::now().timestamp();
        if claims.iat > now + self.clock_skew.as_secs() as i64 {
            return Err(TokenError::IssuedInFuture);
        }
        let user_id = parse_uuid(&claims.sub, "sub")?;
        let session_id = parse_uuid(&claims.sid, "sid")?;
        if claims.jti.is_empty() {
            return Err(TokenError::InvalidClaims("jti is empty".to_owned()));
        }
        Ok(VerifiedToken {
            principal: Principal::new(user_id, session_id, claims.roles, claims.jti),
            expires_at: claims.exp,
        })
    }
}

fn parse_uuid(value: &str, claim: &str) -> Result<Uuid, TokenError> {
    Uuid::parse_str(value).map_err(|_| TokenError::InvalidClaims(format!("{claim} is not a UUID")))
}

/// The token of an `Authorization: Bearer <token>` header (scheme case-insensitive).
pub fn bearer_token(header: &str) -> Option<&str> {
    let (scheme, token) = header.trim().split_once(' ')?;
    let token = token.trim();
    (scheme.eq_ignore_ascii_case("bearer") && !token.is_empty()).then_some(token)
}

#[cfg(test)]
mod tests {
    use std::{
        collections::{HashMap, HashSet},
        sync::Mutex,
    };

    use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};
    use ed25519_dalek::{SigningKey, pkcs8::EncodePrivateKey};
    use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header};
    use serde_json::{Value, json};

    use super::*;
    use crate::auth::{
        Role,
        keys::{KeyResolver, StaticKeys},
    };

    const KID: &str = "test-key-1";

    struct Sessions(Mutex<HashSet<Uuid>>);

    #[async_trait::async_trait]
    impl SessionStatus for Sessions {
        async fn is_active(&self, session_id: Uuid) -> anyhow::Result<bool> {
            Ok(self.0.lock().unwrap().contains(&session_id))
        }
    }

    /// The test key, counting how often the validator asks for a key.
    struct CountingKeys {
        keys: StaticKeys,
        resolved: std::sync::atomic::AtomicUsize,
    }

    #[async_trait::async_trait]
    impl KeyResolver for CountingKeys {
        async fn resolve(&self, kid: &str) -> anyhow::Result<Option<Arc<DecodingKey>>> {
            self.resolved.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            self.keys.resolve(kid).await
        }
    }

    struct Fixture {
        signing: EncodingKey,
        public: Vec<u8>,
        validator: TokenValidator,
        keys: Arc<CountingKeys>,
        sessions: Arc<Sessions>,
        session_id: Uuid,
    }

    fn fixture() -> Fixture {
        fixture_with_skew(Duration::from_secs(30))
    }

    fn fixture_with_skew(clock_skew: Duration) -> Fixture {
        let signing_key = SigningKey::from_bytes(&rand::random::<[u8; 32]>());
        let public = signing_key.verifying_key().to_bytes().to_vec();
        let der = signing_key.to_pkcs8_der().unwrap();
        let signing = EncodingKey::from_ed_der(der.as_bytes());
        let keys = Arc::new(CountingKeys {
            keys: StaticKeys(HashMap::from([(
                KID.to_owned(),
                Arc::new(DecodingKey::from_ed_der(&public)),
            )])),
            resolved: Default::default(),
        });
        let session_id = Uuid::now_v7();
        let sessions = Arc::new(Sessions(Mutex::new(HashSet::from([session_id]))));
        let policy = TokenPolicy {
            issuer: "vitrina-identity".into(),
            audience: "vitrina-api".into(),
            clock_skew,
        };
        let validator = TokenValidator::new(&policy, keys.clone(), sessions.clone());
        Fixture {
            signing,
            public,
            validator,
            keys,
            sessions,
            session_id,
        }
    }

    impl Fixture {
        fn claims(&self) -> Value {
            let now = chrono::Utc::now().timestamp();
            json!({
                "iss": "vitrina-identity", "aud": "vitrina-api", "sub": Uuid::now_v7().to_string(),
                "exp": now + 900, "nbf": now, "iat": now, "jti": Uuid::now_v7().to_string(),
                "sid": self.session_id.to_string(), "roles": ["CUSTOMER"], "permissions": ["orders:place"],
            })
        }

        fn header(&self) -> Header {
            let mut header = Header::new(Algorithm::EdDSA);
            header.typ = Some("at+jwt".into());
            header.kid = Some(KID.into());
            header
        }

        fn sign(&self, header: &Header, claims: &Value) -> String {
            jsonwebtoken::encode(header, claims, &self.signing).unwrap()
        }

        fn sign_with(&self, edit: impl FnOnce(&mut Value)) -> String {
            let mut claims = self.claims();
            edit(&mut claims);
            self.sign(&self.header(), &claims)
        }

        async fn check(&self, token: &str) -> Result<Principal, TokenError> {
            let verified = self.validator.verified_and_current(token).await?;
            Ok(verified.principal.clone())
        }
    }

    fn segment(value: &Value) -> String {
        URL_SAFE_NO_PAD.encode(serde_json::to_vec(value).unwrap())
    }

    #[tokio::test]
    async fn a_well_formed_token_of_an_active_session_is_accepted() {
        let f = fixture();
        let principal = f.check(&f.sign_with(|_| {})).await.expect("valid token");
        assert_eq!(principal.session_id, f.session_id);
        assert_eq!(principal.roles, vec![Role::Customer]);
    }

    #[tokio::test]
    async fn an_unsigned_alg_none_token_is_refused() {
        let f = fixture();
        let header = json!({ "alg": "none", "typ": "at+jwt", "kid": KID });
        let token = format!("{}.{}.", segment(&header), segment(&f.claims()));
        assert!(f.check(&token).await.is_err());
    }

    #[tokio::test]
    async fn an_hmac_token_keyed_with_the_public_key_is_refused() {
        let f = fixture();
        let mut header = Header::new(Algorithm::HS256);
        header.typ = Some("at+jwt".into());
        header.kid = Some(KID.into());
        let token = jsonwebtoken::encode(&header, &f.claims(), &EncodingKey::from_secret(&f.public)).unwrap();
        assert!(matches!(
            f.check(&token).await,
            Err(TokenError::AlgorithmNotAccepted(Algorithm::HS256))
        ));
    }

    #[tokio::test]
    async fn an_expired_token_is_refused_beyond_the_clock_skew() {
        let f = fixture();
        let now = chrono::Utc::now().timestamp();
        let within_skew = f.sign_with(|c| c["exp"] = json!(now - 10));
        assert!(f.check(&within_skew).await.is_ok(), "10 s is inside the 30 s skew");
        let expired = f.sign_with(|c| c["exp"] = json!(now - 120));
        assert!(matches!(f.check(&expired).await, Err(TokenError::Expired)));
    }

    #[tokio::test]
    async fn a_token_not_yet_valid_is_refused() {
        let f = fixture();
        let now = chrono::Utc::now().timestamp();
        let token = f.sign_with(|c| c["nbf"] = json!(now + 120));
        assert!(matches!(f.check(&token).await, Err(TokenError::NotYetValid)));
        let token = f.sign_with(|c| c["iat"] = json!(now + 120));
        assert!(matches!(f.check(&token).await, Err(TokenError::IssuedInFuture)));
    }

    #[tokio::test]
    async fn a_token_for_another_issuer_or_audience_is_refused() {
        let f = fixture();
        let token = f.sign_with(|c| c["iss"] = json!("someone-else"));
        assert!(matches!(f.check(&token).await, Err(TokenError::WrongIssuer)));
        let token = f.sign_with(|c| c["aud"] = json!("another-api"));
        assert!(matches!(f.check(&token).await, Err(TokenError::WrongAudience)));
    }

    #[tokio::test]
    async fn a_jwt_that_is_not_an_access_token_is_refused() {
        let f = fixture();
        for typ in [Some("JWT"), None] {
            let mut header = f.header();
            header.typ = typ.map(str::to_owned);
            let token = f.sign(&header, &f.claims());
            assert!(
                matches!(f.check(&token).await, Err(TokenError::WrongType(_))),
                "{typ:?}"
            );
        }
    }

    #[tokio::test]
    async fn a_token_naming_an_unknown_key_is_refused() {
        let f = fixture();
        let mut header = f.header();
        header.kid = Some("retired-long-ago".into());
        let token = f.sign(&header, &f.claims());
        assert!(matches!(f.check(&token).await, Err(TokenError::UnknownKey(_))));
        header.kid = None;
        let token = f.sign(&header, &f.claims());
        assert!(matches!(f.check(&token).await, Err(TokenError::MissingKeyId)));
    }

    #[tokio::test]
    async fn a_tampered_payload_fails_the_signature() {
        let f = fixture();
        let token = f.sign_with(|_| {});
        let mut parts: Vec<String> = token.split('.').map(str::to_owned).collect();
        let mut claims = f.claims();
        claims["roles"] = json!(["ADMIN"]);
        parts[1] = segment(&claims);
        assert!(matches!(f.check(&parts.join(".")).await, Err(TokenError::BadSignature)));
    }

    #[tokio::test]
    async fn a_token_missing_a_required_claim_is_refused() {
        let f = fixture();
        for claim in ["sid", "sub", "exp", "nbf", "iss", "aud", "jti"] {
            let token = f.sign_with(|c| {
                c.as_object_mut().unwrap().remove(claim);
            });
            assert!(f.check(&token).await.is_err(), "a token without {claim} passed");
        }
        let token = f.sign_with(|c| c["sid"] = json!("not-a-uuid"));
        assert!(matches!(f.check(&token).await, Err(TokenError::InvalidClaims(_))));
    }

    #[tokio::test]
    async fn a_token_of_an_ended_session_is_refused() {
        let f = fixture();
        let token = f.sign_with(|_| {});
        assert!(f.check(&token).await.is_ok());
        f.sessions.0.lock().unwrap().clear();
        assert!(matches!(f.check(&token).await, Err(TokenError::SessionEnded)));
    }

    #[tokio::test]
    async fn a_remembered_token_still_expires_on_time() {
        let f = fixture_with_skew(Duration::ZERO);
        let token = f.sign_with(|c| c["exp"] = json!(chrono::Utc::now().timestamp() + 1));
        assert!(f.check(&token).await.is_ok());
        assert!(f.check(&token).await.is_ok(), "remembered and still valid");
        tokio::time::sleep(Duration::from_millis(2100)).await;
        assert!(matches!(f.check(&token).await, Err(TokenError::Expired)));
    }

    #[tokio::test]
    async fn a_token_used_again_skips_the_key_and_signature_checks() {
        let f = fixture();
        let token = f.sign_with(|_| {});
        let first = f.check(&token).await.expect("valid token");
        let again = f.check(&token).await.expect("still valid");
        assert_eq!(first, again);
        assert_eq!(f.keys.resolved.load(std::sync::atomic::Ordering::SeqCst), 1);
    }

    #[tokio::test]
    async fn a_remembered_token_of_an_ended_session_is_refused_at_once() {
        let f = fixture();
        let token = f.sign_with(|_| {});
        assert!(f.check(&token).await.is_ok());
        assert!(f.check(&token).await.is_ok(), "remembered");
        f.sessions.0.lock().unwrap().clear();
        assert!(matches!(f.check(&token).await, Err(TokenError::SessionEnded)));
    }

    #[tokio::test]
    async fn a_remembered_token_vouches_for_no_other_text() {
        let f = fixture();
        let token = f.sign_with(|_| {});
        assert!(f.check(&token).await.is_ok());
        // Same header and claims, a signature of other bytes: checked afresh, refused.
        let (signed_part, _) = token.rsplit_once('.').unwrap();
        let other = f.sign_with(|c| c["jti"] = json!("another-token"));
        let (_, other_signature) = other.rsplit_once('.').unwrap();
        let forged = format!("{signed_part}.{other_signature}");
        assert!(matches!(f.check(&forged).await, Err(TokenError::BadSignature)));
        assert!(f.check(&token).await.is_ok());
    }

    #[tokio::test]
    async fn a_gate_admits_what_authentication_accepts_and_nothing_else() {
        let f = fixture();
        assert!(
            f.validator.admits(None).await.is_ok(),
            "anonymous requests pass the gate"
        );
        let token = f.sign_with(|_| {});
        let header = format!("Bearer {token}");
        assert!(f.validator.admits(Some(&header)).await.is_ok());
        assert!(matches!(
            f.validator.admits(Some(&token)).await,
            Err(TokenError::MalformedHeader)
        ));
        let expired = f.sign_with(|c| c["exp"] = json!(chrono::Utc::now().timestamp() - 120));
        assert!(matches!(
            f.validator.admits(Some(&format!("Bearer {expired}"))).await,
            Err(TokenError::Expired)
        ));
        f.sessions.0.lock().unwrap().clear();
        assert!(matches!(
            f.validator.admits(Some(&header)).await,
            Err(TokenError::SessionEnded)
        ));
    }

    #[tokio::test]
    async fn only_bearer_authorization_headers_are_understood() {
        let f = fixture();
        assert_eq!(f.validator.authenticate(None).await.unwrap(), Caller::Anonymous);
        assert!(matches!(
            f.validator.authenticate(Some("Basic dXNlcjpwYXNz")).await,
            Err(TokenError::MalformedHeader)
        ));
        let token = f.sign_with(|_| {});
        let caller = f
            .validator
            .authenticate(Some(&format!("bearer {token}")))
            .await
            .unwrap();
        assert!(matches!(caller, Caller::User(_)));
    }

    #[test]
    fn refusals_reach_the_client_as_unauthenticated_without_details() {
        let error = AppError::from(TokenError::UnknownKey("kid-123".into()));
        assert_eq!(error.code(), crate::ErrorCode::Unauthenticated);
        assert!(!error.to_string().contains("kid-123"));
        let error = AppError::from(TokenError::Unavailable(anyhow::anyhow!("connection refused")));
        assert_eq!(error.code(), crate::ErrorCode::Unavailable);
    }
}
