//! Identity: who is on the other end of a socket or a REST call.
//!
//! `jwt` verifies tokens into a [`Principal`]; `token` finds the token in a socket.io
//! handshake or an HTTP request. Authorization rules that depend on data (conversation
//! membership, restaurant access) live with the handlers that need them.

mod jwt;
mod principal;
mod token;

pub use jwt::Verifier;
pub use principal::{Principal, Role};
pub use token::{bearer_from_headers, token_from_handshake, token_from_query};
