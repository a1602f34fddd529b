//! The one route table. Every route the server answers is declared here once: its methods,
//! its path, the typed request it reads ([`Input`]), its handler, and the rule that says what
//! that request needs ([`Rule`] → [`Need`]). The axum router is built from this table and
//! nothing else, so a route cannot exist without a declared permission, and
//! [`crate::route_table`] lists exactly what is served (the route-table test walks it).
//!
//! A request is parsed once. With auth on, the rule runs on that parsed value for every
//! non-admin caller and every method the route answers (HEAD, which axum serves with the GET
//! handler, included), and the handler receives the very same value: there is no second
//! reading of the body or query for the permission check to disagree with.
//!
//! Adding a route: in the module that owns it, call [`Api::rule`] (the rule decides),
//! [`Api::listing`] (any logged-in user; the handler only shows what the caller may read, using
//! the [`Caller`] it is given) or [`Api::public`] (no login). The rule is a plain function of the
//! typed request, e.g. `|r| Ok(Need::Run(r.run.id()?, Action::Update))`.

use crate::access::{self, Need};
use crate::auth::{forbidden, unauthenticated, Caller, PublicPaths};
use crate::error::ApiResult;
use crate::AppState;
use axum::extract::{Request, State};
use axum::http::Method;
use axum::response::{IntoResponse, Response};
use axum::routing::{MethodFilter, MethodRouter};
use axum::Router;
use futures::future::BoxFuture;
use std::collections::BTreeMap;
use std::future::Future;
use std::sync::Arc;

pub const GET: &[Method] = &[Method::GET];
pub const POST: &[Method] = &[Method::POST];
pub const GET_POST: &[Method] = &[Method::GET, Method::POST];
pub const PATCH: &[Method] = &[Method::PATCH];
pub const PUT: &[Method] = &[Method::PUT];
pub const DELETE: &[Method] = &[Method::DELETE];

/// Where MLflow mounts its REST API (the `ajax-api` copy is what its web UI calls).
pub const MLFLOW_V2: &[&str] = &["/api/2.0/mlflow", "/ajax-api/2.0/mlflow"];
/// Routes MLflow serves for its web UI only.
pub const AJAX_V2: &[&str] = &["/ajax-api/2.0/mlflow"];
pub const MLFLOW_V3: &[&str] = &["/api/3.0/mlflow", "/ajax-api/3.0/mlflow"];
pub const ARTIFACTS: &[&str] = &["/api/2.0/mlflow-artifacts", "/ajax-api/2.0/mlflow-artifacts"];
pub const FACTORY: &[&str] = &["/api/2.0/factory"];
pub const ROOT: &[&str] = &[""];

/// Who may call a route, as the table declares it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Guard {
    /// No login (`/health`, server info).
    Public,
    /// Any logged-in user; the answer holds only what the caller may read (searches,
    /// listings, one's own account). A rule may still refuse some requests.
    Listing,
    /// The route's rule decides, from the typed request.
    Rule,
}

/// One declared path with its methods, as the route-table test enumerates them.
#[derive(Debug, Clone)]
pub struct RouteInfo {
    pub path: String,
    pub methods: Vec<Method>,
    pub guard: Guard,
}

/// A request as its handler reads it, parsed once; the route's rule reads the same value.
pub trait Input: Sized + Send + 'static {
    fn parse(req: Request, s: &AppState) -> impl Future<Output = ApiResult<Self>> + Send;
}

/// Routes that read nothing from the request.
impl Input for () {
    async fn parse(_: Request, _: &AppState) -> ApiResult<()> {
        Ok(())
    }
}

/// What a request needs of its caller, computed from the typed request alone.
pub type Rule<I> = fn(&I) -> ApiResult<Need>;

/// A route handler: `async fn(AppState, Caller, I) -> ApiResult<impl IntoResponse>`.
pub trait Handler<I>: Clone + Send + Sync + 'static {
    fn call(&self, s: AppState, who: Caller, input: I) -> BoxFuture<'static, Response>;
}

impl<F, Fut, I, R> Handler<I> for F
where
    F: Fn(AppState, Caller, I) -> Fut + Clone + Send + Sync + 'static,
    Fut: Future<Output = ApiResult<R>> + Send + 'static,
    R: IntoResponse,
{
    fn call(&self, s: AppState, who: Caller, input: I) -> BoxFuture<'static, Response> {
        let fut = (self)(s, who, input);
        Box::pin(async move {
            match fut.await {
                Ok(r) => r.into_response(),
                Err(e) => e.into_response(),
            }
        })
    }
}

/// The table under construction; [`Api::into_router`] turns it into the axum router.
#[derive(Default)]
pub struct Api {
    routes: BTreeMap<String, (MethodRouter<AppState>, RouteInfo)>,
    prefixes: &'static [&'static str],
}

