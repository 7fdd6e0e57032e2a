//! Identity and access end to end: sign-up to sign-out through the router, refresh-token
//! rotation and reuse detection, throttling, the first admin, key rotation, and every kind
//! of bad token refused by the router and by each subgraph directly.

use std::time::{Duration, Instant};

use base64::{Engine, engine::general_purpose::STANDARD, engine::general_purpose::URL_SAFE_NO_PAD};
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use sea_orm::{ColumnTrait, EntityTrait, QueryFilter};
use serde_json::{Value, json};
use uuid::Uuid;

use crate::helpers::{
    PASSWORD, Store, TestSystem, data, first_error_code, graphql, graphql_as, spawn_system, spawn_system_with_admin,
};

const REGISTER: &str = "mutation($input: RegisterInput!) { register(input: $input) { id email name } }";
const LOGIN: &str = "mutation($email: String!, $password: String!) {
  login(email: $email, password: $password) { accessToken refreshToken expiresAt sessionId user { id email roles } } }";
const REFRESH: &str = "mutation($refreshToken: String!) {
  refreshSession(refreshToken: $refreshToken) { accessToken refreshToken expiresAt } }";
const LOGOUT: &str = "mutation { logout }";
const ME: &str = "query { me { id email name roles } }";
const PRODUCTS: &str = "query { products(first: 1) { totalCount } }";

pub fn unique_email() -> String {
    format!("user-{}@example.com", Uuid::now_v7().simple())
}

/// Registers and signs in a fresh customer; returns (email, login payload).
pub async fn signed_in_customer(url: &str) -> (String, Value) {
    let email = unique_email();
    let registered = graphql(
        url,
        REGISTER,
        json!({ "input": { "email": email, "password": PASSWORD, "name": "Ada" } }),
    )
    .await;
    data(&registered);
    let login = sign_in(url, &email, PASSWORD).await;
    (email, login)
}

pub async fn sign_in(url: &str, email: &str, password: &str) -> Value {
    let response = graphql(url, LOGIN, json!({ "email": email, "password": password })).await;
    data(&response)["login"].clone()
}

fn text<'a>(value: &'a Value, key: &str) -> &'a str {
    value[key].as_str().unwrap_or_else(|| panic!("no {key} in {value:#}"))
}

async fn assert_refused(url: &str, token: &str, query: &str) {
    let (_, body) = graphql_as(url, Some(token), query, json!({})).await;
    assert_eq!(first_error_code(&body), "UNAUTHENTICATED", "{url}: {body:#}");
    assert!(body["data"].is_null(), "{body:#}");
}

async fn full_flow(system: &TestSystem) {
    let url = &system.router.url;
    let (email, login) = signed_in_customer(url).await;
    assert_eq!(login["user"]["email"], email.as_str());
    assert_eq!(login["user"]["roles"], json!(["CUSTOMER"]));
    let access = text(&login, "accessToken").to_owned();
    let refresh = text(&login, "refreshToken").to_owned();

    let (status, me) = graphql_as(url, Some(&access), ME, json!({})).await;
    assert!(status.is_success());
    assert_eq!(data(&me)["me"]["email"], email.as_str());

    let rotated = graphql(url, REFRESH, json!({ "refreshToken": refresh })).await;
    let rotated = data(&rotated)["refreshSession"].clone();
    let new_access = text(&rotated, "accessToken").to_owned();
    assert_ne!(text(&rotated, "refreshToken"), refresh, "refresh tokens rotate");
    let (_, me) = graphql_as(url, Some(&new_access), ME, json!({})).await;
    assert_eq!(data(&me)["me"]["email"], email.as_str());

    let (_, logout) = graphql_as(url, Some(&new_access), LOGOUT, json!({})).await;
    assert_eq!(data(&logout)["logout"], true);
    // The router (401) or, while the router's half-second session cache still says
    // "active", identity itself refuses it.
    let (_, refused) = graphql_as(url, Some(&new_access), ME, json!({})).await;
    assert_eq!(first_error_code(&refused), "UNAUTHENTICATED");
    assert!(refused["data"].is_null(), "{refused:#}");
    let (_, refused) = graphql_as(url, Some(&access), ME, json!({})).await;
    assert_eq!(
        first_error_code(&refused),
        "UNAUTHENTICATED",
        "tokens of the session all end"
    );
    let again = graphql(url, REFRESH, json!({ "refreshToken": text(&rotated, "refreshToken") })).await;
    assert_eq!(
        first_error_code(&again),
        "UNAUTHENTICATED",
        "the session's refresh token ends too"
    );
}

