//! web: the web page; run apart, also the one entry point that routes every `/api` path to
//! the role that owns it. In `serve` the other roles' routes are in the same process.

use std::sync::Arc;

use axum::Router;

use crate::http::gateway::{self, Gateway};
use crate::http::web::{routes, Web};
use crate::roles::{Role, RunningRole};
use crate::wiring::context::{Context, Mode};

pub async fn start(ctx: &mut Context) -> anyhow::Result<Option<RunningRole>> {
    let page = routes(Arc::new(Web {
        dir: ctx.options.web_dir.clone(),
    }));
    let router = match ctx.mode {
        Mode::Together => page,
        Mode::Apart => {
            let upstreams = Role::Web
                .depends_on()
                .iter()
                .map(|role| ctx.upstream(*role))
                .collect::<anyhow::Result<Vec<_>>>()?;
            Router::new()
                .merge(gateway::routes(Arc::new(Gateway::new(
                    upstreams,
                    ctx.auth.clone(),
                ))))
                .merge(page)
        }
    };
    Ok(Some(RunningRole::new(router)))
}
