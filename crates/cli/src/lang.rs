//! `tenantsync expr eval`, `scope test`, `rule test`: JSON lines in, one JSON line out per input line, so an
//! administrator can try a mapping, a scoping filter or a dynamic rule before saving it.

use std::process::ExitCode;

use anyhow::Context;
use tenantsync_expr::jsonl::{self, EvalOptions, LineStats};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

#[derive(Debug, clap::Subcommand)]
pub enum ExprCommand {
    /// Evaluate `{"expression", "attributes", "existing_target_values"}` lines.
    Eval {
        /// The time `Now()` returns (RFC 3339); default: the wall clock.
        #[arg(long)]
        now: Option<String>,
        /// Seed of `Guid()` and `RandomString()`.
        #[arg(long)]
        seed: Option<u64>,
    },
}

#[derive(Debug, clap::Subcommand)]
pub enum ScopeCommand {
    /// Test `{"filter", "user"}` lines.
    Test,
}

#[derive(Debug, clap::Subcommand)]
pub enum RuleCommand {
    /// Test `{"rule", "user"}` lines.
    Test,
}

/// Success when every line was answered, even with `error` lines: those are answers, not failures of the tool.
fn finish(stats: std::io::Result<LineStats>) -> anyhow::Result<ExitCode> {
    let stats = stats.context("reading stdin or writing stdout")?;
    tracing::debug!(n_lines = stats.n_lines, n_errors = stats.n_errors, "lines answered");
    Ok(ExitCode::SUCCESS)
}

pub fn expr(command: ExprCommand) -> anyhow::Result<ExitCode> {
    let ExprCommand::Eval { now, seed } = command;
    let now = match now {
        Some(text) => {
            OffsetDateTime::parse(&text, &Rfc3339).with_context(|| format!("--now '{text}' is not RFC 3339"))?
        }
        None => tenantsync_model::Clock::now(&tenantsync_model::SystemClock),
    };
    let options = EvalOptions { now: Some(now), seed };
    finish(jsonl::expr_eval_lines(std::io::stdin().lock(), std::io::stdout().lock(), &options))
}

pub fn scope(command: ScopeCommand) -> anyhow::Result<ExitCode> {
    let ScopeCommand::Test = command;
    finish(jsonl::scope_test_lines(std::io::stdin().lock(), std::io::stdout().lock()))
}

pub fn rule(command: RuleCommand) -> anyhow::Result<ExitCode> {
    let RuleCommand::Test = command;
    finish(jsonl::rule_test_lines(std::io::stdin().lock(), std::io::stdout().lock()))
}
