//! Vitrina's router plugins, one file per pipeline stage they hook into.

pub mod request_id;
