//! Fault injection at the connector boundary (issue 5, "Engine safety"), in process and without HTTP: a
//! [`FaultyTarget`] wraps the [`LocalTarget`] and fails a deterministic share of writes, fails every write of one
//! poisoned object, or slows writes down; a [`FaultySource`] breaks the source read. Each test drives
//! `run_cycle` directly over a temporary SQLite file, moving a [`ManualClock`] between cycles, and checks that the
//! engine converges without losing or duplicating anyone, that retries wait for their backoff, that an object
//! that never succeeds ends in the dead-letter list, that failures dominating a cycle quarantine the job (and that
//! it leaves quarantine by itself), and that a bad source read never deprovisions anyone.

use std::collections::hash_map::DefaultHasher;
use std::collections::{HashMap, HashSet};
use std::hash::{Hash, Hasher};
use std::sync::Arc;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

use async_trait::async_trait;
use serde_json::{Map, Value, json};
use tenantsync_connectors::{LocalSource, LocalTarget};
use tenantsync_directory::{Directory, NewTenant};
use tenantsync_engine::admin::{Admin, CTS_APPLICATION_TEMPLATE};
use tenantsync_engine::connector::{
    Anchor, ChangePage, PeerError, SourceDirectory, SourceUser, TargetDirectory, TargetUser,
};
use tenantsync_engine::cycle::{CycleEnv, CycleReport, EngineError, escrow_delay, run_cycle};
use tenantsync_engine::ids::RANDOM;
use tenantsync_engine::job::JobKey;
use tenantsync_engine::job::{
    self, Deprovision, DeprovisionAction, Escrow, JOB_STATES, JobState, Phase, ScheduleState, escrows_collection,
};
use tenantsync_engine::plan::IdentityType;
use tenantsync_engine::policy::{IdentitySynchronization, Partner, UserSyncInbound};
use tenantsync_engine::repo::{PageRecord, SyncRepo, WriteCondition};
use tenantsync_engine::schema::AZURE2AZURE_TEMPLATE;
use tenantsync_engine::settings::Secret;
use tenantsync_model::{Clock, ManualClock, ObjectId, ObjectKind, Tenant, User};
use tenantsync_store::{LogQuery, LogRow, Store, TxMode};
use tenantsync_store_sqlite::SqliteStore;
use time::{Duration, OffsetDateTime};

/// What the faulty target does to writes.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Mode {
    Pass,
    /// This percentage of write attempts fails, chosen by a hash of the object and its attempt number.
    Percent(u64),
    All,
}

/// A [`LocalTarget`] whose writes fail or slow down on demand. Reads always pass.
struct FaultyTarget {
    inner: LocalTarget,
    mode: Mutex<Mode>,
    /// Every write of this source object fails.
    poisoned: Mutex<Option<ObjectId>>,
    /// Each write waits this long first.
    delay: Mutex<Option<std::time::Duration>>,
    /// Write attempts per source object.
    attempts: Mutex<HashMap<ObjectId, u32>>,
    /// A stable name per source object (its position), so the objects that fail do not depend on random ids.
    labels: HashMap<ObjectId, usize>,
    n_writes: AtomicU64,
    n_failed: AtomicU64,
    /// The next write announces itself on the first channel and waits for the second (a process pausing just
    /// before a target write).
    pause: Mutex<Option<(tokio::sync::oneshot::Sender<()>, tokio::sync::oneshot::Receiver<()>)>>,
    /// The pause waits for the write with this number (counted from 0) instead of the next one.
    pause_at: AtomicU64,
}

impl FaultyTarget {
    fn new(inner: LocalTarget, labels: HashMap<ObjectId, usize>) -> FaultyTarget {
        FaultyTarget {
            inner,
            labels,
            mode: Mutex::new(Mode::Pass),
            poisoned: Mutex::new(None),
            delay: Mutex::new(None),
            attempts: Mutex::new(HashMap::new()),
            n_writes: AtomicU64::new(0),
            n_failed: AtomicU64::new(0),
            pause: Mutex::new(None),
            pause_at: AtomicU64::new(0),
        }
    }

    fn set_mode(&self, mode: Mode) {
        *self.mode.lock().unwrap() = mode;
    }

    fn poison(&self, source_id: Option<ObjectId>) {
        *self.poisoned.lock().unwrap() = source_id;
    }

    fn attempts_of(&self, source_id: ObjectId) -> u32 {
        self.attempts.lock().unwrap().get(&source_id).copied().unwrap_or(0)
    }

    /// The source object a target user stands for (its anchor), so decisions do not depend on random target ids.
    async fn source_of(&self, target_id: ObjectId) -> ObjectId {
        let found = self.inner.get_user(target_id).await.ok().flatten();
        found
            .and_then(|user| {
                user.attributes["identities"][0]["issuerAssignedId"].as_str().and_then(|id| ObjectId::parse(id).ok())
            })
            .unwrap_or(target_id)
    }

    /// Counts one write attempt of `source_id` and decides whether it fails.
    async fn write(&self, source_id: ObjectId) -> Result<(), PeerError> {
        let due = self.n_writes.load(Ordering::Relaxed) >= self.pause_at.load(Ordering::Relaxed);
        let pause = if due { self.pause.lock().unwrap().take() } else { None };
        if let Some((paused, resume)) = pause {
            paused.send(()).expect("the test waits for the pause");
            resume.await.expect("the test resumes the write");
        }
        let delay = *self.delay.lock().unwrap();
        if let Some(delay) = delay {
            tokio::time::sleep(delay).await;
        }
        let attempt = {
            let mut attempts = self.attempts.lock().unwrap();
            let slot = attempts.entry(source_id).or_insert(0);
            *slot += 1;
            *slot
        };
        self.n_writes.fetch_add(1, Ordering::Relaxed);
        let fails = *self.poisoned.lock().unwrap() == Some(source_id)
            || match *self.mode.lock().unwrap() {
                Mode::Pass => false,
                Mode::All => true,
                Mode::Percent(percent) => {
                    let mut hasher = DefaultHasher::new();
                    (self.labels.get(&source_id), attempt).hash(&mut hasher);
                    hasher.finish() % 100 < percent
                }
            };
        if fails {
            self.n_failed.fetch_add(1, Ordering::Relaxed);
            return Err(PeerError::Unavailable(format!("injected fault (attempt {attempt})").into()));
        }
        Ok(())
    }

    async fn write_target(&self, target_id: ObjectId) -> Result<(), PeerError> {
        let source_id = self.source_of(target_id).await;
        self.write(source_id).await
    }
}

