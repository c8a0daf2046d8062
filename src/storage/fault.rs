//! A fault-injecting `ObjectStore`: wraps another store and, following a
//! [`Plan`], fails, delays or truncates chosen operations, or *crashes* at
//! one: from that operation on no write (put, delete, copy) reaches the
//! wrapped store any more, as if the process had been killed with `kill -9`
//! at that point (the operation itself is not applied). Every operation is
//! recorded (kind and path), so a test can run a job once, count its
//! storage steps, and then crash it at every one of them.
//!
//! For tests of failure paths below the binary (`Store::from_object_store`
//! over this wrapper over `object_store::memory::InMemory`).

use std::fmt;
use std::ops::Range;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use futures::stream::BoxStream;
use futures::StreamExt;
use object_store::path::Path;
use object_store::{
    GetOptions, GetResult, ListResult, MultipartUpload, ObjectMeta, ObjectStore,
    PutMultipartOptions, PutOptions, PutPayload, PutResult, Result,
};

/// The kinds of storage operation a plan can pick.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum OpKind {
    Put,
    /// get, get_range, head.
    Get,
    List,
    Delete,
    Copy,
}

impl OpKind {
    /// Whether the operation changes the store.
    pub fn is_write(self) -> bool {
        matches!(self, OpKind::Put | OpKind::Delete | OpKind::Copy)
    }
}

/// Which operation a fault hits (counted from 0, in the order operations
/// reach the wrapper).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Trigger {
    /// The n-th operation of this kind.
    Nth(OpKind, usize),
    /// The n-th operation of any kind.
    Overall(usize),
    /// The n-th write (put, delete or copy).
    Write(usize),
    /// Every operation whose path contains this text (`None`: of any kind),
    /// for instance every request to one target's prefix: a target down.
    Matching(Option<OpKind>, &'static str),
    /// Every operation whose path starts with this text (`None`: of any
    /// kind): every request to one target (`"b/"`), which `Matching` cannot
    /// say when other targets' pack directories end in the same letter.
    Under(Option<OpKind>, &'static str),
    /// The n-th operation of this kind whose path starts with this text:
    /// a part in the middle of one target's multipart upload.
    NthUnder(OpKind, &'static str, usize),
}

/// What happens to the operation a trigger hits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    /// Fails it: `retryable` like a 5xx or a reset connection (a generic
    /// error), else permanently (permission denied). Nothing is applied.
    Fail { retryable: bool },
    /// Waits this long, then performs it.
    Delay(Duration),
    /// A put stores only its first `keep` bytes and reports success.
    Truncate { keep: usize },
    /// The process "dies" here: this write and every later one are not
    /// applied (see [`AfterCrash`]); reads go on answering.
    Crash,
}

/// How writes behave once crashed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AfterCrash {
    /// Reported as successful, not applied (the process never learns it
    /// died: the harshest case for what it records elsewhere).
    Drop,
    /// Fail (permanently).
    Error,
}

/// One operation as the wrapper saw it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Op {
    pub kind: OpKind,
    pub path: String,
    /// A write that was not applied because of a crash.
    pub dropped: bool,
}

impl fmt::Display for Op {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let kind = match self.kind {
            OpKind::Put => "put",
            OpKind::Get => "get",
            OpKind::List => "list",
            OpKind::Delete => "delete",
            OpKind::Copy => "copy",
        };
        write!(f, "{kind} {}", self.path)?;
        if self.dropped {
            write!(f, " (dropped)")?;
        }
        Ok(())
    }
}

/// The faults to inject.
#[derive(Debug, Clone, Default)]
pub struct Plan {
    rules: Vec<(Trigger, Fault)>,
    after_crash: Option<AfterCrash>,
}

impl Plan {
    pub fn new() -> Plan {
        Plan::default()
    }

    /// Adds a fault (several may hit one operation: the first listed wins,
    /// except delays, which all apply first).
    pub fn with(mut self, trigger: Trigger, fault: Fault) -> Plan {
        self.rules.push((trigger, fault));
        self
    }

    /// Crash at `trigger`, writes after it behaving as `after`.
    pub fn crash(self, trigger: Trigger, after: AfterCrash) -> Plan {
        let mut p = self.with(trigger, Fault::Crash);
        p.after_crash = Some(after);
        p
    }
}

#[derive(Debug, Default)]
struct State {
    plan: Plan,
    log: Vec<Op>,
    /// Operations seen, per kind and overall, and writes.
    per_kind: std::collections::HashMap<OpKind, usize>,
    overall: usize,
    writes: usize,
    crashed: bool,
}

