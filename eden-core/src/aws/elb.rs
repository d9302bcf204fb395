//! [`LoadBalancerApi`] on `aws-sdk-elasticloadbalancingv2`.

use std::collections::BTreeMap;

use async_trait::async_trait;
use aws_types::SdkConfig;

use super::error::map_sdk_error;
use crate::cloud::{
    CloudError, CloudResult, CreateRule, CreateTargetGroup, HealthCheck, Listener, LoadBalancer,
    LoadBalancerApi, Page, Rule, Tag, TargetGroup, TargetGroupSpec,
};

/// [`LoadBalancerApi`] on `aws-sdk-elasticloadbalancingv2`.
#[derive(Debug, Clone)]
pub struct AwsLoadBalancer {
    client: aws_sdk_elasticloadbalancingv2::Client,
}

impl AwsLoadBalancer {
    /// A client from the SDK configuration.
    pub fn new(config: &SdkConfig) -> Self {
        Self {
            client: aws_sdk_elasticloadbalancingv2::Client::new(config),
        }
    }

    /// Wraps an existing client.
    pub fn from_client(client: aws_sdk_elasticloadbalancingv2::Client) -> Self {
        Self { client }
    }

    async fn describe_groups(
        &self,
        name: Option<&str>,
        arn: Option<&str>,
    ) -> CloudResult<Option<TargetGroup>> {
        let out = self
            .client
            .describe_target_groups()
            .set_names(name.map(|n| vec![n.to_owned()]))
            .set_target_group_arns(arn.map(|a| vec![a.to_owned()]))
            .send()
            .await;
        match out {
            Ok(out) => Ok(out.target_groups().first().map(target_group_from)),
            Err(e) => {
                let e = map_sdk_error(e);
                if e.code == "TargetGroupNotFound" {
                    Ok(None)
                } else {
                    Err(e)
                }
            }
        }
    }
}

fn target_group_from(t: &aws_sdk_elasticloadbalancingv2::types::TargetGroup) -> TargetGroup {
    TargetGroup {
        arn: t.target_group_arn().unwrap_or_default().to_owned(),
        name: t.target_group_name().unwrap_or_default().to_owned(),
        spec: TargetGroupSpec {
            protocol: t.protocol().map(|p| p.as_str().to_owned()),
            protocol_version: t.protocol_version().map(str::to_owned),
            port: t.port(),
            vpc_id: t.vpc_id().map(str::to_owned),
            ip_address_type: t.ip_address_type().map(|p| p.as_str().to_owned()),
            target_type: t.target_type().map(|p| p.as_str().to_owned()),
            health_check: HealthCheck {
                enabled: t.health_check_enabled(),
                protocol: t.health_check_protocol().map(|p| p.as_str().to_owned()),
                port: t.health_check_port().map(str::to_owned),
                path: t.health_check_path().map(str::to_owned),
                interval_seconds: t.health_check_interval_seconds(),
                timeout_seconds: t.health_check_timeout_seconds(),
                healthy_threshold: t.healthy_threshold_count(),
                unhealthy_threshold: t.unhealthy_threshold_count(),
                matcher_http_code: t.matcher().and_then(|m| m.http_code()).map(str::to_owned),
                matcher_grpc_code: t.matcher().and_then(|m| m.grpc_code()).map(str::to_owned),
            },
        },
        load_balancer_arns: t.load_balancer_arns().to_vec(),
    }
}

fn rule_from(r: &aws_sdk_elasticloadbalancingv2::types::Rule) -> Rule {
    let hosts = r
        .conditions()
        .iter()
        .filter(|c| c.field() == Some("host-header"))
        .flat_map(|c| {
            let mut v: Vec<String> = c.values().to_vec();
            if let Some(cfg) = c.host_header_config() {
                v.extend(cfg.values().iter().cloned());
            }
            v
        })
        .collect::<std::collections::BTreeSet<_>>()
        .into_iter()
        .collect();
    let target_group_arns = r
        .actions()
        .iter()
        .flat_map(|a| {
            let mut v: Vec<String> = a
                .target_group_arn()
                .map(str::to_owned)
                .into_iter()
                .collect();
            if let Some(f) = a.forward_config() {
                v.extend(
                    f.target_groups()
                        .iter()
                        .filter_map(|t| t.target_group_arn().map(str::to_owned)),
                );
            }
            v
        })
        .collect::<std::collections::BTreeSet<_>>()
        .into_iter()
        .collect();
    Rule {
        arn: r.rule_arn().unwrap_or_default().to_owned(),
        priority: if r.is_default() == Some(true) {
            None
        } else {
            r.priority().and_then(|p| p.parse().ok())
        },
        hosts,
        target_group_arns,
    }
}

