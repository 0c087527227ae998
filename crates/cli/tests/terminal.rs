//! What an operator sees in a terminal (issue 17): one-shot commands print their result and no log line, and every
//! option of every command has help text.

use std::process::{Command, Output};

const BINARY: &str = env!("CARGO_BIN_EXE_tenantsync");

/// Runs the binary as an operator would: no log settings in the environment.
fn run(args: &[&str]) -> Output {
    let output = Command::new(BINARY)
        .args(args)
        .env_remove("TENANTSYNC_LOG")
        .env_remove("RUST_LOG")
        .env_remove("TENANTSYNC_DATABASE")
        .output()
        .expect("run tenantsync");
    assert!(
        output.status.success(),
        "{args:?} failed: stdout {} stderr {}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    output
}

#[track_caller]
fn assert_story_only(output: &Output, args: &[&str], expected: &str) {
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(stdout.contains(expected), "{args:?} printed:\n{stdout}");
    assert!(output.stderr.is_empty(), "{args:?} wrote to stderr:\n{}", String::from_utf8_lossy(&output.stderr));
}

#[test]
fn one_shot_commands_print_their_result_and_no_log_line() {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let database = format!("sqlite://{}", dir.path().join("tenantsync.db").display());
    let db = database.as_str();
    for (args, expected) in [
        (vec!["tenant", "create", "--name", "fabrikam", "--database", db], "client id"),
        (vec!["tenant", "create", "--name", "contoso", "--database", db], "secret"),
        (vec!["tenant", "list", "--database", db], "contoso"),
        (
            vec![
                "app",
                "credential",
                "create",
                "--tenant",
                "fabrikam",
                "--roles",
                "Directory.Read.All",
                "--database",
                db,
            ],
            "roles",
        ),
        (
            vec!["topology", "create", "--shape", "outbound", "--tenants", "fabrikam,contoso", "--database", db],
            "fabrikam -> contoso",
        ),
        (vec!["secrets", "check", "--database", db], ""),
    ] {
        let output = run(&args);
        assert_story_only(&output, &args, expected);
    }
    let listed =
        run(&["topology", "create", "--shape", "inbound", "--tenants", "fabrikam,contoso", "--database", db, "--json"]);
    let links: serde_json::Value = serde_json::from_slice(&listed.stdout).expect("topology create --json prints JSON");
    let job = links[0]["jobId"].as_str().expect("a job id").to_owned();
    let args = ["job", "plan", "--tenant", "contoso", "--job", job.as_str(), "--database", db];
    assert_story_only(&run(&args), &args, "objects");
}

/// The subcommands listed in a help text's `Commands:` section (without `help`).
fn subcommands(help: &str) -> Vec<String> {
    help.split("Commands:")
        .nth(1)
        .map(|section| section.split("\n\n").next().unwrap_or(""))
        .unwrap_or("")
        .lines()
        .filter_map(|line| line.split_whitespace().next())
        .filter(|name| *name != "help")
        .map(str::to_owned)
        .collect()
}

/// The options and arguments of a help text that carry no description (only `[env: …]`, `[default: …]`). Each
/// entry is a spec line (`-h, --help`, `--tenant <TENANT>`, `<FILE>`) with its description after two spaces or on
/// the indented lines below it (clap's layout when a description is long).
fn undocumented(help: &str) -> Vec<String> {
    let mut entries: Vec<(String, String)> = Vec::new();
    let mut in_section = false;
    for line in help.lines() {
        if !line.starts_with(' ') && !line.trim().is_empty() {
            in_section = line == "Options:" || line == "Arguments:";
            continue;
        }
        let trimmed = line.trim();
        if !in_section || trimmed.is_empty() {
            continue;
        }
        let indent = line.len() - line.trim_start().len();
        if indent <= 6 && (trimmed.starts_with('-') || trimmed.starts_with('<')) {
            let (spec, rest) = trimmed.split_once("  ").unwrap_or((trimmed, ""));
            entries.push((spec.to_owned(), rest.to_owned()));
        } else if let Some((_, rest)) = entries.last_mut() {
            rest.push(' ');
            rest.push_str(trimmed);
        }
    }
    entries
        .into_iter()
        .filter(|(_, rest)| {
            let mut text = rest.clone();
            while let (Some(open), Some(close)) = (text.find('['), text.find(']')) {
                if close < open {
                    break;
                }
                text.replace_range(open..=close, "");
            }
            text.trim().is_empty()
        })
        .map(|(spec, _)| spec)
        .collect()
}

#[test]
fn every_option_of_every_command_has_help_text() {
    let mut pending = vec![Vec::<String>::new()];
    let mut n_commands = 0;
    let mut missing = Vec::new();
    while let Some(path) = pending.pop() {
        let mut args: Vec<&str> = path.iter().map(String::as_str).collect();
        args.push("--help");
        let help = String::from_utf8(run(&args).stdout).expect("help is UTF-8");
        n_commands += 1;
        for line in undocumented(&help) {
            missing.push(format!("tenantsync {}: {line}", path.join(" ")));
        }
        for name in subcommands(&help) {
            let mut next = path.clone();
            next.push(name);
            pending.push(next);
        }
    }
    assert!(n_commands > 20, "only {n_commands} commands found");
    assert!(missing.is_empty(), "options without help text:\n{}", missing.join("\n"));
}
