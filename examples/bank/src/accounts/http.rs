//! The accounts over HTTP: the commands as POST endpoints, the balance and
//! history read models as GET endpoints, and how a refusal reads.

use super::{AccountError, AccountId, CloseAccount, DepositMoney, OpenAccount, WithdrawMoney};
use crate::http::{BankState, read_problem};
use crate::read_models::ReadDb;
use annals::http::{Api, CommandEndpoint, DomainProblem, PROBLEM_JSON, Problem, RequestId};
use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use std::borrow::Cow;

/// Each refusal has its own type; an account that was never opened is a
/// 404, one opened twice a 409, every other refusal a 422.
impl DomainProblem for AccountError {
    fn status(&self) -> StatusCode {
        match self {
            Self::NotOpen => StatusCode::NOT_FOUND,
            Self::AlreadyOpen => StatusCode::CONFLICT,
            _ => StatusCode::UNPROCESSABLE_ENTITY,
        }
    }

    fn problem_type(&self) -> Cow<'static, str> {
        Cow::Borrowed(match self {
            Self::AlreadyOpen => "urn:bank:problem:already-open",
            Self::NotOpen => "urn:bank:problem:no-such-account",
            Self::Closed => "urn:bank:problem:account-closed",
            Self::EmptyLastName => "urn:bank:problem:empty-last-name",
            Self::InvalidPin => "urn:bank:problem:invalid-pin",
            Self::ZeroAmount => "urn:bank:problem:zero-amount",
            Self::InsufficientFunds { .. } => "urn:bank:problem:insufficient-funds",
            Self::UnsupportedCurrency(_) => "urn:bank:problem:unsupported-currency",
            Self::Overflow => "urn:bank:problem:overflow",
            Self::NonZeroBalance { .. } => "urn:bank:problem:non-zero-balance",
        })
    }

    fn title(&self) -> Cow<'static, str> {
        Cow::Borrowed(match self {
            Self::AlreadyOpen => "Account already open",
            Self::NotOpen => "No such account",
            Self::Closed => "Account closed",
            Self::EmptyLastName => "Last name missing",
            Self::InvalidPin => "Invalid PIN",
            Self::ZeroAmount => "Zero amount",
            Self::InsufficientFunds { .. } => "Insufficient funds",
            Self::UnsupportedCurrency(_) => "Unsupported currency",
            Self::Overflow => "Balance overflow",
            Self::NonZeroBalance { .. } => "Balance not zero",
        })
    }

    fn extensions(&self) -> Map<String, Value> {
        let mut members = Map::new();
        match self {
            Self::InsufficientFunds { balance, requested } => {
                members.insert("balance".into(), (*balance).into());
                members.insert("requested".into(), (*requested).into());
            }
            Self::NonZeroBalance { balance } => {
                members.insert("balance".into(), (*balance).into());
            }
            Self::UnsupportedCurrency(currency) => {
                members.insert("currency".into(), currency.clone().into());
            }
            _ => {}
        }
        members
    }
}

/// The accounts' routes.
pub fn routes(api: Api<BankState>) -> Api<BankState> {
    api.command_with::<OpenAccount>(
        "/accounts",
        CommandEndpoint::<OpenAccount>::new()
            .created(|open| format!("/accounts/{}", open.account_id))
            .strongly_consistent()
            .tag("accounts"),
    )
    .command_with::<DepositMoney>("/accounts/{account_id}/deposits", consistent())
    .command_with::<WithdrawMoney>("/accounts/{account_id}/withdrawals", consistent())
    .command_with::<CloseAccount>("/accounts/{account_id}/close", consistent())
    .routes(utoipa_axum::routes!(account))
    .routes(utoipa_axum::routes!(history))
}

/// Answered once the read models show the command.
fn consistent<C>() -> CommandEndpoint<C> {
    CommandEndpoint::new().strongly_consistent().tag("accounts")
}

/// An account's balance, from the `bank_balances` read model.
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct AccountView {
    /// The account.
    pub account_id: String,
    /// The owner's name in full.
    pub owner: String,
    /// The balance in cents.
    pub balance: i64,
    /// ISO 4217 code of the balance.
    pub currency: String,
    /// `open` or `closed`.
    pub status: String,
}

/// An account's money movements, from the `bank_history` read model.
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct HistoryView {
    /// The account.
    pub account_id: String,
    /// Oldest first.
    pub entries: Vec<HistoryEntry>,
}

/// One money movement.
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct HistoryEntry {
    /// The event's global position.
    pub position: i64,
    /// `deposit` or `withdrawal`.
    pub kind: String,
    /// The amount in cents.
    pub amount: i64,
    /// ISO 4217 code.
    pub currency: String,
}

fn account_id(text: &str) -> Result<AccountId, Problem> {
    text.parse()
        .map_err(|_| Problem::invalid(format!("`{text}` is not an account id (a UUID)")))
}

/// An account's balance and status.
#[utoipa::path(
    get,
    path = "/accounts/{account_id}",
    tag = "accounts",
    operation_id = "GetAccount",
    params(("account_id" = AccountId, Path, description = "The account")),
    responses(
        (status = 200, description = "The account", body = AccountView),
        (status = 400, description = "Not an account id", body = Problem, content_type = PROBLEM_JSON),
        (status = 404, description = "No such account", body = Problem, content_type = PROBLEM_JSON),
        (status = 503, description = "The read models' database is unavailable", body = Problem, content_type = PROBLEM_JSON),
    ),
)]
async fn account(
    State(read): State<ReadDb>,
    request: RequestId,
    Path(account): Path<String>,
) -> Result<Json<AccountView>, Problem> {
    let id = account_id(&account)?;
    let row = read
        .balance(&id.to_string())
        .await
        .map_err(|e| read_problem(e, request))?
        .ok_or_else(|| Problem::not_found(format!("no account {id}")))?;
    Ok(Json(AccountView {
        account_id: row.account_id,
        owner: row.owner,
        balance: row.balance,
        currency: super::CURRENCY.to_owned(),
        status: row.status,
    }))
}

/// An account's deposits and withdrawals, oldest first.
#[utoipa::path(
    get,
    path = "/accounts/{account_id}/history",
    tag = "accounts",
    operation_id = "GetHistory",
    params(("account_id" = AccountId, Path, description = "The account")),
    responses(
        (status = 200, description = "The account's movements", body = HistoryView),
        (status = 400, description = "Not an account id", body = Problem, content_type = PROBLEM_JSON),
        (status = 404, description = "No such account", body = Problem, content_type = PROBLEM_JSON),
        (status = 503, description = "The read models' database is unavailable", body = Problem, content_type = PROBLEM_JSON),
    ),
)]
async fn history(
    State(read): State<ReadDb>,
    request: RequestId,
    Path(account): Path<String>,
) -> Result<Json<HistoryView>, Problem> {
    let id = account_id(&account)?.to_string();
    if read
        .balance(&id)
        .await
        .map_err(|e| read_problem(e, request))?
        .is_none()
    {
        return Err(Problem::not_found(format!("no account {id}")));
    }
    let rows = read
        .history(&id)
        .await
        .map_err(|e| read_problem(e, request))?;
    Ok(Json(HistoryView {
        account_id: id,
        entries: rows
            .into_iter()
            .map(|row| HistoryEntry {
                position: row.position,
                kind: row.kind,
                amount: row.amount,
                currency: row.currency,
            })
            .collect(),
    }))
}
