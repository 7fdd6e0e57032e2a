//! The cart use cases: find the caller's cart, check ownership, apply a change from
//! `model`, commit it atomically (retrying on a lost race), and answer a [`CartView`].

use std::{sync::Arc, time::Duration};

use chrono::Utc;
use rand::Rng as _;
use uuid::Uuid;
use vitrina_shared::{AppError, auth::Caller, events::OrderedLine};

use crate::{
    catalog_client::CatalogClient,
    model::{CartAddress, CartDoc, GuestToken, Owner},
    store::{CartStore, Change, Commit, StoreError, Write},
    view::CartView,
};

/// Attempts of one change before giving up with `CONFLICT`. Each lost race means another
/// change to the same cart committed, so this bounds the contention of one cart.
const MAX_ATTEMPTS: usize = 200;
/// How long a consumed event's id is remembered; redeliveries come far sooner.
const PROCESSED_EVENT_TTL: Duration = Duration::from_secs(7 * 24 * 3600);
/// A read renews a cart's life only once this much of it has passed since the last
/// renewal: a cart read many times a minute costs one write an hour instead of one per
/// read, and its expiry (days away) moves by at most this much.
const RENEW_AFTER: Duration = Duration::from_secs(3600);

#[derive(Clone)]
pub struct Carts {
    store: Arc<dyn CartStore>,
    catalog: CatalogClient,
}

/// The cart a request is about.
enum Target {
    Guest(GuestToken),
    User(Uuid),
}

impl Target {
    fn address(&self) -> CartAddress {
        match self {
            Target::Guest(token) => token.address(),
            Target::User(user_id) => CartAddress::User(*user_id),
        }
    }

    fn guest_token(&self) -> Option<String> {
        match self {
            Target::Guest(token) => Some(token.as_string()),
            Target::User(_) => None,
        }
    }
}

/// A cart as read from the store, with the etag its commit must match.
struct Loaded {
    etag: Option<String>,
    doc: CartDoc,
    /// Its remaining life when read (`None` for a cart not stored yet).
    time_to_live: Option<Duration>,
}

fn unavailable(error: StoreError) -> AppError {
    AppError::Unavailable(anyhow::Error::new(error).context("failed to reach the cart store"))
}

impl Carts {
    pub fn new(store: Arc<dyn CartStore>, catalog: CatalogClient) -> Self {
        Self { store, catalog }
    }

    pub fn store(&self) -> &Arc<dyn CartStore> {
        &self.store
    }

    /// The guest cart of `guest_token`, else the signed-in caller's; `None` when the
    /// caller has none yet.
    #[tracing::instrument(skip_all)]
    pub async fn cart(&self, caller: &Caller, guest_token: Option<&str>) -> Result<Option<CartView>, AppError> {
        let Some(target) = target(caller, guest_token)? else {
            return Ok(None);
        };
        let address = target.address();
        let Some(loaded) = self.load(&target).await? else {
            return match target {
                Target::Guest(_) => Err(AppError::not_found("cart")),
                Target::User(_) => Ok(None),
            };
        };
        // Reading is using: the cart lives on.
        let full_life = address.ttl();
        let life = match loaded.time_to_live {
            Some(left) if left + RENEW_AFTER > full_life => left,
            _ => {
                self.store.touch(&address.key(), full_life).await.map_err(unavailable)?;
                full_life
            }
        };
        Ok(Some(self.view_living(loaded.doc, &target, life)))
    }

    #[tracing::instrument(skip_all, fields(%product_id, quantity))]
    pub async fn add(
        &self,
        caller: &Caller,
        guest_token: Option<&str>,
        product_id: &str,
        quantity: i64,
    ) -> Result<CartView, AppError> {
        let quantity = quantity_argument(quantity)?;
        let product_id =
            Uuid::try_parse(product_id).map_err(|_| AppError::bad_input("productId", "not a product id"))?;
        // A customer's first add creates their cart, and an anonymous caller's a guest
        // cart; a guest token must name an existing cart.
        let (target, create) = match target(caller, guest_token)? {
            Some(Target::Guest(token)) => (Target::Guest(token), false),
            Some(user) => (user, true),
            None => (Target::Guest(GuestToken::generate()), true),
        };
        let product = self.catalog.product(product_id).await?;
        let doc = self
            .change(&target, create, |cart| cart.add(&product, quantity, Utc::now()))
            .await?;
        Ok(self.view(doc, &target))
    }

