//! The dashboard in a real headless Chromium (Debian's `chromium` + `chromium-driver`), against
//! the daemon and its emulated device: points arrive, an anomaly alert appears, the threshold
//! is changed from the page and the device's acknowledgement shows. Saves a screenshot
//! (`docs/dashboard.png` when `ZSCOPE_SCREENSHOT=docs`, else `target/dashboard.png`).

use std::time::{Duration, Instant};

use fantoccini::{ClientBuilder, Locator};
use serde_json::json;
use zscope_host::cli::SourceSetting;
use zscope_tests::{BROWSER_TOOLS, ChromeDriver, Daemon, have_tools, workspace_root};

async fn text(c: &fantoccini::Client, css: &str) -> String {
    match c.find(Locator::Css(css)).await {
        Ok(e) => e.text().await.unwrap_or_default(),
        Err(_) => String::new(),
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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dashboard_shows_points_alerts_and_acknowledged_config() {
    if !have_tools(
        "dashboard_shows_points_alerts_and_acknowledged_config",
        BROWSER_TOOLS,
    ) {
        return;
    }
    let daemon = Daemon::start(
        SourceSetting::Emulated {
            rate_hz: 200,
            seed: 42,
        },
        |_| {},
    );
    let driver = ChromeDriver::start();
    let c = ClientBuilder::rustls()
        .expect("TLS config")
        .capabilities(driver.capabilities())
        .connect(&driver.url)
        .await
        .expect("a Chromium session");
    c.goto(&daemon.url("/")).await.expect("the page loads");

    wait_until("points on the chart", Duration::from_secs(20), || async {
        text(&c, "#points-count").await.parse::<u32>().unwrap_or(0) > 300
    })
    .await;
    assert_eq!(text(&c, "#connection").await, "connected");
    // Nobody zoomed: the chart follows the stream.
    assert_eq!(text(&c, "#chart-note").await, "");
    assert!(text(&c, "#device").await.contains("emulated"));

    wait_until("an anomaly alert", Duration::from_secs(30), || async {
        c.find(Locator::Css("#alerts li.alert")).await.is_ok()
    })
    .await;
    let count: u32 = text(&c, "#alert-count").await.parse().unwrap_or(0);
    assert!(count >= 1);
    let title = c.title().await.unwrap_or_default();
    assert!(
        title.starts_with('(') && title.ends_with("zscope"),
        "title {title:?}"
    );
    let first_alert = text(&c, "#alerts li.alert").await;
    assert!(
        first_alert.contains("value") && first_alert.contains('z'),
        "{first_alert}"
    );

    // Change the threshold from the page; it shows once the device acknowledges.
    assert_eq!(text(&c, "#config-version").await, "v1");
    let input = c.find(Locator::Css("#threshold")).await.unwrap();
    input.clear().await.unwrap();
    input.send_keys("4").await.unwrap();
    c.find(Locator::Css("#apply"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    wait_until(
        "the device's acknowledgement",
        Duration::from_secs(10),
        || async {
            text(&c, "#config-status").await.contains("acknowledged")
                && text(&c, "#config-version").await == "v2"
        },
    )
    .await;
    let api = daemon.get("/api/config");
    assert_eq!(api["version"], json!(2));
    assert_eq!(api["config"]["threshold"], json!(4.0));

    // Dismissing an alert lowers the count.
    let before: u32 = text(&c, "#alert-count").await.parse().unwrap_or(0);
    c.find(Locator::Css("#alerts li.alert button"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    wait_until("the dismissal", Duration::from_secs(5), || async {
        text(&c, "#alert-count").await.parse::<u32>().unwrap_or(0) < before + 2
    })
    .await;

    // Let the chart fill a little more, then keep a picture of what a user sees.
    tokio::time::sleep(Duration::from_secs(3)).await;
    let png = c.screenshot().await.expect("a screenshot");
    let dir = match std::env::var("ZSCOPE_SCREENSHOT").as_deref() {
        Ok("docs") => workspace_root().join("docs"),
        _ => workspace_root().join("target"),
    };
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("dashboard.png"), &png).unwrap();
    assert!(png.len() > 10_000, "screenshot too small to be the page");
    c.close().await.unwrap();
    drop(daemon);
}
