//! What the host knows, as plain data and pure functions: no threads, no I/O, no clock.
//!
//! * [`point`]: [`Point`], the one shape of a judged point, and [`Points`], the same as columns
//!   (the JSON of the WebSocket, the API and MQTT); the CSV row and the store's columns are
//!   made from a `Point` too.
//! * [`state`]: [`State`], everything known of one device, and the views read from it.
//! * [`ingest`]: how a frame from the device changes the state, and what it hands the sinks
//!   ([`Output`]).
//! * [`record`]: what the sinks that write to disk receive ([`Entry`], [`ConfigRecord`]).
//! * [`status`]: what each sink reports of itself in the status.
//! * [`detector`]: the host's detector, and the rules of choosing one (shared by the command
//!   line and the API).
//!
//! The lowest layer of the host: it imports nothing of the crate but itself.

pub mod detector;
pub mod ingest;
pub mod point;
pub mod record;
pub mod state;
pub mod status;

pub use detector::Method;
pub use ingest::Output;
pub use point::{Point, Points};
pub use record::{ConfigRecord, Entry};
pub use state::{ConfigView, State, StatusView};
pub use status::{LogStatus, MqttStatus, NotifyStatus, PageLatency, StoreStatus};