    #[tracing::instrument(skip_all, fields(%line_id, quantity))]
    pub async fn update_line(
        &self,
        caller: &Caller,
        guest_token: Option<&str>,
        line_id: &str,
        quantity: i64,
    ) -> Result<CartView, AppError> {
        let quantity = quantity_argument(quantity)?;
        let line_id = line_argument(line_id)?;
        let target = required_target(caller, guest_token)?;
        let current = self.load(&target).await?.ok_or_else(|| AppError::not_found("cart"))?;
        let product_id = current
            .doc
            .lines
            .iter()
            .find(|line| line.id == line_id)
            .map(|line| line.product_id)
            .ok_or_else(|| AppError::not_found("cart line"))?;
        let product = self.catalog.products(&[product_id]).await?.remove(&product_id);
        let doc = self
            .change(&target, false, |cart| {
                cart.set_quantity(line_id, quantity, product.as_ref(), Utc::now())
            })
            .await?;
        Ok(self.view(doc, &target))
    }

    #[tracing::instrument(skip_all, fields(%line_id))]
    pub async fn remove_line(
        &self,
        caller: &Caller,
        guest_token: Option<&str>,
        line_id: &str,
    ) -> Result<CartView, AppError> {
        let line_id = line_argument(line_id)?;
        let target = required_target(caller, guest_token)?;
        let doc = self
            .change(&target, false, |cart| cart.remove(line_id, Utc::now()))
            .await?;
        Ok(self.view(doc, &target))
    }

    #[tracing::instrument(skip_all)]
    pub async fn clear(&self, caller: &Caller, guest_token: Option<&str>) -> Result<CartView, AppError> {
        let target = required_target(caller, guest_token)?;
        // Clearing a customer's cart that does not exist yet simply creates an empty one.
        let create = matches!(target, Target::User(_));
        let doc = self
            .change(&target, create, |cart| {
                cart.clear(Utc::now());
                Ok(())
            })
            .await?;
        Ok(self.view(doc, &target))
    }

    /// Moves the guest cart into the signed-in caller's cart in one atomic commit: the
    /// guest cart is deleted only together with the write of the merged cart.
    #[tracing::instrument(skip_all)]
    pub async fn merge_guest(&self, caller: &Caller, guest_token: &str) -> Result<CartView, AppError> {
        let user_id = caller.require_user()?.user_id;
        let token = GuestToken::parse(guest_token)?;
        let guest_target = Target::Guest(token);
        let user_target = Target::User(user_id);
        for _ in 0..MAX_ATTEMPTS {
            let guest = self
                .load(&guest_target)
                .await?
                .ok_or_else(|| AppError::not_found("cart"))?;
            let mine = self.load_or_new(&user_target, true).await?;
            let mut merged = mine.doc.clone();
            let dropped = merged.absorb(&guest.doc, Utc::now())?;
            if dropped > 0 {
                tracing::info!(dropped, "units beyond the cart limits were not merged");
            }
            let writes = [
                self.put(&user_target, mine.etag, &merged)?,
                Write {
                    key: guest_target.address().key(),
                    expected: guest.etag,
                    change: Change::Delete,
                },
            ];
            if self.store.commit(&writes).await.map_err(unavailable)? == Commit::Applied {
                return Ok(self.view(merged, &user_target));
            }
            back_off().await;
        }
        Err(too_busy())
    }

    /// Takes an order's lines out of its customer's cart. The event's id is recorded in
    /// the same atomic commit as the change, so a redelivered event changes nothing (even
    /// after the customer added the same product again). Returns whether it applied.
    #[tracing::instrument(skip_all, fields(%event_id, %user_id))]
    pub async fn apply_order_placed(
        &self,
        event_id: Uuid,
        user_id: Uuid,
        ordered: &[OrderedLine],
    ) -> Result<bool, AppError> {
        let marker = format!("processed:{event_id}");
        let target = Target::User(user_id);
        for _ in 0..MAX_ATTEMPTS {
            if self.store.load(&marker).await.map_err(unavailable)?.is_some() {
                return Ok(false);
            }
            let mut writes = vec![Write {
                key: marker.clone(),
                expected: None,
                change: Change::Put {
                    bytes: b"OrderPlaced".to_vec(),
                    ttl: PROCESSED_EVENT_TTL,
                },
            }];
            if let Some(loaded) = self.load(&target).await? {
                let mut doc = loaded.doc;
                doc.remove_ordered(ordered, Utc::now());
                writes.push(self.put(&target, loaded.etag, &doc)?);
            }
            if self.store.commit(&writes).await.map_err(unavailable)? == Commit::Applied {
                return Ok(true);
            }
            back_off().await;
        }
        Err(too_busy())
    }

