//! A child process for the RabbitMQ crash tests (`tests/tests/rabbitmq.rs`).
//!
//! - `rabbit-node publish <store db> <exchange> <queue>`: an App on the
//!   store whose only handler is a RabbitMQ publisher (declaring `<queue>`
//!   bound to `#`), pages of 50, a checkpoint only when idle. Prints
//!   `PUBLISHING`.
//! - `rabbit-node consume <read db> <exchange> <queue> <stall after>`: a
//!   consumer into `Tally`. With `<stall after>` above 0, the hook after
//!   that many applied events prints `STALLED` and never returns: the
//!   run's transaction has committed, its messages are not acknowledged.
//!   Prints `CONSUMING`.
//!
//! Either runs until its stdin closes, then shuts down and prints
//! `STATUS handled=<n> duplicates=<n> dead=<n>` (the consumer) or `DONE`.

use annals::App;
use annals::handler::HandlerOptions;
use annals::rabbitmq::{Consumer, Publisher, Queue};
use annals_tests::rabbit::{Db, amqp_url};
use std::io::{Read, Write};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

#[tokio::main]
async fn main() {
    let args: Vec<String> = std::env::args().collect();
    let stdin_closed = || {
        tokio::task::spawn_blocking(|| {
            let mut sink = Vec::new();
            let _ = std::io::stdin().read_to_end(&mut sink);
        })
    };
    match args.get(1).map(String::as_str) {
        Some("publish") => {
            let (db, exchange, queue) = (Db::decode(&args[2]), &args[3], &args[4]);
            let store = db.store().await;
            let app = App::builder()
                .store(store)
                .publisher_with(
                    Publisher::new(amqp_url(), exchange.as_str())
                        .declare(Queue::new(queue.as_str()).bind("#")),
                    HandlerOptions::new()
                        .batch_size(50)
                        .checkpoint_every(u64::MAX, Duration::from_secs(3600)),
                )
                .build()
                .expect("the app builds");
            println!("PUBLISHING");
            let _ = stdin_closed().await;
            app.shutdown().await.expect("a clean shutdown");
            println!("DONE");
        }
        Some("consume") => {
            let (db, exchange, queue) = (Db::decode(&args[2]), &args[3], &args[4]);
            let stall_after: u64 = args[5].parse().expect("a count");
            let applied = AtomicU64::new(0);
            let consumer = Consumer::new(
                amqp_url(),
                exchange.as_str(),
                Queue::new(queue.as_str()).bind("#"),
            )
            .prefetch(20)
            .after_commit(move |_| {
                let n = applied.fetch_add(1, Ordering::SeqCst) + 1;
                if stall_after > 0 && n == stall_after {
                    println!("STALLED");
                    let _ = std::io::stdout().flush();
                    loop {
                        std::thread::sleep(Duration::from_secs(3600));
                    }
                }
            });
            let handle = db.pool().await.consume(consumer);
            println!("CONSUMING");
            let _ = stdin_closed().await;
            let status = handle.status();
            handle.shutdown().await;
            println!(
                "STATUS handled={} duplicates={} dead={}",
                status.handled, status.duplicates, status.dead_lettered
            );
        }
        _ => {
            eprintln!("usage: rabbit-node publish|consume ...");
            std::process::exit(2);
        }
    }
}
