//! The `zscope` binary as a user runs it: piping through `score`, folders, and the flag
//! combinations it refuses.

use std::io::Write;
use std::process::{Command, Output, Stdio};

fn zscope(args: &[&str], stdin: Option<&str>) -> Output {
    let mut child = Command::new(env!("CARGO_BIN_EXE_zscope"))
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("the zscope binary runs");
    let mut input = child.stdin.take().expect("stdin");
    if let Some(text) = stdin {
        input
            .write_all(text.as_bytes())
            .expect("stdin takes the data");
    }
    drop(input);
    child.wait_with_output().expect("zscope finishes")
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

fn series(n: usize) -> String {
    let mut s = String::from("timestamp,value\n");
    for i in 0..n {
        let v = if i == 700 {
            50.0
        } else {
            [0.1, -0.2, 0.15, -0.05][i % 4]
        };
        s += &format!("{},{v}\n", 1_795_507_200 + i);
    }
    s
}

#[test]
fn score_pipes_stdin_to_stdout_with_the_summary_on_stderr() {
    let mut input = series(1000);
    input += "1795508200,not-a-number\n1795508100,0.1\n"; // a bad value, a time going back
    let out = zscope(&["score", "-", "-o", "-"], Some(&input));
    assert!(out.status.success(), "{}", text(&out.stderr));
    let stdout = text(&out.stdout);
    let rows: Vec<&str> = stdout.lines().collect();
    assert_eq!(
        rows[0],
        "timestamp,value,mean,std,z,anomaly_score,is_anomaly"
    );
    assert_eq!(rows.len(), 1 + 1002, "one output row per input row");
    assert_eq!(rows[1001], "1795508200,not-a-number,,,,,");
    assert!(
        rows[701].ends_with(",1"),
        "the spike is flagged: {}",
        rows[701]
    );
    let stderr = text(&out.stderr);
    assert!(
        stderr.contains("scored 1002 rows of <stdin> into <stdout>")
            && stderr.contains("line 1002: 'not-a-number' is not a number")
            && stderr.contains("goes backwards"),
        "{stderr}"
    );
    assert!(!stdout.contains("scored"), "nothing but rows on stdout");
}

#[test]
fn score_takes_a_folder_into_a_folder_with_the_same_layout() {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("in");
    std::fs::create_dir_all(input.join("a/b")).unwrap();
    std::fs::write(input.join("one.csv"), series(50)).unwrap();
    std::fs::write(input.join("a/b/two.csv"), series(80)).unwrap();
    std::fs::write(input.join("a/notes.txt"), "not data").unwrap();
    let output = dir.path().join("out");
    let out = zscope(
        &[
            "score",
            input.to_str().unwrap(),
            "-o",
            output.to_str().unwrap(),
            "--format",
            "nab",
        ],
        None,
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    let one = std::fs::read_to_string(output.join("one.csv")).unwrap();
    let two = std::fs::read_to_string(output.join("a/b/two.csv")).unwrap();
    assert_eq!((one.lines().count(), two.lines().count()), (51, 81));
    assert!(!output.join("a/notes.txt").exists());
    assert!(
        text(&out.stderr).contains("2 files, 130 rows"),
        "{}",
        text(&out.stderr)
    );
    // A folder cannot go to one file or to stdout.
    let out = zscope(&["score", input.to_str().unwrap(), "-o", "-"], None);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        text(&out.stderr).contains("give a folder to write into"),
        "{}",
        text(&out.stderr)
    );
}

#[test]
fn flags_that_do_nothing_here_are_refused_with_the_reason() {
    for (args, says) in [
        (
            vec!["score", "x.csv", "-o", "-", "--listen", "127.0.0.1:9"],
            "unexpected argument '--listen'",
        ),
        (
            vec!["score", "x.csv", "-o", "-", "--alpha", "0.5"],
            "--alpha has no effect without a seasonal profile",
        ),
        (
            vec![
                "score",
                "x.csv",
                "-o",
                "-",
                "--include-anomalies",
                "--max-run",
                "3",
            ],
            "--max-run has no effect with --include-anomalies",
        ),
        (
            vec![
                "score",
                "x.csv",
                "-o",
                "-",
                "--detector",
                "zscore",
                "--rest",
                "50",
            ],
            "--rest has no effect outside the adaptive detector",
        ),
        (
            vec!["eval", "--detector", "zscore", "--seasonal", "100"],
            "--seasonal has no effect outside the seasonal detector",
        ),
        (
            vec!["eval", "--detector", "seasonal"],
            "the seasonal detector needs its period",
        ),
        (
            vec!["eval", "--seasonal", "1d"],
            "needs timestamps to convert it",
        ),
        (
            vec!["score", "x.csv", "-o", "-", "--seasonal", "3 fortnights"],
            "is neither a number of samples",
        ),
        (
            vec!["eval", "--learn", "5"],
            "learning phase 5 is outside 16..=100000",
        ),
        (
            vec!["eval", "--port", "/dev/ttyACM0"],
            "unexpected argument '--port'",
        ),
    ] {
        let out = zscope(&args, None);
        assert_eq!(
            out.status.code(),
            Some(2),
            "{args:?}: {}",
            text(&out.stderr)
        );
        assert!(
            text(&out.stderr).contains(says),
            "{args:?}: {}",
            text(&out.stderr)
        );
    }
    // And `score --help` lists score's flags only.
    let help = text(&zscope(&["score", "--help"], None).stdout);
    assert!(
        help.contains("--detector") && help.contains("--seasonal"),
        "{help}"
    );
    assert!(
        !help.contains("--listen") && !help.contains("--port"),
        "{help}"
    );
}

#[test]
fn a_seasonal_period_can_be_a_duration() {
    // One row a minute: 1h is 60 samples.
    let mut input = String::from("timestamp,value\n");
    for i in 0..400 {
        let v = (i % 60) as f64;
        input += &format!("{},{v}\n", 1_795_507_200 + 60 * i);
    }
    let out = zscope(&["score", "-", "-o", "-", "--seasonal", "1h"], Some(&input));
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(text(&out.stdout).lines().count(), 401);
    let out = zscope(&["score", "-", "-o", "-", "--seasonal", "2w"], Some(&input));
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stderr));
    assert!(
        text(&out.stderr).contains("seasonal period 20160 is outside 1..=8192"),
        "{}",
        text(&out.stderr)
    );
}

