//! A paged list's `limit` and `cursor`: read and checked from the query, and described in the
//! OpenAPI document, from one statement of the list's bounds.

use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use udaconnect_core::validate;
use utoipa::openapi::path::{Parameter, ParameterBuilder, ParameterIn};
use utoipa::openapi::schema::{KnownFormat, ObjectBuilder, SchemaFormat, Type};
use utoipa::openapi::Required;
use utoipa::IntoParams;

use crate::http::problem::ApiError;
use crate::http::responses::PageCursor;
use crate::http::Params;

/// Where a page of a list in id order starts, and how long it is: `limit`, 1 to `MAX`
/// (`DEFAULT` when not given), and `cursor`, the last id of the previous page. A list's
/// handler names its bounds as this type's parameters, in its signature and in `params(...)`:
/// the check and the document read the same constants, so they cannot drift apart.
pub struct Paging<const DEFAULT: usize, const MAX: usize> {
    /// The last id of the previous page; `None`: the first page.
    pub after: Option<i64>,
    pub limit: usize,
}

impl<S: Send + Sync, const DEFAULT: usize, const MAX: usize> FromRequestParts<S>
    for Paging<DEFAULT, MAX>
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        let Params(params) = Params::from_request_parts(parts, state).await?;
        let (after, limit) = validate::paging_params(&params, DEFAULT, MAX)?;
        Ok(Paging { after, limit })
    }
}

impl<const DEFAULT: usize, const MAX: usize> IntoParams for Paging<DEFAULT, MAX> {
    fn into_params(parameter_in: impl Fn() -> Option<ParameterIn>) -> Vec<Parameter> {
        let limit = ParameterBuilder::new()
            .name("limit")
            .parameter_in(ParameterIn::Query)
            .required(Required::False)
            .description(Some(format!("Page size, 1 to {MAX} (default {DEFAULT})")))
            .schema(Some(
                ObjectBuilder::new()
                    .schema_type(Type::Integer)
                    .format(Some(SchemaFormat::KnownFormat(KnownFormat::Int32)))
                    .minimum(Some(1))
                    .maximum(Some(MAX)),
            ))
            .build();
        let mut params = vec![limit];
        params.extend(PageCursor::into_params(parameter_in));
        params
    }
}
