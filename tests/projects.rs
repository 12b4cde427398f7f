//! Projects inside a tenant, end to end over a real socket on SQLite and PostgreSQL: created and
//! listed; scans, schedules and webhooks put in one; lists filtered by `project`; a key limited to
//! one project sees only its resources (another project's scan is 404, routes spanning every
//! project refuse it); dashboards, trends and the command center answer per project; a project
//! still holding a schedule is not deleted, and a deleted id is never reused.

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use vantage_tests::TestApp;
use vantage_tests::lab::{Lab, Posture};

fn ids(page: &Value, list: &str) -> Vec<String> {
    page[list]
        .as_array()
        .unwrap_or_else(|| panic!("{page}"))
        .iter()
        .map(|item| item["id"].as_str().unwrap().to_owned())
        .collect()
}

async fn scan_in(app: &TestApp, key: &str, site: &str, project: Option<&str>) -> String {
    let mut body = json!({ "target": site, "profile": "quick" });
    if let Some(project) = project {
        body["project"] = json!(project);
    }
    let (status, created) = app
        .call(Method::POST, "/api/v1/scans", key, Some(body))
        .await;
    assert_eq!(status, StatusCode::ACCEPTED, "{created}");
    created["id"].as_str().unwrap().to_owned()
}

async fn projects_scope_what_a_key_sees(app: TestApp, lab: &Lab) -> TestApp {
    let admin = app.admin_key.clone();
    let site = lab.site(Posture::PlainHttp).name();
    let api_site = lab.site(Posture::WeakCsp).name();
    let default_site = lab.site(Posture::ReflectedCors).name();

    // Projects: created, refused when the id is taken or malformed, listed `default` first.
    for (id, name) in [("web", "Web shop"), ("api", "Public API")] {
        let (status, created) = app
            .call(
                Method::POST,
                "/api/v1/projects",
                &admin,
                Some(json!({ "id": id, "name": name })),
            )
            .await;
        assert_eq!(status, StatusCode::CREATED, "{created}");
        assert_eq!(created["name"], name);
    }
    for (body, status, code) in [
        (json!({"id": "web", "name": "again"}), 409, "already_exists"),
        (json!({"id": "default", "name": "x"}), 409, "already_exists"),
        (
            json!({"id": "Web Shop", "name": "x"}),
            422,
            "validation_failed",
        ),
        (json!({"id": "shop", "name": ""}), 422, "validation_failed"),
    ] {
        let (got, problem) = app
            .call(Method::POST, "/api/v1/projects", &admin, Some(body))
            .await;
        assert_eq!(got.as_u16(), status, "{problem}");
        assert_eq!(problem["code"], code, "{problem}");
    }
    let (_, listed) = app
        .call(Method::GET, "/api/v1/projects", &admin, None)
        .await;
    assert_eq!(ids(&listed, "items"), ["default", "api", "web"]);

    // A key limited to `web`; a limit to an unknown project is refused.
    let (status, problem) = app
        .call(
            Method::POST,
            "/api/v1/keys",
            &admin,
            Some(json!({ "name": "nope", "scopes": ["scan:read"], "projects": ["shop"] })),
        )
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{problem}");
    assert_eq!(problem["errors"][0]["field"], "project", "{problem}");
    let (status, issued) = app
        .call(
            Method::POST,
            "/api/v1/keys",
            &admin,
            Some(
                json!({ "name": "web team", "scopes": ["scan:read", "scan:write"],
                     "projects": ["web"] }),
            ),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{issued}");
    assert_eq!(issued["projects"], json!(["web"]));
    let web_key = issued["token"].as_str().unwrap().to_owned();
    let (_, me) = app
        .call(Method::GET, "/api/v1/keys/me", &web_key, None)
        .await;
    assert_eq!(me["projects"], json!(["web"]), "{me}");

    // Scans: the limited key's go to its project by default; it cannot put one elsewhere.
    let web_scan = scan_in(&app, &web_key, site, None).await;
    let api_scan = scan_in(&app, &admin, api_site, Some("api")).await;
    let default_scan = scan_in(&app, &admin, default_site, None).await;
    let (status, problem) = app
        .call(
            Method::POST,
            "/api/v1/scans",
            &web_key,
            Some(json!({ "target": site, "project": "api" })),
        )
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{problem}");
    assert_eq!(problem["errors"][0]["field"], "project");
    let (status, problem) = app
        .call(
            Method::POST,
            "/api/v1/scans",
            &admin,
            Some(json!({ "target": site, "project": "shop" })),
        )
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{problem}");
    for id in [&web_scan, &api_scan, &default_scan] {
        app.wait_for_scan(id, &["completed"]).await;
    }
    app.caught_up().await;
    let (_, view) = app
        .call(
            Method::GET,
            &format!("/api/v1/scans/{web_scan}"),
            &admin,
            None,
        )
        .await;
    assert_eq!(view["project"], "web", "{view}");

    // Lists filter by project; the limited key only ever sees `web`.
    let list = |key: String, query: &'static str| {
        let app = &app;
        async move {
            let (status, page) = app
                .call(Method::GET, &format!("/api/v1/scans{query}"), &key, None)
                .await;
            assert_eq!(status, StatusCode::OK, "{page}");
            ids(&page, "items")
        }
    };
    assert_eq!(
        list(admin.clone(), "?project=api").await,
        std::slice::from_ref(&api_scan)
    );
    assert_eq!(list(admin.clone(), "").await.len(), 3);
    assert_eq!(
        list(web_key.clone(), "").await,
        std::slice::from_ref(&web_scan)
    );
    assert!(list(web_key.clone(), "?project=api").await.is_empty());
    let (_, listed) = app
        .call(Method::GET, "/api/v1/projects", &web_key, None)
        .await;
    assert_eq!(ids(&listed, "items"), ["web"]);

    // Another project's scan is not found to the limited key, on every route that names it.
    for path in [
        format!("/api/v1/scans/{api_scan}"),
        format!("/api/v1/scans/{api_scan}/status"),
        format!("/api/v1/scans/{api_scan}/summary"),
        format!("/api/v1/scans/{api_scan}/findings"),
        format!("/api/v1/scans/{api_scan}/observations"),
        format!("/api/v1/scans/{api_scan}/history"),
        format!("/api/v1/scans/{api_scan}/report?format=json"),
        format!("/api/v1/scans/compare?scan_a={web_scan}&scan_b={api_scan}"),
        format!("/api/v1/compliance/coverage?scan_id={api_scan}"),
    ] {
        let (status, problem) = app.call(Method::GET, &path, &web_key, None).await;
        assert_eq!(status, StatusCode::NOT_FOUND, "{path}: {problem}");
        let (status, _) = app.call(Method::GET, &path, &admin, None).await;
        assert_eq!(status, StatusCode::OK, "{path} as the admin");
    }
    let (status, _) = app
        .call(
            Method::GET,
            &format!("/api/v1/scans/{web_scan}/summary"),
            &web_key,
            None,
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    let (status, _) = app
        .call(
            Method::DELETE,
            &format!("/api/v1/scans/{api_scan}"),
            &web_key,
            None,
        )
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    // Dashboards answer per project: the limited key gets its project's, never another's.
    let get = |key: String, path: String| {
        let app = &app;
        async move {
            let (status, body) = app.call(Method::GET, &path, &key, None).await;
            assert_eq!(status, StatusCode::OK, "{path}: {body}");
            body
        }
    };
    let stats =
        |key: &str, query: &str| get(key.to_owned(), format!("/api/v1/dashboard/stats{query}"));
    let whole = stats(&admin, "").await;
    assert_eq!(whole["scans_total"], 3, "{whole}");
    let mut summed = std::collections::BTreeMap::<String, i64>::new();
    for project in ["web", "api", "default"] {
        let one = stats(&admin, &format!("?project={project}")).await;
        assert_eq!(one["project"], project, "{one}");
        assert_eq!(one["scans_total"], 1, "{one}");
        assert_eq!(one["domains"], 1, "{one}");
        for (severity, n) in one["unresolved"].as_object().unwrap() {
            *summed.entry(severity.clone()).or_default() += n.as_i64().unwrap();
        }
    }
    let tenant_wide: std::collections::BTreeMap<String, i64> = whole["unresolved"]
        .as_object()
        .unwrap()
        .iter()
        .map(|(k, v)| (k.clone(), v.as_i64().unwrap()))
        .collect();
    assert_eq!(
        summed, tenant_wide,
        "the projects' unresolved findings add up to the tenant's"
    );
    assert!(tenant_wide.values().sum::<i64>() > 0);
    let own = stats(&web_key, "").await;
    assert_eq!(
        own["project"], "web",
        "a one-project key gets its project's: {own}"
    );
    let (status, _) = app
        .call(
            Method::GET,
            "/api/v1/dashboard/stats?project=api",
            &web_key,
            None,
        )
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    for (key, project) in [(&web_key, "web"), (&admin, "api")] {
        let query = if key == &admin { "?project=api" } else { "" };
        let center = get(
            key.clone(),
            format!("/api/v1/dashboard/command-center{query}"),
        )
        .await;
        let top = center["top_priorities"].as_array().unwrap();
        assert!(!top.is_empty(), "{center}");
        assert!(top.iter().all(|f| f["project"] == project), "{center}");
        let trends = get(key.clone(), format!("/api/v1/dashboard/trends{query}")).await;
        let days = trends["items"].as_array().unwrap();
        assert_eq!(days.len(), 1, "{trends}");
        assert_eq!(days[0]["project"], project);
        assert_eq!(days[0]["scans"], 1);
    }
    let trends = get(admin.clone(), "/api/v1/dashboard/trends".into()).await;
    assert_eq!(trends["items"][0]["scans"], 3, "{trends}");

    // Notifications too: each is about a scan, and belongs to its project.
    let all = get(admin.clone(), "/api/v1/notifications".into()).await;
    let all = all["items"].as_array().unwrap().clone();
    assert!(
        ["web", "api", "default"]
            .iter()
            .all(|p| all.iter().any(|n| n["project"] == *p)),
        "every project's scan left notifications: {all:?}"
    );
    let own = get(web_key.clone(), "/api/v1/notifications".into()).await;
    let own = own["items"].as_array().unwrap();
    assert_eq!(
        own.len(),
        all.iter().filter(|n| n["project"] == "web").count()
    );
    let unread = get(web_key.clone(), "/api/v1/notifications/unread-count".into()).await;
    assert_eq!(unread["unread"], own.len(), "{unread}");
    let elsewhere = all.iter().find(|n| n["project"] == "api").unwrap();
    let (status, _) = app
        .call(
            Method::PATCH,
            &format!(
                "/api/v1/notifications/{}/read",
                elsewhere["id"].as_str().unwrap()
            ),
            &web_key,
            None,
        )
        .await;
    assert_eq!(
        status,
        StatusCode::NOT_FOUND,
        "another project's notification"
    );

    // Routes that span every project refuse the limited key.
    for path in ["/api/v1/domains/example.com/history"] {
        let (status, problem) = app.call(Method::GET, path, &web_key, None).await;
        assert_eq!(status, StatusCode::FORBIDDEN, "{path}: {problem}");
        assert_eq!(problem["code"], "project_limited", "{path}");
    }

    // Schedules and webhooks belong to a project too.
    let (status, schedule) = app
        .call(
            Method::POST,
            "/api/v1/schedules",
            &admin,
            Some(json!({ "target": site, "cron": "0 3 1 1 *", "project": "api" })),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{schedule}");
    let schedule = schedule["id"].as_str().unwrap().to_owned();
    let (status, hook) = app
        .call(
            Method::POST,
            "/api/v1/webhooks",
            &admin,
            Some(
                json!({ "url": format!("http://{site}/hook"), "event_filter": ["scan.completed"],
                     "project": "web" }),
            ),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{hook}");
    app.caught_up().await;
    let (_, schedules) = app
        .call(Method::GET, "/api/v1/schedules?project=api", &admin, None)
        .await;
    assert_eq!(ids(&schedules, "items"), std::slice::from_ref(&schedule));
    let (_, schedules) = app
        .call(Method::GET, "/api/v1/schedules", &web_key, None)
        .await;
    assert!(ids(&schedules, "items").is_empty(), "{schedules}");
    let (status, _) = app
        .call(
            Method::DELETE,
            &format!("/api/v1/schedules/{schedule}"),
            &web_key,
            None,
        )
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (_, hooks) = app
        .call(Method::GET, "/api/v1/webhooks?project=api", &admin, None)
        .await;
    assert!(ids(&hooks, "items").is_empty(), "{hooks}");
    let (_, hooks) = app
        .call(Method::GET, "/api/v1/webhooks?project=web", &admin, None)
        .await;
    assert_eq!(hooks["items"][0]["project"], "web", "{hooks}");

    // A project with a schedule is not deleted; once it has none it is, and its id stays taken.
    let (status, problem) = app
        .call(Method::DELETE, "/api/v1/projects/api", &admin, None)
        .await;
    assert_eq!(status, StatusCode::CONFLICT, "{problem}");
    assert_eq!(problem["code"], "project_not_empty");
    let (status, _) = app
        .call(
            Method::DELETE,
            &format!("/api/v1/schedules/{schedule}"),
            &admin,
            None,
        )
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    app.caught_up().await;
    let (status, _) = app
        .call(Method::DELETE, "/api/v1/projects/api", &web_key, None)
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let (status, problem) = app
        .call(Method::DELETE, "/api/v1/projects/api", &admin, None)
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT, "{problem}");
    let (status, _) = app
        .call(Method::DELETE, "/api/v1/projects/api", &admin, None)
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (status, _) = app
        .call(Method::DELETE, "/api/v1/projects/default", &admin, None)
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    let (status, _) = app
        .call(
            Method::POST,
            "/api/v1/projects",
            &admin,
            Some(json!({ "id": "api", "name": "Public API again" })),
        )
        .await;
    assert_eq!(status, StatusCode::CONFLICT);
    // Its scans stay in the log and in the lists.
    assert_eq!(list(admin.clone(), "?project=api").await, [api_scan]);
    app
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_projects_scope_what_a_key_sees() {
    let lab =
        Lab::start_with(&[Posture::PlainHttp, Posture::WeakCsp, Posture::ReflectedCors]).await;
    let t = vantage_tests::SqliteTestStore::new().await;
    let app = TestApp::spawn_on_lab(t.app_stores().await, &lab).await;
    projects_scope_what_a_key_sees(app, &lab).await.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_projects_scope_what_a_key_sees() {
    let lab =
        Lab::start_with(&[Posture::PlainHttp, Posture::WeakCsp, Posture::ReflectedCors]).await;
    let t = vantage_tests::PgTestStore::new().await;
    let app = TestApp::spawn_on_lab(t.app_stores().await, &lab).await;
    projects_scope_what_a_key_sees(app, &lab).await.stop().await;
    t.drop_schema().await;
}