#[async_trait]
impl TargetDirectory for FaultyTarget {
    fn external_upn(&self, source_upn: &str) -> String {
        self.inner.external_upn(source_upn)
    }
    fn system_name(&self) -> String {
        self.inner.system_name()
    }
    async fn ready(&self) -> Result<(), PeerError> {
        self.inner.ready().await
    }
    async fn get_user(&self, id: ObjectId) -> Result<Option<TargetUser>, PeerError> {
        self.inner.get_user(id).await
    }
    async fn get_users(&self, ids: &[ObjectId]) -> Result<Vec<Option<TargetUser>>, PeerError> {
        self.inner.get_users(ids).await
    }
    async fn find_by_anchor(&self, anchor: &Anchor) -> Result<Option<TargetUser>, PeerError> {
        self.inner.find_by_anchor(anchor).await
    }
    async fn find_by_anchors(&self, anchors: &[Anchor]) -> Result<Vec<Option<TargetUser>>, PeerError> {
        self.inner.find_by_anchors(anchors).await
    }
    async fn create_user(&self, anchor: &Anchor, attributes: &Map<String, Value>) -> Result<TargetUser, PeerError> {
        self.write(anchor.source_id).await?;
        self.inner.create_user(anchor, attributes).await
    }
    async fn create_users(&self, items: Vec<(Anchor, Map<String, Value>)>) -> Vec<Result<ObjectId, PeerError>> {
        // Each item is decided on its own; the survivors go to the real target in one batch.
        let mut decided = Vec::with_capacity(items.len());
        for (anchor, _) in &items {
            decided.push(self.write(anchor.source_id).await);
        }
        let survivors: Vec<(Anchor, Map<String, Value>)> =
            items.into_iter().zip(&decided).filter(|(_, decision)| decision.is_ok()).map(|(item, _)| item).collect();
        let mut created = self.inner.create_users(survivors).await.into_iter();
        decided
            .into_iter()
            .map(|decision| match decision {
                Ok(()) => created.next().expect("one result per survivor"),
                Err(err) => Err(err),
            })
            .collect()
    }
    async fn update_user(&self, id: ObjectId, changes: &Map<String, Value>) -> Result<(), PeerError> {
        self.write_target(id).await?;
        self.inner.update_user(id, changes).await
    }
    async fn delete_user(&self, id: ObjectId) -> Result<(), PeerError> {
        self.write_target(id).await?;
        self.inner.delete_user(id).await
    }
    async fn restore_user(&self, id: ObjectId) -> Result<(), PeerError> {
        self.write_target(id).await?;
        self.inner.restore_user(id).await
    }
    async fn set_manager(&self, id: ObjectId, manager: ObjectId) -> Result<(), PeerError> {
        self.write_target(id).await?;
        self.inner.set_manager(id, manager).await
    }
}

/// How the faulty source breaks its full read.
#[derive(Clone, Copy, Debug, PartialEq)]
enum SourceFault {
    /// `list_users` fails once this many users have been listed.
    FailAfter(usize),
    /// The source looks empty: no users listed, every user unknown.
    Empty,
}

/// A [`LocalSource`] with a broken full read.
struct FaultySource {
    inner: LocalSource,
    fault: SourceFault,
    listed: Mutex<usize>,
}

#[async_trait]
impl SourceDirectory for FaultySource {
    fn tenant_id(&self) -> String {
        self.inner.tenant_id()
    }
    async fn position(&self) -> Result<i64, PeerError> {
        self.inner.position().await
    }
    async fn list_users(&self, after: Option<ObjectId>, limit: u32) -> Result<Vec<SourceUser>, PeerError> {
        match self.fault {
            SourceFault::Empty => Ok(Vec::new()),
            SourceFault::FailAfter(n_users) => {
                if *self.listed.lock().unwrap() >= n_users {
                    return Err(PeerError::Unavailable("injected fault: the source read broke off".into()));
                }
                let users = self.inner.list_users(after, limit).await?;
                *self.listed.lock().unwrap() += users.len();
                Ok(users)
            }
        }
    }
    async fn get_user(&self, id: ObjectId) -> Result<Option<SourceUser>, PeerError> {
        match self.fault {
            SourceFault::Empty => Ok(None),
            SourceFault::FailAfter(_) => self.inner.get_user(id).await,
        }
    }
    async fn get_users(&self, ids: &[ObjectId]) -> Result<Vec<Option<SourceUser>>, PeerError> {
        match self.fault {
            SourceFault::Empty => Ok(ids.iter().map(|_| None).collect()),
            SourceFault::FailAfter(_) => self.inner.get_users(ids).await,
        }
    }
    async fn changes(&self, after: i64, limit: u32) -> Result<ChangePage, PeerError> {
        self.inner.changes(after, limit).await
    }
    async fn group_members(&self, group: ObjectId, transitive: bool) -> Result<Vec<ObjectId>, PeerError> {
        self.inner.group_members(group, transitive).await
    }
    async fn direct_reports(&self, manager: ObjectId) -> Result<Vec<ObjectId>, PeerError> {
        self.inner.direct_reports(manager).await
    }
}

/// Two tenants in a temporary SQLite file, a SyncAll job between them with small retry and quarantine settings,
/// and a manual clock.
struct World {
    _dir: tempfile::TempDir,
    store: Arc<dyn Store>,
    clock: Arc<ManualClock>,
    directory: Directory,
    source: Tenant,
    target: Tenant,
    principal: String,
    job_id: String,
    /// Internal source users, in id order.
    users: Vec<ObjectId>,
    /// B2B users of the source (never in scope).
    guests: Vec<ObjectId>,
}

fn source_user(idx: usize, domain: &str) -> User {
    serde_json::from_value(json!({
        "id": ObjectId::new_random(),
        "userPrincipalName": format!("user{idx}@{domain}"),
        "displayName": format!("User {idx}"),
        "mailNickname": format!("user{idx}"),
        "jobTitle": "Analyst",
        "department": "Engineering",
        "accountEnabled": true,
        "createdDateTime": "1970-01-01T00:00:00Z",
    }))
    .expect("test users are valid")
}

fn guest_user(idx: usize, domain: &str) -> User {
    serde_json::from_value(json!({
        "id": ObjectId::new_random(),
        "userPrincipalName": format!("guest{idx}_elsewhere.example#EXT#@{domain}"),
        "displayName": format!("Guest {idx}"),
        "mailNickname": format!("guest{idx}"),
        "userType": "Guest",
        "creationType": "Invitation",
        "accountEnabled": true,
        "createdDateTime": "1970-01-01T00:00:00Z",
    }))
    .expect("test guests are valid")
}

impl World {
    async fn new(n_users: usize, n_guests: usize) -> World {
        let dir = tempfile::tempdir().expect("a temporary directory");
        let url = format!("sqlite://{}", dir.path().join("faults.db").display());
        let store: Arc<dyn Store> = Arc::new(SqliteStore::open(&url).await.expect("open the SQLite store"));
        let clock = Arc::new(ManualClock::new(time::macros::datetime!(2025-03-01 09:00 UTC)));
        let directory = Directory::new(store.clone(), clock.clone());
        let (source, _) = directory
            .create_tenant(NewTenant { name: "src".to_owned(), display_name: None, domains: vec![] })
            .await
            .expect("create the source tenant");
        let (target, _) = directory
            .create_tenant(NewTenant { name: "tgt".to_owned(), display_name: None, domains: vec![] })
            .await
            .expect("create the target tenant");
        let mut batch: Vec<User> = (0..n_users).map(|idx| source_user(idx, &source.initial_domain)).collect();
        batch.extend((0..n_guests).map(|idx| guest_user(idx, &source.initial_domain)));
        let mut ids = Vec::with_capacity(batch.len());
        for chunk in batch.chunks(1000) {
            for result in directory.create_users(source.id, chunk.to_vec()).await.expect("create users") {
                ids.push(result.expect("each user is created").id);
            }
        }
        let guests = ids.split_off(n_users);
        // The directory assigns ids; keep the users in id order, as the engine reads them.
        ids.sort();
        let mut world = World {
            _dir: dir,
            store,
            clock,
            directory,
            source,
            target,
            principal: String::new(),
            job_id: String::new(),
            users: ids,
            guests,
        };
        world.connect().await;
        world
    }

