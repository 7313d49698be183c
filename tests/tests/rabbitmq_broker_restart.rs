//! The broker restarted (`rabbitmqctl stop_app` / `start_app`) while events
//! are being written, published and consumed: the publisher and the
//! consumer say so in their status, reconnect, and every event lands in the
//! projection exactly once. A binary of its own: the restart cuts every
//! connection to the broker, other tests' too.

use annals::App;
use annals::handler::{HandlerOptions, HandlerState};
use annals::rabbitmq::{Consumer, ConsumerState, Publisher, Queue};
use annals_tests::rabbit::{Db, amqp_url, append, broker, cleanup, eventually, unique};
use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

fn rabbitmqctl(action: &str) {
    let out = Command::new("rabbitmqctl")
        .arg(action)
        .output()
        .unwrap_or_else(|e| panic!("rabbitmqctl {action} (it must be on PATH): {e}"));
    assert!(
        out.status.success(),
        "rabbitmqctl {action}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_broker_restart_under_load_loses_nothing_and_applies_nothing_twice() {
    let _ = broker().await;
    let (exchange, queue) = (unique("ex"), unique("q"));
    let dir = tempfile::tempdir().unwrap();
    let db = Db::Sqlite(dir.path().join("events.db"));
    let store = db.store().await;
    let pool = db.pool().await;
    let consumer = pool.consume(
        Consumer::new(amqp_url(), &exchange, Queue::new(&queue).bind("Tally.*")).prefetch(50),
    );
    let app = App::builder()
        .store(store.clone())
        .publisher_with(
            Publisher::new(amqp_url(), &exchange).declare(Queue::new(&queue).bind("Tally.*")),
            HandlerOptions::new().batch_size(100),
        )
        .build()
        .unwrap();

    // Writers append all along, while the broker goes away and comes back.
    let written = Arc::new(AtomicU64::new(0));
    let stop = Arc::new(AtomicBool::new(false));
    let writers: Vec<_> = (0..3)
        .map(|s| {
            let (store, written, stop) = (store.clone(), written.clone(), stop.clone());
            tokio::spawn(async move {
                let mut n = 0;
                while !stop.load(Ordering::SeqCst) {
                    // Negative: never the projection's poison.
                    append(&store, &format!("Tally-{s}"), [-n - 1, -n - 2]).await;
                    written.fetch_add(2, Ordering::SeqCst);
                    n += 2;
                    tokio::time::sleep(Duration::from_millis(5)).await;
                }
            })
        })
        .collect();
    eventually(Duration::from_secs(60), "some events applied", || async {
        pool.count().await > 100
    })
    .await;

    tokio::task::spawn_blocking(|| rabbitmqctl("stop_app"))
        .await
        .unwrap();
    let seen_down = {
        let mut publisher_down = false;
        let mut consumer_down = false;
        let deadline = std::time::Instant::now() + Duration::from_secs(30);
        while !(publisher_down && consumer_down) && std::time::Instant::now() < deadline {
            let status = app.handler_status().await;
            let p = status
                .iter()
                .find(|s| s.name == "rabbitmq-publisher")
                .unwrap();
            publisher_down |= matches!(p.state, HandlerState::Retrying { .. });
            consumer_down |= matches!(consumer.status().state, ConsumerState::Disconnected { .. });
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        (publisher_down, consumer_down)
    };
    tokio::task::spawn_blocking(|| rabbitmqctl("start_app"))
        .await
        .unwrap();
    assert_eq!(
        seen_down,
        (true, true),
        "both said the broker was away (publisher, consumer): {:?} {:?}",
        app.handler_status().await,
        consumer.status()
    );

    eventually(
        Duration::from_secs(60),
        "more events applied after the restart",
        || {
            let (pool, written) = (pool.clone(), written.clone());
            async move { pool.count().await as u64 > written.load(Ordering::SeqCst) / 2 + 200 }
        },
    )
    .await;
    stop.store(true, Ordering::SeqCst);
    for w in writers {
        w.await.unwrap();
    }
    let total = written.load(Ordering::SeqCst);
    let mut tick = 0u32;
    eventually(Duration::from_secs(120), "every event applied", || {
        tick += 1;
        let report = tick.is_multiple_of(250);
        let (pool, app, consumer) = (&pool, &app, &consumer);
        async move {
            let count = pool.count().await as u64;
            if report {
                eprintln!(
                    "{count}/{total} {:?} {:?}",
                    consumer.status(),
                    app.handler_status().await
                );
            }
            count >= total
        }
    })
    .await;
    let rows = pool.rows().await;
    assert_eq!(consumer.status().dead_lettered, 0);
    let ids: std::collections::HashSet<&str> = rows.iter().map(|r| r.event_id.as_str()).collect();
    assert_eq!(ids.len() as u64, total, "every event applied");
    assert_eq!(rows.len() as u64, total, "none applied twice");
    let status = app.handler_status().await;
    let p = status
        .iter()
        .find(|s| s.name == "rabbitmq-publisher")
        .unwrap();
    assert!(
        p.last_error.is_some(),
        "the publisher's status kept the broker's error"
    );
    assert!(consumer.status().last_error.is_some());
    app.shutdown().await.unwrap();
    consumer.shutdown().await;
    cleanup(&exchange, &[&queue]).await;
}
