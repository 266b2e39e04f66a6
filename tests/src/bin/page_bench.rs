//! `cargo run --release -p zscope-tests --bin page-bench`: the dashboard in headless Chromium
//! while 10 000 points/s arrive (the release `zscope` with one emulated device at 10 kHz): the
//! chart's frames per second by the page's own frame timing (when each draw finished), the
//! longest gap between draws, the points the page received per second, and its JavaScript heap
//! at the start and the end. The baseline, in the same run: the same page with the device at
//! 50 points/s (the default).
//!
//! `ZSCOPE_PAGE_SECS` (default 20) seconds measured per part.

use std::time::Duration;

use zscope_tests::bench::{Zscope, build_zscope};
use zscope_tests::{BROWSER_TOOLS, ChromeDriver, have_tools};

/// What the page measured over a window.
struct Frames {
    fps: f64,
    p99_gap_ms: f64,
    max_gap_ms: f64,
    points_per_s: f64,
    heap_start_mb: f64,
    heap_end_mb: f64,
    draw_ms: f64,
    browser_fps: f64,
    batches_per_s: f64,
}

async fn js_f64(c: &fantoccini::Client, script: &str) -> f64 {
    c.execute(script, vec![])
        .await
        .ok()
        .and_then(|v| v.as_f64())
        .unwrap_or(f64::NAN)
}

async fn measure(url: &str, secs: u64) -> Frames {
    let driver = ChromeDriver::start();
    let c = driver.session().await;
    c.set_window_size(1400, 900).await.expect("window size");
    c.goto(url).await.expect("the page loads");
    // Warm up: the snapshot, the first 10 000 points.
    tokio::time::sleep(Duration::from_secs(5)).await;
    let heap = "return performance.memory ? performance.memory.usedJSHeapSize / 1048576 : NaN";
    let heap_start_mb = js_f64(&c, heap).await;
    // Time the chart's own drawing (uPlot's setData) apart from the rest of the page's work.
    c.execute(
        "const set = chart.setData.bind(chart); window.__drawMs = 0; window.__draws = 0; \
         chart.setData = (d, r) => { const t = performance.now(); set(d, r); \
         queueMicrotask(() => { window.__drawMs += performance.now() - t; }); window.__draws++; }; \
         return 0",
        vec![],
    )
    .await
    .expect("script");
    // The browser's own frame rate (every animation frame, drawn or not).
    c.execute(
        "window.__frames = 0; const tick = () => { window.__frames++; requestAnimationFrame(tick); }; \
         requestAnimationFrame(tick); return 0",
        vec![],
    )
    .await
    .expect("script");
    let f0 = js_f64(&c, "return window.__frames").await;
    let t0 = js_f64(&c, "return performance.now()").await;
    let n0 = js_f64(&c, "return pointsReceived").await;
    let b0 = js_f64(&c, "return batchesReceived").await;
    tokio::time::sleep(Duration::from_secs(secs)).await;
    let t1 = js_f64(&c, "return performance.now()").await;
    let n1 = js_f64(&c, "return pointsReceived").await;
    let f1 = js_f64(&c, "return window.__frames").await;
    let b1 = js_f64(&c, "return batchesReceived").await;
    let gaps: Vec<f64> = c
        .execute(
            &format!(
                "const t = drawTimes.filter((x) => x >= {t0}); \
                 const g = []; for (let i = 1; i < t.length; i++) g.push(t[i] - t[i - 1]); \
                 return [t.length, ...g];"
            ),
            vec![],
        )
        .await
        .ok()
        .and_then(|v| v.as_array().cloned())
        .unwrap_or_default()
        .iter()
        .filter_map(|v| v.as_f64())
        .collect();
    let draws = gaps.first().copied().unwrap_or(0.0);
    let mut g: Vec<f64> = gaps.iter().skip(1).copied().collect();
    g.sort_by(f64::total_cmp);
    let pct = |q: f64| {
        g.get(((g.len() as f64 - 1.0) * q) as usize)
            .copied()
            .unwrap_or(f64::NAN)
    };
    let heap_end_mb = js_f64(&c, heap).await;
    let draw_ms = js_f64(&c, "return window.__drawMs / Math.max(1, window.__draws)").await;
    let _ = c.close().await;
    let span_s = (t1 - t0) / 1000.0;
    // drawTimes keeps the last 1000: over a long window, the rate comes from those.
    let kept_span = g.iter().sum::<f64>() / 1000.0;
    Frames {
        fps: if draws >= 1000.0 {
            (draws - 1.0) / kept_span
        } else {
            draws / span_s
        },
        p99_gap_ms: pct(0.99),
        max_gap_ms: g.last().copied().unwrap_or(f64::NAN),
        points_per_s: (n1 - n0) / span_s,
        heap_start_mb,
        heap_end_mb,
        draw_ms,
        browser_fps: (f1 - f0) / span_s,
        batches_per_s: (b1 - b0) / span_s,
    }
}

fn main() {
    if !have_tools("page-bench", BROWSER_TOOLS) {
        return;
    }
    let secs = std::env::var("ZSCOPE_PAGE_SECS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(20);
    let bin = build_zscope();
    let runtime = tokio::runtime::Runtime::new().expect("tokio");
    println!("page-bench: the dashboard in headless Chromium, {secs} s a part\n");
    for rate in ["50", "10000"] {
        let daemon = Zscope::start_with(&bin, &["--emulate", "1", "--emulator-rate", rate]);
        let f = runtime.block_on(measure(&format!("{}/", daemon.url), secs));
        println!(
            "  {rate:>5} points/s arriving: the page drew {:.1} frames/s (p99 gap {:.1} ms, max {:.1} ms; \
             the chart's draw {:.1} ms each; the browser's animation frames {:.1}/s), received {:.0} points/s in {:.1} messages/s; JS heap {:.1} -> {:.1} MiB",
            f.fps,
            f.p99_gap_ms,
            f.max_gap_ms,
            f.draw_ms,
            f.browser_fps,
            f.points_per_s,
            f.batches_per_s,
            f.heap_start_mb,
            f.heap_end_mb
        );
    }
    println!("\n  (aim at 10 000 points/s: >= 50 frames/s, bounded memory)");
}
