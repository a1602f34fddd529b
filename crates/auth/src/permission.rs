//! Permission levels, grants and how a set of grants answers what an operation requires.
//! A port of MLflow 3.17.2's `mlflow/server/auth/permissions.py` and `requirements.py`; pure,
//! so the precedence rules (the security-critical part) are tested without a database.
//!
//! Two folds, as in MLflow: *within a key* several grants can match (one per role the user
//! holds): a `DENY` among them wins, otherwise the highest. *Across keys* (a requirement's own
//! key, then its fallbacks) the first key holding any grant decides (tier override), so a
//! `DENY` is never rescued by a more permissive parent. With no grant anywhere the configured
//! `default_permission` applies (MLflow with workspaces disabled, which is what we serve).
//!
//! Departure from MLflow, on purpose: a grant's pattern is a [`Pattern`], not a string. MLflow
//! matches `resource_pattern == "*"` as a wildcard whatever wrote it, so a registered model
//! *named* `*` gave its creator an owner grant on every model. Here a resource name is always
//! [`Pattern::Id`] (it matches that name only), and the wildcard [`Pattern::Any`] comes only
//! from the grant and role APIs, where `*` means "every resource" as in MLflow and only
//! admins may write it. The two are stored so that no name can read back as the wildcard.

use std::fmt;

/// A permission level as MLflow names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Permission {
    Read,
    Use,
    Edit,
    Manage,
    Deny,
    NoPermissions,
}

impl Permission {
    pub const ALL: [Permission; 6] = [
        Permission::Read,
        Permission::Use,
        Permission::Edit,
        Permission::Manage,
        Permission::NoPermissions,
        Permission::Deny,
    ];

    pub fn parse(name: &str) -> Option<Permission> {
        Permission::ALL.into_iter().find(|p| p.name() == name)
    }

    pub fn name(self) -> &'static str {
        match self {
            Permission::Read => "READ",
            Permission::Use => "USE",
            Permission::Edit => "EDIT",
            Permission::Manage => "MANAGE",
            Permission::Deny => "DENY",
            Permission::NoPermissions => "NO_PERMISSIONS",
        }
    }

    /// `PERMISSION_PRIORITY`: DENY is negative so it never wins a `max`.
    fn priority(self) -> i8 {
        match self {
            Permission::Deny => -1,
            Permission::NoPermissions => 0,
            Permission::Read => 1,
            Permission::Use => 2,
            Permission::Edit => 3,
            Permission::Manage => 4,
        }
    }

    pub fn can_read(self) -> bool {
        self.priority() >= 1
    }
    pub fn can_use(self) -> bool {
        self.priority() >= 2
    }
    pub fn can_update(self) -> bool {
        self.priority() >= 3
    }
    pub fn can_delete(self) -> bool {
        self == Permission::Manage
    }
    pub fn can_manage(self) -> bool {
        self == Permission::Manage
    }

    /// `max_permission`: the first wins ties.
    pub fn max(self, other: Permission) -> Permission {
        if self.priority() >= other.priority() {
            self
        } else {
            other
        }
    }

    /// `floor_positive_permission`: a positive grant never resolves below the default;
    /// DENY and NO_PERMISSIONS are vetoes and stay as they are.
    pub fn floor(self, default: Permission) -> Permission {
        match self {
            Permission::Deny | Permission::NoPermissions => self,
            _ => self.max(default),
        }
    }
}