/// What the wrapper decided for one operation.
enum Verdict {
    Run,
    Fail(object_store::Error),
    /// A crashed write reported as successful.
    Drop,
    Truncate(usize),
}

/// The wrapper. Build it with [`FaultStore::new`], hand it to
/// `Store::from_object_store`, read [`FaultStore::ops`] afterwards.
pub struct FaultStore {
    inner: Arc<dyn ObjectStore>,
    state: Arc<Mutex<State>>,
}

impl fmt::Debug for FaultStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "FaultStore({})", self.inner)
    }
}

impl fmt::Display for FaultStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "FaultStore({})", self.inner)
    }
}

fn injected(path: &str, retryable: bool) -> object_store::Error {
    if retryable {
        object_store::Error::Generic {
            store: "FaultStore",
            source: format!("injected 503 Service Unavailable on {path}").into(),
        }
    } else {
        object_store::Error::PermissionDenied {
            path: path.to_string(),
            source: "injected permanent failure".into(),
        }
    }
}

impl FaultStore {
    pub fn new(inner: Arc<dyn ObjectStore>, plan: Plan) -> Arc<FaultStore> {
        Arc::new(FaultStore {
            inner,
            state: Arc::new(Mutex::new(State {
                plan,
                ..Default::default()
            })),
        })
    }

    /// Replaces the plan (counters and log go on).
    pub fn set_plan(&self, plan: Plan) {
        self.state.lock().unwrap().plan = plan;
    }

    /// Every operation so far, in order.
    pub fn ops(&self) -> Vec<Op> {
        self.state.lock().unwrap().log.clone()
    }

    /// Whether a crash was hit.
    pub fn crashed(&self) -> bool {
        self.state.lock().unwrap().crashed
    }

    /// Counts the operation, logs it and decides its fate; the delay to
    /// apply first is returned alongside.
    fn decide(&self, kind: OpKind, path: &Path) -> (Option<Duration>, Verdict) {
        decide(&self.state, kind, path)
    }

    /// Applies the delay, then the verdict: `Ok(None)` to run the
    /// operation, `Ok(Some(keep))` to store a put's first `keep` bytes.
    async fn gate(&self, kind: OpKind, path: &Path) -> Result<Option<usize>, Gate> {
        let (delay, verdict) = self.decide(kind, path);
        if let Some(d) = delay {
            tokio::time::sleep(d).await;
        }
        match verdict {
            Verdict::Run => Ok(None),
            Verdict::Truncate(keep) => Ok(Some(keep)),
            Verdict::Drop => Err(Gate::Dropped),
            Verdict::Fail(e) => Err(Gate::Failed(e)),
        }
    }
}

/// [`FaultStore::decide`] on its state (shared with its uploads' parts).
fn decide(state: &Mutex<State>, kind: OpKind, path: &Path) -> (Option<Duration>, Verdict) {
    let mut st = state.lock().unwrap();

    let nth_kind = *st.per_kind.get(&kind).unwrap_or(&0);
    let overall = st.overall;
    let write = st.writes;
    st.per_kind.insert(kind, nth_kind + 1);
    st.overall += 1;
    if kind.is_write() {
        st.writes += 1;
    }
    let hits = |t: &Trigger| match *t {
        Trigger::Nth(k, n) => k == kind && n == nth_kind,
        Trigger::Overall(n) => n == overall,
        Trigger::Write(n) => kind.is_write() && n == write,
        Trigger::Matching(k, text) => k.is_none_or(|k| k == kind) && path.as_ref().contains(text),
        Trigger::Under(k, text) => k.is_none_or(|k| k == kind) && path.as_ref().starts_with(text),
        Trigger::NthUnder(k, text, n) => {
            k == kind
                && path.as_ref().starts_with(text)
                && st
                    .log
                    .iter()
                    .filter(|o| o.kind == k && o.path.starts_with(text))
                    .count()
                    == n
        }
    };
    let mut delay = None;
    let mut fault = None;
    for (t, f) in &st.plan.rules {
        if !hits(t) {
            continue;
        }
        match f {
            Fault::Delay(d) => delay = Some(delay.unwrap_or_default() + *d),
            f if fault.is_none() => fault = Some(*f),
            _ => {}
        }
    }
    if fault == Some(Fault::Crash) {
        st.crashed = true;
    }
    let path_s = path.to_string();
    let verdict = if st.crashed && kind.is_write() {
        match st.plan.after_crash.unwrap_or(AfterCrash::Drop) {
            AfterCrash::Drop => Verdict::Drop,
            AfterCrash::Error => Verdict::Fail(injected(&path_s, false)),
        }
    } else {
        match fault {
            Some(Fault::Fail { retryable }) => Verdict::Fail(injected(&path_s, retryable)),
            Some(Fault::Truncate { keep }) if kind == OpKind::Put => Verdict::Truncate(keep),
            _ => Verdict::Run,
        }
    };
    let dropped = st.crashed && kind.is_write();
    st.log.push(Op {
        kind,
        path: path_s,
        dropped,
    });
    (delay, verdict)
}

