//! The architecture as data: what ARCHITECTURE.md promises, in the form the checks read.
//! Change a rule here and in ARCHITECTURE.md in the same commit.

/// Crates with no protocol stack: nothing in their (normal, transitive) dependency tree
/// serves or speaks HTTP or gRPC. Protocol adapters live in `mlflow-api`, `serving`'s
/// `http`/`grpc` modules, `gateway` and the clients (`mlflow-client`, and `training` and
/// `pipeline` through it).
pub const CORE: &[&str] = &["tracking", "auth", "learn", "drift", "package"];

/// The protocol stacks core crates must not link.
pub const PROTOCOL: &[&str] = &["axum", "tonic", "hyper", "h2", "tower-http", "reqwest"];

/// Crates that must not link others (normal dependencies, transitively), and why.
pub const INDEPENDENT: &[(&str, &[&str], &str)] = &[
    (
        "pipeline",
        &["tracking", "mlflow-api", "auth", "serving", "gateway"],
        "the loop reaches the tracking server, serve and the gateway only over their public HTTP APIs",
    ),
    ("auth", &["mlflow-api", "serving", "gateway", "pipeline", "training"], "auth is a store and rules, no adapters"),
    (
        "learn",
        &["tokio", "reqwest", "sqlx", "object_store", "hyper", "tempfile", "tracking", "package", "mlflow-client"],
        "learn does no I/O beyond the reader it is handed and knows no tracking or packaging",
    ),
    ("drift", &["tracking", "mlflow-client", "reqwest", "tokio"], "drift is statistics and reports over files"),
    ("tracking", &["auth", "mlflow-api", "object_store"], "the tracking store knows no users, routes or artifacts"),
];

/// Items a crate may use from a workspace crate it depends on; any other item is refused.
/// `auth` shares only the backend-URI parser of `tracking` (MLflow's `sqlite:///`,
/// `postgresql://` forms), never its data types.
pub const ALLOWED_IMPORTS: &[(&str, &str, &[&str])] = &[("auth", "tracking", &["Dialect", "parse_backend_uri"])];

/// Paths a crate's library code must not use: `learn` does no I/O of its own.
pub const FORBIDDEN_PATHS: &[(&str, &[&str])] = &[("learn", &["std::fs", "std::net", "std::process", "tokio"])];

/// Crates that are binaries: they (and only they) parse flags and read the environment.
/// A package without a library target is a binary too (`bench`). Test support (`testkit`,
/// a dev-dependency only) reads the test settings (`FACTORY_TEST_POSTGRES`, `FACTORY_BIN`)
/// as a binary would.
pub const BINARIES: &[&str] = &["factory", "testkit"];

/// The flag parser; libraries take typed settings instead.
pub const FLAG_PARSERS: &[&str] = &["clap"];

/// `std::env` functions that read or change the process environment or arguments.
pub const ENV_FUNCTIONS: &[&str] = &["var", "var_os", "vars", "vars_os", "args", "args_os", "set_var", "remove_var"];

/// Compile-time variables library code may read with `env!`: Cargo's package metadata.
pub const BUILD_VARIABLES: &str = "CARGO_";

/// Module cycles known and left in place, as the sorted member list of the cycle, per crate.
pub const KNOWN_CYCLES: &[(&str, &[&str])] = &[];