impl Api {
    /// Declares the routes `declare` adds under each of `prefixes`.
    pub fn under(&mut self, prefixes: &'static [&'static str], declare: impl FnOnce(&mut Api)) -> &mut Self {
        let outer = std::mem::replace(&mut self.prefixes, prefixes);
        declare(self);
        self.prefixes = outer;
        self
    }

    /// A route whose rule decides who may call it.
    pub fn rule<I: Input, H: Handler<I>>(&mut self, methods: &[Method], path: &str, handler: H, rule: Rule<I>) {
        self.add(methods, path, Guard::Rule, handler, rule);
    }

    /// A route any logged-in user may call; the handler filters what it shows.
    pub fn listing<I: Input, H: Handler<I>>(&mut self, methods: &[Method], path: &str, handler: H) {
        self.add(methods, path, Guard::Listing, handler, |_| Ok(Need::Anyone));
    }

    /// A listing whose rule may still refuse some requests (e.g. a search selecting runs).
    pub fn listing_with<I: Input, H: Handler<I>>(&mut self, methods: &[Method], path: &str, handler: H, rule: Rule<I>) {
        self.add(methods, path, Guard::Listing, handler, rule);
    }

    /// A route that needs no login.
    pub fn public<I: Input, H: Handler<I>>(&mut self, methods: &[Method], path: &str, handler: H) {
        self.add(methods, path, Guard::Public, handler, |_| Ok(Need::Anyone));
    }

    fn add<I: Input, H: Handler<I>>(
        &mut self,
        methods: &[Method],
        path: &str,
        guard: Guard,
        handler: H,
        rule: Rule<I>,
    ) {
        let endpoint = Arc::new(Endpoint { public: guard == Guard::Public, rule, handler });
        let serve = move |State(s): State<AppState>, req: Request| {
            let endpoint = Arc::clone(&endpoint);
            async move { endpoint.serve(s, req).await }
        };
        for prefix in self.prefixes {
            let full = format!("{prefix}{path}");
            let mut router = MethodRouter::new();
            for m in methods {
                let filter = MethodFilter::try_from(m.clone()).expect("a standard HTTP method");
                router = router.on(filter, serve.clone());
            }
            match self.routes.remove(&full) {
                None => {
                    let info = RouteInfo { path: full.clone(), methods: methods.to_vec(), guard };
                    self.routes.insert(full, (router, info));
                }
                Some((existing, mut info)) => {
                    // Same path, other methods (the artifact routes): merging panics if a
                    // method is declared twice, and the guards must agree.
                    assert_eq!(info.guard, guard, "{full}: one path, one guard");
                    info.methods.extend(methods.iter().cloned());
                    self.routes.insert(full, (existing.merge(router), info));
                }
            }
        }
    }

    /// Every declared path, its methods and guard.
    pub fn table(&self) -> Vec<RouteInfo> {
        self.routes.values().map(|(_, info)| info.clone()).collect()
    }

    /// The paths that need no login (the auth layer lets them through unauthenticated).
    pub fn public_paths(&self) -> PublicPaths {
        let mut public = PublicPaths::default();
        for (_, info) in self.routes.values().filter(|(_, i)| i.guard == Guard::Public) {
            match info.path.split_once("{*") {
                // A wildcard route matches every path under its prefix: the router sends all
                // of them (however written) to that route, so the prefix is what is public.
                Some((prefix, _)) => public.prefixes.push(prefix.to_string()),
                None => {
                    public.exact.insert(info.path.clone());
                }
            }
        }
        public
    }

    pub fn into_router(self) -> Router<AppState> {
        self.routes.into_iter().fold(Router::new(), |r, (path, (methods, _))| r.route(&path, methods))
    }
}

/// One declared route at run time.
struct Endpoint<I, H> {
    public: bool,
    rule: Rule<I>,
    handler: H,
}

impl<I: Input, H: Handler<I>> Endpoint<I, H> {
    async fn serve(&self, s: AppState, req: Request) -> Response {
        let Some(who) = Caller::of(&s, &req, self.public) else { return unauthenticated() };
        let input = match I::parse(req, &s).await {
            Ok(input) => input,
            Err(e) => return e.into_response(),
        };
        if let Some(session) = who.restricted() {
            let verdict = match (self.rule)(&input) {
                Ok(need) => access::allows(&s, session, &need).await,
                Err(e) => Err(e),
            };
            match verdict {
                Ok(true) => {}
                Ok(false) => return forbidden(),
                Err(e) => return e.into_response(),
            }
        }
        self.handler.call(s, who, input).await
    }
}