fn to_elb_tags(tags: &[Tag]) -> Option<Vec<aws_sdk_elasticloadbalancingv2::types::Tag>> {
    (!tags.is_empty()).then(|| {
        tags.iter()
            .map(|t| {
                aws_sdk_elasticloadbalancingv2::types::Tag::builder()
                    .key(&t.key)
                    .value(&t.value)
                    .build()
            })
            .collect()
    })
}

#[async_trait]
impl LoadBalancerApi for AwsLoadBalancer {
    async fn describe_load_balancer(&self, arn: &str) -> CloudResult<LoadBalancer> {
        let out = self
            .client
            .describe_load_balancers()
            .load_balancer_arns(arn)
            .send()
            .await
            .map_err(map_sdk_error)?;
        let lb = out
            .load_balancers()
            .first()
            .ok_or_else(|| CloudError::new("LoadBalancerNotFound", arn))?;
        Ok(LoadBalancer {
            arn: lb.load_balancer_arn().unwrap_or_default().to_owned(),
            dns_name: lb.dns_name().unwrap_or_default().to_owned(),
            canonical_hosted_zone_id: lb.canonical_hosted_zone_id().unwrap_or_default().to_owned(),
            vpc_id: lb.vpc_id().unwrap_or_default().to_owned(),
        })
    }

    async fn describe_listeners(&self, load_balancer_arn: &str) -> CloudResult<Vec<Listener>> {
        let mut listeners = Vec::new();
        let mut marker = None;
        loop {
            let out = self
                .client
                .describe_listeners()
                .load_balancer_arn(load_balancer_arn)
                .set_marker(marker)
                .send()
                .await
                .map_err(map_sdk_error)?;
            listeners.extend(out.listeners().iter().map(|l| {
                Listener {
                    arn: l.listener_arn().unwrap_or_default().to_owned(),
                    protocol: l
                        .protocol()
                        .map(|p| p.as_str().to_owned())
                        .unwrap_or_default(),
                    port: l.port().unwrap_or_default(),
                }
            }));
            match out.next_marker() {
                Some(m) if !m.is_empty() => marker = Some(m.to_owned()),
                _ => return Ok(listeners),
            }
        }
    }

    async fn describe_rules(
        &self,
        listener_arn: &str,
        marker: Option<String>,
    ) -> CloudResult<Page<Rule>> {
        let out = self
            .client
            .describe_rules()
            .listener_arn(listener_arn)
            .page_size(400)
            .set_marker(marker)
            .send()
            .await
            .map_err(map_sdk_error)?;
        Ok(Page {
            items: out.rules().iter().map(rule_from).collect(),
            next: out
                .next_marker()
                .filter(|m| !m.is_empty())
                .map(str::to_owned),
        })
    }

    async fn create_rule(&self, request: CreateRule) -> CloudResult<Rule> {
        use aws_sdk_elasticloadbalancingv2::types as t;
        let out = self
            .client
            .create_rule()
            .listener_arn(&request.listener_arn)
            .priority(request.priority)
            .conditions(
                t::RuleCondition::builder()
                    .field("host-header")
                    .host_header_config(
                        t::HostHeaderConditionConfig::builder()
                            .values(&request.host)
                            .build(),
                    )
                    .build(),
            )
            .actions(
                t::Action::builder()
                    .r#type(t::ActionTypeEnum::Forward)
                    .target_group_arn(&request.target_group_arn)
                    .build(),
            )
            .set_tags(to_elb_tags(&request.tags))
            .send()
            .await
            .map_err(map_sdk_error)?;
        out.rules()
            .first()
            .map(rule_from)
            .ok_or_else(|| CloudError::new("InvalidResponse", "CreateRule returned no rule"))
    }

    async fn delete_rule(&self, arn: &str) -> CloudResult<()> {
        self.client
            .delete_rule()
            .rule_arn(arn)
            .send()
            .await
            .map_err(map_sdk_error)?;
        Ok(())
    }

    async fn describe_target_group_by_name(&self, name: &str) -> CloudResult<Option<TargetGroup>> {
        self.describe_groups(Some(name), None).await
    }

