//! The order as the contract defines it (`model.json`): field names, types and order are
//! part of the contract, so the served JSON is produced by serializing this type.
//!
//! Plain data only: no I/O, no validation here (see `validation`).

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

/// One order. Field order is the serialization order and must match `model.json`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Order {
    pub order_uid: String,
    pub track_number: String,
    pub entry: String,
    pub delivery: Delivery,
    pub payment: Payment,
    pub items: Vec<Item>,
    pub locale: String,
    pub internal_signature: String,
    pub customer_id: String,
    pub delivery_service: String,
    pub shardkey: String,
    pub sm_id: i64,
    /// As the producer wrote it: served exactly so, offset and fraction included.
    #[schema(value_type = String, format = DateTime)]
    pub date_created: Timestamp,
    pub oof_shard: String,
}

/// An RFC 3339 date-time as written in a message, and the instant it names. Served as
/// written (`2021-11-26T06:22:19+03:00` stays so); stored, compared and listed by the
/// instant.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Timestamp {
    text: String,
    instant: DateTime<Utc>,
}

impl Timestamp {
    /// Parses RFC 3339 text, keeping it.
    pub fn parse(text: &str) -> Result<Self, chrono::ParseError> {
        let instant = DateTime::parse_from_rfc3339(text)?.with_timezone(&Utc);
        Ok(Self {
            text: text.to_owned(),
            instant,
        })
    }

    /// The instant written as in `model.json`: UTC, `Z`, whole seconds when there is no
    /// fraction.
    pub fn from_instant(instant: DateTime<Utc>) -> Self {
        Self {
            text: instant.to_rfc3339_opts(chrono::SecondsFormat::AutoSi, true),
            instant,
        }
    }

    /// The instant.
    pub fn instant(&self) -> DateTime<Utc> {
        self.instant
    }

    /// The text as written.
    pub fn as_str(&self) -> &str {
        &self.text
    }
}

impl Serialize for Timestamp {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.text)
    }
}

impl<'de> Deserialize<'de> for Timestamp {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        Self::parse(&text).map_err(serde::de::Error::custom)
    }
}

/// Where the order goes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Delivery {
    pub name: String,
    pub phone: String,
    pub zip: String,
    pub city: String,
    pub address: String,
    pub region: String,
    pub email: String,
}

/// How it was paid. Money in minor units.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Payment {
    pub transaction: String,
    pub request_id: String,
    pub currency: String,
    pub provider: String,
    pub amount: i64,
    /// Unix time, seconds.
    pub payment_dt: i64,
    pub bank: String,
    pub delivery_cost: i64,
    pub goods_total: i64,
    pub custom_fee: i64,
}

/// One line of the order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Item {
    pub chrt_id: i64,
    pub track_number: String,
    pub price: i64,
    pub rid: String,
    pub name: String,
    pub sale: i64,
    pub size: String,
    pub total_price: i64,
    pub nm_id: i64,
    pub brand: String,
    pub status: i64,
}

/// The summary shown in lists of recent orders.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct OrderSummary {
    pub order_uid: String,
    #[serde(with = "rfc3339")]
    #[schema(value_type = String, format = DateTime)]
    pub date_created: DateTime<Utc>,
    pub customer_id: String,
    /// `payment.amount`, minor units.
    pub amount: i64,
    pub currency: String,
    pub item_count: i64,
}

impl Order {
    /// The canonical JSON: this type serialized, unknown input fields dropped, the contract's
    /// field order. Its SHA-256 decides whether a second message is a duplicate or a conflict.
    pub fn canonical_json(&self) -> Vec<u8> {
        // Serializing plain strings and integers cannot fail.
        serde_json::to_vec(self).unwrap_or_default()
    }

    /// The list entry for this order.
    pub fn summary(&self) -> OrderSummary {
        OrderSummary {
            order_uid: self.order_uid.clone(),
            date_created: self.date_created.instant(),
            customer_id: self.customer_id.clone(),
            amount: self.payment.amount,
            currency: self.payment.currency.clone(),
            item_count: self.items.len() as i64,
        }
    }
}

/// RFC 3339 in UTC with `Z` and whole seconds when there is no fraction, as in `model.json`.
pub mod rfc3339 {
    use chrono::{DateTime, SecondsFormat, Utc};
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(
        value: &DateTime<Utc>,
        serializer: S,
    ) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&value.to_rfc3339_opts(SecondsFormat::AutoSi, true))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(
        deserializer: D,
    ) -> Result<DateTime<Utc>, D::Error> {
        let text = String::deserialize(deserializer)?;
        DateTime::parse_from_rfc3339(&text)
            .map(|t| t.with_timezone(&Utc))
            .map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_timestamp_is_served_as_written_and_compared_by_its_instant() {
        let written = Timestamp::parse("2021-11-26T09:22:19.5+03:00").expect("rfc 3339");
        assert_eq!(written.as_str(), "2021-11-26T09:22:19.5+03:00");
        assert_eq!(
            serde_json::to_string(&written).expect("json"),
            "\"2021-11-26T09:22:19.5+03:00\""
        );
        let utc = Timestamp::parse("2021-11-26T06:22:19.5Z").expect("rfc 3339");
        assert_eq!(written.instant(), utc.instant());
        assert_ne!(written, utc, "different text is a different payload");
        assert_eq!(
            Timestamp::from_instant(utc.instant()).as_str(),
            "2021-11-26T06:22:19.500Z"
        );
        assert!(Timestamp::parse("yesterday").is_err());
    }
}
