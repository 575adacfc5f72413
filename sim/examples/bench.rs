//! Benchmark of the simulated API server (not a test; prints figures, asserts nothing):
//! GET throughput with concurrent clients, and watch fan-out (events delivered per second to
//! many concurrent watches).
//!
//! Run: `cargo run -p orchscale-sim --example bench [-- REQUESTS CLIENTS WATCHES EVENTS]`
//! (defaults 20000 32 200 50; add `--release` for production-like figures).

use std::sync::Arc;
use std::time::{Duration, Instant};

use base64::Engine;
use http_body_util::{BodyExt, Full};
use hyper::body::Bytes;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use orchscale_sim::{Sim, SimOptions};
use rustls::pki_types::CertificateDer;
use rustls::pki_types::pem::PemObject;

type HttpsClient = Client<hyper_rustls::HttpsConnector<HttpConnector>, Full<Bytes>>;

struct Target {
    client: HttpsClient,
    base: String,
    token: String,
}

fn field(kubeconfig: &str, name: &str) -> String {
    kubeconfig
        .lines()
        .find_map(|l| l.trim().strip_prefix(name).map(|v| v.trim().to_owned()))
        .unwrap_or_default()
}

fn target(sim: &Sim) -> Target {
    let text = std::fs::read_to_string(sim.kubeconfig()).expect("kubeconfig");
    let ca = base64::engine::general_purpose::STANDARD
        .decode(field(&text, "certificate-authority-data:"))
        .expect("CA data");
    let mut roots = rustls::RootCertStore::empty();
    for cert in CertificateDer::pem_slice_iter(&ca) {
        roots.add(cert.expect("CA PEM")).expect("CA");
    }
    let tls = rustls::ClientConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
        .with_safe_default_protocol_versions()
        .expect("versions")
        .with_root_certificates(roots)
        .with_no_client_auth();
    // HTTP/1.1 with a connection pool: one connection per concurrent client, as kubectl runs.
    let connector = hyper_rustls::HttpsConnectorBuilder::new()
        .with_tls_config(tls)
        .https_only()
        .enable_http1()
        .build();
    Target {
        client: Client::builder(TokioExecutor::new()).build(connector),
        base: field(&text, "server:"),
        token: field(&text, "token:"),
    }
}

impl Target {
    fn request(
        &self,
        method: &str,
        path: &str,
        content_type: &str,
        body: String,
    ) -> hyper::Request<Full<Bytes>> {
        hyper::Request::builder()
            .method(method)
            .uri(format!("{}{path}", self.base))
            .header("authorization", format!("Bearer {}", self.token))
            .header("content-type", content_type)
            .body(Full::new(Bytes::from(body)))
            .expect("request")
    }
}

async fn get_throughput(target: Arc<Target>, requests: usize, clients: usize) {
    let path = "/apis/apps/v1/namespaces/llm-orchestrator/deployments/orchestrator";
    let started = Instant::now();
    let mut tasks = Vec::new();
    for worker in 0..clients {
        let target = target.clone();
        let share = requests / clients + usize::from(worker < requests % clients);
        tasks.push(tokio::spawn(async move {
            let mut failures = 0usize;
            for _ in 0..share {
                let request = target.request("GET", path, "application/json", String::new());
                match target.client.request(request).await {
                    Ok(response) if response.status() == 200 => {
                        let _ = response.into_body().collect().await;
                    }
                    _ => failures += 1,
                }
            }
            failures
        }));
    }
    let mut failures = 0;
    for task in tasks {
        failures += task.await.unwrap_or(usize::MAX / clients);
    }
    let elapsed = started.elapsed();
    println!(
        "GET: {requests} requests, {clients} concurrent clients, {:.2} s, {:.0} requests/s, {failures} failures",
        elapsed.as_secs_f64(),
        requests as f64 / elapsed.as_secs_f64()
    );
}

async fn watch_fan_out(sim: &Sim, target: Arc<Target>, watches: usize, events: usize) {
    let collection = "/api/v1/namespaces/llm-orchestrator/configmaps";
    let rv = sim.store().resource_version();
    let path = format!("{collection}?watch=true&resourceVersion={rv}&fieldSelector=metadata.name%3Dbench");
    let mut streams = Vec::new();
    for _ in 0..watches {
        let request = target.request("GET", &path, "application/json", String::new());
        streams.push(target.client.request(request).await.expect("watch opens"));
    }
    let readers: Vec<_> = streams
        .into_iter()
        .map(|response| {
            tokio::spawn(async move {
                let mut body = response.into_body();
                let mut lines = 0;
                while lines < events {
                    match tokio::time::timeout(Duration::from_secs(60), body.frame()).await {
                        Ok(Some(Ok(frame))) => {
                            if let Ok(data) = frame.into_data() {
                                lines += data.iter().filter(|b| **b == b'\n').count();
                            }
                        }
                        _ => break,
                    }
                }
                lines
            })
        })
        .collect();
    let started = Instant::now();
    let create = r#"{"metadata":{"name":"bench"},"data":{"n":"0"}}"#.to_owned();
    let request = target.request("POST", collection, "application/json", create);
    let _ = target.client.request(request).await;
    for n in 1..events {
        let patch = format!(r#"{{"data":{{"n":"{n}"}}}}"#);
        let request = target.request(
            "PATCH",
            &format!("{collection}/bench"),
            "application/merge-patch+json",
            patch,
        );
        let _ = target.client.request(request).await;
    }
    let mut delivered = 0;
    for reader in readers {
        delivered += reader.await.unwrap_or(0);
    }
    let elapsed = started.elapsed();
    println!(
        "watch fan-out: {watches} watches x {events} events, {delivered} delivered in {:.2} s, {:.0} events/s",
        elapsed.as_secs_f64(),
        delivered as f64 / elapsed.as_secs_f64()
    );
}

fn main() {
    let args: Vec<usize> = std::env::args().skip(1).filter_map(|a| a.parse().ok()).collect();
    let arg = |i: usize, default: usize| args.get(i).copied().unwrap_or(default);
    let (requests, clients, watches, events) = (arg(0, 20_000), arg(1, 32), arg(2, 200), arg(3, 50));
    let sim = Sim::start(SimOptions::default()).expect("sim starts");
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("client runtime");
    let target = Arc::new(target(&sim));
    runtime.block_on(get_throughput(target.clone(), requests, clients));
    runtime.block_on(watch_fan_out(&sim, target, watches, events));
}
