//! The API contract as tests check it: every response an end-to-end test receives is validated
//! against the OpenAPI document the server publishes — the operation is found by method and path
//! template, the response by status, and the body by that response's JSON Schema (with the
//! document's components, so `$ref`s resolve).

use std::collections::HashMap;
use std::sync::{Mutex, OnceLock};

use serde_json::{Value, json};

fn document() -> &'static Value {
    static DOCUMENT: OnceLock<Value> = OnceLock::new();
    DOCUMENT.get_or_init(|| {
        serde_json::from_str(vantage_api::openapi_document()).expect("the document is JSON")
    })
}

/// The path template of the documented operation that `path` (no query) matches, preferring the one
/// with the most literal segments (`/scans/compare` over `/scans/{id}`).
pub fn template_of(method: &str, path: &str) -> Option<String> {
    // A trailing slash is ignored, except for the root itself.
    let path = if path == "/" {
        path
    } else {
        path.trim_end_matches('/')
    };
    let segments: Vec<&str> = path.split('/').collect();
    let method = method.to_ascii_lowercase();
    document()["paths"]
        .as_object()?
        .iter()
        .filter(|(_, item)| item.get(&method).is_some())
        .filter_map(|(template, _)| {
            let parts: Vec<&str> = template.split('/').collect();
            if parts.len() != segments.len() {
                return None;
            }
            let mut literal = 0;
            for (part, segment) in parts.iter().zip(&segments) {
                if part.starts_with('{') {
                    continue;
                }
                if part != segment {
                    return None;
                }
                literal += 1;
            }
            Some((literal, template.clone()))
        })
        .max_by_key(|(literal, _)| *literal)
        .map(|(_, template)| template)
}

fn validator(
    method: &str,
    template: &str,
    status: u16,
    content_type: &str,
) -> Result<Option<jsonschema::Validator>, String> {
    let doc = document();
    let operation = &doc["paths"][template][method.to_ascii_lowercase()];
    let response = operation["responses"]
        .get(status.to_string())
        .ok_or_else(|| format!("{method} {template} does not document status {status}"))?;
    let Some(content) = response.get("content").and_then(Value::as_object) else {
        return Ok(None);
    };
    let essence = content_type.split(';').next().unwrap_or("").trim();
    let media = content.get(essence).ok_or_else(|| {
        format!(
            "{method} {template} {status} documents {:?}, not {essence:?}",
            content.keys().collect::<Vec<_>>()
        )
    })?;
    let mut schema = media["schema"].clone();
    if let Some(object) = schema.as_object_mut() {
        object.insert("components".into(), doc["components"].clone());
    } else {
        schema = json!({ "allOf": [schema], "components": doc["components"] });
    }
    jsonschema::validator_for(&schema)
        .map(Some)
        .map_err(|e| format!("{method} {template} {status}: the schema does not compile: {e}"))
}

/// Checks one response against the document; an error says what does not match.
pub fn check(
    method: &str,
    path: &str,
    status: u16,
    content_type: &str,
    body: &Value,
) -> Result<(), String> {
    type Cache = Mutex<HashMap<(String, String, u16, String), Option<jsonschema::Validator>>>;
    static CACHE: OnceLock<Cache> = OnceLock::new();
    let path = path.split('?').next().unwrap_or(path);
    let Some(template) = template_of(method, path) else {
        return if status == 404 || status == 405 {
            Ok(())
        } else {
            Err(format!(
                "{method} {path} answered {status} but is not documented"
            ))
        };
    };
    let key = (
        method.to_owned(),
        template.clone(),
        status,
        content_type.to_owned(),
    );
    let mut cache = CACHE
        .get_or_init(Default::default)
        .lock()
        .expect("not poisoned");
    if !cache.contains_key(&key) {
        let built = validator(method, &template, status, content_type)?;
        cache.insert(key.clone(), built);
    }
    let Some(validator) = cache.get(&key).and_then(Option::as_ref) else {
        return if body.is_null() {
            Ok(())
        } else {
            Err(format!(
                "{method} {template} {status} documents no body, got {body}"
            ))
        };
    };
    let errors: Vec<String> = validator
        .iter_errors(body)
        .take(5)
        .map(|e| format!("{} at {}", e, e.instance_path()))
        .collect();
    if errors.is_empty() {
        Ok(())
    } else {
        Err(format!("{method} {path} ({template}) {status}: {errors:?}"))
    }
}
