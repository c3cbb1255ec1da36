//! The documentation's walk-throughs, run the way a newcomer pastes them.
//!
//! Every `docs/<capability>.md` marks its pasteable blocks with an HTML comment on the line before the
//! fence:
//!
//! ```text
//! <!-- walkthrough expect: OK | good -->
//! ```sh
//! openssl verify …
//! ```
//! ```
//!
//! (`expect:` and its ` | `-separated texts are optional.) The test starts one real `shedu serve` in a
//! temporary folder, the way the README's first command does (data in `./shedu-data`), then runs each
//! file's blocks in order in one `bash -euo pipefail` whose working folder is the folder serve runs in,
//! with the built `shedu` first on `PATH`. It asserts that every block exits 0 and that its output
//! (stdout and stderr) contains each expected text.
//!
//! The one difference from a newcomer's machine: the listeners take free ports instead of 8443 and 8080
//! (other tests run beside this one), so the blocks' `127.0.0.1:8443` and `127.0.0.1:8080` are replaced
//! by the real addresses, and `SHEDU_URL` points the CLI at the HTTPS one; and the CLI's contexts are kept
//! in the test's folder (`SHEDU_CONFIG_DIR`) instead of `~/.config/shedu`.

// A panic is how a test reports failure.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use common::{Banner, wait_for_banner};

const SHEDU: &str = env!("CARGO_BIN_EXE_shedu");

/// Generous: on a loaded two-core machine several debug servers start at once.
const STARTUP_TIMEOUT: Duration = Duration::from_secs(90);

/// Longest one file's walk-through may take (`timeout` ends it beyond that).
const FILE_TIMEOUT_SECS: u32 = 120;

/// The capability documents (under `docs/`), in the order the README lists them. Each must hold a
/// walk-through; the README's own "Using it" block runs first.
const DOCS: [&str; 17] = [
    "cas-and-issuance.md",
    "validation.md",
    "keys.md",
    "gateway.md",
    "devices-and-est.md",
    "events.md",
    "audit.md",
    "configuration.md",
    "acme.md",
    "cli.md",
    "connector.md",
    "secrets.md",
    "kmip.md",
    "rotation.md",
    "cloud.md",
    "console.md",
    "scale-out.md",
];

const MARKER: &str = "<!-- walkthrough";

/// One pasteable block of a document.
#[derive(Debug)]
struct Block {
    /// 1-based line of the marker, for messages.
    line: usize,
    /// Texts the block's output must contain.
    expect: Vec<String>,
    /// The shell code between the fences.
    code: String,
}

/// The marked blocks of `text`. A marker not followed by a ```` ```sh ```` fence, or a fence never closed,
/// is an error: a walk-through that silently stops being run would be worse than none.
fn blocks(name: &str, text: &str) -> Vec<Block> {
    let lines: Vec<&str> = text.lines().collect();
    let mut out = Vec::new();
    let mut i = 0;
    while i < lines.len() {
        let line = lines[i].trim();
        if !line.starts_with(MARKER) {
            i += 1;
            continue;
        }
        let inner = line
            .strip_prefix(MARKER)
            .and_then(|r| r.strip_suffix("-->"))
            .unwrap_or_else(|| panic!("{name}:{}: a marker is one line ending in -->", i + 1))
            .trim();
        let expect = match inner.strip_prefix("expect:") {
            Some(list) => list.split(" | ").map(|s| s.trim().to_string()).collect(),
            None if inner.is_empty() => Vec::new(),
            None => panic!("{name}:{}: unknown marker text {inner:?}", i + 1),
        };
        assert_eq!(
            lines.get(i + 1).map(|l| l.trim_end()),
            Some("```sh"),
            "{name}:{}: a walkthrough marker must be followed by a ```sh fence",
            i + 1
        );
        let start = i + 2;
        let len = lines[start..]
            .iter()
            .position(|l| l.trim_end() == "```")
            .unwrap_or_else(|| panic!("{name}:{}: the block is never closed", i + 1));
        out.push(Block {
            line: i + 1,
            expect,
            code: lines[start..start + len].join("\n"),
        });
        i = start + len + 1;
    }
    out
}

fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// A loopback port free right now, below the ephemeral range (see `shedu_testkit::free_port_number`).
fn free_port() -> u16 {
    shedu_testkit::free_port_number()
}

/// A running `shedu serve`, killed on drop.
struct Server {
    child: Child,
    https: String,
    http: String,
    kmip: String,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The environment of a newcomer's second terminal: no `SHEDU_*` variable of the developer's, the built
/// binary first on `PATH`.
fn newcomer_command(program: &str, cwd: &Path, bin: &Path) -> Command {
    let mut cmd = Command::new(program);
    for (key, _) in std::env::vars_os() {
        if key.to_string_lossy().starts_with("SHEDU_") {
            cmd.env_remove(key);
        }
    }
    let path = std::env::var_os("PATH").unwrap_or_default();
    let mut paths = vec![bin.to_path_buf()];
    paths.extend(std::env::split_paths(&path));
    cmd.env("PATH", std::env::join_paths(paths).unwrap());
    cmd.current_dir(cwd);
    cmd
}

/// `shedu serve` in `dir` with its defaults (data in `./shedu-data`) but free ports. A port taken by
/// another process between [`free_port`] and the bind is tried again with new ports, twice at most.
fn start(dir: &Path, bin: &Path) -> Server {
    let mut attempt = 0;
    loop {
        attempt += 1;
        match try_start(dir, bin) {
            Ok(server) => return server,
            Err(stderr) if attempt < 3 && stderr.contains("cannot bind") => continue,
            Err(stderr) => panic!("shedu serve did not start: {stderr}"),
        }
    }
}

/// One attempt of [`start`]; `Err` with the server's output when it exits or stays silent.
fn try_start(dir: &Path, bin: &Path) -> Result<Server, String> {
    let https = format!("127.0.0.1:{}", free_port());
    let http = format!("127.0.0.1:{}", free_port());
    let kmip = format!("127.0.0.1:{}", free_port());
    let stderr_path = dir.join("serve.stderr");
    let mut child = newcomer_command("shedu", dir, bin)
        .args(["serve", "--listen", &https, "--http-listen", &http])
        .args(["--kmip-listen", &kmip])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::from(std::fs::File::create(&stderr_path).unwrap()))
        .spawn()
        .unwrap();
    let (banner, seen) = wait_for_banner(&mut child, STARTUP_TIMEOUT);
    if let Banner::Listening(addr) = banner {
        assert_eq!(
            addr, https,
            "the banner names the HTTPS address it was given"
        );
        return Ok(Server {
            child,
            https,
            http,
            kmip,
        });
    }
    let _ = child.kill();
    let _ = child.wait();
    let stderr = std::fs::read_to_string(&stderr_path).unwrap_or_default();
    Err(format!("stdout: {seen:?}\nstderr: {stderr}"))
}

