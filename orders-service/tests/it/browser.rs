//! The support page in a real headless Chromium, against the real service binary with a
//! fresh database and a private broker: a lookup with Enter, the sections, source and
//! latency, raw JSON, hostile order fields shown as text, 404 and 400 messages, deep links
//! and the recent-orders list. It writes a screenshot of each state to
//! `target/screenshots/orders-page-*.png`; it must not loosen the page's policy to pass.

use std::time::Duration;

use fantoccini::elements::Element;
use fantoccini::key::Key;
use fantoccini::{Client, Locator};
use platform::testkit::Browser;
use serde_json::{Value, json};

use crate::harness::{ServiceProcess, Stack};

const CANONICAL_UID: &str = "b563feb7b2b84b6test";
const HOSTILE_UID: &str = "hostile1";
const HOSTILE_NAME: &str = r#"<img src=x onerror="document.title='pwned'">"#;
const HOSTILE_ITEM: &str = "<script>document.title='pwned'</script>";
const MODEL_JSON: &str = include_str!("../fixtures/model.json");
/// How long the page gets to reach a state the test waits for.
const PAGE_TIMEOUT: Duration = Duration::from_secs(15);

// ---------------------------------------------------------------------------------------
// The service under test.
// ---------------------------------------------------------------------------------------

/// The running service binary with its own database and broker; all are removed on drop.
pub(crate) fn canonical_order() -> Value {
    serde_json::from_str(MODEL_JSON).expect("model.json is JSON")
}

/// model.json with a new id and markup in the fields a support person reads first.
pub(crate) fn hostile_order() -> Value {
    let mut order = canonical_order();
    order["order_uid"] = json!(HOSTILE_UID);
    order["delivery"]["name"] = json!(HOSTILE_NAME);
    order["items"][0]["name"] = json!(HOSTILE_ITEM);
    order
}

async fn screenshot(client: &Client, state: &str) {
    platform::testkit::screenshot(client, &format!("orders-page-{state}")).await;
}

