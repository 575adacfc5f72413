//! Helpers of the connection tests: the sim's CA and token, kubeconfig text, a CONNECT proxy
//! on loopback that counts its tunnels, exec plugin scripts that count their runs, client keys
//! in each PEM form (openssl), and running real kubectl with the same kubeconfig.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use kube::config::Kubeconfig;
use orchscale_sim::Sim;
use secrecy::ExposeSecret;

/// What the sim's own kubeconfig holds.
pub struct SimAccess {
    /// `https://127.0.0.1:PORT`
    pub url: String,
    pub port: u16,
    /// certificate-authority-data (base64).
    pub ca_data: String,
    pub token: String,
}

pub fn sim_access(sim: &Sim) -> SimAccess {
    let kc = Kubeconfig::read_from(sim.kubeconfig()).unwrap();
    let cluster = kc.clusters[0].cluster.clone().unwrap();
    let user = kc.auth_infos[0].auth_info.clone().unwrap();
    let url = cluster.server.unwrap();
    let port = url.rsplit(':').next().unwrap().parse().unwrap();
    SimAccess {
        url,
        port,
        ca_data: cluster.certificate_authority_data.unwrap(),
        token: user.token.unwrap().expose_secret().to_string(),
    }
}

/// A kubeconfig with one context `c` of cluster `cl` and user `u`; `cluster` and `user` are
/// the YAML bodies (indented by 4) of the entries.
pub fn kubeconfig(cluster: &str, user: &str) -> String {
    format!(
        "apiVersion: v1\nkind: Config\ncurrent-context: c\nclusters:\n- name: cl\n  cluster:\n{}\nusers:\n- name: u\n  user:\n{}\ncontexts:\n- name: c\n  context: {{cluster: cl, user: u}}\n",
        indent(cluster),
        indent(user)
    )
}

pub fn indent(body: &str) -> String {
    body.lines()
        .map(|l| format!("    {l}"))
        .collect::<Vec<_>>()
        .join("\n")
}

/// The cluster entry body pointing at the sim with its CA.
pub fn sim_cluster(access: &SimAccess) -> String {
    format!(
        "server: {}\ncertificate-authority-data: {}",
        access.url, access.ca_data
    )
}

pub fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, text).unwrap();
    path
}

/// Writes an executable shell script.
pub fn script(dir: &Path, name: &str, body: &str) -> PathBuf {
    use std::os::unix::fs::PermissionsExt;
    let path = write(dir, name, &format!("#!/bin/sh\n{body}\n"));
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
    path
}

/// An exec plugin that appends a line to `counter` on each run and prints `credential`.
pub fn exec_plugin(dir: &Path, name: &str, counter: &Path, credential: &str) -> PathBuf {
    script(
        dir,
        name,
        &format!(
            "echo run >> '{}'\ncat <<'EOF'\n{credential}\nEOF",
            counter.display()
        ),
    )
}

/// How many times a plugin ran (lines in its counter file).
pub fn runs(counter: &Path) -> usize {
    std::fs::read_to_string(counter).map_or(0, |t| t.lines().count())
}

/// A proxy on 127.0.0.1 (HTTP CONNECT, or SOCKS5 without auth) that sends every tunnel to
/// `target` (whatever host the client asked for) and counts the tunnels.
pub struct ConnectProxy {
    pub port: u16,
    tunnels: Arc<AtomicUsize>,
}

impl ConnectProxy {
    pub fn start(target_port: u16) -> ConnectProxy {
        Self::start_kind(target_port, false)
    }

    pub fn start_socks5(target_port: u16) -> ConnectProxy {
        Self::start_kind(target_port, true)
    }

    fn start_kind(target_port: u16, socks5: bool) -> ConnectProxy {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let tunnels = Arc::new(AtomicUsize::new(0));
        let counter = tunnels.clone();
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(client) = stream else { continue };
                let counter = counter.clone();
                if socks5 {
                    std::thread::spawn(move || socks5_tunnel(client, target_port, &counter));
                } else {
                    std::thread::spawn(move || tunnel(client, target_port, &counter));
                }
            }
        });
        ConnectProxy { port, tunnels }
    }

    pub fn tunnels(&self) -> usize {
        self.tunnels.load(Ordering::SeqCst)
    }

    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    pub fn socks5_url(&self) -> String {
        format!("socks5://127.0.0.1:{}", self.port)
    }
}

fn tunnel(mut client: TcpStream, target_port: u16, counter: &AtomicUsize) {
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        match client.read(&mut byte) {
            Ok(1) => head.push(byte[0]),
            _ => return,
        }
    }
    if !head.starts_with(b"CONNECT ") {
        let _ = client.write_all(b"HTTP/1.1 405 Method Not Allowed\r\ncontent-length: 0\r\n\r\n");
        return;
    }
    let Ok(server) = TcpStream::connect(("127.0.0.1", target_port)) else {
        let _ = client.write_all(b"HTTP/1.1 502 Bad Gateway\r\ncontent-length: 0\r\n\r\n");
        return;
    };
    counter.fetch_add(1, Ordering::SeqCst);
    if client
        .write_all(b"HTTP/1.1 200 Connection established\r\n\r\n")
        .is_err()
    {
        return;
    }
    pipe(client, server);
}

