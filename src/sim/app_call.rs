//! The one preamble of every handler under `/v1/apps/{app_name}/…`: the simulator's
//! state, the caller's token scope and the path, extracted together ([`AppCall`]), and
//! the app check every such handler runs first inside the world lock (404 for an app
//! that does not exist or is not yet visible, 403 for one the token may not see; see
//! [`visible_app`]). Knows nothing of what a handler does with the app.

use std::sync::Arc;

use axum::extract::{Extension, FromRequestParts, Path};
use axum::http::request::Parts;
use axum::response::{IntoResponse, Response};
use serde::de::DeserializeOwned;

use super::Shared;
use super::http::{ApiError, Scope, visible_app};
use super::model::{App, World};

/// A path whose first segment is `{app_name}`.
pub(crate) trait AppPath {
    /// The app the path names.
    fn app(&self) -> &str;
}

impl AppPath for String {
    fn app(&self) -> &str {
        self
    }
}

impl AppPath for (String, String) {
    fn app(&self) -> &str {
        &self.0
    }
}

impl AppPath for (String, String, String) {
    fn app(&self) -> &str {
        &self.0
    }
}

/// `State`, `Extension<Scope>` and `Path<P>`, extracted in that order (so a missing
/// scope or a bad path is rejected exactly as the three separate extractors would).
#[derive(Debug)]
pub(crate) struct AppCall<P> {
    pub(crate) s: Arc<Shared>,
    pub(crate) scope: Scope,
    pub(crate) path: P,
}

impl<P> FromRequestParts<Arc<Shared>> for AppCall<P>
where
    P: DeserializeOwned + Send,
{
    type Rejection = Response;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &Arc<Shared>,
    ) -> Result<Self, Self::Rejection> {
        let (scope, path) = scope_and_path(parts, state).await?;
        Ok(AppCall {
            s: Arc::clone(state),
            scope,
            path,
        })
    }
}

/// `Extension<Scope>` then `Path<P>`, each rejected as that extractor alone would be:
/// the preamble of [`AppCall`] and of the org listings.
pub(crate) async fn scope_and_path<P>(
    parts: &mut Parts,
    state: &Arc<Shared>,
) -> Result<(Scope, P), Response>
where
    P: DeserializeOwned + Send,
{
    let Extension(scope) = Extension::<Scope>::from_request_parts(parts, state)
        .await
        .map_err(IntoResponse::into_response)?;
    let Path(path) = Path::<P>::from_request_parts(parts, state)
        .await
        .map_err(IntoResponse::into_response)?;
    Ok((scope, path))
}

impl<P: AppPath> AppCall<P> {
    /// The app the path names.
    pub(crate) fn app(&self) -> &str {
        self.path.app()
    }

    /// Runs `f` on the world once the app is visible to the caller.
    pub(crate) fn world<R>(
        &self,
        f: impl FnOnce(&mut World, u64) -> Result<R, ApiError>,
    ) -> Result<R, ApiError> {
        self.s.with_world(|w, now| {
            visible_app(w, &self.scope, self.path.app())?;
            f(w, now)
        })
    }

    /// Runs `f` on the visible app, read-only.
    pub(crate) fn read<R>(
        &self,
        f: impl FnOnce(&World, &App, u64) -> Result<R, ApiError>,
    ) -> Result<R, ApiError> {
        self.world(|w, now| {
            let a = w
                .apps
                .get(self.path.app())
                .ok_or_else(|| ApiError::not_found("app not found"))?;
            f(w, a, now)
        })
    }
}

impl AppCall<(String, String)> {
    /// The app and the id after it (`…/machines/{machine_id}`, `…/volumes/{volume_id}`).
    pub(crate) fn ids(&self) -> (&str, &str) {
        (&self.path.0, &self.path.1)
    }
}

impl AppCall<(String, String, String)> {
    /// The app and the two segments after it.
    pub(crate) fn keys(&self) -> (&str, &str, &str) {
        (&self.path.0, &self.path.1, &self.path.2)
    }
}
