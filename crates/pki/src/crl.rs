//! Certificate revocation lists (RFC 5280 §5): full CRLs, delta CRLs (§5.2.4) and partitioned CRLs
//! (an issuingDistributionPoint naming the shard, §5.2.5).
//!
//! Encoded with yasna rather than rcgen's CRL builder because rcgen has no deltaCRLIndicator or
//! freshestCRL; the structure is small and quoted next to the code.

use yasna::models::{GeneralizedTime, ObjectIdentifier, UTCTime};
use yasna::{DERWriter, Tag};

use crate::{Error, KeyType, RevocationReason, Signs};

/// One revoked certificate.
#[derive(Clone, Debug)]
pub struct RevokedEntry {
    /// The serial's INTEGER content bytes.
    pub serial: Vec<u8>,
    /// revocationDate, Unix seconds.
    pub revoked_at: i64,
    /// reasonCode; `None` (unspecified) is left out as RFC 5280 §5.3.1 recommends.
    pub reason: Option<RevocationReason>,
    /// invalidityDate (§5.3.2), when known.
    pub invalidity_date: Option<i64>,
}

/// What kind of CRL to build.
#[derive(Clone, Debug)]
pub enum CrlScope<'a> {
    /// A complete CRL; `freshest` names where its delta CRLs are published.
    Full {
        /// freshestCRL distribution point URL.
        freshest: Option<&'a str>,
    },
    /// A delta CRL on top of the complete CRL numbered `base_number`.
    Delta {
        /// The base CRL's number (deltaCRLIndicator).
        base_number: u64,
    },
}

/// Everything a CRL says.
pub struct CrlParams<'a> {
    /// The issuer's subject DN, DER (copied from its certificate so names match byte for byte).
    pub issuer_der: &'a [u8],
    /// The issuer's subject key identifier, for the authorityKeyIdentifier.
    pub issuer_key_id: &'a [u8],
    /// cRLNumber.
    pub number: u64,
    /// thisUpdate, Unix seconds.
    pub this_update: i64,
    /// nextUpdate, Unix seconds.
    pub next_update: i64,
    /// The entries.
    pub revoked: &'a [RevokedEntry],
    /// Full or delta.
    pub scope: CrlScope<'a>,
    /// For a partitioned CRL: the URL of this partition, written as issuingDistributionPoint.
    pub distribution_point: Option<&'a str>,
}

