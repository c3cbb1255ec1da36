//! Globs over OS versions in route matches: `*` (any run of characters), `?` (one character) and classes
//! (`[0-9]`, `[!a]`). Checked when a route is written, so a malformed pattern is a 400, not a route that
//! silently never matches.

/// Why a pattern is malformed, or `Ok`.
pub(crate) fn check(pattern: &str) -> Result<(), String> {
    if pattern.is_empty() || pattern.len() > 128 {
        return Err("a glob is 1 to 128 characters".into());
    }
    let chars: Vec<char> = pattern.chars().collect();
    let mut i = 0;
    while i < chars.len() {
        if chars[i] == '[' {
            i = class_end(&chars, i)
                .ok_or_else(|| format!("unclosed '[' at {i} in {pattern:?}"))?;
        } else if chars[i] == ']' {
            return Err(format!("']' without '[' at {i} in {pattern:?}"));
        }
        i += 1;
    }
    Ok(())
}

/// Whether `text` matches `pattern` (a checked pattern; a malformed one matches nothing).
pub(crate) fn matches(pattern: &str, text: &str) -> bool {
    let p: Vec<char> = pattern.chars().collect();
    let t: Vec<char> = text.chars().collect();
    check(pattern).is_ok() && match_at(&p, &t)
}

fn match_at(p: &[char], t: &[char]) -> bool {
    // Iterative with one backtrack point for the last `*`: linear in practice, never exponential.
    let (mut pi, mut ti) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while ti < t.len() {
        let step = match p.get(pi) {
            Some('*') => {
                star = Some((pi, ti));
                pi += 1;
                continue;
            }
            Some('?') => Some(pi + 1),
            Some('[') => {
                class_end(p, pi).and_then(|end| in_class(&p[pi + 1..end], t[ti]).then_some(end + 1))
            }
            Some(c) => (*c == t[ti]).then_some(pi + 1),
            None => None,
        };
        match (step, star) {
            (Some(next), _) => {
                pi = next;
                ti += 1;
            }
            (None, Some((sp, st))) => {
                pi = sp + 1;
                ti = st + 1;
                star = Some((sp, st + 1));
            }
            (None, None) => return false,
        }
    }
    p[pi..].iter().all(|c| *c == '*')
}

/// The index of the `]` closing the class that opens at `open`.
fn class_end(p: &[char], open: usize) -> Option<usize> {
    let mut i = open + 1;
    if p.get(i) == Some(&'!') {
        i += 1;
    }
    // A `]` right after the opening is a member, as in shell globs.
    if p.get(i) == Some(&']') {
        i += 1;
    }
    while i < p.len() {
        if p[i] == ']' {
            return Some(i);
        }
        i += 1;
    }
    None
}

fn in_class(class: &[char], c: char) -> bool {
    let (negated, members) = match class.first() {
        Some('!') => (true, &class[1..]),
        _ => (false, class),
    };
    let mut hit = false;
    let mut i = 0;
    while i < members.len() {
        if i + 2 < members.len() && members[i + 1] == '-' {
            hit |= members[i] <= c && c <= members[i + 2];
            i += 3;
        } else {
            hit |= members[i] == c;
            i += 1;
        }
    }
    hit != negated
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn globs() {
        assert!(matches("12.*", "12.4"));
        assert!(matches("12.*", "12."));
        assert!(!matches("12.*", "11.4"));
        assert!(matches("9.?.0", "9.1.0"));
        assert!(matches("[89].*", "9.1"));
        assert!(!matches("[!89].*", "9.1"));
        assert!(matches("1[0-2]", "11"));
        assert!(matches("*", ""));
        assert!(matches("a*b*c", "aXbYbZc"));
        assert!(!matches("a*b*c", "aXbYbZ"));
        assert!(check("9.[1").is_err());
        assert!(check("9.]").is_err());
        assert!(check("").is_err());
        assert!(!matches("9.[1", "9.[1"));
    }
}
