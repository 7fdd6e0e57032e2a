//! Users and their roles in the database.

use std::collections::HashMap;

use chrono::Utc;
use identity_entity::{user_account, user_role};
use sea_orm::{
    ActiveValue::Set, ColumnTrait, ConnectionTrait, DatabaseConnection, EntityTrait, PaginatorTrait, QueryFilter,
    QueryOrder, QuerySelect, TransactionTrait,
};
use uuid::Uuid;
use vitrina_shared::{AppError, auth::Role, db::is_unique_violation};

/// A user with their roles.
#[derive(Debug, Clone)]
pub struct UserRecord {
    pub account: user_account::Model,
    pub roles: Vec<Role>,
}

const MAX_EMAIL_CHARS: usize = 254;
const MAX_NAME_CHARS: usize = 100;

/// Trimmed, lower-cased, and plausibly deliverable (`local@domain.tld`).
pub fn normalize_email(field: &str, raw: &str) -> Result<String, AppError> {
    let email = raw.trim().to_lowercase();
    let valid = email.chars().count() <= MAX_EMAIL_CHARS
        && !email.chars().any(char::is_whitespace)
        && email.split_once('@').is_some_and(|(local, domain)| {
            !local.is_empty()
                && !domain.contains('@')
                && domain.contains('.')
                && !domain.starts_with('.')
                && !domain.ends_with('.')
        });
    if valid {
        Ok(email)
    } else {
        Err(AppError::bad_input(field, "enter a valid email address"))
    }
}

pub fn validate_name(field: &str, raw: &str) -> Result<String, AppError> {
    let name = raw.trim();
    match name.chars().count() {
        0 => Err(AppError::bad_input(field, "name must not be empty")),
        n if n > MAX_NAME_CHARS => Err(AppError::bad_input(
            field,
            format!("name must have at most {MAX_NAME_CHARS} characters"),
        )),
        _ if name.chars().any(char::is_control) => {
            Err(AppError::bad_input(field, "name must not contain control characters"))
        }
        _ => Ok(name.to_owned()),
    }
}

/// Creates a user holding `roles`, in one transaction. A taken email is a `CONFLICT`.
pub async fn create(
    db: &DatabaseConnection,
    email: String,
    name: String,
    password_hash: String,
    roles: &[Role],
) -> Result<UserRecord, AppError> {
    let now = Utc::now();
    let account = user_account::Model {
        id: Uuid::now_v7(),
        email,
        name,
        password_hash,
        created_at: now,
        updated_at: now,
    };
    let transaction = db.begin().await?;
    let inserted = user_account::Entity::insert(user_account::ActiveModel {
        id: Set(account.id),
        email: Set(account.email.clone()),
        name: Set(account.name.clone()),
        password_hash: Set(account.password_hash.clone()),
        created_at: Set(now),
        updated_at: Set(now),
    })
    .exec(&transaction)
    .await;
    if let Err(error) = inserted {
        return Err(if is_unique_violation(&error) {
            AppError::Conflict("an account with this email already exists".to_owned())
        } else {
            error.into()
        });
    }
    for role in roles {
        insert_role(&transaction, account.id, *role).await?;
    }
    transaction.commit().await?;
    Ok(UserRecord {
        account,
        roles: roles.to_vec(),
    })
}

async fn insert_role(db: &impl ConnectionTrait, user_id: Uuid, role: Role) -> Result<(), AppError> {
    user_role::Entity::insert(user_role::ActiveModel {
        user_id: Set(user_id),
        role: Set(role.as_str().to_owned()),
        granted_at: Set(Utc::now()),
    })
    .on_conflict_do_nothing_on([user_role::Column::UserId, user_role::Column::Role])
    .exec(db)
    .await?;
    Ok(())
}

pub async fn find_by_email(db: &DatabaseConnection, email: &str) -> Result<Option<UserRecord>, AppError> {
    let account = user_account::Entity::find()
        .filter(user_account::Column::Email.eq(email))
        .one(db)
        .await?;
    with_roles(db, account).await
}

pub async fn find_by_id(db: &DatabaseConnection, id: Uuid) -> Result<Option<UserRecord>, AppError> {
    let account = user_account::Entity::find_by_id(id).one(db).await?;
    with_roles(db, account).await
}

