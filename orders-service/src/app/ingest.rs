//! Ingest: a batch of message values in, one outcome per message out, stored orders durable
//! and cached. It decides stored / duplicate / conflict / invalid; it does not know Kafka
//! (the adapter maps outcomes to offsets and dead letters).

use std::collections::HashMap;
use std::sync::Arc;

use bytes::Bytes;
use chrono::{DateTime, Utc};

use super::ports::{NewOrder, OrderCache, OrderStore, StoreError, StoreOutcome};
use crate::domain::{Rules, Violation, validate};

/// What became of one message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum IngestOutcome {
    /// A new order, stored and cached.
    Stored,
    /// The same order was stored before; nothing changed.
    Duplicate,
    /// Another order with this id was stored before; refused (first write wins).
    Conflict { order_uid: String },
    /// The message broke rules; refused.
    Invalid { violations: Vec<Violation> },
    /// The database refused an order that passed validation (for example a value PostgreSQL
    /// cannot store); refused rather than retried forever.
    Rejected { reason: String },
}

/// The ingest use case.
#[derive(Debug)]
pub struct Ingest<S, C> {
    store: Arc<S>,
    cache: Arc<C>,
    rules: Rules,
}

impl<S: OrderStore, C: OrderCache> Ingest<S, C> {
    /// The use case over a store and a cache.
    pub fn new(store: Arc<S>, cache: Arc<C>, rules: Rules) -> Self {
        Self {
            store,
            cache,
            rules,
        }
    }

    /// Handles a batch in order. `Err` means nothing may be acknowledged: the store was
    /// unavailable, and the same batch must be offered again later.
    pub async fn ingest(
        &self,
        values: &[Option<&[u8]>],
        now: DateTime<Utc>,
    ) -> Result<Vec<IngestOutcome>, StoreError> {
        let mut outcomes: Vec<Option<IngestOutcome>> = vec![None; values.len()];
        // The first valid message of each id in the batch is the candidate; later ones with
        // the same id are compared with it rather than stored.
        let mut candidates: Vec<(usize, NewOrder)> = Vec::new();
        let mut first_by_uid: HashMap<String, usize> = HashMap::new();
        let mut later: Vec<(usize, usize, [u8; 32])> = Vec::new();
        for (index, value) in values.iter().enumerate() {
            let Some(bytes) = value else {
                outcomes[index] = Some(IngestOutcome::Invalid {
                    violations: vec![empty_message()],
                });
                continue;
            };
            match validate(bytes, &self.rules, now) {
                Err(violations) => outcomes[index] = Some(IngestOutcome::Invalid { violations }),
                Ok(validated) => {
                    if !validated.warnings.is_empty() {
                        tracing::warn!(
                            order_uid = %validated.order.order_uid,
                            codes = ?validated.warnings.iter().map(|w| w.code.as_str()).collect::<Vec<_>>(),
                            "order accepted with relaxed rules broken"
                        );
                    }
                    let new = NewOrder::new(validated.order, Bytes::copy_from_slice(bytes));
                    match first_by_uid.get(&new.order.order_uid) {
                        Some(&candidate) => later.push((index, candidate, new.sha256)),
                        None => {
                            first_by_uid.insert(new.order.order_uid.clone(), candidates.len());
                            candidates.push((index, new));
                        }
                    }
                }
            }
        }

        let stored = self.store_all(&candidates).await?;
        for ((index, new), outcome) in candidates.iter().zip(&stored) {
            if matches!(outcome, IngestOutcome::Stored) {
                self.cache
                    .insert(new.order.order_uid.clone(), new.to_json())
                    .await;
            }
            outcomes[*index] = Some(outcome.clone());
        }
        for (index, candidate, sha256) in later {
            let (_, first) = &candidates[candidate];
            outcomes[index] = Some(match &stored[candidate] {
                IngestOutcome::Rejected { reason } => IngestOutcome::Rejected {
                    reason: reason.clone(),
                },
                // The candidate is what the store holds now (it was stored, or it equals what
                // was there): compare with it.
                IngestOutcome::Stored | IngestOutcome::Duplicate if first.sha256 == sha256 => {
                    IngestOutcome::Duplicate
                }
                _ => IngestOutcome::Conflict {
                    order_uid: first.order.order_uid.clone(),
                },
            });
        }
        Ok(outcomes
            .into_iter()
            .map(|o| o.unwrap_or(IngestOutcome::Invalid { violations: vec![] }))
            .collect())
    }

