//! Schema-first: the cart's API is `schema.graphql`; this module turns that file into an
//! async-graphql dynamic schema at start-up.
//!
//! Every field of every object type in the SDL is bound to the resolver registered for
//! `Type.field` ([`Resolvers`]). Start-up fails, naming the culprit, when a field has no
//! resolver, when a resolver has no field, or when the SDL uses something this builder
//! does not translate; so the file and the code cannot drift apart silently. `Mutation`
//! fields are also bound to their row of the shared access-rule table, as the code-first
//! subgraphs' `RuleGuard` does.

mod resolvers;
mod translate;

use std::{collections::BTreeMap, sync::Arc};

use async_graphql::dynamic::{FieldFuture, ResolverContext, Schema};

pub use resolvers::cart_resolvers;

/// A field resolver, as the dynamic schema calls it.
pub type Resolve = Arc<dyn for<'a> Fn(ResolverContext<'a>) -> FieldFuture<'a> + Send + Sync>;

/// Resolvers by `(type, field)`.
#[derive(Default, Clone)]
pub struct Resolvers {
    by_field: BTreeMap<(String, String), Resolve>,
}

impl Resolvers {
    /// Binds `resolve` to `type_name.field`.
    pub fn on(
        mut self,
        type_name: &str,
        field: &str,
        resolve: impl for<'a> Fn(ResolverContext<'a>) -> FieldFuture<'a> + Send + Sync + 'static,
    ) -> Self {
        self.by_field
            .insert((type_name.to_owned(), field.to_owned()), Arc::new(resolve));
        self
    }

    /// Removes a binding, to break the schema on purpose.
    #[cfg(test)]
    pub fn without(mut self, type_name: &str, field: &str) -> Self {
        self.by_field.remove(&(type_name.to_owned(), field.to_owned()));
        self
    }
}

/// Why the SDL and the code do not make a schema.
#[derive(Debug, thiserror::Error)]
pub enum SchemaError {
    #[error("the cart SDL does not parse: {0}")]
    Parse(String),
    #[error("field `{type_name}.{field}` is in the SDL but has no resolver")]
    MissingResolver { type_name: String, field: String },
    #[error("resolver `{type_name}.{field}` has no field in the SDL")]
    UnusedResolver { type_name: String, field: String },
    #[error("mutation `{0}` has no row in the access-rule table")]
    MissingAccessRule(String),
    #[error("the cart SDL uses {0}, which the schema builder does not support")]
    Unsupported(String),
    #[error("the dynamic schema is invalid: {0}")]
    Invalid(String),
}

/// Builds the dynamic schema of `sdl` with `resolvers`; `data` is added to every request.
pub fn build(
    sdl: &str,
    resolvers: Resolvers,
    configure: impl FnOnce(async_graphql::dynamic::SchemaBuilder) -> async_graphql::dynamic::SchemaBuilder,
) -> Result<Schema, SchemaError> {
    translate::build(sdl, resolvers, configure)
}
