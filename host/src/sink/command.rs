//! Commands a central daemon sends a gateway's device through the broker
//! (`zscope/<device>/command`), and how the gateway knows they are from a daemon it trusts.
//!
//! Without a key (`--mqtt-command-key`), a command is the device's `HostMsg` as JSON, and
//! whoever may publish to the topic may change the device's config: the broker's access list
//! is what guards it (the README has one for Mosquitto). With a key, both daemons hold the
//! same secret: the central daemon signs each command, `{"command": "<HostMsg JSON>",
//! "at_ms": <its clock>, "mac": "<hex HMAC-SHA256>"}` over the device's name, the time and the
//! command's text, and the gateway takes only commands whose signature holds, that are at most
//! [`MAX_AGE_MS`] from its own clock, and that are newer than the last it took for that device
//! (a recorded command sent again is refused). Everything else is refused and counted.

use std::collections::HashMap;
use std::path::Path;
use std::sync::Arc;

use ring::hmac;
use serde::{Deserialize, Serialize};
use zscope_core::wire::HostMsg;

/// How far a signed command's time may be from the gateway's clock.
pub const MAX_AGE_MS: i64 = 60_000;

/// The shortest key taken (bytes of the key file, without surrounding white space).
pub const MIN_KEY: usize = 16;

/// The secret two daemons share to sign and check commands.
#[derive(Clone)]
pub struct CommandKey {
    bytes: Arc<[u8]>,
    key: hmac::Key,
}

impl std::fmt::Debug for CommandKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("CommandKey(…)")
    }
}

impl PartialEq for CommandKey {
    fn eq(&self, other: &Self) -> bool {
        self.bytes == other.bytes
    }
}

/// A command as it crosses the broker once signed.
#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct Signed {
    /// The command, as the JSON of a `HostMsg`.
    command: String,
    /// The sender's clock, ms since the Unix epoch.
    at_ms: i64,
    /// HMAC-SHA256 of the device's name, `at_ms` and `command`, in hex.
    mac: String,
}

/// Why a command was not taken.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    /// Not a command (nor a signed one).
    #[error("not a command: {0}")]
    Malformed(String),
    /// This daemon wants signed commands and the command is not.
    #[error("not signed (this daemon takes only signed commands: --mqtt-command-key)")]
    Unsigned,
    /// The signature does not hold: another key, or the command was changed.
    #[error("its signature does not hold (another key, or a changed command)")]
    BadSignature,
    /// Signed too long ago (or ahead).
    #[error("signed {0} ms from this daemon's clock (at most {MAX_AGE_MS})")]
    Stale(i64),
    /// Not newer than the last one taken for the device: sent again.
    #[error("not newer than the last command taken for the device (sent again?)")]
    Replayed,
}

impl CommandKey {
    /// The key in `bytes` (at least [`MIN_KEY`] of them).
    pub fn new(bytes: &[u8]) -> Result<CommandKey, String> {
        if bytes.len() < MIN_KEY {
            return Err(format!(
                "the command key is {} bytes; give at least {MIN_KEY} (e.g. `head -c 32 /dev/urandom | base64 > key`)",
                bytes.len()
            ));
        }
        Ok(CommandKey {
            bytes: Arc::from(bytes),
            key: hmac::Key::new(hmac::HMAC_SHA256, bytes),
        })
    }

    /// The key in the file at `path` (its text, without surrounding white space).
    pub fn read(path: &Path) -> Result<CommandKey, String> {
        let text = std::fs::read(path)
            .map_err(|e| format!("cannot read the command key {}: {e}", path.display()))?;
        let trimmed = text.trim_ascii();
        CommandKey::new(trimmed).map_err(|e| format!("{}: {e}", path.display()))
    }

    fn message(device: &str, at_ms: i64, command: &str) -> Vec<u8> {
        format!("{device}\n{at_ms}\n{command}").into_bytes()
    }

    /// `command` for `device`, signed at `at_ms`: the payload to publish.
    pub fn sign(&self, device: &str, command: &HostMsg, at_ms: i64) -> Vec<u8> {
        // Our own type always serialises.
        let command = serde_json::to_string(command).unwrap_or_default();
        let tag = hmac::sign(&self.key, &Self::message(device, at_ms, &command));
        let mac = tag.as_ref().iter().map(|b| format!("{b:02x}")).collect();
        serde_json::to_vec(&Signed {
            command,
            at_ms,
            mac,
        })
        .unwrap_or_default()
    }
}

/// Which commands a gateway takes: with a key, only signed ones, each newer than the last
/// taken for its device.
#[derive(Debug, Default)]
pub struct Gate {
    key: Option<CommandKey>,
    /// The time of the last command taken, per device of this daemon.
    last: HashMap<String, i64>,
}

impl Gate {
    /// A gate that checks signatures with `key` (`None`: takes every command).
    pub fn new(key: Option<CommandKey>) -> Gate {
        Gate {
            key,
            last: HashMap::new(),
        }
    }

