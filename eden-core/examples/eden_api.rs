//! The eden HTTP API as a Lambda function behind API Gateway (REST API, proxy integration),
//! on `lambda_runtime` and [`eden_core::http_api::ApiHandler`]. Needs `--features lambda-events`.
//!
//! Configuration: `EDEN_API_KEYS` (comma-separated accepted keys), `EDEN_TABLE` (default
//! `eden`).
//!
//! Try it locally without AWS: `--in-memory` uses the in-memory cloud holding the example
//! profile, and `--event FILE` handles one API Gateway event from a file and prints the
//! response instead of starting the Lambda runtime:
//!
//! ```text
//! EDEN_API_KEYS=s3cret cargo run -p eden-core --features lambda-events --example eden_api -- \
//!   --in-memory --event event.json
//! ```

#[cfg(feature = "lambda-events")]
mod app {
    use std::path::PathBuf;

    use aws_lambda_events::apigw::{ApiGatewayProxyRequest, ApiGatewayProxyResponse};
    use clap::Parser;
    use eden_core::http_api::{ApiHandler, ApiKeys};
    use eden_core::memory::{MemoryCloud, MemoryOptions};
    use eden_core::remote::RemoteProfiles;
    use eden_core::{Cloud, Profile};
    use lambda_runtime::{Error, LambdaEvent, service_fn};

    #[derive(Parser, Debug)]
    struct Flags {
        /// Use the in-memory cloud (seeded with the example profile) instead of AWS.
        #[arg(long)]
        in_memory: bool,
        /// Handle one API Gateway event from this file, print the response and exit.
        #[arg(long)]
        event: Option<PathBuf>,
    }

    async fn cloud(in_memory: bool) -> Result<Cloud, Error> {
        if in_memory {
            let profile = Profile::example();
            let memory = MemoryCloud::with_reference(&profile, MemoryOptions::default());
            RemoteProfiles::new(memory.cloud()).push(&profile).await?;
            return Ok(memory.cloud());
        }
        aws_cloud().await
    }

    #[cfg(feature = "aws")]
    async fn aws_cloud() -> Result<Cloud, Error> {
        let config = aws_config::load_defaults(aws_config::BehaviorVersion::latest()).await;
        Ok(eden_core::aws::cloud(&config))
    }

    #[cfg(not(feature = "aws"))]
    async fn aws_cloud() -> Result<Cloud, Error> {
        Err("built without the `aws` feature: use --in-memory".into())
    }

    pub async fn main() -> Result<(), Error> {
        let flags = Flags::parse();
        let keys = ApiKeys::from_list(&std::env::var("EDEN_API_KEYS").unwrap_or_default());
        if keys.is_empty() {
            // Still serve: every request is refused with 401/403, which is the safe answer.
            eprintln!("warning: EDEN_API_KEYS is empty; every request will be refused");
        }
        let table = std::env::var("EDEN_TABLE").unwrap_or_else(|_| "eden".into());
        let api = ApiHandler::new(cloud(flags.in_memory).await?, keys).with_table(table);
        if let Some(path) = flags.event {
            // File I/O off the async executor.
            let read = path.clone();
            let text = tokio::task::spawn_blocking(move || std::fs::read_to_string(read))
                .await?
                .map_err(|e| format!("reading event {}: {e}", path.display()))?;
            let event: ApiGatewayProxyRequest = serde_json::from_str(&text)
                .map_err(|e| format!("parsing event {}: {e}", path.display()))?;
            let response = api.handle_apigw(&event).await;
            println!("{}", serde_json::to_string(&response)?);
            return Ok(());
        }
        let api = &api;
        lambda_runtime::run(service_fn(
            move |event: LambdaEvent<ApiGatewayProxyRequest>| async move {
                Ok::<ApiGatewayProxyResponse, Error>(api.handle_apigw(&event.payload).await)
            },
        ))
        .await
    }
}

#[cfg(feature = "lambda-events")]
#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    app::main().await
}

#[cfg(not(feature = "lambda-events"))]
fn main() {
    eprintln!("build with --features lambda-events");
    std::process::exit(2);
}
