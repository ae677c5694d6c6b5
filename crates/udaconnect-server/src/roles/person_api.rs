//! person-api: persons, over the person store it owns.

use std::sync::Arc;

use crate::http::ops;
use crate::persons::http::{routes, PersonApi};
use crate::persons::{DynPersonDirectory, LocalPersons};
use crate::roles::{Readiness, Role, RunningRole};
use crate::wiring::context::Context;

pub async fn start(ctx: &mut Context) -> anyhow::Result<Option<RunningRole>> {
    let Some(stores) = ctx.stores(Role::PersonApi).await? else {
        return Ok(None);
    };
    // The roles started after it in this process call it directly.
    let directory: DynPersonDirectory = Arc::new(LocalPersons::new(stores.persons.clone()));
    ctx.persons = Some(directory);
    let api = Arc::new(PersonApi {
        store: stores.persons.clone(),
        metrics: ctx.metrics.clone(),
    });
    let mut role = RunningRole::new(routes(api));
    role.checks
        .push((Readiness::PersonStore, ops::ping_check(&stores.persons)));
    Ok(Some(role))
}