/// A careless or hostile file costs bounded memory and gets short, exact messages: a line of
/// a million fields (2 MiB) is one bad row, not a truncated one; an unclosed quote does not
/// swallow the rest of the file or echo it; an invalid UTF-8 value and extra fields are named
/// for what they are; and every input row still has its output row.
#[test]
fn score_reports_oversized_rows_bad_bytes_and_extra_fields_for_what_they_are() {
    let mut input: Vec<u8> = b"timestamp,value\n1795507200,0.5\n".to_vec();
    input.extend_from_slice(b"1795507201,");
    input.extend(std::iter::repeat_n(&b"1,"[..], 1 << 20).flatten());
    input.extend_from_slice(b"\n1795507202,\"");
    input.extend(std::iter::repeat_n(b'q', 3 << 20));
    input.extend_from_slice(b"\n1795507203,\xff\xfe\n1795507204,0.25,extra\n1795507205,0.75\n");
    let dir = tempfile::tempdir().expect("a temp dir");
    let path = dir.path().join("careless.csv");
    std::fs::write(&path, &input).expect("written");
    let out = dir.path().join("scored.csv");
    let path_s = path.display().to_string();
    let out_s = out.display().to_string();
    let run = zscope(&["score", &path_s, "-o", &out_s], None);
    let err = text(&run.stderr);
    assert!(run.status.success(), "{err}");
    assert!(err.len() < 2_000, "short messages: {} bytes", err.len());
    for needle in [
        "line 3: longer than 1 MiB: skipped",
        "line 4: longer than 1 MiB: skipped",
        "line 5: field 'value' is not valid UTF-8",
        "line 6: 3 fields where the header has 2",
        "3 row(s) without a usable value",
        "1 with more fields than the header",
    ] {
        assert!(err.contains(needle), "missing '{needle}' in:\n{err}");
    }
    // The input's bytes are copied as they were (the invalid ones included).
    let scored = text(&std::fs::read(&out).expect("output written"));
    let rows: Vec<&str> = scored.lines().collect();
    assert_eq!(rows.len(), 1 + 6, "one output row per input row:\n{scored}");
    assert!(
        rows[2].starts_with(",,"),
        "an oversized row is empty: {}",
        rows[2]
    );
    assert!(rows[6].starts_with("1795507205,0.75,"), "{}", rows[6]);
}

