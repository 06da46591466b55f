//! The OpenAPI document lists exactly the routes the server registers.

use std::collections::BTreeSet;

use crate::helpers::*;

/// (path, method) pairs under `paths:` of an OpenAPI YAML document: path
/// keys at two spaces, methods at four.
fn documented(yaml: &str) -> BTreeSet<(String, String)> {
    let mut out = BTreeSet::new();
    let mut in_paths = false;
    let mut path = None;
    for line in yaml.lines() {
        if !line.starts_with(' ') && !line.trim().is_empty() {
            in_paths = line.trim_end() == "paths:";
            continue;
        }
        if !in_paths {
            continue;
        }
        if let Some(p) = line.strip_prefix("  ").filter(|l| l.starts_with('/')) {
            path = Some(
                p.trim_end()
                    .trim_end_matches(':')
                    .trim_matches(['"', '\''])
                    .to_owned(),
            );
        } else if let Some(m) = line.strip_prefix("    ").filter(|l| !l.starts_with(' ')) {
            let m = m.trim_end().trim_end_matches(':');
            if ["get", "put", "post", "delete", "patch"].contains(&m) {
                out.insert((path.clone().expect("method before path"), m.to_uppercase()));
            }
        }
    }
    out
}

#[actix_web::test]
async fn every_registered_route_is_documented_and_every_documented_route_is_served() {
    let yaml = include_str!("../../openapi.yaml");
    assert!(yaml.starts_with("openapi: 3.1"), "an OpenAPI 3.1 document");
    let registered: BTreeSet<(String, String)> = mock_camber::routes::routes()
        .into_iter()
        .map(|(p, m, _)| (p.to_owned(), m.to_string()))
        .collect();
    assert_eq!(documented(yaml), registered);

    let app = spawn_app().await;
    let served = app.client.get("/openapi.yaml").await;
    assert_eq!(served.status, 200);
    assert_eq!(served.text, yaml);
}
