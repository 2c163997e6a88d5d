//! The `install` and `auth` commands, against temporary directories (and a loopback
//! stub of Fly's API for `auth`).

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod auth;
mod install;