impl fmt::Display for Permission {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

pub const EXPERIMENT: &str = "experiment";
pub const REGISTERED_MODEL: &str = "registered_model";
pub const PROMPT: &str = "prompt";
pub const WORKSPACE: &str = "workspace";
pub const RUN: &str = "run";
pub const TRACE: &str = "trace";
pub const ASSESSMENT: &str = "assessment";
pub const LOGGED_MODEL: &str = "logged_model";
pub const REVIEW_QUEUE: &str = "review_queue";
pub const REGISTERED_MODEL_VERSION: &str = "registered_model_version";
pub const SCORER: &str = "scorer";
pub const SCORER_VERSION: &str = "scorer_version";

/// Resource types and whether a grant may name one id (`true`) or only `*` (`false`), as
/// `permissions.TYPE` declares them.
const TYPES: &[(&str, bool)] = &[
    (WORKSPACE, false),
    (EXPERIMENT, true),
    (REGISTERED_MODEL, true),
    (PROMPT, true),
    (SCORER, true),
    ("gateway_secret", true),
    ("gateway_endpoint", true),
    ("gateway_model_definition", true),
    ("mcp_server", true),
    (RUN, false),
    (TRACE, false),
    (ASSESSMENT, false),
    (LOGGED_MODEL, false),
    (REVIEW_QUEUE, false),
    (REGISTERED_MODEL_VERSION, false),
    ("prompt_version", false),
    (SCORER_VERSION, false),
    ("mcp_server_version", false),
];

/// Whether `resource_type` is one MLflow knows; `Some(per_id)` says if per-id grants exist.
pub fn resource_type_grain(resource_type: &str) -> Option<bool> {
    TYPES.iter().find(|(t, _)| *t == resource_type).map(|(_, per_id)| *per_id)
}

/// The sorted list MLflow prints in its "Invalid resource type" message.
pub fn resource_types_sorted() -> Vec<&'static str> {
    let mut v: Vec<&str> = TYPES.iter().map(|(t, _)| *t).collect();
    v.sort_unstable();
    v
}

/// Checks a grant before it is stored, with MLflow's messages
/// (`_validate_permission_for_resource_type` and `_validate_resource_pattern`).
pub fn validate_grant(resource_type: &str, pattern: &Pattern, permission: &str) -> Result<Permission, String> {
    let Some(perm) = Permission::parse(permission) else {
        return Err(format!(
            "Invalid permission '{permission}'. Valid permissions are: ('READ', 'USE', 'EDIT', 'MANAGE', 'NO_PERMISSIONS', 'DENY')"
        ));
    };
    validate_resource_type(resource_type)?;
    if resource_type == WORKSPACE {
        if !matches!(perm, Permission::Use | Permission::Manage) {
            return Err(format!(
                "Invalid permission '{permission}' for resource_type='workspace'. Workspace-wide grants accept only: ('MANAGE', 'USE')."
            ));
        }
    } else if perm == Permission::NoPermissions {
        return Err(format!(
            "Invalid permission '{permission}' for resource_type='{resource_type}'. Resource-level grants accept only: ('DENY', 'EDIT', 'MANAGE', 'READ', 'USE')."
        ));
    }
    if *pattern != Pattern::Any && resource_type_grain(resource_type) == Some(false) {
        return Err(format!(
            "Invalid resource_pattern '{pattern}' for resource_type='{resource_type}'. This resource type supports only wildcard ('*') grants."
        ));
    }
    if let (EXPERIMENT, Pattern::Id(id)) = (resource_type, pattern) {
        if !is_experiment_id(id) {
            return Err(format!(
                "Invalid resource_pattern '{id}' for resource_type='experiment'. Write the experiment ID as a plain \
                 decimal integer, without sign, spaces or leading zeros."
            ));
        }
    }
    Ok(perm)
}

/// Whether `id` is an experiment id in the one spelling grants are keyed by: the number's own
/// decimal form. The store reads `03`, `+3` and ` 3` as experiment 3 too, so a grant or a check
/// on any other spelling would name a key no request for experiment 3 matches.
pub fn is_experiment_id(id: &str) -> bool {
    id.parse::<i64>().is_ok_and(|n| n.to_string() == id)
}

pub fn validate_resource_type(resource_type: &str) -> Result<(), String> {
    if resource_type_grain(resource_type).is_none() {
        let list: Vec<String> = resource_types_sorted().iter().map(|t| format!("'{t}'")).collect();
        return Err(format!(
            "Invalid resource type '{resource_type}'. Valid resource types are: ({})",
            list.join(", ")
        ));
    }
    Ok(())
}

/// What a grant (or a requirement) is about: every resource of its type, or one resource.
///
/// A resource's name or id is always [`Pattern::Id`], whatever characters it holds; only
/// [`Pattern::from_wire`] (the `resource_id` / `resource_pattern` of the grant and role APIs,
/// where MLflow spells the wildcard `*`) and [`Pattern::Any`] itself make the wildcard.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Pattern {
    /// `*`: every resource of the type.
    Any,
    /// Exactly the resource with this id or name.
    Id(String),
}

