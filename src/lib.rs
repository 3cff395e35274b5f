//! rancher-upgrade: upgrade a Docker-hosted Rancher 1.x server the documented way.
//!
//! Data flows one way: [`cli`] → [`discover`] → [`plan`] → [`render`] or [`execute`].

pub mod archive;
pub mod argv;
pub mod cli;
pub mod cluster;
pub mod color;
pub mod confirm;
pub mod discover;
pub mod engine;
pub mod error;
pub mod execute;
pub mod health;
pub mod image;
pub mod interrupt;
pub mod manual;
pub mod node;
pub mod plan;
pub mod render;
pub mod result;
pub mod resume;
pub mod rollback;
pub mod room;
pub mod runner;
pub mod secrets;
pub mod server;
pub mod settings;
mod sql_dump;
pub mod state;
pub mod status;
mod tar_stream;
pub mod transcript;
