//! The topology page: this tenant in the middle of an inline SVG, its partners around it, an arrow for each job it
//! runs towards a target (coloured by the job's status, labelled with its users and deletion guard) and an arrow
//! from each partner it accepts synced users from (dashed until this tenant's audit log shows writes from it).
//! A table repeats the picture in words.
//!
//! Only this tenant's own data is read: its partner entries (consent), its jobs, and its own audit log for inbound
//! writes. Another tenant's jobs are never read, even when both are hosted here.

use std::collections::HashMap;

use askama::Template;
use axum::extract::State;
use axum::response::Response;
use tenantsync_model::TenantId;

use super::session::Signed;
use super::view::{self, JobView, time_text};
use super::{Chrome, ConsoleError, render};
use crate::{AppState, audit, policies, synchronization};

const WIDTH: f64 = 1000.0;
/// The picture's height with one or two other tenants (a row) and with more (a ring).
const ROW_HEIGHT: f64 = 300.0;
const RING_HEIGHT: f64 = 640.0;
const NODE_WIDTH: f64 = 210.0;
const NODE_HEIGHT: f64 = 84.0;
/// Between two lines of an arrow's label.
const LINE: i64 = 14;
/// How far apart the two directions between the same pair of tenants run.
const LANE: f64 = 9.0;
/// How many of the newest audit entries are searched for inbound writes.
const AUDIT_WINDOW: u32 = 500;

/// A box in the picture.
struct Node {
    x: i64,
    y: i64,
    width: i64,
    height: i64,
    text_x: i64,
    title: String,
    /// Each line's baseline and text; the first is the name.
    lines: Vec<(i64, String)>,
    class: &'static str,
}

/// An arrow in the picture, with its label.
struct Arrow {
    x1: i64,
    y1: i64,
    x2: i64,
    y2: i64,
    label_x: i64,
    label_y: i64,
    /// The label, one short line each (the details are in the title and the table).
    label: Vec<String>,
    title: String,
    class: &'static str,
    /// The id of the arrowhead marker of the same colour.
    marker: &'static str,
}

/// A partner in words.
struct PartnerRow {
    name: String,
    tenant_id: String,
    outbound: String,
    inbound: String,
    jobs: String,
    inbound_writes: String,
}

#[derive(Template)]
#[template(path = "console/topology.html")]
struct TopologyPage {
    chrome: Chrome,
    width: i64,
    height: i64,
    nodes: Vec<Node>,
    arrows: Vec<Arrow>,
    rows: Vec<PartnerRow>,
    jobs: Vec<JobView>,
    /// What the credential could not read, said plainly.
    notes: Vec<String>,
    description: String,
}

/// Another tenant in the picture.
#[derive(Default)]
struct Other {
    name: String,
    outbound_allowed: Option<bool>,
    inbound_allowed: bool,
    /// Whether this tenant's identity sync policy lets the partner sync users in.
    inbound_sync: bool,
    is_partner: bool,
    jobs: Vec<usize>,
    /// Inbound writes seen in the audit log: how many, the newest time.
    inbound_writes: Option<(usize, String)>,
}

fn yes_no(flag: Option<bool>) -> &'static str {
    match flag {
        Some(true) => "allowed",
        Some(false) => "not allowed",
        None => "not set",
    }
}

/// The point where the segment from the centre of a box towards (`dx`, `dy`) leaves the box.
fn exit_fraction(dx: f64, dy: f64) -> f64 {
    let fx = if dx.abs() > f64::EPSILON { (NODE_WIDTH / 2.0 + 6.0) / dx.abs() } else { f64::INFINITY };
    let fy = if dy.abs() > f64::EPSILON { (NODE_HEIGHT / 2.0 + 6.0) / dy.abs() } else { f64::INFINITY };
    fx.min(fy).min(0.45)
}

/// An arrow from the box centred at `from` to the box centred at `to`, moved `offset` to its left.
fn arrow(
    from: (f64, f64),
    to: (f64, f64),
    offset: f64,
    label: Vec<String>,
    title: String,
    class: &'static str,
) -> Arrow {
    let (dx, dy) = (to.0 - from.0, to.1 - from.1);
    let length = (dx * dx + dy * dy).sqrt().max(1.0);
    let (nx, ny) = (-dy / length * offset, dx / length * offset);
    let start = exit_fraction(dx, dy);
    let end = 1.0 - exit_fraction(dx, dy);
    let (x1, y1) = (from.0 + dx * start + nx, from.1 + dy * start + ny);
    let (x2, y2) = (from.0 + dx * end + nx, from.1 + dy * end + ny);
    let (mx, my) = ((x1 + x2) / 2.0 + nx * 1.6, (y1 + y2) / 2.0 + ny * 1.6);
    // The label sits on the arrow's outer side: above it, its last line ends just over the arrow.
    let label_y = if ny < 0.0 { my - 4.0 - (LINE * (label.len() as i64 - 1)) as f64 } else { my + 12.0 };
    Arrow {
        x1: x1.round() as i64,
        y1: y1.round() as i64,
        x2: x2.round() as i64,
        y2: y2.round() as i64,
        label_x: mx.round() as i64,
        label_y: label_y.round() as i64,
        label,
        title,
        class,
        marker: match class {
            "arrow arrow-active" => "head-active",
            "arrow arrow-paused" => "head-paused",
            "arrow arrow-quarantine" => "head-quarantine",
            "arrow arrow-inbound" | "arrow arrow-inbound-seen" => "head-inbound",
            "arrow arrow-inbound-withdrawn" => "head-quarantine",
            _ => "head-notrun",
        },
    }
}