/// The first character of a stored pattern that names a resource whose name would otherwise
/// read back as the wildcard (or as another escaped name).
const STORED_ESCAPE: char = '\\';

impl Pattern {
    pub fn id(id: &str) -> Pattern {
        Pattern::Id(id.to_string())
    }

    /// A pattern as MLflow's grant and role APIs take it: `*` is the wildcard.
    pub fn from_wire(s: &str) -> Pattern {
        if s == "*" {
            Pattern::Any
        } else {
            Pattern::Id(s.to_string())
        }
    }

    /// As the APIs show it (`*` for the wildcard). A resource literally named `*` shows as `*`
    /// too: MLflow's wire format has no other spelling, and that is why nothing reads this back.
    pub fn to_wire(&self) -> &str {
        match self {
            Pattern::Any => "*",
            Pattern::Id(s) => s,
        }
    }

    /// The `resource_pattern` column: `*` for the wildcard, a name as it is, except that a
    /// name equal to `*` or starting with the escape character is stored with the escape
    /// character in front. The mapping is one-to-one, and rows MLflow wrote read back the
    /// same (MLflow names do not start with a backslash; ours cannot contain one).
    pub fn to_stored(&self) -> String {
        match self {
            Pattern::Any => "*".to_string(),
            Pattern::Id(s) if s == "*" || s.starts_with(STORED_ESCAPE) => format!("{STORED_ESCAPE}{s}"),
            Pattern::Id(s) => s.clone(),
        }
    }

    pub fn from_stored(s: &str) -> Pattern {
        if s == "*" {
            Pattern::Any
        } else if let Some(name) = s.strip_prefix(STORED_ESCAPE) {
            Pattern::Id(name.to_string())
        } else {
            Pattern::Id(s.to_string())
        }
    }
}

impl fmt::Display for Pattern {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.to_wire())
    }
}

/// One grant row: a role's permission on `(resource_type, pattern)`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Grant {
    pub resource_type: String,
    pub pattern: Pattern,
    pub permission: Permission,
}

impl Grant {
    pub fn new(resource_type: &str, pattern: Pattern, permission: Permission) -> Grant {
        Grant { resource_type: resource_type.to_string(), pattern, permission }
    }

    /// `permissions.matches`: the wildcard covers every key of its type; a grant on one id
    /// covers that key only, and only on types that have per-id grants.
    fn matches(&self, resource_type: &str, key: &Pattern) -> bool {
        if self.resource_type != resource_type {
            return false;
        }
        match (resource_type_grain(resource_type), &self.pattern) {
            (None, _) => false,
            (Some(_), Pattern::Any) => true,
            (Some(per_id), Pattern::Id(_)) => per_id && self.pattern == *key,
        }
    }

    /// `(workspace, *, MANAGE)`: a workspace admin, who is not restrictable.
    fn is_workspace_admin(&self) -> bool {
        self.resource_type == WORKSPACE && self.pattern == Pattern::Any && self.permission == Permission::Manage
    }
}

/// What an operation needs of a key: a capability, or only that the key is not denied.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    Read,
    Use,
    Update,
    Delete,
    Manage,
    NotDenied,
}

impl Action {
    pub fn met_by(self, p: Permission) -> bool {
        match self {
            Action::Read => p.can_read(),
            Action::Use => p.can_use(),
            Action::Update => p.can_update(),
            Action::Delete => p.can_delete(),
            Action::Manage => p.can_manage(),
            Action::NotDenied => p != Permission::Deny,
        }
    }
}

/// One thing an operation requires: `action` on `(resource_type, key)`, consulting the
/// `fallback` keys in order only when the own key holds no grant.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Requirement {
    pub resource_type: String,
    pub key: Pattern,
    pub action: Action,
    pub fallback: Vec<(String, Pattern)>,
}

