use super::*;
use crate::config::{AuthConfig, LEGACY_ADMIN_PASSWORD};
use crate::permission::{Action, Permission, Requirement, EXPERIMENT, REGISTERED_MODEL, RUN};

async fn store() -> AuthStore {
    AuthStore::open("sqlite://").await.unwrap()
}

#[tokio::test]
async fn users_grants_and_roles() {
    let s = store().await;
    let cfg = AuthConfig { admin_password: Some("admin-password-1".into()), ..AuthConfig::default() };
    s.bootstrap_admin(&cfg).await.unwrap();
    assert!(s.authenticate("admin", "admin-password-1").await.unwrap().unwrap().is_admin);
    assert!(s.authenticate("admin", "wrong").await.unwrap().is_none());
    assert!(s.authenticate("nobody", "wrong").await.unwrap().is_none());

    let alice = s.create_user("alice", "alice-password", false).await.unwrap();
    assert!(matches!(s.create_user("alice", "alice-password", false).await, Err(AuthError::AlreadyExists(_))));
    assert!(matches!(s.create_user("bob", "short", false).await, Err(AuthError::InvalidParameter(_))));

    let one = Pattern::id("1");
    s.grant_user_permission("alice", EXPERIMENT, &one, "EDIT").await.unwrap();
    assert!(matches!(
        s.grant_user_permission("alice", EXPERIMENT, &one, "READ").await,
        Err(AuthError::AlreadyExists(_))
    ));
    let g = s.grants(alice.id, Permission::Read).await.unwrap();
    assert_eq!(g.permission(EXPERIMENT, "1"), Permission::Edit);
    assert_eq!(g.permission(EXPERIMENT, "2"), Permission::Read);

    // A role denying the run tier overrides the experiment grant for runs.
    let role = s.create_role("no-runs", DEFAULT_WORKSPACE, Some("d")).await.unwrap();
    s.add_role_permission(role.id, RUN, &Pattern::Any, "DENY").await.unwrap();
    s.assign_role(alice.id, role.id).await.unwrap();
    let g = s.grants(alice.id, Permission::Read).await.unwrap();
    assert!(!g.authorize(&[Requirement::tier(RUN, Action::Read, EXPERIMENT, "1")]));
    s.unassign_role(alice.id, role.id).await.unwrap();

    s.revoke_user_permission("alice", EXPERIMENT, &one).await.unwrap();
    assert!(matches!(s.revoke_user_permission("alice", EXPERIMENT, &one).await, Err(AuthError::NotFound(_))));

    s.update_password("alice", "alice-password-2").await.unwrap();
    assert!(s.authenticate("alice", "alice-password").await.unwrap().is_none());
    s.delete_user("alice").await.unwrap();
    assert!(s.authenticate("alice", "alice-password-2").await.unwrap().is_none());
    assert_eq!(s.list_roles(&[]).await.unwrap().len(), 1);
}

/// Owner grants: claimed (clearing leftovers), copied for a rename, removed by row id.
#[tokio::test]
async fn grants_follow_a_resource_by_row() {
    let s = store().await;
    let alice = s.create_user("alice", "alice-password", false).await.unwrap();
    let bob = s.create_user("bob", "bob-password-1", false).await.unwrap();
    let perm = |u: i64, name: &'static str| {
        let s = &s;
        async move { s.grants(u, Permission::NoPermissions).await.unwrap().permission(REGISTERED_MODEL, name) }
    };
    // A leftover grant of bob's on a free name is gone once alice claims the name.
    s.grant_user_permission("bob", REGISTERED_MODEL, &Pattern::id("m"), "MANAGE").await.unwrap();
    let claim = s.claim("alice", REGISTERED_MODEL, "m").await.unwrap();
    assert_eq!((perm(alice.id, "m").await, perm(bob.id, "m").await), (Permission::Manage, Permission::NoPermissions));
    // A model named `*` is owned by name, not as a wildcard.
    s.claim("alice", REGISTERED_MODEL, "*").await.unwrap();
    assert_eq!(perm(alice.id, "other").await, Permission::NoPermissions);
    assert_eq!(perm(alice.id, "*").await, Permission::Manage);
    // Rename: copies first; the originals go once the rename committed.
    let copy = s.copy_grants(REGISTERED_MODEL, "m", "n").await.unwrap();
    assert_eq!(copy.originals, claim);
    assert_eq!((perm(alice.id, "m").await, perm(alice.id, "n").await), (Permission::Manage, Permission::Manage));
    s.remove(&copy.originals).await.unwrap();
    assert_eq!((perm(alice.id, "m").await, perm(alice.id, "n").await), (Permission::NoPermissions, Permission::Manage));
    // Deletion removes the rows it saw, and not one written after.
    let seen = s.grants_on(REGISTERED_MODEL, "n").await.unwrap();
    s.claim("bob", REGISTERED_MODEL, "n").await.unwrap();
    s.remove(&seen).await.unwrap();
    assert_eq!(perm(bob.id, "n").await, Permission::Manage);
    // Role grants written by an admin are never touched.
    let role = s.create_role("readers", DEFAULT_WORKSPACE, None).await.unwrap();
    s.add_role_permission(role.id, REGISTERED_MODEL, &Pattern::id("n"), "READ").await.unwrap();
    s.claim("alice", REGISTERED_MODEL, "n").await.unwrap();
    assert_eq!(s.list_role_permissions(role.id).await.unwrap().len(), 1);
    assert!(is_synthetic_role_name(&synthetic_role_name(alice.id)) && !is_synthetic_role_name("readers"));
    assert!(!is_synthetic_role_name("__user_x__") && !is_synthetic_role_name("__user___"));
}

#[test]
fn auth_database_must_not_be_the_tracking_sqlite_file() {
    let dir = tempfile::tempdir().unwrap();
    let file = |name: &str| format!("sqlite:///{}", dir.path().join(name).display());
    std::fs::write(dir.path().join("mlflow.db"), b"").unwrap();
    assert!(check_separate_from_tracking(&file("mlflow.db"), &file("mlflow.db")).is_err());
    assert!(check_separate_from_tracking(&file("basic_auth.db"), &file("mlflow.db")).is_ok());
    let pg = "postgresql://u@h:5432/db";
    assert!(check_separate_from_tracking(pg, pg).is_ok());
}

#[tokio::test]
async fn bootstrap_refuses_without_a_password() {
    let s = store().await;
    let err = s.bootstrap_admin(&AuthConfig::default()).await.unwrap_err();
    assert!(err.to_string().contains("MLFLOW_AUTH_ADMIN_PASSWORD"), "{err}");
    let legacy = AuthConfig { admin_password: Some(LEGACY_ADMIN_PASSWORD.into()), ..AuthConfig::default() };
    assert!(s.bootstrap_admin(&legacy).await.is_err());
}
