//! `User`: the federation entity (`@key(fields: "id")`) other subgraphs reference, e.g.
//! an order's customer.
//!
//! Personal fields (email, roles, sign-up date) are shown to the user themself and to staff
//! whose permissions cover users or orders; anyone else resolving a `User` sees the name only.

use std::{collections::HashMap, sync::Arc};

use async_graphql::{Context, ErrorExtensions, ID, Object, Result, dataloader::DataLoader, dataloader::Loader};
use chrono::{DateTime, Utc};
use sea_orm::DatabaseConnection;
use uuid::Uuid;
use vitrina_shared::{
    AppError,
    auth::{Caller, Permission, Role},
    graphql::context_data,
};

use crate::users::{self, UserRecord};

pub struct User {
    record: UserRecord,
    /// Whether the caller may see the personal fields.
    disclosed: bool,
}

impl User {
    /// A user shown to someone entitled to all of it (themself, or an admin).
    pub fn disclosed(record: UserRecord) -> Self {
        Self {
            record,
            disclosed: true,
        }
    }

    /// A user shown to `caller`, disclosing personal fields only where allowed.
    pub fn for_caller(record: UserRecord, caller: &Caller) -> Self {
        let disclosed = caller.principal().is_some_and(|p| {
            p.user_id == record.account.id || p.may(Permission::UsersManage) || p.may(Permission::OrdersReadAny)
        });
        Self { record, disclosed }
    }

    fn personal<T>(&self, value: T) -> Result<T> {
        if self.disclosed {
            Ok(value)
        } else {
            Err(AppError::Forbidden("only the user and staff may see this field".to_owned()).extend())
        }
    }
}

#[Object]
impl User {
    async fn id(&self) -> ID {
        ID(self.record.account.id.to_string())
    }

    async fn name(&self) -> &str {
        &self.record.account.name
    }

    async fn email(&self) -> Result<&str> {
        self.personal(self.record.account.email.as_str())
    }

    async fn roles(&self) -> Result<Vec<Role>> {
        self.personal(self.record.roles.clone())
    }

    async fn created_at(&self) -> Result<DateTime<Utc>> {
        self.personal(self.record.account.created_at)
    }
}

/// Users by id, one query per batch.
pub struct UserLoader(pub DatabaseConnection);

impl Loader<Uuid> for UserLoader {
    type Value = UserRecord;
    type Error = Arc<AppError>;

    async fn load(&self, keys: &[Uuid]) -> std::result::Result<HashMap<Uuid, UserRecord>, Self::Error> {
        let found = users::find_many(&self.0, keys).await.map_err(Arc::new)?;
        Ok(found.into_iter().map(|user| (user.account.id, user)).collect())
    }
}

#[derive(Default)]
pub struct UserEntityQuery;

#[Object]
impl UserEntityQuery {
    /// Federation entity resolver.
    #[graphql(entity)]
    async fn find_user_by_id(&self, ctx: &Context<'_>, #[graphql(key)] id: ID) -> Result<Option<User>> {
        let Ok(id) = Uuid::parse_str(id.as_str()) else {
            return Ok(None);
        };
        let loader = context_data::<DataLoader<UserLoader>>(ctx)?;
        let caller = context_data::<Caller>(ctx)?;
        let record = loader.load_one(id).await.map_err(|error| error.extend())?;
        Ok(record.map(|record| User::for_caller(record, caller)))
    }
}