    fn repo(&self) -> SyncRepo {
        SyncRepo::new(self.store.clone(), self.clock.clone())
    }

    fn admin(&self) -> Admin<'_> {
        Admin { store: self.store.as_ref(), clock: self.clock.as_ref(), actor: "faults test".to_owned() }
    }

    /// The configuration `tenantsync topology create` makes (partners, consent, application, job, secrets), with
    /// this suite's small retry and quarantine settings, and the deletion guard off so only the integrity guard
    /// stands between a bad read and a deletion.
    async fn connect(&mut self) {
        let admin = self.admin();
        let (source, target) = (&self.source, &self.target);
        let partner = |tenant: &Tenant| Partner { tenant_id: tenant.id.to_string(), ..Partner::default() };
        admin.create_partner(target.id, partner(source)).await.expect("target partner");
        admin
            .update_partner(target.id, &source.id.to_string(), |current| {
                current.automatic_user_consent_settings.inbound_allowed = Some(true);
                Ok(())
            })
            .await
            .expect("inbound consent");
        let policy = IdentitySynchronization {
            tenant_id: source.id.to_string(),
            display_name: Some(source.display_name.clone()),
            user_sync_inbound: Some(UserSyncInbound { is_sync_allowed: true }),
            group_sync_inbound: None,
        };
        admin.put_identity_sync(target.id, &source.id.to_string(), policy).await.expect("inbound sync policy");
        admin.create_partner(source.id, partner(target)).await.expect("source partner");
        admin
            .update_partner(source.id, &target.id.to_string(), |current| {
                current.automatic_user_consent_settings.outbound_allowed = Some(true);
                Ok(())
            })
            .await
            .expect("outbound consent");
        let (_, principal) =
            admin.instantiate(source.id, CTS_APPLICATION_TEMPLATE, "src to tgt").await.expect("instantiate");
        let job = admin.create_job(source.id, &principal.id, AZURE2AZURE_TEMPLATE).await.expect("create the job");
        let secret = |key: &str, value: &str| Secret { key: key.to_owned(), value: value.to_owned() };
        let secrets = vec![
            secret("AuthenticationType", "SyncPolicy"),
            secret("CompanyId", &target.id.to_string()),
            secret("SyncNotificationSettings", r#"{"Enabled":false,"DeleteThresholdEnabled":false}"#),
            secret("SyncAll", "true"),
            secret("EscrowMaxAttempts", "3"),
            secret("EscrowBackoffSeconds", "10"),
            secret("QuarantineMinFailures", "5"),
            secret("QuarantineFailureRatio", "0.4"),
            secret("QuarantineRetrySeconds", "30"),
        ];
        admin.put_secrets(source.id, &principal.id, secrets).await.expect("secrets");
        admin.start_job(source.id, &principal.id, job.id.as_str()).await.expect("start the job");
        self.principal = principal.id;
        self.job_id = job.id.to_string();
    }

    fn local_source(&self) -> LocalSource {
        LocalSource { directory: self.directory.clone(), tenant: self.source.id }
    }

    fn faulty_target(&self) -> FaultyTarget {
        FaultyTarget::new(
            LocalTarget {
                directory: self.directory.clone(),
                tenant: self.target.id,
                initial_domain: self.target.initial_domain.clone(),
                source_tenant: self.source.id,
                job_id: self.job_id.clone(),
                repo: self.repo(),
                warnings: Default::default(),
            },
            self.users.iter().enumerate().map(|(idx, id)| (*id, idx)).collect(),
        )
    }

    async fn cycle_with(
        &self,
        source: &dyn SourceDirectory,
        target: &dyn TargetDirectory,
    ) -> Result<CycleReport, EngineError> {
        self.cycle_fenced(source, target, None).await
    }

    /// A cycle under a lease with fencing token `fence` (scale-out).
    async fn cycle_fenced(
        &self,
        source: &dyn SourceDirectory,
        target: &dyn TargetDirectory,
        fence: Option<i64>,
    ) -> Result<CycleReport, EngineError> {
        let repo = self.repo();
        let key = JobKey::new(self.source.id, self.job_id.as_str());
        let snapshot = repo.load(&key).await?.expect("the job exists");
        let env = CycleEnv {
            repo: &repo,
            source,
            target,
            clock: self.clock.as_ref(),
            ids: &RANDOM,
            job: &key,
            force_full: false,
            fence,
            spawner: &tenantsync_connectors::runner::TokioSpawner,
        };
        run_cycle(&env, snapshot).await
    }

    /// A cycle whose target write (the next one, or the one `pause_at` names) pauses while an administrator
    /// changes a setting (the job's generation moves on), then goes on: the cycle ends superseded.
    async fn cycle_superseded_at_write(&self, target: &FaultyTarget) {
        let (paused_tx, paused_rx) = tokio::sync::oneshot::channel();
        let (resume_tx, resume_rx) = tokio::sync::oneshot::channel();
        *target.pause.lock().unwrap() = Some((paused_tx, resume_rx));
        let source = self.local_source();
        let cycle = self.cycle_with(&source, target);
        let administrator = async {
            paused_rx.await.expect("the cycle reaches the write");
            let secret = Secret { key: "EscrowBackoffSeconds".to_owned(), value: "20".to_owned() };
            self.admin().put_secrets(self.source.id, &self.principal, vec![secret]).await.expect("secrets");
            resume_tx.send(()).expect("resume the write");
        };
        let (superseded, ()) = tokio::join!(cycle, administrator);
        assert!(matches!(superseded, Err(EngineError::Superseded)), "{superseded:?}");
    }

    async fn cycle(&self, target: &FaultyTarget) -> CycleReport {
        self.cycle_with(&self.local_source(), target).await.expect("the cycle runs")
    }

    fn now(&self) -> OffsetDateTime {
        self.clock.now()
    }

    fn advance(&self, seconds: i64) {
        self.clock.advance(Duration::seconds(seconds));
    }

    async fn escrows(&self) -> Vec<Escrow> {
        let mut tx = self.store.begin(self.source.id, TxMode::Read).await.unwrap();
        job::read_all(tx.as_mut(), &escrows_collection(&self.job_id)).await.unwrap()
    }

    async fn escrow_of(&self, source_id: ObjectId) -> Option<Escrow> {
        self.escrows().await.into_iter().find(|escrow| escrow.source_id == source_id)
    }

    async fn dead_letters(&self) -> Vec<Escrow> {
        self.admin().dead_letters(self.source.id, &self.principal, &self.job_id).await.expect("dead letters")
    }

    async fn state(&self) -> JobState {
        let mut tx = self.store.begin(self.source.id, TxMode::Read).await.unwrap();
        job::read(tx.as_mut(), &JOB_STATES, &self.job_id).await.unwrap().expect("the job has a state")
    }

    async fn logs(&self) -> Vec<LogRow> {
        let mut tx = self.store.begin(self.source.id, TxMode::Read).await.unwrap();
        let query = LogQuery { job_id: Some(self.job_id.clone()), limit: 100_000, ..LogQuery::default() };
        tx.read_logs(&query).await.unwrap()
    }

    /// The B2B user of a source user, deleted or not.
    async fn b2b(&self, source_id: ObjectId) -> Option<tenantsync_directory::UserState> {
        self.directory.user_by_anchor(self.target.id, &format!("{}/{source_id}", self.source.id)).await.unwrap()
    }

    async fn live_target_count(&self) -> u64 {
        self.directory.count_objects(self.target.id, ObjectKind::User, false, None, None).await.unwrap()
    }

    /// The target mirrors the source: one live B2B user per live internal source user with the same title and
    /// name, a soft-deleted one per deleted source user that was synced, none for guests, nothing else; and the
    /// provisioning log records a successful create or update for every live target user.
    async fn assert_mirrored(&self) {
        let mut n_live = 0;
        for id in &self.users {
            let source = self.directory.user_state(self.source.id, *id).await.unwrap().expect("source user exists");
            let b2b = self.b2b(*id).await;
            if source.deleted {
                assert!(b2b.as_ref().is_none_or(|b2b| b2b.deleted), "deleted source user {id} is live in the target");
                continue;
            }
            n_live += 1;
            let b2b = b2b.unwrap_or_else(|| panic!("source user {id} has no B2B user"));
            assert!(!b2b.deleted, "the B2B user of {id} is deleted");
            assert_eq!(b2b.user.job_title, source.user.job_title, "jobTitle of {id}");
            assert_eq!(b2b.user.display_name, source.user.display_name, "displayName of {id}");
        }
        for id in &self.guests {
            assert!(self.b2b(*id).await.is_none(), "guest {id} was synced");
        }
        assert_eq!(self.live_target_count().await, n_live, "the target holds exactly the in-scope users");
        let exported: HashSet<String> = self
            .logs()
            .await
            .into_iter()
            .filter(|log| log.status == "success" && (log.action == "create" || log.action == "update"))
            .filter_map(|log| log.source_id)
            .collect();
        for id in &self.users {
            let live = self.b2b(*id).await.is_some_and(|b2b| !b2b.deleted);
            assert!(!live || exported.contains(&id.to_string()), "no create or update logged for {id}");
        }
    }
}