fn node(center: (f64, f64), title: String, lines: Vec<String>, class: &'static str) -> Node {
    let top = (center.1 - NODE_HEIGHT / 2.0).round() as i64;
    Node {
        x: (center.0 - NODE_WIDTH / 2.0).round() as i64,
        y: top,
        width: NODE_WIDTH as i64,
        height: NODE_HEIGHT as i64,
        text_x: center.0.round() as i64,
        title,
        lines: lines.into_iter().zip(0..).map(|(line, idx)| (top + 22 + idx * 17, line)).collect(),
        class,
    }
}

fn arrow_class(job: &JobView) -> &'static str {
    match job.status {
        "Active" => "arrow arrow-active",
        "Quarantine" => "arrow arrow-quarantine",
        "Paused" => "arrow arrow-paused",
        _ => "arrow arrow-notrun",
    }
}

/// `GET /console/topology`.
pub(crate) async fn page(State(state): State<AppState>, signed: Signed) -> Result<Response, ConsoleError> {
    let caller = &signed.caller;
    let mut notes = Vec::new();
    let mut others: Vec<(String, Other)> = Vec::new();
    let index_of = |others: &mut Vec<(String, Other)>, key: &str| -> usize {
        match others.iter().position(|(known, _)| known.eq_ignore_ascii_case(key)) {
            Some(idx) => idx,
            None => {
                others.push((key.to_owned(), Other::default()));
                others.len() - 1
            }
        }
    };

    if caller.roles.has_any(policies::READ) {
        for partner in state.admin(caller).list_partners(caller.tenant).await? {
            let idx = index_of(&mut others, &partner.tenant_id);
            let other = &mut others[idx].1;
            other.is_partner = true;
            other.outbound_allowed = partner.automatic_user_consent_settings.outbound_allowed;
            other.inbound_allowed = partner.automatic_user_consent_settings.inbound_allowed == Some(true);
            other.inbound_sync = partner.allows_inbound_sync();
            if let Some(name) = partner.identity_synchronization.as_ref().and_then(|sync| sync.display_name.clone()) {
                other.name = name;
            }
        }
    } else {
        notes.push("Partners and consent are not shown: the credential has no Policy.Read.All role.".to_owned());
    }

    let jobs = if caller.roles.has_any(synchronization::READ) {
        view::jobs_of(&state, caller).await?
    } else {
        notes.push("Jobs are not shown: the credential has no Synchronization.Read.All role.".to_owned());
        Vec::new()
    };
    for (job_idx, job) in jobs.iter().enumerate() {
        let key = job.target_tenant.map(|tenant| tenant.to_string()).unwrap_or_else(|| job.target_label.clone());
        let idx = index_of(&mut others, &key);
        others[idx].1.jobs.push(job_idx);
        if others[idx].1.name.is_empty() {
            others[idx].1.name = job.target_label.clone();
        }
    }

    if caller.roles.has_any(audit::READ) {
        let entries =
            state.repo().directory_audits(caller.tenant, None, AUDIT_WINDOW).await.map_err(ConsoleError::internal)?;
        let mut seen: HashMap<String, (usize, String)> = HashMap::new();
        for (_, entry) in entries {
            let Some((_, source)) = entry.additional_details.iter().find(|(key, _)| key == "SourceTenantId") else {
                continue;
            };
            let slot = seen.entry(source.to_lowercase()).or_insert((0, time_text(Some(entry.activity_date_time))));
            slot.0 += 1;
        }
        for (source, writes) in seen {
            let idx = index_of(&mut others, &source);
            others[idx].1.inbound_writes = Some(writes);
        }
    }

    for (key, other) in &mut others {
        if other.name.is_empty() {
            other.name = match TenantId::parse(key) {
                Ok(tenant) => view::tenant_label(&state, tenant).await,
                Err(_) => key.clone(),
            };
        }
    }

    // Layout: this tenant in the middle, the others on an ellipse around it, starting on the right (one or two
    // others: a row).
    let height = if others.len() <= 2 { ROW_HEIGHT } else { RING_HEIGHT };
    let center = (if others.len() == 1 { WIDTH * 0.25 } else { WIDTH / 2.0 }, height / 2.0);
    let (radius_x, radius_y) = (WIDTH / 2.0 - NODE_WIDTH / 2.0 - 16.0, height / 2.0 - NODE_HEIGHT / 2.0 - 16.0);
    let mut nodes = vec![node(
        center,
        format!("This tenant: {} ({})", signed.tenant_name, caller.tenant),
        vec![signed.tenant_name.clone(), "this tenant".to_owned(), format!("{} outbound job(s)", jobs.len())],
        "node node-self",
    )];
    let mut arrows = Vec::new();
    let mut rows = Vec::new();
    let n_others = others.len().max(1) as f64;
    for (idx, (key, other)) in others.iter().enumerate() {
        let angle = std::f64::consts::TAU * idx as f64 / n_others;
        let at = (center.0 + radius_x * angle.cos(), center.1 + radius_y * angle.sin());
        // One other tenant: the two boxes share the width, this tenant on the left.
        let at = if others.len() == 1 { (WIDTH * 0.75, center.1) } else { at };
        let consent = format!(
            "outbound {} · inbound {}",
            yes_no(other.outbound_allowed),
            if other.inbound_sync { "allowed" } else { "not allowed" }
        );
        let short_id = if key.chars().count() > 13 {
            format!("{}…", key.chars().take(13).collect::<String>())
        } else {
            key.clone()
        };
        let mut lines = vec![other.name.clone(), short_id];
        if other.is_partner {
            lines.push(format!("outbound {}", yes_no(other.outbound_allowed)));
            lines.push(format!("inbound {}", if other.inbound_sync { "allowed" } else { "not allowed" }));
        } else {
            lines.push("no partner entry".to_owned());
        }
        let class = if other.is_partner { "node node-partner" } else { "node node-other" };
        nodes.push(node(at, format!("{} ({key}): {consent}", other.name), lines, class));
        for job_idx in &other.jobs {
            let job = &jobs[*job_idx];
            let guard = if job.guard_enabled { format!("guard {}", job.guard_value) } else { "no guard".to_owned() };
            let staged = if job.staged > 0 { format!(" · {} held", job.staged) } else { String::new() };
            let label = vec![format!("{} · {} users", job.status, job.synchronized_users), format!("{guard}{staged}")];
            let title = format!(
                "Job {} from this tenant to {}: {}, {} users synchronized, deletion guard {}{}",
                job.name,
                other.name,
                job.status,
                job.synchronized_users,
                if job.guard_enabled { format!("at {}", job.guard_value) } else { "off".to_owned() },
                staged
            );
            arrows.push(arrow(center, at, LANE, label, title, arrow_class(job)));
        }
        if other.inbound_sync || other.inbound_writes.is_some() {
            let (label, title, class) = match (&other.inbound_writes, other.inbound_sync) {
                (Some((n_writes, newest)), true) => (
                    vec!["syncs in".to_owned(), format!("{n_writes} writes seen")],
                    format!("{n_writes} writes seen, the newest at {newest}"),
                    "arrow arrow-inbound-seen",
                ),
                (Some((n_writes, _)), false) => (
                    vec!["consent withdrawn".to_owned(), format!("{n_writes} writes seen")],
                    format!("consent withdrawn after {n_writes} writes"),
                    "arrow arrow-inbound-withdrawn",
                ),
                (None, _) => (
                    vec!["may sync in".to_owned(), "consent given".to_owned()],
                    "consent given, no writes seen yet".to_owned(),
                    "arrow arrow-inbound",
                ),
            };
            let title = format!("From {} into this tenant: {title}", other.name);
            arrows.push(arrow(at, center, LANE, label, title, class));
        }
        rows.push(PartnerRow {
            name: other.name.clone(),
            tenant_id: key.clone(),
            outbound: if other.is_partner {
                yes_no(other.outbound_allowed).to_owned()
            } else {
                "no partner entry".to_owned()
            },
            inbound: if other.is_partner {
                format!(
                    "{} (automatic consent {})",
                    if other.inbound_sync { "allowed" } else { "not allowed" },
                    if other.inbound_allowed { "on" } else { "off" }
                )
            } else {
                "no partner entry".to_owned()
            },
            jobs: other
                .jobs
                .iter()
                .map(|idx| format!("{} ({})", jobs[*idx].name, jobs[*idx].status))
                .collect::<Vec<_>>()
                .join(", "),
            inbound_writes: match &other.inbound_writes {
                Some((n_writes, newest)) => format!("{n_writes}, newest {newest}"),
                None => "none seen".to_owned(),
            },
        });
    }
    let description = format!(
        "{} in the middle with {} other tenant(s) around it, {} outbound job(s) and {} inbound flow(s).",
        signed.tenant_name,
        others.len(),
        jobs.len(),
        others.iter().filter(|(_, other)| other.inbound_sync || other.inbound_writes.is_some()).count()
    );
    render(&TopologyPage {
        chrome: signed.chrome("topology"),
        width: WIDTH as i64,
        height: height as i64,
        nodes,
        arrows,
        rows,
        jobs,
        notes,
        description,
    })
}