/// Encodes and signs a CRL; returns its DER.
pub fn build_crl<S: Signs>(
    p: &CrlParams<'_>,
    key: &S,
    key_type: KeyType,
) -> Result<Vec<u8>, Error> {
    let this_update = time_of(p.this_update)?;
    let next_update = time_of(p.next_update)?;
    let entries = p
        .revoked
        .iter()
        .map(|e| {
            Ok((
                e,
                time_of(e.revoked_at)?,
                e.invalidity_date.map(gtime).transpose()?,
            ))
        })
        .collect::<Result<Vec<_>, Error>>()?;
    // TBSCertList ::= SEQUENCE { version, signature, issuer, thisUpdate, nextUpdate, revokedCertificates,
    //                            crlExtensions [0] EXPLICIT Extensions }
    let tbs = yasna::construct_der(|w| {
        w.write_sequence(|w| {
            w.next().write_u8(1); // v2
            w.next().write_der(key_type.signature_algorithm_der());
            w.next().write_der(p.issuer_der);
            this_update.write(w.next());
            next_update.write(w.next());
            if !entries.is_empty() {
                w.next().write_sequence(|w| {
                    for (e, at, invalidity) in &entries {
                        w.next().write_sequence(|w| {
                            w.next().write_bigint_bytes(&e.serial, true);
                            at.write(w.next());
                            if e.reason.is_some() || invalidity.is_some() {
                                w.next().write_sequence(|w| {
                                    if let Some(r) = e.reason {
                                        // reasonCode 2.5.29.21: ENUMERATED
                                        extension(w.next(), &[2, 5, 29, 21], false, |w| {
                                            w.write_enum(i64::from(r.code()))
                                        });
                                    }
                                    if let Some(t) = invalidity {
                                        // invalidityDate 2.5.29.24: GeneralizedTime
                                        extension(w.next(), &[2, 5, 29, 24], false, |w| {
                                            w.write_generalized_time(t)
                                        });
                                    }
                                });
                            }
                        });
                    }
                });
            }
            w.next().write_tagged(Tag::context(0), |w| {
                w.write_sequence(|w| {
                    // authorityKeyIdentifier 2.5.29.35: SEQUENCE { [0] IMPLICIT KeyIdentifier }
                    extension(w.next(), &[2, 5, 29, 35], false, |w| {
                        w.write_sequence(|w| {
                            w.next().write_tagged_implicit(Tag::context(0), |w| {
                                w.write_bytes(p.issuer_key_id)
                            })
                        })
                    });
                    // cRLNumber 2.5.29.20: INTEGER
                    extension(w.next(), &[2, 5, 29, 20], false, |w| w.write_u64(p.number));
                    match p.scope {
                        CrlScope::Delta { base_number } => {
                            // deltaCRLIndicator 2.5.29.27 (critical): BaseCRLNumber
                            extension(w.next(), &[2, 5, 29, 27], true, |w| {
                                w.write_u64(base_number)
                            });
                        }
                        CrlScope::Full {
                            freshest: Some(url),
                        } => {
                            // freshestCRL 2.5.29.46: CRLDistributionPoints
                            extension(w.next(), &[2, 5, 29, 46], false, |w| {
                                w.write_sequence(|w| {
                                    w.next().write_sequence(|w| dp_name(w.next(), url))
                                })
                            });
                        }
                        CrlScope::Full { freshest: None } => {}
                    }
                    if let Some(url) = p.distribution_point {
                        // issuingDistributionPoint 2.5.29.28 (critical): SEQUENCE { distributionPoint [0], … }
                        extension(w.next(), &[2, 5, 29, 28], true, |w| {
                            w.write_sequence(|w| dp_name(w.next(), url))
                        });
                    }
                })
            });
        })
    });
    let signature = key.sign(&tbs).map_err(|e| Error::signing(key, e))?;
    Ok(yasna::construct_der(|w| {
        w.write_sequence(|w| {
            w.next().write_der(&tbs);
            w.next().write_der(key_type.signature_algorithm_der());
            w.next().write_bitvec_bytes(&signature, signature.len() * 8);
        })
    }))
}

/// `[0] distributionPoint DistributionPointName ::= [0] fullName GeneralNames { [6] URI }`
fn dp_name(w: DERWriter<'_>, url: &str) {
    w.write_tagged_implicit(Tag::context(0), |w| {
        w.write_tagged_implicit(Tag::context(0), |w| {
            w.write_sequence(|w| {
                w.next()
                    .write_tagged_implicit(Tag::context(6), |w| w.write_ia5_string(url))
            })
        })
    });
}

/// `Extension ::= SEQUENCE { extnID, critical BOOLEAN DEFAULT FALSE, extnValue OCTET STRING }`
fn extension(w: DERWriter<'_>, oid: &[u64], critical: bool, value: impl FnOnce(DERWriter<'_>)) {
    w.write_sequence(|w| {
        w.next().write_oid(&ObjectIdentifier::from_slice(oid));
        if critical {
            w.next().write_bool(true);
        }
        w.next().write_bytes(&yasna::construct_der(value));
    });
}

/// RFC 5280 §5.1.2.4: UTCTime through 2049, GeneralizedTime from 2050.
enum Time {
    Utc(UTCTime),
    General(GeneralizedTime),
}

impl Time {
    fn write(&self, w: DERWriter<'_>) {
        match self {
            Time::Utc(t) => w.write_utctime(t),
            Time::General(t) => w.write_generalized_time(t),
        }
    }
}

fn time_of(secs: i64) -> Result<Time, Error> {
    let dt = time::OffsetDateTime::from_unix_timestamp(secs)
        .map_err(|e| Error::InvalidValidity(e.to_string()))?;
    Ok(if dt.year() < 2050 {
        Time::Utc(UTCTime::from_datetime(dt))
    } else {
        Time::General(GeneralizedTime::from_datetime(dt))
    })
}

fn gtime(secs: i64) -> Result<GeneralizedTime, Error> {
    time::OffsetDateTime::from_unix_timestamp(secs)
        .map(GeneralizedTime::from_datetime)
        .map_err(|e| Error::InvalidValidity(e.to_string()))
}