async fn with_roles(
    db: &DatabaseConnection,
    account: Option<user_account::Model>,
) -> Result<Option<UserRecord>, AppError> {
    let Some(account) = account else {
        return Ok(None);
    };
    let mut roles = roles_of(db, &[account.id]).await?;
    Ok(Some(UserRecord {
        roles: roles.remove(&account.id).unwrap_or_default(),
        account,
    }))
}

/// Roles of many users in one query (DataLoader, listings).
pub async fn roles_of(db: &DatabaseConnection, user_ids: &[Uuid]) -> Result<HashMap<Uuid, Vec<Role>>, AppError> {
    let rows = user_role::Entity::find()
        .filter(user_role::Column::UserId.is_in(user_ids.iter().copied()))
        .all(db)
        .await?;
    let mut roles: HashMap<Uuid, Vec<Role>> = HashMap::new();
    for row in rows {
        match Role::parse(&row.role) {
            Some(role) => roles.entry(row.user_id).or_default().push(role),
            None => tracing::error!(user_id = %row.user_id, role = row.role, "unknown role in the database; ignored"),
        }
    }
    for list in roles.values_mut() {
        list.sort();
    }
    Ok(roles)
}

/// Users by id (DataLoader).
pub async fn find_many(db: &DatabaseConnection, ids: &[Uuid]) -> Result<Vec<UserRecord>, AppError> {
    let accounts = user_account::Entity::find()
        .filter(user_account::Column::Id.is_in(ids.iter().copied()))
        .all(db)
        .await?;
    attach_roles(db, accounts).await
}

async fn attach_roles(
    db: &DatabaseConnection,
    accounts: Vec<user_account::Model>,
) -> Result<Vec<UserRecord>, AppError> {
    let ids: Vec<Uuid> = accounts.iter().map(|a| a.id).collect();
    let mut roles = roles_of(db, &ids).await?;
    Ok(accounts
        .into_iter()
        .map(|account| UserRecord {
            roles: roles.remove(&account.id).unwrap_or_default(),
            account,
        })
        .collect())
}

/// One page of users in creation order, after the user `after`; `limit + 1` rows are read
/// to know whether another page follows.
pub async fn page(
    db: &DatabaseConnection,
    after: Option<Uuid>,
    limit: u64,
) -> Result<(Vec<UserRecord>, bool), AppError> {
    let mut query = user_account::Entity::find().order_by_asc(user_account::Column::Id);
    if let Some(after) = after {
        query = query.filter(user_account::Column::Id.gt(after));
    }
    let mut accounts = query.limit(limit + 1).all(db).await?;
    let has_next = accounts.len() as u64 > limit;
    accounts.truncate(limit as usize);
    Ok((attach_roles(db, accounts).await?, has_next))
}

pub async fn count(db: &DatabaseConnection) -> Result<u64, AppError> {
    Ok(user_account::Entity::find().count(db).await?)
}

pub async fn grant(db: &DatabaseConnection, user_id: Uuid, role: Role) -> Result<(), AppError> {
    insert_role(db, user_id, role).await
}

/// Returns whether the user held the role.
pub async fn revoke(db: &DatabaseConnection, user_id: Uuid, role: Role) -> Result<bool, AppError> {
    let deleted = user_role::Entity::delete_many()
        .filter(user_role::Column::UserId.eq(user_id))
        .filter(user_role::Column::Role.eq(role.as_str()))
        .exec(db)
        .await?;
    Ok(deleted.rows_affected > 0)
}

pub async fn admin_count(db: &DatabaseConnection) -> Result<u64, AppError> {
    Ok(user_role::Entity::find()
        .filter(user_role::Column::Role.eq(Role::Admin.as_str()))
        .count(db)
        .await?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn emails_are_normalised_and_checked() {
        assert_eq!(normalize_email("e", "  Ada@Example.COM ").unwrap(), "ada@example.com");
        for bad in [
            "",
            "ada",
            "ada@",
            "@example.com",
            "ada@example",
            "a da@example.com",
            "a@b@c.com",
            "ada@.com",
        ] {
            assert!(normalize_email("e", bad).is_err(), "{bad:?} accepted");
        }
    }

    #[test]
    fn names_are_trimmed_and_bounded() {
        assert_eq!(validate_name("n", "  Ada Lovelace ").unwrap(), "Ada Lovelace");
        assert!(validate_name("n", "   ").is_err());
        assert!(validate_name("n", &"x".repeat(101)).is_err());
        assert!(validate_name("n", "Ada\u{0}").is_err());
    }
}
