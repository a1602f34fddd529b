//! Integration tests: the real server on a random port, over real HTTP, against SQLite and
//! (when `FACTORY_TEST_POSTGRES` is set, as CI does) a fresh PostgreSQL database; the fixtures
//! (servers, databases, s3s-fs) come from `testkit`.

mod artifacts;
mod bad_input;
mod pages;
mod registry;
mod routes;
mod search_cache;
mod ui;
