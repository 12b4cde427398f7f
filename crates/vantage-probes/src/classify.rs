//! Classification: what kind of thing the target is, whether it asks for authentication, whether it
//! publishes API documentation — derived from what the HTTP and exposure probes already saw, with no
//! traffic of its own.

use vantage_observations::classification::{AuthDetected, Classification, SiteKind};
use vantage_observations::exposure::ExposureObservation;
use vantage_observations::http::HttpObservation;

pub fn classify(http: &[HttpObservation], exposure: &[ExposureObservation]) -> Classification {
    let api_docs = exposure
        .iter()
        .any(|o| o.found && o.check.is_api_document());
    let finals: Vec<&HttpObservation> = http.iter().filter(|o| o.status.is_some()).collect();
    let content_type = |o: &HttpObservation| {
        o.headers
            .get("content-type")
            .map(|t| t.to_ascii_lowercase())
            .unwrap_or_default()
    };
    let challenged = finals
        .iter()
        .any(|o| matches!(o.status, Some(401 | 403)) && o.headers.contains_key("www-authenticate"));
    let login_form = finals
        .iter()
        .any(|o| o.html.as_ref().is_some_and(|h| h.password_inputs > 0));
    let auth = if challenged {
        AuthDetected::HttpAuth
    } else if login_form {
        AuthDetected::LoginForm
    } else {
        AuthDetected::None
    };
    let json = finals.iter().any(|o| {
        let t = content_type(o);
        t.starts_with("application/json") || t.contains("+json")
    });
    let html: Vec<&&HttpObservation> = finals
        .iter()
        .filter(|o| content_type(o).starts_with("text/html"))
        .collect();
    let kind = if finals.is_empty() && http.iter().any(|o| !o.hops.is_empty()) {
        SiteKind::Redirect
    } else if json || (api_docs && html.is_empty()) {
        SiteKind::Api
    } else if html
        .iter()
        .any(|o| !o.cookies.is_empty() || o.html.as_ref().is_some_and(|h| h.forms > 0))
        || auth != AuthDetected::None
    {
        SiteKind::Web
    } else if !html.is_empty() {
        SiteKind::Static
    } else {
        SiteKind::Unknown
    };
    Classification {
        kind,
        auth,
        api_docs,
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;
    use vantage_observations::exposure::{ExposureCheck, ExposureDetails};
    use vantage_observations::http::{CookieSummary, HtmlSummary, HttpHop};

    fn page(status: Option<u16>, content_type: &str) -> HttpObservation {
        HttpObservation {
            url: "http://shop.example/".into(),
            hops: vec![HttpHop {
                url: "http://shop.example/".into(),
                address: "93.184.215.14:80".parse().unwrap(),
                status: status.unwrap_or(301),
                location: None,
                set_cookies: vec![],
                certificate_valid: None,
            }],
            final_url: status.map(|_| "http://shop.example/".into()),
            status,
            headers: BTreeMap::from([("content-type".to_owned(), content_type.to_owned())]),
            header_names: vec![],
            cookies: vec![],
            body_bytes: Some(10),
            html: None,
            cors_preflight: None,
            elapsed_ms: 1,
            refused_redirect: None,
            error: None,
        }
    }

    fn docs(found: bool) -> ExposureObservation {
        ExposureObservation {
            check: ExposureCheck::OpenApi,
            url: "http://shop.example/openapi.json".into(),
            status: Some(if found { 200 } else { 404 }),
            found,
            details: ExposureDetails::None,
            final_url: Some("http://shop.example/openapi.json".into()),
            redirects: vec![],
            not_followed: None,
        }
    }

    #[test]
    fn each_kind_and_auth() {
        let mut login = page(Some(200), "text/html");
        login.html = Some(HtmlSummary {
            forms: 1,
            password_inputs: 1,
            ..HtmlSummary::default()
        });
        let seen = classify(&[login], &[docs(false)]);
        assert_eq!(
            (seen.kind, seen.auth, seen.api_docs),
            (SiteKind::Web, AuthDetected::LoginForm, false)
        );

        let mut session = page(Some(200), "text/html; charset=utf-8");
        session.cookies.push(CookieSummary {
            name: "sid".into(),
            secure: true,
            http_only: true,
            same_site: None,
            path: None,
            domain: None,
            persistent: false,
        });
        assert_eq!(classify(&[session], &[]).kind, SiteKind::Web);

        let api = classify(&[page(Some(200), "application/json")], &[docs(true)]);
        assert_eq!((api.kind, api.api_docs), (SiteKind::Api, true));

        let mut challenge = page(Some(401), "text/plain");
        challenge
            .headers
            .insert("www-authenticate".into(), "Basic realm=\"x\"".into());
        assert_eq!(classify(&[challenge], &[]).auth, AuthDetected::HttpAuth);

        assert_eq!(classify(&[page(None, "")], &[]).kind, SiteKind::Redirect);
        assert_eq!(
            classify(&[page(Some(200), "text/html")], &[]).kind,
            SiteKind::Static
        );
        assert_eq!(
            classify(&[page(Some(200), "image/png")], &[]).kind,
            SiteKind::Unknown
        );
    }
}
