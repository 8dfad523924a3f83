//! The OpenAPI 3.1 document of every route the service answers, generated from the code's
//! types with utoipa, served at `/api-docs/openapi.json`, and a viewer at `/docs` that needs
//! no network (its script renders the document with DOM text APIs).

use std::sync::LazyLock;

use axum::Router;
use utoipa::OpenApi;
use utoipa::openapi::content::ContentBuilder;
use utoipa::openapi::path::{
    HttpMethod, OperationBuilder, ParameterBuilder, ParameterIn, PathItem,
};
use utoipa::openapi::response::ResponseBuilder;
use utoipa::openapi::schema::{ObjectBuilder, Type};
use utoipa::openapi::{Ref, RefOr, Required};

use super::OrderList;
use crate::domain::{Delivery, Item, Order, OrderSummary, Payment};

/// RFC 9457 problem details, as every error is answered.
#[derive(Debug, serde::Serialize, utoipa::ToSchema)]
pub struct ProblemDetails {
    /// A URI for the problem type; `about:blank` for plain HTTP statuses.
    #[serde(rename = "type")]
    pub type_uri: String,
    pub title: String,
    pub status: u16,
    pub detail: Option<String>,
    /// Stable machine code, snake_case.
    pub code: String,
}

#[derive(OpenApi)]
#[openapi(
    info(
        title = "orders-service",
        description = "Orders consumed from Kafka, stored in PostgreSQL and served from an in-memory cache."
    ),
    components(schemas(
        Order,
        Delivery,
        Payment,
        Item,
        OrderSummary,
        OrderList,
        ProblemDetails
    ))
)]
struct Schemas;

static DOCUMENT: LazyLock<String> = LazyLock::new(|| {
    let mut api = Schemas::openapi();
    let paths = &mut api.paths;
    for (path, id, summary) in [
        (
            "/order/{order_uid}",
            "getOrder",
            "One order by id (the original contract's path)",
        ),
        (
            "/api/v1/orders/{order_uid}",
            "getOrderV1",
            "One order by id",
        ),
    ] {
        paths.add_path_operation(path, vec![HttpMethod::Get], order_operation(id, summary));
    }
    paths.add_path_operation(
        "/api/v1/orders",
        vec![HttpMethod::Get],
        OperationBuilder::new()
            .operation_id(Some("listOrders"))
            .summary(Some(
                "The most recent orders, newest first, keyset-paginated",
            ))
            .parameter(query_parameter(
                "limit",
                "Page size, 1 to 100 (default 20)",
                Type::Integer,
            ))
            .parameter(query_parameter(
                "before",
                "The `next` cursor of the previous page",
                Type::String,
            ))
            .response("200", json_response("A page of orders", "OrderList"))
            .response("400", problem("A bad limit or cursor"))
            .response("503", problem("The database cannot be reached"))
            .build(),
    );
    for (path, id, summary, content_type, description) in [
        ("/", "page", "The support page", "text/html", "The page"),
        (
            "/livez",
            "livez",
            "Liveness",
            "application/json",
            "The process runs",
        ),
        (
            "/metrics",
            "metrics",
            "Prometheus metrics",
            "text/plain",
            "Metrics in the Prometheus text format",
        ),
        (
            "/api-docs/openapi.json",
            "openapi",
            "This document",
            "application/json",
            "OpenAPI 3.1",
        ),
        (
            "/docs",
            "docs",
            "A viewer of this document",
            "text/html",
            "The viewer",
        ),
    ] {
        paths.paths.insert(
            path.to_owned(),
            PathItem::new(
                HttpMethod::Get,
                simple_operation(id, summary, content_type, description),
            ),
        );
    }
    paths.add_path_operation(
        "/readyz",
        vec![HttpMethod::Get],
        OperationBuilder::new()
            .operation_id(Some("readyz"))
            .summary(Some(
                "Readiness: database reachable, consumer running, warm-up done",
            ))
            .response(
                "200",
                plain_response("Ready, with each check's state", "application/json"),
            )
            .response(
                "503",
                plain_response("Not ready, naming the failing checks", "application/json"),
            )
            .build(),
    );
    // The document is built from constants; a failure to serialize it would be a bug.
    api.to_pretty_json().unwrap_or_default()
});

fn order_operation(id: &str, summary: &str) -> utoipa::openapi::path::Operation {
    OperationBuilder::new()
        .operation_id(Some(id))
        .summary(Some(summary))
        .parameter(
            ParameterBuilder::new()
                .name("order_uid")
                .parameter_in(ParameterIn::Path)
                .required(Required::True)
                .description(Some("1 to 64 characters of A-Z, a-z, 0-9, '_' or '-'"))
                .schema(Some(ObjectBuilder::new().schema_type(Type::String))),
        )
        .parameter(
            ParameterBuilder::new()
                .name("If-None-Match")
                .parameter_in(ParameterIn::Header)
                .required(Required::False)
                .description(Some("An ETag from an earlier answer: 304 when it still matches"))
                .schema(Some(ObjectBuilder::new().schema_type(Type::String))),
        )
        .response(
            "200",
            ResponseBuilder::new()
                .description("The order, fields in the contract's order; `X-Cache` says `hit` or `miss`; immutable, with an `ETag`")
                .content("application/json", ContentBuilder::new().schema(Some(Ref::from_schema_name("Order"))).build())
                .build(),
        )
        .response("304", ResponseBuilder::new().description("Not modified").build())
        .response("400", problem("Not an order id"))
        .response("404", problem("No order with this id"))
        .response("503", problem("Not cached and the database cannot be reached"))
        .build()
}

fn query_parameter(name: &str, description: &str, kind: Type) -> utoipa::openapi::path::Parameter {
    ParameterBuilder::new()
        .name(name)
        .parameter_in(ParameterIn::Query)
        .required(Required::False)
        .description(Some(description))
        .schema(Some(ObjectBuilder::new().schema_type(kind)))
        .build()
}

fn json_response(description: &str, schema: &str) -> RefOr<utoipa::openapi::Response> {
    ResponseBuilder::new()
        .description(description)
        .content(
            "application/json",
            ContentBuilder::new()
                .schema(Some(Ref::from_schema_name(schema)))
                .build(),
        )
        .build()
        .into()
}

fn problem(description: &str) -> RefOr<utoipa::openapi::Response> {
    ResponseBuilder::new()
        .description(description)
        .content(
            "application/problem+json",
            ContentBuilder::new()
                .schema(Some(Ref::from_schema_name("ProblemDetails")))
                .build(),
        )
        .build()
        .into()
}

fn plain_response(description: &str, content_type: &str) -> RefOr<utoipa::openapi::Response> {
    ResponseBuilder::new()
        .description(description)
        .content(content_type, ContentBuilder::new().build())
        .build()
        .into()
}

fn simple_operation(
    id: &str,
    summary: &str,
    content_type: &str,
    description: &str,
) -> utoipa::openapi::path::Operation {
    OperationBuilder::new()
        .operation_id(Some(id))
        .summary(Some(summary))
        .response("200", plain_response(description, content_type))
        .build()
}

/// The document as served.
pub fn document() -> &'static str {
    &DOCUMENT
}

/// The document and its viewer, served by [`platform::http::api_docs_router`].
pub(super) fn router() -> Router {
    platform::http::api_docs_router("orders-service API", document())
}
