//! The audit log through the real server on SQLite and PostgreSQL: changes, refusals and failures are
//! recorded with who, what, outcome and request id; admins and auditors can read it, operators cannot; the
//! hash chain verifies, names a row edited behind the server's back (with the `sqlite3` or `psql` client as
//! the outside hand), and stays whole under concurrent issuance.
// Test code: a failed setup step should abort the test loudly, which is what unwrap/expect do.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use serde_json::{Value, json};
use shedu_core::{AuditFinding, AuditVerdict, ChainBreak};
use shedu_testkit::{TestServer, backend_test, openssl_csr, tamper};

/// Sends `method path` with an optional bearer token, request id and JSON body.
async fn send(
    server: &TestServer,
    method: &str,
    path: &str,
    token: Option<&str>,
    request_id: &str,
    body: Value,
) -> (u16, Value) {
    let url = format!("{}{path}", server.base_url);
    let mut req = match method {
        "GET" => server.client.get(url),
        "POST" => server.client.post(url).json(&body),
        other => panic!("method {other}"),
    };
    if let Some(t) = token {
        req = req.bearer_auth(t);
    }
    let res = req.header("x-request-id", request_id).send().await.unwrap();
    let status = res.status().as_u16();
    (status, res.json().await.unwrap_or(Value::Null))
}

/// `GET /api/v1/audit?<query>` with `token`; returns the status and the page.
async fn audit(server: &TestServer, token: &str, query: &str) -> (u16, Value) {
    send(
        server,
        "GET",
        &format!("/api/v1/audit?{query}"),
        Some(token),
        "audit-read",
        Value::Null,
    )
    .await
}

/// The records of one request id (read as admin).
async fn of_request(server: &TestServer, request_id: &str) -> Vec<Value> {
    let (s, page) = audit(server, &server.token, &format!("request_id={request_id}")).await;
    assert_eq!(s, 200, "{page}");
    page["items"].as_array().unwrap().clone()
}

/// The single record of `request_id`, checked against what the request was.
async fn one_record(
    server: &TestServer,
    request_id: &str,
    (principal, action, outcome): (&str, &str, &str),
) -> Value {
    let records = of_request(server, request_id).await;
    assert_eq!(records.len(), 1, "one record for {request_id}: {records:?}");
    let r = records[0].clone();
    assert_eq!(
        (
            r["principal"].as_str(),
            r["action"].as_str(),
            r["outcome"].as_str(),
            r["request_id"].as_str(),
        ),
        (
            Some(principal),
            Some(action),
            Some(outcome),
            Some(request_id)
        ),
        "{r}"
    );
    assert_eq!(r["source"], "127.0.0.1", "{r}");
    assert_eq!(r["hash"].as_str().unwrap().len(), 64, "{r}");
    assert!(
        time::OffsetDateTime::parse(
            r["time"].as_str().unwrap(),
            &time::format_description::well_known::Rfc3339
        )
        .is_ok(),
        "{r}"
    );
    r
}

async fn api_key(server: &TestServer, name: &str, role: &str) -> String {
    let (s, key) = server
        .post("/api/v1/api-keys", json!({"name": name, "role": role}))
        .await;
    assert_eq!(s, 201, "{key}");
    key["key"].as_str().unwrap().to_string()
}

/// `GET /api/v1/audit/verify` with `token`.
async fn chain_check(server: &TestServer, token: &str) -> (u16, Value) {
    send(
        server,
        "GET",
        "/api/v1/audit/verify",
        Some(token),
        "verify",
        Value::Null,
    )
    .await
}

async fn verdict(server: &TestServer) -> AuditVerdict {
    server.services.audit.verify().await.unwrap()
}

