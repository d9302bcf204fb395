//! Fluentd / Fluent Bit forward-protocol delivery (being written in its own issue).
