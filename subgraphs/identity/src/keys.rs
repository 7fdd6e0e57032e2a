//! identity's signing keys: one active Ed25519 key signs, retired keys stay published.
//!
//! Keys live in the database, so every identity instance signs with the same key and a
//! restart does not sign everybody out. A key older than the rotation period is retired
//! and replaced; a retired key remains in the JWKS until the last token it signed has
//! expired (access-token lifetime plus clock skew), then it is deleted.

use std::{
    collections::HashMap,
    sync::{Arc, RwLock},
    time::Duration,
};

use anyhow::Context as _;
use base64::{
    Engine,
    engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD},
};
use chrono::{DateTime, Utc};
use ed25519_dalek::{
    SigningKey,
    pkcs8::{DecodePrivateKey, EncodePrivateKey},
};
use identity_entity::signing_key;
use jsonwebtoken::{
    DecodingKey, EncodingKey,
    jwk::{
        AlgorithmParameters, CommonParameters, EllipticCurve, Jwk, JwkSet, KeyAlgorithm, OctetKeyPairParameters,
        OctetKeyPairType, PublicKeyUse,
    },
};
use sea_orm::{
    ActiveValue::Set, ColumnTrait, DatabaseConnection, EntityTrait, QueryFilter, QueryOrder, TransactionTrait,
};
use vitrina_shared::auth::keys::{KeyResolver, decoding_keys};

/// How long keys live and stay published.
#[derive(Debug, Clone, Copy)]
pub struct KeyPolicy {
    /// Age at which the active key is replaced.
    pub rotation: Duration,
    /// How long a retired key stays published: the longest a token it signed can be valid.
    pub publish_after_retirement: Duration,
}

/// The key that signs new tokens.
#[derive(Clone)]
pub struct ActiveKey {
    pub kid: String,
    pub encoding: Arc<EncodingKey>,
}

struct Snapshot {
    active: ActiveKey,
    jwks: JwkSet,
    decoding: HashMap<String, Arc<DecodingKey>>,
}

pub struct KeyRing {
    db: DatabaseConnection,
    policy: KeyPolicy,
    snapshot: RwLock<Arc<Snapshot>>,
}

impl KeyRing {
    /// Loads the keys, creating or rotating the active one when needed.
    pub async fn load(db: DatabaseConnection, policy: KeyPolicy) -> anyhow::Result<Self> {
        let snapshot = refresh_keys(&db, policy, false).await?;
        Ok(Self {
            db,
            policy,
            snapshot: RwLock::new(Arc::new(snapshot)),
        })
    }

    /// Re-reads the keys (another instance may have rotated) and rotates when due.
    pub async fn refresh(&self) -> anyhow::Result<()> {
        let snapshot = refresh_keys(&self.db, self.policy, false).await?;
        self.replace(snapshot);
        Ok(())
    }

    /// Retires the active key now and starts signing with a new one.
    pub async fn rotate_now(&self) -> anyhow::Result<()> {
        let snapshot = refresh_keys(&self.db, self.policy, true).await?;
        self.replace(snapshot);
        Ok(())
    }

    fn replace(&self, snapshot: Snapshot) {
        match self.snapshot.write() {
            Ok(mut current) => *current = Arc::new(snapshot),
            Err(poisoned) => *poisoned.into_inner() = Arc::new(snapshot),
        }
    }

    fn current(&self) -> Arc<Snapshot> {
        match self.snapshot.read() {
            Ok(current) => current.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        }
    }

    pub fn active(&self) -> ActiveKey {
        self.current().active.clone()
    }

    /// The public keys to publish at `/.well-known/jwks.json`.
    pub fn jwks(&self) -> JwkSet {
        self.current().jwks.clone()
    }
}

#[async_trait::async_trait]
impl KeyResolver for KeyRing {
    async fn resolve(&self, kid: &str) -> anyhow::Result<Option<Arc<DecodingKey>>> {
        Ok(self.current().decoding.get(kid).cloned())
    }
}

