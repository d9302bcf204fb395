//! The log pipeline end to end, in the shape users deploy it.
//!
//! Producers put plain, KPL-aggregated and CloudWatch Logs records (bad ones included) to a
//! moto Kinesis stream of four shards. Two event source mappings read it, as Lambda would for
//! two functions subscribed to one stream, and invoke the `kinesis_to_s3` and
//! `kinesis_forward` examples of logging-core. The examples run as processes on the real
//! `lambda_runtime` crate against the local Runtime API, configured only through the
//! environment variables their docs name, and reach S3 and Kinesis through a fault proxy in
//! front of moto that fails a bounded share of calls (5xx, slow answers, connection resets)
//! and fails chosen content on purpose, so that both functions answer partial batch failures
//! that the mappings replay.
//!
//! Asserted: every produced log line reaches the archive exactly once by content (a repeat may
//! only be a whole object overwritten under its key), in stream order within each object;
//! every line reaches the forward stream, unchanged, and only replays or lost answers repeat
//! one; every bad payload is in each function's dead letter with its reason; checkpoints
//! advance in order per shard to each shard's last record; the run ends by itself.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::fmt::Write as _;
use std::sync::Arc;
use std::time::{Duration, Instant};

use baikonur_e2e::esm::{
    BatchOutcome, EventSourceMapping, MappingConfig, MappingLog, Source, Targets,
};
use baikonur_e2e::fault_proxy::{FAULT_KINDS, FaultPlan, FaultProxy, Service, Trigger};
use baikonur_e2e::function::{Environments, example_binary, examples_dir};
use baikonur_e2e::moto;
use baikonur_e2e::outputs;
use baikonur_e2e::producer::{BadKind, Dataset, DatasetSpec, UNENCODED_PREFIX};
use baikonur_e2e::runtime_api::{FunctionConfig, RuntimeApi};
use tokio::sync::watch;

/// Records whose `data` reaches the function as text that is not base64 (the mapping writes
/// them unencoded). The examples serve the raw invocation bytes (`logging_core::lambda::serve`),
/// so each such record must be dead-lettered as `undecodable/bad_base64` while the rest of its
/// batch goes through. (A handler on `LambdaEvent<KinesisEvent>` refuses such an event as a
/// whole, and the batch fails until the mapping discards it.)
const BAD_BASE64_RECORDS: bool = true;

/// A good line the proxy fails in the forward functions' PutRecords calls (entry-level
/// `ProvisionedThroughputExceededException`) as often as a function retries in one
/// invocation, so that it answers a partial batch failure and the mapping replays.
const KINESIS_MARKER: &str = "fail-kinesis-put";
/// A good line whose archive object the proxy fails (503 `SlowDown`) as often as the archive
/// and the SDK retry in one invocation (3 x 3), so that `kinesis_to_s3` answers a partial
/// batch failure and the mapping replays from the lowest failed sequence number.
const S3_MARKER: &str = "fail-s3-put";
const S3_ATTEMPTS: u32 = 9;

/// After a partial batch failure, Lambda replays from the sequence number the function
/// answers. A replay that started inside an archive group already stored would write the
/// group's later lines again under a new first record, so a new key. The pipeline prevents it
/// (it answers the first record of any stored group that straddles the lowest failed record),
/// so this is `false`: every line must be in the archive exactly once by content, and a
/// repeat may only be a whole object overwritten under the same key. `true` would tolerate
/// (count and print) lines archived twice after a replay.
const KNOWN_GAP_ARCHIVE_REPLAY_DUPLICATES: bool = false;
/// The forward function's own PutRecords attempts per invocation (`KINESIS_MAX_RETRIES` + 1).
const FORWARD_ATTEMPTS: u32 = 2;

/// The whole run, producers to read-back, must end within this.
const RUN_LIMIT: Duration = Duration::from_secs(150);