    /// Stores the candidates in one batch; when the database refuses the batch for a reason
    /// other than availability, stores them one by one so that only the offending orders are
    /// refused.
    async fn store_all(
        &self,
        candidates: &[(usize, NewOrder)],
    ) -> Result<Vec<IngestOutcome>, StoreError> {
        if candidates.is_empty() {
            return Ok(Vec::new());
        }
        let orders: Vec<NewOrder> = candidates.iter().map(|(_, new)| new.clone()).collect();
        match self.store.store_batch(&orders).await {
            Ok(outcomes) if outcomes.len() == orders.len() => Ok(outcomes
                .into_iter()
                .zip(&orders)
                .map(|(o, new)| from_store(o, new))
                .collect()),
            Ok(outcomes) => Err(StoreError::Unavailable(format!(
                "the store answered {} outcomes for {} orders",
                outcomes.len(),
                orders.len()
            ))),
            Err(StoreError::Rejected(reason)) if orders.len() > 1 => {
                tracing::warn!(%reason, "batch refused by the database; storing one by one");
                let mut out = Vec::with_capacity(orders.len());
                for new in orders {
                    match self.store.store_batch(std::slice::from_ref(&new)).await {
                        Ok(outcome) => out.push(outcome.first().map_or(
                            IngestOutcome::Rejected {
                                reason: "no outcome".into(),
                            },
                            |o| from_store(*o, &new),
                        )),
                        Err(StoreError::Rejected(reason)) => {
                            out.push(IngestOutcome::Rejected { reason })
                        }
                        Err(unavailable) => return Err(unavailable),
                    }
                }
                Ok(out)
            }
            Err(StoreError::Rejected(reason)) => Ok(vec![IngestOutcome::Rejected { reason }]),
            Err(unavailable) => Err(unavailable),
        }
    }
}

fn from_store(outcome: StoreOutcome, new: &NewOrder) -> IngestOutcome {
    match outcome {
        StoreOutcome::Stored => IngestOutcome::Stored,
        StoreOutcome::Duplicate => IngestOutcome::Duplicate,
        StoreOutcome::Conflict => IngestOutcome::Conflict {
            order_uid: new.order.order_uid.clone(),
        },
    }
}

