//! The `vorg` binary: its commands, its refusals in production, and SIGTERM.

use std::{
    io::{BufRead, BufReader},
    process::{Command, Stdio},
    time::Duration,
};

use reqwest::StatusCode;
use vorg_store::{Backend, testing::TestDb};

use crate::helpers::*;

fn vorg(db: &TestDb, dir: &std::path::Path) -> Command {
    let mut cmd = vorg_in(dir);
    cmd.env("DATABASE_URL", &db.url)
        .env("JWT_SECRET", JWT_SECRET);
    cmd
}

/// `vorg` with nothing configured but its data directory (so SQLite under `dir`).
fn vorg_in(dir: &std::path::Path) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_vorg"));
    cmd.env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("VORG_DATA_DIR", dir)
        .env("VORG_CONFIG", dir.join("absent.toml"));
    cmd
}

fn run(cmd: &mut Command) -> (bool, String, String) {
    let out = cmd.output().expect("run vorg");
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn temp_dir(tag: &str) -> std::path::PathBuf {
    let d = std::env::temp_dir().join(format!("vorg-cli-{tag}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

crate::both!(the_user_and_token_commands_manage_accounts_the_server_accepts);

async fn the_user_and_token_commands_manage_accounts_the_server_accepts(backend: Backend) {
    let db = TestDb::new(backend).await;
    let dir = temp_dir(&format!("users-{backend:?}"));
    let (ok, out, err) = run(vorg(&db, &dir).arg("migrate"));
    assert!(ok, "{err}");
    assert!(out.contains("migrations applied"), "{out}");
    let (ok, _, err) = run(vorg(&db, &dir)
        .args(["user", "create", "--email", "root@example.com", "--admin"])
        .env("VORG_USER_PASSWORD", PASSWORD));
    assert!(ok, "{err}");
    let (ok, _, err) = run(vorg(&db, &dir)
        .args([
            "user",
            "create",
            "--email",
            "e@example.com",
            "--role",
            "engineer",
        ])
        .env("VORG_USER_PASSWORD", "short"));
    assert!(
        !ok && err.contains("--password: must be at least 8 characters"),
        "{err}"
    );
    let (ok, _, err) = run(vorg(&db, &dir)
        .args([
            "user",
            "create",
            "--email",
            "e@example.com",
            "--role",
            "engineer",
        ])
        .env("VORG_USER_PASSWORD", PASSWORD));
    assert!(ok, "{err}");
    let (ok, out, _) = run(vorg(&db, &dir).args(["user", "grant", "e@example.com", "growth"]));
    assert!(ok && out.contains("engineer, growth"), "{out}");
    let (ok, _, err) = run(vorg(&db, &dir).args(["user", "revoke", "root@example.com", "admin"]));
    assert!(!ok && err.contains("last admin"), "{err}");
    let (ok, out, _) = run(vorg(&db, &dir).args(["user", "list"]));
    assert!(
        ok && out.contains("root@example.com") && out.contains("engineer, growth"),
        "{out}"
    );
    let (ok, out, err) = run(vorg(&db, &dir).args([
        "token",
        "create",
        "--email",
        "e@example.com",
        "--name",
        "bot",
        "--role",
        "engineer",
    ]));
    assert!(ok, "{err}");
    let secret = out.trim().to_owned();
    assert!(secret.starts_with("vorg_"), "{out}");
    let (ok, _, err) = run(vorg(&db, &dir).args([
        "token",
        "create",
        "--email",
        "e@example.com",
        "--name",
        "x",
        "--role",
        "admin",
    ]));
    assert!(!ok && err.contains("does not hold"), "{err}");

    let mut settings = test_settings(&db, dir.clone());
    settings.jwt_secret = Some(vorg_domain::Secret::new(JWT_SECRET));
    let mut app = TestApp::start(settings).await;
    let (status, me) = app.get("/auth/me", &secret).await;
    assert_eq!(status, StatusCode::OK, "{me}");
    assert_eq!(me["roles"], serde_json::json!(["engineer"]));
    let (_, login) = app.login("root@example.com", PASSWORD).await;
    let (_, audit) = app
        .get("/audit", login["access_token"].as_str().unwrap())
        .await;
    assert!(
        audit["items"]
            .as_array()
            .unwrap()
            .iter()
            .any(|e| e["actor"] == "cli" && e["action"] == "token.create"),
        "{audit}"
    );
    let (ok, _, err) = run(vorg(&db, &dir).args(["token", "revoke", &me["token_id"].to_string()]));
    assert!(ok, "{err}");
    // Revoked in another process: in force here within the token cache's TTL.
    tokio::time::sleep(vorg_store::ROLES_TTL + std::time::Duration::from_millis(50)).await;
    assert_eq!(
        app.get("/auth/me", &secret).await.0,
        StatusCode::UNAUTHORIZED
    );
    app.stop().await;
    let _ = std::fs::remove_dir_all(dir);
}

#[tokio::test]
async fn production_refuses_unsafe_settings_naming_each() {
    let db = TestDb::new(Backend::Sqlite).await;
    let dir = temp_dir("prod");
    let serve = |extra: &[(&str, &str)]| {
        let mut cmd = vorg(&db, &dir);
        cmd.env_remove("JWT_SECRET")
            .env("VORG_ENV", "production")
            .args(["serve", "--bind", "127.0.0.1:0"]);
        for (k, v) in extra {
            cmd.env(k, v);
        }
        run(&mut cmd)
    };
    let long = "k".repeat(40);
    let (ok, _, err) = serve(&[]);
    assert!(!ok && err.contains("JWT_SECRET is not set"), "{err}");
    let (ok, _, err) = serve(&[("JWT_SECRET", "short")]);
    assert!(!ok && err.contains("JWT_SECRET is 5 bytes"), "{err}");
    let (ok, _, err) = serve(&[("JWT_SECRET", &long), ("VORG_CORS_ORIGINS", "*")]);
    assert!(!ok && err.contains("VORG_CORS_ORIGINS"), "{err}");
    let (ok, _, err) = serve(&[("JWT_SECRET", &long)]);
    assert!(
        !ok && err.contains("signup is open") && err.contains("ADMIN_SIGNUP_SECRET"),
        "{err}"
    );
    assert!(!err.contains(&long), "secret printed");
    let _ = std::fs::remove_dir_all(dir);
}

#[tokio::test]
async fn sigterm_stops_the_server_cleanly_and_port_zero_is_logged() {
    let db = TestDb::new(Backend::Sqlite).await;
    let dir = temp_dir("sigterm");
    let mut child = vorg(&db, &dir)
        .args(["serve", "--bind", "127.0.0.1:0"])
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let stderr = child.stderr.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            let _ = tx.send(line);
        }
    });
    let mut port = None;
    let mut log = String::new();
    while port.is_none() {
        let line = rx
            .recv_timeout(Duration::from_secs(20))
            .expect("server log");
        log.push_str(&line);
        log.push('\n');
        if let Some(rest) = line.split("listening on http://127.0.0.1:").nth(1) {
            port = rest
                .split(|c: char| !c.is_ascii_digit())
                .next()
                .map(|p| p.parse::<u16>().unwrap());
        }
    }
    assert!(log.contains("store ready"), "{log}");
    let port = port.unwrap();
    let health = reqwest::get(format!("http://127.0.0.1:{port}/health"))
        .await
        .unwrap();
    assert_eq!(health.status(), StatusCode::OK);
    let kill = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(kill.success());
    let status = tokio::task::spawn_blocking(move || child.wait())
        .await
        .unwrap()
        .unwrap();
    assert!(status.success(), "exit status {status}");
    let rest: Vec<String> = rx.try_iter().collect();
    assert!(rest.iter().any(|l| l.contains("stopped")), "{rest:?}");
    let _ = std::fs::remove_dir_all(dir);
}

/// The front matter of minutes, parsed.
fn front_matter(markdown: &str) -> serde_json::Value {
    let rest = markdown.strip_prefix("---\n").expect("front matter");
    let (yaml, _) = rest.split_once("\n---\n").expect("end of front matter");
    serde_yaml::from_str(yaml).expect("front matter is YAML")
}

#[test]
fn vorg_meeting_standup_prints_minutes_on_a_fresh_data_dir() {
    let dir = temp_dir("meeting");
    let data = dir.join("data");
    let (ok, out, err) = run(vorg_in(&data).args(["meeting", "standup"]));
    assert!(ok, "{err}");
    let front = front_matter(&out);
    assert_eq!(front["meeting"], "standup", "{out}");
    assert_eq!(front["generated_by"], "personas", "{out}");
    assert!(out.contains("# Stand-up"), "{out}");
    assert!(
        err.contains("spoke (simulated/") && err.contains("status: succeeded"),
        "the run's log streams to stderr: {err}"
    );
    assert!(data.join("vorg.db").is_file(), "SQLite under the data dir");

    let file = dir.join("standup.json");
    std::fs::write(
        &file,
        r#"{"attendees": ["Avery"], "today": ["ship the meeting command"]}"#,
    )
    .unwrap();
    let (ok, out, err) = run(vorg_in(&data)
        .args(["meeting", "standup", "--json"])
        .arg(&file));
    assert!(ok, "{err}");
    assert_eq!(front_matter(&out)["generated_by"], "caller", "{out}");
    assert!(out.contains("ship the meeting command"), "{out}");

    let (ok, _, err) =
        run(vorg_in(&data).args(["meeting", "brainstorm", "--participant", "nobody.v1"]));
    assert!(
        !ok && err.contains("--participant nobody.v1: no such persona"),
        "{err}"
    );
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn vorg_meeting_exits_non_zero_with_the_runs_error() {
    let dir = temp_dir("meeting-fails");
    // Bind then drop: a port that refuses connections.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let (ok, out, err) = run(vorg_in(&dir.join("data"))
        .args(["meeting", "standup"])
        .env("OPENAI_API_KEY", "sk-test-0123456789abcdef")
        .env("OPENAI_BASE_URL", format!("http://127.0.0.1:{port}/v1"))
        .env("VORG_LLM_MAX_RETRIES", "0"));
    assert!(!ok, "{out}");
    assert!(out.is_empty(), "no minutes: {out}");
    assert!(
        err.contains("ended failed: openai") && err.contains("status: failed"),
        "{err}"
    );
    let _ = std::fs::remove_dir_all(dir);
}

const EXAMPLES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../examples/workflows");

#[test]
fn vorg_workflow_run_executes_each_example_and_prints_its_results() {
    let dir = temp_dir("workflow");
    let data = dir.join("data");
    for (file, key) in [
        ("meeting_cycle.dag.yaml", "all_hands"),
        ("meeting_cycle.graph.yaml", "allhands"),
        ("brainstorm.crew.yaml", "recommend"),
    ] {
        let (ok, out, err) = run(vorg_in(&data)
            .args(["workflow", "run"])
            .arg(format!("{EXAMPLES}/{file}"))
            .args(["--input", "topic=pricing"]));
        assert!(ok, "{file}: {err}");
        let out: serde_json::Value = serde_json::from_str(&out).expect("JSON results");
        assert!(out["results"][key].is_string(), "{file}: {out}");
        assert!(
            err.contains("status: succeeded"),
            "the log streams to stderr: {err}"
        );
    }
    let (ok, out, err) = run(vorg_in(&data)
        .args(["workflow", "run"])
        .arg(format!("{EXAMPLES}/brainstorm.chat.yaml"))
        .args(["-i", "topic=pricing"]));
    assert!(ok, "{err}");
    let out: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(out["results"][0]["speaker"], "user", "{out}");

    // An interrupt: the run waits for an approval this command cannot give.
    let (ok, _, err) = run(vorg_in(&data)
        .args(["workflow", "run"])
        .arg(format!("{EXAMPLES}/plan_review.graph.yaml"))
        .args(["-i", "topic=pricing"]));
    assert!(!ok && err.contains("waits for an approval"), "{err}");

    // Problems are listed before any run exists.
    let bad = dir.join("bad.yaml");
    std::fs::write(
        &bad,
        "engine: dag\nname: b\nsteps:\n  - { id: a, agent: nobody, prompt: p, depends_on: [z] }\n",
    )
    .unwrap();
    let (ok, _, err) = run(vorg_in(&data).args(["workflow", "check"]).arg(&bad));
    assert!(
        !ok && err.contains("steps[0].depends_on: unknown step \"z\""),
        "{err}"
    );
    let (ok, _, err) = run(vorg_in(&data)
        .args(["workflow", "run"])
        .arg(format!("{EXAMPLES}/meeting_cycle.dag.yaml")));
    assert!(
        !ok && err.contains("inputs.topic: required by the workflow"),
        "{err}"
    );
    let _ = std::fs::remove_dir_all(dir);
}
