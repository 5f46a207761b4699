//! Integration tests of the HTTPS transport and the admin port over real sockets on
//! 127.0.0.1, with certificates generated at test time. One test binary (ripgrep style).

mod admin;
mod handshake;
mod http;
mod reload;
mod shutdown;
mod support;
