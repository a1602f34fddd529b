//! Temp databases: the backends to test and a fresh database of each.

/// The backends to test: SQLite always, PostgreSQL when `FACTORY_TEST_POSTGRES` names an
/// admin URL such as `postgres://postgres@127.0.0.1:5432/postgres`.
pub fn backends() -> Vec<&'static str> {
    let mut b = vec!["sqlite"];
    if postgres_admin().is_some() {
        b.push("postgres");
    }
    b
}

fn postgres_admin() -> Option<String> {
    std::env::var("FACTORY_TEST_POSTGRES").ok().filter(|v| !v.is_empty())
}

/// A database of its own: a SQLite file in a temp folder, or a new PostgreSQL database
/// `factory_it_<uuid>` (left for `scripts/test.sh` to drop: servers may still hold
/// connections when the test ends).
pub struct TempDb {
    /// MLflow's `--backend-store-uri` form.
    pub uri: String,
    /// The folder of the SQLite file (and anything else the test keeps beside it).
    pub dir: tempfile::TempDir,
}

impl TempDb {
    pub async fn new(backend: &str) -> TempDb {
        let dir = tempfile::tempdir().expect("temp folder");
        let uri = match backend {
            "sqlite" => format!("sqlite:///{}", dir.path().join("t.db").display()),
            "postgres" => fresh_postgres().await,
            other => panic!("unknown backend {other}"),
        };
        TempDb { uri, dir }
    }
}

async fn fresh_postgres() -> String {
    let admin = postgres_admin().expect("FACTORY_TEST_POSTGRES names no PostgreSQL admin URL");
    let db = format!("factory_it_{}", uuid::Uuid::new_v4().simple());
    sqlx::any::install_default_drivers();
    let pool = sqlx::AnyPool::connect(&admin).await.expect("connect to PostgreSQL");
    sqlx::query(&format!("CREATE DATABASE {db}")).execute(&pool).await.expect("create database");
    let (base, _) = admin.rsplit_once('/').expect("admin URL ends in /<db>");
    format!("{base}/{db}")
}