/// Runs one document's blocks in one shell; panics naming the block that failed or missed an output.
fn run_walkthrough(name: &str, blocks: &[Block], server: &Server, dir: &Path, bin: &Path) {
    let mut script = String::new();
    for (i, b) in blocks.iter().enumerate() {
        let code = b
            .code
            .replace("127.0.0.1:8443", &server.https)
            .replace("127.0.0.1:8080", &server.http)
            .replace("127.0.0.1:5696", &server.kmip);
        script.push_str(&format!("printf '\\n@@block {i}@@\\n'\n{code}\n"));
    }
    script.push_str("printf '\\n@@end@@\\n'\n");
    let script_path = dir.join(format!("{}.sh", name.replace('/', "-")));
    std::fs::write(&script_path, &script).unwrap();
    let out = newcomer_command("timeout", dir, bin)
        .arg(FILE_TIMEOUT_SECS.to_string())
        .args(["bash", "-euo", "pipefail", "-c"])
        // stderr joins stdout so each block's output stays in order between the markers.
        .arg(format!("exec 2>&1; . {}", script_path.display()))
        .env("SHEDU_URL", format!("https://{}", server.https))
        // Contexts (`shedu login`) are saved in the test's folder, not the home folder.
        .env("SHEDU_CONFIG_DIR", dir.join("shedu-config"))
        .stdin(Stdio::null())
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    // The output of block i lies between its marker and the next.
    let mut outputs: Vec<&str> = Vec::new();
    let mut rest = text.as_str();
    for i in 0..blocks.len() {
        let marker = format!("@@block {i}@@\n");
        let Some(at) = rest.find(&marker) else { break };
        rest = &rest[at + marker.len()..];
        let end = rest
            .find(&format!("@@block {}@@\n", i + 1))
            .or_else(|| rest.find("@@end@@"))
            .unwrap_or(rest.len());
        outputs.push(&rest[..end]);
    }
    let failed = outputs.len().saturating_sub(1);
    assert!(
        out.status.success() && text.contains("@@end@@"),
        "{name}: the walk-through block at line {} failed ({}):\n{}\n--- output ---\n{}",
        blocks[failed].line,
        out.status,
        blocks[failed].code,
        outputs.last().copied().unwrap_or(&text)
    );
    for (b, output) in blocks.iter().zip(&outputs) {
        for want in &b.expect {
            assert!(
                output.contains(want.as_str()),
                "{name}: the block at line {} should print {want:?}:\n{}\n--- output ---\n{output}",
                b.line,
                b.code
            );
        }
    }
}

#[test]
fn every_walkthrough_runs_as_documented() {
    let docs = repo_root().join("docs");
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("newcomer");
    let bin = tmp.path().join("bin");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::create_dir_all(&bin).unwrap();
    std::os::unix::fs::symlink(SHEDU, bin.join("shedu")).unwrap();

    let files =
        std::iter::once(repo_root().join("README.md")).chain(DOCS.iter().map(|n| docs.join(n)));
    let parsed: Vec<(String, Vec<Block>)> = files
        .map(|path| {
            let name = path
                .strip_prefix(repo_root())
                .unwrap()
                .display()
                .to_string();
            let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{name}: {e}"));
            let b = blocks(&name, &text);
            assert!(!b.is_empty(), "{name} has no walk-through block");
            (name, b)
        })
        .collect();

    let server = start(&dir, &bin);
    for (name, blocks) in &parsed {
        run_walkthrough(name, blocks, &server, &dir, &bin);
    }
}

/// Every capability document is listed above (so it is run) and linked from the README.
#[test]
fn every_document_is_run_and_linked() {
    let root = repo_root();
    let readme = std::fs::read_to_string(root.join("README.md")).unwrap();
    let mut found: Vec<String> = std::fs::read_dir(root.join("docs"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".md"))
        .collect();
    found.sort();
    let mut listed: Vec<String> = DOCS.iter().map(|s| s.to_string()).collect();
    listed.sort();
    assert_eq!(found, listed, "docs/*.md and DOCS differ");
    for name in DOCS {
        assert!(
            readme.contains(&format!("(docs/{name})")),
            "README.md does not link docs/{name}"
        );
    }
}

#[test]
fn markers_are_parsed() {
    let text = "intro\n<!-- walkthrough expect: OK | good -->\n```sh\necho OK good\n```\n\
                ```sh\nnot marked\n```\n<!-- walkthrough -->\n```sh\ntrue\n```\n";
    let b = blocks("t.md", text);
    assert_eq!(b.len(), 2);
    assert_eq!(b[0].expect, ["OK", "good"]);
    assert_eq!(b[0].code, "echo OK good");
    assert_eq!((b[1].line, b[1].code.as_str()), (9, "true"));
}
