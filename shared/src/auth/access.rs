//! Roles, permissions, and the one table that maps roles to permissions (RBAC).
//!
//! Everything that decides "may this caller do X" reads [`Role::permissions`]; tokens
//! carry roles, and permissions are always derived from this table, so changing it takes
//! effect everywhere at the next deployment without re-issuing tokens.

use std::fmt;

use serde::{Deserialize, Serialize};

/// A role a user holds. Every registered user is a `CUSTOMER`; the others are granted by
/// an administrator (`grantRole`).
#[derive(async_graphql::Enum, Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum Role {
    Customer,
    CatalogManager,
    OrderManager,
    Admin,
}

/// Something a caller may be allowed to do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Permission {
    /// Place orders and pay for them (own orders only).
    OrdersPlace,
    /// Create, edit, publish and delete products and categories; see unpublished ones.
    CatalogWrite,
    /// Adjust stock levels.
    InventoryWrite,
    /// Read every customer's orders.
    OrdersReadAny,
    /// Move any order through its lifecycle (fulfil, cancel, refund).
    OrdersManage,
    /// List users, grant and revoke roles.
    UsersManage,
}

impl Role {
    pub const ALL: [Role; 4] = [Role::Customer, Role::CatalogManager, Role::OrderManager, Role::Admin];

    /// The role → permission table.
    pub fn permissions(self) -> &'static [Permission] {
        use Permission::*;
        match self {
            Role::Customer => &[OrdersPlace],
            Role::CatalogManager => &[CatalogWrite, InventoryWrite],
            Role::OrderManager => &[OrdersReadAny, OrdersManage, InventoryWrite],
            Role::Admin => &[
                OrdersPlace,
                CatalogWrite,
                InventoryWrite,
                OrdersReadAny,
                OrdersManage,
                UsersManage,
            ],
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Role::Customer => "CUSTOMER",
            Role::CatalogManager => "CATALOG_MANAGER",
            Role::OrderManager => "ORDER_MANAGER",
            Role::Admin => "ADMIN",
        }
    }

    pub fn parse(value: &str) -> Option<Role> {
        Role::ALL.into_iter().find(|role| role.as_str() == value)
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl Permission {
    pub const ALL: [Permission; 6] = [
        Permission::OrdersPlace,
        Permission::CatalogWrite,
        Permission::InventoryWrite,
        Permission::OrdersReadAny,
        Permission::OrdersManage,
        Permission::UsersManage,
    ];

    /// The name tokens and documentation use.
    pub fn as_str(self) -> &'static str {
        match self {
            Permission::OrdersPlace => "orders:place",
            Permission::CatalogWrite => "catalog:write",
            Permission::InventoryWrite => "inventory:write",
            Permission::OrdersReadAny => "orders:read:any",
            Permission::OrdersManage => "orders:manage",
            Permission::UsersManage => "users:manage",
        }
    }

    /// Whether any of `roles` grants this permission.
    pub fn granted_by(self, roles: &[Role]) -> bool {
        roles.iter().any(|role| role.permissions().contains(&self))
    }
}

impl fmt::Display for Permission {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The permissions `roles` grant together, sorted and without repeats.
pub fn permissions_of(roles: &[Role]) -> Vec<Permission> {
    let mut permissions: Vec<Permission> = roles
        .iter()
        .flat_map(|role| role.permissions().iter().copied())
        .collect();
    permissions.sort();
    permissions.dedup();
    permissions
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_admin_holds_every_permission() {
        assert_eq!(permissions_of(&[Role::Admin]), Permission::ALL.to_vec());
    }

    #[test]
    fn a_customer_can_only_place_orders() {
        assert_eq!(permissions_of(&[Role::Customer]), vec![Permission::OrdersPlace]);
        assert!(!Permission::CatalogWrite.granted_by(&[Role::Customer]));
    }

    #[test]
    fn role_names_round_trip() {
        for role in Role::ALL {
            assert_eq!(Role::parse(role.as_str()), Some(role));
            assert_eq!(serde_json::to_value(role).unwrap(), role.as_str());
        }
    }
}
