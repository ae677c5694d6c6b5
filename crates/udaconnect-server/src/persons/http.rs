//! person-api: create, read and list persons.

use std::sync::Arc;

use axum::extract::State;
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get, post};
use axum::{Json, Router};
use serde_json::Value;
use udaconnect_core::auth::{Action, Email, Resource, Role};
use udaconnect_core::model::{Person, PersonId};
use udaconnect_core::ports::DynPersonStore;
use udaconnect_core::{validate, Error, Result};

use crate::access::{ruled, Authenticator, Caller};
use crate::http::guard::json;
use crate::http::openapi::{
    lookup_ids_schema, optional_email_schema, text_schema, BadId, BadPage, BodyProblems,
    MalformedJson, NoSuchPerson, PersonPath,
};
use crate::http::paging::Paging;
use crate::http::problem::{found, ApiResult, Problem};
use crate::http::{page_answer, JsonBody, PathId};
use crate::metrics::Metrics;
use crate::persons::erase::{Erased, Eraser};
use crate::persons::DynPersonDirectory;
use crate::signin::http::SignInApi;

/// Page size when a client asks for none: large enough that the original's clients, which
/// knew no paging, still see every person of a mid-sized event.
pub const DEFAULT_PAGE: usize = 1000;
pub const MAX_PAGE: usize = 10_000;
/// Most ids one `POST /api/persons/lookup` takes.
pub const MAX_LOOKUP_IDS: usize = 10_000;

pub struct PersonApi {
    pub store: DynPersonStore,
    pub metrics: Arc<Metrics>,
    /// Accounts of persons created with an address, and their welcome mails.
    pub signin: Arc<SignInApi>,
    pub eraser: Arc<Eraser>,
    /// This process's person directory and credential cache, told of an erasure.
    pub directory: DynPersonDirectory,
    pub auth: Arc<Authenticator>,
}

pub fn routes(api: Arc<PersonApi>) -> Router {
    ruled![
        "/api/persons" => ListPersons on Service: get(list_persons),
        "/api/persons" => CreatePerson on Service: json(post(create_person)),
        "/api/persons/{id}" => GetPerson on PathPerson: get(get_person),
        "/api/persons/{id}" => ErasePerson on PathPerson: delete(erase_person),
        "/api/persons/lookup" => LookupPersons on Service: json(post(lookup_persons)),
    ]
    .with_state(api)
}

/// Body of `POST /api/persons`.
#[derive(utoipa::ToSchema)]
#[allow(dead_code)]
pub struct NewPersonBody {
    #[schema(schema_with = text_schema, example = "Ada")]
    first_name: String,
    #[schema(schema_with = text_schema, example = "Lovelace")]
    last_name: String,
    #[schema(schema_with = text_schema, example = "Analytical Engines")]
    company_name: String,
    /// Optional (organizers and admins): the person gets an attendee account with this
    /// address and a welcome mail with a sign-in link. Never shown in person answers.
    #[schema(schema_with = optional_email_schema, required = false)]
    email: Option<String>,
}

/// Create a person.
#[utoipa::path(post, path = "/api/persons", tag = "persons",
    request_body = NewPersonBody,
    responses(
        (status = 201, description = "Created", body = Person,
            headers(("Location" = String, description = "The person's URL")),
            links(
                ("GetPerson" = (operation_id = "get_person", parameters(("id" = "$response.body#/id")))),
                ("PersonSummary" = (operation_id = "summary", parameters(("id" = "$response.body#/id")))),
                ("PersonContacts" = (operation_id = "find_contacts", parameters(("id" = "$response.body#/id")))),
                ("PersonConnections" = (operation_id = "find_connections", parameters(("id" = "$response.body#/id"), ("start_date" = "2020-01-01"), ("end_date" = "2030-12-31")))),
                ("PingAsPerson" = (operation_id = "create_location", request_body = json!({"person_id": "$response.body#/id", "latitude": 37.55363, "longitude": -122.290883}))),
                ("LookUpPerson" = (operation_id = "lookup_persons", request_body = json!({"ids": ["$response.body#/id"]}))),
            )),
        MalformedJson,
        (status = 422, description = "A field is missing, blank, longer than 256 characters or holds NUL; or email is not an address", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "The email already belongs to an account", body = Problem, content_type = "application/problem+json"),
        BodyProblems,
    ))]
pub async fn create_person(
    State(api): State<Arc<PersonApi>>,
    caller: Caller,
    JsonBody(body): JsonBody,
) -> ApiResult<Response> {
    let new = validate::new_person(&body)?;
    let email = optional_email(&body)?;
    if let Some(email) = &email {
        // An address makes an account and mails it a link: an invitation, asked for apart.
        caller.may(Action::InviteAccount, Resource::NewAccount(Role::Attendee))?;
        // Checked before the person exists, so a taken address creates nothing; the account's
        // unique address still decides a race.
        api.signin.mail_log()?;
        if api.signin.accounts.account_by_email(email).await?.is_some() {
            return Err(Error::Conflict("this email already belongs to an account".into()).into());
        }
    }
    let person = api.store.create(new).await?;
    api.metrics.persons_created.inc();
    tracing::info!(person_id = person.id, "person created");
    if let Some(email) = &email {
        let account = api.signin.create_attendee(person.id, email).await?;
        api.signin.welcome(&account).await?;
        tracing::info!(
            person_id = person.id,
            account_id = account.id,
            "attendee account created; welcome mail queued"
        );
    }
    let location = HeaderValue::from_str(&format!("/api/persons/{}", person.id)).ok();
    let mut resp = (StatusCode::CREATED, Json(person)).into_response();
    if let Some(l) = location {
        resp.headers_mut().insert(header::LOCATION, l);
    }
    Ok(resp)
}