/// SOCKS5 (RFC 1928), no authentication, CONNECT only.
fn socks5_tunnel(mut client: TcpStream, target_port: u16, counter: &AtomicUsize) {
    let mut head = [0u8; 2];
    if client.read_exact(&mut head).is_err() || head[0] != 5 {
        return;
    }
    let mut methods = vec![0u8; usize::from(head[1])];
    if client.read_exact(&mut methods).is_err() || client.write_all(&[5, 0]).is_err() {
        return;
    }
    let mut request = [0u8; 4];
    if client.read_exact(&mut request).is_err() || request[1] != 1 {
        return;
    }
    let address_len = match request[3] {
        1 => 4,
        4 => 16,
        3 => {
            let mut len = [0u8; 1];
            if client.read_exact(&mut len).is_err() {
                return;
            }
            usize::from(len[0])
        }
        _ => return,
    };
    let mut rest = vec![0u8; address_len + 2];
    if client.read_exact(&mut rest).is_err() {
        return;
    }
    let Ok(server) = TcpStream::connect(("127.0.0.1", target_port)) else {
        let _ = client.write_all(&[5, 5, 0, 1, 0, 0, 0, 0, 0, 0]);
        return;
    };
    counter.fetch_add(1, Ordering::SeqCst);
    if client.write_all(&[5, 0, 0, 1, 127, 0, 0, 1, 0, 0]).is_err() {
        return;
    }
    pipe(client, server);
}

/// Copies both ways until each side closes.
fn pipe(client: TcpStream, server: TcpStream) {
    let (mut c2, mut s2) = (client.try_clone().unwrap(), server.try_clone().unwrap());
    let up = std::thread::spawn(move || {
        let _ = std::io::copy(&mut c2, &mut s2);
        let _ = s2.shutdown(std::net::Shutdown::Write);
    });
    let (mut s3, mut c3) = (server, client);
    let _ = std::io::copy(&mut s3, &mut c3);
    let _ = c3.shutdown(std::net::Shutdown::Write);
    let _ = up.join();
}

/// A port nothing listens on.
pub fn dead_port() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    listener.local_addr().unwrap().port()
}

/// Runs openssl; `None` when it is missing (the caller skips, or fails under CI).
pub fn openssl(dir: &Path, args: &[&str]) -> Option<()> {
    let out = Command::new("openssl")
        .args(args)
        .current_dir(dir)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .output()
        .ok()?;
    assert!(
        out.status.success(),
        "openssl {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    Some(())
}

/// Client certificates with keys in PKCS#8 (RSA), PKCS#1 (RSA) and SEC1 (EC) PEM, plus a
/// second, unrelated CA certificate. Files in `dir`: cert.pem, pkcs8.pem, pkcs1.pem,
/// ec-cert.pem, ec.pem, other-ca.pem.
pub fn make_keys(dir: &Path) -> Option<()> {
    openssl(
        dir,
        &[
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-keyout",
            "pkcs8.pem",
            "-out",
            "cert.pem",
            "-subj",
            "/CN=orchscale-test",
            "-days",
            "2",
        ],
    )?;
    openssl(
        dir,
        &["rsa", "-in", "pkcs8.pem", "-traditional", "-out", "pkcs1.pem"],
    )?;
    openssl(
        dir,
        &[
            "ecparam",
            "-name",
            "prime256v1",
            "-genkey",
            "-noout",
            "-out",
            "ec.pem",
        ],
    )?;
    openssl(
        dir,
        &[
            "req",
            "-x509",
            "-key",
            "ec.pem",
            "-out",
            "ec-cert.pem",
            "-subj",
            "/CN=orchscale-ec",
            "-days",
            "2",
        ],
    )?;
    openssl(
        dir,
        &[
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-keyout",
            "other-ca-key.pem",
            "-out",
            "other-ca.pem",
            "-subj",
            "/CN=other-ca",
            "-days",
            "2",
        ],
    )?;
    Some(())
}

/// The kubectl on PATH (.ci/run puts a current one first).
pub fn kubectl_path() -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|dir| dir.join("kubectl"))
        .find(|p| p.is_file())
}

/// Runs `kubectl get deployment orchestrator` with the kubeconfig, env and flags of a case.
pub fn run_kubectl(kubectl: &Path, kubeconfig: &str, args: &[&str], env: &[(&str, &str)]) -> (bool, String) {
    let mut command = Command::new(kubectl);
    command
        .args([
            "get",
            "deployment",
            "orchestrator",
            "-n",
            "llm-orchestrator",
            "--request-timeout=20s",
        ])
        .args(args)
        .env("KUBECONFIG", kubeconfig)
        .env_remove("HTTPS_PROXY")
        .env_remove("https_proxy")
        .env_remove("NO_PROXY")
        .env_remove("no_proxy")
        .stdin(Stdio::null());
    for (k, v) in env {
        command.env(k, v);
    }
    let out = command.output().expect("kubectl runs");
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}
