//! The OpenAPI 3.1 document and the interactive docs.
//!
//! Every API operation is one [`Operation`] in the route table (`routes.rs`): its method, path,
//! stable `operationId`, required scope, handler, and the Rust types it takes (query, body) and
//! returns (per status). The router is built from the same table, so no route can exist without its
//! documentation or the other way round. Schemas come from `schemars` (the derive the project also
//! uses for event schemas): its JSON Schema 2020-12 dialect is OpenAPI 3.1's own. Request types are
//! described as they deserialize and response types as they serialize.
//!
//! `/docs` serves Swagger UI from assets vendored in this crate (`assets/swagger-ui`, from the
//! `swagger-ui-dist` npm package, Apache-2.0), so the docs work offline; `/docs/problems` lists every
//! problem `code`, which is where each problem document's `type` points.

use axum::handler::Handler;
use axum::http::{Method, header};
use axum::response::{Html, IntoResponse};
use axum::routing::{MethodFilter, MethodRouter, on};
use schemars::generate::{SchemaGenerator, SchemaSettings};
use schemars::{JsonSchema, Schema};
use serde_json::{Map, Value, json};
use vantage_domain::scope::Scope;

use crate::AppState;
use crate::error::Problem;

type SchemaFn = fn(&mut SchemaGenerator) -> Schema;

fn schema_of<T: JsonSchema>(generator: &mut SchemaGenerator) -> Schema {
    generator.subschema_for::<T>()
}

/// Bytes of any kind: `{"type": "string", "format": "binary"}`.
struct Binary;

impl JsonSchema for Binary {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "Binary".into()
    }

    fn inline_schema() -> bool {
        true
    }

    fn json_schema(_: &mut SchemaGenerator) -> Schema {
        schemars::json_schema!({ "type": "string", "format": "binary" })
    }
}

/// The schema of one server-sent event whose `data` is a `T` as JSON.
struct ServerSentEvent<T>(std::marker::PhantomData<T>);

impl<T: JsonSchema> JsonSchema for ServerSentEvent<T> {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        format!("ServerSentEvent_{}", T::schema_name()).into()
    }

    fn json_schema(generator: &mut SchemaGenerator) -> Schema {
        let data = generator.subschema_for::<T>();
        schemars::json_schema!({
            "description": "One server-sent event (the fields of the `text/event-stream` format).",
            "type": "object",
            "properties": {
                "id": {
                    "type": "string",
                    "description": "The event's global log position; send it back as Last-Event-ID to resume."
                },
                "event": { "type": "string", "description": "The event type." },
                "data": {
                    "type": "string",
                    "contentMediaType": "application/json",
                    "contentSchema": data
                },
                "retry": { "type": "integer" }
            },
            "required": ["data"]
        })
    }
}

/// What one status of an operation answers.
#[derive(Debug, Clone)]
struct Reply {
    status: u16,
    description: &'static str,
    body: Option<SchemaFn>,
    content_type: &'static str,
}

/// An OpenAPI link: what a reply with `status` feeds into operation `target`.
#[derive(Debug, Clone, Copy)]
struct Link {
    status: u16,
    target: &'static str,
    /// (parameter, runtime expression), e.g. `("id", "$response.body#/id")`.
    parameters: &'static [(&'static str, &'static str)],
}

/// One API operation: its route, handler and documentation.
#[derive(Debug)]
pub struct Operation {
    pub method: Method,
    pub path: &'static str,
    pub id: &'static str,
    summary: &'static str,
    tag: &'static str,
    /// `None` on public routes; otherwise the scope the key needs (`Some(None)`: any valid key).
    auth: Option<Option<Scope>>,
    /// The answer spans every project of the tenant (a key limited to projects is refused).
    tenant_wide: bool,
    /// An `event_token` query parameter may stand in for a key.
    event_token: bool,
    path_params: Vec<(&'static str, &'static str)>,
    query: Option<SchemaFn>,
    body: Option<SchemaFn>,
    idempotent: bool,
    replies: Vec<Reply>,
    links: Vec<Link>,
    pub(crate) handler: MethodRouter<AppState>,
}

