//! async-graphql guards: the RBAC checks resolvers declare with `#[graphql(guard = …)]`.
//!
//! Operations use [`RuleGuard`], which reads the one rule table, so the table is both what
//! runs and what the permission-matrix test checks. [`RequireAuth`] and
//! [`RequirePermission`] are for fields below the root (e.g. a sensitive field of an
//! entity). All of them read the [`Caller`] the HTTP layer put into the context.

use async_graphql::{Context, ErrorExtensions, Guard, Result};

use super::{
    Caller, Permission,
    principal::forbidden,
    rules::{Access, Root, rule_for},
};
use crate::{AppError, graphql::context_data};

/// Any signed-in user.
pub struct RequireAuth;

impl Guard for RequireAuth {
    async fn check(&self, ctx: &Context<'_>) -> Result<()> {
        caller(ctx)?.require_user().map(drop).map_err(|error| error.extend())
    }
}

/// A signed-in user whose roles grant the permission.
pub struct RequirePermission(pub Permission);

impl Guard for RequirePermission {
    async fn check(&self, ctx: &Context<'_>) -> Result<()> {
        caller(ctx)?.require(self.0).map(drop).map_err(|error| error.extend())
    }
}

/// The rule the table holds for one root field.
pub struct RuleGuard {
    root: Root,
    field: &'static str,
}

impl RuleGuard {
    pub fn mutation(field: &'static str) -> Self {
        Self {
            root: Root::Mutation,
            field,
        }
    }

    pub fn query(field: &'static str) -> Self {
        Self {
            root: Root::Query,
            field,
        }
    }
}

impl Guard for RuleGuard {
    async fn check(&self, ctx: &Context<'_>) -> Result<()> {
        let Some(rule) = rule_for(self.root, self.field) else {
            // A programming error: refuse rather than guess, and make it loud.
            tracing::error!(root = ?self.root, field = self.field, "operation has no access rule; refusing it");
            return Err(AppError::Forbidden("this operation has no access rule".to_owned()).extend());
        };
        check_access(caller(ctx)?, rule.access).map_err(|error| error.extend())
    }
}

/// Whether `caller` passes `access`, as the error the client should see.
pub fn check_access(caller: &Caller, access: Access) -> Result<(), AppError> {
    match access {
        Access::Public => Ok(()),
        Access::Authenticated => caller.require_user().map(drop),
        Access::Permission(permission) => {
            let principal = caller.require_user()?;
            if principal.may(permission) {
                Ok(())
            } else {
                Err(forbidden(permission))
            }
        }
    }
}

fn caller<'a>(ctx: &Context<'a>) -> Result<&'a Caller> {
    context_data::<Caller>(ctx)
}
