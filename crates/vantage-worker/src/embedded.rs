//! In-process workers for embedded mode: a dispatcher follows the event log and runs every requested
//! scan that has not ended, with at most `max_concurrent_scans` at a time.
//!
//! Which scans to run comes from [`ScanFeed`]: scans a previous process left queued or running are run
//! again (observation ids are deterministic, so nothing is recorded twice); where to pick up comes
//! from [`EmbeddedWorkers::resuming_from`].

use std::collections::HashMap;
use std::future::Future;
use std::sync::Arc;

use async_trait::async_trait;
use tokio::sync::{Semaphore, watch};
use vantage_app::{CommandContext, PlainSample, Services, new_id};
use vantage_domain::ids::ScanId;
use vantage_domain::scan::ScanCommand;
use vantage_store::StoreError;

use crate::feed::{Dispatch, ResumeSource, ScanFeed, from_log_start};
use crate::run::{ScanEventSink, ScanJob, Scanner, Submitted, WorkerError, run_scan};
use crate::scan_states::ScanStates;

/// Commands go straight through the application's pipeline (in-process workers).
#[derive(Debug)]
pub struct PipelineSink {
    services: Services,
    worker_id: String,
    scans: ScanStates,
}

impl PipelineSink {
    pub fn new(services: Services, worker_id: impl Into<String>) -> Self {
        Self {
            services,
            worker_id: worker_id.into(),
            scans: ScanStates::default(),
        }
    }
}

impl PipelineSink {
    fn context(&self, job: &ScanJob) -> CommandContext {
        CommandContext {
            tenant: job.tenant.clone(),
            actor: format!("worker:{}", self.worker_id),
            request_id: None,
            correlation_id: job.scan_id.as_uuid(),
            causation_id: None,
        }
    }
}

#[async_trait]
impl ScanEventSink for PipelineSink {
    async fn submit(&self, job: &ScanJob, command: ScanCommand) -> Result<Submitted, WorkerError> {
        let context = self.context(job);
        match self
            .scans
            .execute(&self.services, job.scan_id, &context, command)
            .await
        {
            Ok(Ok(_)) => Ok(Submitted::Accepted),
            Ok(Err(refused)) => Ok(Submitted::Refused(refused)),
            Err(error) => Err(WorkerError::Sink(error.to_string())),
        }
    }

    async fn keep_sample(&self, job: &ScanJob, sample: PlainSample) -> Result<(), WorkerError> {
        keep_sample(&self.services, &self.context(job), job.scan_id, sample).await
    }
}

/// Seals and records `sample` through the application; a sample the scan refuses (it ended, its key
/// is gone) is dropped with a note, never a reason to stop the scan.
async fn keep_sample(
    services: &Services,
    context: &CommandContext,
    scan: ScanId,
    sample: PlainSample,
) -> Result<(), WorkerError> {
    match services.keep_content_sample(context, scan, sample).await {
        Ok(Ok(_)) => Ok(()),
        Ok(Err(refused)) => {
            tracing::info!(%scan, %refused, "content sample not kept");
            Ok(())
        }
        Err(error) => Err(WorkerError::Sink(error.to_string())),
    }
}

/// The in-process worker pool.
#[derive(Clone)]
pub struct EmbeddedWorkers {
    services: Services,
    resume: ResumeSource,
    worker_id: String,
    max_concurrent_scans: usize,
    tls_roots: vantage_probes::tls::TlsRoots,
    dnssec: Option<vantage_probes::dnssec::DnssecValidator>,
}

impl std::fmt::Debug for EmbeddedWorkers {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EmbeddedWorkers")
            .field("worker_id", &self.worker_id)
            .field("max_concurrent_scans", &self.max_concurrent_scans)
            .finish_non_exhaustive()
    }
}

impl EmbeddedWorkers {
    pub fn new(services: Services, max_concurrent_scans: usize) -> Self {
        Self {
            services,
            resume: from_log_start(),
            worker_id: format!("embedded-{}", new_id().simple()),
            max_concurrent_scans: max_concurrent_scans.max(1),
            tls_roots: vantage_probes::tls::TlsRoots::web_pki(),
            dnssec: None,
        }
    }

    /// Picks up from where `resume` says (the scans projection) instead of the log's beginning.
    pub fn resuming_from(mut self, resume: ResumeSource) -> Self {
        self.resume = resume;
        self
    }

    /// Trusts these anchors (the web PKI plus a lab's CAs) when judging certificates.
    pub fn with_tls_roots(mut self, roots: vantage_probes::tls::TlsRoots) -> Self {
        self.tls_roots = roots;
        self
    }

    /// Validates DNSSEC and DANE with `validator` (otherwise neither is observed).
    pub fn with_dnssec(mut self, validator: vantage_probes::dnssec::DnssecValidator) -> Self {
        self.dnssec = Some(validator);
        self
    }

    /// Dispatches scans until `shutdown` resolves. Scans still running then are picked up again by
    /// the next start.
    pub async fn run(self, shutdown: impl Future<Output = ()>) -> Result<(), StoreError> {
        let resume = (self.resume)().await?;
        let mut feed = ScanFeed::start(self.services.store().clone(), resume).await?;
        let sink: Arc<dyn ScanEventSink> = Arc::new(PipelineSink::new(
            self.services.clone(),
            self.worker_id.clone(),
        ));
        let slots = Arc::new(Semaphore::new(self.max_concurrent_scans));
        let mut cancels: HashMap<ScanId, watch::Sender<bool>> = HashMap::new();
        tokio::pin!(shutdown);
        tracing::info!(worker = %self.worker_id, slots = self.max_concurrent_scans, "scan workers started");
        loop {
            let dispatch = tokio::select! {
                dispatch = feed.next() => dispatch?,
                () = &mut shutdown => break,
            };
            match dispatch {
                Dispatch::Run(job) => self.spawn(job, &sink, &slots, &mut cancels),
                Dispatch::Stop(scan_id) => {
                    if let Some(cancel) = cancels.remove(&scan_id) {
                        let _ = cancel.send(true);
                    }
                }
                Dispatch::Ended(scan_id) => {
                    cancels.remove(&scan_id);
                }
            }
        }
        tracing::info!(worker = %self.worker_id, "scan workers stopped");
        Ok(())
    }

    fn spawn(
        &self,
        job: ScanJob,
        sink: &Arc<dyn ScanEventSink>,
        slots: &Arc<Semaphore>,
        cancels: &mut HashMap<ScanId, watch::Sender<bool>>,
    ) {
        let (cancel, cancelled) = watch::channel(false);
        cancels.insert(job.scan_id, cancel);
        let sink = sink.clone();
        let slots = slots.clone();
        let mut scanner = Scanner::new(self.services.guard.clone(), self.tls_roots.clone());
        scanner.dnssec = self.dnssec.clone();
        let worker_id = self.worker_id.clone();
        tokio::spawn(async move {
            let Ok(_slot) = slots.acquire_owned().await else {
                return;
            };
            if let Err(error) = run_scan(&job, &worker_id, &scanner, sink.as_ref(), cancelled).await
            {
                tracing::error!(scan = %job.scan_id, %error, "scan worker failed");
            }
        });
    }
}