backend_test!(
    changes_refusals_and_failures_are_recorded_and_chained,
    |backend| {
        let server = TestServer::start(backend).await;
        let dir = tempfile::tempdir().unwrap();
        let admin = server.token.clone();
        let auditor = api_key(&server, "audit-desk", "auditor").await;
        let operator = api_key(&server, "pipeline", "operator").await;

        // Changes: a CA, a certificate, its revocation.
        let body = json!({"name": "plant", "key_type": "ec-p256", "subject": {"common_name": "Plant Root"}});
        let (s, ca) = send(
            &server,
            "POST",
            "/api/v1/cas",
            Some(&admin),
            "req-ca",
            body.clone(),
        )
        .await;
        assert_eq!(s, 201, "{ca}");
        let ca_id = ca["id"].as_str().unwrap().to_string();
        let csr = openssl_csr(dir.path(), "leaf", "ec-p256", "/CN=sensor-1", None);
        let issue_path = format!("/api/v1/cas/{ca_id}/certificates");
        let (s, cert) = send(
            &server,
            "POST",
            &issue_path,
            Some(&operator),
            "req-issue",
            json!({"csr_pem": csr}),
        )
        .await;
        assert_eq!(s, 201, "{cert}");
        let serial = cert["serial"].as_str().unwrap().to_string();
        let revoke_path = format!("{issue_path}/{serial}/revoke");
        let (s, _) = send(
            &server,
            "POST",
            &revoke_path,
            Some(&admin),
            "req-revoke",
            json!({"reason": "key_compromise"}),
        )
        .await;
        assert_eq!(s, 200);

        // Refused (an auditor may not create CAs; nobody may anonymously), failed (a CSR that is not one) and
        // a wrong password.
        let (s, _) = send(
            &server,
            "POST",
            "/api/v1/cas",
            Some(&auditor),
            "req-403",
            body.clone(),
        )
        .await;
        assert_eq!(s, 403);
        let (s, _) = send(&server, "POST", "/api/v1/cas", None, "req-401", body).await;
        assert_eq!(s, 401);
        let (s, _) = send(
            &server,
            "POST",
            &issue_path,
            Some(&admin),
            "req-400",
            json!({"csr_pem": "not a CSR"}),
        )
        .await;
        assert_eq!(s, 400);
        let secret = "correct horse battery wrong";
        let (s, _) = send(
            &server,
            "POST",
            "/api/v1/auth/login",
            None,
            "req-login",
            json!({"username": "mallory", "password": secret}),
        )
        .await;
        assert_eq!(s, 401);

        let r = one_record(
            &server,
            "req-ca",
            ("bootstrap-admin", "ca.create", "success"),
        )
        .await;
        assert_eq!(
            (
                r["target"].as_str(),
                r["role"].as_str(),
                r["principal_id"].as_str()
            ),
            (Some(ca_id.as_str()), Some("admin"), Some("bootstrap"))
        );
        let r = one_record(
            &server,
            "req-issue",
            ("pipeline", "certificate.issue", "success"),
        )
        .await;
        assert_eq!(
            (r["target"].as_str(), r["role"].as_str()),
            (Some(format!("{ca_id}/{serial}").as_str()), Some("operator"))
        );
        let r = one_record(
            &server,
            "req-revoke",
            ("bootstrap-admin", "certificate.revoke", "success"),
        )
        .await;
        assert_eq!(
            r["target"].as_str(),
            Some(format!("{ca_id}/{serial}").as_str())
        );
        let refused = one_record(
            &server,
            "req-403",
            ("audit-desk", "POST /api/v1/cas", "denied"),
        )
        .await;
        assert_eq!(refused["role"], "auditor");
        let r = one_record(
            &server,
            "req-401",
            ("anonymous", "POST /api/v1/cas", "denied"),
        )
        .await;
        assert_eq!(r["role"], "");
        let r = one_record(
            &server,
            "req-400",
            (
                "bootstrap-admin",
                "POST /api/v1/cas/{id}/certificates",
                "failure",
            ),
        )
        .await;
        assert_eq!(
            r["target"].as_str(),
            Some(issue_path.as_str()),
            "a failed request names its path"
        );
        one_record(&server, "req-login", ("mallory", "auth.login", "failure")).await;

        // Newest first, filters, cursor pages; never a password.
        let (s, all) = audit(&server, &admin, "limit=1000").await;
        assert_eq!(s, 200);
        let all = all["items"].as_array().unwrap().clone();
        assert!(
            !Value::Array(all.clone()).to_string().contains(secret),
            "no password in the log"
        );
        let seqs: Vec<i64> = all.iter().map(|r| r["seq"].as_i64().unwrap()).collect();
        let expected: Vec<i64> = (1..=seqs.len() as i64).rev().collect();
        assert_eq!(seqs, expected, "newest first, no gaps");
        let (_, denied) = audit(&server, &admin, "outcome=denied").await;
        let denied: Vec<&str> = denied["items"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| r["request_id"].as_str().unwrap())
            .collect();
        assert_eq!(denied, ["req-401", "req-403"]);
        let (_, issued) = audit(
            &server,
            &admin,
            "action=certificate.issue&principal=pipeline",
        )
        .await;
        assert_eq!(issued["items"].as_array().unwrap().len(), 1, "{issued}");
        let (_, first) = audit(&server, &admin, "limit=2").await;
        assert_eq!(first["items"].as_array().unwrap().len(), 2);
        let cursor = first["next_cursor"].as_i64().unwrap();
        assert_eq!(cursor, seqs[1]);
        let (_, second) = audit(&server, &admin, &format!("limit=2&before={cursor}")).await;
        assert_eq!(second["items"][0]["seq"].as_i64(), Some(seqs[2]));
        let (_, newer) = audit(&server, &admin, &format!("after={}", seqs[1])).await;
        assert_eq!(newer["items"].as_array().unwrap().len(), 1);

        // Auditors read it; operators do not.
        let (s, page) = audit(&server, &auditor, "request_id=req-issue").await;
        assert_eq!(
            (s, page["items"][0]["action"].as_str()),
            (200, Some("certificate.issue")),
            "{page}"
        );
        let (s, p) = audit(&server, &operator, "").await;
        assert_eq!(
            (s, p["type"].as_str()),
            (403, Some("urn:shedu:problem:forbidden"))
        );

        // Reading is not recorded; the chain covers every record and verifies.
        let (_, again) = audit(&server, &admin, "limit=1000").await;
        assert_eq!(again["items"].as_array().unwrap().len(), all.len());
        assert_eq!(
            verdict(&server).await,
            AuditVerdict::Intact {
                records: all.len() as u64,
                legacy: 0
            }
        );
        // The API says the same (the console's "Verify the chain"), to an auditor.
        let (s, check) = chain_check(&server, &auditor).await;
        assert_eq!(s, 200, "{check}");
        assert_eq!(
            (check["intact"].as_bool(), check["records"].as_u64()),
            (Some(true), Some(all.len() as u64)),
            "{check}"
        );

        // An edit behind the server's back is found, and named.
        let seq = refused["seq"].as_i64().unwrap();
        tamper(
            &server.db_url,
            &format!("UPDATE audit_log SET outcome = 'success' WHERE seq = {seq}"),
        );
        assert_eq!(
            verdict(&server).await,
            AuditVerdict::Broken {
                seq,
                id: refused["id"].as_str().unwrap().to_string(),
                reason: ChainBreak::HashMismatch
            }
        );
        let (_, check) = chain_check(&server, &auditor).await;
        assert_eq!(
            (check["intact"].as_bool(), check["broken_seq"].as_i64()),
            (Some(false), Some(seq)),
            "{check}"
        );
        assert!(
            check["detail"].as_str().unwrap().contains("hash mismatch"),
            "{check}"
        );
    }
);