/// The optional `email` of a new person.
fn optional_email(body: &Value) -> Result<Option<Email>> {
    match body.get("email") {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Email::parse(s).map(Some),
        Some(_) => Err(Error::bad_request("email", "must be a string")),
    }
}

/// List persons in id order, a page at a time.
///
/// Without `limit` the first 1000 persons are returned. When more may follow, the answer has a
/// `Link: <...>; rel="next"` header and `X-Next-Cursor` with the cursor of the next page.
#[utoipa::path(get, path = "/api/persons", tag = "persons",
    params(Paging<DEFAULT_PAGE, MAX_PAGE>),
    responses(
        (status = 200, description = "A page of persons", body = [Person],
            headers(
                ("Link" = String, description = "`<...>; rel=\"next\"` when more may follow"),
                ("X-Next-Cursor" = i64, description = "The cursor of the next page, when more may follow"),
            )),
        BadPage,
    ))]
pub async fn list_persons(
    State(api): State<Arc<PersonApi>>,
    Paging { after, limit }: Paging<DEFAULT_PAGE, MAX_PAGE>,
) -> ApiResult<Response> {
    let page = api.store.list(after, limit).await?;
    Ok(page_answer(page, limit, |p| p.id, Some("/api/persons")))
}

/// Get one person.
#[utoipa::path(get, path = "/api/persons/{id}", tag = "persons",
    params(PersonPath),
    responses(
        (status = 200, description = "The person", body = Person),
        BadId,
        NoSuchPerson,
    ))]
pub async fn get_person(
    State(api): State<Arc<PersonApi>>,
    PathId(id): PathId,
) -> ApiResult<Json<Person>> {
    found("person", id, api.store.get(id).await?)
}

/// Erase a person (admins).
///
/// Destroys the key their pings on the log are sealed with, deletes their account (sessions,
/// tokens, devices), their pings in the location store and the contact index, and the person.
/// Cannot be undone. Erasing an erased person again answers 204 and changes nothing.
#[utoipa::path(delete, path = "/api/persons/{id}", tag = "persons",
    params(PersonPath),
    responses(
        (status = 204, description = "Erased"),
        BadId,
        (status = 409, description = "The person holds the last admin account: make another admin first", body = Problem, content_type = "application/problem+json"),
        NoSuchPerson,
    ))]
pub async fn erase_person(
    State(api): State<Arc<PersonApi>>,
    PathId(id): PathId,
) -> ApiResult<StatusCode> {
    api.eraser.check_known(id).await?;
    erase_and_forget(&api.eraser, &api.directory, &api.auth, id).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Erases `person`, then forgets them in this process's caches.
pub(crate) async fn erase_and_forget(
    eraser: &Eraser,
    directory: &DynPersonDirectory,
    auth: &Authenticator,
    person: PersonId,
) -> Result<Erased> {
    let erased = eraser.erase(person).await?;
    directory.forget(person);
    if let Some(account) = erased.account {
        auth.forget_account(account);
    }
    Ok(erased)
}

/// Body of `POST /api/persons/lookup`.
#[derive(utoipa::ToSchema)]
#[allow(dead_code)]
pub struct LookupBody {
    /// Person ids (JSON integers), at most 10,000; repeats are answered once.
    #[schema(schema_with = lookup_ids_schema, example = json!([1, 5, 6]))]
    ids: Vec<i64>,
}

/// Look up many persons at once.
///
/// Answers the persons among `ids` that exist, in id order; ids that name no person are left
/// out. The other roles ask person-api this way (a 3-day answer names thousands of persons).
#[utoipa::path(post, path = "/api/persons/lookup", tag = "persons",
    request_body = LookupBody,
    responses(
        (status = 200, description = "The persons that exist, in id order", body = [Person]),
        (status = 400, description = "Malformed JSON, or an id that is not an integer", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "No ids field, or more than 10,000 ids", body = Problem, content_type = "application/problem+json"),
        BodyProblems,
    ))]
pub async fn lookup_persons(
    State(api): State<Arc<PersonApi>>,
    JsonBody(body): JsonBody,
) -> ApiResult<Json<Vec<Person>>> {
    let ids = lookup_ids(&body)?;
    Ok(Json(api.store.get_many(&ids).await?))
}

/// The ids of a lookup body, sorted, without repeats.
fn lookup_ids(body: &Value) -> Result<Vec<PersonId>> {
    let Some(obj) = body.as_object() else {
        return Err(Error::bad_request(
            "body",
            r#"must be a JSON object ({"ids": [...]})"#,
        ));
    };
    let items = match obj.get("ids") {
        None | Some(Value::Null) => return Err(Error::invalid("ids", "is required")),
        Some(Value::Array(items)) => items,
        Some(_) => return Err(Error::bad_request("ids", "must be an array of person ids")),
    };
    if items.len() > MAX_LOOKUP_IDS {
        return Err(Error::invalid(
            "ids",
            format!("at most {MAX_LOOKUP_IDS} ids per call, not {}", items.len()),
        ));
    }
    let mut ids = Vec::with_capacity(items.len());
    for (i, item) in items.iter().enumerate() {
        match item.as_number().and_then(validate::integer) {
            Some(id) => ids.push(id),
            None => {
                return Err(Error::bad_request(
                    format!("ids[{i}]"),
                    format!("{item} is not an integer id"),
                ))
            }
        }
    }
    ids.sort_unstable();
    ids.dedup();
    Ok(ids)
}