    /// Load, apply, commit; again on a lost race. `create`: start from an empty cart when
    /// there is none (else `NOT_FOUND`).
    async fn change(
        &self,
        target: &Target,
        create: bool,
        mut apply: impl FnMut(&mut CartDoc) -> Result<(), AppError>,
    ) -> Result<CartDoc, AppError> {
        for _ in 0..MAX_ATTEMPTS {
            let loaded = self.load_or_new(target, create).await?;
            let mut doc = loaded.doc;
            apply(&mut doc)?;
            let write = self.put(target, loaded.etag, &doc)?;
            if self.store.commit(&[write]).await.map_err(unavailable)? == Commit::Applied {
                return Ok(doc);
            }
            back_off().await;
        }
        Err(too_busy())
    }

    fn put(&self, target: &Target, expected: Option<String>, doc: &CartDoc) -> Result<Write, AppError> {
        let address = target.address();
        Ok(Write {
            key: address.key(),
            expected,
            change: Change::Put {
                bytes: serde_json::to_vec(doc).map_err(AppError::internal)?,
                ttl: address.ttl(),
            },
        })
    }

    async fn load_or_new(&self, target: &Target, create: bool) -> Result<Loaded, AppError> {
        if let Some(loaded) = self.load(target).await? {
            return Ok(loaded);
        }
        if !create {
            return Err(AppError::not_found("cart"));
        }
        let now = Utc::now();
        let doc = match target {
            Target::User(user_id) => CartDoc::new(Owner::User { user_id: *user_id }, now),
            Target::Guest(token) => CartDoc {
                id: token.cart_id,
                ..CartDoc::new(token.owner(), now)
            },
        };
        Ok(Loaded {
            etag: None,
            doc,
            time_to_live: None,
        })
    }

    /// The stored cart, if any, after checking the target may use it.
    async fn load(&self, target: &Target) -> Result<Option<Loaded>, AppError> {
        let Some(stored) = self.store.load(&target.address().key()).await.map_err(unavailable)? else {
            return Ok(None);
        };
        let doc: CartDoc = serde_json::from_slice(&stored.bytes)
            .map_err(|error| AppError::internal(anyhow::Error::new(error).context("a stored cart does not decode")))?;
        let allowed = match target {
            Target::Guest(token) => token.opens(&doc.owner),
            Target::User(user_id) => doc.owner == Owner::User { user_id: *user_id },
        };
        if !allowed {
            return Err(AppError::Forbidden("this cart belongs to someone else".to_owned()));
        }
        Ok(Some(Loaded {
            etag: Some(stored.etag),
            doc,
            time_to_live: stored.time_to_live,
        }))
    }

    /// A cart just written, which lives its full life from now.
    fn view(&self, doc: CartDoc, target: &Target) -> CartView {
        self.view_living(doc, target, target.address().ttl())
    }

    fn view_living(&self, doc: CartDoc, target: &Target, life: Duration) -> CartView {
        let expires_at = Utc::now() + life;
        CartView::new(doc, target.guest_token(), expires_at, self.catalog.clone())
    }
}

/// The guest token when one is given, else the signed-in caller; `None` for an
/// anonymous caller without a token.
fn target(caller: &Caller, guest_token: Option<&str>) -> Result<Option<Target>, AppError> {
    match guest_token {
        Some(token) => GuestToken::parse(token).map(|token| Some(Target::Guest(token))),
        None => Ok(caller.principal().map(|principal| Target::User(principal.user_id))),
    }
}

fn required_target(caller: &Caller, guest_token: Option<&str>) -> Result<Target, AppError> {
    target(caller, guest_token)?
        .ok_or_else(|| AppError::bad_input("guestToken", "sign in, or pass the guestToken of your cart"))
}

/// The `quantity` argument under the cart's quantity rule (out-of-range integers fail it).
fn quantity_argument(quantity: i64) -> Result<u32, AppError> {
    let quantity = u32::try_from(quantity).unwrap_or(u32::MAX);
    crate::model::check_quantity(quantity)?;
    Ok(quantity)
}

fn line_argument(line_id: &str) -> Result<Uuid, AppError> {
    Uuid::try_parse(line_id).map_err(|_| AppError::bad_input("lineId", "not a cart line id"))
}

fn too_busy() -> AppError {
    AppError::Conflict("the cart is being changed by many requests at once; please retry".to_owned())
}

/// A short random pause after a lost race, so racing writers spread out.
async fn back_off() {
    let pause = rand::rng().random_range(0..=2_000);
    tokio::time::sleep(Duration::from_micros(pause)).await;
}