backend_test!(concurrent_issuance_keeps_one_chain, |backend| {
    let server = TestServer::start(backend).await;
    let dir = tempfile::tempdir().unwrap();
    let ca = server
        .create_ca(
            json!({"name": "busy", "key_type": "ec-p256", "subject": {"common_name": "Busy Root"}}),
        )
        .await;
    let path = format!("/api/v1/cas/{}/certificates", ca["id"].as_str().unwrap());
    let csr = openssl_csr(dir.path(), "leaf", "ec-p256", "/CN=many", None);
    let issues = (0..32).map(|n| {
        let (server, path, csr) = (&server, &path, &csr);
        async move {
            let id = format!("req-{n}");
            send(
                server,
                "POST",
                path,
                Some(&server.token),
                &id,
                json!({"csr_pem": csr}),
            )
            .await
        }
    });
    let results = futures::future::join_all(issues).await;
    assert!(results.iter().all(|(s, _)| *s == 201), "{results:?}");

    let (_, page) = audit(
        &server,
        &server.token,
        "action=certificate.issue&limit=1000",
    )
    .await;
    let items = page["items"].as_array().unwrap();
    assert_eq!(items.len(), 32);
    let mut targets: Vec<&str> = items
        .iter()
        .map(|r| r["target"].as_str().unwrap())
        .collect();
    targets.sort_unstable();
    targets.dedup();
    assert_eq!(targets.len(), 32, "one record per certificate");
    let mut request_ids: Vec<&str> = items
        .iter()
        .map(|r| r["request_id"].as_str().unwrap())
        .collect();
    request_ids.sort_unstable();
    request_ids.dedup();
    assert_eq!(
        request_ids.len(),
        32,
        "each record carries its own request's id"
    );
    // The keying record, the CA and the 32 certificates.
    assert_eq!(
        verdict(&server).await,
        AuditVerdict::Intact {
            records: 34,
            legacy: 0
        }
    );
});

