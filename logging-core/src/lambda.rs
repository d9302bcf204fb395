//! The Lambda handler: a [`Pipeline`] served on `lambda_runtime`, from the invocation's raw
//! bytes to the partial batch response.
//!
//! [`serve`] runs the function's loop. The runtime hands every invocation over as the bytes it
//! received from the Runtime API; a layer of the runtime takes them before its own JSON
//! deserialization, so the event is parsed once, by the pipeline's decoder, straight from the
//! runtime's buffer (no copy, no second parse, no `KinesisEvent` in between). A record whose
//! `data` is not base64 is then one dead-lettered record (`undecodable/bad_base64`), not an
//! event that fails to deserialize and is retried as a whole until it expires.
//!
//! [`handle`] is the handler itself, without the network: invocation bytes in, response bytes
//! (`{"batchItemFailures":[...]}`) out. [`serve`] runs exactly this for every invocation; tests
//! and benchmarks call it directly.
//!
//! Every batch logs one `info` event, `batch processed`, with the counts of the [`Report`]
//! (per outcome), the event's bytes and the time taken, and one `info` event per `log_type`,
//! `log type processed`. Their fields are flat numbers and strings, so with Lambda's JSON log
//! format (`lambda_runtime::tracing::init_default_subscriber`, `AWS_LAMBDA_LOG_FORMAT=JSON`)
//! each is one JSON object with these fields, searchable in CloudWatch Logs Insights.
//!
//! ```no_run
//! use logging_core::{Pipeline, SchemaConfig};
//!
//! #[tokio::main]
//! async fn main() -> Result<(), lambda_runtime::Error> {
//!     lambda_runtime::tracing::init_default_subscriber();
//!     let pipeline = Pipeline::builder(SchemaConfig::default()).build();
//!     logging_core::lambda::serve(pipeline).await
//! }
//! ```

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};
use std::task::{Context as TaskContext, Poll};
use std::time::{Duration, Instant};

use bytes::Bytes;
use lambda_runtime::tower::{Layer, Service};
use lambda_runtime::{Error, LambdaEvent, LambdaInvocation, Runtime, layers, service_fn};

use crate::destination::Deadline;
use crate::pipeline::{BatchResponse, Pipeline, PipelineError, Report};

/// The longest timeout a Lambda function can have.
const LAMBDA_MAX_TIMEOUT: Duration = Duration::from_secs(900);

/// The handler without the network: processes one invocation's body (the Kinesis event JSON,
/// as the Runtime API sent it) before `deadline` and answers with the JSON of the partial batch
/// response, exactly what [`serve`] posts back.
///
/// An event that is not a Lambda Kinesis event at all is an error: no record can be named in a
/// partial answer, so the invocation fails and Lambda retries it. A bad record never fails the
/// invocation: it is dead-lettered.
///
/// ```
/// # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
/// use std::time::Duration;
/// use logging_core::{Deadline, Pipeline, SchemaConfig};
/// let pipeline = Pipeline::builder(SchemaConfig::default()).build();
/// // `data` is not base64: the record is dead-lettered (here: logged, no dead letter is
/// // configured), and the batch succeeds.
/// let event = br#"{"Records":[{"kinesis":{"data":"not base64!","partitionKey":"k",
///     "sequenceNumber":"1","approximateArrivalTimestamp":1.5}}]}"#;
/// let answer = logging_core::lambda::handle(&pipeline, event, Deadline::after(Duration::from_secs(60)))
///     .await
///     .unwrap();
/// assert_eq!(answer, br#"{"batchItemFailures":[]}"#);
/// # });
/// ```
pub async fn handle(
    pipeline: &Pipeline,
    body: &[u8],
    deadline: Deadline,
) -> Result<Vec<u8>, HandlerError> {
    let response = process(pipeline, body, deadline).await?;
    Ok(serde_json::to_vec(&response)?)
}

