use super::*;

fn guard(f: impl FnOnce(&mut GuardConfig)) -> Guard {
    let mut cfg = GuardConfig::default();
    f(&mut cfg);
    Guard::new(&cfg).unwrap()
}

fn headers(pairs: &[(&str, &str)]) -> HeaderMap {
    let mut h = HeaderMap::new();
    for (k, v) in pairs {
        h.append(axum::http::HeaderName::from_bytes(k.as_bytes()).unwrap(), HeaderValue::from_str(v).unwrap());
    }
    h
}

/// (status, body) of an answer, or `None` when the request passes.
fn check(g: &Guard, method: &str, path: &str, pairs: &[(&str, &str)]) -> Option<(u16, String, HeaderMap)> {
    let uri: Uri = path.parse().unwrap();
    match g.decide(&Method::from_bytes(method.as_bytes()).unwrap(), &uri, &headers(pairs)) {
        Verdict::Pass { .. } => None,
        Verdict::Answer(r) => {
            let status = r.status().as_u16();
            let h = r.headers().clone();
            let rt = tokio::runtime::Builder::new_current_thread().build().unwrap();
            let body = rt.block_on(axum::body::to_bytes(r.into_body(), 1 << 16)).unwrap();
            Some((status, String::from_utf8(body.to_vec()).unwrap(), h))
        }
    }
}

#[test]
fn default_hosts_are_mlflows() {
    let g = guard(|_| {});
    for (host, ok) in [
        ("127.0.0.1:5000", true),
        ("localhost", true),
        ("localhost:8080", true),
        ("[::1]:5000", true),
        ("0.0.0.0:5000", true),
        ("10.1.2.3:5000", true),
        ("192.168.0.9", true),
        ("172.16.0.1:80", true),
        ("172.31.255.1", true),
        ("172.32.0.1", false),
        ("server:5000", false),
        ("evil.com", false),
        ("LOCALHOST", false),
        ("", false),
    ] {
        assert_eq!(g.host_allowed(Some(host)), ok, "{host}");
    }
    assert!(!g.host_allowed(None));
}

#[test]
fn hosts_are_parsed_before_they_are_matched() {
    // Names that merely start like an allowed address (DNS rebinding), and ports that are not numbers.
    let g = guard(|_| {});
    for host in [
        "192.168.1.5.attacker.com",
        "10.0.0.1.evil.com",
        "172.16.0.1.nip.io:5000",
        "localhost:5000.evil.com",
        "localhost:5177@evil.com",
        "127.0.0.1:80:80",
        "127.0.0.1:+80",
        "localhost:",
        "127.0.0.1:99999",
        "[::1].evil.com",
        "[fd00::1]x",
        "evil.com@10.0.0.1",
        "10.0.0.1 ",
        "fc00:evil",
    ] {
        assert!(!g.host_allowed(Some(host)), "{host}");
    }
    for host in ["[fd00::1]:5000", "[fc00::2]", "fd00::1", "::1", "10.0.0.1:65535", "localhost:5177"] {
        assert!(g.host_allowed(Some(host)), "{host}");
    }
    // A given pattern keeps fnmatch, on a header that parses as host[:port].
    let g = guard(|c| c.allowed_hosts = Some(parse_list("*.corp.example,mlflow.example.com:*")));
    for (host, ok) in [
        ("a.corp.example", true),
        ("a.corp.example:443", false),
        ("mlflow.example.com:443", true),
        ("mlflow.example.com:443.evil.com", false),
        ("mlflow.example.com:443@evil.com", false),
        ("evil.com:1@a.corp.example", false),
        ("evil.com/x.corp.example", false),
    ] {
        assert_eq!(g.host_allowed(Some(host)), ok, "{host}");
    }
    assert_eq!(
        parse_host("[::1]:8080"),
        Some(HostHeader { name: "::1", ip: Some(IpAddr::V6(Ipv6Addr::LOCALHOST)), port: Some(8080) })
    );
    assert_eq!(parse_host("server"), Some(HostHeader { name: "server", ip: None, port: None }));
}

