//! The kubeconfig matrix: each case (a kubeconfig, flags, environment) runs with the plugin
//! (`status`) and with real kubectl (`get deployment`) against the simulated cluster; both must
//! connect, or both must refuse, and the plugin's refusal must name the cause.
//!
//! The rules imitated are client-go's: clientcmd's overrides and merging of `KUBECONFIG` lists
//! (tools/clientcmd/loader.go `Load`, client_config.go `getContext`/`getAuthInfo`/`getCluster`),
//! transport.TLSConfigFor ("specifying a root certificates file with the insecure flag is not
//! allowed"), plugin/pkg/client/auth/exec/exec.go (`refreshCredsLocked`: apiVersion check,
//! interactiveMode, installHint), the proxy choice of golang.org/x/net/http/httpproxy
//! (`config.useProxy`: loopback and localhost never proxied, NO_PROXY suffix/port rules) and
//! client-go's `proxy-url` (used as given, NO_PROXY not applied).

use std::path::{Path, PathBuf};

use crate::conn_support::*;
use crate::harness::{run_with, sim, skip_or_fail};

struct Case {
    name: &'static str,
    /// The KUBECONFIG value (a path or a list).
    kubeconfig: String,
    args: Vec<String>,
    env: Vec<(String, String)>,
    connects: bool,
    /// Part of the plugin's stderr when it refuses (lower case).
    cause: &'static str,
    /// An exec plugin's run counter: each tool runs it exactly once.
    counter: Option<PathBuf>,
    /// Whether the connection goes through the test's CONNECT proxy.
    via_proxy: Option<bool>,
    /// A file written just before the case runs (a token file rotating).
    before: Option<(PathBuf, String)>,
}

fn case(name: &'static str, kubeconfig: &Path, connects: bool, cause: &'static str) -> Case {
    Case {
        name,
        kubeconfig: kubeconfig.display().to_string(),
        args: Vec::new(),
        env: Vec::new(),
        connects,
        cause,
        counter: None,
        via_proxy: None,
        before: None,
    }
}

impl Case {
    fn args(mut self, args: &[&str]) -> Case {
        self.args = args.iter().map(|s| s.to_string()).collect();
        self
    }
    fn env(mut self, env: &[(&str, &str)]) -> Case {
        self.env = env.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        self
    }
    fn counter(mut self, counter: &Path) -> Case {
        self.counter = Some(counter.to_path_buf());
        self
    }
    fn via_proxy(mut self, via: bool) -> Case {
        self.via_proxy = Some(via);
        self
    }
    fn before(mut self, path: &Path, text: &str) -> Case {
        self.before = Some((path.to_path_buf(), text.to_string()));
        self
    }
}

fn exec_user(command: &Path, api: &str, mode: Option<&str>, extra: &str) -> String {
    let mode = mode.map_or(String::new(), |m| format!("\n  interactiveMode: {m}"));
    format!(
        "exec:\n  apiVersion: client.authentication.k8s.io/{api}\n  command: {}{mode}{extra}",
        command.display()
    )
}

fn credential(api: &str, token: &str, extra: &str) -> String {
    format!(
        "{{\"apiVersion\":\"client.authentication.k8s.io/{api}\",\"kind\":\"ExecCredential\",\"status\":{{\"token\":\"{token}\"{extra}}}}}"
    )
}