    async fn describe_target_group(&self, arn: &str) -> CloudResult<Option<TargetGroup>> {
        self.describe_groups(None, Some(arn)).await
    }

    async fn list_target_groups(&self, marker: Option<String>) -> CloudResult<Page<TargetGroup>> {
        let out = self
            .client
            .describe_target_groups()
            .page_size(400)
            .set_marker(marker)
            .send()
            .await
            .map_err(map_sdk_error)?;
        Ok(Page {
            items: out.target_groups().iter().map(target_group_from).collect(),
            next: out
                .next_marker()
                .filter(|m| !m.is_empty())
                .map(str::to_owned),
        })
    }

    async fn describe_tags(&self, arns: &[String]) -> CloudResult<BTreeMap<String, Vec<Tag>>> {
        let out = self
            .client
            .describe_tags()
            .set_resource_arns(Some(arns.to_vec()))
            .send()
            .await
            .map_err(map_sdk_error)?;
        Ok(out
            .tag_descriptions()
            .iter()
            .filter_map(|d| {
                let tags = d
                    .tags()
                    .iter()
                    .map(|t| Tag::new(t.key().unwrap_or_default(), t.value().unwrap_or_default()))
                    .collect();
                Some((d.resource_arn()?.to_owned(), tags))
            })
            .collect())
    }

    async fn target_group_attributes(&self, arn: &str) -> CloudResult<BTreeMap<String, String>> {
        let out = self
            .client
            .describe_target_group_attributes()
            .target_group_arn(arn)
            .send()
            .await
            .map_err(map_sdk_error)?;
        Ok(out
            .attributes()
            .iter()
            .filter_map(|a| Some((a.key()?.to_owned(), a.value()?.to_owned())))
            .collect())
    }

    async fn create_target_group(&self, request: CreateTargetGroup) -> CloudResult<TargetGroup> {
        use aws_sdk_elasticloadbalancingv2::types as t;
        let s = &request.spec;
        let h = &s.health_check;
        let matcher = (h.matcher_http_code.is_some() || h.matcher_grpc_code.is_some()).then(|| {
            t::Matcher::builder()
                .set_http_code(h.matcher_http_code.clone())
                .set_grpc_code(h.matcher_grpc_code.clone())
                .build()
        });
        let out = self
            .client
            .create_target_group()
            .name(&request.name)
            .set_protocol(s.protocol.as_deref().map(t::ProtocolEnum::from))
            .set_protocol_version(s.protocol_version.clone())
            .set_port(s.port)
            .set_vpc_id(s.vpc_id.clone())
            .set_ip_address_type(
                s.ip_address_type
                    .as_deref()
                    .map(t::TargetGroupIpAddressTypeEnum::from),
            )
            .set_target_type(s.target_type.as_deref().map(t::TargetTypeEnum::from))
            .set_health_check_enabled(h.enabled)
            .set_health_check_protocol(h.protocol.as_deref().map(t::ProtocolEnum::from))
            .set_health_check_port(h.port.clone())
            .set_health_check_path(h.path.clone())
            .set_health_check_interval_seconds(h.interval_seconds)
            .set_health_check_timeout_seconds(h.timeout_seconds)
            .set_healthy_threshold_count(h.healthy_threshold)
            .set_unhealthy_threshold_count(h.unhealthy_threshold)
            .set_matcher(matcher)
            .set_tags(to_elb_tags(&request.tags))
            .send()
            .await
            .map_err(map_sdk_error)?;
        out.target_groups()
            .first()
            .map(target_group_from)
            .ok_or_else(|| {
                CloudError::new("InvalidResponse", "CreateTargetGroup returned no group")
            })
    }

    async fn modify_target_group_attributes(
        &self,
        arn: &str,
        attributes: &BTreeMap<String, String>,
    ) -> CloudResult<()> {
        use aws_sdk_elasticloadbalancingv2::types as t;
        self.client
            .modify_target_group_attributes()
            .target_group_arn(arn)
            .set_attributes(Some(
                attributes
                    .iter()
                    .map(|(k, v)| t::TargetGroupAttribute::builder().key(k).value(v).build())
                    .collect(),
            ))
            .send()
            .await
            .map_err(map_sdk_error)?;
        Ok(())
    }

    async fn delete_target_group(&self, arn: &str) -> CloudResult<()> {
        self.client
            .delete_target_group()
            .target_group_arn(arn)
            .send()
            .await
            .map_err(map_sdk_error)?;
        Ok(())
    }
}
