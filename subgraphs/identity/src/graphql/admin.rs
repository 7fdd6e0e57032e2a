//! Administration: listing users and granting or revoking roles (`users:manage`).

use std::sync::Arc;

use async_graphql::{
    Context, ErrorExtensions, ID, Object, Result, ResultExt, SimpleObject,
    connection::{Connection, CursorType, Edge, OpaqueCursor},
};
use uuid::Uuid;
use vitrina_shared::{
    AppError,
    auth::{Caller, Role, RuleGuard},
    graphql::context_data,
    pagination::page_request,
};

use super::user::User;
use crate::{accounts::Accounts, users};

#[derive(SimpleObject)]
pub struct UserConnectionFields {
    /// How many users exist in all.
    total_count: u64,
}

pub type UserConnection = Connection<OpaqueCursor<Uuid>, User, UserConnectionFields>;

#[derive(Default)]
pub struct AdminQuery;

#[Object]
impl AdminQuery {
    /// Every user, oldest first, at most 100 per page.
    #[graphql(guard = "RuleGuard::query(\"users\")")]
    async fn users(&self, ctx: &Context<'_>, first: Option<i32>, after: Option<String>) -> Result<UserConnection> {
        let accounts = context_data::<Arc<Accounts>>(ctx)?;
        let page = page_request(first, None).extend()?;
        let after = after
            .map(|cursor| {
                OpaqueCursor::<Uuid>::decode_cursor(&cursor)
                    .map(|decoded| decoded.0)
                    .map_err(|_| AppError::bad_input("after", "`after` is not a valid cursor").extend())
            })
            .transpose()?;
        let db = accounts.database();
        let (rows, has_next) = users::page(db, after, page.size).await.extend()?;
        let total_count = users::count(db).await.extend()?;
        let mut connection =
            Connection::with_additional_fields(after.is_some(), has_next, UserConnectionFields { total_count });
        connection.edges.extend(
            rows.into_iter()
                .map(|user| Edge::new(OpaqueCursor(user.account.id), User::disclosed(user))),
        );
        Ok(connection)
    }
}

#[derive(Default)]
pub struct AdminMutation;

fn user_id(id: &ID) -> Result<Uuid> {
    Uuid::parse_str(id.as_str()).map_err(|_| AppError::bad_input("userId", "`userId` is not a valid id").extend())
}

#[Object]
impl AdminMutation {
    /// Gives a user a role; it is in their tokens from their next sign-in or refresh.
    #[graphql(guard = "RuleGuard::mutation(\"grantRole\")")]
    async fn grant_role(&self, ctx: &Context<'_>, user_id: ID, role: Role) -> Result<User> {
        let actor = context_data::<Caller>(ctx)?.require_user().extend()?;
        let accounts = context_data::<Arc<Accounts>>(ctx)?;
        let user = accounts
            .grant_role(actor, self::user_id(&user_id)?, role)
            .await
            .extend()?;
        Ok(User::disclosed(user))
    }

    /// Takes a role away and ends the user's sessions, so it stops applying at once.
    #[graphql(guard = "RuleGuard::mutation(\"revokeRole\")")]
    async fn revoke_role(&self, ctx: &Context<'_>, user_id: ID, role: Role) -> Result<User> {
        let actor = context_data::<Caller>(ctx)?.require_user().extend()?;
        let accounts = context_data::<Arc<Accounts>>(ctx)?;
        let user = accounts
            .revoke_role(actor, self::user_id(&user_id)?, role)
            .await
            .extend()?;
        Ok(User::disclosed(user))
    }
}
