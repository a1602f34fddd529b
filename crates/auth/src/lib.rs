//! MLflow-compatible authentication and authorization, without HTTP: the `basic_auth.ini`
//! settings ([`config`]), the user/role/grant database ([`store`]), password hashing
//! ([`password`]) and permission resolution ([`permission`], a port of MLflow 3.17.2's
//! requirement model). The HTTP middleware and the user API live in `mlflow-api::auth`.
//!
//! Architecture invariant: this crate knows nothing about HTTP, JSON or the tracking data;
//! callers resolve resources (a run's experiment, ...) and ask [`permission::Grants`].

pub mod config;
pub mod error;
pub mod password;
pub mod permission;
pub mod store;

pub use config::AuthConfig;
pub use error::{AuthError, Result};
pub use permission::{Action, Grant, Grants, Pattern, Permission, Requirement};
pub use store::{
    is_synthetic_role_name, synthetic_role_name, Assignment, AuthStore, GrantCopy, GrantRows, Role, RolePermission,
    User, DEFAULT_WORKSPACE,
};
