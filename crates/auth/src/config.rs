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
    /// Parses ini text as MLflow does (Python's `configparser.ConfigParser()`, see [`Ini`]);
    /// keys not given keep MLflow's defaults. Unknown keys are ignored as MLflow ignores them
    /// (cache sizes, workspace options).
    pub fn from_ini(text: &str) -> Result<AuthConfig> {
        let ini = Ini::parse(text)?;
        let get = |key: &str| ini.get(MLFLOW_SECTION, key);
        let mut cfg = AuthConfig::default();
        if let Some(value) = get("default_permission")? {
            cfg.default_permission = Permission::parse(&value).ok_or_else(|| {
                AuthError::Config(format!(
                    "default_permission '{value}' is not one of READ, USE, EDIT, MANAGE, NO_PERMISSIONS"
                ))
            })?;
        }
        if let Some(value) = get("database_uri")? {
            cfg.database_uri = value;
        }
        if let Some(value) = get("admin_username")? {
            cfg.admin_username = value;
        }
        if let Some(value) = get("admin_password")? {
            cfg.admin_password = Some(value).filter(|v| !v.is_empty());
        }
        if let Some(value) = get("authorization_function")?.filter(|v| v != BASIC_AUTH_FUNCTION) {
            return Err(AuthError::Config(format!(
                "authorization_function '{value}' is not supported; only {BASIC_AUTH_FUNCTION}"
            )));
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

/// The section MLflow reads.
const MLFLOW_SECTION: &str = "mlflow";
/// Python's `DEFAULT` section: its options are seen in every section.
const DEFAULT_SECTION: &str = "DEFAULT";
/// Python's `MAX_INTERPOLATION_DEPTH`.
const MAX_INTERPOLATION_DEPTH: usize = 10;
/// Ours: the longest a value may grow by interpolation. Ten levels of options that each name
/// the next one several times grow exponentially (a 300-byte file asks for terabytes), which
/// Python's configparser would try to build.
const MAX_INTERPOLATED_LEN: usize = 1 << 20;

/// An ini file read the way Python's `configparser.ConfigParser()` reads it: `=` or `:`
/// between key and value, `#`/`;` comments on their own lines only (a `#` inside a value is
/// kept), indented lines continue a value, option names are case-insensitive and section
/// names are not, `[DEFAULT]` options show in every section, and values go through
/// `BasicInterpolation` when read (`%(other)s`, `%%`). Lexing is `configparser`'s; the
/// Python rules on top of it are here.
struct Ini {
    /// Section → lowercased option → raw value.
    sections: std::collections::HashMap<String, std::collections::HashMap<String, String>>,
}

impl Ini {
    fn parse(text: &str) -> Result<Ini> {
        let mut defaults = configparser::ini::IniDefault::default();
        defaults.default_section = DEFAULT_SECTION.into();
        defaults.case_sensitive = true;
        defaults.multiline = true;
        defaults.enable_inline_comments = false;
        let map =
            configparser::ini::Ini::new_from_defaults(defaults).read(text.to_string()).map_err(AuthError::Config)?;
        let mut sections = std::collections::HashMap::new();
        for (section, options) in map {
            let mut lowered = std::collections::HashMap::new();
            for (key, value) in options {
                let Some(value) = value else {
                    let line = text.lines().position(|l| l.trim() == key).map_or(0, |n| n + 1);
                    return Err(AuthError::Config(format!("line {line}: expected `key = value`, got `{key}`")));
                };
                lowered.insert(key.to_lowercase(), value);
            }
            sections.insert(section, lowered);
        }
        Ok(Ini { sections })
    }

    fn raw(&self, section: &str, key: &str) -> Option<&str> {
        let find = |s: &str| self.sections.get(s).and_then(|o| o.get(key)).map(String::as_str);
        find(section).or_else(|| find(DEFAULT_SECTION))
    }

    /// The value of `key` in `section` (or `[DEFAULT]`) after interpolation, if it is set.
    fn get(&self, section: &str, key: &str) -> Result<Option<String>> {
        let Some(raw) = self.raw(section, key) else { return Ok(None) };
        let mut out = String::new();
        self.interpolate(section, key, raw, raw, 1, &mut out)?;
        Ok(Some(out))
    }

    /// `BasicInterpolation._interpolate_some`, with its messages.
    fn interpolate(
        &self,
        section: &str,
        key: &str,
        raw: &str,
        value: &str,
        depth: usize,
        out: &mut String,
    ) -> Result<()> {
        let err = |msg: String| AuthError::Config(msg);
        if depth > MAX_INTERPOLATION_DEPTH {
            return Err(err(format!(
                "Recursion limit exceeded in value substitution: option '{key}' in section '{section}' contains an \
                 interpolation key which cannot be substituted in {MAX_INTERPOLATION_DEPTH} steps. Raw value: '{raw}'"
            )));
        }
        let mut rest = value;
        while let Some(p) = rest.find('%') {
            if out.len() > MAX_INTERPOLATED_LEN {
                return Err(err(format!(
                    "option '{key}' in section '{section}' is longer than {MAX_INTERPOLATED_LEN} bytes after \
                     interpolation. Raw value: '{raw}'"
                )));
            }
            out.push_str(&rest[..p]);
            rest = &rest[p..];
            if let Some(after) = rest.strip_prefix("%%") {
                out.push('%');
                rest = after;
            } else if let Some(name) = rest
                .strip_prefix("%(")
                .and_then(|r| r.split_once(")s"))
                .map(|(n, _)| n)
                .filter(|n| !n.is_empty() && !n.contains(')'))
            {
                let var = name.to_lowercase();
                rest = &rest[name.len() + 4..];
                let v = self.raw(section, &var).ok_or_else(|| {
                    err(format!(
                        "Bad value substitution: option '{key}' in section '{section}' contains an interpolation key \
                         '{var}' which is not a valid option name. Raw value: '{raw}'"
                    ))
                })?;
                if v.contains('%') {
                    self.interpolate(section, key, raw, v, depth + 1, out)?;
                } else {
                    out.push_str(v);
                }
            } else if rest.starts_with("%(") {
                return Err(err(format!("bad interpolation variable reference '{rest}'")));
            } else {
                return Err(err(format!("'%' must be followed by '%' or '(', found: '{rest}'")));
            }
        }
        out.push_str(rest);
        Ok(())
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

    /// Parses `text` and compares `key` of `[mlflow]` (after interpolation) or the error.
    fn check_value(text: &str, key: &str, expect: std::result::Result<Option<&str>, &str>) {
        let got = Ini::parse(text).and_then(|ini| ini.get(MLFLOW_SECTION, key));
        match (got, expect) {
            (Ok(v), Ok(e)) => assert_eq!(v.as_deref(), e, "{text:?}"),
            (Err(AuthError::Config(m)), Err(e)) => assert!(m.contains(e), "{m:?} lacks {e:?} for {text:?}"),
            (got, _) => panic!("{text:?}: {got:?}"),
        }
    }

    #[test]
    fn python_configparser_rules() {
        let db = "database_uri";
        // Delimiters, case of option names, DEFAULT, comments, values kept whole.
        check_value("[mlflow]\ndatabase_uri: sqlite:///a.db\n", db, Ok(Some("sqlite:///a.db")));
        check_value("[mlflow]\nDataBase_URI = x\n", db, Ok(Some("x")));
        check_value("[MLFLOW]\ndatabase_uri = x\n", db, Ok(None));
        check_value("[DEFAULT]\ndatabase_uri = d\n[mlflow]\n", db, Ok(Some("d")));
        check_value("[DEFAULT]\ndatabase_uri = d\n[mlflow]\ndatabase_uri = m\n", db, Ok(Some("m")));
        check_value("[mlflow]\n# database_uri = no\n; database_uri = no\n", db, Ok(None));
        check_value(
            "[mlflow]\ndatabase_uri = postgresql://u:p#;w@h/db ; not a comment\n",
            db,
            Ok(Some("postgresql://u:p#;w@h/db ; not a comment")),
        );
        check_value("[mlflow]\ndatabase_uri = a\n  b\n", db, Ok(Some("a\nb")));
        // BasicInterpolation.
        check_value("[mlflow]\nhost = h\ndatabase_uri = postgresql://%(host)s/db\n", db, Ok(Some("postgresql://h/db")));
        check_value("[DEFAULT]\nHOST = h\n[mlflow]\ndatabase_uri = %(Host)s\n", db, Ok(Some("h")));
        check_value("[mlflow]\na = %(b)s\nb = 1%%\ndatabase_uri = %(a)s!\n", db, Ok(Some("1%!")));
        check_value("[mlflow]\ndatabase_uri = 100%%\n", db, Ok(Some("100%")));
        check_value(
            "[mlflow]\ndatabase_uri = %(nope)s\n",
            db,
            Err("interpolation key 'nope' which is not a valid option name"),
        );
        check_value("[mlflow]\ndatabase_uri = 50%\n", db, Err("'%' must be followed by '%' or '(', found: '%'"));
        check_value("[mlflow]\ndatabase_uri = %(x)d\nx = 1\n", db, Err("bad interpolation variable reference '%(x)d'"));
        check_value("[mlflow]\ndatabase_uri = %(database_uri)s\n", db, Err("Recursion limit exceeded"));
        // Ten levels of options naming the next one 16 times: 16^9 copies, refused instead of built.
        let mut bomb = String::from("[mlflow]\nl0 = x\n");
        for level in 1..10 {
            bomb.push_str(&format!("l{level} = {}\n", format!("%(l{})s", level - 1).repeat(16)));
        }
        bomb.push_str("database_uri = %(l9)s\n");
        check_value(&bomb, db, Err("longer than 1048576 bytes after interpolation"));
        // Only what is read is interpolated, as in Python.
        check_value("[mlflow]\nother = 50%\ndatabase_uri = x\n", db, Ok(Some("x")));
        // Not `key = value`.
        check_value("[mlflow]\ndatabase_uri\n", db, Err("line 2: expected `key = value`"));
        check_value("[mlflow\ndatabase_uri = x\n", db, Err("no closing bracket"));
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

    mod props {
        use super::*;
        use proptest::prelude::*;

        /// Lines that look like an ini file: sections, options, comments, continuations,
        /// interpolations, and noise.
        fn ini_line() -> impl Strategy<Value = String> {
            prop_oneof![
                Just("[mlflow]".to_string()),
                Just("[DEFAULT]".to_string()),
                "\\[[a-zA-Z ]{0,6}\\]?",
                "[a-z_]{1,8} ?[=:] ?[ -~]{0,16}",
                "(default_permission|database_uri|admin_username|admin_password|authorization_function) ?= ?[ -~]{0,16}",
                "[a-z]{1,4} = %\\([a-z]{1,4}\\)s%\\([a-z]{1,4}\\)s",
                "[#;] [ -~]{0,10}",
                "  [ -~]{0,10}",
                "\\PC{0,20}",
            ]
        }

        proptest! {
            #[test]
            fn any_text_is_a_config_or_an_error(text in "\\PC{0,300}") {
                let _ = AuthConfig::from_ini(&text);
            }

            #[test]
            fn any_ini_shaped_text_is_a_config_or_an_error(lines in prop::collection::vec(ini_line(), 0..12)) {
                let _ = AuthConfig::from_ini(&lines.join("\n"));
            }

            /// A value without `%`, newlines or surrounding blanks reads back as written, with
            /// either delimiter and whatever case the option is written in.
            #[test]
            fn plain_values_read_back(
                value in "[!-$&-~]([ !-$&-~]{0,30}[!-$&-~])?",
                colon in any::<bool>(),
                upper in any::<bool>(),
            ) {
                let key = if upper { "DATABASE_URI" } else { "database_uri" };
                let delim = if colon { ":" } else { "=" };
                let cfg = AuthConfig::from_ini(&format!("[mlflow]\n{key} {delim} {value}\n")).unwrap();
                prop_assert_eq!(cfg.database_uri, value);
            }

            /// Interpolation reads `%%` as `%` and `%(name)s` as the option's value.
            #[test]
            fn interpolation_substitutes(a in "[!-$&-~]{1,10}", b in "[!-$&-~]{1,10}") {
                let text = format!("[DEFAULT]\nhost = {a}\n[mlflow]\ndatabase_uri = %(host)s/%%/{b}\n");
                prop_assert_eq!(AuthConfig::from_ini(&text).unwrap().database_uri, format!("{a}/%/{b}"));
            }
        }
    }
}
