//! Who is calling: an anonymous shopper or a signed-in user, and what they may touch.
//!
//! [`Caller`] is put into every GraphQL request's context by the HTTP layer after the
//! access token (if any) has been validated. Ownership rules (PBAC: "a customer reads only
//! their own orders") are expressed with [`Principal::owns_or_may`].

use uuid::Uuid;

use super::{Permission, Role, access::permissions_of};
use crate::AppError;

/// The message of an access-rule refusal for anonymous callers (tests recognise it).
pub const SIGN_IN_REQUIRED: &str = "sign in to do this";
/// The start of the message of an access-rule refusal for lacking a permission.
pub const PERMISSION_REQUIRED: &str = "this needs the permission ";

/// A validated, signed-in user, as seen through one access token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Principal {
    pub user_id: Uuid,
    /// The server-side session the token belongs to; `logout` ends it.
    pub session_id: Uuid,
    pub roles: Vec<Role>,
    /// Derived from `roles` through the one role table, never read from the token.
    pub permissions: Vec<Permission>,
    /// The token's `jti`, for audit logs.
    pub token_id: String,
}

impl Principal {
    pub fn new(user_id: Uuid, session_id: Uuid, roles: Vec<Role>, token_id: String) -> Self {
        let permissions = permissions_of(&roles);
        Self {
            user_id,
            session_id,
            roles,
            permissions,
            token_id,
        }
    }

    pub fn may(&self, permission: Permission) -> bool {
        self.permissions.contains(&permission)
    }

    /// PBAC: the resource's owner, or anyone holding `permission` over all such resources.
    pub fn owns_or_may(&self, owner: Uuid, permission: Permission) -> bool {
        self.user_id == owner || self.may(permission)
    }
}

/// The caller of one request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Caller {
    Anonymous,
    User(Principal),
}

impl Caller {
    pub fn principal(&self) -> Option<&Principal> {
        match self {
            Caller::Anonymous => None,
            Caller::User(principal) => Some(principal),
        }
    }

    /// The signed-in user, or `UNAUTHENTICATED`.
    pub fn require_user(&self) -> Result<&Principal, AppError> {
        self.principal()
            .ok_or_else(|| AppError::Unauthenticated(SIGN_IN_REQUIRED.to_owned()))
    }

    /// The signed-in user holding `permission`, or `UNAUTHENTICATED` / `FORBIDDEN`.
    pub fn require(&self, permission: Permission) -> Result<&Principal, AppError> {
        let principal = self.require_user()?;
        if principal.may(permission) {
            Ok(principal)
        } else {
            Err(forbidden(permission))
        }
    }

    pub fn may(&self, permission: Permission) -> bool {
        self.principal().is_some_and(|principal| principal.may(permission))
    }
}

pub(crate) fn forbidden(permission: Permission) -> AppError {
    AppError::Forbidden(format!("{PERMISSION_REQUIRED}{permission}"))
}

/// Where a request came from, for sessions ("signed in from …") and login throttling.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ClientInfo {
    /// The client's address: the router's `x-forwarded-for` (which the router overwrites,
    /// so a client cannot choose it), else the peer address.
    pub ip: Option<String>,
    pub user_agent: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_customer_owns_their_own_resources_only() {
        let me = Principal::new(Uuid::now_v7(), Uuid::now_v7(), vec![Role::Customer], "t".into());
        assert!(me.owns_or_may(me.user_id, Permission::OrdersReadAny));
        assert!(!me.owns_or_may(Uuid::now_v7(), Permission::OrdersReadAny));
        let manager = Principal::new(Uuid::now_v7(), Uuid::now_v7(), vec![Role::OrderManager], "t".into());
        assert!(manager.owns_or_may(me.user_id, Permission::OrdersReadAny));
    }

    #[test]
    fn anonymous_callers_are_asked_to_sign_in_and_others_are_forbidden() {
        let error = Caller::Anonymous.require(Permission::CatalogWrite).unwrap_err();
        assert_eq!(error.code(), crate::ErrorCode::Unauthenticated);
        let customer = Caller::User(Principal::new(
            Uuid::now_v7(),
            Uuid::now_v7(),
            vec![Role::Customer],
            "t".into(),
        ));
        let error = customer.require(Permission::CatalogWrite).unwrap_err();
        assert_eq!(error.code(), crate::ErrorCode::Forbidden);
    }
}