/// Rows in the store, read as another program would (while the daemon writes, or after).
/// Where the daemon `child` (its stdout piped) serves its dashboard, as it says on starting.
fn dashboard_address(child: &mut std::process::Child) -> std::net::SocketAddr {
    use std::io::BufRead;
    let mut stdout = std::io::BufReader::new(child.stdout.take().expect("stdout"));
    let mut line = String::new();
    loop {
        line.clear();
        let n = stdout.read_line(&mut line).expect("stdout");
        assert!(n > 0, "the daemon ended before serving");
        if let Some(rest) = line.trim().strip_prefix("zscope: dashboard on http://") {
            // The rest of its output is read (and dropped) so that it never blocks on a pipe.
            std::thread::spawn(move || std::io::copy(&mut stdout, &mut std::io::sink()));
            return rest.trim_end_matches('/').parse().expect("an address");
        }
    }
}

fn stored_rows(db: &std::path::Path) -> Option<i64> {
    let conn =
        rusqlite::Connection::open_with_flags(db, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY)
            .ok()?;
    conn.query_row("SELECT count(*) FROM samples", [], |r| r.get(0))
        .ok()
}

/// `kill -9` at any moment loses no committed row and leaves a store that opens (three
/// times, the daemon started again on the same folder each time); `zscope export` writes it
/// back as CSV with samples.csv's columns, whole or a range.
#[test]
fn the_store_survives_kill_9_and_exports_as_csv() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().to_str().unwrap();
    let db = dir.path().join("zscope.db");
    let mut last = 0;
    for round in 0..3 {
        let mut child = Command::new(env!("CARGO_BIN_EXE_zscope"))
            .args([
                "--emulate",
                "1",
                "--emulator-rate",
                "2000",
                "--log-dir",
                log,
            ])
            .args(["--listen", "127.0.0.1:0"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("the daemon starts");
        let started = std::time::Instant::now();
        let committed = loop {
            match stored_rows(&db) {
                Some(n) if n > last + 2000 => break n,
                _ if started.elapsed().as_secs() > 30 => panic!("round {round}: no rows stored"),
                _ => std::thread::sleep(std::time::Duration::from_millis(50)),
            }
        };
        // Killed mid-stream: at least what was committed is there, and the file is sound.
        child.kill().unwrap();
        child.wait().unwrap();
        let conn = rusqlite::Connection::open(&db).unwrap();
        let check: String = conn
            .query_row("PRAGMA integrity_check", [], |r| r.get(0))
            .unwrap();
        assert_eq!(check, "ok", "round {round}");
        drop(conn);
        let after = stored_rows(&db).unwrap();
        assert!(
            after >= committed,
            "round {round}: {after} rows after the kill, {committed} committed before"
        );
        last = after;
    }
    // The whole store as CSV: samples.csv's header, one row per stored point.
    let out = zscope(&["export", "--log-dir", log], None);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let csv = text(&out.stdout);
    let header = std::fs::read_to_string(dir.path().join("samples.csv")).unwrap();
    assert_eq!(csv.lines().next(), header.lines().next());
    assert_eq!(csv.lines().count() as i64, last + 1);
    // Each row says what the device judged (the emulator's simulator, no unit) and with
    // which detector (the default), from the store's record of each config version.
    let columns: Vec<&str> = csv.lines().next().unwrap().split(',').collect();
    let at = |name: &str| columns.iter().position(|c| *c == name).unwrap();
    let (source, unit, detector) = (at("source"), at("unit"), at("detector"));
    for line in csv.lines().skip(1) {
        let fields: Vec<&str> = line.split(',').collect();
        assert_eq!(
            (fields[source], fields[unit], fields[detector]),
            ("simulator", "", "adaptive"),
            "{line}"
        );
    }
    assert!(
        text(&out.stderr).contains(&format!("{last} points")),
        "{}",
        text(&out.stderr)
    );
    // A range: the rows whose chart time is in it, to a file.
    let conn = rusqlite::Connection::open(&db).unwrap();
    let (a, b, n): (f64, f64, i64) = conn
        .query_row(
            "SELECT t, t + 500, (SELECT count(*) FROM samples s WHERE s.t >= x.t AND s.t <= x.t + 500) \
             FROM samples x ORDER BY t LIMIT 1 OFFSET 1000",
            [],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
        )
        .unwrap();
    let file = dir.path().join("range.csv");
    // RFC 3339 for --from (export takes both it and ms), whole ms at or before the row.
    let from = chrono::DateTime::from_timestamp_millis(a.floor() as i64)
        .unwrap()
        .to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
    let out = zscope(
        &[
            "export",
            "--log-dir",
            log,
            "--from",
            &from,
            "--to",
            &format!("{b}"),
            "-o",
            file.to_str().unwrap(),
        ],
        None,
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    let lines = std::fs::read_to_string(&file).unwrap().lines().count() as i64;
    assert_eq!(lines, n + 1);
    // Wrong folders and times are clear errors.
    let out = zscope(&["export", "--log-dir", "/nonexistent/zscope"], None);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        text(&out.stderr).contains("cannot read the log folder"),
        "{}",
        text(&out.stderr)
    );
    let out = zscope(&["export", "--log-dir", log, "--from", "yesterday"], None);
    assert!(
        text(&out.stderr).contains("--from 'yesterday'"),
        "{}",
        text(&out.stderr)
    );
    let out = zscope(&["export", "--log-dir", log, "--device", "bench"], None);
    assert!(
        text(&out.stderr).contains("no device 'bench'"),
        "{}",
        text(&out.stderr)
    );
}

/// `zscope score … -o - | head -1`: the reader leaves early; zscope ends quietly with 0, as
/// Unix tools do when their output is closed.
#[test]
fn score_into_a_pipe_closed_early_exits_quietly() {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("big.csv");
    std::fs::write(&input, series(200_000)).unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_zscope"))
        .args(["score", input.to_str().unwrap(), "-o", "-"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("the zscope binary runs");
    // Read the header line, then close the pipe, as `head -1` does.
    let mut stdout = child.stdout.take().expect("stdout");
    let mut first = [0u8; 64];
    let n = std::io::Read::read(&mut stdout, &mut first).expect("a first chunk");
    assert!(
        text(&first[..n]).starts_with("timestamp,value,"),
        "{}",
        text(&first[..n])
    );
    drop(stdout);
    let out = child.wait_with_output().expect("zscope finishes");
    assert!(
        out.status.success(),
        "exit {:?}: {}",
        out.status,
        text(&out.stderr)
    );
    assert!(
        !text(&out.stderr).contains("Broken pipe") && !text(&out.stderr).contains("error"),
        "{}",
        text(&out.stderr)
    );
}

/// `zscope score - < /dev/zero`: a header line that never ends is refused as soon as it passes
/// the line limit, not read for ever.
#[test]
fn a_line_that_never_ends_is_refused_at_the_limit() {
    let out = Command::new(env!("CARGO_BIN_EXE_zscope"))
        .args(["score", "-", "-o", "-"])
        .stdin(std::fs::File::open("/dev/zero").expect("/dev/zero"))
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .output()
        .expect("zscope finishes");
    assert!(!out.status.success());
    let err = text(&out.stderr);
    assert!(err.contains("header line is longer than 1 MiB"), "{err}");
    assert!(!err.chars().any(|c| c == '\0'), "no raw NUL in the message");
}

/// `zscope emulate --link PATH`: the link is there while the device runs, and gone once it is
/// asked to stop (SIGTERM, as Ctrl-C's SIGINT), which ends it with 0.
#[test]
fn emulate_removes_its_link_when_stopped() {
    let dir = tempfile::tempdir().unwrap();
    let link = dir.path().join("ttyEMU");
    let mut child = Command::new(env!("CARGO_BIN_EXE_zscope"))
        .args(["emulate", "--link", link.to_str().unwrap()])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("the zscope binary runs");
    // The device is up once it says so on stderr (after the link is made).
    let mut stderr = std::io::BufReader::new(child.stderr.take().expect("stderr"));
    let mut line = String::new();
    std::io::BufRead::read_line(&mut stderr, &mut line).expect("a line");
    assert!(line.contains("Ctrl-C to stop"), "{line}");
    assert!(link.symlink_metadata().is_ok(), "the link is there");
    let killed = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .expect("kill runs");
    assert!(killed.success());
    let status = child.wait().expect("zscope ends");
    let mut rest = String::new();
    std::io::Read::read_to_string(&mut stderr, &mut rest).expect("the rest of stderr");
    assert!(status.success(), "{status:?}: {rest}");
    assert!(rest.contains("removed"), "{rest}");
    assert!(link.symlink_metadata().is_err(), "the link is gone");
}

/// With a descriptor limit of 256 (hard, so it cannot be raised), 500 clients that each send a
/// POST's headers and one byte of its 100 kB body do not hold the API down: the daemon caps its
/// connections below the limit (256 less its reserve of 64) and closes the oldest of those
/// still sending to make room, so a request answers long before any of them times out.
#[test]
fn five_hundred_slow_bodies_under_a_limit_of_256_descriptors_leave_the_api_answering() {
    use std::io::Read;
    use std::net::TcpStream;
    use std::time::{Duration, Instant};
    // This process needs its 500 sockets too.
    zscope_host::web::connection_cap();
    let mut child = Command::new("sh")
        .args([
            "-c",
            "ulimit -n 256 && exec \"$0\" --emulate 1 --listen 127.0.0.1:0",
            env!("CARGO_BIN_EXE_zscope"),
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("the daemon starts");
    let mut stderr = child.stderr.take().expect("stderr");
    let log = std::thread::spawn(move || {
        let mut all = String::new();
        let _ = stderr.read_to_string(&mut all);
        all
    });
    let addr = dashboard_address(&mut child);
    let slow: Vec<TcpStream> = (0..500)
        .map(|_| {
            let mut s = TcpStream::connect(addr).expect("connects");
            s.write_all(
                b"POST /api/config HTTP/1.1\r\nHost: 127.0.0.1\r\n\
                  Content-Type: application/json\r\nContent-Length: 100000\r\n\r\n{",
            )
            .expect("headers and one byte of the body");
            s
        })
        .collect();
    // The daemon answers within 13 s (10 s for headers, 3 s for an acknowledgement) anyway:
    // an answer well before then is one that made room, not one that waited for timeouts.
    let asked = Instant::now();
    let mut api = TcpStream::connect(addr).expect("connects");
    api.write_all(b"GET /api/status HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n")
        .expect("a request");
    api.set_read_timeout(Some(Duration::from_secs(30)))
        .expect("a timeout");
    let mut answer = String::new();
    let _ = api.read_to_string(&mut answer);
    let took = asked.elapsed();
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    assert!(answer.contains("\"device\""), "{answer}");
    assert!(
        took < Duration::from_secs(8),
        "answered after {took:?}: it waited for the slow ones to time out"
    );
    drop(slow);
    child.kill().expect("the daemon stops");
    child.wait().expect("the daemon ends");
    let log = log.join().expect("stderr");
    assert!(
        log.contains("serving at most 192 connections at once"),
        "{log}"
    );
}

/// A store damaged while the daemon runs (pages of the file overwritten, as a failing disk or
/// another program might): the daemon finds it at its next pass over old points, says so in
/// `/api/status` (`store.error`, with what to do) and `/metrics`, and the CSV log goes on.
#[test]
fn a_store_damaged_while_running_is_said_and_the_csv_goes_on() {
    use std::io::{Read, Seek, SeekFrom};
    use std::time::{Duration, Instant};
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().to_str().unwrap();
    let db = dir.path().join("zscope.db");
    let mut child = Command::new(env!("CARGO_BIN_EXE_zscope"))
        .args([
            "--emulate",
            "1",
            "--emulator-rate",
            "2000",
            "--log-dir",
            log,
        ])
        .args(["--listen", "127.0.0.1:0"])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("the daemon starts");
    let addr = dashboard_address(&mut child);
    let status = || -> serde_json::Value {
        let mut s = std::net::TcpStream::connect(addr).expect("connects");
        s.write_all(b"GET /api/status HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n")
            .expect("a request");
        let mut answer = String::new();
        s.read_to_string(&mut answer).expect("an answer");
        let body = answer.split_once("\r\n\r\n").map_or("", |(_, b)| b);
        serde_json::from_str(body).unwrap_or_else(|e| panic!("{e}: {answer}"))
    };
    let wait = |what: &str, mut f: Box<dyn FnMut() -> bool + '_>| {
        let deadline = Instant::now() + Duration::from_secs(60);
        while !f() {
            assert!(Instant::now() < deadline, "timed out waiting for {what}");
            std::thread::sleep(Duration::from_millis(50));
        }
    };
    wait(
        "20 000 points stored",
        Box::new(|| stored_rows(&db).is_some_and(|n| n > 20_000)),
    );
    assert_eq!(
        status()["store"]["error"],
        serde_json::Value::Null,
        "sound until now"
    );
    // Everything into the file itself (the WAL holds the newest pages until a checkpoint),
    // then every other page after the first overwritten.
    {
        let conn = rusqlite::Connection::open(&db).unwrap();
        conn.query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |_| Ok(()))
            .unwrap();
    }
    let size = std::fs::metadata(&db).unwrap().len();
    assert!(size > 64 * 1024, "{size} bytes");
    let mut f = std::fs::OpenOptions::new().write(true).open(&db).unwrap();
    let mut page = 1;
    while page * 4096 < size {
        f.seek(SeekFrom::Start(page * 4096)).unwrap();
        let noise: Vec<u8> = (0..4096u64).map(|i| (i * 31 + page * 7) as u8).collect();
        f.write_all(&noise).unwrap();
        page += 2;
    }
    drop(f);
    let csv_rows =
        || std::fs::read_to_string(dir.path().join("samples.csv")).map_or(0, |t| t.lines().count());
    let mut said = serde_json::Value::Null;
    wait(
        "the damage said in the status",
        Box::new(|| {
            said = status();
            said["store"]["error"].as_str().is_some()
        }),
    );
    let error = said["store"]["error"].as_str().unwrap_or("").to_string();
    assert!(
        error.contains("is damaged")
            && error.contains("malformed")
            && error.contains("move the file aside"),
        "{said}"
    );
    // It stays said, and the CSV log goes on.
    let rows = csv_rows();
    wait(
        "more rows in samples.csv",
        Box::new(|| csv_rows() > rows + 2000),
    );
    assert_eq!(status()["store"]["error"].as_str(), Some(error.as_str()));
    child.kill().expect("the daemon stops");
    child.wait().expect("the daemon ends");
}