async fn set_title(world: &World, source_id: ObjectId, title: &str) {
    world
        .directory
        .update_user(world.source.id, &source_id.to_string(), |user| {
            user.job_title = Some(title.to_owned());
            Ok(())
        })
        .await
        .expect("update a source user");
}

#[tokio::test]
async fn thirty_percent_of_writes_failing_converge_with_nothing_lost() {
    let world = World::new(60, 3).await;
    let target = world.faulty_target();
    target.set_mode(Mode::Percent(30));
    let first = world.cycle(&target).await;
    assert!(first.full);
    assert!(first.n_failed > 0, "faults were injected: {first:?}");
    assert_eq!(first.quarantine_change, None, "30 % of failures stay under the 40 % quarantine ratio");
    // Changes while escrows are pending: titles, and deletes of users who may or may not have arrived yet.
    for (idx, id) in world.users.iter().enumerate().filter(|(idx, _)| idx % 4 == 1) {
        set_title(&world, *id, &format!("Title {idx}")).await;
    }
    for id in [world.users[2], world.users[7], world.users[30]] {
        world.directory.delete_object(world.source.id, ObjectKind::User, &id.to_string()).await.unwrap();
    }
    let mut n_dead_lettered = 0;
    let mut converged = false;
    for _ in 0..40 {
        world.advance(30);
        // A retry-heavy cycle may cross the ratio by chance; quarantine then only slows convergence down.
        world.cycle(&target).await;
        let dead = world.dead_letters().await;
        if !dead.is_empty() {
            // Nothing is lost: an object whose three attempts all failed is listed with its error, and a retry
            // puts it back in the flow.
            for letter in &dead {
                assert_eq!(letter.attempts, 3);
                assert!(letter.last_error.contains("injected fault"), "{letter:?}");
            }
            n_dead_lettered += dead.len();
            let admin = world.admin();
            admin.resolve_dead_letters(world.source.id, &world.principal, &world.job_id, None, true).await.unwrap();
        }
        if world.escrows().await.is_empty() && world.dead_letters().await.is_empty() {
            converged = true;
            break;
        }
    }
    assert!(converged, "escrows left: {:?}", world.escrows().await);
    let (n_writes, n_failed) = (target.n_writes.load(Ordering::Relaxed), target.n_failed.load(Ordering::Relaxed));
    println!("{n_writes} writes, {n_failed} failed, {n_dead_lettered} dead-lettered and retried");
    assert!(n_failed * 100 >= n_writes * 15 && n_failed * 100 <= n_writes * 45, "{n_failed} of {n_writes} failed");
    world.assert_mirrored().await;
    // Converged means quiet: one more cycle has nothing to do.
    world.advance(3600);
    let quiet = world.cycle(&target).await;
    assert_eq!((quiet.n_created, quiet.n_updated, quiet.n_deleted, quiet.n_failed), (0, 0, 0, 0), "{quiet:?}");
}

#[tokio::test]
async fn retries_wait_for_their_backoff_and_the_delay_grows() {
    let world = World::new(5, 0).await;
    let target = world.faulty_target();
    let poisoned = world.users[3];
    target.poison(Some(poisoned));
    let t0 = world.now();
    world.cycle(&target).await;
    assert_eq!(target.attempts_of(poisoned), 1);
    let escrow = world.escrow_of(poisoned).await.expect("the failed create is escrowed");
    let first_delay = escrow_delay(poisoned, 1, 10);
    assert_eq!((escrow.attempts, escrow.next_attempt), (1, Some(t0 + first_delay)));
    assert!(first_delay >= Duration::seconds(10) && first_delay <= Duration::seconds(13), "{first_delay}");

    // One second before the retry is due: the cycle leaves the object alone.
    world.clock.set(t0 + first_delay - Duration::seconds(1));
    let early = world.cycle(&target).await;
    assert_eq!((target.attempts_of(poisoned), early.n_failed), (1, 0), "{early:?}");
    assert_eq!(early.retry_after, Some(Duration::seconds(1)), "the job asks to run again when the retry is due");
    assert_eq!(world.escrow_of(poisoned).await.map(|escrow| escrow.attempts), Some(1));

    // Due: retried, failed again, and the next delay is longer.
    world.clock.set(t0 + first_delay);
    let t1 = world.now();
    let due = world.cycle(&target).await;
    assert_eq!((target.attempts_of(poisoned), due.n_failed), (2, 1), "{due:?}");
    let escrow = world.escrow_of(poisoned).await.expect("still escrowed");
    let second_delay = escrow_delay(poisoned, 2, 10);
    assert_eq!((escrow.attempts, escrow.next_attempt), (2, Some(t1 + second_delay)));
    assert!(second_delay > first_delay, "{second_delay} after {first_delay}");
    assert!(second_delay >= Duration::seconds(20), "{second_delay}");

    world.clock.set(t1 + second_delay - Duration::seconds(1));
    world.cycle(&target).await;
    assert_eq!(target.attempts_of(poisoned), 2, "not retried before the longer delay");

    // The write succeeds at the next due attempt: the escrow goes.
    target.poison(None);
    world.clock.set(t1 + second_delay);
    let healed = world.cycle(&target).await;
    assert_eq!((healed.n_created, healed.n_failed), (1, 0), "{healed:?}");
    assert!(world.escrows().await.is_empty());
    world.assert_mirrored().await;
}