/// What each documented error status means on this API, and an example of its problem.
fn error_reply(status: u16) -> (&'static str, &'static str) {
    match status {
        400 => (
            "Malformed request: bad JSON, query or header.",
            "invalid_query",
        ),
        401 => ("No valid API key.", "unauthorized"),
        403 => (
            "The key lacks the scope this route needs.",
            "insufficient_scope",
        ),
        404 => (
            "No such resource (another tenant's resources are never visible).",
            "not_found",
        ),
        409 => (
            "The command conflicts with the resource's state.",
            "scan_active",
        ),
        413 => ("The body is larger than 64 KiB.", "payload_too_large"),
        410 => (
            "It existed and was destroyed for good.",
            "content_destroyed",
        ),
        415 => ("The body is not JSON.", "unsupported_media_type"),
        422 => ("The body or a parameter is invalid.", "validation_failed"),
        428 => (
            "Repeat the request with the confirmation token this reply carries.",
            "confirmation_required",
        ),
        429 => (
            "The key's rate limit is exhausted; see Retry-After.",
            "rate_limited",
        ),
        503 => ("A dependency is unavailable; retry later.", "unavailable"),
        _ => (
            "Internal error (details are logged, not returned).",
            "internal_error",
        ),
    }
}

fn problem_example(status: u16) -> Value {
    let (_, code) = error_reply(status);
    let title = axum::http::StatusCode::from_u16(status)
        .ok()
        .and_then(|s| s.canonical_reason())
        .unwrap_or("Error");
    let mut example = json!({
        "type": format!("/docs/problems#{code}"),
        "title": title,
        "status": status,
        "code": code,
        "detail": error_reply(status).0,
        "request_id": "0192f3a4-5b6c-7d8e-9f01-23456789abcd",
    });
    if status == 422 {
        example["errors"] = json!([{ "field": "limit", "reason": "must be between 1 and 100" }]);
    }
    example
}

impl Operation {
    /// An authenticated operation needing `scope`.
    pub fn new<H, T>(
        method: Method,
        path: &'static str,
        id: &'static str,
        summary: &'static str,
        handler: H,
    ) -> Self
    where
        H: Handler<T, AppState>,
        T: 'static,
    {
        let filter = MethodFilter::try_from(method.clone()).expect("a routable method");
        Self {
            method,
            path,
            id,
            summary,
            tag: "",
            auth: Some(None),
            tenant_wide: false,
            event_token: false,
            path_params: Vec::new(),
            query: None,
            body: None,
            idempotent: false,
            replies: Vec::new(),
            links: Vec::new(),
            handler: on(filter, handler),
        }
    }

    pub fn tag(mut self, tag: &'static str) -> Self {
        self.tag = tag;
        self
    }

    /// The key needs this scope (`admin` has every scope).
    pub fn scope(mut self, scope: Scope) -> Self {
        self.auth = Some(Some(scope));
        self
    }

    /// Answers for every project of the tenant: a key limited to some projects gets 403
    /// `project_limited`.
    pub fn tenant_wide(mut self) -> Self {
        self.tenant_wide = true;
        self
    }

    /// An `event_token` query parameter (checked by the handler) may stand in for a key.
    pub fn or_event_token(mut self) -> Self {
        self.event_token = true;
        self
    }

    /// What the router requires of a caller before the handler runs; `None` for a public operation.
    pub(crate) fn requirement(&self) -> Option<crate::auth::Requirement> {
        self.auth.map(|scope| crate::auth::Requirement {
            scope,
            tenant_wide: self.tenant_wide,
            event_token: self.event_token,
        })
    }

    /// Needs no key.
    pub fn public(mut self) -> Self {
        self.auth = None;
        self
    }

    pub fn param(mut self, name: &'static str, description: &'static str) -> Self {
        self.path_params.push((name, description));
        self
    }

    pub fn query<Q: JsonSchema>(mut self) -> Self {
        self.query = Some(schema_of::<Q>);
        self
    }

    pub fn body<B: JsonSchema>(mut self) -> Self {
        self.body = Some(schema_of::<B>);
        self
    }