#[test]
fn host_check_answers_403_except_health() {
    let g = guard(|c| c.allowed_hosts = Some(parse_list("mlflow.example.com, app-*.internal,10.0.0.5:5000")));
    let (status, body, h) = check(&g, "GET", "/api/2.0/mlflow/experiments/search", &[("host", "evil.com")]).unwrap();
    assert_eq!((status, body.as_str()), (403, INVALID_HOST_MSG));
    assert_eq!(h[header::CONTENT_TYPE], "text/plain");
    assert!(check(&g, "GET", "/health", &[("host", "evil.com")]).is_none());
    assert!(check(&g, "GET", "/version", &[("host", "evil.com")]).is_none());
    assert!(check(&g, "GET", "/nope", &[("host", "evil.com")]).is_some());
    assert!(check(&g, "GET", "/api/x", &[]).is_some(), "no Host header");
    for ok in ["mlflow.example.com", "app-7.internal", "10.0.0.5:5000"] {
        assert!(check(&g, "POST", "/api/x", &[("host", ok)]).is_none(), "{ok}");
    }
    // A given list replaces the defaults, as in MLflow.
    for refused in ["mlflow.example.com:443", "127.0.0.1:5000", "localhost", "MLFLOW.example.com"] {
        assert!(check(&g, "GET", "/api/x", &[("host", refused)]).is_some(), "{refused}");
    }
    let open = guard(|c| c.allowed_hosts = Some(vec!["*".into()]));
    assert!(check(&open, "GET", "/api/x", &[("host", "evil.com")]).is_none());
    let off = guard(|c| c.disable_security = true);
    assert!(check(&off, "GET", "/api/x", &[("host", "evil.com")]).is_none());
}

#[test]
fn preflight_as_starlette_answers_it() {
    let g = guard(|c| c.cors_allowed_origins = parse_list("https://ui.example.com,https://*.corp.example"));
    let pre = |origin: &str, method: &str, hdrs: Option<&str>| {
        let mut p = vec![("host", "localhost:5000"), ("origin", origin), ("access-control-request-method", method)];
        if let Some(h) = hdrs {
            p.push(("access-control-request-headers", h));
        }
        check(&g, "OPTIONS", "/api/2.0/mlflow/runs/create", &p).unwrap()
    };
    let (s, body, h) = pre("https://ui.example.com", "POST", Some("content-type,authorization"));
    assert_eq!((s, body.as_str()), (200, "OK"));
    assert_eq!(h[header::ACCESS_CONTROL_ALLOW_ORIGIN], "https://ui.example.com");
    assert_eq!(h[header::ACCESS_CONTROL_ALLOW_CREDENTIALS], "true");
    assert_eq!(h[header::ACCESS_CONTROL_ALLOW_METHODS], CORS_METHODS);
    assert_eq!(h[header::ACCESS_CONTROL_ALLOW_HEADERS], "content-type,authorization");
    assert_eq!(h[header::ACCESS_CONTROL_MAX_AGE], "600");
    let (s, body, h) = pre("https://evil.com", "POST", None);
    assert_eq!((s, body.as_str()), (400, "Disallowed CORS origin"));
    assert!(!h.contains_key(header::ACCESS_CONTROL_ALLOW_ORIGIN));
    let (s, body, _) = pre("https://ui.example.com", "HEAD", None);
    assert_eq!((s, body.as_str()), (400, "Disallowed CORS method"));
    let (s, body, _) = pre("https://evil.com", "TRACE", None);
    assert_eq!((s, body.as_str()), (400, "Disallowed CORS origin, method"));
    assert_eq!(pre("http://localhost:3000", "DELETE", None).0, 200);
    assert_eq!(pre("https://localhost:3000", "DELETE", None).0, 400, "the localhost regexes are http only");
    assert_eq!(pre("https://a.corp.example", "POST", None).0, 200, "patterns apply to preflights too");
    // Without Origin, OPTIONS is an ordinary request.
    assert!(
        check(&g, "OPTIONS", "/api/x", &[("host", "localhost"), ("access-control-request-method", "POST")]).is_none()
    );
}

#[test]
fn cross_origin_state_changes_are_blocked_on_the_api() {
    let g = guard(|c| c.cors_allowed_origins = parse_list("https://ui.example.com,https://*.corp.example"));
    let req = |method: &str, path: &str, origin: &str| {
        check(&g, method, path, &[("host", "localhost"), ("origin", origin)]).map(|(s, b, _)| (s, b))
    };
    let blocked = Some((403, CORS_BLOCKED_MSG.to_string()));
    assert_eq!(req("POST", "/api/2.0/mlflow/experiments/create", "https://evil.com"), blocked);
    assert_eq!(req("DELETE", "/ajax-api/2.0/mlflow/runs/delete", "null"), blocked);
    assert_eq!(req("PATCH", "/api/2.0/mlflow/x", "https://evil.com"), blocked);
    assert_eq!(req("GET", "/api/2.0/mlflow/experiments/search", "https://evil.com"), None);
    assert_eq!(req("POST", "/nonapi", "https://evil.com"), None);
    assert_eq!(req("POST", "/api/2.0/mlflow/experiments/create", "https://ui.example.com"), None);
    assert_eq!(req("POST", "/api/2.0/mlflow/experiments/create", "https://a.corp.example"), None);
    assert_eq!(req("POST", "/api/2.0/mlflow/experiments/create", "https://localhost:9"), None);
    assert_eq!(req("POST", "/api/2.0/mlflow/experiments/create", "http://[::1]:9"), None);
    let any = guard(|c| c.cors_allowed_origins = vec!["*".into()]);
    assert!(check(&any, "POST", "/api/x", &[("host", "localhost"), ("origin", "https://evil.com")]).is_none());
}