#[tokio::test]
async fn a_poisoned_object_is_dead_lettered_while_the_others_flow_and_retry_puts_it_back() {
    let world = World::new(12, 0).await;
    let target = world.faulty_target();
    let poisoned = world.users[5];
    target.poison(Some(poisoned));
    world.cycle(&target).await;
    for round in 0..6 {
        // Every other user keeps changing, and every change flows.
        for id in world.users.iter().filter(|id| **id != poisoned) {
            set_title(&world, *id, &format!("Round {round}")).await;
        }
        world.advance(120);
        let report = world.cycle(&target).await;
        assert!(report.quarantine_change.is_none(), "one poisoned object does not quarantine the job: {report:?}");
        assert_eq!(report.n_updated, 11, "round {round}: {report:?}");
    }
    assert_eq!(target.attempts_of(poisoned), 3, "no attempts after EscrowMaxAttempts");
    assert!(world.escrows().await.is_empty());
    let dead = world.dead_letters().await;
    assert_eq!(dead.len(), 1, "{dead:?}");
    assert_eq!((dead[0].source_id, dead[0].attempts), (poisoned, 3));
    assert_eq!(dead[0].error_code, "InternalServerError");
    assert!(dead[0].last_error.contains("injected fault (attempt 3)"), "{}", dead[0].last_error);
    assert!(world.b2b(poisoned).await.is_none());

    // Retry: the object goes back into escrow with a fresh count, and is created on the next cycle.
    target.poison(None);
    let admin = world.admin();
    let n = admin.resolve_dead_letters(world.source.id, &world.principal, &world.job_id, None, true).await.unwrap();
    assert_eq!(n, 1);
    assert!(world.dead_letters().await.is_empty());
    assert_eq!(world.escrow_of(poisoned).await.map(|escrow| escrow.attempts), Some(0));
    let retried = world.cycle(&target).await;
    assert_eq!(retried.n_created, 1, "{retried:?}");
    assert!(world.escrows().await.is_empty());
    world.assert_mirrored().await;
}

#[tokio::test]
async fn a_delete_that_keeps_failing_is_dead_lettered_too() {
    let world = World::new(6, 0).await;
    let target = world.faulty_target();
    world.cycle(&target).await;
    let poisoned = world.users[1];
    let created = target.attempts_of(poisoned);
    target.poison(Some(poisoned));
    world.directory.delete_object(world.source.id, ObjectKind::User, &poisoned.to_string()).await.unwrap();
    let mut delays = Vec::new();
    for _ in 0..8 {
        let before = world.now();
        world.cycle(&target).await;
        if let Some(escrow) = world.escrow_of(poisoned).await {
            delays.push((escrow.attempts, escrow.next_attempt.map(|at| at - before)));
        }
        world.advance(3600);
    }
    assert_eq!(target.attempts_of(poisoned) - created, 3, "delete attempts stop at EscrowMaxAttempts: {delays:?}");
    assert_eq!(
        delays,
        vec![(1, Some(escrow_delay(poisoned, 1, 10))), (2, Some(escrow_delay(poisoned, 2, 10)))],
        "the delete's retries back off like any other write"
    );
    let dead = world.dead_letters().await;
    assert_eq!(dead.iter().map(|letter| (letter.source_id, letter.attempts)).collect::<Vec<_>>(), [(poisoned, 3)]);
    assert!(world.b2b(poisoned).await.is_some_and(|b2b| !b2b.deleted));

    // Retried and successful: deleted in the target, and nothing left in escrow.
    target.poison(None);
    let admin = world.admin();
    admin.resolve_dead_letters(world.source.id, &world.principal, &world.job_id, None, true).await.unwrap();
    let report = world.cycle(&target).await;
    assert_eq!(report.n_deleted, 1, "{report:?}");
    assert!(world.escrows().await.is_empty(), "{:?}", world.escrows().await);
    world.assert_mirrored().await;
}

#[tokio::test]
async fn failures_that_dominate_quarantine_the_job_until_writes_succeed_again() {
    let world = World::new(8, 0).await;
    let target = world.faulty_target();
    target.set_mode(Mode::All);
    let first = world.cycle(&target).await;
    assert_eq!(first.n_failed, 8);
    let Some((true, entered)) = first.quarantine_change.clone() else { panic!("not quarantined: {first:?}") };
    assert_eq!(entered.reason, "EncounteredEscrowProportionThreshold");
    assert_eq!(entered.next_attempt, world.now() + Duration::seconds(30));
    let quarantine = world.state().await.quarantine.expect("JobState.quarantine is set");
    assert_eq!(quarantine.reason, "EncounteredEscrowProportionThreshold");
    assert_eq!(quarantine.error_code, "InternalServerError");

    // Before the next attempt: the cycle does nothing, not even the escrow retries that are due.
    world.advance(20);
    let writes = target.n_writes.load(Ordering::Relaxed);
    let waiting = world.cycle(&target).await;
    assert!(waiting.quarantined, "{waiting:?}");
    assert_eq!(waiting.retry_after, Some(Duration::seconds(10)));
    assert_eq!(target.n_writes.load(Ordering::Relaxed), writes, "a quarantined job writes nothing");

    // Still failing when due: the quarantine continues and the next attempt is further away.
    world.advance(10);
    let again = world.cycle(&target).await;
    assert!(!again.quarantined && again.quarantine_change.is_none(), "{again:?}");
    let quarantine = world.state().await.quarantine.expect("still quarantined");
    assert_eq!((quarantine.series_count, quarantine.next_attempt), (2, world.now() + Duration::seconds(60)));

    // Writes succeed again: the next due cycle leaves quarantine by itself.
    target.set_mode(Mode::Pass);
    world.advance(30);
    assert!(world.cycle(&target).await.quarantined);
    world.advance(30);
    let healed = world.cycle(&target).await;
    assert!(matches!(healed.quarantine_change, Some((false, _))), "{healed:?}");
    assert_eq!((healed.n_created, healed.n_failed), (8, 0), "{healed:?}");
    assert!(world.state().await.quarantine.is_none());
    world.assert_mirrored().await;
}

#[tokio::test]
async fn a_source_read_that_breaks_off_deprovisions_nobody() {
    // Two pages of users, so the read breaks off half way.
    let n_users = tenantsync_engine::cycle::PAGE_SIZE as usize + 100;
    let world = World::new(n_users, 0).await;
    let target = world.faulty_target();
    let first = world.cycle(&target).await;
    assert_eq!(first.n_created, n_users as u64);

    world.admin().restart_job(world.source.id, &world.principal, &world.job_id, None).await.unwrap();
    world.advance(60);
    let broken = FaultySource {
        inner: world.local_source(),
        fault: SourceFault::FailAfter(tenantsync_engine::cycle::PAGE_SIZE as usize),
        listed: Mutex::new(0),
    };
    let result = world.cycle_with(&broken, &target).await;
    assert!(matches!(result, Err(EngineError::Source(PeerError::Unavailable(_)))), "{result:?}");
    assert_eq!(world.live_target_count().await, n_users as u64, "nobody was deprovisioned");

    // The next cycle resumes the pass where it broke off, and still deprovisions nobody.
    let report = world.cycle(&target).await;
    assert!(report.full);
    assert_eq!((report.n_deleted, report.n_disabled, report.n_failed), (0, 0, 0), "{report:?}");
    assert_eq!(world.state().await.last_full_scope, Some(n_users as u64));
    assert!(world.logs().await.iter().all(|log| log.action != "delete" && log.action != "disable"));
    world.assert_mirrored().await;
}

