//! Category reads. The tree is small (hundreds of nodes at most), so descendant look-ups
//! load it whole instead of issuing a recursive query per level.

use std::collections::{HashMap, HashSet, VecDeque};

use catalog_entity::category;
use sea_orm::{DatabaseConnection, EntityTrait, QueryOrder};
use uuid::Uuid;
use vitrina_shared::AppError;

/// Every category. The tree is read (and cached) whole; the functions below answer
/// from it without further queries.
pub async fn all(db: &DatabaseConnection) -> Result<Vec<category::Model>, AppError> {
    Ok(category::Entity::find()
        .order_by_asc(category::Column::Name)
        .order_by_asc(category::Column::Id)
        .all(db)
        .await?)
}

/// Top-level categories, by name.
pub fn roots(tree: &[category::Model]) -> Vec<category::Model> {
    tree.iter().filter(|c| c.parent_id.is_none()).cloned().collect()
}

pub fn by_ids(tree: &[category::Model], ids: &[Uuid]) -> HashMap<Uuid, category::Model> {
    tree.iter()
        .filter(|c| ids.contains(&c.id))
        .map(|c| (c.id, c.clone()))
        .collect()
}

/// Children of each of `parent_ids`, by name; parents without children map to an empty
/// list.
pub fn children_of(tree: &[category::Model], parent_ids: &[Uuid]) -> HashMap<Uuid, Vec<category::Model>> {
    let mut children: HashMap<Uuid, Vec<category::Model>> = parent_ids.iter().map(|id| (*id, Vec::new())).collect();
    for row in tree {
        if let Some(parent) = row.parent_id
            && let Some(list) = children.get_mut(&parent)
        {
            list.push(row.clone());
        }
    }
    children
}

/// The category and every category below it, or `None` when it does not exist.
pub(crate) fn subtree(all: &[category::Model], root: Uuid) -> Option<Vec<Uuid>> {
    if !all.iter().any(|c| c.id == root) {
        return None;
    }
    let mut children: HashMap<Uuid, Vec<Uuid>> = HashMap::new();
    for category in all {
        if let Some(parent) = category.parent_id {
            children.entry(parent).or_default().push(category.id);
        }
    }
    let mut seen = HashSet::from([root]);
    let mut queue = VecDeque::from([root]);
    while let Some(id) = queue.pop_front() {
        for child in children.get(&id).into_iter().flatten() {
            // `seen` also guards against a cycle, should one ever be written.
            if seen.insert(*child) {
                queue.push_back(*child);
            }
        }
    }
    Some(seen.into_iter().collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn node(id: u128, parent: Option<u128>) -> category::Model {
        let now = chrono::Utc::now();
        category::Model {
            id: Uuid::from_u128(id),
            name: format!("c{id}"),
            slug: format!("c{id}"),
            parent_id: parent.map(Uuid::from_u128),
            created_at: now,
            updated_at: now,
        }
    }

    #[test]
    fn a_subtree_contains_the_root_and_all_descendants_only() {
        let all = [
            node(1, None),
            node(2, Some(1)),
            node(3, Some(2)),
            node(4, None),
            node(5, Some(4)),
        ];
        let mut ids = subtree(&all, Uuid::from_u128(1)).unwrap();
        ids.sort();
        assert_eq!(ids, vec![Uuid::from_u128(1), Uuid::from_u128(2), Uuid::from_u128(3)]);
        assert!(subtree(&all, Uuid::from_u128(9)).is_none());
    }
}
