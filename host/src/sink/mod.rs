//! Where judged points go, each sink a subscriber of its device's updates with its own status
//! (in [`crate::model::status`]):
//!
//! * [`csv`]: `samples.csv` and `anomalies.csv`, and the writer thread that owns them and the
//!   store (fed by ingest directly through [`crate::device::Sink`], waiting for the disk rather
//!   than losing a row);
//! * [`store`]: the SQLite store of every point, anomaly and config;
//! * [`notify`]: a webhook for each anomaly event (a [`crate::device::Sink`] too, never
//!   waiting);
//! * [`mqtt`]: publishing each device's typed updates and events to a broker.
//!
//! The pages' WebSockets are the other subscribers of the updates ([`crate::web::ws`]).
//! Below the sources and the web, above [`crate::device`].

pub mod command;
pub mod csv;
pub mod mqtt;
pub mod notify;
pub mod store;
