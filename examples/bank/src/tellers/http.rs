//! Cash at a teller over HTTP.
//!
//! A withdrawal is a process: the teller records the request, the
//! withdrawal process asks the account, then has the teller dispense or
//! decline. So `POST /tellers/{teller_id}/withdrawals` answers **202
//! Accepted** once the request is recorded, with a `Location` to follow
//! (`GET /tellers/{teller_id}/withdrawals/{withdrawal_id}`). A client that
//! would rather have the outcome sends `Prefer: wait=<seconds>` (RFC 7240,
//! at most 30): the answer then comes when the withdrawal is dispensed or
//! declined and the read models show it, as 200 with its state, or as 202
//! if it took longer.

use super::{InitiateWithdrawal, Teller, TellerError, WithdrawalState, new_withdrawal_id};
use crate::accounts::AccountId;
use crate::http::BankState;
use annals::http::{Api, DomainProblem, JsonBody, PROBLEM_JSON, Problem, RequestId};
use annals::{App, LoadError};
use axum::Json;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use std::borrow::Cow;
use std::time::Duration;
use tokio::time::Instant;

/// The longest `Prefer: wait` honoured.
pub const MAX_WAIT: Duration = Duration::from_secs(30);

/// The read models a finished withdrawal is waited for in.
const READ_MODELS: [&str; 2] = ["bank-balances", "bank-history"];

impl DomainProblem for TellerError {
    fn status(&self) -> StatusCode {
        match self {
            Self::DuplicateWithdrawal(_) => StatusCode::CONFLICT,
            Self::UnknownWithdrawal(_) => StatusCode::NOT_FOUND,
            Self::ZeroAmount => StatusCode::UNPROCESSABLE_ENTITY,
        }
    }

    fn problem_type(&self) -> Cow<'static, str> {
        Cow::Borrowed(match self {
            Self::DuplicateWithdrawal(_) => "urn:bank:problem:duplicate-withdrawal",
            Self::UnknownWithdrawal(_) => "urn:bank:problem:no-such-withdrawal",
            Self::ZeroAmount => "urn:bank:problem:zero-amount",
        })
    }
}

/// The tellers' routes.
pub fn routes(api: Api<BankState>) -> Api<BankState> {
    api.routes(utoipa_axum::routes!(withdraw))
        .routes(utoipa_axum::routes!(withdrawal))
}

/// A request for cash.
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct WithdrawalRequest {
    /// A new id for the withdrawal (default: a new uuid).
    #[serde(default)]
    pub withdrawal_id: Option<String>,
    /// The account to debit.
    pub account_id: AccountId,
    /// Amount in cents.
    pub amount: u64,
    /// The PIN the customer typed.
    pub pin: String,
}

/// A withdrawal and where it is.
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct WithdrawalView {
    /// The withdrawal.
    pub withdrawal_id: String,
    /// The teller it was asked at.
    pub teller_id: String,
    /// The account asked to pay.
    pub account_id: AccountId,
    /// Amount in cents.
    pub amount: u64,
    /// `pending`, `dispensed` or `declined`.
    pub status: String,
    /// Why it was declined.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

/// Asks a teller for cash.
#[utoipa::path(
    post,
    path = "/tellers/{teller_id}/withdrawals",
    tag = "tellers",
    operation_id = "InitiateWithdrawal",
    request_body = WithdrawalRequest,
    params(
        ("teller_id" = String, Path, description = "The teller, e.g. `atm-1`"),
        ("Prefer" = Option<String>, Header, description = "`wait=<seconds>` (at most 30): answer with the outcome once it is known"),
    ),
    responses(
        (status = 200, description = "Finished within the wait: dispensed or declined", body = WithdrawalView),
        (status = 202, description = "Recorded; follow `Location` for the outcome", body = WithdrawalView,
            headers(("Location" = String, description = "Where the withdrawal's state is"))),
        (status = 400, description = "Malformed body", body = Problem, content_type = PROBLEM_JSON),
        (status = 409, description = "That withdrawal id was used at this teller", body = Problem, content_type = PROBLEM_JSON),
        (status = 413, description = "The body is over the limit", body = Problem, content_type = PROBLEM_JSON),
        (status = 415, description = "The body is not JSON", body = Problem, content_type = PROBLEM_JSON),
        (status = 422, description = "A zero amount", body = Problem, content_type = PROBLEM_JSON),
        (status = 503, description = "The event store is unavailable", body = Problem, content_type = PROBLEM_JSON),
    ),
)]
async fn withdraw(
    State(app): State<App>,
    request: RequestId,
    Path(teller_id): Path<String>,
    headers: HeaderMap,
    JsonBody(body): JsonBody<WithdrawalRequest>,
) -> Result<Response, Problem> {
    let withdrawal_id = body.withdrawal_id.unwrap_or_else(new_withdrawal_id);
    app.dispatch_with(
        InitiateWithdrawal {
            teller_id: teller_id.clone(),
            withdrawal_id: withdrawal_id.clone(),
            account_id: body.account_id,
            amount: body.amount,
            pin: body.pin,
        },
        request.dispatch_options(),
    )
    .await
    .map_err(|e| Problem::from_dispatch(&e, request))?;
    answer(
        &app,
        request,
        &teller_id,
        &withdrawal_id,
        prefer_wait(&headers),
    )
    .await
}