struct Function {
    name: &'static str,
    api: Arc<RuntimeApi>,
    envs: Environments,
    mapping: Arc<EventSourceMapping>,
    targets: watch::Sender<Option<Targets>>,
    /// The forward target stream, for forward functions.
    target_stream: Option<String>,
    /// The dead letter's prefix in the failed bucket.
    dead_letter_prefix: &'static str,
    /// The mapping's batch size.
    batch_size: usize,
}

#[allow(clippy::too_many_arguments)]
async fn start_function(
    name: &'static str,
    example: &str,
    function_env: Vec<(&str, String)>,
    environments: usize,
    source: Source,
    config: MappingConfig,
    log_dir: &std::path::Path,
    target_stream: Option<String>,
    dead_letter_prefix: &'static str,
) -> Function {
    let binary = example_binary(example).unwrap_or_else(|e| panic!("{e}"));
    let mut fc = FunctionConfig::new(name);
    fc.timeout = Duration::from_secs(60);
    fc.pickup_timeout = Duration::from_secs(60);
    let api = Arc::new(RuntimeApi::start(fc.clone()).await.unwrap());
    let envs = Environments::start(
        &binary,
        &[],
        &fc,
        &api.address(),
        &function_env,
        environments,
        log_dir,
    )
    .unwrap_or_else(|e| panic!("{e}"));
    let batch_size = config.batch_size;
    let mapping = EventSourceMapping::new(source, config, api.clone());
    let (targets, _) = watch::channel(None);
    Function {
        name,
        api,
        envs,
        mapping,
        targets,
        target_stream,
        dead_letter_prefix,
        batch_size,
    }
}

