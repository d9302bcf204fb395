//! The environment's target group and host rule during create: found, created or verified by
//! its owner tags, and the rule's priority chosen by [`priority::choose`](super::priority::choose).

use crate::cloud::{CreateRule, CreateTargetGroup, Listener, Rule, TargetGroup, codes};
use crate::error::{Error, Result, Step};
use crate::outcome::{Action, ResourceKind};
use crate::ownership::Verdict;

use super::Environment;
use super::decide::{self, GroupsFound, RulePlan};
use super::journal::Undo;
use super::priority;
use super::retry::jitter;
use super::run::Run;

/// Attempts at a free rule priority before giving up.
pub(super) const PRIORITY_ATTEMPTS: u32 = 60;

/// The environment's target group after the second round.
pub(super) enum GroupState {
    /// It existed, and is ours.
    Existing(TargetGroup),
    /// CreateTargetGroup answered it; its tags say whether this run created it.
    Answered(TargetGroup),
    /// Not known after the first listing page: create it from this reference in round 3.
    Later(TargetGroup),
}

impl GroupState {
    pub(super) fn group(&self) -> Option<&TargetGroup> {
        match self {
            Self::Existing(tg) | Self::Answered(tg) => Some(tg),
            Self::Later(_) => None,
        }
    }
}

/// The rule after round 3.
pub(super) enum RuleState {
    /// Created or reused, with its ARN.
    Done(String),
    /// To create once the target group exists (slow path).
    AfterGroup,
}

impl Environment {
    /// Round 2 for the target group: reads its owner when it exists, creates it when it is
    /// known to be absent.
    pub(super) async fn second_round_group(
        &self,
        run: &Run<'_>,
        groups: &GroupsFound,
        reference_arn: &str,
    ) -> Result<GroupState> {
        let elb = &self.cloud.elb;
        let name = &run.names.target_group;
        if let Some(tg) = &groups.environment {
            self.check_group_owner(run, tg).await?;
            return Ok(GroupState::Existing(tg.clone()));
        }
        if groups.complete {
            let reference = groups.reference.clone().ok_or_else(|| Error::Conflict {
                step: Step::ReadReference,
                resource: reference_arn.to_owned(),
                message: "the reference target group does not exist".into(),
            })?;
            return self.create_group(run, &reference).await;
        }
        // More target groups than one page: look both up by name and ARN.
        let (existing, reference) = tokio::try_join!(
            async {
                elb.describe_target_group_by_name(name)
                    .await
                    .map_err(|e| Error::cloud(Step::TargetGroup, name, e))
            },
            async {
                elb.describe_target_group(reference_arn)
                    .await
                    .map_err(|e| Error::cloud(Step::ReadReference, reference_arn, e))
            },
        )?;
        if let Some(tg) = existing {
            self.check_group_owner(run, &tg).await?;
            return Ok(GroupState::Existing(tg));
        }
        let reference = reference.ok_or_else(|| Error::Conflict {
            step: Step::ReadReference,
            resource: reference_arn.to_owned(),
            message: "the reference target group does not exist".into(),
        })?;
        Ok(GroupState::Later(reference))
    }

    /// CreateTargetGroup with this run's owner tags. AWS answers an existing group with the
    /// same settings instead of creating one, so the answer is verified by its tags.
    pub(super) async fn create_group(
        &self,
        run: &Run<'_>,
        reference: &TargetGroup,
    ) -> Result<GroupState> {
        let name = &run.names.target_group;
        let created = self
            .cloud
            .elb
            .create_target_group(CreateTargetGroup {
                name: name.clone(),
                spec: reference.spec.clone(),
                tags: run.tags(),
            })
            .await;
        match created {
            Ok(tg) => {
                run.journal(Undo::TargetGroupUnverified(tg.arn.clone()));
                Ok(GroupState::Answered(tg))
            }
            // Created meanwhile with other settings (moto answers this even for equal ones).
            Err(e) if e.is(&[codes::DUPLICATE_TARGET_GROUP_NAME]) => {
                let tg = self
                    .cloud
                    .elb
                    .describe_target_group_by_name(name)
                    .await
                    .map_err(|e| Error::cloud(Step::TargetGroup, name, e))?
                    .ok_or_else(|| Error::cloud(Step::TargetGroup, name, e))?;
                self.check_group_owner(run, &tg).await?;
                Ok(GroupState::Existing(tg))
            }
            Err(e) if e.is(&[codes::TOO_MANY_TARGET_GROUPS]) => Err(Error::AlbFull {
                alb: run.profile.master_alb_arn.arn.clone(),
                code: e.code,
                message: e.message,
            }),
            Err(e) => Err(Error::cloud(Step::TargetGroup, name, e)),
        }
    }

