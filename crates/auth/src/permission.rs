//! Permission levels, grants and how a set of grants answers what an operation requires.
//! A port of MLflow 3.17.2's `mlflow/server/auth/permissions.py` and `requirements.py`; pure,
//! so the precedence rules (the security-critical part) are tested without a database.
//!
//! Two folds, as in MLflow: *within a key* several grants can match (one per role the user
//! holds): a `DENY` among them wins, otherwise the highest. *Across keys* (a requirement's own
//! key, then its fallbacks) the first key holding any grant decides (tier override), so a
//! `DENY` is never rescued by a more permissive parent. With no grant anywhere the configured
//! `default_permission` applies (MLflow with workspaces disabled, which is what we serve).

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
pub fn validate_grant(resource_type: &str, pattern: &str, permission: &str) -> Result<Permission, String> {
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
    if pattern != "*" && resource_type_grain(resource_type) == Some(false) {
        return Err(format!(
            "Invalid resource_pattern '{pattern}' for resource_type='{resource_type}'. This resource type supports only wildcard ('*') grants."
        ));
    }
    Ok(perm)
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

/// One grant row: a role's permission on `(resource_type, pattern)`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Grant {
    pub resource_type: String,
    pub pattern: String,
    pub permission: Permission,
}

impl Grant {
    pub fn new(resource_type: &str, pattern: &str, permission: Permission) -> Grant {
        Grant { resource_type: resource_type.to_string(), pattern: pattern.to_string(), permission }
    }

    fn matches(&self, resource_type: &str, resource_id: &str) -> bool {
        if self.resource_type != resource_type {
            return false;
        }
        match resource_type_grain(resource_type) {
            None => false,
            Some(per_id) => self.pattern == "*" || (per_id && self.pattern == resource_id),
        }
    }

    /// `(workspace, *, MANAGE)`: a workspace admin, who is not restrictable.
    fn is_workspace_admin(&self) -> bool {
        self.resource_type == WORKSPACE && self.pattern == "*" && self.permission == Permission::Manage
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

/// One thing an operation requires: `action` on `(resource_type, resource_id)`, consulting
/// the `fallback` keys in order only when the own key holds no grant.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Requirement {
    pub resource_type: String,
    pub resource_id: String,
    pub action: Action,
    pub fallback: Vec<(String, String)>,
}

impl Requirement {
    pub fn new(resource_type: &str, resource_id: &str, action: Action) -> Requirement {
        Requirement {
            resource_type: resource_type.to_string(),
            resource_id: resource_id.to_string(),
            action,
            fallback: Vec::new(),
        }
    }

    /// A sub-resource tier (`run`, `logged_model`, ...) that falls back to its container.
    pub fn tier(tier: &str, action: Action, parent_type: &str, parent_id: &str) -> Requirement {
        let mut r = Requirement::new(tier, "*", action);
        r.fallback.push((parent_type.to_string(), parent_id.to_string()));
        r
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
    pub fn fold(&self, resource_type: &str, resource_id: &str) -> Option<Permission> {
        if self.workspace_admin {
            return Some(Permission::Manage);
        }
        let mut denied = false;
        let mut best: Option<Permission> = None;
        for g in self.grants.iter().filter(|g| g.matches(resource_type, resource_id)) {
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
        match self.fold(resource_type, resource_id) {
            None => self.default,
            Some(p) => p.floor(self.default),
        }
    }

    /// `governing_permission_and_action`: the first key (own, then fallbacks) holding a grant
    /// decides; with none, the default decides.
    pub fn governing(&self, r: &Requirement) -> Permission {
        let own = std::iter::once((r.resource_type.as_str(), r.resource_id.as_str()));
        let rungs = own.chain(r.fallback.iter().map(|(t, i)| (t.as_str(), i.as_str())));
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
        Grants::new(list.iter().map(|(t, p, perm)| Grant::new(t, p, *perm)).collect(), default)
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
        let create = [exp("1", A::Update), Requirement::new(RUN, "*", A::NotDenied)];
        check(&[(EXPERIMENT, "1", Edit)], Read, &create, true);
        check(&[(EXPERIMENT, "1", Edit), (RUN, "*", Deny)], Read, &create, false);
        check(&[], Read, &[Requirement::new(EXPERIMENT, "*", A::NotDenied)], true);
        check(&[(EXPERIMENT, "*", Deny)], Read, &[Requirement::new(EXPERIMENT, "*", A::NotDenied)], false);
        // A per-id DENY does not block creating others.
        check(&[(EXPERIMENT, "5", Deny)], Read, &[Requirement::new(EXPERIMENT, "*", A::NotDenied)], true);
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
        assert!(validate_grant(EXPERIMENT, "1", "EDIT").is_ok());
        assert!(validate_grant(EXPERIMENT, "1", "NO_PERMISSIONS").is_err());
        assert!(validate_grant(EXPERIMENT, "1", "WRITE").is_err());
        assert!(validate_grant(RUN, "abc", "READ").is_err());
        assert!(validate_grant(RUN, "*", "DENY").is_ok());
        assert!(validate_grant(WORKSPACE, "*", "READ").is_err());
        assert!(validate_grant("dataset", "*", "READ").is_err());
    }
}
