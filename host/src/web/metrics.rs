//! `GET /metrics`: every device's counters and health in Prometheus' text format (version
//! 0.0.4), so a Prometheus server (and Grafana on it) sees zscope where it sees everything
//! else. A snapshot of what `/api/status` shows, one labelled series a device (`device="…"`,
//! and `file="…"` or `kind="…"` where a device has several), written out when scraped.

use std::fmt::Write as _;

use axum::extract::State;
use axum::http::header;
use axum::response::IntoResponse;

use super::extract::App;
use crate::model::{PageLatency, StatusView};

/// The exposition format's content type.
pub const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// `GET /metrics`.
pub(super) async fn metrics(State(app): State<App>) -> impl IntoResponse {
    let devices: Vec<(String, StatusView)> = app
        .devices
        .list()
        .into_iter()
        .map(|d| (d.name, d.hub.status()))
        .collect();
    let uptime = devices.first().map_or(0, |(_, s)| s.uptime_s);
    let daemon = Daemon {
        uptime,
        max_devices: app.devices.max(),
        refused: app.devices.refused(),
        writer_threads: app.devices.writer_threads(),
    };
    (
        [(header::CONTENT_TYPE, CONTENT_TYPE)],
        render(&devices, &daemon),
    )
}

/// What the daemon says of itself beside its devices.
struct Daemon {
    /// Seconds up.
    uptime: u64,
    /// Devices it may hold.
    max_devices: usize,
    /// Devices refused for that cap.
    refused: u64,
    /// Threads writing logs and stores.
    writer_threads: usize,
}

/// Whether a series counts up for ever (a counter), goes up and down (a gauge), or is a
/// histogram's (`_bucket{le=…}`, `_sum`, `_count`).
#[derive(Clone, Copy)]
enum Kind {
    Counter,
    Gauge,
    Histogram,
}

/// One metric family: its name, help and kind, and its series (labels, value; a histogram's
/// series also name their suffix: `_bucket`, `_sum` or `_count`).
struct Family {
    name: &'static str,
    help: &'static str,
    kind: Kind,
    series: Vec<(String, f64)>,
    suffixes: Vec<&'static str>,
}

/// The families, in the order they are written.
#[derive(Default)]
struct Families(Vec<Family>);

impl Families {
    /// Add `value` to family `name` under `labels` (`[("device", "a")]`).
    fn add(
        &mut self,
        name: &'static str,
        help: &'static str,
        kind: Kind,
        labels: &[(&str, &str)],
        value: f64,
    ) {
        self.add_series(name, help, kind, "", labels, value);
    }

    /// A histogram of `latency` into family `name` under `labels`.
    fn histogram(
        &mut self,
        name: &'static str,
        help: &'static str,
        labels: &[(&str, &str)],
        latency: &PageLatency,
    ) {
        let k = Kind::Histogram;
        for (bound, n) in latency.cumulative() {
            let le = number(bound);
            let mut with_le = labels.to_vec();
            with_le.push(("le", &le));
            self.add_series(name, help, k, "_bucket", &with_le, n as f64);
        }
        self.add_series(name, help, k, "_sum", labels, latency.sum_s);
        self.add_series(name, help, k, "_count", labels, latency.count as f64);
    }

    fn add_series(
        &mut self,
        name: &'static str,
        help: &'static str,
        kind: Kind,
        suffix: &'static str,
        labels: &[(&str, &str)],
        value: f64,
    ) {
        let index = match self.0.iter().position(|f| f.name == name) {
            Some(i) => i,
            None => {
                self.0.push(Family {
                    name,
                    help,
                    kind,
                    series: Vec::new(),
                    suffixes: Vec::new(),
                });
                self.0.len() - 1
            }
        };
        let mut text = String::new();
        for (i, (k, v)) in labels.iter().enumerate() {
            let sep = if i == 0 { "" } else { "," };
            let _ = write!(text, "{sep}{k}=\"{}\"", escape(v));
        }
        self.0[index].series.push((text, value));
        self.0[index].suffixes.push(suffix);
    }
}

/// A label value as the format quotes it: backslash, double quote and newline escaped.
fn escape(v: &str) -> String {
    let mut out = String::with_capacity(v.len());
    for c in v.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            '\n' => out.push_str("\\n"),
            c => out.push(c),
        }
    }
    out
}

/// A sample value as the format writes it (`NaN`, `+Inf`, `-Inf` for the non-finite).
fn number(v: f64) -> String {
    if v.is_nan() {
        "NaN".into()
    } else if v.is_infinite() {
        if v > 0.0 { "+Inf" } else { "-Inf" }.into()
    } else {
        format!("{v}")
    }
}