enum Gate {
    Dropped,
    Failed(object_store::Error),
}

fn fake_put_result() -> PutResult {
    PutResult {
        e_tag: None,
        version: None,
    }
}

/// A multipart upload whose parts go through the plan (as puts of its path).
#[derive(Debug)]
struct FaultUpload {
    inner: Box<dyn MultipartUpload>,
    state: Arc<Mutex<State>>,
    path: Path,
}

#[async_trait]
impl MultipartUpload for FaultUpload {
    fn put_part(&mut self, data: PutPayload) -> object_store::UploadPart {
        match decide(&self.state, OpKind::Put, &self.path).1 {
            Verdict::Run | Verdict::Truncate(_) => self.inner.put_part(data),
            Verdict::Drop => {
                let e = injected(self.path.as_ref(), false);
                Box::pin(async move { Err(e) })
            }
            Verdict::Fail(e) => Box::pin(async move { Err(e) }),
        }
    }

    async fn complete(&mut self) -> Result<PutResult> {
        self.inner.complete().await
    }

    async fn abort(&mut self) -> Result<()> {
        self.inner.abort().await
    }
}

#[async_trait]
impl ObjectStore for FaultStore {
    async fn put_opts(
        &self,
        location: &Path,
        payload: PutPayload,
        opts: PutOptions,
    ) -> Result<PutResult> {
        match self.gate(OpKind::Put, location).await {
            Ok(None) => self.inner.put_opts(location, payload, opts).await,
            Ok(Some(keep)) => {
                let all = bytes::Bytes::from(payload);
                let cut = all.slice(..keep.min(all.len()));
                self.inner.put_opts(location, cut.into(), opts).await
            }
            Err(Gate::Dropped) => Ok(fake_put_result()),
            Err(Gate::Failed(e)) => Err(e),
        }
    }

    async fn put_multipart_opts(
        &self,
        location: &Path,
        opts: PutMultipartOptions,
    ) -> Result<Box<dyn MultipartUpload>> {
        // A multipart upload counts as one put at its start and one per
        // part (a crash drops it by failing it); truncation does not apply.
        match self.gate(OpKind::Put, location).await {
            Ok(_) => Ok(Box::new(FaultUpload {
                inner: self.inner.put_multipart_opts(location, opts).await?,
                state: self.state.clone(),
                path: location.clone(),
            })),
            Err(Gate::Dropped) => Err(injected(location.as_ref(), false)),
            Err(Gate::Failed(e)) => Err(e),
        }
    }

    async fn get_opts(&self, location: &Path, options: GetOptions) -> Result<GetResult> {
        match self.gate(OpKind::Get, location).await {
            Err(Gate::Failed(e)) => Err(e),
            _ => self.inner.get_opts(location, options).await,
        }
    }

    async fn get_range(&self, location: &Path, range: Range<u64>) -> Result<bytes::Bytes> {
        match self.gate(OpKind::Get, location).await {
            Err(Gate::Failed(e)) => Err(e),
            _ => self.inner.get_range(location, range).await,
        }
    }

    async fn head(&self, location: &Path) -> Result<ObjectMeta> {
        match self.gate(OpKind::Get, location).await {
            Err(Gate::Failed(e)) => Err(e),
            _ => self.inner.head(location).await,
        }
    }

    async fn delete(&self, location: &Path) -> Result<()> {
        match self.gate(OpKind::Delete, location).await {
            Ok(_) => self.inner.delete(location).await,
            Err(Gate::Dropped) => Ok(()),
            Err(Gate::Failed(e)) => Err(e),
        }
    }