async fn refresh_keys(db: &DatabaseConnection, policy: KeyPolicy, force_rotation: bool) -> anyhow::Result<Snapshot> {
    let now = Utc::now();
    let transaction = db.begin().await.context("failed to start a key transaction")?;
    let active = signing_key::Entity::find()
        .filter(signing_key::Column::RetiredAt.is_null())
        .order_by_desc(signing_key::Column::CreatedAt)
        .one(&transaction)
        .await
        .context("failed to read the active signing key")?;
    let rotation = chrono::Duration::from_std(policy.rotation).unwrap_or(chrono::Duration::MAX);
    let due = match &active {
        None => true,
        Some(key) => force_rotation || now - key.created_at >= rotation,
    };
    if due {
        signing_key::Entity::update_many()
            .col_expr(signing_key::Column::RetiredAt, sea_orm::sea_query::Expr::value(now))
            .filter(signing_key::Column::RetiredAt.is_null())
            .exec(&transaction)
            .await
            .context("failed to retire the signing key")?;
        let (kid, created) = new_key(now)?;
        tracing::info!(
            kid,
            "new signing key; the previous one stays published until its tokens expire"
        );
        signing_key::Entity::insert(created)
            .exec(&transaction)
            .await
            .context("failed to store a new signing key")?;
    }
    let publish = chrono::Duration::from_std(policy.publish_after_retirement).unwrap_or(chrono::Duration::MAX);
    signing_key::Entity::delete_many()
        .filter(signing_key::Column::RetiredAt.lt(now - publish))
        .exec(&transaction)
        .await
        .context("failed to delete expired signing keys")?;
    let keys = signing_key::Entity::find()
        .order_by_desc(signing_key::Column::CreatedAt)
        .all(&transaction)
        .await
        .context("failed to read the signing keys")?;
    transaction
        .commit()
        .await
        .context("failed to commit the signing keys")?;
    snapshot(&keys)
}

fn new_key(now: DateTime<Utc>) -> anyhow::Result<(String, signing_key::ActiveModel)> {
    let signing = SigningKey::from_bytes(&rand::random::<[u8; 32]>());
    let der = signing
        .to_pkcs8_der()
        .map_err(|error| anyhow::anyhow!("failed to encode a signing key: {error}"))?;
    let kid = format!("ed25519-{}", uuid::Uuid::now_v7().simple());
    let model = signing_key::ActiveModel {
        kid: Set(kid.clone()),
        private_key: Set(STANDARD.encode(der.as_bytes())),
        created_at: Set(now),
        retired_at: Set(None),
    };
    Ok((kid, model))
}

fn snapshot(keys: &[signing_key::Model]) -> anyhow::Result<Snapshot> {
    let mut jwks = JwkSet { keys: Vec::new() };
    let mut active = None;
    for key in keys {
        let der = STANDARD
            .decode(&key.private_key)
            .with_context(|| format!("signing key {} is not base64", key.kid))?;
        let public = SigningKey::from_pkcs8_der(&der)
            .map_err(|error| anyhow::anyhow!("signing key {} is not an Ed25519 key: {error}", key.kid))?
            .verifying_key();
        let encoding = EncodingKey::from_ed_der(&der);
        jwks.keys.push(Jwk {
            common: CommonParameters {
                public_key_use: Some(PublicKeyUse::Signature),
                key_algorithm: Some(KeyAlgorithm::EdDSA),
                key_id: Some(key.kid.clone()),
                ..Default::default()
            },
            algorithm: AlgorithmParameters::OctetKeyPair(OctetKeyPairParameters {
                key_type: OctetKeyPairType::OctetKeyPair,
                curve: EllipticCurve::Ed25519,
                x: URL_SAFE_NO_PAD.encode(public.as_bytes()),
            }),
        });
        if key.retired_at.is_none() && active.is_none() {
            active = Some(ActiveKey {
                kid: key.kid.clone(),
                encoding: Arc::new(encoding),
            });
        }
    }
    let active = active.context("no active signing key")?;
    let decoding = decoding_keys(&jwks);
    Ok(Snapshot { active, jwks, decoding })
}
