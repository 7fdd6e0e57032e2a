//! GraphQL-params stage: automatic persisted queries (Apollo's APQ protocol).
//!
//! A client sends `extensions.persistedQuery { version: 1, sha256Hash }` without the
//! query; on a hit the router runs the stored document, on a miss it answers
//! `PERSISTED_QUERY_NOT_FOUND` and the client repeats the request with the query, which
//! is stored under its hash once the hash is checked. Storefront requests shrink to a
//! hash and a few variables.
//!
//! Storage is the shared cache (`vitrina_shared::cache`): Redis when `REDIS_URL` is set,
//! so every router instance shares the registrations, else a bounded in-process cache.
//! Entries live for `CACHE_TTL_SECONDS`; an expired one is simply registered again by the
//! client. Only POST bodies are inspected (GET requests pass through unchanged), and only
//! those that can name `persistedQuery` are parsed: most requests are not APQ, and a scan
//! for the member's name costs about a tenth of parsing the body (~25 ns against ~250 ns
//! for a storefront query), which Hive Router parses again anyway.

use hive_router::{
    GraphQLError,
    http::{Method, StatusCode},
    plugins::{
        hooks::on_graphql_params::{GraphQLParams, OnGraphQLParamsStartHookPayload, OnGraphQLParamsStartHookResult},
        plugin_trait::StartHookPayload,
    },
};
use memchr::memmem;
use serde::Deserialize;
use sha2::{Digest, Sha256};
use vitrina_shared::{
    AppError,
    cache::{Cache, CacheKey},
};

use super::Resources;

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PersistedQueriesConfig {}

/// The parts of a request body APQ looks at.
#[derive(Deserialize)]
struct Probe {
    query: Option<String>,
    extensions: Option<Extensions>,
}

#[derive(Deserialize)]
struct Extensions {
    #[serde(rename = "persistedQuery")]
    persisted_query: Option<PersistedQuery>,
}

#[derive(Deserialize)]
struct PersistedQuery {
    version: u32,
    #[serde(rename = "sha256Hash")]
    sha256_hash: String,
}

pub struct PersistedQueries {
    markers: ApqMarkers,
    documents: Cache,
    io: tokio::runtime::Handle,
}

/// The lowercase hex SHA-256 of `document`, as APQ clients compute it.
fn sha256_hex(document: &str) -> String {
    hex::encode(Sha256::digest(document.as_bytes()))
}

fn is_sha256_hex(hash: &str) -> bool {
    hash.len() == 64 && hash.bytes().all(|b| b.is_ascii_hexdigit())
}

/// Decides, without parsing, whether a JSON body can hold an `extensions.persistedQuery`
/// member: its name must appear, unless the body uses `\u` escapes, with which a key can
/// spell its characters (such a body is parsed in full). The searchers are built once.
struct ApqMarkers {
    member: memmem::Finder<'static>,
    escape: memmem::Finder<'static>,
}

impl ApqMarkers {
    fn new() -> Self {
        Self {
            member: memmem::Finder::new(b"persistedQuery"),
            escape: memmem::Finder::new(b"\\u"),
        }
    }

    fn may_name_persisted_query(&self, body: &[u8]) -> bool {
        self.member.find(body).is_some() || self.escape.find(body).is_some()
    }
}

fn key(hash: &str) -> CacheKey {
    CacheKey::new("apq", hash.to_ascii_lowercase())
}

/// What to do with one request.
#[derive(Debug, PartialEq, Eq)]
enum Step {
    /// Not an APQ request.
    PassThrough,
    /// Query and hash: check and store.
    Register {
        hash: String,
        query: String,
    },
    /// Hash only: look up.
    Lookup {
        hash: String,
    },
    Refuse {
        message: &'static str,
        code: &'static str,
    },
}

fn step_for(probe: Probe) -> Step {
    let Some(persisted) = probe.extensions.and_then(|extensions| extensions.persisted_query) else {
        return Step::PassThrough;
    };
    if persisted.version != 1 {
        return Step::Refuse {
            message: "PersistedQueryNotSupported",
            code: "PERSISTED_QUERY_NOT_SUPPORTED",
        };
    }
    if !is_sha256_hex(&persisted.sha256_hash) {
        return Step::Refuse {
            message: "persistedQuery.sha256Hash must be 64 hexadecimal characters",
            code: "BAD_USER_INPUT",
        };
    }
    match probe.query {
        Some(query) if sha256_hex(&query).eq_ignore_ascii_case(&persisted.sha256_hash) => Step::Register {
            hash: persisted.sha256_hash,
            query,
        },
        Some(_) => Step::Refuse {
            message: "provided sha does not match query",
            code: "PERSISTED_QUERY_HASH_MISMATCH",
        },
        None => Step::Lookup {
            hash: persisted.sha256_hash,
        },
    }
}