#[tokio::test]
async fn a_source_that_returns_no_users_deprovisions_nobody() {
    let world = World::new(20, 0).await;
    let target = world.faulty_target();
    world.cycle(&target).await;
    assert_eq!(world.state().await.last_full_scope, Some(20));

    // A restart makes the next cycle a full read, and the source now looks empty.
    world.admin().restart_job(world.source.id, &world.principal, &world.job_id, None).await.unwrap();
    world.advance(60);
    let empty = FaultySource { inner: world.local_source(), fault: SourceFault::Empty, listed: Mutex::new(0) };
    let report = world.cycle_with(&empty, &target).await.expect("the cycle runs");
    assert_eq!((report.n_deleted, report.n_disabled), (0, 0), "{report:?}");
    assert_eq!(report.n_skipped, 20, "every deprovisioning was dropped: {report:?}");
    assert_eq!(world.live_target_count().await, 20, "the target users stay live");
    let suspect: Vec<LogRow> =
        world.logs().await.into_iter().filter(|log| log.data.contains("SourceReadSuspect")).collect();
    assert_eq!(suspect.len(), 20, "each dropped deprovisioning is logged");
    assert!(suspect.iter().all(|log| log.action == "other" && log.status == "skipped"));
    assert_eq!(world.state().await.last_full_scope, Some(20), "a suspect read does not become the new baseline");

    // Back to a healthy source: nothing to undo, nothing deleted.
    world.advance(60);
    let report = world.cycle(&target).await;
    assert_eq!((report.n_deleted, report.n_created, report.n_failed), (0, 0, 0), "{report:?}");
    world.assert_mirrored().await;
}

#[tokio::test]
async fn slow_writes_are_timed_in_the_log() {
    let world = World::new(3, 0).await;
    let target = world.faulty_target();
    *target.delay.lock().unwrap() = Some(std::time::Duration::from_millis(5));
    let t0 = world.now();
    let report = world.cycle(&target).await;
    assert_eq!(report.n_created, 3);
    assert_eq!(world.now(), t0, "a slow target does not move the injected clock");
    let creates: Vec<LogRow> = world.logs().await.into_iter().filter(|log| log.action == "create").collect();
    assert_eq!(creates.len(), 3);
    for log in creates {
        let data: Value = serde_json::from_str(&log.data).unwrap();
        assert!(
            data["durationInMilliseconds"].as_u64().is_some_and(|ms| ms >= 5),
            "{}",
            data["durationInMilliseconds"]
        );
    }
    world.assert_mirrored().await;
}

#[tokio::test]
async fn a_create_replayed_after_a_crash_is_logged_as_an_export() {
    // A crash after the target write and before the page's record: the B2B user exists, the job has no link and
    // no log entry for it. The replay finds it by anchor; the log must still show that it was exported.
    let world = World::new(3, 0).await;
    let target = world.faulty_target();
    let crashed = world.users[1];
    let anchor = Anchor { source_tenant: world.source.id.to_string(), source_id: crashed };
    let mut attributes = Map::new();
    attributes.insert("displayName".to_owned(), json!("User 1"));
    target.inner.create_user(&anchor, &attributes).await.expect("the interrupted cycle's create");
    let report = world.cycle(&target).await;
    assert_eq!(report.n_failed, 0, "{report:?}");
    assert_eq!(world.live_target_count().await, 3, "adopted, not duplicated");
    world.assert_mirrored().await;

    // Already in step when adopted: still an export in the log (the link is the change), without a target write.
    let world = World::new(2, 0).await;
    let target = world.faulty_target();
    world.cycle(&target).await;
    world
        .admin()
        .restart_job(world.source.id, &world.principal, &world.job_id, Some("ConnectorDataStore"))
        .await
        .unwrap();
    let writes = target.n_writes.load(Ordering::Relaxed);
    let report = world.cycle(&target).await;
    assert_eq!((report.n_updated, report.n_created), (2, 0), "{report:?}");
    assert_eq!(target.n_writes.load(Ordering::Relaxed), writes, "nothing to write for users already in step");
}

/// A [`LocalSource`] that, right after listing the first page of a full read, makes `user` report to
/// `new_manager` — a change that lands after the read's snapshot, so the cycle meets the user twice.
struct ManagerChangingSource {
    inner: LocalSource,
    user: ObjectId,
    new_manager: ObjectId,
    done: Mutex<bool>,
}

#[async_trait]
impl SourceDirectory for ManagerChangingSource {
    fn tenant_id(&self) -> String {
        self.inner.tenant_id()
    }
    async fn position(&self) -> Result<i64, PeerError> {
        self.inner.position().await
    }
    async fn list_users(&self, after: Option<ObjectId>, limit: u32) -> Result<Vec<SourceUser>, PeerError> {
        let users = self.inner.list_users(after, limit).await?;
        let first = std::mem::replace(&mut *self.done.lock().unwrap(), true);
        if !first {
            self.inner
                .directory
                .set_manager(self.inner.tenant, &self.user.to_string(), &self.new_manager.to_string())
                .await
                .expect("change the manager");
        }
        Ok(users)
    }
    async fn get_user(&self, id: ObjectId) -> Result<Option<SourceUser>, PeerError> {
        self.inner.get_user(id).await
    }
    async fn get_users(&self, ids: &[ObjectId]) -> Result<Vec<Option<SourceUser>>, PeerError> {
        self.inner.get_users(ids).await
    }
    async fn changes(&self, after: i64, limit: u32) -> Result<ChangePage, PeerError> {
        self.inner.changes(after, limit).await
    }
    async fn group_members(&self, group: ObjectId, transitive: bool) -> Result<Vec<ObjectId>, PeerError> {
        self.inner.group_members(group, transitive).await
    }
    async fn direct_reports(&self, manager: ObjectId) -> Result<Vec<ObjectId>, PeerError> {
        self.inner.direct_reports(manager).await
    }
}

/// A manager changed while a full pass runs: the pass sees the old manager, the change log then the new one; the
/// newer decision must win (the older one used to, and the reference stayed wrong until the user changed again).
#[tokio::test]
async fn a_manager_changed_during_a_full_pass_ends_as_the_new_manager() {
    let world = World::new(3, 0).await;
    let (user, old_manager, new_manager) = (world.users[0], world.users[1], world.users[2]);
    world.directory.set_manager(world.source.id, &user.to_string(), &old_manager.to_string()).await.unwrap();
    let changing = ManagerChangingSource { inner: world.local_source(), user, new_manager, done: Mutex::new(false) };
    let target = world.faulty_target();
    world.cycle_with(&changing, &target).await.expect("the cycle runs");
    let b2b = world.b2b(user).await.expect("the user is synced");
    let expected = world.b2b(new_manager).await.expect("the new manager is synced").user.id;
    assert_eq!(b2b.manager, Some(expected), "the target manager follows the newest source manager");
}

/// Issue 10: a wake-up of a job with nothing to do reads the job's configuration once (the runner used to read it
/// four times: for its connectors, the cycle, the poll interval and the sweep interval).
#[tokio::test]
async fn one_wake_up_of_an_idle_job_reads_its_configuration_once() {
    let world = World::new(30, 0).await;
    let repo = world.repo();
    let runner =
        tenantsync_connectors::SyncRunner::new(world.directory.clone(), repo.clone(), world.clock.clone(), None);
    let first = runner.run_once(world.source.id, &world.job_id, false).await.expect("the initial sync runs");
    assert_eq!(first.n_created, 30, "the initial sync creates every user");
    let before = repo.config_loads();
    let idle = runner.run_once(world.source.id, &world.job_id, false).await.expect("the idle wake-up runs");
    assert_eq!((idle.n_evaluated, idle.n_created, idle.n_updated), (0, 0, 0), "nothing changed: {idle:?}");
    assert_eq!(repo.config_loads() - before, 1, "one wake-up, one read of the configuration");
}

