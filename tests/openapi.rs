//! The OpenAPI document: committed as `schemas/openapi.json` and equal to what the server serves
//! (`VANTAGE_UPDATE_SCHEMAS=1` rewrites the committed file), well-formed (unique operation ids,
//! every `$ref` resolves, every path parameter declared), and served with the offline docs.

use std::collections::BTreeSet;

use serde_json::Value;
use vantage_tests::TestApp;

fn committed_path() -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../schemas/openapi.json")
}

#[test]
fn the_committed_document_is_the_generated_one() {
    let generated = vantage_api::openapi_document();
    let path = committed_path();
    if std::env::var_os("VANTAGE_UPDATE_SCHEMAS").is_some() {
        std::fs::write(&path, generated).unwrap();
    }
    let committed = std::fs::read_to_string(&path).unwrap_or_default();
    assert!(
        committed == generated,
        "schemas/openapi.json is stale: run `VANTAGE_UPDATE_SCHEMAS=1 cargo nextest run openapi` and commit it"
    );
}

fn refs<'a>(value: &'a Value, out: &mut Vec<&'a str>) {
    match value {
        Value::Object(map) => {
            for (key, v) in map {
                if key == "$ref" {
                    if let Some(r) = v.as_str() {
                        out.push(r);
                    }
                } else {
                    refs(v, out);
                }
            }
        }
        Value::Array(items) => items.iter().for_each(|v| refs(v, out)),
        _ => {}
    }
}

#[test]
fn the_document_is_well_formed() {
    let doc: Value = serde_json::from_str(vantage_api::openapi_document()).unwrap();
    assert_eq!(doc["openapi"], "3.1.0");
    let mut ids = BTreeSet::new();
    let mut operations = 0;
    for (template, item) in doc["paths"].as_object().unwrap() {
        let declared_in_path: BTreeSet<&str> = template
            .split('/')
            .filter_map(|s| s.strip_prefix('{').and_then(|s| s.strip_suffix('}')))
            .collect();
        for (method, op) in item.as_object().unwrap() {
            operations += 1;
            let id = op["operationId"].as_str().unwrap();
            assert!(ids.insert(id.to_owned()), "operationId {id} is used twice");
            assert!(
                id.chars().next().unwrap().is_ascii_lowercase()
                    && id.chars().all(|c| c.is_ascii_alphanumeric()),
                "{id} is not lowerCamelCase"
            );
            let params: BTreeSet<&str> = op["parameters"]
                .as_array()
                .unwrap()
                .iter()
                .filter(|p| p["in"] == "path")
                .map(|p| p["name"].as_str().unwrap())
                .collect();
            assert_eq!(params, declared_in_path, "{method} {template}");
            let responses = op["responses"].as_object().unwrap();
            assert!(
                responses.keys().any(|s| s.starts_with('2')),
                "{method} {template} documents no success"
            );
            for (status, response) in responses {
                if status.starts_with('4') || status.starts_with('5') {
                    let example = &response["content"]["application/problem+json"]["example"];
                    assert_eq!(
                        example["status"].to_string(),
                        *status,
                        "{method} {template}"
                    );
                }
            }
        }
    }
    assert!(operations >= 38, "only {operations} operations documented");
    // Every link names an operation that exists and one of its parameters.
    let mut linked = 0;
    for item in doc["paths"].as_object().unwrap().values() {
        for op in item.as_object().unwrap().values() {
            for response in op["responses"].as_object().unwrap().values() {
                for link in response["links"]
                    .as_object()
                    .into_iter()
                    .flat_map(|l| l.values())
                {
                    let target = link["operationId"].as_str().unwrap();
                    assert!(
                        ids.contains(target),
                        "a link names {target}, which does not exist"
                    );
                    linked += 1;
                }
            }
        }
    }
    assert!(linked >= 10, "only {linked} links");
    let mut all = Vec::new();
    refs(&doc, &mut all);
    assert!(!all.is_empty());
    for r in all {
        let pointer = r
            .strip_prefix('#')
            .unwrap_or_else(|| panic!("{r} is not local"));
        assert!(doc.pointer(pointer).is_some(), "{r} does not resolve");
    }
}

#[test]
fn every_example_in_the_document_is_valid() {
    let doc: Value = serde_json::from_str(vantage_api::openapi_document()).unwrap();
    let mut checked = 0;
    for (name, schema) in doc["components"]["schemas"].as_object().unwrap() {
        let Some(examples) = schema.get("examples").and_then(Value::as_array) else {
            continue;
        };
        let mut root = schema.clone();
        root["components"] = doc["components"].clone();
        let validator = jsonschema::validator_for(&root).unwrap();
        for example in examples {
            let errors: Vec<String> = validator
                .iter_errors(example)
                .map(|e| e.to_string())
                .collect();
            assert!(
                errors.is_empty(),
                "the example of {name} is invalid: {errors:?}"
            );
            checked += 1;
        }
    }
    // Problem examples of error replies validate against the Problem schema.
    let mut problem = doc["components"]["schemas"]["Problem"].clone();
    problem["components"] = doc["components"].clone();
    let problem = jsonschema::validator_for(&problem).unwrap();
    for item in doc["paths"].as_object().unwrap().values() {
        for op in item.as_object().unwrap().values() {
            for response in op["responses"].as_object().unwrap().values() {
                let example = &response["content"]["application/problem+json"]["example"];
                if !example.is_null() {
                    assert!(problem.is_valid(example), "{example}");
                    checked += 1;
                }
            }
        }
    }
    assert!(checked > 100, "only {checked} examples");
}