fn mapping_summary(log: &MappingLog) -> String {
    let partial = log
        .invocations
        .iter()
        .filter(|i| matches!(i.outcome, BatchOutcome::Partial { .. }))
        .count();
    let errors = log
        .invocations
        .iter()
        .filter(|i| matches!(i.outcome, BatchOutcome::FunctionError(_)))
        .count();
    let records: usize = log
        .invocations
        .iter()
        .map(|i| i.sequence_numbers.len())
        .sum();
    format!(
        "{} invocations ({records} records sent, {partial} partial failures, {errors} function errors), {} checkpoints, {} discarded batches",
        log.invocations.len(),
        log.checkpoints.len(),
        log.discarded.len()
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kinesis_examples_deliver_everything_once_through_faults() {
    let started = Instant::now();
    let endpoint = moto::endpoint().unwrap_or_else(|e| panic!("{e}"));
    let kinesis = moto::kinesis(&endpoint).await;
    let s3 = moto::s3(&endpoint).await;
    let source_name = moto::unique("e2e-logs");
    let forward_name = moto::unique("e2e-forwarded");
    let aggregated_name = moto::unique("e2e-aggregated");
    let archive_bucket = moto::unique("e2e-archive");
    let failed_bucket = moto::unique("e2e-failed");
    let source_arn = moto::stream(&kinesis, &source_name, 4).await.unwrap();
    moto::stream(&kinesis, &forward_name, 2).await.unwrap();
    moto::stream(&kinesis, &aggregated_name, 2).await.unwrap();
    moto::bucket(&s3, &archive_bucket).await.unwrap();
    moto::bucket(&s3, &failed_bucket).await.unwrap();

    let mut triggers = vec![
        Trigger {
            service: Service::Kinesis,
            marker: KINESIS_MARKER.as_bytes().to_vec(),
            stream: Some(forward_name.clone()),
            times: FORWARD_ATTEMPTS,
        },
        Trigger {
            service: Service::Kinesis,
            marker: KINESIS_MARKER.as_bytes().to_vec(),
            stream: Some(aggregated_name.clone()),
            times: FORWARD_ATTEMPTS,
        },
    ];
    triggers.push(Trigger {
        service: Service::S3,
        marker: S3_MARKER.as_bytes().to_vec(),
        stream: None,
        times: S3_ATTEMPTS,
    });
    let expected_hits: Vec<u32> = triggers.iter().map(|t| t.times).collect();
    let proxy = FaultProxy::start(
        &endpoint,
        FaultPlan {
            seed: 0x0BA1_C0A0,
            share: 0.08,
            max_faults: 60,
            max_in_a_row: 2,
            guaranteed_within: 10,
            slow: (Duration::from_millis(150), Duration::from_millis(900)),
            triggers,
        },
    )
    .await
    .unwrap();

    let log_dir = examples_dir()
        .unwrap()
        .parent()
        .unwrap()
        .join("e2e-logs")
        .join(format!("deployed-{}", std::process::id()));
    let source = |role: &str| Source {
        client: kinesis.clone(),
        stream_name: source_name.clone(),
        stream_arn: source_arn.clone(),
        region: moto::REGION.into(),
        invoke_identity_arn: format!("arn:aws:iam::123456789012:role/{role}"),
    };
    let unencoded = BAD_BASE64_RECORDS.then(|| UNENCODED_PREFIX.to_vec());
    let with_endpoint = |extra: Vec<(&'static str, String)>| {
        let mut env = vec![("AWS_ENDPOINT_URL", proxy.endpoint())];
        env.extend(extra);
        env
    };
    let to_s3 = start_function(
        "e2e-kinesis-to-s3",
        "kinesis_to_s3",
        with_endpoint(vec![
            ("LOG_S3_BUCKET", archive_bucket.clone()),
            ("LOG_S3_PREFIX", "logs".into()),
            ("FAILED_LOG_S3_BUCKET", failed_bucket.clone()),
            ("FAILED_LOG_S3_PREFIX", "to-s3".into()),
        ]),
        2,
        source("e2e-kinesis-to-s3"),
        MappingConfig {
            batch_size: 100,
            batching_window: Duration::from_millis(300),
            bisect_on_error: true,
            maximum_retry_attempts: Some(3),
            unencoded_prefix: unencoded.clone(),
            ..MappingConfig::default()
        },
        &log_dir,
        None,
        "to-s3/",
    )
    .await;
    let forward = start_function(
        "e2e-kinesis-forward",
        "kinesis_forward",
        with_endpoint(vec![
            ("TARGET_STREAM_NAME", forward_name.clone()),
            ("KINESIS_MAX_RETRIES", (FORWARD_ATTEMPTS - 1).to_string()),
            ("FAILED_LOG_S3_BUCKET", failed_bucket.clone()),
            ("FAILED_LOG_S3_PREFIX", "forward".into()),
        ]),
        1,
        source("e2e-kinesis-forward"),
        MappingConfig {
            batch_size: 250,
            batching_window: Duration::ZERO,
            bisect_on_error: false,
            maximum_retry_attempts: Some(3),
            unencoded_prefix: unencoded.clone(),
            ..MappingConfig::default()
        },
        &log_dir,
        Some(forward_name.clone()),
        "forward/",
    )
    .await;
    let aggregated = start_function(
        "e2e-kinesis-forward-kpl",
        "kinesis_forward",
        with_endpoint(vec![
            ("TARGET_STREAM_NAME", aggregated_name.clone()),
            ("KINESIS_MAX_RETRIES", (FORWARD_ATTEMPTS - 1).to_string()),
            ("KPL_AGGREGATE", "true".into()),
            ("PARTITION_KEY_FIELD", "log_id".into()),
            ("FAILED_LOG_S3_BUCKET", failed_bucket.clone()),
            ("FAILED_LOG_S3_PREFIX", "forward-kpl".into()),
        ]),
        1,
        source("e2e-kinesis-forward-kpl"),
        MappingConfig {
            batch_size: 60,
            batching_window: Duration::from_millis(100),
            bisect_on_error: true,
            maximum_retry_attempts: Some(3),
            unencoded_prefix: unencoded,
            ..MappingConfig::default()
        },
        &log_dir,
        Some(aggregated_name.clone()),
        "forward-kpl/",
    )
    .await;
    let mut functions = [to_s3, forward, aggregated];

    let markers = vec![KINESIS_MARKER.to_owned(), S3_MARKER.to_owned()];
    let mut ds = Dataset::generate(&DatasetSpec {
        seed: 0xE2E,
        plain: 700,
        kpl: 30,
        cwl: 25,
        bad_each: 2,
        bad_base64: if BAD_BASE64_RECORDS { 2 } else { 0 },
        markers,
    });

    // The mappings poll while the producers write, in waves.
    let runs: Vec<_> = functions
        .iter()
        .map(|f| {
            let m = f.mapping.clone();
            let rx = f.targets.subscribe();
            tokio::spawn(async move { m.run(rx).await })
        })
        .collect();
    let waves = 5;
    let per_wave = ds.records.len().div_ceil(waves);
    for w in 0..waves {
        let from = w * per_wave;
        let to = ((w + 1) * per_wave).min(ds.records.len());
        ds.put(&kinesis, &source_name, from..to)
            .await
            .unwrap_or_else(|e| panic!("{e}"));
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let targets = ds.targets();
    for f in &functions {
        f.targets.send_replace(Some(targets.clone()));
    }
    let produced_at = started.elapsed();

    // Wait for every mapping to reach every shard's last record; stop early when an
    // environment dies (its invocations could only time out) or the time is up.
    let mut problems = Vec::new();
    let deadline = started + RUN_LIMIT;
    loop {
        if runs.iter().all(|r| r.is_finished()) {
            break;
        }
        let mut dead = Vec::new();
        for f in &mut functions {
            for (i, status) in f.envs.exited() {
                dead.push(format!("{}: environment {i} exited ({status})", f.name));
            }
        }
        if !dead.is_empty() {
            problems.extend(dead);
            break;
        }
        if Instant::now() >= deadline {
            problems.push(format!(
                "the run did not end within {RUN_LIMIT:?}: not every shard reached its last record"
            ));
            break;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let mut logs = Vec::new();
    for (f, run) in functions.iter().zip(runs) {
        if run.is_finished() {
            match run.await {
                Ok(log) => logs.push(log),
                Err(e) => {
                    problems.push(format!("{}: the mapping task failed: {e}", f.name));
                    logs.push(f.mapping.log());
                }
            }
        } else {
            run.abort();
            problems.push(format!("{}: the mapping had not finished", f.name));
            logs.push(f.mapping.log());
        }
    }
    let consumed_at = started.elapsed();
    for f in &mut functions {
        if !f.api.init_errors().is_empty() {
            problems.push(format!("{}: init errors {:?}", f.name, f.api.init_errors()));
        }
        f.envs.stop().await;
    }

    // Read back and check.
    let mut summary = String::new();
    let _ = writeln!(summary, "data set: {}", outputs::describe(&ds));
    let archive = outputs::read_objects(&s3, &archive_bucket, "logs/")
        .await
        .unwrap();
    let tolerate = KNOWN_GAP_ARCHIVE_REPLAY_DUPLICATES.then_some(&logs[0]);
    // kinesis-to-s3 archives records whose timestamp it cannot parse, as the original did.
    let archived = ds.delivering(&[BadKind::BadTimestamp]);
    let figures = outputs::check_archive(&archived, "logs", &archive, tolerate, &mut problems);
    let _ = writeln!(
        summary,
        "archive: {} objects, {} lines, {} keys overwritten, {} lines archived twice after a replay (known gap)",
        figures.objects, figures.lines, figures.overwritten, figures.replay_duplicates
    );
    let stored_unanswered = proxy.stored_unanswered();
    for (f, log) in functions.iter().zip(&logs) {
        let mut sub = Vec::new();
        let dead = outputs::read_objects(&s3, &failed_bucket, f.dead_letter_prefix)
            .await
            .unwrap();
        let lines = outputs::dead_letter_lines(&dead, &mut sub);
        // What the function delivers instead of dead-lettering, as its original did: records
        // without a timestamp or with one it cannot parse are forwarded (kinesis-forward) or
        // archived with the others (kinesis-to-s3, unparseable ones only).
        let ds = if f.target_stream.is_some() {
            ds.delivering(&[BadKind::BadTimestamp, BadKind::NoTimestamp])
        } else {
            archived.clone()
        };
        let dead_count = outputs::check_dead_letter(&ds, &lines, &mut sub);
        outputs::check_mapping(&ds, log, f.batch_size, &mut sub);
        let mut line = format!(
            "{}: {}; {dead_count} dead-letter entries",
            f.name,
            mapping_summary(log)
        );
        if let Some(stream) = &f.target_stream {
            let forwarded = outputs::read_stream(&kinesis, stream).await.unwrap();
            let repeated =
                outputs::check_forwarded(&ds, &forwarded, log, &stored_unanswered, &mut sub);
            let _ = write!(
                line,
                "; {} records forwarded, {repeated} lines repeated",
                forwarded.len()
            );
            if !log
                .invocations
                .iter()
                .any(|i| matches!(i.outcome, BatchOutcome::Partial { .. }))
            {
                sub.push("never answered a partial batch failure".into());
            }
        }
        let _ = writeln!(summary, "{line}");
        problems.extend(sub.into_iter().map(|p| format!("{}: {p}", f.name)));
    }

    // The faults happened: every kind on both services, and every trigger as planned.
    let faults = proxy.summary();
    for service in [Service::S3, Service::Kinesis] {
        for kind in FAULT_KINDS {
            if faults.faults.get(&(service, kind)).copied().unwrap_or(0) == 0 {
                problems.push(format!(
                    "the proxy never injected {kind:?} into {service:?} calls"
                ));
            }
        }
    }
    if faults.trigger_hits != expected_hits {
        problems.push(format!(
            "the triggers failed {:?} attempts, expected {expected_hits:?}",
            faults.trigger_hits
        ));
    }
    if !logs[0]
        .invocations
        .iter()
        .any(|i| matches!(i.outcome, BatchOutcome::Partial { .. }))
    {
        problems.push("e2e-kinesis-to-s3: never answered a partial batch failure".into());
    }
    let _ = writeln!(
        summary,
        "proxy: calls {:?}; faults {:?}; trigger hits {:?}",
        faults.calls, faults.faults, faults.trigger_hits
    );
    let _ = writeln!(
        summary,
        "timing: produced in {:.1}s, consumed by {:.1}s, checked by {:.1}s",
        produced_at.as_secs_f64(),
        consumed_at.as_secs_f64(),
        started.elapsed().as_secs_f64()
    );
    eprintln!("{summary}");

    if !problems.is_empty() {
        let mut report = String::new();
        for (f, log) in functions.iter().zip(&logs) {
            let _ = writeln!(report, "\n===== {} invocations\n{}", f.name, log.render());
            let _ = writeln!(
                report,
                "===== {} runtime API journal\n{}",
                f.name,
                f.api.journal().join("\n")
            );
            let _ = writeln!(report, "===== {} output\n{}", f.name, f.envs.tails(40));
        }
        let _ = writeln!(report, "===== fault proxy\n{}", proxy.render());
        let _ = std::fs::create_dir_all(&log_dir);
        let report_path = log_dir.join("report.txt");
        let _ = std::fs::write(&report_path, &report);
        let shown: Vec<&str> = problems.iter().take(60).map(String::as_str).collect();
        panic!(
            "{} problems (first {} shown; the full report is in {}):\n  {}\n\n{summary}\n{report}",
            problems.len(),
            shown.len(),
            report_path.display(),
            shown.join("\n  ")
        );
    }
    let _ = std::fs::remove_dir_all(&log_dir);
}