#[test]
fn conn_kubeconfig_matrix_plugin_and_kubectl_agree() {
    let Some(kubectl) = kubectl_path() else {
        skip_or_fail("kubectl not found on PATH");
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    if make_keys(d).is_none() {
        skip_or_fail("openssl not found to make client keys");
        return;
    }
    let sim = sim();
    let a = sim_access(&sim);
    let good = sim_cluster(&a);
    let token = format!("token: {}", a.token);
    let proxy = ConnectProxy::start(a.port);
    let dead = dead_port();
    let kc = |name: &str, cluster: &str, user: &str| write(d, name, &kubeconfig(cluster, user));
    let file = |name: &str, text: &str| write(d, name, text);
    let b64 = |path: &str| {
        use base64::Engine;
        base64::engine::general_purpose::STANDARD.encode(std::fs::read(d.join(path)).unwrap())
    };
    let mut cases = Vec::new();

    // Tokens.
    cases.push(case("inline token", &kc("token.yaml", &good, &token), true, ""));
    cases.push(case(
        "wrong token",
        &kc("bad-token.yaml", &good, "token: wrong"),
        false,
        "unauthorized",
    ));
    let tf = file("token-nl", &format!("{}\n", a.token));
    cases.push(case(
        "tokenFile with a trailing newline",
        &kc("tokenfile.yaml", &good, &format!("tokenFile: {}", tf.display())),
        true,
        "",
    ));
    cases.push(case(
        "tokenFile missing",
        &kc(
            "tokenfile-missing.yaml",
            &good,
            &format!("tokenFile: {}", d.join("nope").display()),
        ),
        false,
        "tokenfile",
    ));
    let rotating = d.join("rotating");
    let rotating_kc = kc(
        "rotating.yaml",
        &good,
        &format!("tokenFile: {}", rotating.display()),
    );
    cases.push(
        case(
            "rotating token file: old token",
            &rotating_kc,
            false,
            "unauthorized",
        )
        .before(&rotating, "old\n"),
    );
    cases.push(
        case("rotating token file: rotated", &rotating_kc, true, "")
            .before(&rotating, &format!("{}\n", a.token)),
    );
    let bad_token_kc = kc("flag-token.yaml", &good, "token: wrong");
    cases.push(
        case("--token overrides the kubeconfig's", &bad_token_kc, true, "").args(&["--token", &a.token]),
    );
    cases.push(
        case(
            "--token wrong",
            &kc("flag-token2.yaml", &good, &token),
            false,
            "unauthorized",
        )
        .args(&["--token", "nope"]),
    );

    // Exec credential plugins.
    let c1 = d.join("count-v1beta1");
    let p1 = exec_plugin(d, "plugin-v1beta1", &c1, &credential("v1beta1", &a.token, ""));
    cases.push(
        case(
            "exec v1beta1",
            &kc("exec1.yaml", &good, &exec_user(&p1, "v1beta1", None, "")),
            true,
            "",
        )
        .counter(&c1),
    );
    let c2 = d.join("count-v1");
    let p2 = exec_plugin(d, "plugin-v1", &c2, &credential("v1", &a.token, ""));
    cases.push(
        case(
            "exec v1 Never",
            &kc("exec2.yaml", &good, &exec_user(&p2, "v1", Some("Never"), "")),
            true,
            "",
        )
        .counter(&c2),
    );
    cases.push(case(
        "exec v1 without interactiveMode",
        &kc("exec3.yaml", &good, &exec_user(&p2, "v1", None, "")),
        false,
        "interactivemode",
    ));
    let c4 = d.join("count-expiring");
    let p4 = exec_plugin(
        d,
        "plugin-expiring",
        &c4,
        &credential(
            "v1beta1",
            &a.token,
            ",\"expirationTimestamp\":\"2099-01-01T00:00:00Z\"",
        ),
    );
    cases.push(
        case(
            "exec with expiry",
            &kc("exec4.yaml", &good, &exec_user(&p4, "v1beta1", Some("Never"), "")),
            true,
            "",
        )
        .counter(&c4),
    );
    let p5 = script(
        d,
        "plugin-fails",
        "echo 'login failed: token=CANARY-exec-stderr' >&2\nexit 3",
    );
    cases.push(case(
        "exec fails",
        &kc("exec5.yaml", &good, &exec_user(&p5, "v1beta1", Some("Never"), "")),
        false,
        "exit code 3",
    ));
    cases.push(case(
        "exec missing shows installHint",
        &kc(
            "exec6.yaml",
            &good,
            &exec_user(
                &d.join("no-such-plugin"),
                "v1beta1",
                Some("Never"),
                "\n  installHint: get-it-from-the-hint-page",
            ),
        ),
        false,
        "get-it-from-the-hint-page",
    ));
    let p7 = exec_plugin(
        d,
        "plugin-wrong-api",
        &d.join("c7"),
        &credential("v1", &a.token, ""),
    );
    cases.push(case(
        "exec answers another apiVersion",
        &kc("exec7.yaml", &good, &exec_user(&p7, "v1beta1", Some("Never"), "")),
        false,
        "api version",
    ));
    cases.push(case(
        "exec Always without a terminal",
        &kc("exec8.yaml", &good, &exec_user(&p2, "v1", Some("Always"), "")),
        false,
        "not a terminal",
    ));
    let p9 = script(d, "plugin-garbage", "echo 'CANARY-exec-stdout not json'");
    cases.push(case(
        "exec prints garbage",
        &kc("exec9.yaml", &good, &exec_user(&p9, "v1beta1", Some("Never"), "")),
        false,
        "execcredential",
    ));
    let c10 = d.join("count-env");
    let p10 = script(
        d,
        "plugin-env",
        &format!(
            "echo run >> '{}'\nprintf '{{\"apiVersion\":\"client.authentication.k8s.io/v1beta1\",\"kind\":\"ExecCredential\",\"status\":{{\"token\":\"%s\"}}}}' \"$SIM_TOKEN_FROM_ENV\"",
            c10.display()
        ),
    );
    cases.push(
        case(
            "exec env from the kubeconfig",
            &kc(
                "exec10.yaml",
                &good,
                &exec_user(
                    &p10,
                    "v1beta1",
                    Some("Never"),
                    &format!("\n  env:\n  - name: SIM_TOKEN_FROM_ENV\n    value: {}", a.token),
                ),
            ),
            true,
            "",
        )
        .counter(&c10),
    );

    // KUBECONFIG lists and overrides.
    let first = file(
        "merge-a.yaml",
        &format!(
            "apiVersion: v1\nkind: Config\ncurrent-context: c\nclusters:\n- name: cl\n  cluster:\n{}\ncontexts:\n- name: c\n  context: {{cluster: cl, user: u}}\n",
            indent(&good)
        ),
    );
    let second = file(
        "merge-b.yaml",
        &format!(
            "apiVersion: v1\nkind: Config\nusers:\n- name: u\n  user:\n{}\n",
            indent(&token)
        ),
    );
    let list = std::env::join_paths([first.clone(), d.join("absent.yaml"), second.clone()]).unwrap();
    let list = list.to_str().unwrap().to_string();
    let mut merged = case("merged KUBECONFIG list", &first, true, "");
    merged.kubeconfig = list.clone();
    cases.push(merged);
    let multi = file(
        "multi.yaml",
        &format!(
            "apiVersion: v1\nkind: Config\ncurrent-context: broken\nclusters:\n- name: cl\n  cluster:\n{}\n- name: dead\n  cluster:\n    server: https://127.0.0.1:{dead}\n    certificate-authority-data: {}\nusers:\n- name: u\n  user:\n{}\n- name: bad\n  user:\n    token: wrong\ncontexts:\n- name: c\n  context: {{cluster: cl, user: u}}\n- name: broken\n  context: {{cluster: dead, user: bad}}\n",
            indent(&good),
            a.ca_data,
            indent(&token)
        ),
    );
    cases.push(case("--context picks a working context", &multi, true, "").args(&["--context", "c"]));
    cases.push(case("--context unknown", &multi, false, "not found").args(&["--context", "nope"]));
    cases.push(case("current-context unreachable", &multi, false, "reach").args(&[]));
    cases.push(
        case("--cluster and --user override the context's", &multi, true, "").args(&[
            "--cluster",
            "cl",
            "--user",
            "u",
        ]),
    );
    cases.push(case("--user bad", &multi, false, "unauthorized").args(&["--context", "c", "--user", "bad"]));
    cases.push(
        case("--server overrides the cluster's", &multi, true, "").args(&["--user", "u", "--server", &a.url]),
    );

    // TLS.
    let other_ca = b64("other-ca.pem");
    cases.push(case(
        "wrong CA",
        &kc(
            "wrong-ca.yaml",
            &format!("server: {}\ncertificate-authority-data: {other_ca}", a.url),
            &token,
        ),
        false,
        "certificate",
    ));
    cases.push(case(
        "insecure without CA",
        &kc(
            "insecure.yaml",
            &format!("server: {}\ninsecure-skip-tls-verify: true", a.url),
            &token,
        ),
        true,
        "",
    ));
    cases.push(case(
        "insecure with a CA is refused",
        &kc(
            "insecure-ca.yaml",
            &format!("{good}\ninsecure-skip-tls-verify: true"),
            &token,
        ),
        false,
        "insecure flag is not allowed",
    ));
    let wrong_ca_kc = kc(
        "wrong-ca2.yaml",
        &format!("server: {}\ncertificate-authority-data: {other_ca}", a.url),
        &token,
    );
    cases.push(
        case("--insecure-skip-tls-verify clears the CA", &wrong_ca_kc, true, "")
            .args(&["--insecure-skip-tls-verify"]),
    );
    let ca_file = file("sim-ca.pem", &{
        use base64::Engine;
        String::from_utf8(
            base64::engine::general_purpose::STANDARD
                .decode(&a.ca_data)
                .unwrap(),
        )
        .unwrap()
    });
    let no_ca_kc = kc("no-ca.yaml", &format!("server: {}", a.url), &token);
    cases.push(case(
        "no CA: system roots refuse",
        &no_ca_kc,
        false,
        "certificate",
    ));
    cases.push(
        case("--certificate-authority", &no_ca_kc, true, "")
            .args(&["--certificate-authority", ca_file.to_str().unwrap()]),
    );
    cases.push(case(
        "tls-server-name matches a SAN",
        &kc("sni.yaml", &format!("{good}\ntls-server-name: localhost"), &token),
        true,
        "",
    ));
    cases.push(case(
        "tls-server-name not in the certificate",
        &kc(
            "sni-bad.yaml",
            &format!("{good}\ntls-server-name: wrong.example"),
            &token,
        ),
        false,
        "certificate",
    ));
    cases.push(
        case(
            "--tls-server-name wrong",
            &kc("sni-flag.yaml", &good, &token),
            false,
            "certificate",
        )
        .args(&["--tls-server-name", "wrong.example"]),
    );

    // Client certificates (the sim authenticates by token; the key must still load).
    for (name, cert, key) in [
        ("client key PKCS#8", "cert.pem", "pkcs8.pem"),
        ("client key PKCS#1", "cert.pem", "pkcs1.pem"),
        ("client key EC", "ec-cert.pem", "ec.pem"),
    ] {
        let user = format!(
            "{token}\nclient-certificate-data: {}\nclient-key-data: {}",
            b64(cert),
            b64(key)
        );
        cases.push(case(name, &kc(&format!("{key}.yaml"), &good, &user), true, ""));
    }
    let broken_key = {
        use base64::Engine;
        base64::engine::general_purpose::STANDARD
            .encode("-----BEGIN PRIVATE KEY-----\nQ0FOQVJZLWtleQ==\n-----END PRIVATE KEY-----\n")
    };
    cases.push(case(
        "client key broken",
        &kc(
            "broken-key.yaml",
            &good,
            &format!(
                "{token}\nclient-certificate-data: {}\nclient-key-data: {broken_key}",
                b64("cert.pem")
            ),
        ),
        false,
        "key",
    ));

    // Proxies.
    cases.push(
        case(
            "proxy-url CONNECT proxy",
            &kc(
                "proxy.yaml",
                &format!("{good}\nproxy-url: {}", proxy.url()),
                &token,
            ),
            true,
            "",
        )
        .via_proxy(true),
    );
    cases.push(case(
        "proxy-url dead",
        &kc(
            "proxy-dead.yaml",
            &format!("{good}\nproxy-url: http://127.0.0.1:{dead}"),
            &token,
        ),
        false,
        "reach",
    ));
    let dead_proxy = format!("http://127.0.0.1:{dead}");
    cases.push(
        case(
            "HTTPS_PROXY is not used for loopback",
            &kc("env-loop.yaml", &good, &token),
            true,
            "",
        )
        .env(&[("HTTPS_PROXY", &dead_proxy)]),
    );
    let named = kc(
        "named.yaml",
        &format!(
            "server: https://sim.invalid:{}\ncertificate-authority-data: {}\ntls-server-name: localhost",
            a.port, a.ca_data
        ),
        &token,
    );
    let via = proxy.url();
    cases.push(
        case("HTTPS_PROXY carries a named server", &named, true, "")
            .env(&[("HTTPS_PROXY", &via)])
            .via_proxy(true),
    );
    cases.push(
        case("https_proxy (lower case)", &named, true, "")
            .env(&[("https_proxy", &via)])
            .via_proxy(true),
    );
    cases.push(
        case(
            "NO_PROXY domain suffix bypasses the proxy",
            &named,
            false,
            "reach",
        )
        .env(&[("HTTPS_PROXY", &via), ("NO_PROXY", ".invalid")])
        .via_proxy(false),
    );
    cases.push(
        case("NO_PROXY bare domain bypasses the proxy", &named, false, "reach")
            .env(&[("HTTPS_PROXY", &via), ("NO_PROXY", "10.0.0.0/8,invalid")])
            .via_proxy(false),
    );
    let port_rule = format!("sim.invalid:{}", a.port);
    cases.push(
        case("NO_PROXY host:port bypasses the proxy", &named, false, "reach")
            .env(&[("HTTPS_PROXY", &via), ("NO_PROXY", &port_rule)])
            .via_proxy(false),
    );
    cases.push(
        case("NO_PROXY for another port keeps the proxy", &named, true, "")
            .env(&[
                ("HTTPS_PROXY", &via),
                ("NO_PROXY", "sim.invalid:1,other.example,10.0.0.0/8"),
            ])
            .via_proxy(true),
    );
    cases.push(
        case("NO_PROXY * bypasses the proxy", &named, false, "reach")
            .env(&[("HTTPS_PROXY", &via), ("NO_PROXY", "*")])
            .via_proxy(false),
    );
    cases.push(
        case(
            "proxy-url ignores NO_PROXY",
            &kc("proxy2.yaml", &format!("{good}\nproxy-url: {via}"), &token),
            true,
            "",
        )
        .env(&[("NO_PROXY", "*")])
        .via_proxy(true),
    );

    let socks = ConnectProxy::start_socks5(a.port);
    let before = socks.tunnels();
    cases.push(case(
        "proxy-url socks5",
        &kc(
            "socks.yaml",
            &format!("{good}\nproxy-url: {}", socks.socks5_url()),
            &token,
        ),
        true,
        "",
    ));
    // Go accepts empty NO_PROXY entries (kube's own parser refuses them).
    cases.push(
        case("NO_PROXY with a trailing comma", &named, true, "")
            .env(&[("HTTPS_PROXY", &via), ("NO_PROXY", "localhost,127.0.0.1,")])
            .via_proxy(true),
    );
    cases.push(
        case(
            "NO_PROXY with empty entries, loopback server",
            &kc("env-loop2.yaml", &good, &token),
            true,
            "",
        )
        .env(&[("HTTPS_PROXY", &dead_proxy), ("NO_PROXY", ",,example.com,")]),
    );

    // Impersonation and a malformed kubeconfig.
    cases.push(case("--as", &kc("as.yaml", &good, &token), true, "").args(&[
        "--as",
        "jane",
        "--as-group",
        "devs",
    ]));
    cases.push(
        case(
            "--as-group without --as",
            &kc("as2.yaml", &good, &token),
            false,
            "without impersonating",
        )
        .args(&["--as-group", "devs"]),
    );
    cases.push(case(
        "malformed kubeconfig",
        &file(
            "malformed.yaml",
            "apiVersion: v1\nusers:\n- name: u\n  user:\n    token: CANARY-kc-token\n   bad: [indent\n",
        ),
        false,
        "line",
    ));

    assert!(cases.len() >= 30, "{} cases", cases.len());
    let mut failures = Vec::new();
    for case in &cases {
        if let Some((path, text)) = &case.before {
            std::fs::write(path, text).unwrap();
        }
        let env: Vec<(&str, &str)> = case.env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
        let mut args = vec!["status"];
        args.extend(case.args.iter().map(String::as_str));
        if let Some(counter) = &case.counter {
            let _ = std::fs::remove_file(counter);
        }
        let tunnels = proxy.tunnels();
        let out = run_with(Path::new(&case.kubeconfig), &args, &env);
        let plugin_connects = out.code == 0;
        let plugin_runs = case.counter.as_deref().map(runs);
        let plugin_proxied = proxy.tunnels() > tunnels;
        if let Some(counter) = &case.counter {
            let _ = std::fs::remove_file(counter);
        }
        let tunnels = proxy.tunnels();
        let (kubectl_connects, kubectl_err) = run_kubectl(&kubectl, &case.kubeconfig, &args[1..], &env);
        let kubectl_runs = case.counter.as_deref().map(runs);
        let kubectl_proxied = proxy.tunnels() > tunnels;

        let mut wrong = Vec::new();
        if plugin_connects != case.connects {
            wrong.push(format!("plugin connects={plugin_connects}"));
        }
        if kubectl_connects != case.connects {
            wrong.push(format!(
                "kubectl connects={kubectl_connects} ({})",
                kubectl_err.trim()
            ));
        }
        if !case.connects && !out.stderr.to_lowercase().contains(case.cause) {
            wrong.push(format!("the plugin's message does not name {:?}", case.cause));
        }
        if case.counter.is_some() && (plugin_runs != Some(1) || kubectl_runs != Some(1)) {
            wrong.push(format!(
                "exec runs: plugin {plugin_runs:?}, kubectl {kubectl_runs:?} (expected 1 each)"
            ));
        }
        if let Some(via) = case.via_proxy
            && (plugin_proxied != via || kubectl_proxied != via)
        {
            wrong.push(format!(
                "through the proxy: plugin {plugin_proxied}, kubectl {kubectl_proxied}, expected {via}"
            ));
        }
        for canary in [
            "CANARY-exec-stderr",
            "CANARY-exec-stdout",
            "CANARY-kc-token",
            a.token.as_str(),
        ] {
            if out.stderr.contains(canary) || out.stdout.contains(canary) {
                wrong.push(format!("the plugin printed the secret {canary:?}"));
            }
        }
        if !wrong.is_empty() {
            failures.push(format!(
                "{}: {}\n  plugin stderr: {}",
                case.name,
                wrong.join("; "),
                out.stderr.trim()
            ));
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {} cases disagree:\n{}",
        failures.len(),
        cases.len(),
        failures.join("\n")
    );
    assert!(
        socks.tunnels() >= before + 2,
        "both tools went through the SOCKS5 proxy ({} tunnels)",
        socks.tunnels() - before
    );
}
