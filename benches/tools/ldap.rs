//! `ldap-binds`: what the directory gives a plain client, the yardstick for
//! Kisee's LDAP backend. Each connection binds, waits for the answer, and
//! binds again, as the backend's pooled connections do.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use ldap3::LdapConnAsync;
use serde_json::json;

use super::Outcome;

#[derive(Debug, clap::Args)]
pub(crate) struct Args {
    /// The directory, `ldap://127.0.0.1:PORT`.
    #[arg(long)]
    url: String,
    /// The DN to bind as.
    #[arg(long)]
    dn: String,
    /// Its password.
    #[arg(long)]
    password: String,
    /// Connections binding at once.
    #[arg(long, default_value_t = 8)]
    connections: usize,
    /// How long to bind, in seconds.
    #[arg(long, default_value_t = 5.0)]
    seconds: f64,
}

pub(crate) async fn run(args: Args) -> Outcome {
    let args = Arc::new(args);
    let binds = Arc::new(AtomicU64::new(0));
    let failures = Arc::new(AtomicU64::new(0));
    let stop = Arc::new(AtomicBool::new(false));

    // Connect every client first, so that the timed part is binds only.
    let mut clients = Vec::with_capacity(args.connections);
    for _ in 0..args.connections {
        let (conn, ldap) = LdapConnAsync::new(&args.url).await?;
        tokio::spawn(async move {
            if let Err(err) = conn.drive().await {
                eprintln!("ldap-binds: connection ended: {err}");
            }
        });
        clients.push(ldap);
    }

    let started = Instant::now();
    let mut workers = Vec::with_capacity(clients.len());
    for mut ldap in clients {
        let (args, binds, failures, stop) = (
            Arc::clone(&args),
            Arc::clone(&binds),
            Arc::clone(&failures),
            Arc::clone(&stop),
        );
        workers.push(tokio::spawn(async move {
            while !stop.load(Ordering::Relaxed) {
                let answer = ldap.simple_bind(&args.dn, &args.password).await;
                let counter = match answer.map(|result| result.rc) {
                    Ok(0) => &binds,
                    _ => &failures,
                };
                counter.fetch_add(1, Ordering::Relaxed);
            }
            let _ = ldap.unbind().await;
        }));
    }
    tokio::time::sleep(Duration::from_secs_f64(args.seconds)).await;
    stop.store(true, Ordering::Relaxed);
    for worker in workers {
        worker.await?;
    }
    let elapsed = started.elapsed().as_secs_f64();

    let binds = binds.load(Ordering::Relaxed);
    let report = json!({
        "binds": binds,
        "failures": failures.load(Ordering::Relaxed),
        "seconds": elapsed,
        "per_second": binds as f64 / elapsed,
    });
    println!("{report}");
    Ok(())
}
