//! Grants that belong to a resource's life: the creator's `MANAGE`, written with the resource;
//! per-user grants that follow a registered model through a rename and go with its deletion.
//! MLflow does these in after-request handlers, so a failure between the two writes leaves a
//! resource nobody owns or a grant on a name someone else takes next.
//!
//! The auth database may be another database than the tracking store, so there is no shared
//! transaction. The order makes every failure safe instead (ARCHITECTURE.md, "Owner grants"):
//! the grant is written while the resource's own transaction is open and holds its key, and the
//! resource commits only if the grant did; if the commit then fails, the grant is taken back by
//! row id. Whatever a crash still leaves behind sits on a key no resource holds, and
//! [`auth::AuthStore::claim`] clears it when that key is next created.

use crate::auth::{Auth, Caller, Session};
use crate::error::ApiResult;
use crate::AppState;
use ::auth::permission::{EXPERIMENT, REGISTERED_MODEL};
use ::auth::{AuthError, GrantCopy, GrantRows};
use tracking::{KeyValue, RegisteredModel};

/// Creates an experiment owned by the caller.
pub async fn create_experiment(
    s: &AppState,
    who: &Caller,
    name: &str,
    location: Option<&str>,
    tags: &[KeyValue],
) -> ApiResult<String> {
    let Some(session) = who.session() else { return Ok(s.store.experiments().create(name, location, tags).await?) };
    let mut written = None;
    let created = s
        .store
        .experiments()
        .create_then(name, location, tags, |id| claim(session, EXPERIMENT, id, &mut written))
        .await;
    settle(&session.auth, created, written).await
}

/// Creates a registered model owned by the caller.
pub async fn create_registered_model(
    s: &AppState,
    who: &Caller,
    name: &str,
    description: Option<&str>,
    tags: &[KeyValue],
) -> ApiResult<RegisteredModel> {
    let Some(session) = who.session() else {
        return Ok(s.store.registered_models().create(name, description, tags).await?);
    };
    let mut written = None;
    let created = s
        .store
        .registered_models()
        .create_then(name, description, tags, |name| claim(session, REGISTERED_MODEL, name, &mut written))
        .await;
    settle(&session.auth, created, written).await
}

/// Renames a registered model; its per-user grants move with it.
pub async fn rename_registered_model(s: &AppState, name: &str, new_name: &str) -> ApiResult<RegisteredModel> {
    let Some(auth) = &s.auth else { return Ok(s.store.registered_models().rename(name, new_name).await?) };
    let mut copied: Option<GrantCopy> = None;
    let renamed =
        s.store.registered_models().rename_then(name, new_name, |old, new| copy(auth, old, new, &mut copied)).await;
    match renamed {
        Ok(Ok(model)) => {
            if let Some(copy) = copied {
                remove(auth, &copy.originals).await;
            }
            Ok(model)
        }
        Ok(Err(e)) => Err(e.into()),
        Err(e) => {
            if let Some(copy) = copied {
                remove(auth, &copy.copies).await;
            }
            Err(e.into())
        }
    }
}

/// Deletes a registered model and then the per-user grants it had when it was deleted (not
/// any written since: the name may already be someone else's).
pub async fn delete_registered_model(s: &AppState, name: &str) -> ApiResult<()> {
    let Some(auth) = &s.auth else { return Ok(s.store.registered_models().delete(name).await?) };
    let grants = auth.store.grants_on(REGISTERED_MODEL, name).await?;
    s.store.registered_models().delete(name).await?;
    remove(auth, &grants).await;
    Ok(())
}

/// The hook run inside the creation's transaction.
async fn claim(
    session: &Session,
    resource_type: &str,
    id: String,
    written: &mut Option<GrantRows>,
) -> Result<(), AuthError> {
    *written = Some(session.auth.store.claim(&session.user.username, resource_type, &id).await?);
    Ok(())
}

/// The hook run inside the rename's transaction.
async fn copy(auth: &Auth, old: String, new: String, copied: &mut Option<GrantCopy>) -> Result<(), AuthError> {
    *copied = Some(auth.store.copy_grants(REGISTERED_MODEL, &old, &new).await?);
    Ok(())
}

/// The outcome of a creation whose grant was written before it committed.
async fn settle<T>(
    auth: &Auth,
    outcome: tracking::Result<Result<T, AuthError>>,
    written: Option<GrantRows>,
) -> ApiResult<T> {
    match outcome {
        Ok(Ok(created)) => Ok(created),
        // The grant failed, so the creation was rolled back: nothing to undo.
        Ok(Err(e)) => Err(e.into()),
        Err(e) => {
            if let Some(rows) = written {
                remove(auth, &rows).await;
            }
            Err(e.into())
        }
    }
}

/// Best effort: rows left behind point at a key no resource holds, and are cleared when the
/// key is next created.
async fn remove(auth: &Auth, rows: &GrantRows) {
    if let Err(e) = auth.store.remove(rows).await {
        tracing::error!(error = %e, rows = ?rows.0, "could not remove grant rows; the next owner of the name clears them");
    }
}
