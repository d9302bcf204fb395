//! The one mapping of SDK errors to [`CloudError`], shared by every service.

use aws_sdk_ecs::config::http::HttpResponse;
use aws_sdk_ecs::error::{DisplayErrorContext, ProvideErrorMetadata, SdkError};

use crate::cloud::{CloudError, codes};

/// Maps an SDK error of any service to a [`CloudError`], keeping the service's error code,
/// message and HTTP status.
///
/// * An answer with an error code keeps it (`ClusterNotFoundException`, `PriorityInUse`...).
/// * An answer without a parsable error body (S3's HEAD-like 403/404s, a proxy in the way) is
///   named by its status: `AccessDenied` for 403, `NotFound` for 404, `HttpError` otherwise.
/// * A timeout or a connection failure before any answer is [`codes::TRANSPORT`].
/// * A request the SDK could not build is `InvalidRequest` (the caller's, not AWS's, fault).
///
/// Every SDK crate shares the smithy error and response types, so one function serves all.
pub fn map_sdk_error<E>(error: SdkError<E, HttpResponse>) -> CloudError
where
    E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
{
    let status = error.raw_response().map(|r| r.status().as_u16());
    let mapped = match (&error, error.code(), status) {
        (SdkError::ConstructionFailure(_), _, _) => {
            CloudError::new("InvalidRequest", DisplayErrorContext(&error).to_string())
        }
        (SdkError::TimeoutError(_) | SdkError::DispatchFailure(_), _, _) => {
            CloudError::new(codes::TRANSPORT, DisplayErrorContext(&error).to_string())
        }
        (_, Some(code), _) => CloudError::new(code, error.message().unwrap_or_default()),
        (_, None, Some(status)) => CloudError::new(
            match status {
                403 => "AccessDenied",
                404 => "NotFound",
                _ => "HttpError",
            },
            DisplayErrorContext(&error).to_string(),
        ),
        (_, None, None) => {
            CloudError::new(codes::TRANSPORT, DisplayErrorContext(&error).to_string())
        }
    };
    mapped.with_status(status)
}

/// A request eden could not build (a field the SDK builder refused).
pub(super) fn build_error(e: impl std::fmt::Display) -> CloudError {
    CloudError::new("InvalidRequest", e.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use aws_sdk_ecs::error::ErrorMetadata;
    use aws_sdk_ecs::operation::describe_services::DescribeServicesError;
    use aws_sdk_ecs::types::error::ClusterNotFoundException;

    fn raw(status: u16) -> HttpResponse {
        HttpResponse::new(status.try_into().unwrap(), "".into())
    }

    #[test]
    fn service_errors_keep_code_message_and_status() {
        let err = DescribeServicesError::ClusterNotFoundException(
            ClusterNotFoundException::builder()
                .message("Cluster not found.")
                .meta(
                    ErrorMetadata::builder()
                        .code("ClusterNotFoundException")
                        .message("Cluster not found.")
                        .build(),
                )
                .build(),
        );
        let mapped = map_sdk_error(SdkError::service_error(err, raw(400)));
        assert_eq!(mapped.code, "ClusterNotFoundException");
        assert_eq!(mapped.message, "Cluster not found.");
        assert_eq!(mapped.status, Some(400));
        assert!(mapped.is_not_found());
    }

    #[test]
    fn answers_without_a_code_are_named_by_status() {
        let bare = || DescribeServicesError::generic(ErrorMetadata::builder().build());
        let denied = map_sdk_error(SdkError::service_error(bare(), raw(403)));
        assert_eq!(
            (denied.code.as_str(), denied.status),
            ("AccessDenied", Some(403))
        );
        assert!(denied.is_access_denied());
        let missing = map_sdk_error(SdkError::service_error(bare(), raw(404)));
        assert!(missing.is_not_found());
        let failed = map_sdk_error(SdkError::service_error(bare(), raw(503)));
        assert_eq!(failed.code, "HttpError");
        assert!(failed.is_service_failure());
    }

    #[test]
    fn timeouts_are_transport_and_bad_requests_are_the_callers() {
        let timeout: SdkError<DescribeServicesError, HttpResponse> =
            SdkError::timeout_error("slow");
        let mapped = map_sdk_error(timeout);
        assert_eq!(mapped.code, codes::TRANSPORT);
        assert!(mapped.is_service_failure());
        let bad: SdkError<DescribeServicesError, HttpResponse> =
            SdkError::construction_failure("no cluster");
        let mapped = map_sdk_error(bad);
        assert_eq!(mapped.code, "InvalidRequest");
        assert!(!mapped.is_service_failure() && !mapped.is_not_found());
    }
}
