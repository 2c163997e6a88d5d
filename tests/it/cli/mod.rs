//! The `install` and `auth` commands, against temporary directories (and a loopback
//! stub of Fly's API for `auth`).

mod auth;
mod install;
