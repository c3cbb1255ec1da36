use super::*;

fn invalid(r: Result<(), Error>) -> String {
    match r {
        Err(Error::InvalidName(detail)) => detail,
        other => panic!("expected InvalidName, got {other:?}"),
    }
}

// See: issue 12.
#[test]
fn dns_names_are_ldh_labels_with_a_whole_leftmost_wildcard() {
    for good in [
        "plc-7",
        "example.com",
        "a.b.c.d.example",
        "Device-01.Plant.Example",
        "123.example",
        "*.example.com",
        "*.a.example.com",
        "xn--bcher-kva.example",
        "XN--BCHER-KVA.example",
        format!("{}.example", "a".repeat(63)).as_str(),
    ] {
        assert!(check_dns_name(good).is_ok(), "{good}");
    }
    let long = [
        "a".repeat(63),
        "b".repeat(63),
        "c".repeat(63),
        "d".repeat(61),
    ]
    .join(".");
    assert_eq!(long.len(), 253);
    assert!(check_dns_name(&long).is_ok());
    for bad in [
        "",
        "a b",
        "x\0y",
        "*",
        "*.com",
        "f*o.example.com",
        "*foo.example.com",
        "a.*.example.com",
        "example.com.",
        ".example.com",
        "a..b",
        "-a.example",
        "a-.example",
        "a_b.example",
        "bücher.example",
        "xn--a.example",
        "xn--.example",
        "xn--abc-.example",
        "line\nbreak",
        format!("{}.example", "a".repeat(64)).as_str(),
        format!("{long}a").as_str(),
    ] {
        let detail = invalid(check_dns_name(bad));
        assert!(!detail.contains('\0') && !detail.contains('\n'), "{detail}");
    }
    assert!(invalid(check_dns_name("x\0y")).contains("\\0"));
}

#[test]
fn email_addresses_are_dot_atoms_at_a_dns_domain() {
    for good in [
        "ops@example.com",
        "first.last+tag@plant.example",
        "a!#$%&'*+-/=?^_`{|}~z@x.example",
        "root@localhost",
    ] {
        assert!(check_email(good).is_ok(), "{good}");
    }
    for bad in [
        "not an email",
        "no-at.example",
        "a@b@c.example",
        "@example.com",
        "a@",
        ".a@example.com",
        "a.@example.com",
        "a..b@example.com",
        "a b@example.com",
        "\"quoted\"@example.com",
        "a@*.example.com",
        "a@exa mple.com",
        "a\r@example.com",
        format!("{}@example.com", "a".repeat(65)).as_str(),
    ] {
        invalid(check_email(bad));
    }
}

#[test]
fn uris_are_absolute_rfc3986_with_a_host_when_they_have_an_authority() {
    for good in [
        "https://device.example/path?q=1#f",
        "spiffe://trust.example/ns/prod/sa/plc",
        "urn:uuid:f81d4fae-7dec-11d0-a765-00a0c91e6bf6",
        "https://[::1]:8443/x",
        "https://10.0.0.1/",
        "https://user@host.example:443/%2F",
        "javascript:alert(1)",
    ] {
        assert!(check_uri(good).is_ok(), "{good}");
    }
    for bad in [
        "",
        "no-scheme",
        "/relative/path",
        "1http://x.example",
        "https:",
        "https://exa mple.com/",
        "https://x.example/\0",
        "https://x.example/%zz",
        "https://x.example/%2",
        "https://bad_host.example/",
        "https:///path",
        "https://[zz]/",
        "https://x.example/\u{e9}",
        format!("https://x.example/{}", "a".repeat(2048)).as_str(),
    ] {
        invalid(check_uri(bad));
    }
}

#[test]
fn subject_attributes_are_bounded_and_free_of_control_characters() {
    assert!(AttrType::CommonName.check(&"c".repeat(64)).is_ok());
    assert!(AttrType::CommonName.check("Gerät 7 — Halle Nord").is_ok());
    for (ty, bad) in [
        (AttrType::CommonName, "c".repeat(65)),
        (AttrType::CommonName, "a\0b".into()),
        (AttrType::CommonName, "a\nb".into()),
        (AttrType::CommonName, "a\u{1b}]0;x\u{7}".into()),
        (AttrType::CommonName, "a\u{85}b".into()),
        (AttrType::CommonName, " ".into()),
        (AttrType::Organization, "o".repeat(65)),
        (AttrType::Locality, "l".repeat(129)),
        (AttrType::Country, "DEU".into()),
        (AttrType::Country, "D1".into()),
        (AttrType::SerialNumber, "sn_1".into()),
        (AttrType::DomainComponent, "exa mple".into()),
        (AttrType::EmailAddress, "not an email".into()),
    ] {
        let detail = invalid(ty.check(&bad));
        assert!(detail.starts_with(&format!("subject {ty}=")), "{detail}");
        assert!(!detail.chars().any(char::is_control), "{detail:?}");
        assert!(
            detail.len() < 200,
            "the detail quotes a bounded excerpt: {detail}"
        );
    }
}

fn attr(ty: AttrType, value: &str) -> RequestedAttr {
    RequestedAttr {
        oid: ty.oid().to_vec(),
        value: Some(value.into()),
    }
}

