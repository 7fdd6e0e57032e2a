//! Users, their roles, and identity's signing keys.
//!
//! Users are listed by `users(first, after)` in id order (UUID v7, so creation order);
//! the primary key serves that keyset pagination. Roles are rows, not a column, so that
//! granting is an idempotent insert and revoking a delete, without read-modify-write.

use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum UserAccount {
    Table,
    Id,
    Email,
    Name,
    PasswordHash,
    CreatedAt,
    UpdatedAt,
}

#[derive(DeriveIden)]
enum UserRole {
    Table,
    UserId,
    Role,
    GrantedAt,
}

#[derive(DeriveIden)]
enum SigningKey {
    Table,
    Kid,
    PrivateKey,
    CreatedAt,
    RetiredAt,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(UserAccount::Table)
                    .col(uuid(UserAccount::Id).primary_key())
                    .col(string_len_uniq(UserAccount::Email, 254))
                    .col(string_len(UserAccount::Name, 100))
                    .col(string_len(UserAccount::PasswordHash, 255))
                    .col(timestamp_with_time_zone(UserAccount::CreatedAt))
                    .col(timestamp_with_time_zone(UserAccount::UpdatedAt))
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(UserRole::Table)
                    .col(uuid(UserRole::UserId))
                    .col(string_len(UserRole::Role, 32))
                    .col(timestamp_with_time_zone(UserRole::GrantedAt))
                    .primary_key(Index::create().col(UserRole::UserId).col(UserRole::Role))
                    .foreign_key(
                        ForeignKey::create()
                            .name("fk_user_role_user")
                            .from(UserRole::Table, UserRole::UserId)
                            .to(UserAccount::Table, UserAccount::Id)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .to_owned(),
            )
            .await?;
        // "Is there an admin?" at every start-up.
        manager
            .create_index(
                Index::create()
                    .name("idx_user_role_role")
                    .table(UserRole::Table)
                    .col(UserRole::Role)
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(SigningKey::Table)
                    .col(string_len(SigningKey::Kid, 64).primary_key())
                    .col(text(SigningKey::PrivateKey))
                    .col(timestamp_with_time_zone(SigningKey::CreatedAt))
                    .col(timestamp_with_time_zone_null(SigningKey::RetiredAt))
                    .to_owned(),
            )
            .await?;
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(Table::drop().table(SigningKey::Table).to_owned())
            .await?;
        manager
            .drop_table(Table::drop().table(UserRole::Table).to_owned())
            .await?;
        manager
            .drop_table(Table::drop().table(UserAccount::Table).to_owned())
            .await
    }
}