fn empty_message() -> Violation {
    Violation {
        code: crate::domain::Code::MalformedJson,
        field: None,
        message: "the message has no value".to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use mockall::predicate::always;

    use super::*;
    use crate::app::ports::{MockOrderCache, MockOrderStore};
    use crate::domain::Code;

    const MODEL: &[u8] = include_bytes!("../../tests/fixtures/model.json");

    fn now() -> DateTime<Utc> {
        Utc::now()
    }

    fn variant(uid: &str, customer: &str) -> Vec<u8> {
        let mut value: serde_json::Value = serde_json::from_slice(MODEL).expect("model");
        value["order_uid"] = uid.into();
        value["customer_id"] = customer.into();
        serde_json::to_vec(&value).expect("json")
    }

    fn ingest(
        store: MockOrderStore,
        cache: MockOrderCache,
    ) -> Ingest<MockOrderStore, MockOrderCache> {
        Ingest::new(Arc::new(store), Arc::new(cache), Rules::default())
    }

    #[tokio::test]
    async fn a_new_order_is_stored_then_cached() {
        let mut store = MockOrderStore::new();
        store
            .expect_store_batch()
            .withf(|orders| orders.len() == 1 && orders[0].order.order_uid == "b563feb7b2b84b6test")
            .times(1)
            .returning(|_| Box::pin(async { Ok(vec![StoreOutcome::Stored]) }));
        let mut cache = MockOrderCache::new();
        cache
            .expect_insert()
            .withf(|uid, order| {
                uid == "b563feb7b2b84b6test" && order.json.starts_with(b"{\"order_uid\"")
            })
            .times(1)
            .returning(|_, _| Box::pin(async {}));
        let outcomes = ingest(store, cache)
            .ingest(&[Some(MODEL)], now())
            .await
            .expect("ok");
        assert_eq!(outcomes, vec![IngestOutcome::Stored]);
    }

    #[tokio::test]
    async fn invalid_messages_never_reach_the_store() {
        let mut store = MockOrderStore::new();
        store.expect_store_batch().never();
        let mut cache = MockOrderCache::new();
        cache.expect_insert().never();
        let outcomes = ingest(store, cache)
            .ingest(&[Some(b"{nope"), None], now())
            .await
            .expect("ok");
        assert!(
            matches!(&outcomes[0], IngestOutcome::Invalid { violations } if violations[0].code == Code::MalformedJson)
        );
        assert!(matches!(&outcomes[1], IngestOutcome::Invalid { .. }));
    }

    #[tokio::test]
    async fn duplicates_and_conflicts_are_not_cached() {
        let mut store = MockOrderStore::new();
        store.expect_store_batch().times(1).returning(|_| {
            Box::pin(async { Ok(vec![StoreOutcome::Duplicate, StoreOutcome::Conflict]) })
        });
        let mut cache = MockOrderCache::new();
        cache.expect_insert().never();
        let a = variant("a1", "x");
        let b = variant("b1", "y");
        let outcomes = ingest(store, cache)
            .ingest(&[Some(&a), Some(&b)], now())
            .await
            .expect("ok");
        assert_eq!(
            outcomes,
            vec![
                IngestOutcome::Duplicate,
                IngestOutcome::Conflict {
                    order_uid: "b1".into()
                }
            ]
        );
    }

    #[tokio::test]
    async fn the_same_id_twice_in_one_batch_is_stored_once() {
        let mut store = MockOrderStore::new();
        store
            .expect_store_batch()
            .withf(|orders| orders.len() == 1)
            .times(1)
            .returning(|_| Box::pin(async { Ok(vec![StoreOutcome::Stored]) }));
        let mut cache = MockOrderCache::new();
        cache
            .expect_insert()
            .times(1)
            .returning(|_, _| Box::pin(async {}));
        let first = variant("same", "x");
        let identical = first.clone();
        let different = variant("same", "other customer");
        let outcomes = ingest(store, cache)
            .ingest(&[Some(&first), Some(&identical), Some(&different)], now())
            .await
            .expect("ok");
        assert_eq!(
            outcomes,
            vec![
                IngestOutcome::Stored,
                IngestOutcome::Duplicate,
                IngestOutcome::Conflict {
                    order_uid: "same".into()
                }
            ]
        );
    }

    #[tokio::test]
    async fn an_unavailable_store_fails_the_whole_batch_and_caches_nothing() {
        let mut store = MockOrderStore::new();
        store
            .expect_store_batch()
            .times(1)
            .returning(|_| Box::pin(async { Err(StoreError::Unavailable("down".into())) }));
        let mut cache = MockOrderCache::new();
        cache.expect_insert().never();
        let result = ingest(store, cache)
            .ingest(&[Some(MODEL), Some(b"{bad")], now())
            .await;
        assert!(matches!(result, Err(StoreError::Unavailable(_))));
    }

    #[tokio::test]
    async fn a_refused_batch_is_retried_one_by_one_and_only_the_culprit_is_rejected() {
        let mut store = MockOrderStore::new();
        let mut sequence = mockall::Sequence::new();
        store
            .expect_store_batch()
            .withf(|orders| orders.len() == 2)
            .times(1)
            .in_sequence(&mut sequence)
            .returning(|_| Box::pin(async { Err(StoreError::Rejected("check violation".into())) }));
        store
            .expect_store_batch()
            .with(always())
            .times(2)
            .in_sequence(&mut sequence)
            .returning(|orders| {
                let bad = orders[0].order.order_uid == "bad";
                Box::pin(async move {
                    if bad {
                        Err(StoreError::Rejected("unsupported value".into()))
                    } else {
                        Ok(vec![StoreOutcome::Stored])
                    }
                })
            });
        let mut cache = MockOrderCache::new();
        cache
            .expect_insert()
            .withf(|uid, _| uid == "good")
            .times(1)
            .returning(|_, _| Box::pin(async {}));
        let good = variant("good", "x");
        let bad = variant("bad", "y");
        let outcomes = ingest(store, cache)
            .ingest(&[Some(&good), Some(&bad)], now())
            .await
            .expect("ok");
        assert_eq!(outcomes[0], IngestOutcome::Stored);
        assert!(
            matches!(&outcomes[1], IngestOutcome::Rejected { reason } if reason == "unsupported value")
        );
    }
}
