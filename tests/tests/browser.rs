//! The dashboard in a real headless Chromium (Debian's `chromium` + `chromium-driver`), against
//! the daemon and its emulated device: points arrive, an anomaly alert appears, the threshold
//! is changed from the page and the device's acknowledgement shows; each scenario starts from
//! the same fixture ([`Dashboard`]), at most two browsers at once. Saves a screenshot
//! (`docs/dashboard.png` when `ZSCOPE_SCREENSHOT=docs`, else `target/dashboard.png`).

use std::time::{Duration, Instant};

use fantoccini::Locator;
use fantoccini::actions::{InputSource, MouseActions, PointerAction};
use serde_json::json;
use zscope_host::source::SourceSetting;
use zscope_tests::{BROWSER_TOOLS, ChromeDriver, Daemon, have_tools, workspace_root};

/// Type `value` into each input `id`, then press Apply.
async fn fill_and_apply(c: &fantoccini::Client, fields: &[(&str, &str)]) {
    for (id, value) in fields {
        let input = c
            .find(Locator::Css(id))
            .await
            .expect("the input is on the page");
        input.clear().await.expect("the input clears");
        input
            .send_keys(value)
            .await
            .expect("the input takes the value");
    }
    c.find(Locator::Css("#apply"))
        .await
        .expect("the Apply button is on the page")
        .click()
        .await
        .expect("Apply clicks");
}

/// A Chromium session through `driver`.
async fn session(driver: &ChromeDriver) -> fantoccini::Client {
    driver.session().await
}

/// Run `script` in the page; the string it returns ("" for anything else).
async fn js_string(c: &fantoccini::Client, script: &str) -> String {
    c.execute(script, vec![])
        .await
        .expect("the script runs")
        .as_str()
        .unwrap_or("")
        .to_string()
}

async fn text(c: &fantoccini::Client, css: &str) -> String {
    match c.find(Locator::Css(css)).await {
        Ok(e) => e.text().await.unwrap_or_default(),
        Err(_) => String::new(),
    }
}

/// Move the mouse pointer to the centre of `element` (a real pointer move: the page sees
/// it enter and leave elements).
async fn move_pointer_to(c: &fantoccini::Client, element: fantoccini::elements::Element) {
    let mouse = MouseActions::new("mouse".to_string()).then(PointerAction::MoveToElement {
        element,
        duration: None,
        x: 0.0,
        y: 0.0,
    });
    c.perform_actions(mouse).await.expect("the pointer moves");
}

