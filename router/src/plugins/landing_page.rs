//! HTTP stage: the landing page. `GET /` from a browser (`Accept: text/html`) answers a
//! page that embeds Apollo Sandbox pointed at this router's own GraphQL endpoint, so
//! developers explore the API where the storefront sends it. Everything else at `/`
//! passes on to Hive Router.
//!
//! Off in the production profile (`APP_ENV=production`): the page would advertise the
//! schema, and introspection is off there anyway.
//!
//! The embedded Sandbox runs in an iframe served by Apollo and sends its requests from
//! that origin, which router.yaml's CORS policy allows alongside Apollo Studio.

use hive_router::{
    http::{Method, header::ACCEPT},
    ntex::http::Response,
    plugins::{
        hooks::on_http_request::{OnHttpRequestHookPayload, OnHttpRequestHookResult},
        plugin_trait::StartHookPayload,
    },
};
use serde::Deserialize;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LandingPageConfig {
    /// The GraphQL endpoint's path, as router.yaml serves it.
    #[serde(default = "default_graphql_path")]
    pub graphql_path: String,
}

fn default_graphql_path() -> String {
    "/graphql".to_owned()
}

pub struct LandingPage {
    html: String,
}

/// The page: Sandbox's embed script, pointed at this origin's endpoint (computed in the
/// browser, so it is right behind any proxy or port mapping).
fn sandbox_page(graphql_path: &str) -> String {
    let path = serde_json_string(graphql_path);
    format!(
        r##"<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Vitrina GraphQL API</title>
<style>html, body {{ margin: 0; height: 100%; overflow: hidden; }} #sandbox {{ height: 100vh; width: 100vw; }}</style>
</head>
<body>
<div id="sandbox"></div>
<script src="https://embeddable-sandbox.cdn.apollographql.com/_latest/embeddable-sandbox.umd.production.min.js"></script>
<script>
  new window.EmbeddedSandbox({{
    target: "#sandbox",
    initialEndpoint: window.location.origin + {path},
    includeCookies: false,
  }});
</script>
</body>
</html>
"##
    )
}

/// A JavaScript string literal of `value` (JSON's escaping is valid JavaScript).
fn serde_json_string(value: &str) -> String {
    let escaped: String = value
        .chars()
        .flat_map(|c| match c {
            '"' => vec!['\\', '"'],
            '\\' => vec!['\\', '\\'],
            '<' => "\\u003c".chars().collect(),
            c if c.is_control() => format!("\\u{:04x}", c as u32).chars().collect(),
            c => vec![c],
        })
        .collect();
    format!("\"{escaped}\"")
}

fn wants_html(accept: Option<&str>) -> bool {
    accept.is_some_and(|accept| accept.split(',').any(|kind| kind.trim().starts_with("text/html")))
}

impl LandingPage {
    /// The stage, or none in the production profile.
    pub fn new(config: LandingPageConfig, production: bool) -> Option<Self> {
        (!production).then(|| Self {
            html: sandbox_page(&config.graphql_path),
        })
    }

    pub fn on_http_request<'req>(&self, payload: OnHttpRequestHookPayload<'req>) -> OnHttpRequestHookResult<'req> {
        let request = &payload.router_http_request;
        let accept = request.headers().get(ACCEPT).and_then(|value| value.to_str().ok());
        if request.method() == Method::GET && request.path() == "/" && wants_html(accept) {
            let page = Response::Ok()
                .content_type("text/html; charset=utf-8")
                .body(self.html.clone());
            return payload.end_with_response(page);
        }
        payload.proceed()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn browsers_get_the_page_and_api_clients_do_not() {
        assert!(wants_html(Some("text/html,application/xhtml+xml;q=0.9,*/*;q=0.8")));
        assert!(!wants_html(Some("application/json")));
        assert!(!wants_html(None));
    }

    #[test]
    fn the_page_points_sandbox_at_the_configured_path_without_breaking_out_of_the_script() {
        let page = sandbox_page("/graphql");
        assert!(
            page.contains(r#"initialEndpoint: window.location.origin + "/graphql""#),
            "{page}"
        );
        let hostile = sandbox_page("/x\"</script><script>alert(1)</script>");
        assert!(!hostile.contains("</script><script>alert"), "{hostile}");
    }
}
