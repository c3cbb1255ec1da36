//! The connector in the real binary: a configured base path (`--connector-base`, a TOML `[connector]`
//! table), and tokens that never reach the log, even at `debug`, nor the audit log.

// A panic is how a test reports failure.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::process::{Command, Stdio};
use std::time::Duration;

use common::{Banner, wait_for_banner};

const SHEDU: &str = env!("CARGO_BIN_EXE_shedu");

#[test]
fn a_pairing_under_a_configured_base_leaves_no_token_in_the_log() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    std::fs::write(
        dir.join("shedu.toml"),
        "[connector]\nbase = \"/kyma\"\ntoken_ttl = \"2m\"\n",
    )
    .unwrap();
    let stderr = std::fs::File::create(dir.join("serve.stderr")).unwrap();
    let mut child = Command::new(SHEDU)
        .current_dir(dir)
        .env_remove("SHEDU_URL")
        .args(["serve", "--config", "shedu.toml", "--log", "debug"])
        .args(["--listen", "127.0.0.1:0", "--http-listen", "127.0.0.1:0"])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::from(stderr))
        .spawn()
        .unwrap();
    let (banner, seen) = wait_for_banner(&mut child, Duration::from_secs(90));
    let Banner::Listening(addr) = banner else {
        let _ = child.kill();
        panic!(
            "serve did not start: {seen:?} {}",
            std::fs::read_to_string(dir.join("serve.stderr")).unwrap_or_default()
        );
    };
    // The person's steps, in a shell: a CA for the connector, a token, the info, a signed CSR.
    let script = format!(
        r#"
set -euo pipefail
T=$(cat shedu-data/admin-token)
api() {{ curl -fsS --cacert shedu-data/tls/ca.pem -H "Authorization: Bearer $T" "$@"; }}
api --json '{{"name": "connector", "key_type": "ec-p256", "subject": {{"common_name": "C"}},
  "profile": {{"subject_policy": {{"CN": "allow", "O": "allow", "OU": "allow", "L": "allow", "ST": "allow", "C": "allow"}}}}}}' \
  https://{addr}/api/v1/cas > /dev/null
api -X POST -H 'Application: logged-app' https://{addr}/kyma/v1/applications/tokens > token.json
jq -r .token token.json > token1
curl -fsS --cacert shedu-data/tls/ca.pem "$(jq -r .url token.json)" > info.json
jq -r .csrUrl info.json | sed 's/.*token=//' > token2
SUBJECT="/$(jq -r .certificate.subject info.json | tr ',' '/')"
openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout app.key -subj "$SUBJECT" -out app.csr 2>/dev/null
jq -n --arg csr "$(base64 -w0 app.csr)" '{{csr: $csr}}' \
  | curl -fsS --cacert shedu-data/tls/ca.pem --json @- "$(jq -r .csrUrl info.json)" | jq -r .clientCrt | base64 -d > app.pem
curl -fsS --cacert shedu-data/tls/ca.pem --cert app.pem --key app.key https://{addr}/kyma/v1/applications/management/info
api "https://{addr}/api/v1/audit?limit=1000" > audit.json
"#
    );
    let out = Command::new("bash")
        .current_dir(dir)
        .args(["-c", &script])
        .output()
        .unwrap();
    let _ = child.kill();
    let _ = child.wait();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        stdout.contains("\"application\":\"logged-app\""),
        "{stdout}"
    );
    let info = std::fs::read_to_string(dir.join("info.json")).unwrap();
    assert!(
        info.contains(&format!(
            "https://{addr}/kyma/v1/applications/certificates?token="
        )),
        "{info}"
    );
    let log = std::fs::read_to_string(dir.join("serve.stderr")).unwrap();
    assert!(
        log.contains("DEBUG") && log.contains("/kyma/v1/applications/signingRequests/info"),
        "the log ran at debug level and names the requests"
    );
    let audit = std::fs::read_to_string(dir.join("audit.json")).unwrap();
    assert!(audit.contains("connector.certificate_issue"), "{audit}");
    for file in ["token1", "token2"] {
        let token = std::fs::read_to_string(dir.join(file)).unwrap();
        let token = token.trim();
        assert_eq!(token.len(), 64, "{file}: {token}");
        assert!(!log.contains(token), "{file} is in the server log");
        assert!(!audit.contains(token), "{file} is in the audit log");
    }
}
