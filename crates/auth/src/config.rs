//! `basic_auth.ini` as MLflow reads it (`mlflow/server/auth/config.py`): the `[mlflow]`
//! section's `default_permission`, `database_uri`, `admin_username`, `admin_password` and
//! `authorization_function`. Only the binary reads files and the environment; this module
//! parses text and checks values.

use crate::error::{AuthError, Result};
use crate::permission::Permission;

/// The password older MLflow versions shipped in `basic_auth.ini` (GHSA-gq3w-7jj3-x7gr);
/// refused for bootstrapping and for admin logins.
pub const LEGACY_ADMIN_PASSWORD: &str = "password1234";

/// MLflow's only supported authorization function for basic auth.
pub const BASIC_AUTH_FUNCTION: &str = "mlflow.server.auth:authenticate_request_basic_auth";

/// Validated auth settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuthConfig {
    pub default_permission: Permission,
    pub database_uri: String,
    pub admin_username: String,
    pub admin_password: Option<String>,
}

impl Default for AuthConfig {
    /// The values of MLflow's shipped `basic_auth.ini` (which has no admin password).
    fn default() -> Self {
        AuthConfig {
            default_permission: Permission::Read,
            database_uri: "sqlite:///basic_auth.db".to_string(),
            admin_username: "admin".to_string(),
            admin_password: None,
        }
    }
}

impl AuthConfig {
    /// Parses ini text; keys not given keep MLflow's defaults. Unknown keys are ignored as
    /// MLflow ignores them (cache sizes, workspace options).
    pub fn from_ini(text: &str) -> Result<AuthConfig> {
        let mut cfg = AuthConfig::default();
        let mut section = String::new();
        for (n, raw) in text.lines().enumerate() {
            let line = raw.trim();
            if line.is_empty() || line.starts_with('#') || line.starts_with(';') {
                continue;
            }
            if let Some(name) = line.strip_prefix('[').and_then(|l| l.strip_suffix(']')) {
                section = name.trim().to_string();
                continue;
            }
            let Some((key, value)) = line.split_once('=').or_else(|| line.split_once(':')) else {
                return Err(AuthError::Config(format!("line {}: expected `key = value`, got `{line}`", n + 1)));
            };
            if section != "mlflow" {
                continue;
            }
            let value = value.trim().to_string();
            match key.trim() {
                "default_permission" => {
                    cfg.default_permission = Permission::parse(&value).ok_or_else(|| {
                        AuthError::Config(format!(
                            "default_permission '{value}' is not one of READ, USE, EDIT, MANAGE, NO_PERMISSIONS"
                        ))
                    })?;
                }
                "database_uri" => cfg.database_uri = value,
                "admin_username" => cfg.admin_username = value,
                "admin_password" => cfg.admin_password = Some(value).filter(|v| !v.is_empty()),
                "authorization_function" if value != BASIC_AUTH_FUNCTION => {
                    return Err(AuthError::Config(format!(
                        "authorization_function '{value}' is not supported; only {BASIC_AUTH_FUNCTION}"
                    )));
                }
                _ => {}
            }
        }
        Ok(cfg)
    }

    /// Checks the bootstrap credentials as `_validate_bootstrap_admin_password` does, with
    /// its messages: the admin user is created from them on first start.
    pub fn check_bootstrap_password(username: &str, password: Option<&str>) -> Result<String> {
        let Some(password) = password.filter(|p| !p.is_empty()) else {
            return Err(AuthError::Config(format!(
                "MLflow Authentication needs a password to create the admin user '{username}', but none is \
                 configured (or it is empty). MLflow ships no default admin password. Set the \
                 MLFLOW_AUTH_ADMIN_PASSWORD environment variable, or set `admin_password` in the configuration \
                 file referenced by MLFLOW_AUTH_CONFIG_PATH, and restart the server."
            )));
        };
        if password == LEGACY_ADMIN_PASSWORD {
            return Err(AuthError::Config(format!(
                "Refusing to use the insecure default password that older MLflow versions shipped in \
                 basic_auth.ini for the admin user '{username}' (https://github.com/advisories/GHSA-gq3w-7jj3-x7gr). \
                 Set MLFLOW_AUTH_ADMIN_PASSWORD or `admin_password` in the configuration file referenced by \
                 MLFLOW_AUTH_CONFIG_PATH to a different password."
            )));
        }
        if let Err(e) = crate::password::validate_password(password) {
            return Err(AuthError::Config(format!(
                "The configured password for the admin user '{username}' is invalid: {e} Set \
                 MLFLOW_AUTH_ADMIN_PASSWORD or `admin_password` in the configuration file referenced by \
                 MLFLOW_AUTH_CONFIG_PATH to a valid password."
            )));
        }
        Ok(password.to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shipped_ini_parses_to_defaults() {
        let text =
            "[mlflow]\ndefault_permission = READ\ndatabase_uri = sqlite:///basic_auth.db\nadmin_username = admin\n\
                    # admin_password =\nauthorization_function = mlflow.server.auth:authenticate_request_basic_auth\n\
                    grant_default_workspace_access = false\n";
        assert_eq!(AuthConfig::from_ini(text).unwrap(), AuthConfig::default());
    }

    #[test]
    fn values_and_errors() {
        let cfg =
            AuthConfig::from_ini("[mlflow]\ndefault_permission = EDIT\nadmin_password = s3cret-s3cret\n").unwrap();
        assert_eq!(cfg.default_permission, Permission::Edit);
        assert_eq!(cfg.admin_password.as_deref(), Some("s3cret-s3cret"));
        assert!(AuthConfig::from_ini("[mlflow]\ndefault_permission = WRITE\n").is_err());
        assert!(AuthConfig::from_ini("[mlflow]\nauthorization_function = x:y\n").is_err());
        assert!(AuthConfig::check_bootstrap_password("admin", None).is_err());
        assert!(AuthConfig::check_bootstrap_password("admin", Some("password1234")).is_err());
        assert!(AuthConfig::check_bootstrap_password("admin", Some("short")).is_err());
        assert!(AuthConfig::check_bootstrap_password("admin", Some("long-enough-password")).is_ok());
    }
}
