//! The error every cloud trait answers, and the AWS error codes eden interprets.

/// An error answered by a cloud API (or its transport), with the service's code and message.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{code}: {message}")]
#[non_exhaustive]
pub struct CloudError {
    /// The service's error code, e.g. `PriorityInUse`; `Transport` for network failures.
    pub code: String,
    /// The service's message.
    pub message: String,
    /// The HTTP status of the answer, when there was one.
    pub status: Option<u16>,
}

impl CloudError {
    /// An error with this code and message.
    pub fn new(code: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            code: code.into(),
            message: message.into(),
            status: None,
        }
    }

    /// The same error, with the HTTP status of the answer.
    pub fn with_status(mut self, status: Option<u16>) -> Self {
        self.status = status;
        self
    }

    /// True when the code is one of `codes`.
    pub fn is(&self, codes: &[&str]) -> bool {
        codes.contains(&self.code.as_str())
    }

    /// True when the error means the resource does not exist.
    pub fn is_not_found(&self) -> bool {
        self.is(codes::NOT_FOUND)
    }

    /// True when the service throttled the call (retrying later helps).
    pub fn is_throttling(&self) -> bool {
        self.is(codes::THROTTLING) || self.status == Some(429)
    }

    /// True when the service failed (a 5xx answer) or never answered (transport): the
    /// failure is AWS's, not the caller's.
    pub fn is_service_failure(&self) -> bool {
        self.is(codes::SERVICE_FAILURE) || self.status.is_some_and(|s| s >= 500)
    }

    /// True when the caller was refused permission (IAM).
    pub fn is_access_denied(&self) -> bool {
        self.is(codes::ACCESS_DENIED) || (self.status == Some(403) && !self.is_throttling())
    }
}

/// Error codes eden interprets, as AWS spells them.
pub mod codes {
    /// ELB: the rule priority is taken.
    pub const PRIORITY_IN_USE: &str = "PriorityInUse";
    /// ELB: the target group is used by a rule.
    pub const RESOURCE_IN_USE: &str = "ResourceInUse";
    /// ELB: the load balancer has its maximum of rules.
    pub const TOO_MANY_RULES: &str = "TooManyRules";
    /// ELB: the load balancer has its maximum of target groups.
    pub const TOO_MANY_TARGET_GROUPS: &str = "TooManyTargetGroups";
    /// ELB: a target group with that name exists (moto; AWS is idempotent for equal settings).
    pub const DUPLICATE_TARGET_GROUP_NAME: &str = "DuplicateTargetGroupName";
    /// ECR: no such image.
    pub const IMAGE_NOT_FOUND: &str = "ImageNotFoundException";
    /// ECR: no such repository.
    pub const REPOSITORY_NOT_FOUND: &str = "RepositoryNotFoundException";
    /// S3: a conditional put lost (412).
    pub const PRECONDITION_FAILED: &str = "PreconditionFailed";
    /// DynamoDB: a condition expression failed.
    pub const CONDITIONAL_CHECK_FAILED: &str = "ConditionalCheckFailedException";
    /// Network or timeout failure before the service answered.
    pub const TRANSPORT: &str = "Transport";
    /// DynamoDB (eden's own code): the state table has the aws-eden-cli 0.1.5 layout (hash key
    /// `env_name`) where eden needs `type`/`name`; the message names the table.
    pub const LEGACY_STATE_TABLE: &str = "EdenLegacyStateTable";
    /// Route 53: a change batch conflicts with the zone (the record exists, or does not).
    pub const INVALID_CHANGE_BATCH: &str = "InvalidChangeBatch";
    /// Codes of throttling.
    pub const THROTTLING: &[&str] = &[
        "Throttling",
        "ThrottlingException",
        "ThrottledException",
        "TooManyRequestsException",
        "RequestLimitExceeded",
        "ProvisionedThroughputExceededException",
        "RequestThrottled",
        "RequestThrottledException",
        "PriorRequestNotComplete",
        "SlowDown",
    ];
    /// Codes meaning the service itself failed, or did not answer.
    pub const SERVICE_FAILURE: &[&str] = &[
        "InternalFailure",
        "InternalError",
        "InternalServerError",
        "InternalServiceError",
        "ServerException",
        "ServiceUnavailable",
        "ServiceUnavailableException",
        "ServiceException",
        TRANSPORT,
    ];
    /// Codes of permission refusals.
    pub const ACCESS_DENIED: &[&str] = &[
        "AccessDenied",
        "AccessDeniedException",
        "UnauthorizedOperation",
        "UnrecognizedClientException",
        "InvalidClientTokenId",
        "ExpiredToken",
        "ExpiredTokenException",
    ];
    /// Codes meaning "it does not exist".
    pub const NOT_FOUND: &[&str] = &[
        "NotFound",
        "TargetGroupNotFound",
        "RuleNotFound",
        "ListenerNotFound",
        "LoadBalancerNotFound",
        "ServiceNotFoundException",
        "ServiceNotActiveException",
        "ClusterNotFoundException",
        "NoSuchKey",
        "NoSuchBucket",
        "NoSuchHostedZone",
        "ResourceNotFoundException",
        IMAGE_NOT_FOUND,
        REPOSITORY_NOT_FOUND,
    ];
}

/// Shorthand for trait results.
pub type CloudResult<T> = Result<T, CloudError>;
