//! The OpenAPI description, generated from the handlers and types.

use utoipa::OpenApi;

use crate::http::ops;
use crate::ingest::http as location_api;
use crate::persons::http as person_api;
use crate::query::http as connection_api;
use crate::query::live;

#[derive(OpenApi)]
#[openapi(
    info(
        title = "UdaConnect",
        description = "Who met whom at a conference, from attendees' location pings. \
            Errors are RFC 9457 problem+json bodies naming the invalid fields. Every answer \
            carries X-Correlation-ID (taken from the request when sent, also as correlationId). \
            Any operation answers 421 to a Host header the server is not configured for \
            (--allowed-hosts). Pings timed more than --max-future-skew (default 1 day) ahead \
            of the server's clock are refused with 422.",
        license(name = "Apache-2.0"),
    ),
    paths(
        person_api::create_person,
        person_api::list_persons,
        person_api::get_person,
        person_api::lookup_persons,
        location_api::create_location,
        location_api::create_locations,
        location_api::get_location,
        connection_api::find_connections,
        connection_api::find_contacts,
        connection_api::summary,
        live::stream,
        live::positions,
        live::heat,
        live::venue,
        ops::health,
        ops::ready,
        ops::metrics,
    ),
    components(schemas(
        udaconnect_core::model::Person,
        udaconnect_core::model::Location,
        udaconnect_core::model::Connection,
        udaconnect_core::FieldViolation,
        crate::http::problem::Problem,
        person_api::NewPersonBody,
        person_api::LookupBody,
        location_api::NewLocationBody,
        location_api::BatchAccepted,
        ops::Readiness,
        connection_api::ContactRow,
        connection_api::EncounterRow,
        connection_api::PersonSummary,
        live::Rate,
        live::Heat,
        live::HeatCell,
        udaconnect_core::venue::Venue,
        udaconnect_core::venue::Area,
        udaconnect_core::venue::AreaKind,
        udaconnect_core::venue::LatLon,
    )),
    tags(
        (name = "persons", description = "Attendees"),
        (name = "locations", description = "Location pings"),
        (name = "connections", description = "Who was near whom"),
        (name = "live", description = "The venue live: positions as they arrive"),
        (name = "operations", description = "Health, readiness, metrics"),
    )
)]
pub struct ApiDoc;

pub fn spec_json() -> String {
    ApiDoc::openapi()
        .to_pretty_json()
        .unwrap_or_else(|_| "{}".into())
}