#[tokio::test]
async fn a_customer_signs_up_signs_in_refreshes_and_signs_out_through_the_router() {
    let system = spawn_system(Store::EmbeddedSqlite, false, &[]).await;
    full_flow(&system).await;
}

#[tokio::test]
async fn the_same_flow_works_with_postgresql_and_redis() {
    let system = spawn_system(Store::Postgres, true, &[]).await;
    full_flow(&system).await;
}

#[tokio::test]
async fn a_used_refresh_token_is_refused_and_ends_the_whole_session() {
    let system = spawn_system(
        Store::EmbeddedSqlite,
        false,
        &[("REFRESH_REUSE_GRACE_SECONDS", "0".into())],
    )
    .await;
    let url = &system.router.url;
    let (_, login) = signed_in_customer(url).await;
    let first = text(&login, "refreshToken").to_owned();
    let rotated = graphql(url, REFRESH, json!({ "refreshToken": first })).await;
    let second = text(&data(&rotated)["refreshSession"], "refreshToken").to_owned();
    let access = text(&data(&rotated)["refreshSession"], "accessToken").to_owned();
    tokio::time::sleep(Duration::from_millis(1100)).await;

    let replay = graphql(url, REFRESH, json!({ "refreshToken": first })).await;
    assert_eq!(first_error_code(&replay), "UNAUTHENTICATED");
    assert!(
        replay["errors"][0]["message"]
            .as_str()
            .unwrap()
            .contains("already used"),
        "{replay:#}"
    );
    let legitimate = graphql(url, REFRESH, json!({ "refreshToken": second })).await;
    assert_eq!(
        first_error_code(&legitimate),
        "UNAUTHENTICATED",
        "the whole session is revoked"
    );
    assert_refused(url, &access, ME).await;
}

#[tokio::test]
async fn a_refresh_replayed_within_the_grace_window_is_refused_but_keeps_the_session() {
    let system = spawn_system(
        Store::EmbeddedSqlite,
        false,
        &[("REFRESH_REUSE_GRACE_SECONDS", "30".into())],
    )
    .await;
    let url = &system.router.url;
    let (_, login) = signed_in_customer(url).await;
    let first = text(&login, "refreshToken").to_owned();
    let rotated = graphql(url, REFRESH, json!({ "refreshToken": first })).await;
    let rotated = data(&rotated)["refreshSession"].clone();
    // A client that lost the response above retries with the same token.
    let retried = graphql(url, REFRESH, json!({ "refreshToken": first })).await;
    assert_eq!(first_error_code(&retried), "UNAUTHENTICATED");
    // Within the grace window that is not treated as theft: the session lives on.
    let (_, me) = graphql_as(url, Some(text(&rotated, "accessToken")), ME, json!({})).await;
    data(&me);
    let next = graphql(url, REFRESH, json!({ "refreshToken": text(&rotated, "refreshToken") })).await;
    data(&next);
}

#[tokio::test]
async fn login_answers_alike_for_unknown_email_and_wrong_password_then_throttles() {
    let system = spawn_system(Store::EmbeddedSqlite, false, &[]).await;
    let url = &system.router.url;
    let (email, _) = signed_in_customer(url).await;
    let wrong_password = graphql(url, LOGIN, json!({ "email": email, "password": "not the password" })).await;
    let unknown_email = graphql(url, LOGIN, json!({ "email": unique_email(), "password": PASSWORD })).await;
    assert_eq!(first_error_code(&wrong_password), "UNAUTHENTICATED");
    assert_eq!(
        wrong_password["errors"][0]["message"],
        unknown_email["errors"][0]["message"]
    );

    for _ in 0..4 {
        graphql(url, LOGIN, json!({ "email": email, "password": "still wrong!!" })).await;
    }
    let locked = graphql(url, LOGIN, json!({ "email": email, "password": PASSWORD })).await;
    assert_eq!(
        first_error_code(&locked),
        "UNAUTHENTICATED",
        "even the right password waits: {locked:#}"
    );
    assert!(
        locked["errors"][0]["message"].as_str().unwrap().contains("too many"),
        "{locked:#}"
    );
}