// The ids an issuance writes into unique or indexed columns (its audit record's id, the request id the
// server made, its event's id) follow the order of insertion, across and within group commits, so each
// lands at the right edge of its index like `seq` instead of dirtying a random page per row (issue 13: with
// random ids those three indexes were a third of the bytes written per certificate on SQLite).
backend_test!(issuance_ids_follow_insertion_order, |backend| {
    let server = TestServer::start(backend).await;
    let dir = tempfile::tempdir().unwrap();
    let ca = server
        .create_ca(
            json!({"name": "ordered", "key_type": "ec-p256", "subject": {"common_name": "Ordered Root"}}),
        )
        .await;
    let path = format!("/api/v1/cas/{}/certificates", ca["id"].as_str().unwrap());
    let csr = openssl_csr(dir.path(), "leaf", "ec-p256", "/CN=ordered", None);
    for _ in 0..3 {
        let issues = (0..8).map(|_| server.post(&path, json!({"csr_pem": csr})));
        let results = futures::future::join_all(issues).await;
        assert!(results.iter().all(|(s, _)| *s == 201), "{results:?}");
    }
    // Oldest first, by the position each row got: audit `seq`, outbox `seq`.
    let (_, page) = audit(
        &server,
        &server.token,
        "action=certificate.issue&limit=1000",
    )
    .await;
    let mut records = page["items"].as_array().unwrap().clone();
    records.sort_by_key(|r| r["seq"].as_i64().unwrap());
    assert_eq!(records.len(), 24);
    let (_, page) = server
        .get("/api/v1/events?type=certificate.issued&limit=1000")
        .await;
    let events = page["items"].as_array().unwrap().clone();
    assert_eq!(events.len(), 24);
    let audit_ids: Vec<&str> = records.iter().map(|r| r["id"].as_str().unwrap()).collect();
    assert!(
        audit_ids.iter().all(|id| id.len() == 32) && audit_ids.windows(2).all(|w| w[0] < w[1]),
        "audit ids: 32 hex digits, ascending with seq: {audit_ids:?}"
    );
    // Event and request ids are made as requests arrive, before they queue for the writer, so within one
    // round the order of arrival need not be the order of commit: every id of a round sorts after every id
    // of the rounds committed before it (the server made the request ids: the client sent none).
    let by_round = |what: &str, ids: Vec<&str>| {
        assert!(ids.iter().all(|id| id.len() == 32), "{what}: {ids:?}");
        for (n, round) in ids.chunks(8).enumerate().skip(1) {
            let before = ids[..n * 8].iter().max().unwrap();
            assert!(
                round.iter().all(|id| id > before),
                "{what} of round {n} after those of earlier rounds: {ids:?}"
            );
        }
    };
    by_round(
        "event ids",
        events.iter().map(|e| e["id"].as_str().unwrap()).collect(),
    );
    by_round(
        "request ids",
        records
            .iter()
            .map(|r| r["request_id"].as_str().unwrap())
            .collect(),
    );
});

