//! The bank's HTTP JSON API: each slice adds its routes (`accounts::http`,
//! `tellers::http`), and `annals::http` serves them with problem+json
//! errors, request ids and the OpenAPI document at `/openapi.json`.
//!
//! | method and path | what |
//! |---|---|
//! | `POST /accounts` | open an account (201, `Location`) |
//! | `GET /accounts/{account_id}` | its balance (the `bank_balances` read model) |
//! | `GET /accounts/{account_id}/history` | its money movements (`bank_history`) |
//! | `POST /accounts/{account_id}/deposits` | pay in |
//! | `POST /accounts/{account_id}/withdrawals` | pay out |
//! | `POST /accounts/{account_id}/close` | close it (at a zero balance) |
//! | `POST /tellers/{teller_id}/withdrawals` | cash at a teller (202 and `Location`, or the outcome with `Prefer: wait=N`) |
//! | `GET /tellers/{teller_id}/withdrawals/{withdrawal_id}` | where that withdrawal is |
//! | `POST /profiles` | create a customer profile, a JSON document checked by [`profiles::schema`](crate::profiles::schema) (201, `Location`, `ETag`) |
//! | `GET /profiles/{id}` | read it (`ETag`: its version) |
//! | `PUT /profiles/{id}` | replace it (`If-Match` makes it conditional) |
//! | `PATCH /profiles/{id}` | apply an RFC 6902 JSON Patch (`application/json-patch+json`) |
//! | `DELETE /profiles/{id}` | delete it |
//! | `GET /streams/{stream_id}/events` | a stream's stored events and metadata |
//! | `GET /handlers` | each projection's and process's position, lag and last error |
//! | `GET /ws` | a WebSocket: the account commands as messages, live event feeds |
//! | `GET /streams` | the streams, a page at a time, with their versions |
//! | `GET /browser` | the event browser page (and its script, `/browser/browser.js`) |
//! | `GET /openapi.json` | the OpenAPI 3.1 document of all of these |
//!
//! Account commands answer once the read models show them (they are
//! strongly consistent), so a `GET` after a `POST` sees it.

use crate::read_models::ReadDb;
use annals::App;
use annals::document::DocumentReadModel;
use annals::http::{Api, Problem, RequestId};
use axum::extract::FromRef;
use std::future::Future;

/// The router's state: the app, and the database of its read models.
#[derive(Debug, Clone)]
pub struct BankState {
    /// The bank's app.
    pub app: App,
    /// Where `bank_balances` and `bank_history` live.
    pub read: ReadDb,
}

impl FromRef<BankState> for App {
    fn from_ref(state: &BankState) -> App {
        state.app.clone()
    }
}

impl FromRef<BankState> for DocumentReadModel {
    fn from_ref(state: &BankState) -> DocumentReadModel {
        match &state.read {
            ReadDb::Sqlite(pool) => DocumentReadModel::Sqlite(pool.clone()),
            ReadDb::Postgres(pool) => DocumentReadModel::Postgres(pool.clone()),
        }
    }
}

impl FromRef<BankState> for ReadDb {
    fn from_ref(state: &BankState) -> ReadDb {
        state.read.clone()
    }
}

/// The bank's API: every route, documented.
pub fn api() -> Api<BankState> {
    let api = Api::new()
        .title("Annals bank")
        .version(env!("CARGO_PKG_VERSION"))
        .description(
            "Accounts, deposits, withdrawals and cash at tellers, event-sourced with Annals. \
             Errors are `application/problem+json`; `x-request-id` becomes the events' \
             correlation id; `If-Match: \"<version>\"` makes a command conditional. \
             Customer profiles are JSON documents: PATCH takes an RFC 6902 JSON Patch.",
        );
    let api = crate::accounts::http::routes(api);
    let api = crate::tellers::http::routes(api);
    api.documents(crate::profiles::kind())
        .stream_events()
        .handler_status()
        .websocket()
        .browser()
}

/// The router, with its state.
pub fn router(state: BankState) -> axum::Router {
    api().into_router().with_state(state)
}

/// Serves the API on `listener` until `shutdown` resolves, then lets the
/// requests in flight finish. The caller then shuts the app down
/// ([`App::shutdown`]): handlers stop at a checkpoint and the store closes.
pub async fn serve(
    listener: tokio::net::TcpListener,
    state: BankState,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    axum::serve(listener, router(state))
        .with_graceful_shutdown(shutdown)
        .await
}

/// A read model's failure: 503 when its database cannot be reached, else 500.
pub(crate) fn read_problem(error: sqlx::Error, request: RequestId) -> Problem {
    match error {
        sqlx::Error::Io(_) | sqlx::Error::PoolTimedOut | sqlx::Error::PoolClosed => {
            tracing::warn!(request_id = %request, %error, "read model database unavailable");
            Problem::unavailable("the read models' database is unavailable")
        }
        other => Problem::internal(&other, request),
    }
}