    /// Honours `Idempotency-Key`.
    pub fn idempotent(mut self) -> Self {
        self.idempotent = true;
        self
    }

    /// Whether the operation takes an `Idempotency-Key` (its router applies it).
    pub(crate) fn is_idempotent(&self) -> bool {
        self.idempotent
    }

    /// A JSON reply of type `R`.
    pub fn reply<R: JsonSchema>(self, status: u16, description: &'static str) -> Self {
        self.reply_as::<R>(status, description, "application/json")
    }

    /// A JSON reply of type `R` served as another JSON media type (`application/sarif+json`, …).
    pub fn reply_as<R: JsonSchema>(
        mut self,
        status: u16,
        description: &'static str,
        content_type: &'static str,
    ) -> Self {
        self.replies.push(Reply {
            status,
            description,
            body: Some(schema_of::<R>),
            content_type,
        });
        self
    }

    /// The `status` reply's values feed `operation`'s parameters, e.g. `("id", "$response.body#/id")`.
    pub fn link(
        mut self,
        status: u16,
        operation: &'static str,
        parameters: &'static [(&'static str, &'static str)],
    ) -> Self {
        self.links.push(Link {
            status,
            target: operation,
            parameters,
        });
        self
    }

    /// A reply without a body.
    pub fn empty(mut self, status: u16, description: &'static str) -> Self {
        self.replies.push(Reply {
            status,
            description,
            body: None,
            content_type: "",
        });
        self
    }

    /// A `text/event-stream` reply whose events each carry `E` as JSON in their `data` (OpenAPI
    /// before 3.2 describes an event stream by the schema of one event).
    pub fn event_stream<E: JsonSchema>(self, status: u16, description: &'static str) -> Self {
        self.reply_as::<ServerSentEvent<E>>(status, description, "text/event-stream")
    }

    /// A plain reply of another content type (text, HTML, XML).
    pub fn text(self, status: u16, description: &'static str, content_type: &'static str) -> Self {
        self.reply_as::<String>(status, description, content_type)
    }

    /// A binary reply (a PDF, an archive) of `content_type`.
    pub fn binary(
        self,
        status: u16,
        description: &'static str,
        content_type: &'static str,
    ) -> Self {
        self.reply_as::<Binary>(status, description, content_type)
    }

    /// Problem replies with these statuses (401, 403, 429 and 500 are added to every authenticated
    /// operation, 400 to every one with a query, 413/415/422 to every one with a body).
    pub fn errors(mut self, statuses: &[u16]) -> Self {
        for &status in statuses {
            self.push_error(status);
        }
        self
    }

    fn push_error(&mut self, status: u16) {
        if self.replies.iter().any(|r| r.status == status) {
            return;
        }
        self.replies.push(Reply {
            status,
            description: error_reply(status).0,
            body: Some(schema_of::<Problem>),
            content_type: "application/problem+json",
        });
    }

    /// Adds the error replies every operation of its kind has, and orders the replies.
    pub(crate) fn done(mut self) -> Self {
        if self.auth.is_some() {
            for status in [401, 403, 429, 500] {
                self.push_error(status);
            }
        }
        if self.query.is_some() {
            self.push_error(400);
        }
        if self.body.is_some() {
            for status in [400, 413, 415, 422] {
                self.push_error(status);
            }
        }
        if self.idempotent {
            self.push_error(409);
            self.push_error(422);
        }
        self.replies.sort_by_key(|r| r.status);
        self
    }
}

fn header_ref(name: &str) -> Value {
    json!({ "$ref": format!("#/components/headers/{name}") })
}

/// A query parameter's schema without `null`: an absent parameter is how a query says "none".
fn not_null(mut schema: Value) -> Value {
    if let Some(types) = schema.get_mut("type").and_then(Value::as_array_mut) {
        types.retain(|t| t != "null");
        if types.len() == 1 {
            let only = types[0].clone();
            schema["type"] = only;
        }
    }
    let any_of = schema
        .get("anyOf")
        .and_then(Value::as_array)
        .map(|variants| {
            variants
                .iter()
                .filter(|v| v.get("type") != Some(&json!("null")))
                .cloned()
                .collect::<Vec<_>>()
        });
    if let Some(variants) = any_of
        && let Some(object) = schema.as_object_mut()
    {
        object.remove("anyOf");
        if let [only] = variants.as_slice()
            && let Some(fields) = only.as_object()
        {
            for (k, v) in fields {
                object.insert(k.clone(), v.clone());
            }
        } else {
            object.insert("anyOf".into(), Value::Array(variants));
        }
    }
    schema
}

