//! The cart's resolvers, by SDL type and field name. Root fields call `service::Carts`;
//! the other fields read the parent value the root returned (`CartView`, `LineView`,
//! `Money`, `ProductRef`).

use std::any::Any;

use async_graphql::{
    ErrorExtensions as _, Value,
    dynamic::{FieldFuture, FieldValue, ResolverContext},
};
use uuid::Uuid;
use vitrina_shared::{AppError, auth::Caller, money::Money};

use super::Resolvers;
use crate::{
    service::Carts,
    view::{CartView, LineView},
};

/// A reference to the catalog's `Product` entity: the router fetches its fields.
struct ProductRef(Uuid);

/// Every resolver of `schema.graphql`.
pub fn cart_resolvers() -> Resolvers {
    Resolvers::default()
        .on("Query", "cart", |ctx| {
            FieldFuture::new(async move {
                let token = optional_string(&ctx, "guestToken")?;
                let cart = carts(&ctx)?
                    .cart(caller(&ctx)?, token.as_deref())
                    .await
                    .map_err(|error| error.extend())?;
                Ok(cart.map(FieldValue::owned_any))
            })
        })
        .on("Mutation", "addToCart", |ctx| {
            FieldFuture::new(async move {
                let token = optional_string(&ctx, "guestToken")?;
                let product_id = required_string(&ctx, "productId")?;
                let quantity = ctx.args.try_get("quantity")?.i64()?;
                let added = carts(&ctx)?.add(caller(&ctx)?, token.as_deref(), &product_id, quantity);
                cart_answer(added.await)
            })
        })
        .on("Mutation", "updateCartLine", |ctx| {
            FieldFuture::new(async move {
                let token = optional_string(&ctx, "guestToken")?;
                let line_id = required_string(&ctx, "lineId")?;
                let quantity = ctx.args.try_get("quantity")?.i64()?;
                let updated = carts(&ctx)?.update_line(caller(&ctx)?, token.as_deref(), &line_id, quantity);
                cart_answer(updated.await)
            })
        })
        .on("Mutation", "removeCartLine", |ctx| {
            FieldFuture::new(async move {
                let token = optional_string(&ctx, "guestToken")?;
                let line_id = required_string(&ctx, "lineId")?;
                cart_answer(
                    carts(&ctx)?
                        .remove_line(caller(&ctx)?, token.as_deref(), &line_id)
                        .await,
                )
            })
        })
        .on("Mutation", "clearCart", |ctx| {
            FieldFuture::new(async move {
                let token = optional_string(&ctx, "guestToken")?;
                cart_answer(carts(&ctx)?.clear(caller(&ctx)?, token.as_deref()).await)
            })
        })
        .on("Mutation", "mergeGuestCart", |ctx| {
            FieldFuture::new(async move {
                let token = required_string(&ctx, "guestToken")?;
                cart_answer(carts(&ctx)?.merge_guest(caller(&ctx)?, &token).await)
            })
        })
        .on("Cart", "id", |ctx| {
            value_of::<CartView>(ctx, |cart| Value::String(cart.doc().id.to_string()))
        })
        .on("Cart", "guestToken", |ctx| {
            value_of::<CartView>(ctx, |cart| {
                cart.guest_token()
                    .map_or(Value::Null, |token| Value::String(token.to_owned()))
            })
        })
        .on("Cart", "itemCount", |ctx| {
            value_of::<CartView>(ctx, |cart| Value::from(cart.doc().item_count()))
        })
        .on("Cart", "expiresAt", |ctx| {
            value_of::<CartView>(ctx, |cart| Value::String(cart.expires_at().to_rfc3339()))
        })
        .on("Cart", "lines", |ctx| {
            FieldFuture::new(async move {
                let lines = parent::<CartView>(&ctx)?
                    .lines()
                    .await
                    .map_err(|error| error.extend())?;
                Ok(Some(FieldValue::list(lines.into_iter().map(FieldValue::owned_any))))
            })
        })
        .on("Cart", "subtotal", |ctx| {
            FieldFuture::new(async move {
                let subtotal = parent::<CartView>(&ctx)?
                    .subtotal()
                    .await
                    .map_err(|error| error.extend())?;
                Ok(Some(FieldValue::owned_any(subtotal)))
            })
        })
        .on("Cart", "hasPriceChanges", |ctx| {
            FieldFuture::new(async move {
                let changed = parent::<CartView>(&ctx)?
                    .has_price_changes()
                    .await
                    .map_err(|error| error.extend())?;
                Ok(Some(Value::Boolean(changed)))
            })
        })
        .on("CartLine", "id", |ctx| {
            value_of::<LineView>(ctx, |line| Value::String(line.line.id.to_string()))
        })
        .on("CartLine", "product", |ctx| {
            FieldFuture::new(async move {
                let line = parent::<LineView>(&ctx)?;
                Ok(Some(FieldValue::owned_any(ProductRef(line.line.product_id))))
            })
        })
        .on("CartLine", "quantity", |ctx| {
            value_of::<LineView>(ctx, |line| Value::from(line.line.quantity))
        })
        .on("CartLine", "unitPrice", |ctx| money_of(ctx, |line| &line.unit_price))
        .on("CartLine", "addedUnitPrice", |ctx| {
            money_of(ctx, |line| &line.added_unit_price)
        })
        .on("CartLine", "lineTotal", |ctx| money_of(ctx, |line| &line.line_total))
        .on("CartLine", "priceChanged", |ctx| {
            value_of::<LineView>(ctx, |line| Value::Boolean(line.price_changed))
        })
        .on("CartLine", "available", |ctx| {
            value_of::<LineView>(ctx, |line| Value::Boolean(line.available))
        })
        .on("CartLine", "addedAt", |ctx| {
            value_of::<LineView>(ctx, |line| Value::String(line.line.added_at.to_rfc3339()))
        })
        .on("Money", "amount", |ctx| {
            value_of::<Money>(ctx, |money| Value::String(money.amount.to_string()))
        })
        .on("Money", "currencyCode", |ctx| {
            value_of::<Money>(ctx, |money| Value::String(money.currency_code.clone()))
        })
        .on("Product", "id", |ctx| {
            value_of::<ProductRef>(ctx, |product| Value::String(product.0.to_string()))
        })
}

