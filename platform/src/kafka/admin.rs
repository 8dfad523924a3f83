//! Topic administration: create the topics a service or a test needs, with explicit
//! partition counts. It never deletes or alters a topic.

use std::time::Duration;

use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::error::{KafkaError, RDKafkaErrorCode};

use super::KafkaSettings;

/// A topic and its partition count.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TopicSpec {
    /// Topic name.
    pub name: String,
    /// Partitions.
    pub partitions: i32,
}

impl TopicSpec {
    /// A topic spec.
    pub fn new(name: impl Into<String>, partitions: i32) -> Self {
        Self {
            name: name.into(),
            partitions,
        }
    }
}

/// Creates the topics that do not exist yet; existing ones are left as they are.
pub async fn ensure_topics(
    settings: &KafkaSettings,
    topics: &[TopicSpec],
) -> Result<(), KafkaError> {
    let mut config = settings.client_config("platform-admin");
    settings.apply_properties(&mut config);
    let admin: AdminClient<DefaultClientContext> = config.create()?;
    let new_topics: Vec<NewTopic<'_>> = topics
        .iter()
        .map(|t| NewTopic::new(&t.name, t.partitions, TopicReplication::Fixed(-1)))
        .collect();
    let options = AdminOptions::new().operation_timeout(Some(Duration::from_secs(10)));
    for result in admin.create_topics(new_topics.iter(), &options).await? {
        match result {
            Ok(name) => tracing::info!(topic = %name, "topic created"),
            Err((_, RDKafkaErrorCode::TopicAlreadyExists)) => {}
            Err((name, code)) => {
                tracing::error!(topic = %name, error = %code, "topic creation failed");
                return Err(KafkaError::AdminOp(code));
            }
        }
    }
    Ok(())
}
