//! The admin UI in a real browser: headless Chromium driven over WebDriver (chromedriver, started
//! here on a free port) against the real server. Skipped with a note when Chromium is not
//! installed, except under CI=true, where that fails the test (`scripts/install-browser.sh`
//! installs it). Screenshots of the main pages go to docs/admin/ (from the SQLite run).

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use fantoccini::{Client, ClientBuilder, Locator};
use serde_json::{json, Value};

use crate::admin::{set_password, ADMIN_EMAIL, PASSWORD};
use crate::helpers::{eventually, spawn_app_with, use_peers, Backend, TestApp};
use crate::on_both_backends;
use crate::peers::FakePeers;

const CHROMIUM: &str = "/usr/bin/chromium";
const CHROMEDRIVER: &str = "/usr/bin/chromedriver";
const IDENTITY: &str = "7d7e3c2a-1b5f-4f0e-9c1a-5a6b7c8d9e0f";
const OTHER_IDENTITY: &str = "0a9b8c7d-6e5f-4a3b-8c1d-2e3f4a5b6c7d";

/// A chromedriver process and a browser session on it; both end when this is dropped or closed.
struct Browser {
    client: Client,
    driver: Child,
    _profile: tempfile::TempDir,
}

fn installed(path: &str) -> bool {
    Path::new(path).exists()
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

impl Browser {
    /// `None` (after a note) when Chromium is missing outside CI.
    async fn start() -> Option<Browser> {
        if !installed(CHROMIUM) || !installed(CHROMEDRIVER) {
            if std::env::var("CI").is_ok_and(|v| v == "true") {
                panic!("CI=true but {CHROMIUM} or {CHROMEDRIVER} is missing (run scripts/install-browser.sh)");
            }
            eprintln!("skipping browser test: {CHROMIUM} and {CHROMEDRIVER} are needed (scripts/install-browser.sh)");
            return None;
        }
        let port = free_port();
        let driver = Command::new(CHROMEDRIVER)
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start chromedriver");
        let profile = tempfile::tempdir().expect("profile dir");
        let args = vec![
            "--headless".to_string(),
            "--no-sandbox".into(),
            "--disable-gpu".into(),
            "--disable-quic".into(),
            "--no-first-run".into(),
            "--disable-background-networking".into(),
            "--disable-component-update".into(),
            "--disable-sync".into(),
            "--disable-dev-shm-usage".into(),
            "--window-size=1280,1000".into(),
            format!("--user-data-dir={}", profile.path().display()),
        ];
        let mut caps = serde_json::Map::new();
        caps.insert(
            "goog:chromeOptions".into(),
            json!({"binary": CHROMIUM, "args": args}),
        );
        let url = format!("http://127.0.0.1:{port}");
        let connector = hyper_util::client::legacy::connect::HttpConnector::new();
        let mut last_error = None;
        for _ in 0..100 {
            match ClientBuilder::new(connector.clone())
                .capabilities(caps.clone())
                .connect(&url)
                .await
            {
                Ok(client) => {
                    return Some(Browser {
                        client,
                        driver,
                        _profile: profile,
                    })
                }
                Err(err) => last_error = Some(err),
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        panic!("chromedriver did not start a session: {last_error:?}");
    }

    async fn close(mut self) {
        let _ = self.client.clone().close().await;
        let _ = self.driver.kill();
        let _ = self.driver.wait();
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        let _ = self.driver.kill();
    }
}

/// The page as the test drives it.
struct Ui {
    b: Client,
    base: String,
    screenshots: Option<PathBuf>,
}

impl Ui {
    async fn go(&self, path: &str) {
        self.b.goto(&format!("{}{path}", self.base)).await.unwrap();
    }

    async fn fill(&self, id: &str, text: &str) {
        let field = self.b.find(Locator::Id(id)).await.unwrap();
        field.clear().await.unwrap();
        field.send_keys(text).await.unwrap();
    }

    /// Clicks and, when that loads another page, waits for it.
    async fn click(&self, css: &str) {
        let before = self.b.find(Locator::Css("main h1")).await.unwrap();
        self.b
            .find(Locator::Css(css))
            .await
            .unwrap()
            .click()
            .await
            .unwrap();
        self.wait_until_gone(before).await;
    }

    /// Submits the page's main form and waits for the next page (a new URL, or the same one
    /// answered again when the form comes back with errors).
    async fn submit(&self) {
        let before = self.b.find(Locator::Css("main h1")).await.unwrap();
        self.click("main form.card button[type=submit]").await;
        self.wait_until_gone(before).await;
    }

    /// Waits until `element` is no longer on the page: the click it followed loaded another.
    async fn wait_until_gone(&self, element: fantoccini::elements::Element) {
        for _ in 0..200 {
            if element.text().await.is_err() {
                return;
            }
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
        panic!("the page did not change");
    }

    async fn source(&self) -> String {
        self.b.source().await.unwrap()
    }

    async fn path(&self) -> String {
        self.b.current_url().await.unwrap().path().to_string()
    }

    async fn text_of(&self, css: &str) -> String {
        self.b
            .find(Locator::Css(css))
            .await
            .unwrap()
            .text()
            .await
            .unwrap()
    }

    async fn screenshot(&self, name: &str) {
        if let Some(dir) = &self.screenshots {
            let png = self.b.screenshot().await.unwrap();
            std::fs::write(dir.join(format!("{name}.png")), png).unwrap();
        }
    }
}

/// A few milliseconds of silence as a WAV file.
fn wav_file(dir: &Path) -> PathBuf {
    let samples = 800u32;
    let mut bytes = Vec::new();
    bytes.extend_from_slice(b"RIFF");
    bytes.extend_from_slice(&(36 + samples * 2).to_le_bytes());
    bytes.extend_from_slice(b"WAVEfmt ");
    bytes.extend_from_slice(&16u32.to_le_bytes());
    bytes.extend_from_slice(&1u16.to_le_bytes());
    bytes.extend_from_slice(&1u16.to_le_bytes());
    bytes.extend_from_slice(&8000u32.to_le_bytes());
    bytes.extend_from_slice(&16000u32.to_le_bytes());
    bytes.extend_from_slice(&2u16.to_le_bytes());
    bytes.extend_from_slice(&16u16.to_le_bytes());
    bytes.extend_from_slice(b"data");
    bytes.extend_from_slice(&(samples * 2).to_le_bytes());
    bytes.resize(bytes.len() + samples as usize * 2, 0);
    let path = dir.join("welcome.wav");
    std::fs::write(&path, bytes).unwrap();
    path
}

async fn add_message(ui: &Ui, set: &str, seq: &str, lang: &str, text: &str, audio: Option<&Path>) {
    ui.go(&format!("/admin/message-sets/{set}/messages")).await;
    ui.fill("sequence_number", seq).await;
    ui.fill("lang", lang).await;
    ui.fill("text_content", text).await;
    if let Some(audio) = audio {
        let input = ui.b.find(Locator::Id("audio")).await.unwrap();
        input.send_keys(&audio.display().to_string()).await.unwrap();
    }
    ui.submit().await;
    let errors =
        ui.b.find_all(Locator::Css(".field-error, .notice.error"))
            .await
            .unwrap();
    let mut shown = Vec::new();
    for e in errors {
        shown.push(e.text().await.unwrap());
    }
    assert_eq!(
        ui.path().await,
        format!("/admin/message-sets/{set}"),
        "{shown:?}"
    );
}

async fn subscribe(app: &TestApp, set: i64, identity: &str) -> String {
    let body = json!({"identity": identity, "messageset": set, "lang": "eng"});
    let created = app
        .post("/api/v1/subscriptions/", body)
        .await
        .expect(201)
        .json();
    created["id"].as_str().unwrap().to_string()
}

async fn sign_in_and_build_content(ui: &Ui) -> String {
    ui.go("/admin").await;
    assert_eq!(ui.path().await, "/admin/login");
    ui.screenshot("login").await;
    ui.fill("email", ADMIN_EMAIL).await;
    ui.fill("password", PASSWORD).await;
    ui.submit().await;
    assert_eq!(ui.path().await, "/admin");

    ui.go("/admin/schedules/new").await;
    ui.fill("minute", "0").await;
    ui.fill("hour", "8").await;
    ui.fill("day_of_week", "1,4").await;
    ui.submit().await;
    assert!(ui.path().await.starts_with("/admin/schedules/"));
    assert_eq!(
        ui.text_of("p.reading").await,
        "Mondays and Thursdays at 08:00 UTC"
    );
    let due = ui.b.find_all(Locator::Css("main ol li")).await.unwrap();
    assert_eq!(due.len(), 5, "five next due times");
    ui.screenshot("schedule").await;

    ui.go("/admin/message-sets/new").await;
    ui.fill("short_name", "prebirth").await;
    ui.fill("label", "Pregnancy messages").await;
    ui.submit().await;
    let path = ui.path().await;
    let set = path
        .strip_prefix("/admin/message-sets/")
        .expect("the new set's grid")
        .to_string();
    ui.go("/admin/message-sets").await;
    assert!(ui.source().await.contains("Pregnancy messages"));
    ui.screenshot("message-sets").await;
    set
}

/// Messages in two languages, audio by form and in a cell; the grid shows the gap.
async fn fill_the_grid(app: &TestApp, ui: &Ui, set: &str, audio: &Path) {
    add_message(ui, set, "1", "eng", "Welcome <b>mum</b>", None).await;
    add_message(ui, set, "2", "eng", "Week two", Some(audio)).await;
    add_message(ui, set, "1", "zul", "Siyakwamukela", None).await;

    // Audio uploaded in the grid's own cell keeps the message's text.
    let cell = "form.cell-upload:has(input[name=lang][value=zul])";
    let file =
        ui.b.find(Locator::Css(&format!("{cell} input[type=file]")))
            .await
            .unwrap();
    file.send_keys(&audio.display().to_string()).await.unwrap();
    ui.click(&format!("{cell} button")).await;
    assert_eq!(ui.text_of("p.notice").await, "Saved.");
    let players =
        ui.b.find_all(Locator::Css("table.grid audio[controls]"))
            .await
            .unwrap();
    assert_eq!(players.len(), 2, "eng #2 and zul #1 have audio");
    assert!(ui.source().await.contains("Siyakwamukela"));

    let gaps =
        ui.b.find_all(Locator::Css("table.grid td.gap"))
            .await
            .unwrap();
    assert_eq!(gaps.len(), 1, "zul misses #2");
    assert!(ui.text_of("p.notice.error").await.contains("zul #2"));
    let source = ui.source().await;
    assert!(
        source.contains("Welcome &lt;b&gt;mum&lt;/b&gt;"),
        "text is escaped"
    );
    let player =
        ui.b.find(Locator::Css("table.grid audio[controls]"))
            .await
            .unwrap();
    let src = player.attr("src").await.unwrap().expect("audio src");
    let audio_bytes = app
        .client
        .get(app.url(&src))
        .send()
        .await
        .unwrap()
        .bytes()
        .await
        .unwrap();
    assert_eq!(
        audio_bytes.len(),
        std::fs::metadata(audio).unwrap().len() as usize
    );
    ui.screenshot("grid").await;
}

/// A send that fails for good becomes a failed task; re-queued from the UI it goes out.
async fn requeue_a_failed_send(app: &TestApp, peers: &FakePeers, ui: &Ui, set: i64) {
    let failing = subscribe(app, set, IDENTITY).await;
    peers.sender_down(Some(500));
    app.post(&format!("/api/v1/subscriptions/{failing}/send"), json!({}))
        .await
        .expect(201);
    eventually("the send fails for good", || async {
        app.count("/api/v1/failed-tasks/").await == 1
    })
    .await;
    peers.sender_down(None);
    ui.go("/admin/failed-tasks").await;
    assert!(ui.source().await.contains("send_message"));
    ui.screenshot("failed-tasks").await;
    ui.click("form.inline button.danger").await;
    assert_eq!(ui.text_of("p.notice").await, "Re-queued.");
    eventually("the re-queued send goes out", || async {
        peers.outbounds().len() == 1
    })
    .await;
    assert_eq!(app.count("/api/v1/failed-tasks/").await, 0);
}

/// Find a subscription by identity and deactivate it, after confirming.
async fn deactivate_a_subscription(app: &TestApp, ui: &Ui, set: i64) {
    let other = subscribe(app, set, OTHER_IDENTITY).await;
    ui.go("/admin/subscriptions").await;
    ui.fill("q", OTHER_IDENTITY).await;
    ui.click("form.search button").await;
    ui.click(&format!("a[href='/admin/subscriptions/{other}']"))
        .await;
    ui.click("form.action button").await;
    assert!(ui.text_of("p.confirm").await.starts_with("Deactivate"));
    ui.click("main form.inline button.danger").await;
    assert!(ui.source().await.contains("inactive"));
    assert!(
        ui.source().await.contains("subscription.updated"),
        "the change is in the history"
    );
    ui.screenshot("subscription").await;
    let after: Value = app
        .get(&format!("/api/v1/subscriptions/{other}/"))
        .await
        .expect(200)
        .json();
    assert_eq!(after["active"], false);
    assert!(after["updated_by"].is_i64(), "{after}");
}

async fn scenario(app: &TestApp, peers: &FakePeers, ui: &Ui, audio: &Path) {
    let set = sign_in_and_build_content(ui).await;
    fill_the_grid(app, ui, &set, audio).await;
    let set: i64 = set.parse().unwrap();
    requeue_a_failed_send(app, peers, ui, set).await;
    deactivate_a_subscription(app, ui, set).await;
    operations_pages(app, ui).await;
}

/// The callbacks and integration groups pages, with one of each to show.
async fn operations_pages(app: &TestApp, ui: &Ui) {
    let group = json!({"name": "haplo", "method": "poll", "title": "Haplo case notes",
                       "event_types": ["subscription.*"]});
    app.post("/api/v1/integration-groups/", group)
        .await
        .expect(201);
    let now = sbm::store::now();
    let mut tx = app.db.begin().await.unwrap();
    sbm::store::integrations::insert_error(
        tx.conn(),
        "haplo",
        "poll",
        "a batch token was not recognised",
        json!({}),
        now,
    )
    .await
    .unwrap();
    let (owner, _) = sbm::auth::create_user(&mut tx, "callback-owner@example.org", false)
        .await
        .unwrap();
    let owner = owner.id;
    sbm::store::events::pending_callback(
        tx.conn(),
        "send.*",
        "send",
        "https://crm.example.org/hooks/sbm",
        864_000,
        owner,
        now,
    )
    .await
    .unwrap();
    tx.commit().await.unwrap();
    ui.go("/admin/integrations").await;
    assert!(ui.source().await.contains("Haplo case notes"));
    ui.screenshot("integrations").await;
    ui.click("a[href='/admin/integrations/haplo']").await;
    ui.click("main form.inline button").await;
    assert_eq!(ui.text_of("p.notice").await, "Done.");
    ui.go("/admin/callbacks").await;
    assert!(ui
        .source()
        .await
        .contains("https://crm.example.org/hooks/sbm"));
    ui.screenshot("callbacks").await;

    ui.go("/admin").await;
    let dashboard = ui.source().await;
    assert!(
        dashboard.contains("1 ok"),
        "the re-queued send counts: {dashboard}"
    );
    assert!(dashboard.contains("prebirth"));
    ui.screenshot("dashboard").await;

    // The same pages on a phone-sized window.
    ui.b.set_window_size(400, 860).await.unwrap();
    ui.go("/admin/subscriptions").await;
    ui.screenshot("subscriptions-phone").await;
}

async fn an_editor_works_through_the_admin_ui_in_a_browser(backend: Backend) {
    let Some(browser) = Browser::start().await else {
        return;
    };
    let peers = FakePeers::start().await;
    let Some(app) = spawn_app_with(backend, |config| {
        use_peers(config, &peers);
        config.peers.scheduler_url = None;
    })
    .await
    else {
        browser.close().await;
        return;
    };
    peers.add_address(IDENTITY, "+27820000001");
    peers.add_address(OTHER_IDENTITY, "+27820000002");
    set_password(&app, ADMIN_EMAIL, PASSWORD).await;
    let files = tempfile::tempdir().unwrap();
    let audio = wav_file(files.path());
    let screenshots = (backend == Backend::Sqlite).then(|| {
        let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("docs/admin");
        std::fs::create_dir_all(&dir).unwrap();
        dir
    });
    let ui = Ui {
        b: browser.client.clone(),
        base: app.address.clone(),
        screenshots,
    };
    // Run the scenario as its own task so that a failed assertion still closes the browser.
    let app = std::sync::Arc::new(app);
    let peers = std::sync::Arc::new(peers);
    let outcome = {
        let (app, peers) = (app.clone(), peers.clone());
        tokio::spawn(async move { scenario(&app, &peers, &ui, &audio).await }).await
    };
    browser.close().await;
    if let Err(err) = outcome {
        std::panic::resume_unwind(err.into_panic());
    }
}

on_both_backends!(an_editor_works_through_the_admin_ui_in_a_browser);
