//! One module per subcommand: flag definitions and the glue that calls the library crates.

pub mod closed_loop;
pub mod demo;
pub mod deploy;
pub mod drift;
pub mod gateway;
pub mod predict;
pub mod serve;
pub mod server;
pub mod train;