    fn list(&self, prefix: Option<&Path>) -> BoxStream<'static, Result<ObjectMeta>> {
        let root = Path::from("");
        let (delay, verdict) = self.decide(OpKind::List, prefix.unwrap_or(&root));
        let inner = self.inner.list(prefix);
        let fail = match verdict {
            Verdict::Fail(e) => Some(e),
            _ => None,
        };
        futures::stream::once(async move {
            if let Some(d) = delay {
                tokio::time::sleep(d).await;
            }
            match fail {
                Some(e) => futures::stream::once(async { Err(e) }).boxed(),
                None => inner,
            }
        })
        .flatten()
        .boxed()
    }

    async fn list_with_delimiter(&self, prefix: Option<&Path>) -> Result<ListResult> {
        let root = Path::from("");
        match self.gate(OpKind::List, prefix.unwrap_or(&root)).await {
            Err(Gate::Failed(e)) => Err(e),
            _ => self.inner.list_with_delimiter(prefix).await,
        }
    }

    async fn copy(&self, from: &Path, to: &Path) -> Result<()> {
        match self.gate(OpKind::Copy, to).await {
            Ok(_) => self.inner.copy(from, to).await,
            Err(Gate::Dropped) => Ok(()),
            Err(Gate::Failed(e)) => Err(e),
        }
    }

    async fn copy_if_not_exists(&self, from: &Path, to: &Path) -> Result<()> {
        match self.gate(OpKind::Copy, to).await {
            Ok(_) => self.inner.copy_if_not_exists(from, to).await,
            Err(Gate::Dropped) => Ok(()),
            Err(Gate::Failed(e)) => Err(e),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::storage::{runtime, Store};
    use bytes::Bytes;
    use object_store::memory::InMemory;

    fn store(plan: Plan) -> (Arc<InMemory>, Arc<FaultStore>, Store) {
        let mem = Arc::new(InMemory::new());
        let f = FaultStore::new(mem.clone(), plan);
        let s = Store::from_object_store("t", f.clone(), "repo", "memory://t");
        (mem, f, s)
    }

    /// A spooled payload (a large manifest): `head`, then `body` from an
    /// unnamed file.
    fn spooled(head: &[u8], body: &[u8]) -> crate::storage::Payload {
        use std::io::Write;
        let mut f = tempfile::tempfile().unwrap();
        f.write_all(body).unwrap();
        crate::storage::Payload::Spooled {
            head: Bytes::copy_from_slice(head),
            body: Arc::new(f),
            body_len: body.len() as u64,
        }
    }

    /// Issue 14: a manifest too large to hold goes up as a multipart
    /// upload; a part that fails (the third of four) aborts it and leaves
    /// no object, so no half manifest becomes visible. Without the fault
    /// the object is the head and the body, byte for byte.
    #[test]
    fn a_spooled_payload_goes_up_in_parts_and_a_failed_part_leaves_nothing() {
        let body: Vec<u8> = (0..100u8).collect();
        let want: Vec<u8> = b"HEAD-12345".iter().copied().chain(body.clone()).collect();
        let at = Path::from("repo/snapshots/x");

        let (mem, f, s) = store(Plan::new());
        let s = s.with_part_bytes(32);
        runtime()
            .block_on(s.put_payload_async("snapshots/x", spooled(b"HEAD-12345", &body)))
            .unwrap();
        let got = runtime().block_on(async { mem.get(&at).await.unwrap().bytes().await.unwrap() });
        assert_eq!(got.as_ref(), want.as_slice());
        // One put to start the upload, one per part (110 bytes: 4 parts).
        let puts = f.ops().iter().filter(|o| o.kind == OpKind::Put).count();
        assert_eq!(puts, 5);

        // The start is put 0, so the third part is put 3.
        let (mem, _, s) = store(Plan::new().with(
            Trigger::Nth(OpKind::Put, 3),
            Fault::Fail { retryable: false },
        ));
        let s = s.with_part_bytes(32);
        let e = runtime()
            .block_on(s.put_payload_async("snapshots/x", spooled(b"HEAD-12345", &body)))
            .unwrap_err();
        assert!(crate::error::paragraph(&e).contains("injected"), "{e:#}");
        let found = runtime().block_on(mem.head(&at));
        assert!(
            matches!(found, Err(object_store::Error::NotFound { .. })),
            "{found:?}"
        );
        // Small enough for one part: a plain put.
        let (mem, f, s) = store(Plan::new());
        runtime()
            .block_on(s.put_payload_async("snapshots/x", spooled(b"HEAD-12345", &body)))
            .unwrap();
        let got = runtime().block_on(async { mem.get(&at).await.unwrap().bytes().await.unwrap() });
        assert_eq!(got.as_ref(), want.as_slice());
        assert_eq!(f.ops().len(), 1);
    }

    #[test]
    fn records_every_operation_with_its_kind_and_path() {
        let (_, f, s) = store(Plan::new());
        s.put("a/x", Bytes::from_static(b"1")).unwrap();
        assert_eq!(s.get("a/x").unwrap().unwrap(), Bytes::from_static(b"1"));
        assert_eq!(s.list("a").unwrap().len(), 1);
        s.delete("a/x").unwrap();
        let ops: Vec<String> = f.ops().iter().map(|o| o.to_string()).collect();
        assert_eq!(
            ops,
            [
                "put repo/a/x",
                "get repo/a/x",
                "list repo/a",
                "delete repo/a/x"
            ]
        );
    }

    #[test]
    fn fails_the_chosen_operation_retryably_or_permanently() {
        let plan = Plan::new()
            .with(
                Trigger::Nth(OpKind::Put, 1),
                Fault::Fail { retryable: true },
            )
            .with(Trigger::Overall(3), Fault::Fail { retryable: false });
        let (_, _, s) = store(plan);
        s.put("a", Bytes::from_static(b"1")).unwrap();
        let e = s.put("b", Bytes::from_static(b"2")).unwrap_err();
        assert_eq!(
            crate::error::exit_status(&e),
            crate::error::ExitStatus::Temporary
        );
        assert!(e.to_string().contains("injected 503"), "{e}");
        s.put("c", Bytes::from_static(b"3")).unwrap();
        let e = s.get("a").unwrap_err();
        assert_eq!(
            crate::error::exit_status(&e),
            crate::error::ExitStatus::Failure
        );
        assert!(
            s.get("b").unwrap().is_none(),
            "a failed put applies nothing"
        );
    }

    #[test]
    fn a_matching_trigger_hits_every_operation_on_its_paths() {
        let plan = Plan::new().with(
            Trigger::Matching(None, "repo/down/"),
            Fault::Fail { retryable: true },
        );
        let (_, _, s) = store(plan);
        s.put("up/a", Bytes::from_static(b"1")).unwrap();
        assert!(s.put("down/a", Bytes::from_static(b"1")).is_err());
        assert!(s.get("down/a").is_err());
        assert!(s.list("down").is_ok(), "the listing's path is repo/down");
        assert!(s.get("up/a").unwrap().is_some());
    }

    #[test]
    fn truncates_a_put_and_delays_an_operation() {
        let plan = Plan::new()
            .with(Trigger::Nth(OpKind::Put, 0), Fault::Truncate { keep: 2 })
            .with(
                Trigger::Nth(OpKind::Get, 0),
                Fault::Delay(Duration::from_millis(50)),
            );
        let (_, _, s) = store(plan);
        s.put("a", Bytes::from_static(b"hello")).unwrap();
        let t = std::time::Instant::now();
        assert_eq!(s.get("a").unwrap().unwrap(), Bytes::from_static(b"he"));
        assert!(t.elapsed() >= Duration::from_millis(50));
    }

    #[test]
    fn a_crash_stops_every_later_write_but_not_reads() {
        let plan = Plan::new().crash(Trigger::Write(1), AfterCrash::Drop);
        let (mem, f, s) = store(plan);
        s.put("a", Bytes::from_static(b"1")).unwrap();
        // Dropped silently: the "process" does not learn it died.
        s.put("b", Bytes::from_static(b"2")).unwrap();
        s.delete("a").unwrap();
        assert!(f.crashed());
        assert_eq!(s.get("a").unwrap().unwrap(), Bytes::from_static(b"1"));
        assert!(s.get("b").unwrap().is_none());
        let listed: Vec<_> = runtime()
            .block_on(futures::TryStreamExt::try_collect::<Vec<_>>(mem.list(None)))
            .unwrap();
        assert_eq!(listed.len(), 1);
        let dropped: Vec<String> = f
            .ops()
            .iter()
            .filter(|o| o.dropped)
            .map(|o| o.to_string())
            .collect();
        assert_eq!(dropped, ["put repo/b (dropped)", "delete repo/a (dropped)"]);

        let plan = Plan::new().crash(Trigger::Nth(OpKind::Delete, 0), AfterCrash::Error);
        let (_, _, s) = store(plan);
        s.put("a", Bytes::from_static(b"1")).unwrap();
        assert!(s.delete("a").is_err());
        assert!(s.put("b", Bytes::from_static(b"2")).is_err());
        assert!(s.get("a").unwrap().is_some());
    }
}