impl Requirement {
    /// `action` on the one resource `id` names.
    pub fn new(resource_type: &str, id: &str, action: Action) -> Requirement {
        Requirement::at(resource_type, Pattern::id(id), action)
    }

    /// `action` on the type as a whole (MLflow's `Requirement(type, "*", ...)`).
    pub fn any(resource_type: &str, action: Action) -> Requirement {
        Requirement::at(resource_type, Pattern::Any, action)
    }

    fn at(resource_type: &str, key: Pattern, action: Action) -> Requirement {
        Requirement { resource_type: resource_type.to_string(), key, action, fallback: Vec::new() }
    }

    /// A sub-resource tier (`run`, `logged_model`, ...) that falls back to its container.
    pub fn tier(tier: &str, action: Action, parent_type: &str, parent_id: &str) -> Requirement {
        Requirement::any(tier, action).or_else(parent_type, Pattern::id(parent_id))
    }

    /// Consults `(resource_type, key)` when no earlier key holds a grant.
    pub fn or_else(mut self, resource_type: &str, key: Pattern) -> Requirement {
        self.fallback.push((resource_type.to_string(), key));
        self
    }
}

/// The grants one user holds (through all their roles in the default workspace), plus the
/// configured default; answers permission questions without touching a database.
#[derive(Debug, Clone)]
pub struct Grants {
    grants: Vec<Grant>,
    default: Permission,
    workspace_admin: bool,
}

impl Grants {
    pub fn new(grants: Vec<Grant>, default: Permission) -> Grants {
        let workspace_admin = grants.iter().any(Grant::is_workspace_admin);
        Grants { grants, default, workspace_admin }
    }

    pub fn default_permission(&self) -> Permission {
        self.default
    }

    /// `fold_grants_for_key`: `None` means no grant here (not "no access").
    pub fn fold(&self, resource_type: &str, key: &Pattern) -> Option<Permission> {
        if self.workspace_admin {
            return Some(Permission::Manage);
        }
        let mut denied = false;
        let mut best: Option<Permission> = None;
        for g in self.grants.iter().filter(|g| g.matches(resource_type, key)) {
            if g.permission == Permission::Deny {
                denied = true;
            } else {
                best = Some(best.map_or(g.permission, |b| b.max(g.permission)));
            }
        }
        if denied {
            Some(Permission::Deny)
        } else {
            best
        }
    }

    /// `_get_role_permission_or_default`: the permission on one resource by its own grants.
    pub fn permission(&self, resource_type: &str, resource_id: &str) -> Permission {
        self.permission_at(resource_type, &Pattern::id(resource_id))
    }

    /// As [`Grants::permission`], for a key that may be the wildcard (`get_user_permission`
    /// with `resource_id` `*`).
    pub fn permission_at(&self, resource_type: &str, key: &Pattern) -> Permission {
        match self.fold(resource_type, key) {
            None => self.default,
            Some(p) => p.floor(self.default),
        }
    }

    /// `governing_permission_and_action`: the first key (own, then fallbacks) holding a grant
    /// decides; with none, the default decides.
    pub fn governing(&self, r: &Requirement) -> Permission {
        let own = std::iter::once((r.resource_type.as_str(), &r.key));
        let rungs = own.chain(r.fallback.iter().map(|(t, k)| (t.as_str(), k)));
        for (t, id) in rungs {
            if let Some(p) = self.fold(t, id) {
                return if p == Permission::Deny { p } else { p.floor(self.default) };
            }
        }
        self.default
    }

    pub fn satisfied(&self, r: &Requirement) -> bool {
        r.action.met_by(self.governing(r))
    }