/// Fencing of the target write itself (issue 15): a process that pauses *between* its last lease check and a
/// target write, and resumes after another process claimed the job, has that write refused by the target's own
/// transaction (a write of a fenced directory share-locks the job's lease and compares the token); its cycle then
/// saves nothing, and the new holder applies the change once.
#[tokio::test]
async fn a_target_write_made_after_the_lease_moved_is_refused_by_the_target() {
    let world = World::new(5, 0).await;
    let repo = world.repo();
    let ttl = std::time::Duration::from_secs(30);
    let first = repo.claim_leases("process-a", ttl, 10).await.expect("claim");
    assert_eq!(first.len(), 1, "one job");
    let fenced = |token| {
        let mut target = world.faulty_target();
        target.inner.directory = world.directory.fenced(tenantsync_directory::WriteFence {
            job_tenant: world.source.id,
            job_id: world.job_id.clone(),
            token,
        });
        target
    };
    let stale_target = fenced(first[0].token);
    let report =
        world.cycle_fenced(&world.local_source(), &stale_target, Some(first[0].token)).await.expect("the holder runs");
    assert_eq!(report.n_created, 5, "{report:?}");
    let title_before = world.b2b(world.users[0]).await.expect("the B2B user").user.job_title;

    set_title(&world, world.users[0], "Written too late").await;
    let n_logs = world.logs().await.len();
    let (paused_tx, paused_rx) = tokio::sync::oneshot::channel();
    let (resume_tx, resume_rx) = tokio::sync::oneshot::channel();
    *stale_target.pause.lock().unwrap() = Some((paused_tx, resume_rx));
    let source = world.local_source();
    let stale = world.cycle_fenced(&source, &stale_target, Some(first[0].token));
    let other_process = async {
        // process-a passed its lease check and is about to write; it stalls past its lease and process-b claims.
        paused_rx.await.expect("the stale cycle reaches its write");
        world.advance(31);
        let second = repo.claim_leases("process-b", ttl, 10).await.expect("claim after expiry");
        resume_tx.send(()).expect("resume the stale write");
        second
    };
    let (stale, second) = tokio::join!(stale, other_process);
    assert!(matches!(stale, Err(EngineError::LeaseLost)), "{stale:?}");
    assert_eq!(second.len(), 1, "process-b holds the job");
    let b2b = world.b2b(world.users[0]).await.expect("the B2B user");
    assert_eq!(b2b.user.job_title, title_before, "the target refused the write made under a moved lease");
    assert_eq!(world.logs().await.len(), n_logs, "no log entry saved");

    let report = world
        .cycle_fenced(&world.local_source(), &fenced(second[0].token), Some(second[0].token))
        .await
        .expect("the new holder runs");
    assert_eq!(report.n_updated, 1, "{report:?}");
    let b2b = world.b2b(world.users[0]).await.expect("the B2B user");
    assert_eq!(b2b.user.job_title.as_deref(), Some("Written too late"));
}

/// Fencing (issue 15): a process whose job lease moved to another (it paused, or lost the database, past the
/// lease's expiry) runs on with a stale token; its next cycle stops before writing to the target and saves nothing,
/// and the new holder's cycle applies the change once.
#[tokio::test]
async fn a_cycle_whose_lease_moved_writes_and_saves_nothing() {
    let world = World::new(5, 0).await;
    let target = world.faulty_target();
    let repo = world.repo();
    let ttl = std::time::Duration::from_secs(30);
    let first = repo.claim_leases("process-a", ttl, 10).await.expect("claim");
    assert_eq!(first.len(), 1, "one job");
    let report =
        world.cycle_fenced(&world.local_source(), &target, Some(first[0].token)).await.expect("the holder runs");
    assert_eq!(report.n_created, 5, "{report:?}");

    // The lease moves: process-a's time ran out and process-b claimed it.
    world.advance(31);
    let second = repo.claim_leases("process-b", ttl, 10).await.expect("claim after expiry");
    assert_eq!(second.len(), 1);
    assert!(second[0].token > first[0].token, "a new claim, a new token");
    set_title(&world, world.users[0], "Moved on").await;
    let state_before = world.state().await;
    let n_logs = world.logs().await.len();
    let n_writes = target.n_writes.load(Ordering::Relaxed);
    let stale = world.cycle_fenced(&world.local_source(), &target, Some(first[0].token)).await;
    assert!(matches!(stale, Err(EngineError::LeaseLost)), "{stale:?}");
    assert_eq!(target.n_writes.load(Ordering::Relaxed), n_writes, "no target write under a moved lease");
    assert_eq!(world.logs().await.len(), n_logs, "no log entry");
    assert_eq!(world.state().await.phase, state_before.phase, "no progress saved");

    let report =
        world.cycle_fenced(&world.local_source(), &target, Some(second[0].token)).await.expect("the new holder runs");
    assert_eq!(report.n_updated, 1, "{report:?}");
    let b2b = world.b2b(world.users[0]).await.expect("the B2B user");
    assert_eq!(b2b.user.job_title.as_deref(), Some("Moved on"));
}

/// A configuration change that lands while a cycle is making a deletion (an administrator unassigns the next user
/// as the target deletes this one) supersedes the cycle, but what it did to the target is recorded: the deletion is
/// logged, counted in the deletion guard's window and no longer pending, so the next cycle neither applies it again
/// nor counts it twice. (Lost, the record left the deletion pending: a CI run saw the guard hold it with the next
/// two as "3 deletions", of which one was real.)
#[tokio::test]
async fn a_deletion_made_as_the_configuration_changes_is_recorded_once() {
    let world = World::new(3, 0).await;
    let target = world.faulty_target();
    let key = JobKey::new(world.source.id, world.job_id.as_str());
    assert_eq!(world.cycle(&target).await.n_created, 3);
    let gone = world.users[0];
    world.directory.delete_object(world.source.id, ObjectKind::User, &gone.to_string()).await.expect("delete");
    world.advance(60);

    let generation = world.repo().load(&key).await.expect("load").expect("the job").config.generation;
    // The cycle passed its last check and is about to delete; a setting changes meanwhile.
    world.cycle_superseded_at_write(&target).await;
    let config = world.repo().load(&key).await.expect("load").expect("the job").config;
    assert_eq!(config.generation, generation + 1, "the setting moved the job on");
    assert!(world.b2b(gone).await.expect("the B2B user").deleted, "the target made the deletion");

    let deletes = |logs: Vec<LogRow>| {
        logs.into_iter()
            .filter(|log| log.action == "delete" && log.source_id.as_deref() == Some(gone.to_string().as_str()))
            .map(|log| log.status)
            .collect::<Vec<_>>()
    };
    assert_eq!(deletes(world.logs().await), ["success"], "the deletion is logged");
    assert!(world.repo().pending(&key).await.expect("pending").is_empty(), "nothing left pending");
    let link = world.repo().connections(&key, &[gone]).await.expect("links").remove(&gone).expect("the link");
    assert!(link.deleted_by_sync, "the link says the sync deleted the user");
    let state = world.state().await;
    assert_eq!(state.recent_deprovisions.len(), 1, "counted once in the guard's window");
    assert!(!state.pending_deprovisions);
    assert_eq!(state.generation, generation, "the superseded cycle saved no progress");

    // The next cycle (a full pass: the job changed) finds the deletion made and does nothing more.
    let report = world.cycle(&target).await;
    assert!(report.full, "{report:?}");
    assert_eq!((report.n_deleted, report.n_failed), (0, 0), "{report:?}");
    assert_eq!(deletes(world.logs().await), ["success"], "not deleted again");
    let state = world.state().await;
    assert_eq!(state.recent_deprovisions.len(), 1, "not counted again");
    assert_eq!(state.generation, generation + 1);
}