#[test]
fn the_default_policy_keeps_the_cn_and_drops_the_rest() {
    use AttrType::*;
    let policy = NamePolicy::default();
    let subject = policy
        .subject_for(&[
            attr(CommonName, "plc-7"),
            attr(Organization, "Evil Corp"),
            attr(EmailAddress, "ceo@evil.example"),
            attr(DomainComponent, "evil"),
            RequestedAttr {
                oid: vec![2, 5, 4, 42],
                value: Some("given name".into()),
            },
        ])
        .unwrap();
    assert_eq!(subject.attrs(), [(CommonName, "plc-7".to_string())]);
    assert_eq!(subject.display().unwrap(), "CN=plc-7");
    let err = policy
        .subject_for(&[attr(CommonName, "a"), attr(CommonName, "b")])
        .unwrap_err();
    assert!(
        matches!(&err, Error::InvalidName(d) if d.contains("more than one CN")),
        "{err}"
    );
    let err = policy
        .subject_for(&[RequestedAttr {
            oid: CommonName.oid().to_vec(),
            value: None,
        }])
        .unwrap_err();
    assert!(matches!(err, Error::InvalidName(_)), "{err}");
}

#[test]
fn a_policy_fixes_allows_and_drops_attributes() {
    use AttrType::*;
    let policy = NamePolicy {
        subject: vec![
            (CommonName, AttrRule::Allow),
            (OrganizationalUnit, AttrRule::Allow),
            (Organization, AttrRule::Fixed("Acme".into())),
            (Country, AttrRule::Fixed("DE".into())),
            (Locality, AttrRule::Drop),
        ],
        ..NamePolicy::default()
    };
    policy.check().unwrap();
    let subject = policy
        .subject_for(&[
            attr(CommonName, "plc-7"),
            attr(Organization, "Evil Corp"),
            attr(OrganizationalUnit, "Line 1"),
            attr(Locality, "Nowhere"),
        ])
        .unwrap();
    assert_eq!(
        subject.display().unwrap(),
        "C=DE, O=Acme, CN=plc-7, OU=Line 1"
    );
    let dn = subject.to_dn().unwrap();
    assert_eq!(dn.iter().count(), 4);
    // A repeat is refused, never dropped: rcgen's DN would keep only one of them.
    let err = policy
        .subject_for(&[
            attr(CommonName, "plc-7"),
            attr(OrganizationalUnit, "Line 1"),
            attr(OrganizationalUnit, "Cell 4"),
        ])
        .unwrap_err();
    assert!(
        matches!(&err, Error::InvalidName(d) if d.contains("more than one OU")),
        "{err}"
    );

    let bad = |subject: Vec<(AttrType, AttrRule)>| NamePolicy {
        subject,
        ..NamePolicy::default()
    };
    for policy in [
        bad(vec![(Organization, AttrRule::Fixed("x\0".into()))]),
        bad(vec![(Country, AttrRule::Fixed("Germany".into()))]),
        bad(vec![
            (CommonName, AttrRule::Allow),
            (CommonName, AttrRule::Drop),
        ]),
        NamePolicy {
            max_sans: 0,
            ..NamePolicy::default()
        },
        NamePolicy {
            max_sans: MAX_SANS_LIMIT + 1,
            ..NamePolicy::default()
        },
        NamePolicy {
            uri_schemes: vec!["ht tp".into()],
            ..NamePolicy::default()
        },
    ] {
        assert!(
            matches!(policy.check(), Err(Error::InvalidProfile(_))),
            "{policy:?}"
        );
    }
    assert_eq!("serialnumber".parse::<AttrType>().unwrap(), SerialNumber);
    assert!("title".parse::<AttrType>().is_err());
}

#[test]
fn sans_are_counted_checked_and_uris_limited_to_the_profiles_schemes() {
    let policy = NamePolicy {
        max_sans: 2,
        ..NamePolicy::default()
    };
    let cn = Subject::new(vec![(AttrType::CommonName, "x".into())]).unwrap();
    let dns = |s: &str| SanType::DnsName(s.try_into().unwrap());
    let uri = |s: &str| SanType::URI(s.try_into().unwrap());
    assert!(policy.check_sans(&cn, &[]).is_ok());
    assert!(
        policy
            .check_sans(&cn, &[dns("a.example"), uri("spiffe://t.example/x")])
            .is_ok()
    );
    assert!(matches!(
        policy.check_sans(&cn, &[dns("a"), dns("b"), dns("c")]),
        Err(Error::TooManySans { count: 3, max: 2 })
    ));
    assert!(matches!(
        policy.check_sans(&Subject::default(), &[]),
        Err(Error::EmptySubject)
    ));
    assert!(
        policy
            .check_sans(&Subject::default(), &[dns("plc-7")])
            .is_ok()
    );
    let detail = invalid(policy.check_sans(&cn, &[uri("javascript:alert(1)")]));
    assert!(detail.contains("https, spiffe, urn"), "{detail}");
    invalid(policy.check_sans(&cn, &[uri("HTTP://x.example/")]));
    assert!(policy.check_sans(&cn, &[uri("HTTPS://x.example/")]).is_ok());
    invalid(policy.check_sans(&cn, &[dns("a b")]));
}

#[test]
fn display_never_panics_on_odd_printable_strings() {
    // yasna's PrintableString writer asserts on '?', which PrintableString allows.
    let subject = Subject::new(vec![(AttrType::SerialNumber, "a?b".into())]).unwrap();
    assert_eq!(subject.display().unwrap(), "serialNumber=a?b");
}
