//! What a handler gets besides the request: `App`, the router's state (the devices, the
//! token, the host names answered, the WebSocket count), and `Dev`, the device a request is
//! for.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::AtomicUsize;

use axum::extract::{FromRequestParts, Path};
use axum::http::request::Parts;

use super::error::ApiError;
use crate::device::{Device, Registry};

/// The router's state.
#[derive(Clone)]
pub(super) struct App {
    pub(super) devices: Arc<Registry>,
    pub(super) token: Option<Arc<str>>,
    /// Host names requests may be addressed to; `None`: any.
    pub(super) hosts: Option<Arc<[String]>>,
    /// Live WebSocket clients.
    pub(super) ws_clients: Arc<AtomicUsize>,
}

/// The device a request is for: `/api/devices/{name}/…`, or `?device=name`, or else the
/// first; an unknown name is a 404 that lists the names.
pub(super) struct Dev(pub(super) Device);

impl FromRequestParts<App> for Dev {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, app: &App) -> Result<Self, ApiError> {
        let from_path = Path::<HashMap<String, String>>::from_request_parts(parts, app)
            .await
            .ok()
            .and_then(|Path(p)| p.get("device").cloned());
        let from_query = || {
            parts.uri.query().and_then(|q| {
                form_urlencoded::parse(q.as_bytes())
                    .find(|(k, _)| k == "device")
                    .map(|(_, v)| v.into_owned())
            })
        };
        let name = from_path.or_else(from_query);
        match app.devices.find(name.as_deref()) {
            Some(d) => Ok(Dev(d)),
            None if app.devices.list().is_empty() => Err(ApiError::NoDeviceYet),
            None => Err(ApiError::NoSuchDevice {
                name: name.unwrap_or_default(),
                names: app
                    .devices
                    .list()
                    .iter()
                    .map(|d| d.name.as_str())
                    .collect::<Vec<_>>()
                    .join(", "),
            }),
        }
    }
}
