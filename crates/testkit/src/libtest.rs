//! Reading a test binary's own report. Tests that re-run one test of their binary in a child process
//! (`<exe> <name> --exact`) must check that exactly that test ran and passed: a name that matches nothing
//! exits 0 with `0 passed`, which an exit-code check takes for success.
//!
//! This file has no dependencies, so test crates that cannot depend on the test kit (the key engines, which
//! the test kit depends on) include it with `#[path]`.

/// Asserts that `stdout`, the output of `<test binary> <test> --exact …`, reports exactly one test run
/// and passed: `running 1 test` and libtest's summary `test result: ok. 1 passed; 0 failed; 0 ignored;
/// 0 measured; …`. libtest prints its own `running` line first and its summary last; a test that re-runs
/// a test itself may print a grandchild's report in between.
pub fn assert_exactly_one_passed(test: &str, stdout: &str) {
    let running = stdout.lines().find(|l| l.starts_with("running "));
    assert_eq!(
        running,
        Some("running 1 test"),
        "child {test}: expected exactly one test to run:\n{stdout}"
    );
    let Some(summary) = stdout
        .lines()
        .rev()
        .find_map(|l| l.strip_prefix("test result: "))
    else {
        panic!("child {test}: no libtest summary line:\n{stdout}");
    };
    let (verdict, counts) = summary
        .split_once(". ")
        .unwrap_or_else(|| panic!("child {test}: unreadable summary {summary:?}"));
    assert_eq!(verdict, "ok", "child {test} failed:\n{stdout}");
    let count = |what: &str| -> u64 {
        counts
            .split("; ")
            .find_map(|part| part.strip_suffix(what)?.trim().parse().ok())
            .unwrap_or_else(|| panic!("child {test}: no {what:?} count in {summary:?}"))
    };
    assert_eq!(
        (count("passed"), count("failed"), count("ignored")),
        (1, 0, 0),
        "child {test}: expected `1 passed; 0 failed; 0 ignored` in {summary:?}"
    );
}

#[cfg(test)]
mod tests {
    use super::assert_exactly_one_passed;

    const ONE: &str = "\nrunning 1 test\ntest a ... ok\n\n\
        test result: ok. 1 passed; 0 failed; 0 ignored; 0 measured; 12 filtered out; finished in 0.01s\n\n";

    #[test]
    fn one_passed_test_is_accepted() {
        assert_exactly_one_passed("a", ONE);
        // A test that re-ran another one itself: the grandchild's report comes between its own lines.
        let nested = ONE.replace("test a ... ", &format!("test a ... {ONE}"));
        assert_exactly_one_passed("a", &nested);
    }

    #[test]
    fn no_test_eleven_tests_or_a_failure_are_refused() {
        for bad in [
            ONE.replace("running 1 test", "running 0 tests")
                .replace("1 passed", "0 passed"),
            ONE.replace("running 1 test", "running 11 tests")
                .replace("1 passed", "11 passed"),
            ONE.replace("1 passed; 0 failed", "0 passed; 1 failed")
                .replace("ok. ", "FAILED. "),
            ONE.replace("0 ignored", "1 ignored"),
            // Its own report says no test ran, whatever a grandchild printed before.
            format!("{ONE}{}", ONE.replace("1 passed", "0 passed")),
            String::new(),
        ] {
            let refused = std::panic::catch_unwind(|| assert_exactly_one_passed("a", &bad));
            assert!(refused.is_err(), "accepted:\n{bad}");
        }
    }
}