impl PersistedQueries {
    pub fn new(_config: PersistedQueriesConfig, resources: &Resources) -> Self {
        let documents = {
            let _entered = resources.io.enter();
            Cache::from_settings("router-apq", &resources.settings, resources.redis.clone())
        };
        Self {
            markers: ApqMarkers::new(),
            documents,
            io: resources.io.clone(),
        }
    }

    pub async fn on_graphql_params<'exec>(
        &self,
        payload: OnGraphQLParamsStartHookPayload<'exec>,
    ) -> OnGraphQLParamsStartHookResult<'exec> {
        if *payload.router_http_request.method != Method::POST || !self.markers.may_name_persisted_query(&payload.body)
        {
            return payload.proceed();
        }
        let Ok(probe) = serde_json::from_slice::<Probe>(&payload.body) else {
            // Hive Router reports malformed bodies itself.
            return payload.proceed();
        };
        match step_for(probe) {
            Step::PassThrough => payload.proceed(),
            Step::Refuse { message, code } => payload.end_with_graphql_error(
                GraphQLError::from_message_and_code(message, code),
                StatusCode::BAD_REQUEST,
            ),
            Step::Register { hash, query } => {
                let documents = self.documents.clone();
                let stored = self
                    .io
                    .spawn(async move { documents.get_or_load(key(&hash), || async move { Ok(query) }).await })
                    .await;
                if !matches!(stored, Ok(Ok(_))) {
                    // The request carries its query: it runs even if storing failed.
                    hive_router::tracing::warn!("could not store a persisted query");
                }
                payload.proceed()
            }
            Step::Lookup { hash } => {
                let documents = self.documents.clone();
                let found = self
                    .io
                    .spawn(async move {
                        documents
                            .get_or_load(key(&hash), || async {
                                Err::<String, _>(AppError::not_found("persisted query"))
                            })
                            .await
                    })
                    .await;
                match found {
                    Ok(Ok(query)) => match hive_router::sonic_rs::from_slice::<GraphQLParams>(&payload.body) {
                        Ok(mut params) => {
                            params.query = Some(query);
                            payload.with_graphql_params(params).proceed()
                        }
                        Err(_) => payload.proceed(),
                    },
                    // Apollo clients react to exactly this message and code by sending the query.
                    _ => payload.end_with_graphql_error(
                        GraphQLError::from_message_and_code("PersistedQueryNotFound", "PERSISTED_QUERY_NOT_FOUND"),
                        StatusCode::OK,
                    ),
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn probe(query: Option<&str>, version: u32, hash: &str) -> Probe {
        Probe {
            query: query.map(str::to_owned),
            extensions: Some(Extensions {
                persisted_query: Some(PersistedQuery {
                    version,
                    sha256_hash: hash.to_owned(),
                }),
            }),
        }
    }

    #[test]
    fn only_bodies_that_can_name_persisted_query_are_parsed() {
        let markers = ApqMarkers::new();
        assert!(!markers.may_name_persisted_query(br#"{"query":"{ me { id } }","variables":{"first":10}}"#));
        assert!(
            markers.may_name_persisted_query(br#"{"extensions":{"persistedQuery":{"version":1,"sha256Hash":"ab"}}}"#)
        );
        // `\u0051` is `Q`: the same member, spelt with an escape.
        let escaped = br#"{"extensions":{"persisted\u0051uery":{"version":1,"sha256Hash":"ab"}}}"#;
        assert!(markers.may_name_persisted_query(escaped));
        let probe: Probe = serde_json::from_slice(escaped).unwrap();
        assert!(
            probe
                .extensions
                .and_then(|extensions| extensions.persisted_query)
                .is_some()
        );
    }

    #[test]
    fn the_hash_is_apollos_lowercase_hex_sha256() {
        assert_eq!(
            sha256_hex("{ __typename }"),
            "7f56e67dd21ab3f30d1ff8b7bed08893f0a0db86449836189b361dd1e56ddb4b"
        );
    }

    #[test]
    fn a_query_is_stored_only_under_its_own_hash() {
        let query = "{ __typename }";
        let hash = sha256_hex(query);
        assert_eq!(
            step_for(probe(Some(query), 1, &hash)),
            Step::Register {
                hash: hash.clone(),
                query: query.to_owned()
            }
        );
        let other = sha256_hex("{ other }");
        assert!(matches!(
            step_for(probe(Some(query), 1, &other)),
            Step::Refuse {
                code: "PERSISTED_QUERY_HASH_MISMATCH",
                ..
            }
        ));
        assert_eq!(step_for(probe(None, 1, &hash)), Step::Lookup { hash });
        assert!(matches!(step_for(probe(None, 2, &other)), Step::Refuse { .. }));
        assert!(matches!(step_for(probe(None, 1, "xyz")), Step::Refuse { .. }));
        let plain = Probe {
            query: Some(query.into()),
            extensions: None,
        };
        assert_eq!(step_for(plain), Step::PassThrough);
    }
}