/// Wait until `script` returns "yes"; anything else it returns is what it saw, named in
/// the failure when time runs out.
async fn wait_for_page(c: &fantoccini::Client, what: &str, timeout: Duration, script: &str) {
    let deadline = Instant::now() + timeout;
    loop {
        let seen = js_string(c, script).await;
        if seen == "yes" {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "timed out after {timeout:?} waiting for {what}; the page had: {seen}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

async fn wait_until<F, Fut>(what: &str, timeout: Duration, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = Instant::now() + timeout;
    while !check().await {
        assert!(
            Instant::now() < deadline,
            "timed out after {timeout:?} waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Browsers at once in this file: each is a Chromium on two cores, beside the daemon it drives.
/// JavaScript defining `one(point)`: the columns of a single point (`{t: [t], value: [v],
/// ...}`), the shape the page takes points in (`push(columns, i)`).
macro_rules! one {
    () => {
        "const one = (p) => Object.fromEntries(Object.entries(p).map(([k, v]) => [k, [v]])); "
    };
}

static BROWSERS: tokio::sync::Semaphore = tokio::sync::Semaphore::const_new(2);

/// What each dashboard scenario starts from: the daemon with one emulated device (200
/// samples/s, seed 42), chromedriver, and a Chromium session on the page with points on the
/// chart.
struct Dashboard {
    daemon: Daemon,
    c: fantoccini::Client,
    _driver: ChromeDriver,
    _slot: tokio::sync::SemaphorePermit<'static>,
}

impl Dashboard {
    /// The page open, or `None` (the test skips) without the browser.
    async fn open(test: &str) -> Option<Dashboard> {
        if !have_tools(test, BROWSER_TOOLS) {
            return None;
        }
        let slot = BROWSERS.acquire().await.expect("the semaphore stays open");
        let daemon = Daemon::start(
            SourceSetting::Emulated {
                rate_hz: 200,
                seed: 42,
            },
            |_| {},
        );
        let driver = ChromeDriver::start();
        let c = session(&driver).await;
        c.goto(&daemon.url("/")).await.expect("the page loads");
        wait_until("points on the chart", Duration::from_secs(20), || async {
            text(&c, "#points-count").await.parse::<u32>().unwrap_or(0) > 300
        })
        .await;
        Some(Dashboard {
            daemon,
            c,
            _driver: driver,
            _slot: slot,
        })
    }

    /// Wait for an alert from the device on the page.
    async fn an_alert(&self) {
        wait_until("an anomaly alert", Duration::from_secs(30), || async {
            self.c.find(Locator::Css("#alerts li.alert")).await.is_ok()
        })
        .await;
    }

    async fn close(self) {
        self.c.close().await.expect("the session closes");
    }
}

/// Points arrive, an alert appears (and counts in the title), and config changes made on the
/// page (threshold, another detector, warm-up and the policy) show once the device
/// acknowledges them.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dashboard_shows_points_alerts_and_acknowledged_config() {
    let Some(d) = Dashboard::open("dashboard_shows_points_alerts_and_acknowledged_config").await
    else {
        return;
    };
    assert_eq!(text(&d.c, "#connection").await, "connected");
    // Nobody zoomed: the chart follows the stream.
    assert_eq!(text(&d.c, "#chart-note").await, "");
    assert!(text(&d.c, "#device").await.contains("emulated"));

    d.an_alert().await;
    let count: u32 = text(&d.c, "#alert-count").await.parse().unwrap_or(0);
    assert!(count >= 1);
    let title = d.c.title().await.unwrap_or_default();
    assert!(
        title.starts_with('(') && title.ends_with("zscope"),
        "title {title:?}"
    );
    let first_alert = text(&d.c, "#alerts li.alert").await;
    assert!(
        first_alert.contains("value") && first_alert.contains('z'),
        "{first_alert}"
    );

    // Change the threshold from the page; it shows once the device acknowledges.
    assert_eq!(text(&d.c, "#config-version").await, "v1");
    fill_and_apply(&d.c, &[("#threshold", "4")]).await;
    wait_until(
        "the device's acknowledgement",
        Duration::from_secs(10),
        || async {
            text(&d.c, "#config-status").await.contains("acknowledged")
                && text(&d.c, "#config-version").await == "v2"
        },
    )
    .await;
    let api = d.daemon.get("/api/config");
    assert_eq!(api["version"], json!(2));
    assert_eq!(api["config"]["threshold"], json!(4.0));

    // Choose another detector and its settings from the page: the device acknowledges it.
    d.c.find(Locator::Css("#detector"))
        .await
        .unwrap()
        .select_by_value("seasonal")
        .await
        .unwrap();
    fill_and_apply(&d.c, &[("#period", "100"), ("#alpha", "0.2")]).await;
    wait_until(
        "the device's acknowledgement of the seasonal detector",
        Duration::from_secs(10),
        || async {
            text(&d.c, "#config-version").await == "v3"
                && text(&d.c, "#config-now")
                    .await
                    .contains("seasonal, window 64, threshold 4")
        },
    )
    .await;
    // Warm-up and the policy for flagged values, from the page too.
    fill_and_apply(&d.c, &[("#warmup", "16"), ("#max-run", "5")]).await;
    wait_until(
        "the device's acknowledgement of warm-up and max run",
        Duration::from_secs(10),
        || async {
            text(&d.c, "#config-version").await == "v4"
                && text(&d.c, "#config-now")
                    .await
                    .contains("warm-up 16, flagged values kept out (at most 5 in a row)")
        },
    )
    .await;
    let api = d.daemon.get("/api/config");
    assert_eq!(api["config"]["warmup"], json!(16), "{api}");
    assert_eq!(
        api["config"]["policy"],
        json!({ "Exclude": { "max_run": 5 } }),
        "{api}"
    );
    let seasonal = &api["config"]["baseline"]["Seasonal"];
    assert_eq!(seasonal["period"], json!(100), "{api}");
    assert!(
        (seasonal["alpha"].as_f64().unwrap_or(0.0) - 0.2).abs() < 1e-6,
        "{api}"
    );

    d.close().await;
}

/// Alerts are one row per event, wait above the list while the pointer is on it, go with a
/// click, and stay dismissed across a reload.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn alerts_are_events_that_wait_under_the_pointer_and_stay_dismissed() {
    let Some(d) =
        Dashboard::open("alerts_are_events_that_wait_under_the_pointer_and_stay_dismissed").await
    else {
        return;
    };
    d.an_alert().await;
    // One alert per event: three consecutive flagged samples are one row (counting them),
    // a fourth apart is another; the same samples again (a reconnect) add nothing.
    // push(columns, i): point i of columns as the page takes them (`one` makes the columns of
    // a single point, see ONE); flag 1 = anomaly. The
    // repeats carry the same times and sequence numbers, as a reconnect's snapshot would.
    // Counted before and after in the same script, so no device alert can land between.
    let script = concat!(
        one!(),
        "const before = alerts.length; const t = Date.now(); \
        for (const [dt, seq] of [[0, 900001], [1, 900002], [2, 900003], [5, 900006], [0, 900001], [1, 900002]]) \
          push(one({ t: t + dt, value: 9, mean: 0, std: 1, z: 9, threshold: 3, flags: 1, seq, lost_before: 0 }), 0); \
        return [before, alerts.length];"
    );
    let counts = d.c.execute(script, vec![]).await.unwrap();
    assert_eq!(
        counts[1].as_u64().unwrap_or(0),
        counts[0].as_u64().unwrap_or(u64::MAX) + 2,
        "one alert per event: {counts}"
    );
    // Found by their first sample (a device alert may have come since).
    let row = |seq: u32| {
        format!(
            "const li = [...document.querySelectorAll('#alerts li.alert')] \
               .find((li) => li.dataset.key.startsWith('{seq}@')); \
             return li ? li.textContent : '';"
        )
    };
    let single = js_string(&d.c, &row(900006)).await;
    assert!(single.contains("z 9.00"), "{single}");
    let run = js_string(&d.c, &row(900001)).await;
    assert!(run.contains("3 samples"), "{run}");

    // While the pointer is over the list, new alerts wait above it (the count still rises), so
    // a row does not move under a click even with the device flagging several a second.
    d.c.execute(
        "document.getElementById('alerts').scrollIntoView({ block: 'center' });",
        vec![],
    )
    .await
    .unwrap();
    let list = d.c.find(Locator::Css("#alerts")).await.unwrap();
    move_pointer_to(&d.c, list).await;
    let first = d.c.find(Locator::Css("#alerts li.alert")).await.unwrap();
    let key = first.attr("data-key").await.unwrap().unwrap_or_default();
    assert!(!key.is_empty(), "an alert row has a key");
    let waiting = d.c
        .execute(
            concat!(one!(), "const n = alerts.length; \
             push(one({ t: Date.now(), value: 9, mean: 0, std: 1, z: 9, threshold: 3, flags: 1, seq: 900020, lost_before: 0 }), 0); \
             return [n, alerts.length, document.querySelector('#alerts li.alert').dataset.key, \
                     document.getElementById('alerts-waiting').textContent];"),
            vec![],
        )
        .await
        .unwrap();
    assert_eq!(
        waiting[1].as_u64(),
        waiting[0].as_u64().map(|n| n + 1),
        "{waiting}"
    );
    assert_eq!(waiting[2].as_str(), Some(key.as_str()), "{waiting}");
    assert!(
        waiting[3]
            .as_str()
            .unwrap_or("")
            .contains("new: shown when the pointer leaves"),
        "{waiting}"
    );
    // Dismissing an alert (a real click) takes its row away and the count follows; checked by
    // the row's key, with the count compared with the page's own list in one script.
    first
        .find(Locator::Css("button"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    let dismissed = format!(
        "const key = '{key}'; \
         const gone = !alerts.some((a) => a.key === key) \
           && ![...document.querySelectorAll('#alerts li.alert')].some((li) => li.dataset.key === key); \
         const counted = Number(document.getElementById('alert-count').textContent) === alerts.length; \
         return gone && counted ? 'yes' : `row there: ${{!gone}}, count ${{document.getElementById('alert-count').textContent}} of ${{alerts.length}}`;"
    );
    wait_for_page(&d.c, "the dismissal", Duration::from_secs(5), &dismissed).await;
    // The pointer leaves: what waited is shown.
    let chart = d.c.find(Locator::Css("#chart")).await.unwrap();
    move_pointer_to(&d.c, chart).await;
    wait_for_page(
        &d.c,
        "the waiting alert shown",
        Duration::from_secs(5),
        "const keys = [...document.querySelectorAll('#alerts li.alert')].map((li) => li.dataset.key); \
         const note = document.getElementById('alerts-waiting').textContent; \
         return keys.some((k) => k.startsWith('900020@')) && note === '' ? 'yes' \
           : `rows ${keys.slice(0, 5).join(' ')}; note '${note}'`;",
    )
    .await;

    // A dismissal is remembered across a reload: dismiss the newest alert from the device
    // (the reload's snapshot holds its samples), reload, and it does not come back.
    let real: String = js_string(
        &d.c,
        "const row = [...document.querySelectorAll('#alerts li.alert')] \
               .find((li) => Number(li.dataset.key.split('@')[0]) < 900000); \
             if (!row) return ''; row.querySelector('button').click(); return row.dataset.key;",
    )
    .await;
    assert!(!real.is_empty(), "an alert from the device to dismiss");
    d.c.refresh().await.unwrap();
    wait_until(
        "the page again, with its points",
        Duration::from_secs(10),
        || async {
            text(&d.c, "#points-count")
                .await
                .parse::<u32>()
                .unwrap_or(0)
                > 0
        },
    )
    .await;
    let keys: String = js_string(&d.c, "return [...document.querySelectorAll('#alerts li.alert')].map((li) => li.dataset.key).join(' ')").await;
    assert!(
        !keys.split(' ').any(|k| k == real),
        "{real} came back: {keys}"
    );

    d.close().await;
}

/// The chart draws (and a screenshot of it is kept), holds at most 2 x 10 000 points while
/// paused and trims to 10 000 when resumed; alerts waiting under the pointer are bounded by
/// the list's 100 rows.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_chart_and_the_alerts_stay_bounded_paused_or_held() {
    let Some(d) = Dashboard::open("the_chart_and_the_alerts_stay_bounded_paused_or_held").await
    else {
        return;
    };
    // An alert first, so the picture shows one.
    d.an_alert().await;
    // Let the chart fill a little more (100 points more than now), then keep a picture of
    // what a user sees (before the synthetic points below). The chart must have drawn.
    let shown = text(&d.c, "#points-count")
        .await
        .parse::<u32>()
        .unwrap_or(0);
    wait_until(
        "100 more points on the chart",
        Duration::from_secs(20),
        || async {
            text(&d.c, "#points-count")
                .await
                .parse::<u32>()
                .unwrap_or(0)
                >= shown + 100
        },
    )
    .await;
    let png = d.c.screenshot().await.expect("a screenshot");
    let dir = match std::env::var("ZSCOPE_SCREENSHOT").as_deref() {
        Ok("docs") => workspace_root().join("docs"),
        _ => workspace_root().join("target"),
    };
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("dashboard.png"), &png).unwrap();
    assert!(png.len() > 10_000, "screenshot too small to be the page");
    let drawn: String = js_string(
        &d.c,
        "return String(cols[0].filter((x) => Number.isFinite(x)).length === cols[0].length \
           && cols[1].some((v) => Number.isFinite(v)))",
    )
    .await;
    assert_eq!(drawn, "true", "every chart time finite, values drawn");

    // Paused, the page holds at most 2 x 10 000 new points, however many arrive; resuming
    // draws them and the chart keeps its 10 000.
    d.c.find(Locator::Css("#pause"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    let held: serde_json::Value =
        d.c.execute(
            concat!(
                one!(),
                "const drawn = cols[0].length; const t = Date.now(); \
             for (let i = 0; i < 25000; i++) push(one({ t: t + i, value: 0, mean: 0, std: 1, z: 0, \
               threshold: 3, flags: 0, seq: 2000000 + i, lost_before: 0 }), 0); \
             return [drawn, cols[0].length, size(held), heldDropped];"
            ),
            vec![],
        )
        .await
        .unwrap();
    let n = |i: usize| held[i].as_u64().unwrap_or(u64::MAX);
    assert_eq!(n(0), n(1), "nothing drawn while paused: {held}");
    // The device's own points keep arriving meanwhile: at least the 25 000 are held or dropped.
    assert!(
        n(2) <= 20_000 && n(3) > 0 && n(2) + n(3) >= 25_000,
        "{held}"
    );
    d.c.find(Locator::Css("#pause"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    wait_until(
        "the chart trimmed to 10 000",
        Duration::from_secs(5),
        || async {
            text(&d.c, "#points-count")
                .await
                .parse::<u32>()
                .unwrap_or(0)
                == 10_000
        },
    )
    .await;

    // However long the pointer rests on the list, what waits is bounded by the list's 100 rows.
    d.c.execute(
        "document.getElementById('alerts').scrollIntoView({ block: 'center' });",
        vec![],
    )
    .await
    .unwrap();
    move_pointer_to(&d.c, d.c.find(Locator::Css("#alerts")).await.unwrap()).await;
    let waiting =
        d.c.execute(
            concat!(
                one!(),
                "const t = Date.now(); \
             for (let i = 0; i < 150; i++) push(one({ t: t + i, value: 9, mean: 0, std: 1, z: 9, \
               threshold: 3, flags: 1, seq: 3000000 + 2 * i, lost_before: 0 }), 0); \
             return [waitingRows.length, document.getElementById('alerts-waiting').textContent];"
            ),
            vec![],
        )
        .await
        .unwrap();
    assert_eq!(waiting[0].as_u64(), Some(100), "{waiting}");
    assert!(
        waiting[1].as_str().unwrap_or("").starts_with("100 new"),
        "{waiting}"
    );
    move_pointer_to(&d.c, d.c.find(Locator::Css("#chart")).await.unwrap()).await;
    // Shown newest first: the 100 that waited, less any the device flagged meanwhile (those are
    // newer, so they lead, and the oldest of ours made room for them).
    wait_for_page(
        &d.c,
        "the waiting rows shown",
        Duration::from_secs(5),
        "const seqs = [...document.querySelectorAll('#alerts li.alert')] \
           .map((li) => Number(li.dataset.key.split('@')[0])); \
         const first = seqs.findIndex((s) => s >= 3000000); \
         const ok = waitingRows.length === 0 && seqs.length === 100 && first >= 0 \
           && seqs.slice(0, first).every((s) => s < 900000) \
           && seqs.slice(first).every((s, i) => s === 3000298 - 2 * i); \
         return ok ? 'yes' : `waiting ${waitingRows.length}, rows ${seqs.length}: ${seqs.slice(0, 5).join(' ')}`;",
    )
    .await;

    d.close().await;
}

/// A notification's link (`/?at=T`) opens the page paused on that moment.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_notification_link_opens_the_page_on_its_moment() {
    let Some(d) = Dashboard::open("a_notification_link_opens_the_page_on_its_moment").await else {
        return;
    };
    d.an_alert().await;
    // A notification's link opens the page paused on that moment.
    let anomalies = zscope_tests::points(&d.daemon.get("/api/anomalies?limit=1"));
    let at = anomalies[0]["t"].as_f64().unwrap() as i64;
    d.c.goto(&d.daemon.url(&format!("/?at={at}")))
        .await
        .unwrap();
    wait_until(
        "the page on the notified moment",
        Duration::from_secs(10),
        || async {
            text(&d.c, "#chart-note")
                .await
                .contains("from a notification")
        },
    )
    .await;
    let span: serde_json::Value =
        d.c.execute(
            "return [cols[0][0] * 1000, cols[0][cols[0].length - 1] * 1000, paused]",
            vec![],
        )
        .await
        .unwrap();
    let (from, to) = (span[0].as_f64().unwrap(), span[1].as_f64().unwrap());
    assert!(
        from <= at as f64 && at as f64 <= to && span[2] == json!(true),
        "{span} around {at}"
    );
    d.close().await;
}

/// Several devices: the page lists them (connected, rate, recent anomalies, a sparkline of
/// the last minute) and one click
/// shows another device's chart, status and controls.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_page_lists_devices_and_switches_between_them() {
    if !have_tools(
        "the_page_lists_devices_and_switches_between_them",
        BROWSER_TOOLS,
    ) {
        return;
    }
    let emulated = |seed| SourceSetting::Emulated { rate_hz: 100, seed };
    let daemon = Daemon::start(emulated(1), move |s| {
        s.devices = vec![
            zscope_host::app::DeviceSetting {
                name: "bench-a".into(),
                source: emulated(1),
                judge: None,
            },
            zscope_host::app::DeviceSetting {
                name: "bench-b".into(),
                source: emulated(2),
                judge: None,
            },
        ];
    });
    let _slot = BROWSERS.acquire().await.expect("the semaphore stays open");
    let driver = ChromeDriver::start();
    let c = session(&driver).await;
    c.goto(&daemon.url("/")).await.expect("the page loads");
    wait_until("the device list", Duration::from_secs(20), || async {
        js_string(
            &c,
            "return [...document.querySelectorAll('#devices tbody tr')] \
               .map((tr) => tr.dataset.device + (tr.classList.contains('current') ? '*' : '')).join(' ')",
        )
        .await
            == "bench-a* bench-b"
    })
    .await;
    assert!(text(&c, "#devices-panel").await.contains("bench-b"));
    // Each row's sparkline draws the last minute (a point per second seen, twice: min, max).
    wait_until("the sparklines", Duration::from_secs(20), || async {
        js_string(
            &c,
            "return [...document.querySelectorAll('#devices tbody tr')] \
               .map((tr) => (tr.querySelector('svg.spark polyline')?.points.length || 0) >= 4) \
               .join(' ')",
        )
        .await
            == "true true"
    })
    .await;
    // The list refreshes every two seconds, in place: the link a user points at is the same
    // node after a refresh (a replaced one would lose a click pressed across the refresh).
    js_string(
        &c,
        "const row = document.querySelector(\"#devices tbody tr[data-device='bench-b']\"); \
         window.markedLink = row.querySelector('a'); window.markedSpark = row.querySelector('svg'); \
         return '';",
    )
    .await;
    wait_for_page(
        &c,
        "a refresh of the list",
        Duration::from_secs(10),
        "return markedSpark.isConnected ? 'the marked sparkline still shown' : 'yes'",
    )
    .await;
    assert_eq!(
        js_string(&c, "return markedLink.isConnected ? 'kept' : 'replaced'").await,
        "kept"
    );
    c.find(Locator::Css("#devices tbody tr[data-device='bench-b'] a"))
        .await
        .expect("a link to the second device")
        .click()
        .await
        .expect("it clicks");
    wait_until(
        "the second device's page",
        Duration::from_secs(20),
        || async {
            text(&c, "#device").await.starts_with("bench-b: emulated")
                && text(&c, "#points-count").await.parse::<u32>().unwrap_or(0) > 100
        },
    )
    .await;
    let url = c.current_url().await.expect("a URL");
    assert!(url.as_str().ends_with("/?device=bench-b"), "{url}");
    // Its alerts name it.
    wait_until(
        "an alert naming bench-b",
        Duration::from_secs(30),
        || async {
            js_string(
                &c,
                "return document.querySelector('#alerts .alert .device')?.textContent || ''",
            )
            .await
                == "bench-b"
        },
    )
    .await;
    let title = c.title().await.unwrap_or_default();
    assert!(title.contains("bench-b · zscope"), "{title}");
    // Its controls act on it alone.
    fill_and_apply(&c, &[("#threshold", "5")]).await;
    wait_until(
        "bench-b's acknowledgement",
        Duration::from_secs(10),
        || async { text(&c, "#config-version").await == "v2" },
    )
    .await;
    assert_eq!(
        daemon.get("/api/devices/bench-a/config")["version"],
        json!(1)
    );
    assert_eq!(
        daemon.get("/api/devices/bench-b/config")["version"],
        json!(2)
    );
    c.close().await.unwrap();
    drop(daemon);
}

/// The stored history in the page: *Hour* draws the last hour from the store (each column's
/// min and max, every anomaly), a drag-zoom fetches the smaller range afresh at the chart's
/// resolution, and *Resume* returns to the live chart.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_page_zooms_into_the_stored_history() {
    if !have_tools("the_page_zooms_into_the_stored_history", BROWSER_TOOLS) {
        return;
    }
    let daemon = Daemon::start(
        SourceSetting::Emulated {
            rate_hz: 200,
            seed: 3,
        },
        |_| {},
    );
    let _slot = BROWSERS.acquire().await.expect("the semaphore stays open");
    let driver = ChromeDriver::start();
    let c = session(&driver).await;
    c.goto(&daemon.url("/")).await.expect("the page loads");
    wait_until("anomalies stored", Duration::from_secs(30), || async {
        daemon.get("/api/status")["counters"]["anomalies"].as_u64() >= Some(3)
    })
    .await;
    c.find(Locator::Css(".history-buttons [data-span='3600000']"))
        .await
        .expect("an Hour button")
        .click()
        .await
        .expect("it clicks");
    wait_until("the hour drawn", Duration::from_secs(10), || async {
        text(&c, "#chart-note").await.starts_with("history")
    })
    .await;
    let note = text(&c, "#chart-note").await;
    assert!(note.contains("from the seconds"), "{note}");
    let drawn = |what: &'static str| {
        let c = c.clone();
        async move {
            let script = format!(
                "return String(cols[{what}].filter((v) => v !== null && v !== undefined).length)"
            );
            js_string(&c, &script).await.parse::<usize>().unwrap_or(0)
        }
    };
    let anomalies_drawn = drawn("5").await;
    let said: usize = note
        .split(", ")
        .find_map(|part| part.split(" anomalies").next()?.parse().ok())
        .expect("the note counts the anomalies");
    assert_eq!(anomalies_drawn, said, "{note}");
    assert!(anomalies_drawn >= 3, "{note}");
    assert!(drawn("3").await > 0, "columns' max drawn");
    // Drag-zoom onto the last second, once it holds 200 points (the anomalies can come
    // before it does): fetched again, from the points themselves.
    wait_until("300 points stored", Duration::from_secs(20), || async {
        daemon.get("/api/status")["store"]["stored"].as_u64() > Some(300)
    })
    .await;
    let zoom = "const u = chart, w = u.bbox.width / devicePixelRatio; \
        const to = Date.now() / 1000, from = to - 1; \
        const left = u.valToPos(from, 'x'), right = u.valToPos(to, 'x'); \
        u.setSelect({ left, width: Math.max(1, right - left), top: 0, height: 10 }, true); \
        return '';";
    js_string(&c, zoom).await;
    wait_until("the zoomed range", Duration::from_secs(10), || async {
        text(&c, "#chart-note").await.contains("from the points")
    })
    .await;
    let zoomed = drawn("1").await;
    assert!(
        zoomed > 100,
        "1 s at 200 points/s, drawn per column: {zoomed} ({})",
        text(&c, "#chart-note").await
    );
    // Back to live.
    c.find(Locator::Css("#pause"))
        .await
        .expect("the Resume button")
        .click()
        .await
        .expect("it clicks");
    wait_until("live again", Duration::from_secs(10), || async {
        js_string(&c, "return document.body.dataset.view || 'live'").await == "live"
            && text(&c, "#pause").await == "Pause"
    })
    .await;
    c.close().await.unwrap();
    drop(daemon);
}

/// A notification's link to a moment the daemon no longer holds in memory (here: from before
/// it restarted) opens the stored history around it, with the anomaly marked.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_moment_from_before_a_restart_opens_from_the_store() {
    if !have_tools(
        "a_moment_from_before_a_restart_opens_from_the_store",
        BROWSER_TOOLS,
    ) {
        return;
    }
    let emulated = SourceSetting::Emulated {
        rate_hz: 200,
        seed: 5,
    };
    let first = Daemon::start(emulated.clone(), |_| {});
    wait_until("an anomaly", Duration::from_secs(30), || async {
        first.get("/api/anomalies?limit=1")["t"][0].is_number()
    })
    .await;
    let at = first.get("/api/anomalies?limit=1")["t"][0]
        .as_f64()
        .expect("an anomaly's time");
    let log_dir = first.log_dir.clone();
    let _kept = first.stop();
    let second = Daemon::start(emulated, move |s| s.log_dir = log_dir);
    let _slot = BROWSERS.acquire().await.expect("the semaphore stays open");
    let driver = ChromeDriver::start();
    let c = session(&driver).await;
    c.goto(&second.url(&format!("/?at={}", at as i64)))
        .await
        .expect("the page loads");
    wait_until("the stored moment", Duration::from_secs(20), || async {
        text(&c, "#chart-note").await.starts_with("history")
    })
    .await;
    let marked = js_string(
        &c,
        &format!(
            "return String(cols[0].some((x, i) => cols[5][i] !== null && Math.abs(x * 1000 - {at}) < 1))"
        ),
    )
    .await;
    assert_eq!(marked, "true", "the anomaly is marked at its time");
    c.close().await.unwrap();
    drop(second);
}

/// A device with a temperature sensor (the emulated board, on a sysfs file of this test's
/// making): the page lists its sources, switches to the sensor on the device's word, labels
/// the chart's axis with the source and its unit, and shows the sensor's errors.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_page_switches_the_source_and_labels_its_axis() {
    use zscope_host::source::emulated::{BOARD, Emulator};
    if !have_tools(
        "the_page_switches_the_source_and_labels_its_axis",
        BROWSER_TOOLS,
    ) {
        return;
    }
    let _slot = BROWSERS.acquire().await.expect("the semaphore stays open");
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("temp");
    std::fs::write(&file, "36500\n").unwrap();
    let link = dir.path().join("ttyTEMP");
    let settings = zscope_firmware::Settings {
        board: BOARD,
        ..zscope_firmware::Settings::default()
    };
    let dev = Emulator::spawn_sensing(settings, Some(&link), file.clone()).unwrap();
    let daemon = Daemon::start(zscope_tests::on(&link), |_| {});
    let driver = ChromeDriver::start();
    let c = session(&driver).await;
    c.goto(&daemon.url("/")).await.expect("the page loads");
    let secs = Duration::from_secs;
    wait_for_page(
        &c,
        "the device's sources listed, the axis labelled",
        secs(20),
        "const listed = [...document.querySelectorAll('#source option')].map((o) => o.value).join(); \
         return listed === 'simulator,temperature' && chart.axes[1].label === 'simulator' \
           ? 'yes' : listed + ' / ' + chart.axes[1].label;",
    )
    .await;
    c.find(Locator::Css("#source"))
        .await
        .unwrap()
        .select_by_value("temperature")
        .await
        .unwrap();
    c.find(Locator::Css("#switch-source"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    wait_for_page(
        &c,
        "the switch acknowledged and the axis in °C",
        secs(10),
        "const said = document.querySelector('#source-status').textContent; \
         const now = document.querySelector('#source-now').textContent; \
         return said.startsWith('switched to temperature: config v2') \
             && now.startsWith('judging temperature, in °C') \
             && chart.axes[1].label === 'temperature (°C)' ? 'yes' : said + ' / ' + now;",
    )
    .await;
    wait_until("36.5 °C judged", secs(10), || async {
        let got = zscope_tests::points(&daemon.get("/api/samples?limit=5"));
        got.last().is_some_and(|p| p["value"] == json!(36.5))
    })
    .await;
    // The sensor fails: the page counts its errors.
    std::fs::write(&file, "no sensor\n").unwrap();
    wait_for_page(
        &c,
        "sensor errors on the page",
        secs(10),
        "const now = document.querySelector('#source-now').textContent; \
         return /\\d+ sensor errors? \\(readings not judged\\)/.test(now) ? 'yes' : now;",
    )
    .await;
    c.close().await.expect("the session closes");
    drop(daemon);
    dev.stop().unwrap();
}

/// A central daemon with a thousand devices from the broker (and five more refused at its
/// `--max-devices 1000`): the page lists fifty at a time, pages through them, finds one by
/// name, and says how many were refused and why.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_thousand_devices_are_listed_fifty_at_a_time() {
    use zscope_tests::{MQTT_TOOLS, Mosquitto};
    let tools: Vec<(&str, &str)> = BROWSER_TOOLS.iter().chain(MQTT_TOOLS).copied().collect();
    if !have_tools("a_thousand_devices_are_listed_fifty_at_a_time", &tools) {
        return;
    }
    let broker = Mosquitto::start();
    let url = format!("mqtt://127.0.0.1:{}", broker.port);
    let setting = zscope_host::sink::mqtt::MqttSetting::parse(&url, "central".into()).unwrap();
    let daemon = zscope_tests::central_daemon(setting, |s| s.max_devices = 1000);
    let client = zscope_tests::mqtt_publisher("thousand", broker.port, 64);
    let publish = |n: usize| {
        client
            .publish(
                format!("zscope/dev-{n:04}/status"),
                rumqttc::QoS::AtLeastOnce,
                false,
                r#"{"connected": true}"#,
            )
            .unwrap();
    };
    // The first, until the centre (subscribed by then) has it; then the rest.
    zscope_tests::wait_for(Duration::from_secs(20), "dev-0000 at the centre", || {
        publish(0);
        (daemon.get("/api/fleet")["total"] == json!(1)).then_some(())
    });
    for n in 1..1005 {
        publish(n);
    }
    zscope_tests::wait_for(Duration::from_secs(120), "1000 devices, 5 refused", || {
        let f = daemon.get("/api/fleet?limit=1");
        (f["total"] == json!(1000) && f["refused"] == json!(5)).then_some(())
    });
    let _slot = BROWSERS.acquire().await.expect("the semaphore stays open");
    let driver = ChromeDriver::start();
    let c = session(&driver).await;
    c.goto(&daemon.url("/")).await.expect("the page loads");
    let rows = "return [...document.querySelectorAll('#devices tbody tr')].map((tr) => tr.dataset.device).join(' ')";
    wait_until("fifty rows", Duration::from_secs(20), || async {
        js_string(&c, rows).await.split(' ').count() == 50
    })
    .await;
    let first: Vec<String> = js_string(&c, rows)
        .await
        .split(' ')
        .map(String::from)
        .collect();
    assert_eq!(first[0], "dev-0000");
    assert_eq!(first[49], "dev-0049");
    assert_eq!(text(&c, "#devices-range").await, "1–50 of 1000");
    let png = c.screenshot().await.expect("a screenshot");
    std::fs::write(workspace_root().join("target/devices-1000.png"), &png).unwrap();
    let refused = text(&c, "#devices-refused").await;
    assert!(
        refused.contains("5 devices refused") && refused.contains("1000 at most"),
        "{refused}"
    );
    c.find(Locator::Css("#devices-next"))
        .await
        .expect("a next button")
        .click()
        .await
        .expect("it clicks");
    wait_until("the second fifty", Duration::from_secs(20), || async {
        text(&c, "#devices-range").await == "51–100 of 1000"
            && js_string(&c, rows).await.starts_with("dev-0050 ")
    })
    .await;
    // Found by name (the list back at its start).
    let filter = c
        .find(Locator::Css("#device-filter"))
        .await
        .expect("a filter, with more devices than a page");
    filter.send_keys("dev-0999").await.expect("typed");
    wait_until("dev-0999 alone", Duration::from_secs(20), || async {
        js_string(&c, rows).await == "dev-0999"
    })
    .await;
    assert_eq!(
        text(&c, "#devices-range").await,
        "1–1 of 1 matching (1000 in all)"
    );
    assert!(
        !c.find(Locator::Css("#devices-next"))
            .await
            .expect("the pager's button")
            .is_displayed()
            .await
            .unwrap_or(true),
        "no paging for one page"
    );
    c.close().await.unwrap();
    drop(daemon);
}

/// The page at a phone's width and at two desktop widths: nothing scrolls sideways, the
/// devices table and the chart stay inside their panels, and a screenshot of each is kept
/// (`target/page-<width>.png`, or `docs/` with `ZSCOPE_SCREENSHOT=docs`).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_page_fits_a_phone_and_wide_screens() {
    let Some(d) = Dashboard::open("the_page_fits_a_phone_and_wide_screens").await else {
        return;
    };
    let dir = match std::env::var("ZSCOPE_SCREENSHOT").as_deref() {
        Ok("docs") => workspace_root().join("docs"),
        _ => workspace_root().join("target"),
    };
    std::fs::create_dir_all(&dir).unwrap();
    for (width, height) in [(412u32, 915u32), (1280, 800), (1920, 1080)] {
        d.c.set_window_size(width, height)
            .await
            .expect("the window resizes");
        // The chart follows its panel's width (it redraws on resize).
        wait_for_page(
            &d.c,
            &format!("the chart at {width} px"),
            Duration::from_secs(10),
            "const panel = document.getElementById('chart-panel'); \
             const w = chart.width, room = panel.clientWidth; \
             return (w <= room && w >= room - 40) ? 'yes' : `chart ${w} in ${room}`",
        )
        .await;
        let overflow = js_string(
            &d.c,
            "const out = []; \
             const page = document.documentElement; \
             if (page.scrollWidth > page.clientWidth) out.push(`page ${page.scrollWidth} > ${page.clientWidth}`); \
             for (const el of document.querySelectorAll('section, header')) \
               if (el.scrollWidth > el.clientWidth + 1) out.push(`${el.id || el.tagName} ${el.scrollWidth} > ${el.clientWidth}`); \
             return out.join('; ');",
        )
        .await;
        let png = d.c.screenshot().await.expect("a screenshot");
        std::fs::write(dir.join(format!("page-{width}.png")), &png).unwrap();
        assert_eq!(overflow, "", "at {width} px");
    }
    d.close().await;
}