/// Why [`handle`] failed the invocation.
#[derive(Debug, thiserror::Error)]
pub enum HandlerError {
    /// The body is not a Lambda Kinesis event.
    #[error(transparent)]
    Pipeline(#[from] PipelineError),
    /// The answer could not be serialised.
    #[error("lambda handler: serialising the batch response failed: {0}")]
    Response(#[from] serde_json::Error),
    /// The runtime called the handler without handing over the invocation's body.
    #[error("lambda handler: no body for invocation {0}")]
    NoBody(String),
}

/// Processes one invocation and logs its batch events; the answer is serialised by the caller.
async fn process(
    pipeline: &Pipeline,
    body: &[u8],
    deadline: Deadline,
) -> Result<BatchResponse, PipelineError> {
    let started = Instant::now();
    match pipeline.process_until(body, deadline).await {
        Ok(out) => {
            log_batch(&out.report, body.len(), started.elapsed());
            Ok(out.response)
        }
        Err(e) => {
            tracing::error!(
                event_bytes = body.len(),
                error = %e,
                "invocation failed: the event is not a Lambda Kinesis event; Lambda retries it"
            );
            Err(e)
        }
    }
}

/// The per-batch events (see the [module documentation](self)).
fn log_batch(report: &Report, event_bytes: usize, took: Duration) {
    tracing::info!(
        records = report.records,
        items = report.items,
        event_bytes,
        payload_bytes = report.payload_bytes,
        duration_ms = took.as_secs_f64() * 1e3,
        delivered = report.delivered,
        filtered = report.filtered,
        control = report.control,
        invalid = report.invalid.total(),
        unknown_type = report.invalid.unknown_type,
        no_timestamp = report.invalid.no_timestamp,
        bad_timestamp = report.invalid.bad_timestamp,
        undecodable = report.invalid.undecodable,
        rejected = report.rejected,
        retry = report.retry,
        dead_letter_written = report.dead_letter.written,
        dead_letter_retry = report.dead_letter.retry,
        batch_item_failure = report.batch_item_failure.as_deref(),
        "batch processed"
    );
    for (log_type, c) in &report.log_types {
        tracing::info!(
            log_type = log_type.as_str(),
            routed = c.routed,
            delivered = c.delivered,
            rejected = c.rejected,
            retry = c.retry,
            filtered = c.filtered,
            "log type processed"
        );
    }
}

/// Serves `pipeline` as the function's handler until the runtime stops: Kinesis events in,
/// partial batch responses (`batchItemFailures`) out, each answered before its invocation's
/// deadline (deliveries still retrying then are cut and their records reported for retry, see
/// [`Pipeline::process_until`]). Every invocation runs [`handle`]'s work on the bytes the
/// runtime received; the runtime's `TracingLayer` puts each invocation's events in a span with
/// its request id.
///
/// Configure the event source mapping with `FunctionResponseTypes: ReportBatchItemFailures`.
///
/// # Panics
///
/// As `lambda_runtime::run`: when the variables Lambda sets (`AWS_LAMBDA_FUNCTION_NAME`,
/// `AWS_LAMBDA_FUNCTION_MEMORY_SIZE`, `AWS_LAMBDA_FUNCTION_VERSION`,
/// `AWS_LAMBDA_RUNTIME_API`) are missing.
pub async fn serve(pipeline: Pipeline) -> Result<(), Error> {
    log_budget(&pipeline);
    let pipeline = Arc::new(pipeline);
    let bodies = Bodies::default();
    let handler = {
        let bodies = bodies.clone();
        service_fn(move |event: LambdaEvent<()>| {
            let pipeline = Arc::clone(&pipeline);
            let body = bodies.take(&event.context.request_id);
            async move {
                let Some(body) = body else {
                    return Err(HandlerError::NoBody(event.context.request_id).into());
                };
                let deadline = Deadline::from_epoch_millis(event.context.deadline);
                process(&pipeline, &body, deadline)
                    .await
                    .map_err(|e| Error::from(HandlerError::from(e)))
            }
        })
    };
    Runtime::new(handler)
        .layer(TakeBody { bodies })
        .layer(layers::TracingLayer::new())
        .run()
        .await
}

fn log_budget(pipeline: &Pipeline) {
    let Some(budget) = pipeline.retry_budget() else {
        return;
    };
    let retry_budget_ms = u64::try_from(budget.as_millis()).unwrap_or(u64::MAX);
    if budget > LAMBDA_MAX_TIMEOUT {
        tracing::warn!(
            retry_budget_ms,
            "the destinations' retry budget exceeds Lambda's longest timeout (15 minutes): \
             every slow batch will be cut at the deadline; lower their attempts or timeouts"
        );
    } else {
        tracing::info!(
            retry_budget_ms,
            "longest delivery with every retry; keep the function timeout above it, or \
             deliveries still running are cut before the deadline and retried"
        );
    }
}

/// The invocation bodies taken by [`TakeBody`], by request id, until the handler takes them.
#[derive(Clone, Default)]
struct Bodies(Arc<Mutex<HashMap<String, Bytes>>>);

impl Bodies {
    fn put(&self, request_id: String, body: Bytes) {
        self.0
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(request_id, body);
    }

    fn take(&self, request_id: &str) -> Option<Bytes> {
        self.0
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .remove(request_id)
    }
}

/// JSON `null`: what the runtime's own deserialization reads instead of the event (into `()`).
const NULL: &[u8] = b"null";

/// A runtime layer that moves the invocation's body (the runtime's buffer, reference counted:
/// no copy) aside for the handler and leaves `null` for the runtime to deserialize.
struct TakeBody {
    bodies: Bodies,
}

impl<S> Layer<S> for TakeBody {
    type Service = TakeBodyService<S>;

    fn layer(&self, inner: S) -> Self::Service {
        TakeBodyService {
            inner,
            bodies: self.bodies.clone(),
        }
    }
}

/// The service of [`TakeBody`].
struct TakeBodyService<S> {
    inner: S,
    bodies: Bodies,
}

impl<S> Service<LambdaInvocation> for TakeBodyService<S>
where
    S: Service<LambdaInvocation, Response = (), Error = Error>,
{
    type Response = ();
    type Error = Error;
    type Future = S::Future;

    fn poll_ready(&mut self, cx: &mut TaskContext<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut req: LambdaInvocation) -> Self::Future {
        let body = std::mem::replace(&mut req.body, Bytes::from_static(NULL));
        self.bodies.put(req.context.request_id.clone(), body);
        self.inner.call(req)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{
        ArchiveConfig, DeadLetter, DeadLetterConfig, MemoryStore, ObjectStore, S3Archive,
        SchemaConfig, TypeFilter,
    };
    use base64::Engine as _;

    fn far() -> Deadline {
        Deadline::after(Duration::from_secs(60))
    }

    /// A bad-base64 record is one dead-lettered record; the rest of the batch is delivered and
    /// the answer is an empty partial batch response.
    #[tokio::test]
    async fn bad_base64_is_dead_lettered_not_an_invocation_error() {
        let archive = Arc::new(MemoryStore::new());
        let failed = Arc::new(MemoryStore::new());
        let pipeline = Pipeline::builder(SchemaConfig::default())
            .route(
                TypeFilter::all(),
                S3Archive::builder(archive.clone(), ArchiveConfig::default()),
            )
            .dead_letter(DeadLetter::builder(
                failed.clone(),
                DeadLetterConfig::default(),
            ))
            .build();
        let good = base64::engine::general_purpose::STANDARD
            .encode(r#"{"log_type":"app","log_id":"a","time":"2020-03-14T12:00:00Z"}"#);
        let event = format!(
            r#"{{"Records":[
              {{"kinesis":{{"data":"{good}","partitionKey":"k","sequenceNumber":"1","approximateArrivalTimestamp":1.5}},"eventID":"shardId-0:1"}},
              {{"kinesis":{{"data":"%%% not base64 %%%","partitionKey":"k","sequenceNumber":"2","approximateArrivalTimestamp":1.5}},"eventID":"shardId-0:2"}}]}}"#
        );
        let answer = handle(&pipeline, event.as_bytes(), far()).await.unwrap();
        assert_eq!(answer, br#"{"batchItemFailures":[]}"#);
        assert_eq!(archive.list("").await.unwrap().len(), 1);
        let dead = failed.list("").await.unwrap();
        assert_eq!(dead.len(), 1, "{dead:?}");
        assert!(dead[0].starts_with("unknown/undecodable/"), "{dead:?}");
        let out = pipeline.process(event.as_bytes()).await.unwrap();
        assert_eq!(
            out.report.invalid_codes.get("undecodable/bad_base64"),
            Some(&1)
        );
    }

    /// Not a Kinesis event: the invocation fails (Lambda retries it), with the step named.
    #[tokio::test]
    async fn a_body_that_is_no_event_fails_the_invocation() {
        let pipeline = Pipeline::builder(SchemaConfig::default()).build();
        let e = handle(&pipeline, b"[1,2]", far()).await.unwrap_err();
        assert!(matches!(e, HandlerError::Pipeline(_)), "{e}");
        assert!(e.to_string().contains("decoding the Lambda event"), "{e}");
    }

    /// The layer hands the runtime `null` and the handler the very buffer it received.
    #[tokio::test]
    async fn the_layer_moves_the_body_without_copying() {
        let bodies = Bodies::default();
        let seen = Arc::new(Mutex::new(None::<Bytes>));
        let inner = {
            let seen = seen.clone();
            service_fn(move |req: LambdaInvocation| {
                *seen.lock().unwrap() = Some(req.body);
                async { Ok::<(), Error>(()) }
            })
        };
        let mut svc = TakeBody {
            bodies: bodies.clone(),
        }
        .layer(inner);
        let body = Bytes::from(br#"{"Records":[]}"#.to_vec());
        let ptr = body.as_ptr();
        let (parts, ()) = http::Response::new(()).into_parts();
        let mut context = lambda_runtime::Context::default();
        context.request_id = "req-1".into();
        svc.call(LambdaInvocation {
            parts,
            body,
            context,
        })
        .await
        .unwrap();
        assert_eq!(seen.lock().unwrap().as_deref(), Some(NULL));
        let taken = bodies.take("req-1").unwrap();
        assert_eq!(taken.as_ptr(), ptr);
        assert!(bodies.take("req-1").is_none());
    }
}