/// Inlines the properties of a query type as OpenAPI query parameters.
fn query_parameters(generator: &mut SchemaGenerator, query: SchemaFn) -> Vec<Value> {
    let reference = query(generator);
    let name = reference
        .get("$ref")
        .and_then(Value::as_str)
        .and_then(|r| r.rsplit('/').next())
        .map(str::to_owned);
    let schema: Value = match &name {
        Some(name) => generator
            .definitions_mut()
            .remove(name)
            .unwrap_or(Value::Null),
        None => reference.to_value(),
    };
    let required: Vec<&str> = schema["required"]
        .as_array()
        .map(|r| r.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default();
    schema["properties"]
        .as_object()
        .map(|properties| {
            properties
                .iter()
                .map(|(name, schema)| {
                    let mut parameter = json!({
                        "name": name,
                        "in": "query",
                        "required": required.contains(&name.as_str()),
                        "schema": not_null(schema.clone()),
                    });
                    if let Some(description) = schema.get("description") {
                        parameter["description"] = description.clone();
                    }
                    parameter
                })
                .collect()
        })
        .unwrap_or_default()
}

/// The OpenAPI 3.1 document of `operations`.
pub fn document(operations: &[Operation]) -> Value {
    let settings = SchemaSettings::draft2020_12().with(|s| {
        s.definitions_path = "#/components/schemas/".into();
        s.meta_schema = None;
    });
    let mut inputs = settings.clone().for_deserialize().into_generator();
    let mut outputs = settings.for_serialize().into_generator();
    let mut paths: Map<String, Value> = Map::new();
    for op in operations {
        let mut parameters: Vec<Value> = op
            .path_params
            .iter()
            .map(|(name, description)| {
                json!({
                    "name": name, "in": "path", "required": true,
                    "description": description, "schema": { "type": "string" },
                })
            })
            .collect();
        if let Some(query) = op.query {
            parameters.extend(query_parameters(&mut inputs, query));
        }
        let mut operation = json!({
            "operationId": op.id,
            "summary": op.summary,
            "tags": [op.tag],
            "parameters": parameters,
        });
        if op.idempotent {
            operation["parameters"]
                .as_array_mut()
                .expect("an array")
                .push(json!({ "$ref": "#/components/parameters/IdempotencyKey" }));
        }
        if let Some(body) = op.body {
            operation["requestBody"] = json!({
                "required": true,
                "content": { "application/json": { "schema": body(&mut inputs) } },
            });
        }
        match op.auth {
            None => operation["security"] = json!([]),
            Some(scope) => {
                operation["security"] = json!([{ "bearer": [] }, { "apiKey": [] }]);
                operation["x-required-scope"] = json!(scope.map(Scope::as_str));
                if op.tenant_wide {
                    operation["x-tenant-wide"] = json!(true);
                }
            }
        }
        let mut responses = Map::new();
        for reply in &op.replies {
            let mut headers = Map::new();
            headers.insert("X-Request-ID".into(), header_ref("X-Request-ID"));
            if op.auth.is_some() {
                for name in [
                    "X-RateLimit-Limit",
                    "X-RateLimit-Remaining",
                    "X-RateLimit-Reset",
                ] {
                    headers.insert(name.into(), header_ref(name));
                }
            }
            if matches!(reply.status, 202 | 429) {
                headers.insert("Retry-After".into(), header_ref("Retry-After"));
            }
            let mut response = json!({ "description": reply.description, "headers": headers });
            let links: Map<String, Value> = op
                .links
                .iter()
                .filter(|link| link.status == reply.status)
                .map(|link| {
                    let parameters: Map<String, Value> = link
                        .parameters
                        .iter()
                        .map(|(name, expression)| ((*name).to_owned(), json!(expression)))
                        .collect();
                    (
                        link.target.to_owned(),
                        json!({ "operationId": link.target, "parameters": parameters }),
                    )
                })
                .collect();
            if !links.is_empty() {
                response["links"] = Value::Object(links);
            }
            if let Some(body) = reply.body {
                let mut media = json!({ "schema": body(&mut outputs) });
                if reply.content_type == "application/problem+json" {
                    media["example"] = problem_example(reply.status);
                }
                response["content"] = json!({ reply.content_type: media });
            }
            // Several replies of one status are one response with several media types.
            match responses.get_mut(&reply.status.to_string()) {
                Some(existing) => {
                    if let (Some(content), Some(more)) = (
                        existing.get_mut("content").and_then(Value::as_object_mut),
                        response.get("content").and_then(Value::as_object),
                    ) {
                        content.extend(more.clone());
                    }
                }
                None => {
                    responses.insert(reply.status.to_string(), response);
                }
            }
        }
        operation["responses"] = Value::Object(responses);
        let item = paths
            .entry(op.path)
            .or_insert_with(|| json!({}))
            .as_object_mut()
            .expect("a path item");
        item.insert(op.method.as_str().to_ascii_lowercase(), operation);
    }
    let mut schemas = outputs.take_definitions(true);
    for (name, schema) in inputs.take_definitions(true) {
        match schemas.get(&name) {
            Some(existing) if *existing != schema => {
                panic!(
                    "type {name} has different request and response schemas; name one of them apart"
                )
            }
            Some(_) => {}
            None => {
                schemas.insert(name, schema);
            }
        }
    }
    json!({
        "openapi": "3.1.0",
        "info": {
            "title": "Vantage API",
            "version": env!("CARGO_PKG_VERSION"),
            "description": "Outside-in scans of an organisation's public web surface, as public-safe, \
                triageable, comparable and auditable findings. Errors are RFC 9457 problem documents \
                (application/problem+json) with a stable `code` and the `request_id`; every response \
                carries X-Request-ID. Lists use cursor pagination (`limit`, `next_cursor`).",
            "license": { "name": "Apache-2.0" },
        },
        "tags": [
            { "name": "meta", "description": "Liveness, readiness, metrics, this document." },
            { "name": "scans", "description": "Start, follow, cancel and read scans and their findings." },
            { "name": "reports", "description": "A scan's report (HTML, PDF, JSON, SARIF, JUnit) and technology inventory (CycloneDX, SPDX)." },
            { "name": "domains", "description": "A domain's latest scan and history, and its public trust badge." },
            { "name": "triage", "description": "What people decided about findings." },
            { "name": "notifications", "description": "New critical findings, regressions, failures, expiring certificates." },
            { "name": "dashboard", "description": "Totals, trends and what to fix first." },
            { "name": "compliance", "description": "Frameworks, per-scan control coverage, signed compliance packages and the key that signs them." },
            { "name": "audit", "description": "The tamper-evident trail of every command." },
            { "name": "keys", "description": "Scoped API keys." },
        ],
        "paths": paths,
        "components": {
            "schemas": schemas,
            "securitySchemes": {
                "bearer": { "type": "http", "scheme": "bearer", "description": "Authorization: Bearer <key>" },
                "apiKey": { "type": "apiKey", "in": "header", "name": "X-API-Key" },
            },
            "parameters": {
                "IdempotencyKey": {
                    "name": "Idempotency-Key", "in": "header", "required": false,
                    "description": "Replays the first response to this key (per tenant) for 24 hours.",
                    "schema": { "type": "string", "minLength": 1, "maxLength": 255 },
                },
            },
            "headers": {
                "X-Request-ID": { "description": "The request's id (yours, echoed, if you sent one).", "schema": { "type": "string" } },
                "X-RateLimit-Limit": { "description": "Capacity of the key's bucket.", "schema": { "type": "integer" } },
                "X-RateLimit-Remaining": { "description": "Requests left in the bucket.", "schema": { "type": "integer" } },
                "X-RateLimit-Reset": { "description": "Seconds until the bucket is full again.", "schema": { "type": "integer" } },
                "Retry-After": { "description": "Seconds to wait before retrying or polling.", "schema": { "type": "integer" } },
            },
        },
    })
}

/// `GET /openapi.json`.
pub(crate) async fn openapi_json() -> impl IntoResponse {
    (
        [(header::CONTENT_TYPE, "application/json")],
        crate::openapi_document(),
    )
}

const SWAGGER_JS: &[u8] = include_bytes!("../assets/swagger-ui/swagger-ui-bundle.js");
const SWAGGER_CSS: &[u8] = include_bytes!("../assets/swagger-ui/swagger-ui.css");

/// `GET /docs`: Swagger UI over `/openapi.json`, every asset served from here.
pub(crate) async fn docs() -> Html<&'static str> {
    Html(
        r##"<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>Vantage API</title>
<link rel="stylesheet" href="/docs/swagger-ui.css">
</head>
<body>
<div id="ui"></div>
<script src="/docs/swagger-ui-bundle.js"></script>
<script src="/docs/init.js"></script>
</body>
</html>
"##,
    )
}

