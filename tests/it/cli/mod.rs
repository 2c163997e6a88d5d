//! The `install` and `auth` commands, against temporary directories (and the simulator
//! for `auth`).

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod install;