fn parent<'a, T: Any>(ctx: &ResolverContext<'a>) -> async_graphql::Result<&'a T> {
    ctx.parent_value.try_downcast_ref::<T>()
}

/// A field computed from the parent value without waiting on anything.
fn value_of<'a, T: Any>(ctx: ResolverContext<'a>, read: impl FnOnce(&T) -> Value + Send + 'a) -> FieldFuture<'a> {
    FieldFuture::new(async move { Ok(Some(read(parent::<T>(&ctx)?))) })
}

fn money_of<'a>(ctx: ResolverContext<'a>, read: fn(&LineView) -> &Money) -> FieldFuture<'a> {
    FieldFuture::new(async move {
        let money = read(parent::<LineView>(&ctx)?).clone();
        Ok(Some(FieldValue::owned_any(money)))
    })
}

fn carts<'a>(ctx: &ResolverContext<'a>) -> async_graphql::Result<&'a Carts> {
    let context: &'a async_graphql::Context<'a> = ctx.ctx;
    context.data::<Carts>().map_err(|_| missing("Carts"))
}

fn caller<'a>(ctx: &ResolverContext<'a>) -> async_graphql::Result<&'a Caller> {
    let context: &'a async_graphql::Context<'a> = ctx.ctx;
    context.data::<Caller>().map_err(|_| missing("Caller"))
}

fn missing(what: &str) -> async_graphql::Error {
    AppError::internal(anyhow::anyhow!("the cart schema is missing context data {what}")).extend()
}

/// A mutation's answer: the cart, or its error with a code.
fn cart_answer<'a>(result: Result<CartView, AppError>) -> async_graphql::Result<Option<FieldValue<'a>>> {
    result
        .map(|cart| Some(FieldValue::owned_any(cart)))
        .map_err(|error| error.extend())
}

fn required_string(ctx: &ResolverContext<'_>, name: &str) -> async_graphql::Result<String> {
    Ok(ctx.args.try_get(name)?.string()?.to_owned())
}

fn optional_string(ctx: &ResolverContext<'_>, name: &str) -> async_graphql::Result<Option<String>> {
    match ctx.args.get(name) {
        Some(value) if !value.is_null() => Ok(Some(value.string()?.to_owned())),
        _ => Ok(None),
    }
}
