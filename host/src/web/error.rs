//! [`ApiError`]: every way a request can fail, each with its status code and a message that
//! says what to do, answered as `{"error": "..."}`.

use axum::Json;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::Serialize;

/// Every API error.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// Addressed to a name (or sent from a page) the daemon does not answer to.
    #[error("{what}: zscope answers to {names} (start it with --allow-host NAME for another name)")]
    Misaddressed {
        /// What was refused.
        what: String,
        /// The names it answers to.
        names: String,
    },
    /// No token, or the wrong one.
    #[error(
        "this needs the daemon's token: send `Authorization: Bearer TOKEN`, or open the page \
         once as /?token=TOKEN"
    )]
    Unauthorized,
    /// The body was not the JSON asked for (with the JSON parser's words).
    #[error("{0}: send JSON like {{\"threshold\": 3.5, \"window\": 128}}")]
    BadJson(String),
    /// The body was over the limit.
    #[error("{0}: a config change is a few hundred bytes")]
    TooLarge(String),
    /// The body was not declared as JSON.
    #[error("{0}: send it with Content-Type: application/json")]
    NotJson(String),
    /// The config asked for is not one the device can run.
    #[error("invalid config: {0}")]
    InvalidConfig(String),
    /// Not a source's name, or not one the device lists.
    #[error("invalid source: {0}")]
    InvalidSource(String),
    /// The config cannot be changed (a replay of the device's own verdicts).
    #[error("{0}")]
    ReadOnly(String),
    /// No device to send it to.
    #[error("no device connected: the config cannot be changed now")]
    NoDevice,
    /// The link went down before the command was sent.
    #[error("the device link is down: the config was not sent")]
    LinkDown,
    /// The device did not answer in time.
    #[error("the device did not acknowledge within {0:?}")]
    AckTimeout(std::time::Duration),
    /// The device answered no.
    #[error("the device refused {0}")]
    Refused(String),
    /// A query parameter out of range.
    #[error("{0}")]
    BadQuery(String),
    /// The daemon keeps no store.
    #[error(
        "no store: the daemon runs with --no-store, so only the points in memory can be read (GET /api/samples without points=)"
    )]
    NoStore,
    /// The store could not be read.
    #[error("the store cannot be read: {0}")]
    Store(String),
    /// No device yet (`--auto` or `--subscribe` with none found so far).
    #[error(
        "no device yet: boards plugged in (--auto) or published to the broker (--subscribe) appear in GET /api/devices"
    )]
    NoDeviceYet,
    /// No device by that name.
    #[error("no device '{name}': the devices are {names} (GET /api/devices)")]
    NoSuchDevice {
        /// The name asked for.
        name: String,
        /// The names there are.
        names: String,
    },
    /// Too many live pages.
    #[error(
        "{0} live pages are connected already: close one, or use the JSON API (/api/samples, \
         /api/status) to read"
    )]
    TooManyClients(usize),
    /// The request (its body, or the answer it waited for) took longer than this.
    #[error("the request was not complete within {0:?}: its body came too slowly")]
    RequestTimeout(std::time::Duration),
}

impl ApiError {
    /// The status code it is answered with.
    pub fn status(&self) -> StatusCode {
        match self {
            ApiError::Misaddressed { .. } => StatusCode::FORBIDDEN,
            ApiError::NoSuchDevice { .. } | ApiError::NoDeviceYet => StatusCode::NOT_FOUND,
            ApiError::BadQuery(_) => StatusCode::BAD_REQUEST,
            ApiError::NoStore => StatusCode::CONFLICT,
            ApiError::Store(_) => StatusCode::INTERNAL_SERVER_ERROR,
            ApiError::Unauthorized => StatusCode::UNAUTHORIZED,
            ApiError::BadJson(_) | ApiError::InvalidConfig(_) | ApiError::InvalidSource(_) => {
                StatusCode::BAD_REQUEST
            }
            ApiError::TooLarge(_) => StatusCode::PAYLOAD_TOO_LARGE,
            ApiError::NotJson(_) => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            ApiError::ReadOnly(_) | ApiError::Refused(_) => StatusCode::CONFLICT,
            ApiError::NoDevice | ApiError::LinkDown | ApiError::TooManyClients(_) => {
                StatusCode::SERVICE_UNAVAILABLE
            }
            ApiError::AckTimeout(_) => StatusCode::GATEWAY_TIMEOUT,
            ApiError::RequestTimeout(_) => StatusCode::REQUEST_TIMEOUT,
        }
    }
}

/// The body of every error answer.
#[derive(Serialize)]
struct ErrorBody {
    error: String,
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = ErrorBody {
            error: self.to_string(),
        };
        (self.status(), Json(body)).into_response()
    }
}