#[tokio::test]
async fn bad_registrations_name_the_offending_field() {
    let system = spawn_system(Store::EmbeddedSqlite, false, &[]).await;
    let url = &system.router.url;
    for (input, field) in [
        (
            json!({ "email": "not-an-email", "password": PASSWORD, "name": "Ada" }),
            "input.email",
        ),
        (
            json!({ "email": unique_email(), "password": "short", "name": "Ada" }),
            "input.password",
        ),
        (
            json!({ "email": unique_email(), "password": PASSWORD, "name": "  " }),
            "input.name",
        ),
    ] {
        let response = graphql(url, REGISTER, json!({ "input": input })).await;
        assert_eq!(first_error_code(&response), "BAD_USER_INPUT", "{response:#}");
        assert_eq!(response["errors"][0]["extensions"]["field"], field);
    }
    let (email, _) = signed_in_customer(url).await;
    let taken = graphql(
        url,
        REGISTER,
        json!({ "input": { "email": email.to_uppercase(), "password": PASSWORD, "name": "Twin" } }),
    )
    .await;
    assert_eq!(first_error_code(&taken), "CONFLICT");
}

#[tokio::test]
async fn a_revoked_session_is_refused_everywhere_within_one_second() {
    for redis in [false, true] {
        let system = spawn_system(Store::EmbeddedSqlite, redis, &[]).await;
        let (_, login) = signed_in_customer(&system.router.url).await;
        let access = text(&login, "accessToken").to_owned();
        let endpoints = [
            (system.router.url.clone(), PRODUCTS),
            (system.catalog.url.clone(), PRODUCTS),
            (system.identity.url.clone(), ME),
        ];
        for (url, query) in &endpoints {
            let (_, ok) = graphql_as(url, Some(&access), query, json!({})).await;
            data(&ok);
        }
        let (_, logout) = graphql_as(&system.router.url, Some(&access), LOGOUT, json!({})).await;
        data(&logout);
        let logged_out = Instant::now();
        for (url, query) in &endpoints {
            loop {
                let (_, response) = graphql_as(url, Some(&access), query, json!({})).await;
                if response.get("errors").is_some() {
                    assert_eq!(first_error_code(&response), "UNAUTHENTICATED");
                    break;
                }
                assert!(
                    logged_out.elapsed() < Duration::from_secs(1),
                    "{url} (redis: {redis}) still accepts the token a second after logout"
                );
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
    }
}

/// identity's JWKS document.
async fn published_keys(identity_base_url: &str) -> Value {
    reqwest::get(format!("{identity_base_url}/.well-known/jwks.json"))
        .await
        .unwrap()
        .json()
        .await
        .unwrap()
}

/// Signs arbitrary tokens with identity's real active key, to show that everything but
/// the signature is checked too.
struct Forger {
    kid: String,
    key: EncodingKey,
    public_key: Vec<u8>,
}

impl Forger {
    async fn from(system: &TestSystem) -> Self {
        let key = identity_entity::signing_key::Entity::find()
            .filter(identity_entity::signing_key::Column::RetiredAt.is_null())
            .one(&system.identity.db)
            .await
            .unwrap()
            .expect("an active signing key");
        let der = STANDARD.decode(&key.private_key).unwrap();
        let jwks = published_keys(&system.identity.base_url).await;
        let published = jwks["keys"]
            .as_array()
            .unwrap()
            .iter()
            .find(|k| k["kid"] == key.kid.as_str())
            .expect("the active key is published");
        assert_eq!(published["kty"], "OKP");
        assert!(published.get("d").is_none(), "private parts are never published");
        Self {
            kid: key.kid,
            key: EncodingKey::from_ed_der(&der),
            public_key: URL_SAFE_NO_PAD.decode(published["x"].as_str().unwrap()).unwrap(),
        }
    }

    fn header(&self) -> Header {
        let mut header = Header::new(Algorithm::EdDSA);
        header.typ = Some("at+jwt".into());
        header.kid = Some(self.kid.clone());
        header
    }

    fn sign(&self, header: &Header, claims: &Value) -> String {
        jsonwebtoken::encode(header, claims, &self.key).unwrap()
    }
}

fn claims_of(token: &str) -> Value {
    let payload = token.split('.').nth(1).unwrap();
    serde_json::from_slice(&URL_SAFE_NO_PAD.decode(payload).unwrap()).unwrap()
}

#[tokio::test]
async fn every_kind_of_bad_token_is_refused_by_the_router_and_each_subgraph() {
    let system = spawn_system(Store::EmbeddedSqlite, false, &[]).await;
    let (_, login) = signed_in_customer(&system.router.url).await;
    let genuine = text(&login, "accessToken").to_owned();
    let forger = Forger::from(&system).await;
    let claims = claims_of(&genuine);
    let now = chrono::Utc::now().timestamp();
    let edited = |edit: &dyn Fn(&mut Value)| {
        let mut claims = claims.clone();
        edit(&mut claims);
        forger.sign(&forger.header(), &claims)
    };

    // Control: a token forged with the real key and unchanged claims is accepted, so each
    // refusal below is caused by its one defect.
    let control = edited(&|_| {});
    let (_, ok) = graphql_as(&system.router.url, Some(&control), ME, json!({})).await;
    data(&ok);

    let segment = |value: &Value| URL_SAFE_NO_PAD.encode(serde_json::to_vec(value).unwrap());
    let header_none = json!({ "alg": "none", "typ": "at+jwt", "kid": forger.kid });
    let alg_none = format!("{}.{}.", segment(&header_none), segment(&claims));
    let mut hmac_header = Header::new(Algorithm::HS256);
    hmac_header.typ = Some("at+jwt".into());
    hmac_header.kid = Some(forger.kid.clone());
    let hmac_with_public_key =
        jsonwebtoken::encode(&hmac_header, &claims, &EncodingKey::from_secret(&forger.public_key)).unwrap();
    let mut wrong_typ = forger.header();
    wrong_typ.typ = Some("JWT".into());
    let mut unknown_kid = forger.header();
    unknown_kid.kid = Some("ed25519-never-published".into());
    let tampered = {
        let mut parts: Vec<String> = genuine.split('.').map(str::to_owned).collect();
        let mut escalated = claims.clone();
        escalated["roles"] = json!(["ADMIN"]);
        parts[1] = segment(&escalated);
        parts.join(".")
    };
    let bad_tokens = [
        ("alg none", alg_none),
        ("HS256 keyed with the public key", hmac_with_public_key),
        (
            "expired",
            edited(&|c| {
                c["exp"] = json!(now - 300);
                c["iat"] = json!(now - 1200);
                c["nbf"] = json!(now - 1200)
            }),
        ),
        ("not yet valid", edited(&|c| c["nbf"] = json!(now + 600))),
        ("wrong issuer", edited(&|c| c["iss"] = json!("https://evil.example"))),
        ("wrong audience", edited(&|c| c["aud"] = json!("another-api"))),
        ("wrong typ", forger.sign(&wrong_typ, &claims)),
        ("unknown kid", forger.sign(&unknown_kid, &claims)),
        ("tampered payload", tampered),
        (
            "no session id",
            edited(&|c| {
                c.as_object_mut().unwrap().remove("sid");
            }),
        ),
        (
            "a session that never existed",
            edited(&|c| c["sid"] = json!(Uuid::new_v4().to_string())),
        ),
    ];
    for (defect, token) in &bad_tokens {
        for (url, query) in [
            (&system.router.url, ME),
            (&system.identity.url, ME),
            (&system.catalog.url, PRODUCTS),
        ] {
            let (_, response) = graphql_as(url, Some(token), query, json!({})).await;
            assert_eq!(
                response["errors"][0]["extensions"]["code"], "UNAUTHENTICATED",
                "{defect} at {url}: {response:#}"
            );
        }
    }
}

#[tokio::test]
async fn tokens_signed_before_a_key_rotation_stay_valid_until_they_expire() {
    let system = spawn_system(Store::EmbeddedSqlite, false, &[]).await;
    let (email, login) = signed_in_customer(&system.router.url).await;
    let before = text(&login, "accessToken").to_owned();
    system.identity.app_keys.rotate_now().await.unwrap();
    let after = sign_in(&system.router.url, &email, PASSWORD).await;
    let after = text(&after, "accessToken").to_owned();
    let kid = |token: &str| jsonwebtoken::decode_header(token).unwrap().kid.unwrap();
    assert_ne!(kid(&before), kid(&after), "new tokens use the new key");
    let jwks = published_keys(&system.identity.base_url).await;
    assert_eq!(
        jwks["keys"].as_array().unwrap().len(),
        2,
        "the retired key stays published"
    );
    for token in [&before, &after] {
        for url in [&system.router.url, &system.catalog.url] {
            let (_, response) = graphql_as(url, Some(token), PRODUCTS, json!({})).await;
            data(&response);
        }
    }
}

#[tokio::test]
async fn the_bootstrap_admin_grants_roles_that_customers_cannot() {
    let (system, admin_email) = spawn_system_with_admin(Store::EmbeddedSqlite, false).await;
    let url = &system.router.url;
    let admin = sign_in(url, &admin_email, PASSWORD).await;
    assert_eq!(admin["user"]["roles"], json!(["CUSTOMER", "ADMIN"]));
    let (_, customer) = signed_in_customer(url).await;
    let customer_id = customer["user"]["id"].clone();
    const GRANT: &str = "mutation($userId: ID!, $role: Role!) { grantRole(userId: $userId, role: $role) { id roles } }";

    let (_, forbidden) = graphql_as(
        url,
        Some(text(&customer, "accessToken")),
        GRANT,
        json!({ "userId": customer_id, "role": "ADMIN" }),
    )
    .await;
    assert_eq!(first_error_code(&forbidden), "FORBIDDEN");
    let (_, granted) = graphql_as(
        url,
        Some(text(&admin, "accessToken")),
        GRANT,
        json!({ "userId": customer_id, "role": "CATALOG_MANAGER" }),
    )
    .await;
    assert_eq!(
        data(&granted)["grantRole"]["roles"],
        json!(["CUSTOMER", "CATALOG_MANAGER"])
    );
    // The role is in the customer's next token.
    let refreshed = graphql(url, REFRESH, json!({ "refreshToken": text(&customer, "refreshToken") })).await;
    let token = text(&data(&refreshed)["refreshSession"], "accessToken").to_owned();
    assert_eq!(claims_of(&token)["roles"], json!(["CUSTOMER", "CATALOG_MANAGER"]));
    assert!(
        claims_of(&token)["permissions"]
            .as_array()
            .unwrap()
            .contains(&json!("catalog:write"))
    );

    const REVOKE: &str =
        "mutation($userId: ID!, $role: Role!) { revokeRole(userId: $userId, role: $role) { id roles } }";
    let admin_id = admin["user"]["id"].clone();
    let (_, last_admin) = graphql_as(
        url,
        Some(text(&admin, "accessToken")),
        REVOKE,
        json!({ "userId": admin_id, "role": "ADMIN" }),
    )
    .await;
    assert_eq!(
        first_error_code(&last_admin),
        "CONFLICT",
        "the last admin keeps the role"
    );
    let (_, revoked) = graphql_as(
        url,
        Some(text(&admin, "accessToken")),
        REVOKE,
        json!({ "userId": customer_id, "role": "CATALOG_MANAGER" }),
    )
    .await;
    assert_eq!(data(&revoked)["revokeRole"]["roles"], json!(["CUSTOMER"]));
    assert_refused(url, &token, ME).await;
}

#[tokio::test]
async fn a_user_lists_and_ends_their_own_sessions_only() {
    let system = spawn_system(Store::EmbeddedSqlite, false, &[]).await;
    let url = &system.router.url;
    let (email, first) = signed_in_customer(url).await;
    let second = sign_in(url, &email, PASSWORD).await;
    let (_, stranger) = signed_in_customer(url).await;
    const SESSIONS: &str = "query { mySessions { id current ipAddress } }";
    let (_, listed) = graphql_as(url, Some(text(&second, "accessToken")), SESSIONS, json!({})).await;
    let sessions = data(&listed)["mySessions"].as_array().unwrap().clone();
    assert_eq!(sessions.len(), 2);
    assert_eq!(sessions.iter().filter(|s| s["current"] == true).count(), 1);
    assert_eq!(
        sessions[0]["ipAddress"], "127.0.0.1",
        "the router reports the client address"
    );

    const REVOKE: &str = "mutation($id: ID!) { revokeSession(sessionId: $id) }";
    let (_, not_theirs) = graphql_as(
        url,
        Some(text(&stranger, "accessToken")),
        REVOKE,
        json!({ "id": text(&first, "sessionId") }),
    )
    .await;
    assert_eq!(first_error_code(&not_theirs), "NOT_FOUND");
    let (_, ended) = graphql_as(
        url,
        Some(text(&second, "accessToken")),
        REVOKE,
        json!({ "id": text(&first, "sessionId") }),
    )
    .await;
    assert_eq!(data(&ended)["revokeSession"], true);
    assert_refused(url, text(&first, "accessToken"), ME).await;

    let (_, all) = graphql_as(
        url,
        Some(text(&second, "accessToken")),
        "mutation { logoutAllSessions }",
        json!({}),
    )
    .await;
    assert_eq!(data(&all)["logoutAllSessions"], 1);
}