    /// The command in `payload` for `device` (one of this daemon's), received at `now_ms`.
    pub fn take(&mut self, device: &str, payload: &[u8], now_ms: i64) -> Result<HostMsg, Refusal> {
        let Some(key) = &self.key else {
            return match serde_json::from_slice::<HostMsg>(payload) {
                Ok(cmd) => Ok(cmd),
                // A signed command to a daemon without a key: what it says is taken.
                Err(e) => serde_json::from_slice::<Signed>(payload)
                    .ok()
                    .and_then(|s| serde_json::from_str(&s.command).ok())
                    .ok_or_else(|| Refusal::Malformed(e.to_string())),
            };
        };
        let signed = match serde_json::from_slice::<Signed>(payload) {
            Ok(s) => s,
            Err(_) if serde_json::from_slice::<HostMsg>(payload).is_ok() => {
                return Err(Refusal::Unsigned);
            }
            Err(e) => return Err(Refusal::Malformed(e.to_string())),
        };
        let mac = hex(&signed.mac).ok_or(Refusal::BadSignature)?;
        let message = CommandKey::message(device, signed.at_ms, &signed.command);
        hmac::verify(&key.key, &message, &mac).map_err(|_| Refusal::BadSignature)?;
        let age = now_ms.saturating_sub(signed.at_ms);
        if age.abs() > MAX_AGE_MS {
            return Err(Refusal::Stale(age));
        }
        if self.last.get(device).is_some_and(|&t| signed.at_ms <= t) {
            return Err(Refusal::Replayed);
        }
        let cmd = serde_json::from_str::<HostMsg>(&signed.command)
            .map_err(|e| Refusal::Malformed(e.to_string()))?;
        self.last.insert(device.to_string(), signed.at_ms);
        Ok(cmd)
    }
}

/// Bytes from hex (`None` if it is not hex of whole bytes).
fn hex(s: &str) -> Option<Vec<u8>> {
    if !s.len().is_multiple_of(2) || !s.is_ascii() {
        return None;
    }
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).ok())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(text: &str) -> CommandKey {
        CommandKey::new(text.as_bytes()).unwrap()
    }

    #[test]
    fn a_signed_command_is_taken_once_and_only_with_its_key() {
        let cmd = HostMsg::Ping { id: 7 };
        let k = key("a shared secret, 32 bytes or so");
        let mut gate = Gate::new(Some(k.clone()));
        let now = 1_800_000_000_000;
        let signed = k.sign("board-1", &cmd, now - 5);
        assert_eq!(gate.take("board-1", &signed, now), Ok(cmd));
        // Sent again: refused; the same for another device: its signature names the device.
        assert_eq!(gate.take("board-1", &signed, now), Err(Refusal::Replayed));
        assert_eq!(
            gate.take("board-2", &signed, now),
            Err(Refusal::BadSignature)
        );
        // A newer one is taken.
        let next = k.sign("board-1", &cmd, now);
        assert_eq!(gate.take("board-1", &next, now), Ok(cmd));
        // Another key, an old one, a changed one, a plain one: refused.
        let other = key("another secret of some length");
        let forged = other.sign("board-1", &cmd, now + 1);
        assert_eq!(
            gate.take("board-1", &forged, now),
            Err(Refusal::BadSignature)
        );
        let old = k.sign("board-1", &cmd, now - MAX_AGE_MS - 1);
        assert!(matches!(
            gate.take("board-1", &old, now),
            Err(Refusal::Stale(_))
        ));
        let changed = String::from_utf8(k.sign("board-1", &cmd, now + 2))
            .unwrap()
            .replace("\\\"id\\\":7", "\\\"id\\\":8");
        assert!(changed.contains("\\\"id\\\":8"), "{changed}");
        assert_eq!(
            gate.take("board-1", changed.as_bytes(), now),
            Err(Refusal::BadSignature)
        );
        let plain = serde_json::to_vec(&cmd).unwrap();
        assert_eq!(gate.take("board-1", &plain, now), Err(Refusal::Unsigned));
        assert!(matches!(
            gate.take("board-1", b"{\"mac\": 1}", now),
            Err(Refusal::Malformed(_))
        ));
    }

    #[test]
    fn without_a_key_every_command_is_taken_and_short_keys_are_refused() {
        let cmd = HostMsg::Reset { id: 3 };
        let mut gate = Gate::new(None);
        let plain = serde_json::to_vec(&cmd).unwrap();
        assert_eq!(gate.take("d", &plain, 0), Ok(cmd));
        let signed = key("0123456789abcdef").sign("d", &cmd, 0);
        assert_eq!(gate.take("d", &signed, 0), Ok(cmd));
        assert!(gate.take("d", b"nonsense", 0).is_err());
        let e = CommandKey::new(b"short").unwrap_err();
        assert!(e.contains("at least 16"), "{e}");
        assert_eq!(hex("0aff"), Some(vec![10, 255]));
        assert_eq!(hex("0af"), None);
        assert_eq!(hex("zz"), None);
    }
}