#[test]
fn simple_responses_carry_cors_and_security_headers() {
    let g = guard(|c| c.cors_allowed_origins = vec!["https://ui.example.com".into()]);
    let mut h = HeaderMap::new();
    g.finish(&mut h, Some("https://ui.example.com"), false);
    assert_eq!(h[header::ACCESS_CONTROL_ALLOW_ORIGIN], "https://ui.example.com");
    assert_eq!(h[header::ACCESS_CONTROL_ALLOW_CREDENTIALS], "true");
    assert_eq!(h[header::X_CONTENT_TYPE_OPTIONS], "nosniff");
    assert_eq!(h[header::X_FRAME_OPTIONS], "SAMEORIGIN");
    let mut h = HeaderMap::new();
    g.finish(&mut h, Some("https://evil.com"), false);
    assert!(!h.contains_key(header::ACCESS_CONTROL_ALLOW_ORIGIN));
    let any = guard(|c| {
        c.cors_allowed_origins = vec!["*".into()];
        c.x_frame_options = "none".into();
    });
    let mut h = HeaderMap::new();
    any.finish(&mut h, Some("https://evil.com"), false);
    assert_eq!(h[header::ACCESS_CONTROL_ALLOW_ORIGIN], "*");
    assert!(!h.contains_key(header::ACCESS_CONTROL_ALLOW_CREDENTIALS));
    assert!(!h.contains_key(header::X_FRAME_OPTIONS));
}

#[test]
fn surface_flags_answer_mlflows_503() {
    let only = guard(|c| c.surface = Surface::ArtifactsOnly);
    let (s, body, _) = check(&only, "POST", "/api/2.0/mlflow/runs/create", &[("host", "localhost")]).unwrap();
    assert_eq!(s, 503);
    assert!(body.contains("`--artifacts-only` mode"), "{body}");
    assert!(check(&only, "GET", "/api/2.0/mlflow-artifacts/artifacts", &[("host", "localhost")]).is_none());
    assert!(check(&only, "GET", "/health", &[]).is_none());
    let none = guard(|c| c.surface = Surface::NoArtifacts);
    let (s, body, _) =
        check(&none, "GET", "/ajax-api/2.0/mlflow-artifacts/artifacts/a", &[("host", "localhost")]).unwrap();
    assert_eq!(s, 503);
    assert!(body.contains("`--no-serve-artifacts`"), "{body}");
    assert!(check(&none, "GET", "/api/2.0/mlflow/experiments/search", &[("host", "localhost")]).is_none());
}

#[test]
fn static_prefix_scopes_every_route() {
    let g = guard(|c| c.static_prefix = Some("/mlflow".into()));
    assert!(check(&g, "GET", "/mlflow/api/2.0/mlflow/experiments/search", &[("host", "localhost")]).is_none());
    assert_eq!(check(&g, "GET", "/api/2.0/mlflow/experiments/search", &[("host", "localhost")]).unwrap().0, 404);
    // Only the prefixed health route is exempt from the host check.
    assert!(check(&g, "GET", "/mlflow/health", &[("host", "evil.com")]).is_none());
    assert_eq!(check(&g, "GET", "/health", &[("host", "evil.com")]).unwrap().0, 403);
    assert_eq!(check(&g, "GET", "/mlflowx/health", &[("host", "localhost")]).unwrap().0, 404);
    let (s, _, h) = check(&g, "GET", "/mlflow?a=1", &[("host", "localhost")]).unwrap();
    assert_eq!((s, &h[header::LOCATION]), (308, &HeaderValue::from_static("/mlflow/?a=1")));
    assert_eq!(check(&g, "GET", "/mlflow", &[("host", "evil.com")]).unwrap().0, 403);
    for (p, err) in [("mlflow", "begin"), ("/mlflow/", "end"), ("/{x}", "'{'")] {
        let e = Guard::new(&GuardConfig { static_prefix: Some(p.into()), ..GuardConfig::default() }).unwrap_err();
        assert!(e.to_string().contains(err), "{e}");
    }
}

#[test]
fn localhost_origins_as_urlparse_sees_them() {
    for (o, want) in [
        ("http://localhost:3000", true),
        ("https://LOCALHOST", true),
        ("https://[::1]:1", true),
        ("http://user@127.0.0.1:9/x", true),
        ("http://localhost.evil.com", false),
        ("null", false),
        ("localhost:3000", false),
    ] {
        assert_eq!(is_localhost_origin(o), want, "{o}");
    }
    for (o, want) in [
        ("http://localhost", true),
        ("http://127.0.0.1:5000", true),
        ("http://[::1]:80", true),
        ("http://localhost:", false),
        ("http://localhost:x", false),
        ("http://localhost.evil", false),
    ] {
        assert_eq!(is_localhost_http_origin(o), want, "{o}");
    }
}