// Checkpoints leave the table (an `audit.checkpoint` event and a 0600 file line), survive a restart, and
// catch what the chain alone cannot: a cut tail, and a checkpoint not made with the audit key.
// See: issue 12 item 8.
backend_test!(checkpoints_catch_a_cut_tail, |backend| {
    let server = TestServer::start(backend).await;
    let (_, first) = audit(&server, &server.token, "limit=10").await;
    assert_eq!(
        first["items"][0]["action"].as_str(),
        Some("audit.chain_keyed"),
        "the first record marks where the key took over: {first}"
    );
    server
        .create_ca(
            json!({"name": "cp", "key_type": "ec-p256", "subject": {"common_name": "Checkpointed Root"}}),
        )
        .await;
    let cp = server
        .services
        .audit
        .checkpoint()
        .await
        .unwrap()
        .expect("a head to checkpoint");
    assert_eq!(cp.seq, 2);
    assert_eq!(
        server.services.audit.checkpoint().await.unwrap(),
        None,
        "a head that did not move is not published again"
    );
    let events = server
        .services
        .events
        .list(0, Some("audit.checkpoint"), None, 10)
        .await
        .unwrap();
    assert_eq!(events.len(), 1, "{events:?}");
    let data: Value = serde_json::from_str(&events[0].event.data).unwrap();
    assert_eq!(data["line"].as_str(), Some(cp.to_string().as_str()));
    assert_eq!(data["seq"].as_i64(), Some(2));
    let file = server.data_dir.join(shedu_core::CHECKPOINT_FILE);
    assert_eq!(std::fs::read_to_string(&file).unwrap(), format!("{cp}\n"));
    use std::os::unix::fs::PermissionsExt;
    assert_eq!(
        std::fs::metadata(&file).unwrap().permissions().mode() & 0o777,
        0o600
    );

    // The key survives a restart.
    let server = server.restart().await;
    let held = |verdict| AuditFinding::Chain {
        verdict,
        keyed: true,
        checkpoint: Some(2),
    };
    assert_eq!(
        server
            .services
            .audit
            .verify_with(std::slice::from_ref(&cp), &[])
            .await
            .unwrap(),
        held(AuditVerdict::Intact {
            records: 2,
            legacy: 0
        })
    );
    let mut forged = cp.clone();
    forged.time += 1;
    assert_eq!(
        server
            .services
            .audit
            .verify_with(&[forged], &[])
            .await
            .unwrap(),
        AuditFinding::ForgedCheckpoint { index: 1 }
    );

    // The newest record removed: the chain alone is whole, the checkpoint shows the cut.
    tamper(&server.db_url, "DELETE FROM audit_log WHERE seq = 2");
    assert!(matches!(
        verdict(&server).await,
        AuditVerdict::Intact { records: 1, .. }
    ));
    assert_eq!(
        server
            .services
            .audit
            .verify_with(std::slice::from_ref(&cp), &[])
            .await
            .unwrap(),
        held(AuditVerdict::Truncated {
            head: 1,
            checkpoint: 2
        })
    );
    // The same from a checkpoint copied off the bus.
    assert_eq!(
        server
            .services
            .audit
            .verify_with(&[], &[(cp.seq, cp.head.clone())])
            .await
            .unwrap(),
        held(AuditVerdict::Truncated {
            head: 1,
            checkpoint: 2
        })
    );
});
