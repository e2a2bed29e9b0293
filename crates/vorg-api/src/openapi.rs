//! The OpenAPI 3.1 document, generated from the handlers' annotations and completed from the
//! access table: each operation states its permission, roles, security and error answers.
//! Served at `/openapi.json` and browsable at `/docs` (Swagger UI, vendored in the binary).

use axum::Router;
use utoipa::{
    OpenApi,
    openapi::{
        self, Content, RefOr, Response, ResponseBuilder,
        path::Operation,
        schema::Ref,
        security::{HttpAuthScheme, HttpBuilder, SecurityRequirement, SecurityScheme},
    },
};
use utoipa_swagger_ui::SwaggerUi;

use crate::{
    access::{self, Access},
    error::{FieldError, Problem},
};

#[derive(OpenApi)]
#[openapi(
    info(
        title = "vorg",
        description = "Run a virtual organization staffed by AI agents. Errors are \
            `application/problem+json` (RFC 9457) with a stable `code`. Authenticate with \
            `Authorization: Bearer <token>`: a JWT from `POST /auth/login` or an API token \
            from `POST /auth/tokens`. Each operation names the permission it needs and the \
            roles that hold it (the table is also at `GET /auth/permissions`)."
    ),
    components(schemas(Problem, FieldError))
)]
struct BaseDoc;

pub fn base() -> openapi::OpenApi {
    let mut doc = BaseDoc::openapi();
    doc.info.version = env!("CARGO_PKG_VERSION").to_owned();
    doc
}

fn problem(description: &str) -> RefOr<Response> {
    ResponseBuilder::new()
        .description(description)
        .content(
            "application/problem+json",
            Content::new(Some(Ref::from_schema_name("Problem"))),
        )
        .build()
        .into()
}

fn add_error(op: &mut Operation, status: &str, description: &str) {
    op.responses
        .responses
        .entry(status.to_owned())
        .or_insert_with(|| problem(description));
}

/// Completes the generated document from the access table.
pub fn finish(mut doc: openapi::OpenApi) -> openapi::OpenApi {
    let components = doc.components.get_or_insert_with(Default::default);
    components.add_security_scheme(
        "bearer",
        SecurityScheme::Http(
            HttpBuilder::new()
                .scheme(HttpAuthScheme::Bearer)
                .bearer_format("JWT or vorg_ API token")
                .build(),
        ),
    );
    for (path, item) in doc.paths.paths.iter_mut() {
        let ops = [
            ("GET", &mut item.get),
            ("POST", &mut item.post),
            ("PUT", &mut item.put),
            ("PATCH", &mut item.patch),
            ("DELETE", &mut item.delete),
        ];
        for (method, op) in ops {
            let Some(op) = op.as_mut() else { continue };
            let Some(rule) = access::ROUTES
                .iter()
                .find(|r| r.method == method && r.path == path)
            else {
                continue;
            };
            let note = match rule.access {
                Access::Public => "**Access:** public, no credentials.".to_owned(),
                Access::Requires(p) => {
                    let roles: Vec<&str> = p.roles().iter().map(|r| r.as_str()).collect();
                    op.security = Some(vec![SecurityRequirement::new(
                        "bearer",
                        Vec::<String>::new(),
                    )]);
                    add_error(
                        op,
                        "401",
                        "Missing, malformed, expired or revoked credentials",
                    );
                    add_error(op, "403", "The caller's roles lack the permission");
                    format!("**Permission:** `{p}` (roles: {}).", roles.join(", "))
                }
            };
            op.description = Some(match op.description.take() {
                Some(d) if !d.is_empty() => format!("{d}\n\n{note}"),
                _ => note,
            });
            if op.request_body.is_some() {
                add_error(op, "400", "Malformed JSON");
                add_error(op, "413", "Body larger than the configured limit");
                add_error(op, "415", "Body is not application/json");
            }
            if op.request_body.is_some() || op.parameters.as_ref().is_some_and(|p| !p.is_empty()) {
                add_error(
                    op,
                    "422",
                    "Invalid input; `errors` names each field and reason",
                );
            }
            if path.starts_with("/auth/login") || path.starts_with("/auth/register") {
                add_error(op, "429", "Too many attempts; see Retry-After");
            }
            add_error(
                op,
                "500",
                "An internal error (logged; no details are returned)",
            );
        }
    }
    doc
}

/// The policy of the docs pages: this origin only, no framing. Swagger UI sets inline
/// styles and draws icons from `data:` URLs; it runs no inline script.
pub const DOCS_CSP: &str = "default-src 'self'; script-src 'self'; \
    style-src 'self' 'unsafe-inline'; img-src 'self' data:; connect-src 'self'; \
    font-src 'self' data:; object-src 'none'; base-uri 'none'; form-action 'self'; \
    frame-ancestors 'none'";

/// `/openapi.json` and the Swagger UI at `/docs`, all served from the binary, with a
/// Content-Security-Policy and frame protection on every answer.
pub fn docs(doc: openapi::OpenApi) -> Router {
    let ui: Router = SwaggerUi::new("/docs").url("/openapi.json", doc).into();
    ui.layer(axum::middleware::map_response(
        |mut resp: axum::response::Response| async move {
            crate::console::page_security_headers(resp.headers_mut(), DOCS_CSP);
            resp
        },
    ))
}