    /// `authorize`: every requirement must be met.
    pub fn authorize(&self, requirements: &[Requirement]) -> bool {
        requirements.iter().all(|r| self.satisfied(r))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use Action as A;
    use Permission::*;

    fn grants(list: &[(&str, &str, Permission)], default: Permission) -> Grants {
        Grants::new(list.iter().map(|(t, p, perm)| Grant::new(t, Pattern::from_wire(p), *perm)).collect(), default)
    }

    /// One table row: grants held, default, requirements → allowed?
    fn check(held: &[(&str, &str, Permission)], default: Permission, reqs: &[Requirement], expect: bool) {
        let g = grants(held, default);
        assert_eq!(g.authorize(reqs), expect, "held={held:?} default={default} reqs={reqs:?}");
    }

    fn exp(id: &str, a: A) -> Requirement {
        Requirement::new(EXPERIMENT, id, a)
    }

    /// What updating a run needs (`_run_requirement`): READ on the experiment and the action
    /// on the run tier, falling back to the experiment.
    fn run(exp_id: &str, a: A) -> Vec<Requirement> {
        vec![exp(exp_id, A::Read), Requirement::tier(RUN, a, EXPERIMENT, exp_id)]
    }

    #[test]
    fn capabilities_by_level() {
        let table = [
            (Read, [true, false, false, false, false]),
            (Use, [true, true, false, false, false]),
            (Edit, [true, true, true, false, false]),
            (Manage, [true, true, true, true, true]),
            (Deny, [false; 5]),
            (NoPermissions, [false; 5]),
        ];
        for (p, caps) in table {
            let got = [p.can_read(), p.can_use(), p.can_update(), p.can_delete(), p.can_manage()];
            assert_eq!(got, caps, "{p}");
            assert_eq!(Permission::parse(p.name()), Some(p));
        }
    }

    #[test]
    fn experiment_point_checks() {
        check(&[], Read, &[exp("1", A::Read)], true);
        check(&[], Read, &[exp("1", A::Update)], false);
        check(&[], NoPermissions, &[exp("1", A::Read)], false);
        check(&[(EXPERIMENT, "1", Edit)], Read, &[exp("1", A::Update)], true);
        check(&[(EXPERIMENT, "1", Edit)], Read, &[exp("1", A::Delete)], false);
        check(&[(EXPERIMENT, "1", Manage)], Read, &[exp("1", A::Delete)], true);
        check(&[(EXPERIMENT, "2", Manage)], Read, &[exp("1", A::Update)], false);
        check(&[(EXPERIMENT, "1", Deny)], Read, &[exp("1", A::Read)], false);
        check(&[(EXPERIMENT, "*", Edit)], Read, &[exp("7", A::Update)], true);
    }

    #[test]
    fn positive_grants_are_floored_to_the_default() {
        // A READ grant with default EDIT still edits; DENY is not floored.
        check(&[(EXPERIMENT, "1", Read)], Edit, &[exp("1", A::Update)], true);
        check(&[(EXPERIMENT, "1", Deny)], Manage, &[exp("1", A::Read)], false);
    }

    #[test]
    fn deny_wins_within_a_key() {
        check(&[(EXPERIMENT, "1", Manage), (EXPERIMENT, "1", Deny)], Read, &[exp("1", A::Read)], false);
        check(&[(EXPERIMENT, "1", Manage), (EXPERIMENT, "*", Deny)], Read, &[exp("1", A::Read)], false);
        check(&[(EXPERIMENT, "1", Read), (EXPERIMENT, "1", Edit)], Read, &[exp("1", A::Update)], true);
    }

    #[test]
    fn tier_override_for_runs() {
        // No run grant: the experiment decides.
        check(&[(EXPERIMENT, "1", Edit)], Read, &run("1", A::Update), true);
        check(&[(EXPERIMENT, "1", Use)], Read, &run("1", A::Update), false);
        check(&[], Read, &run("1", A::Read), true);
        // A run-tier grant decides over the experiment, downwards and upwards.
        check(&[(EXPERIMENT, "1", Manage), (RUN, "*", Deny)], Read, &run("1", A::Read), false);
        check(&[(EXPERIMENT, "1", Manage), (RUN, "*", Read)], Read, &run("1", A::Update), false);
        check(&[(RUN, "*", Edit)], Read, &run("1", A::Update), true);
        // The experiment READ baseline still applies.
        check(&[(EXPERIMENT, "1", Deny), (RUN, "*", Edit)], Read, &run("1", A::Update), false);
    }

    #[test]
    fn create_needs_the_created_type_not_denied() {
        let create = [exp("1", A::Update), Requirement::any(RUN, A::NotDenied)];
        check(&[(EXPERIMENT, "1", Edit)], Read, &create, true);
        check(&[(EXPERIMENT, "1", Edit), (RUN, "*", Deny)], Read, &create, false);
        check(&[], Read, &[Requirement::any(EXPERIMENT, A::NotDenied)], true);
        check(&[(EXPERIMENT, "*", Deny)], Read, &[Requirement::any(EXPERIMENT, A::NotDenied)], false);
        // A per-id DENY does not block creating others.
        check(&[(EXPERIMENT, "5", Deny)], Read, &[Requirement::any(EXPERIMENT, A::NotDenied)], true);
    }

    #[test]
    fn wildcard_only_tiers_ignore_per_id_rows() {
        check(&[(EXPERIMENT, "1", Manage), (RUN, "abc", Deny)], Read, &run("1", A::Read), true);
    }

    #[test]
    fn workspace_admin_is_not_restrictable() {
        check(&[(WORKSPACE, "*", Manage), (EXPERIMENT, "1", Deny)], NoPermissions, &run("1", A::Delete), true);
        check(&[(WORKSPACE, "*", Use)], NoPermissions, &[exp("1", A::Read)], false);
    }

    #[test]
    fn grant_validation() {
        let v = |t: &str, p: &str, perm: &str| validate_grant(t, &Pattern::from_wire(p), perm);
        assert!(v(EXPERIMENT, "1", "EDIT").is_ok());
        assert!(v(EXPERIMENT, "1", "NO_PERMISSIONS").is_err());
        assert!(v(EXPERIMENT, "1", "WRITE").is_err());
        assert!(v(RUN, "abc", "READ").is_err());
        assert!(v(RUN, "*", "DENY").is_ok());
        assert!(v(WORKSPACE, "*", "READ").is_err());
        assert!(v("dataset", "*", "READ").is_err());
        // An experiment grant names the id in its own spelling: any other would never match.
        assert!(v(EXPERIMENT, "*", "READ").is_ok());
        for bad in ["03", "+3", " 3", "3 ", "-0", "x", "\\*", ""] {
            assert!(v(EXPERIMENT, bad, "DENY").unwrap_err().contains("plain decimal"), "{bad:?}");
        }
        assert!(v(REGISTERED_MODEL, "03", "READ").is_ok());
    }

    /// Finding 1 of issue 21: the owner grant on a model *named* `*` is a grant on that name.
    #[test]
    fn a_resource_named_star_is_not_a_wildcard() {
        let owner_of_star = Grants::new(vec![Grant::new(REGISTERED_MODEL, Pattern::id("*"), Manage)], NoPermissions);
        assert_eq!(owner_of_star.permission(REGISTERED_MODEL, "*"), Manage);
        assert_eq!(owner_of_star.permission(REGISTERED_MODEL, "prod-model"), NoPermissions);
        assert!(!owner_of_star.satisfied(&Requirement::any(REGISTERED_MODEL, A::Read)));
        // The wildcard, which only the grant APIs make, still covers every name.
        let wildcard = grants(&[(REGISTERED_MODEL, "*", Edit)], NoPermissions);
        assert_eq!(wildcard.permission(REGISTERED_MODEL, "prod-model"), Edit);
        assert_eq!(wildcard.permission(REGISTERED_MODEL, "*"), Edit);
    }

    #[test]
    fn stored_patterns_round_trip_and_never_collide() {
        let names = ["*", "\\*", "\\", "\\\\*", "a*", "*a", "model", "1", ""];
        let mut stored: Vec<String> = names.iter().map(|n| Pattern::id(n).to_stored()).collect();
        stored.push(Pattern::Any.to_stored());
        for (name, s) in names.iter().zip(&stored) {
            assert_eq!(Pattern::from_stored(s), Pattern::id(name), "{name:?} stored as {s:?}");
        }
        assert_eq!(Pattern::from_stored("*"), Pattern::Any);
        let distinct: std::collections::HashSet<&String> = stored.iter().collect();
        assert_eq!(distinct.len(), stored.len(), "{stored:?}");
        // Rows MLflow wrote read back as it meant them.
        assert_eq!(Pattern::from_stored("my-model"), Pattern::id("my-model"));
    }
}
