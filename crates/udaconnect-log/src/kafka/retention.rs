//! Retention on Kafka: the topics' own `retention.ms`, set through the admin API, since
//! the broker deletes its segments itself.

use std::time::Duration;

use rdkafka::admin::{AdminOptions, AlterConfig, ConfigSource, ResourceSpecifier};
use rdkafka::producer::Producer as _;
use udaconnect_core::Result;

use super::{unavailable, KafkaLog};

/// What the broker answered for one topic.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RetentionSet {
    pub topic: String,
    /// `Ok`, or why the broker refused (an unsupported request, a missing right).
    pub outcome: std::result::Result<(), String>,
}

impl KafkaLog {
    /// Sets `retention.ms` of each of `topics` to `keep` (created first if missing). The
    /// topic's other settings of its own are read first and sent again with it: the admin
    /// request replaces a topic's whole configuration, and would otherwise reset them.
    /// Fails only when no broker answers; a broker's refusal is in the topic's outcome.
    pub async fn set_retention(
        &self,
        topics: &[&str],
        keep: Duration,
    ) -> Result<Vec<RetentionSet>> {
        let admin = &self.topics.admin;
        let timeout = self.topics.timeout;
        let opts = AdminOptions::new()
            .request_timeout(Some(timeout))
            .operation_timeout(Some(timeout));
        let ms = keep.as_millis().min(i64::MAX as u128).to_string();
        let mut set = Vec::new();
        for &topic in topics {
            self.topics.ensure(topic).await?;
            let described = tokio::time::timeout(
                timeout + Duration::from_secs(1),
                admin.describe_configs([&ResourceSpecifier::Topic(topic)], &opts),
            )
            .await
            .map_err(|_| unavailable(format!("describing topic {topic}: no answer")))?
            .map_err(|e| unavailable(format!("describing topic {topic}: {e}")))?;
            let own: Vec<(String, String)> = match described.into_iter().next() {
                Some(Ok(resource)) => resource
                    .entries
                    .into_iter()
                    .filter(|e| e.source == ConfigSource::DynamicTopic && e.name != "retention.ms")
                    .filter_map(|e| Some((e.name, e.value?)))
                    .collect(),
                Some(Err(code)) => {
                    set.push(RetentionSet {
                        topic: topic.to_string(),
                        outcome: Err(format!("describing its settings: {code}")),
                    });
                    continue;
                }
                None => Vec::new(),
            };
            let mut alter =
                AlterConfig::new(ResourceSpecifier::Topic(topic)).set("retention.ms", &ms);
            for (name, value) in &own {
                alter = alter.set(name, value);
            }
            let answered = tokio::time::timeout(
                timeout + Duration::from_secs(1),
                admin.alter_configs([&alter], &opts),
            )
            .await
            .map_err(|_| unavailable(format!("setting retention of {topic}: no answer")))?;
            let outcome = match answered {
                Ok(results) => match results.into_iter().next() {
                    Some(Ok(_)) => Ok(()),
                    Some(Err((_, code))) => Err(code.to_string()),
                    None => Err("no answer for the topic".to_string()),
                },
                Err(e) => Err(e.to_string()),
            };
            set.push(RetentionSet {
                topic: topic.to_string(),
                outcome,
            });
        }
        Ok(set)
    }

    /// The `retention.ms` the broker reports for `topic`, if it reports one.
    pub async fn retention_ms(&self, topic: &str) -> Result<Option<String>> {
        let opts = AdminOptions::new().request_timeout(Some(self.topics.timeout));
        let described = self
            .topics
            .admin
            .describe_configs([&ResourceSpecifier::Topic(topic)], &opts)
            .await
            .map_err(|e| unavailable(format!("describing topic {topic}: {e}")))?;
        Ok(match described.into_iter().next() {
            Some(Ok(resource)) => resource.get("retention.ms").and_then(|e| e.value.clone()),
            _ => None,
        })
    }

    /// Every topic the broker holds, its internal ones (`__consumer_offsets`) left out: for
    /// an operator (or a test) that must look at all of them.
    pub async fn topics(&self) -> Result<Vec<String>> {
        let producer = self.producer();
        let timeout = self.topics.timeout;
        tokio::task::spawn_blocking(move || {
            producer
                .client()
                .fetch_metadata(None, timeout)
                .map(|m| {
                    m.topics()
                        .iter()
                        .map(|t| t.name().to_string())
                        .filter(|name| !name.starts_with("__"))
                        .collect()
                })
                .map_err(|e| unavailable(format!("no broker answered: {e}")))
        })
        .await
        .map_err(|e| udaconnect_core::Error::Internal(format!("kafka topics: {e}")))?
    }
}