/// Where a withdrawal is (honouring `Prefer: wait` as the request does).
#[utoipa::path(
    get,
    path = "/tellers/{teller_id}/withdrawals/{withdrawal_id}",
    tag = "tellers",
    operation_id = "GetWithdrawal",
    params(
        ("teller_id" = String, Path, description = "The teller"),
        ("withdrawal_id" = String, Path, description = "The withdrawal"),
        ("Prefer" = Option<String>, Header, description = "`wait=<seconds>`: wait while it is pending"),
    ),
    responses(
        (status = 200, description = "Dispensed or declined", body = WithdrawalView),
        (status = 202, description = "Still pending", body = WithdrawalView),
        (status = 404, description = "No such withdrawal at this teller", body = Problem, content_type = PROBLEM_JSON),
        (status = 503, description = "The event store is unavailable", body = Problem, content_type = PROBLEM_JSON),
    ),
)]
async fn withdrawal(
    State(app): State<App>,
    request: RequestId,
    Path((teller_id, withdrawal_id)): Path<(String, String)>,
    headers: HeaderMap,
) -> Result<Response, Problem> {
    answer(
        &app,
        request,
        &teller_id,
        &withdrawal_id,
        prefer_wait(&headers),
    )
    .await
}

/// The withdrawal's state once it is finished or `wait` is over: 200 when
/// finished (and the read models show it), else 202 with `Location`.
async fn answer(
    app: &App,
    request: RequestId,
    teller_id: &str,
    withdrawal_id: &str,
    wait: Duration,
) -> Result<Response, Problem> {
    let deadline = Instant::now() + wait;
    let view = loop {
        let view = load(app, request, teller_id, withdrawal_id).await?;
        if view.status != "pending" || Instant::now() >= deadline {
            break view;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    };
    let finished = view.status != "pending";
    if finished && !wait.is_zero() {
        // The account's debit came before the teller's answer: once the
        // read models reach the head, the balance and history show it.
        let head = app
            .store()
            .head_position()
            .await
            .map_err(|e| Problem::from_store(&e, request))?;
        let left = deadline.saturating_duration_since(Instant::now());
        if let Err(late) = app.wait_for_handlers(head, &READ_MODELS, left).await {
            tracing::debug!(request_id = %request, %late, "read models late for a withdrawal");
        }
    }
    let location = format!("/tellers/{teller_id}/withdrawals/{withdrawal_id}");
    let status = if finished {
        StatusCode::OK
    } else {
        StatusCode::ACCEPTED
    };
    let mut response = (status, Json(view)).into_response();
    if let Ok(location) = HeaderValue::from_str(&location) {
        response.headers_mut().insert(header::LOCATION, location);
    }
    Ok(response)
}

async fn load(
    app: &App,
    request: RequestId,
    teller_id: &str,
    withdrawal_id: &str,
) -> Result<WithdrawalView, Problem> {
    let (teller, _) = app.load::<Teller>(teller_id).await.map_err(|e| match e {
        LoadError::Store(store) => Problem::from_store(&store, request),
        LoadError::InvalidId(invalid) => Problem::invalid(invalid.to_string()),
        other => Problem::internal(&other, request),
    })?;
    let found = teller.withdrawal_details(withdrawal_id).ok_or_else(|| {
        Problem::not_found(format!(
            "no withdrawal `{withdrawal_id}` at teller `{teller_id}`"
        ))
    })?;
    Ok(WithdrawalView {
        withdrawal_id: withdrawal_id.to_owned(),
        teller_id: teller_id.to_owned(),
        account_id: found.account_id,
        amount: found.amount,
        status: match found.state {
            WithdrawalState::Pending => "pending",
            WithdrawalState::Dispensed => "dispensed",
            WithdrawalState::Declined => "declined",
        }
        .to_owned(),
        reason: found.reason.clone(),
    })
}

/// `Prefer: wait=N` (RFC 7240), at most [`MAX_WAIT`]; zero without it.
fn prefer_wait(headers: &HeaderMap) -> Duration {
    headers
        .get_all("prefer")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split([',', ';']))
        .filter_map(|p| p.trim().strip_prefix("wait="))
        .find_map(|n| n.trim().parse::<u64>().ok())
        .map_or(Duration::ZERO, |s| Duration::from_secs(s).min(MAX_WAIT))
}