#[test]
fn path_templates_match_the_most_specific_operation() {
    use vantage_tests::contract::template_of;
    assert_eq!(
        template_of("GET", "/api/v1/scans/compare").as_deref(),
        Some("/api/v1/scans/compare")
    );
    assert_eq!(
        template_of("GET", "/api/v1/scans/0192").as_deref(),
        Some("/api/v1/scans/{id}")
    );
    assert_eq!(
        template_of("PATCH", "/api/v1/notifications/read-all").as_deref(),
        Some("/api/v1/notifications/read-all")
    );
    assert_eq!(template_of("PUT", "/api/v1/scans"), None);
}

#[test]
fn the_contract_check_catches_what_the_document_does_not_allow() {
    use serde_json::json;
    use vantage_tests::contract::check;
    let json = "application/json";
    let progress = json!({
        "id": "01932f3a-5b6c-7d8e-9f01-23456789abcd", "status": "queued", "terminal": false,
        "updated_at": "2026-12-01T00:00:00Z", "observation_count": 0, "failure_reason": null,
    });
    check("GET", "/api/v1/scans/x/status", 200, json, &progress).unwrap();
    let mut wrong = progress.clone();
    wrong["status"] = json!("exploded");
    assert!(check("GET", "/api/v1/scans/x/status", 200, json, &wrong).is_err());
    wrong = progress.clone();
    wrong.as_object_mut().unwrap().remove("terminal");
    assert!(check("GET", "/api/v1/scans/x/status", 200, json, &wrong).is_err());
    assert!(
        check("GET", "/api/v1/scans/x/status", 418, json, &progress).is_err(),
        "an undocumented status"
    );
    assert!(
        check("GET", "/api/v1/scans/x/status", 404, json, &progress).is_err(),
        "an error that is not a problem document"
    );
    assert!(
        check(
            "DELETE",
            "/api/v1/scans/x",
            204,
            "",
            &json!({ "unexpected": 1 })
        )
        .is_err()
    );
}

async fn the_document_and_offline_docs_are_served(app: TestApp) {
    let served = app
        .client
        .get(app.url("/openapi.json"))
        .send()
        .await
        .unwrap();
    assert_eq!(served.status(), 200);
    assert!(
        served.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("application/json")
    );
    assert_eq!(
        served.text().await.unwrap(),
        vantage_api::openapi_document()
    );
    let page = app
        .client
        .get(app.url("/docs"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(page.contains("/docs/swagger-ui-bundle.js") && page.contains("/docs/init.js"));
    assert!(
        !page.contains("https://"),
        "the docs page loads nothing from elsewhere"
    );
    for asset in ["/docs/swagger-ui-bundle.js", "/docs/swagger-ui.css"] {
        let response = app.client.get(app.url(asset)).send().await.unwrap();
        assert_eq!(response.status(), 200, "{asset}");
        assert!(response.bytes().await.unwrap().len() > 10_000, "{asset}");
    }
    // Every docs page forbids framing, sniffing and any script that is not this server's file.
    for path in ["/docs", "/docs/problems", "/docs/init.js"] {
        let response = app.client.get(app.url(path)).send().await.unwrap();
        let headers = response.headers();
        let csp = headers["content-security-policy"].to_str().unwrap();
        assert!(
            csp.contains("script-src 'self'") && csp.contains("frame-ancestors 'none'"),
            "{path}: {csp}"
        );
        assert!(!csp.contains("unsafe-eval"), "{path}");
        assert_eq!(headers["x-frame-options"], "DENY", "{path}");
        assert_eq!(headers["x-content-type-options"], "nosniff", "{path}");
    }
    assert!(
        !page.contains("<script>"),
        "no inline script: the CSP forbids it"
    );
    // And Swagger UI still works under that policy: Chromium renders the operations.
    let dom = vantage_tests::browser::rendered_dom_after(&app.url("/docs"), 5_000);
    assert!(
        dom.contains("getScanReport") || dom.contains("/api/v1/scans/{id}/report"),
        "Swagger UI rendered the operations under the CSP"
    );
    let problems = app
        .client
        .get(app.url("/docs/problems"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    for (code, _, _) in vantage_api::PROBLEM_CODES {
        assert!(problems.contains(&format!("id=\"{code}\"")), "{code}");
    }
    app.stop().await;
}

vantage_tests::app_test_per_store!(spawn; the_document_and_offline_docs_are_served);