    /// Round 3 for the target group: whether this run created the group CreateTargetGroup
    /// answered (its `eden:run` tag), or creates it on the slow path. Returns the group and
    /// whether this run created it.
    pub(super) async fn verify_group(
        &self,
        run: &Run<'_>,
        group: &GroupState,
    ) -> Result<(TargetGroup, bool)> {
        let tg = match group {
            GroupState::Existing(tg) => {
                run.record(ResourceKind::TargetGroup, &tg.arn, Action::Reused, None);
                return Ok((tg.clone(), false));
            }
            GroupState::Answered(tg) => tg.clone(),
            GroupState::Later(reference) => match self.create_group(run, reference).await? {
                GroupState::Answered(tg) => tg,
                GroupState::Existing(tg) | GroupState::Later(tg) => {
                    run.record(ResourceKind::TargetGroup, &tg.arn, Action::Reused, None);
                    return Ok((tg, false));
                }
            },
        };
        let tags = self.group_tags(&tg.arn).await?;
        let verdict = Verdict::of_tags(&tags, &run.owner);
        if verdict.created_by(&run.run) {
            run.rejournal_target_group(&tg.arn, Some(Undo::TargetGroup(tg.arn.clone())));
            run.record(ResourceKind::TargetGroup, &tg.arn, Action::Created, None);
            return Ok((tg, true));
        }
        // It existed: not this run's to remove.
        run.rejournal_target_group(&tg.arn, None);
        decide::target_group(&tg, &tags, &run.owner)?;
        run.record(
            ResourceKind::TargetGroup,
            &tg.arn,
            Action::Reused,
            Some("created by an earlier run".into()),
        );
        Ok((tg, false))
    }

    /// Round 3 for the rule: creates it when nothing routes the host (and the group is
    /// known), or reads the owner of what routes it.
    pub(super) async fn third_round_rule(
        &self,
        run: &Run<'_>,
        https: &Listener,
        host: &str,
        rules: &[Rule],
        routing: &[String],
        group: &GroupState,
    ) -> Result<RuleState> {
        if routing.is_empty() {
            return match group.group() {
                Some(tg) => Ok(RuleState::Done(
                    self.create_rule(run, https, host, tg, rules).await?,
                )),
                None => Ok(RuleState::AfterGroup),
            };
        }
        let tags = self.rule_tags(routing).await?;
        let tg_arn = match group {
            GroupState::Existing(tg) | GroupState::Answered(tg) => Some(tg.arn.as_str()),
            GroupState::Later(_) => None,
        };
        match decide::rule(rules, host, tg_arn, &tags, &run.owner)? {
            RulePlan::Reuse(rule) => {
                run.record(
                    ResourceKind::ListenerRule,
                    &rule.arn,
                    Action::Reused,
                    rule.priority.map(|p| format!("priority {p}")),
                );
                Ok(RuleState::Done(rule.arn))
            }
            // Ours routes no host here, yet the host is routed: decide::rule refused that.
            RulePlan::Create { .. } => Ok(RuleState::AfterGroup),
        }
    }

    /// Creates the host rule at the lowest free priority, retrying on `PriorityInUse`.
    pub(super) async fn create_rule(
        &self,
        run: &Run<'_>,
        https: &Listener,
        host: &str,
        tg: &TargetGroup,
        rules: &[Rule],
    ) -> Result<String> {
        let mut used = priority::in_use(rules);
        let alb = &run.profile.master_alb_arn.arn;
        for attempt in 0..PRIORITY_ATTEMPTS {
            let Some(priority) = priority::choose(&used, attempt, fastrand::usize(..)) else {
                return Err(Error::AlbFull {
                    alb: alb.clone(),
                    code: codes::TOO_MANY_RULES.into(),
                    message: "no free rule priority".into(),
                });
            };
            let created = self
                .cloud
                .elb
                .create_rule(CreateRule {
                    listener_arn: https.arn.clone(),
                    priority,
                    host: host.to_owned(),
                    target_group_arn: tg.arn.clone(),
                    tags: run.tags(),
                })
                .await;
            match created {
                Ok(rule) => {
                    run.journal(Undo::Rule(rule.arn.clone()));
                    run.record(
                        ResourceKind::ListenerRule,
                        &rule.arn,
                        Action::Created,
                        Some(format!("priority {priority}")),
                    );
                    return Ok(rule.arn);
                }
                Err(e) if e.is(&[codes::PRIORITY_IN_USE]) => {
                    used.insert(priority);
                    if priority::refresh_before(attempt) {
                        used = priority::in_use(&self.all_rules(&https.arn).await?);
                    }
                    jitter(attempt).await;
                }
                Err(e) if e.is(&[codes::TOO_MANY_RULES, codes::TOO_MANY_TARGET_GROUPS]) => {
                    return Err(Error::AlbFull {
                        alb: alb.clone(),
                        code: e.code,
                        message: e.message,
                    });
                }
                Err(e) => return Err(Error::cloud(Step::ListenerRule, host, e)),
            }
        }
        Err(Error::Contention {
            step: Step::ListenerRule,
            resource: host.to_owned(),
            attempts: PRIORITY_ATTEMPTS,
        })
    }
}
