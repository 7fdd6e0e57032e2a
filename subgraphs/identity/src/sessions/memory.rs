//! The embedded session store: a map in identity's memory.

use std::{collections::HashMap, sync::Mutex};

use chrono::Utc;
use uuid::Uuid;

use super::{Decision, Rotation, RotationRequest, Session, SessionStore, decide};

#[derive(Default)]
pub struct MemorySessions {
    sessions: Mutex<HashMap<Uuid, Session>>,
}

impl MemorySessions {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<Uuid, Session>> {
        // A panic while holding the lock cannot leave a half-written session behind
        // (every update is a single insert or remove), so the data is still sound.
        self.sessions.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

#[async_trait::async_trait]
impl SessionStore for MemorySessions {
    async fn create(&self, session: &Session) -> anyhow::Result<()> {
        let mut sessions = self.lock();
        let now = Utc::now();
        sessions.retain(|_, session| session.expires_at > now);
        sessions.insert(session.id, session.clone());
        Ok(())
    }

    async fn get(&self, id: Uuid) -> anyhow::Result<Option<Session>> {
        let now = Utc::now();
        Ok(self.lock().get(&id).filter(|s| s.expires_at > now).cloned())
    }

    async fn list_for_user(&self, user_id: Uuid) -> anyhow::Result<Vec<Session>> {
        let now = Utc::now();
        let mut sessions: Vec<Session> = self
            .lock()
            .values()
            .filter(|s| s.user_id == user_id && s.expires_at > now)
            .cloned()
            .collect();
        sessions.sort_by_key(|s| std::cmp::Reverse(s.created_at));
        Ok(sessions)
    }

    async fn rotate(&self, request: &RotationRequest) -> anyhow::Result<Rotation> {
        let mut sessions = self.lock();
        let Some(session) = sessions
            .get_mut(&request.session_id)
            .filter(|s| s.expires_at > request.now)
        else {
            return Ok(Rotation::Unknown);
        };
        let user_id = session.user_id;
        let lifetime = chrono::Duration::from_std(request.lifetime)?;
        match decide(session, request) {
            Decision::RotateCurrent => {
                session.previous_refresh_hash =
                    Some(std::mem::replace(&mut session.refresh_hash, request.new_hash.clone()));
                session.rotated_at = Some(request.now);
            }
            Decision::RefuseWithinGrace => return Ok(Rotation::AlreadyUsedWithinGrace),
            Decision::Revoke => {
                sessions.remove(&request.session_id);
                return Ok(Rotation::ReuseDetected { user_id });
            }
        }
        session.last_seen_at = request.now;
        session.expires_at = request.now + lifetime;
        Ok(Rotation::Rotated { user_id })
    }

    async fn revoke(&self, id: Uuid) -> anyhow::Result<bool> {
        let now = Utc::now();
        Ok(self.lock().remove(&id).is_some_and(|s| s.expires_at > now))
    }

    async fn revoke_all(&self, user_id: Uuid) -> anyhow::Result<u64> {
        let now = Utc::now();
        let mut sessions = self.lock();
        let mut live = 0;
        sessions.retain(|_, s| {
            let theirs = s.user_id == user_id;
            if theirs && s.expires_at > now {
                live += 1;
            }
            !theirs
        });
        Ok(live)
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::{super::contract_tests as contract, *};

    #[tokio::test]
    async fn memory_sessions_round_trip_and_list_per_user() {
        contract::sessions_round_trip_and_list_per_user(&MemorySessions::default()).await;
    }

    #[tokio::test]
    async fn memory_rotation_accepts_the_current_token_once() {
        contract::rotation_accepts_the_current_token_once(&MemorySessions::default()).await;
    }

    #[tokio::test]
    async fn memory_previous_token_within_the_grace_window_is_refused_without_revoking() {
        contract::the_previous_token_within_the_grace_window_is_refused_without_revoking(&MemorySessions::default())
            .await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn memory_concurrent_rotations_with_one_token_have_one_winner() {
        contract::concurrent_rotations_with_one_token_have_one_winner(Arc::new(MemorySessions::default())).await;
    }
}