fn flag(b: bool) -> f64 {
    if b { 1.0 } else { 0.0 }
}

/// The exposition of `devices` (name, status) and of the `daemon`.
fn render(devices: &[(String, StatusView)], daemon: &Daemon) -> String {
    use Kind::{Counter, Gauge};
    let mut f = Families::default();
    f.add(
        "zscope_uptime_seconds",
        "Seconds since the daemon started.",
        Gauge,
        &[],
        daemon.uptime as f64,
    );
    f.add(
        "zscope_devices",
        "Devices the daemon holds.",
        Gauge,
        &[],
        devices.len() as f64,
    );
    f.add(
        "zscope_max_devices",
        "Devices the daemon may hold (--max-devices).",
        Gauge,
        &[],
        daemon.max_devices as f64,
    );
    f.add(
        "zscope_devices_refused_total",
        "Devices refused because the daemon held as many as it may.",
        Counter,
        &[],
        daemon.refused as f64,
    );
    f.add(
        "zscope_log_writer_threads",
        "Threads writing the devices' logs and stores (one a device read here, one for all read by other daemons).",
        Gauge,
        &[],
        daemon.writer_threads as f64,
    );
    for (name, s) in devices {
        let d = [("device", name.as_str())];
        let c = &s.counters;
        for (metric, help, value) in [
            ("zscope_samples_total", "Points received.", c.samples),
            ("zscope_anomalies_total", "Points flagged.", c.anomalies),
            (
                "zscope_anomaly_events_total",
                "Anomaly events: runs of consecutive flagged points.",
                c.events,
            ),
            (
                "zscope_frames_lost_total",
                "Frames lost (gaps in sequence numbers).",
                c.frames_lost,
            ),
            (
                "zscope_device_restarts_total",
                "Device restarts seen (sequence numbers going back).",
                c.device_restarts,
            ),
            (
                "zscope_connections_total",
                "Times the device's line was (re)opened.",
                c.connections,
            ),
            (
                "zscope_time_jumps_total",
                "Device times more than a minute off the host's clock, anchored again.",
                c.time_jumps,
            ),
            (
                "zscope_refused_samples_total",
                "Samples ignored because the device's hello was refused.",
                c.refused_samples,
            ),
            (
                "zscope_messages_refused_total",
                "Broker messages refused for this device (too large).",
                c.messages_refused,
            ),
            (
                "zscope_bytes_read_total",
                "Bytes read from the device's line.",
                s.decode.bytes,
            ),
            (
                "zscope_frames_total",
                "Frames decoded into messages.",
                s.decode.frames,
            ),
        ] {
            f.add(metric, help, Counter, &d, value as f64);
        }
        for (kind, value) in [
            ("oversize", s.decode.oversize),
            ("cobs", s.decode.cobs),
            ("truncated", s.decode.truncated),
            ("crc", s.decode.crc),
            ("malformed", s.decode.malformed),
            ("version", s.decode.version),
        ] {
            f.add(
                "zscope_bad_frames_total",
                "Frames rejected, by kind.",
                Counter,
                &[("device", name), ("kind", kind)],
                value as f64,
            );
        }
        f.add(
            "zscope_connected",
            "Whether the device's line is open (1) or not (0).",
            Gauge,
            &d,
            flag(s.connected),
        );
        f.add(
            "zscope_identified",
            "Whether the device has said who it is (1) or not yet (0).",
            Gauge,
            &d,
            flag(s.device.is_some()),
        );
        f.add(
            "zscope_points_per_second",
            "Points received over the last second.",
            Gauge,
            &d,
            s.rate,
        );
        f.add(
            "zscope_config_version",
            "The version of the detector config in force.",
            Gauge,
            &d,
            f64::from(s.config_version),
        );
        if let Some(config) = &s.config {
            f.add(
                "zscope_threshold",
                "The detector's threshold in force.",
                Gauge,
                &d,
                f64::from(config.threshold),
            );
        }
        if let Some(q) = &s.quality {
            for (metric, help, value) in [
                (
                    "zscope_precision",
                    "Live precision against the source's injected anomalies.",
                    q.precision,
                ),
                (
                    "zscope_recall",
                    "Live recall against the source's injected anomalies.",
                    q.recall,
                ),
            ] {
                if let Some(v) = value {
                    f.add(metric, help, Gauge, &d, v);
                }
            }
        }
        for log in &s.logs {
            let l = [("device", name.as_str()), ("file", log.path.as_str())];
            f.add(
                "zscope_log_rows_written_total",
                "Rows written to the CSV log.",
                Counter,
                &l,
                log.written as f64,
            );
            f.add(
                "zscope_log_rows_pending",
                "Rows waiting for the CSV log (it refused them).",
                Gauge,
                &l,
                log.pending as f64,
            );
            f.add(
                "zscope_log_rows_dropped_total",
                "Rows given up after too many waited.",
                Counter,
                &l,
                log.dropped as f64,
            );
            f.add(
                "zscope_log_healthy",
                "Whether the CSV log takes its rows (1) or is failing (0).",
                Gauge,
                &l,
                flag(log.error.is_none()),
            );
        }
        if let Some(store) = &s.store {
            f.add(
                "zscope_store_points_total",
                "Points stored in SQLite.",
                Counter,
                &d,
                store.stored as f64,
            );
            f.add(
                "zscope_store_points_failed_total",
                "Points that could not be stored.",
                Counter,
                &d,
                store.not_stored as f64,
            );
            f.add(
                "zscope_store_healthy",
                "Whether the store takes its points (1) or is failing (0).",
                Gauge,
                &d,
                flag(store.error.is_none()),
            );
        }
        if let Some(m) = &s.mqtt {
            f.add(
                "zscope_mqtt_connected",
                "Whether the MQTT broker has accepted the connection (1) or not (0).",
                Gauge,
                &d,
                flag(m.connected),
            );
            f.add(
                "zscope_mqtt_published_total",
                "Messages handed to the MQTT client.",
                Counter,
                &d,
                m.published as f64,
            );
            f.add(
                "zscope_mqtt_dropped_total",
                "MQTT messages dropped (the client's queue was full).",
                Counter,
                &d,
                m.dropped as f64,
            );
        }
        f.histogram(
            "zscope_page_latency_seconds",
            "From a point's arrival at the host to a page's socket taking it (each live message a page is sent, timed by its oldest point).",
            &d,
            &s.page_latency,
        );
        if let Some(n) = &s.notify {
            for (metric, help, value) in [
                (
                    "zscope_notifications_sent_total",
                    "Anomaly events notified.",
                    n.sent,
                ),
                (
                    "zscope_notifications_failed_total",
                    "Anomaly events some URL refused after every try.",
                    n.failed,
                ),
            ] {
                f.add(metric, help, Counter, &d, value as f64);
            }
        }
    }
    let mut out = String::new();
    for family in &f.0 {
        let kind = match family.kind {
            Kind::Counter => "counter",
            Kind::Gauge => "gauge",
            Kind::Histogram => "histogram",
        };
        let _ = writeln!(out, "# HELP {} {}", family.name, family.help);
        let _ = writeln!(out, "# TYPE {} {kind}", family.name);
        for ((labels, value), suffix) in family.series.iter().zip(&family.suffixes) {
            let value = number(*value);
            let name = family.name;
            let _ = match labels.is_empty() {
                true => writeln!(out, "{name}{suffix} {value}"),
                false => writeln!(out, "{name}{suffix}{{{labels}}} {value}"),
            };
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn families_are_written_once_with_their_series_and_escaped_labels() {
        let mut f = Families::default();
        f.add("a_total", "A.", Kind::Counter, &[("device", "x")], 1.0);
        f.add("b", "B.", Kind::Gauge, &[("file", "c:\\\"d\"\n")], f64::NAN);
        f.add("a_total", "A.", Kind::Counter, &[("device", "y")], 2.5);
        assert_eq!(f.0.len(), 2);
        assert_eq!(
            f.0[0].series,
            [
                ("device=\"x\"".to_string(), 1.0),
                ("device=\"y\"".to_string(), 2.5)
            ]
        );
        assert_eq!(f.0[1].series[0].0, "file=\"c:\\\\\\\"d\\\"\\n\"");
        assert_eq!(number(f64::INFINITY), "+Inf");
        assert_eq!(number(f64::NEG_INFINITY), "-Inf");
        assert_eq!(number(3.0), "3");
        assert_eq!(number(0.25), "0.25");
    }

    #[test]
    fn a_daemon_without_devices_still_says_it_is_up() {
        let daemon = Daemon {
            uptime: 7,
            max_devices: 256,
            refused: 3,
            writer_threads: 0,
        };
        let text = render(&[], &daemon);
        assert!(
            text.starts_with(
                "# HELP zscope_uptime_seconds Seconds since the daemon started.\n\
                 # TYPE zscope_uptime_seconds gauge\nzscope_uptime_seconds 7\n"
            ),
            "{text}"
        );
        for line in [
            "zscope_devices 0",
            "zscope_max_devices 256",
            "zscope_devices_refused_total 3",
            "zscope_log_writer_threads 0",
        ] {
            assert!(text.lines().any(|l| l == line), "{line}:\n{text}");
        }
    }
}