/// What the docs pages may load: only this server's own scripts and styles (Swagger UI sets inline
/// styles and shows inline images), no framing, no sniffing, no referrer.
pub(crate) const DOCS_CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self' 'unsafe-inline'; \
     img-src 'self' data:; connect-src 'self'; font-src 'self' data:; base-uri 'none'; \
     form-action 'none'; frame-ancestors 'none'";

/// What every HTML page this server serves carries (the docs, the dashboard): its
/// Content-Security-Policy, no framing, no sniffing, no referrer.
pub(crate) fn insert_page_headers(headers: &mut header::HeaderMap, csp: &'static str) {
    for (name, value) in [
        (header::CONTENT_SECURITY_POLICY, csp),
        (header::X_FRAME_OPTIONS, "DENY"),
        (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
        (header::REFERRER_POLICY, "no-referrer"),
    ] {
        headers.insert(name, header::HeaderValue::from_static(value));
    }
}

/// Adds the docs pages' security headers to a response.
pub(crate) async fn page_security_headers(
    mut response: axum::response::Response,
) -> axum::response::Response {
    insert_page_headers(response.headers_mut(), DOCS_CSP);
    response
}

/// `GET /docs/init.js`: starts Swagger UI (a file, not an inline script, so the CSP can forbid
/// inline scripts).
pub(crate) async fn docs_init_js() -> impl IntoResponse {
    (
        [(header::CONTENT_TYPE, "text/javascript; charset=utf-8")],
        "window.ui = SwaggerUIBundle({ url: \"/openapi.json\", dom_id: \"#ui\", deepLinking: true });\n",
    )
}

pub(crate) async fn swagger_js() -> impl IntoResponse {
    (
        [
            (header::CONTENT_TYPE, "text/javascript; charset=utf-8"),
            (header::CACHE_CONTROL, "public, max-age=86400"),
        ],
        SWAGGER_JS,
    )
}

pub(crate) async fn swagger_css() -> impl IntoResponse {
    (
        [
            (header::CONTENT_TYPE, "text/css; charset=utf-8"),
            (header::CACHE_CONTROL, "public, max-age=86400"),
        ],
        SWAGGER_CSS,
    )
}

/// `GET /docs/problems`: what every problem `code` means (problem documents link here).
pub(crate) async fn problems() -> Html<String> {
    let mut rows = String::new();
    for (code, status, meaning) in crate::error::PROBLEM_CODES {
        rows.push_str(&format!(
            "<tr id=\"{code}\"><td><code>{code}</code></td><td>{status}</td><td>{meaning}</td></tr>\n"
        ));
    }
    Html(format!(
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>Vantage problem codes</title></head>\
         <body><h1>Problem codes</h1><p>Every error is an RFC 9457 problem document whose <code>type</code> \
         links to its row here.</p><table><tr><th>code</th><th>status</th><th>meaning</th></tr>\n{rows}</table></body></html>"
    ))
}
