//! The access rule of every mutation and every restricted query, in one table.
//!
//! Resolvers do not spell out their own requirement: they carry a [`RuleGuard`] naming
//! their field, and the guard looks the rule up here. The permission-matrix test reads the
//! same table, calls every mutation of the composed supergraph as every role and as an
//! anonymous caller, and fails for a mutation that has no row here. A field without a row
//! is refused at run time as well (and logged), never silently allowed.
//!
//! [`RuleGuard`]: super::RuleGuard

use super::{Permission, Role};

/// Which root type a rule's field belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Root {
    Query,
    Mutation,
}

/// What a caller needs to use an operation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    /// Anyone, signed in or not.
    Public,
    /// Any signed-in user; what they may touch is then decided by ownership.
    Authenticated,
    /// A signed-in user whose roles grant this permission.
    Permission(Permission),
}

/// One row of [`OPERATION_RULES`].
#[derive(Debug, Clone, Copy)]
pub struct OperationRule {
    /// The subgraph that serves the field (for documentation and test reports).
    pub subgraph: &'static str,
    pub root: Root,
    pub field: &'static str,
    pub access: Access,
}

const fn mutation(subgraph: &'static str, field: &'static str, access: Access) -> OperationRule {
    OperationRule {
        subgraph,
        root: Root::Mutation,
        field,
        access,
    }
}

const fn query(subgraph: &'static str, field: &'static str, access: Access) -> OperationRule {
    OperationRule {
        subgraph,
        root: Root::Query,
        field,
        access,
    }
}

use Access::{Authenticated, Public};

/// The table. Every `Mutation` field of the supergraph has a row; `Query` fields have one
/// when they are not public.
pub const OPERATION_RULES: &[OperationRule] = &[
    // identity
    mutation("identity", "register", Public),
    mutation("identity", "login", Public),
    mutation("identity", "refreshSession", Public),
    mutation("identity", "logout", Authenticated),
    mutation("identity", "logoutAllSessions", Authenticated),
    mutation("identity", "revokeSession", Authenticated),
    mutation("identity", "grantRole", Access::Permission(Permission::UsersManage)),
    mutation("identity", "revokeRole", Access::Permission(Permission::UsersManage)),
    query("identity", "me", Authenticated),
    query("identity", "mySessions", Authenticated),
    query("identity", "users", Access::Permission(Permission::UsersManage)),
    mutation("catalog", "createProduct", Access::Permission(Permission::CatalogWrite)),
    mutation("catalog", "updateProduct", Access::Permission(Permission::CatalogWrite)),
    mutation(
        "catalog",
        "publishProduct",
        Access::Permission(Permission::CatalogWrite),
    ),
    mutation(
        "catalog",
        "archiveProduct",
        Access::Permission(Permission::CatalogWrite),
    ),
    mutation("catalog", "deleteProduct", Access::Permission(Permission::CatalogWrite)),
    mutation("catalog", "adjustStock", Access::Permission(Permission::InventoryWrite)),
    mutation(
        "catalog",
        "createCategory",
        Access::Permission(Permission::CatalogWrite),
    ),
    mutation(
        "catalog",
        "updateCategory",
        Access::Permission(Permission::CatalogWrite),
    ),
    mutation(
        "catalog",
        "deleteCategory",
        Access::Permission(Permission::CatalogWrite),
    ),
    // cart: guests may shop; which cart a caller may touch is decided by ownership (the
    // signed-in user's own cart, or the cart whose guest token the caller holds).
    mutation("cart", "addToCart", Public),
    mutation("cart", "updateCartLine", Public),
    mutation("cart", "removeCartLine", Public),
    mutation("cart", "clearCart", Public),
    mutation("cart", "mergeGuestCart", Authenticated),
    mutation("orders", "checkout", Access::Permission(Permission::OrdersPlace)),
    // Ownership (or `orders:manage`) is checked against the order itself.
    mutation("orders", "capturePayment", Authenticated),
    mutation("orders", "cancelOrder", Authenticated),
    mutation("orders", "refundOrder", Access::Permission(Permission::OrdersManage)),
    mutation("orders", "fulfillOrder", Access::Permission(Permission::OrdersManage)),
    query("orders", "order", Authenticated),
    query("orders", "myOrders", Authenticated),
    query("orders", "orders", Access::Permission(Permission::OrdersReadAny)),
];

/// The rule of `root.field`, if the table has one.
pub fn rule_for(root: Root, field: &str) -> Option<&'static OperationRule> {
    OPERATION_RULES
        .iter()
        .find(|rule| rule.root == root && rule.field == field)
}

impl Access {
    /// Whether a caller with `roles` (`None`: anonymous) passes.
    pub fn allows(self, roles: Option<&[Role]>) -> bool {
        match (self, roles) {
            (Access::Public, _) => true,
            (_, None) => false,
            (Access::Authenticated, Some(_)) => true,
            (Access::Permission(permission), Some(roles)) => permission.granted_by(roles),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn no_field_has_two_rules() {
        for (index, rule) in OPERATION_RULES.iter().enumerate() {
            let duplicate = OPERATION_RULES[index + 1..]
                .iter()
                .any(|other| other.root == rule.root && other.field == rule.field);
            assert!(!duplicate, "{:?}.{} has two rules", rule.root, rule.field);
        }
    }

    #[test]
    fn anonymous_callers_pass_only_public_rules() {
        assert!(Access::Public.allows(None));
        assert!(!Access::Authenticated.allows(None));
        assert!(!Access::Permission(Permission::UsersManage).allows(None));
        assert!(Access::Authenticated.allows(Some(&[Role::Customer])));
        assert!(!Access::Permission(Permission::UsersManage).allows(Some(&[Role::CatalogManager])));
        assert!(Access::Permission(Permission::UsersManage).allows(Some(&[Role::Admin])));
    }
}