/// Waits until `script` (a function body that returns a boolean) returns true; on timeout
/// keeps a screenshot of the failure and panics with `what`.
async fn wait_until(client: &Client, what: &str, script: &str, args: Vec<Value>) {
    let deadline = tokio::time::Instant::now() + PAGE_TIMEOUT;
    loop {
        if let Ok(Value::Bool(true)) = client.execute(script, args.clone()).await {
            return;
        }
        if tokio::time::Instant::now() > deadline {
            screenshot(client, "failure").await;
            let message = text_of(client, "#message").await;
            let status = text_of(client, "#status").await;
            panic!(
                "timed out waiting for {what} (message {message:?}, status {status:?}); \
                 see target/screenshots/orders-page-failure.png"
            );
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// The exact `textContent` of the first element matching `css`, or "" when there is none.
async fn text_of(client: &Client, css: &str) -> String {
    match client.find(Locator::Css(css)).await {
        Ok(element) => element_text(&element).await,
        Err(_) => String::new(),
    }
}

async fn element_text(element: &Element) -> String {
    element
        .prop("textContent")
        .await
        .expect("textContent")
        .unwrap_or_default()
}

/// The order view shows `uid` (and the lookup in flight finished).
async fn wait_for_order_view(client: &Client, uid: &str) {
    wait_until(
        client,
        &format!("order {uid} to be shown"),
        "return !document.getElementById('order').hidden \
            && document.getElementById('order-uid').textContent === arguments[0] \
            && !document.body.classList.contains('busy');",
        vec![json!(uid)],
    )
    .await;
}

async fn wait_for_message(client: &Client, kind: &str) -> String {
    wait_until(
        client,
        &format!("a {kind} message"),
        "const m = document.getElementById('message'); \
         return !m.hidden && m.dataset.kind === arguments[0];",
        vec![json!(kind)],
    )
    .await;
    text_of(client, "#message").await
}

/// Types `id` into the search field and presses Enter.
async fn look_up(client: &Client, id: &str) {
    let input = client
        .find(Locator::Id("order-id"))
        .await
        .expect("the id field");
    input.clear().await.expect("clear the field");
    input.send_keys(id).await.expect("type the id");
    input.send_keys(&Key::Enter).await.expect("press Enter");
}

/// Everything the page does, against a service at `base` that holds the canonical and the
/// hostile order.
pub(crate) async fn exercise_page(client: &Client, base: &str, service: &ServiceProcess) {
    let canonical_body = service
        .wait_status(
            &format!("/api/v1/orders/{CANONICAL_UID}"),
            200,
            Duration::from_secs(30),
        )
        .await
        .text();

    // A lookup by typing and Enter.
    client.goto(&format!("{base}/")).await.expect("open /");
    client
        .wait()
        .at_most(PAGE_TIMEOUT)
        .for_element(Locator::Css("#recent-list li"))
        .await
        .expect("the recent-orders list");
    look_up(client, CANONICAL_UID).await;
    wait_for_order_view(client, CANONICAL_UID).await;
    for section in ["summary", "delivery", "payment", "items"] {
        let element = client.find(Locator::Id(section)).await.expect("a section");
        assert!(
            element.is_displayed().await.expect("displayed"),
            "{section} is shown"
        );
    }
    assert_eq!(
        text_of(client, "[data-field='delivery.name']").await,
        "Test Testov"
    );
    assert_eq!(
        text_of(client, "td[data-field='items.name']").await,
        "Mascaras"
    );
    assert_eq!(
        text_of(client, "[data-field='payment.amount']").await,
        "18.17 USD"
    );
    assert_eq!(
        text_of(client, "td[data-field='items.total_price']").await,
        "3.17 USD"
    );
    assert_eq!(
        text_of(client, "[data-field='payment.payment_dt']").await,
        "2021-11-26 06:22:07 UTC"
    );
    let source = text_of(client, "#source").await;
    assert!(
        source == "cache" || source == "database",
        "source {source:?}"
    );
    let latency = text_of(client, "#latency").await;
    let millis = latency
        .strip_suffix(" ms")
        .and_then(|number| number.parse::<f64>().ok());
    assert!(millis.is_some_and(|ms| ms >= 0.0), "latency {latency:?}");
    let url = client.current_url().await.expect("url");
    assert_eq!(url.query(), Some("id=b563feb7b2b84b6test"), "pushState");
    screenshot(client, "lookup").await;

    // The raw JSON is the exact body the API sent.
    let raw = client.find(Locator::Id("raw")).await.expect("raw");
    assert!(
        !raw.is_displayed().await.expect("displayed"),
        "hidden at first"
    );
    client
        .find(Locator::Id("raw-toggle"))
        .await
        .expect("toggle")
        .click()
        .await
        .expect("show raw JSON");
    assert!(
        raw.is_displayed().await.expect("displayed"),
        "shown after the toggle"
    );
    let raw_text = element_text(&raw).await;
    assert!(
        raw_text.contains(r#""order_uid":"b563feb7b2b84b6test""#),
        "{raw_text}"
    );
    assert_eq!(raw_text, canonical_body);
    assert_eq!(
        serde_json::from_str::<Value>(&raw_text).expect("raw JSON"),
        canonical_order()
    );
    client
        .execute(
            "arguments[0].scrollIntoView({block: 'center'});",
            vec![serde_json::to_value(&raw).expect("element reference")],
        )
        .await
        .expect("scroll to the raw JSON");
    screenshot(client, "raw-json").await;

    // Phone width: one column, still readable.
    client
        .set_window_size(390, 1000)
        .await
        .expect("phone width");
    client
        .execute("window.scrollTo(0, 0);", vec![])
        .await
        .expect("scroll to the top");
    let overflow = client
        .execute(
            "return document.documentElement.scrollWidth > window.innerWidth + 1;",
            vec![],
        )
        .await
        .expect("measure");
    assert_eq!(
        overflow,
        json!(false),
        "no sideways scrolling at phone width"
    );
    screenshot(client, "phone").await;
    client
        .set_window_size(1280, 1000)
        .await
        .expect("desktop width");

    // A deep link to a hostile order: its markup is text, nothing runs, no image appears.
    service
        .wait_status(
            &format!("/api/v1/orders/{HOSTILE_UID}"),
            200,
            Duration::from_secs(30),
        )
        .await;
    client
        .goto(&format!("{base}/?id={HOSTILE_UID}"))
        .await
        .expect("open the deep link");
    wait_for_order_view(client, HOSTILE_UID).await;
    assert_eq!(
        text_of(client, "[data-field='delivery.name']").await,
        HOSTILE_NAME
    );
    assert_eq!(
        text_of(client, "td[data-field='items.name']").await,
        HOSTILE_ITEM
    );
    let images = client
        .find_all(Locator::Css("#order img, #order script"))
        .await
        .expect("query");
    assert!(images.is_empty(), "markup from the order became elements");
    // Gives a broken image's error handler time to run, had one been created.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let title = client.title().await.expect("title");
    assert_ne!(title, "pwned");
    assert!(title.contains(HOSTILE_UID), "{title}");
    screenshot(client, "hostile").await;

    // Unknown id: 404.
    look_up(client, "doesnotexist").await;
    let message = wait_for_message(client, "not-found").await;
    assert_eq!(message, "No order with id “doesnotexist”.");
    let order = client.find(Locator::Id("order")).await.expect("order");
    assert!(
        !order.is_displayed().await.expect("displayed"),
        "no stale order"
    );
    screenshot(client, "not-found").await;

    // Malformed id: 400 with the problem's detail.
    let answer = service.get("/api/v1/orders/bad%20id!").await;
    assert_eq!(answer.status, 400, "{}", answer.text());
    let problem: Value = answer.json();
    let detail = problem["detail"].as_str().expect("detail");
    look_up(client, "bad id!").await;
    let message = wait_for_message(client, "invalid").await;
    assert_eq!(message, detail);
    screenshot(client, "bad-id").await;

    // A click in the recent-orders list opens that order.
    let entry = client
        .find(Locator::Css(&format!(
            "#recent-list a[data-order-uid='{CANONICAL_UID}']"
        )))
        .await
        .expect("the canonical order in the recent list");
    entry.click().await.expect("click the entry");
    wait_for_order_view(client, CANONICAL_UID).await;
    assert_eq!(
        text_of(client, "[data-field='delivery.name']").await,
        "Test Testov"
    );
    assert_eq!(
        entry.attr("aria-current").await.expect("attr").as_deref(),
        Some("true")
    );
    let url = client.current_url().await.expect("url");
    assert_eq!(url.query(), Some("id=b563feb7b2b84b6test"));
    screenshot(client, "recent").await;

    // Back goes to the previous lookup.
    client.back().await.expect("back");
    wait_for_message(client, "invalid").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn browser_support_page_shows_orders_as_text_with_errors_links_and_recent_list() {
    let stack = Stack::new().await;
    let service = ServiceProcess::start(&stack, &[]).await;
    for order in [canonical_order(), hostile_order()] {
        let uid = order["order_uid"].as_str().expect("order_uid").to_owned();
        stack
            .publish(Some(&uid), &serde_json::to_vec(&order).expect("json"))
            .await;
        service
            .wait_status(
                &format!("/api/v1/orders/{uid}"),
                200,
                Duration::from_secs(30),
            )
            .await;
    }
    let base = format!("http://{}", service.address);

    let browser = Browser::start("orders-browser-profile", 1280, 1000).await;
    exercise_page(&browser.client, &base, &service).await;
    browser.close().await;
}
