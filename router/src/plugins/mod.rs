//! Vitrina's router plugins, one file per pipeline stage they hook.

pub mod authentication;
pub mod client_address;
pub mod landing_page;
pub mod persisted_queries;
pub mod request_id;
pub mod response_cache;