/// A full pass superseded while it writes its second page (its first page's save may still be running) records
/// every page it wrote: each created B2B user has its link and its create logged, so the next pass (a full pass,
/// the job changed) matches them and creates nobody twice.
#[tokio::test]
async fn a_full_pass_superseded_mid_page_records_the_pages_it_wrote() {
    let page = tenantsync_engine::cycle::PAGE_SIZE as u64;
    let world = World::new(3 * page as usize, 0).await;
    let target = world.faulty_target();
    let key = JobKey::new(world.source.id, world.job_id.as_str());
    // The pass pauses at its second page's first create; a setting changes meanwhile.
    target.pause_at.store(page, Ordering::Relaxed);
    world.cycle_superseded_at_write(&target).await;
    let created = world.live_target_count().await;
    assert_eq!(created, 2 * page, "two pages written, the third stopped by the change");

    let logs = world.logs().await;
    let logged: HashSet<String> = logs
        .iter()
        .filter(|log| log.action == "create" && log.status == "success")
        .filter_map(|log| log.source_id.clone())
        .collect();
    let links = world.repo().connections(&key, &world.users).await.expect("links");
    for id in &world.users {
        let b2b = world.b2b(*id).await;
        assert_eq!(b2b.is_some(), links.contains_key(id), "a link exactly for each B2B user ({id})");
        assert_eq!(b2b.is_some(), logged.contains(&id.to_string()), "a create logged for each B2B user ({id})");
    }

    let report = world.cycle(&target).await;
    assert!(report.full, "{report:?}");
    assert_eq!((report.n_created, report.n_failed), (page, 0), "only the third page is created: {report:?}");
    world.assert_mirrored().await;
}

/// What a superseded page saves, at the repository: its facts (a link the sync deleted, the deletion's log entry and
/// its place in the deletion guard's window), not its decisions (a deprovisioning still pending, one held by the
/// guard with its log entry: the next cycle makes and announces them again) nor its progress (the pass's phase).
#[tokio::test]
async fn a_superseded_page_saves_its_facts_and_not_its_decisions() {
    let world = World::new(2, 0).await;
    let target = world.faulty_target();
    assert_eq!(world.cycle(&target).await.n_created, 2);
    let key = JobKey::new(world.source.id, world.job_id.as_str());
    let repo = world.repo();
    let loaded = repo.load(&key).await.expect("load").expect("the job");
    let stale = WriteCondition { generation: loaded.config.generation, fence: None };
    let secret = Secret { key: "EscrowBackoffSeconds".to_owned(), value: "20".to_owned() };
    world.admin().put_secrets(world.source.id, &world.principal, vec![secret]).await.expect("secrets");
    let before = world.state().await;

    let (deleted, held) = (world.users[0], world.users[1]);
    let mut link = repo.connections(&key, &[deleted]).await.expect("links").remove(&deleted).expect("a link");
    link.deleted_by_sync = true;
    let now = world.now();
    let decision = |source_id| Deprovision {
        object_type: IdentityType::User,
        source_id,
        target_id: ObjectId::new_time_ordered(),
        action: DeprovisionAction::Delete,
        reason: "The user is no longer assigned".to_owned(),
        display_name: None,
        guard: Some("over the threshold".to_owned()),
        decided_at: now,
        steps: Vec::new(),
    };
    let entry = |source_id: ObjectId, action: &str, status: &str| LogRow {
        seq: 0,
        id: format!("{action}-{source_id}"),
        job_id: world.job_id.clone(),
        cycle_id: "superseded".to_owned(),
        at: now,
        action: action.to_owned(),
        status: status.to_owned(),
        source_id: Some(source_id.to_string()),
        target_id: None,
        data: "{}".to_owned(),
        stored: None,
    };
    let record = PageRecord {
        connections: vec![link],
        deprovisioned_at: vec![now],
        logs: vec![entry(deleted, "delete", "success"), entry(held, "stagedDelete", "skipped")],
        pending: vec![decision(held)],
        staged: vec![decision(held)],
        ..PageRecord::default()
    };
    let mut state = loaded.state.clone();
    let phase = Phase::Full { snapshot: 0, after: Some(held) };
    let saved = repo.commit_page(&key, stale, &loaded.settings.failures, &mut state, record, phase).await;
    assert!(matches!(saved, Err(EngineError::Superseded)), "{saved:?}");

    let link = repo.connections(&key, &[deleted]).await.expect("links").remove(&deleted).expect("the link");
    assert!(link.deleted_by_sync, "the deletion's link is saved");
    let logged: Vec<(String, Option<String>)> = world
        .logs()
        .await
        .into_iter()
        .filter(|log| log.cycle_id == "superseded")
        .map(|log| (log.action, log.source_id))
        .collect();
    assert_eq!(logged, [("delete".to_owned(), Some(deleted.to_string()))], "the write's entry, not the hold's");
    let after = world.state().await;
    assert_eq!(after.recent_deprovisions.len(), before.recent_deprovisions.len() + 1, "counted in the window");
    assert!(repo.pending(&key).await.expect("pending").is_empty(), "no decision left pending");
    assert!(repo.staged(&key).await.expect("staged").is_empty(), "no hold saved");
    assert_eq!(after.staged_deletions, before.staged_deletions);
    assert_eq!((after.phase, after.generation), (before.phase, before.generation), "no progress saved");
}

/// Issue 14: a configuration is decoded (and its schema compiled) once per stored text, not by every load and page
/// commit; a change made through another repository (another process) is seen at once, by loads and commits alike.
#[tokio::test]
async fn a_configuration_is_decoded_once_per_text_and_seen_again_when_it_changes() {
    let world = World::new(2, 0).await;
    let key = JobKey::new(world.source.id, world.job_id.as_str());
    let repo = world.repo();
    let first = repo.load(&key).await.expect("load").expect("the job");
    let again = repo.load(&key).await.expect("load").expect("the job");
    assert!(Arc::ptr_eq(&first.config, &again.config), "the same text is not decoded again");
    let schema = first.config.compiled_schema().expect("the schema compiles");
    assert!(Arc::ptr_eq(&schema, &again.config.compiled_schema().expect("compiles")), "nor compiled again");
    let condition = WriteCondition { generation: first.config.generation, fence: None };
    repo.ensure_current(&key, condition).await.expect("the job is current");

    // Paused through another repository, as another process would.
    world.admin().pause_job(world.source.id, &world.principal, world.job_id.as_str()).await.expect("paused");
    let paused = repo.load(&key).await.expect("load").expect("the job");
    assert!(!Arc::ptr_eq(&first.config, &paused.config), "a changed text is decoded again");
    assert_eq!(paused.config.schedule_state, ScheduleState::Paused);
    let refused = repo.ensure_current(&key, condition).await;
    assert!(matches!(refused, Err(EngineError::Superseded)), "a paused job refuses the old cycle: {refused:?}");
    assert!(first.config.schedule_state != ScheduleState::Paused, "a snapshot already taken does not change");
}
