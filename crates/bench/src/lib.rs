//! Shared pieces of shedu's benchmark tools (`loadbench`, `ocspbench`, `signrate`, `sweepbench`, `crlbench`).
//!
//! Why a crate of its own: the issue asks for figures anyone can reproduce on their own machine, next to
//! the raw limits of that machine, so the tools that produce them live in the workspace, build with the
//! same dependency versions as the server, and are driven by `scripts/bench`. Nothing here is used by the
//! platform itself.
//!
//! This library holds what several binaries need: latency percentiles, and readings of `/proc` (memory and
//! CPU time of the server under test, so that results taken on a shared machine can be judged).

pub mod load;
pub mod procfs;
pub mod stats;

/// Every key type shedu can hold for a CA, in the order the tables list them.
pub const KEY_TYPES: [&str; 6] = [
    "ec-p256", "ec-p384", "ed25519", "rsa-2048", "rsa-3072", "rsa-4096",
];

/// The rcgen algorithm for a shedu key type name (for generating CSR keys in process).
pub fn rcgen_algorithm(key_type: &str) -> anyhow::Result<&'static rcgen::SignatureAlgorithm> {
    Ok(match key_type {
        "ec-p256" => &rcgen::PKCS_ECDSA_P256_SHA256,
        "ec-p384" => &rcgen::PKCS_ECDSA_P384_SHA384,
        "ed25519" => &rcgen::PKCS_ED25519,
        "rsa-2048" | "rsa-3072" | "rsa-4096" => &rcgen::PKCS_RSA_SHA256,
        other => anyhow::bail!("unknown key type {other:?}"),
    })
}

/// Generates a key of `key_type` with rcgen (aws-lc-rs), RSA included.
pub fn generate_key(key_type: &str) -> anyhow::Result<rcgen::KeyPair> {
    let alg = rcgen_algorithm(key_type)?;
    let size = match key_type {
        "rsa-2048" => Some(rcgen::RsaKeySize::_2048),
        "rsa-3072" => Some(rcgen::RsaKeySize::_3072),
        "rsa-4096" => Some(rcgen::RsaKeySize::_4096),
        _ => None,
    };
    Ok(match size {
        Some(size) => rcgen::KeyPair::generate_rsa_for(alg, size)?,
        None => rcgen::KeyPair::generate_for(alg)?,
    })
}

/// A PEM CSR for a fresh key of `key_type`, with `CN=<name>` and one DNS SAN `<name>.bench.invalid`.
pub fn make_csr(key_type: &str, name: &str) -> anyhow::Result<String> {
    let key = generate_key(key_type)?;
    let mut params = rcgen::CertificateParams::new(vec![format!("{name}.bench.invalid")])?;
    params.distinguished_name = rcgen::DistinguishedName::new();
    params
        .distinguished_name
        .push(rcgen::DnType::CommonName, name);
    Ok(params.serialize_request(&key)?.pem()?)
}

/// A bijective 64-bit mix (splitmix64's finaliser): distinct inputs give distinct, random-looking outputs,
/// so synthetic serials and fingerprints are unique yet land all over the B-trees as real random ones do.
pub fn mix(mut z: u64) -> u64 {
    z = z.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// Seconds since the Unix epoch.
/// Runs `work` on a new scratch PostgreSQL database (on `SHEDU_TEST_POSTGRES`'s server) and drops the
/// database afterwards, whatever `work` returned (a failed drop is only warned about).
pub async fn on_scratch_postgres<T, F>(work: impl FnOnce(String) -> F) -> anyhow::Result<T>
where
    F: std::future::Future<Output = anyhow::Result<T>>,
{
    let admin = shedu_store::scratch::postgres_admin_url();
    let url = shedu_store::scratch::create_postgres_database(&admin)
        .await
        .map_err(|e| anyhow::anyhow!("PostgreSQL at {admin}: {e}"))?;
    let result = work(url.clone()).await;
    if let Err(e) = shedu_store::scratch::drop_postgres_database(&admin, &url).await {
        eprintln!("warning: could not drop the scratch database {url}: {e}");
    }
    result
}

pub fn unix_now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
}

/// Formats a rate with thousands separators (`12,345`), as the tables show them.
pub fn thousands(v: f64) -> String {
    let n = v.round() as i64;
    let digits = n.unsigned_abs().to_string();
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    if n < 0 { format!("-{out}") } else { out }
}

/// The store at `url` and the services over it (a fresh master key, a manual clock, the default settings):
/// where the in-process benchmarks start.
pub async fn open_services(
    url: &str,
) -> anyhow::Result<(shedu_store::Store, shedu_core::Services)> {
    use anyhow::Context;
    let store = shedu_store::Store::connect(url, &shedu_core::EVENT_WORDS)
        .await
        .with_context(|| format!("opening {}", shedu_store::redact_url(url)))?;
    let services = shedu_core::Services::open(
        store.clone(),
        &shedu_keys::MasterKey::generate(),
        std::sync::Arc::new(shedu_core::ManualClock::default()),
        shedu_core::ServicesConfig::default(),
    )
    .await?;
    Ok((store, services))
}

/// A root CA request with the default profile and settings, for the in-process benchmarks.
pub fn root_ca(name: String, common_name: &str, key_type: shedu_pki::KeyType) -> shedu_core::NewCa {
    shedu_core::NewCa {
        name,
        key_type,
        subject: shedu_pki::SubjectName {
            common_name: common_name.into(),
            ..shedu_pki::SubjectName::default()
        },
        validity_days: None,
        parent_id: None,
        path_len: None,
        profile: shedu_core::ProfileInput::default(),
        va: shedu_core::VaInput::default(),
        engine: None,
    }
}

/// The bearer token in `token_file` and the server's TLS root in `ca_file`, as every HTTPS load client of
/// a running `shedu serve` reads them.
pub fn token_and_root(
    token_file: &std::path::Path,
    ca_file: &std::path::Path,
) -> anyhow::Result<(String, reqwest::Certificate)> {
    use anyhow::Context;
    let token = std::fs::read_to_string(token_file)
        .with_context(|| format!("reading {}", token_file.display()))?
        .trim()
        .to_string();
    let root_pem =
        std::fs::read(ca_file).with_context(|| format!("reading {}", ca_file.display()))?;
    Ok((token, reqwest::Certificate::from_pem(&root_pem)?))
}

#[cfg(test)]
mod tests {
    #[test]
    fn thousands_groups_digits() {
        assert_eq!(super::thousands(0.0), "0");
        assert_eq!(super::thousands(999.4), "999");
        assert_eq!(super::thousands(1234.0), "1,234");
        assert_eq!(super::thousands(1234567.0), "1,234,567");
        assert_eq!(super::thousands(-1234.0), "-1,234");
    }

    #[test]
    fn csrs_parse_and_verify() {
        for kt in ["ec-p256", "ed25519"] {
            let pem = super::make_csr(kt, "dev-1").unwrap();
            let csr = shedu_pki::Csr::parse(pem.as_bytes()).unwrap();
            assert_eq!(csr.key_type().as_str(), kt);
        }
    }
}
