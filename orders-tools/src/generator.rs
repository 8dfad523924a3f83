//! Generated orders for demos, load and tests: realistic valid orders, invalid messages of a
//! chosen kind, and conflicting versions of an earlier order, all from a seeded generator so
//! that a seed and a base time repeat a run exactly.
//!
//! Pure: no I/O and no clock reads (the base time is passed in), and nothing here decides
//! what a message means; `domain::validation` stays the only judge of validity.

use chrono::{DateTime, Duration, Utc};
use fake::Fake;
use fake::faker::address::en::{BuildingNumber, CityName, StateName, StreetName};
use fake::faker::company::en::CompanyName;
use fake::faker::name::en::{FirstName, LastName};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde_json::Value;

use orders_service::domain::validation::Code;
use orders_service::domain::{Delivery, Item, Order, Payment, Timestamp};

/// Characters of generated identifiers: lower-case so that they read well in URLs.
const ID_CHARS: &[u8] = b"0123456789abcdefghijklmnopqrstuvwxyz";
const TRACK_CHARS: &[u8] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ";
const CURRENCIES: &[&str] = &["USD", "EUR", "RUB", "GBP", "KZT"];
const PROVIDERS: &[&str] = &["wbpay", "stripe", "paypal", "yookassa"];
const BANKS: &[&str] = &["alpha", "sber", "tinkoff", "vtb", "raiffeisen"];
const DELIVERY_SERVICES: &[&str] = &["meest", "dhl", "ups", "cdek", "boxberry"];
const LOCALES: &[&str] = &["en", "ru", "de", "fr"];
const ENTRIES: &[&str] = &["WBIL", "WBRU", "WBDE"];
const EMAIL_DOMAINS: &[&str] = &[
    "gmail.com",
    "yahoo.com",
    "outlook.com",
    "example.com",
    "mail.ru",
    "proton.me",
];
const PRODUCTS: &[&str] = &[
    "Mascara",
    "Lipstick",
    "Running shoes",
    "Winter jacket",
    "Wireless earbuds",
    "Coffee grinder",
    "Yoga mat",
    "Backpack",
    "Desk lamp",
    "Phone case",
    "Wool scarf",
    "Water bottle",
    "Board game",
    "Face cream",
    "Denim jeans",
    "Cotton T-shirt",
];
const SIZES: &[&str] = &["0", "XS", "S", "M", "L", "XL", "38", "40", "42", "44"];
const ITEM_STATUSES: &[i64] = &[200, 201, 202, 203];
const DELIVERY_COSTS: &[i64] = &[0, 500, 1000, 1500, 2500];
const DAY_SECONDS: i64 = 24 * 60 * 60;
/// How many brands a generator sells: a shop has a catalogue, so brands repeat across
/// orders, and picking from a list is much cheaper than composing a name per item.
const BRANDS: usize = 300;

/// A kind of message `validation::validate` refuses, for the producer's mixes of bad input.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum InvalidKind {
    /// Not JSON, or JSON but not an object.
    MalformedJson,
    /// A field of the wrong JSON type.
    WrongType,
    /// A required field left out.
    MissingField,
    /// `payment.amount` (and sometimes `payment.goods_total`) not adding up.
    SumMismatch,
    /// `date_created` days in the future.
    FutureDate,
}

impl InvalidKind {
    /// Every kind, in declaration order.
    pub const ALL: [InvalidKind; 5] = [
        InvalidKind::MalformedJson,
        InvalidKind::WrongType,
        InvalidKind::MissingField,
        InvalidKind::SumMismatch,
        InvalidKind::FutureDate,
    ];

    /// The code `validate` always reports for a message of this kind. A sum mismatch may
    /// also report `goods_total_mismatch`, but `amount_mismatch` is always among its codes.
    pub fn expected_code(self) -> Code {
        match self {
            InvalidKind::MalformedJson => Code::MalformedJson,
            InvalidKind::WrongType => Code::WrongType,
            InvalidKind::MissingField => Code::MissingField,
            InvalidKind::SumMismatch => Code::AmountMismatch,
            InvalidKind::FutureDate => Code::FutureDate,
        }
    }
}

/// A deterministic source of orders: the same seed and base time give the same sequence.
#[derive(Debug, Clone)]
pub struct Generator {
    rng: ChaCha8Rng,
    now: DateTime<Utc>,
    brands: Vec<String>,
}

impl Generator {
    /// A generator whose orders were all created in the 30 days before `now`.
    pub fn new(seed: u64, now: DateTime<Utc>) -> Self {
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let brands = (0..BRANDS)
            .map(|_| CompanyName().fake_with_rng(&mut rng))
            .collect();
        Self { rng, now, brands }
    }

    /// The base time orders are generated against.
    pub fn now(&self) -> DateTime<Utc> {
        self.now
    }

    /// A new order that passes every rule of `validation::validate` at the base time, with a
    /// fresh random `order_uid`.
    pub fn order(&mut self) -> Order {
        let order_uid = self.id(20);
        let track_number = format!("WBIL{}", self.chars(TRACK_CHARS, 10));
        let item_count = self.rng.random_range(1..=5);
        let items: Vec<Item> = (0..item_count).map(|_| self.item(&track_number)).collect();
        let goods_total = items.iter().map(|item| item.total_price).sum::<i64>();
        let delivery_cost = *self.pick(DELIVERY_COSTS);
        // Most orders pay no customs fee, as in the contract's example.
        let custom_fee = if self.rng.random_bool(0.2) {
            self.rng.random_range(1..=50) * 10
        } else {
            0
        };
        let now = self.now.timestamp();
        let created = now - self.rng.random_range(0..30 * DAY_SECONDS);
        let paid = (created + self.rng.random_range(0..=300)).min(now);
        let payment = Payment {
            transaction: order_uid.clone(),
            request_id: if self.rng.random_bool(0.3) {
                self.id(12)
            } else {
                String::new()
            },
            currency: (*self.pick(CURRENCIES)).to_owned(),
            provider: (*self.pick(PROVIDERS)).to_owned(),
            amount: goods_total + delivery_cost + custom_fee,
            payment_dt: paid,
            bank: (*self.pick(BANKS)).to_owned(),
            delivery_cost,
            goods_total,
            custom_fee,
        };
        let delivery = self.delivery();
        Order {
            customer_id: format!(
                "{}{}",
                delivery
                    .name
                    .split(' ')
                    .next()
                    .unwrap_or("customer")
                    .to_lowercase(),
                self.rng.random_range(1..10_000)
            ),
            order_uid,
            track_number,
            entry: (*self.pick(ENTRIES)).to_owned(),
            delivery,
            payment,
            items,
            locale: (*self.pick(LOCALES)).to_owned(),
            internal_signature: String::new(),
            delivery_service: (*self.pick(DELIVERY_SERVICES)).to_owned(),
            shardkey: self.rng.random_range(0..10).to_string(),
            sm_id: self.rng.random_range(1..1000),
            date_created: Timestamp::from_instant(
                DateTime::from_timestamp(created, 0).unwrap_or(self.now),
            ),
            oof_shard: self.rng.random_range(1..=2).to_string(),
        }
    }

    /// Message bytes that `validate` refuses with `kind.expected_code()`.
    pub fn invalid(&mut self, kind: InvalidKind) -> Vec<u8> {
        self.invalid_record(kind).1
    }

    /// Like [`Generator::invalid`], with the `order_uid` of the order the message was made
    /// from, so that a producer can key it like a real order.
    pub fn invalid_record(&mut self, kind: InvalidKind) -> (String, Vec<u8>) {
        let order = self.order();
        let bytes = match kind {
            InvalidKind::MalformedJson => self.malformed(&order),
            InvalidKind::WrongType => self.mutated(&order, Self::wrong_type),
            InvalidKind::MissingField => self.mutated(&order, Self::missing_field),
            InvalidKind::SumMismatch => {
                let mut order = order.clone();
                let delta = self.rng.random_range(1..=500);
                // Raising goods_total alone breaks both sums; raising amount alone breaks
                // one. Either way `amount_mismatch` is reported.
                if self.rng.random_bool(0.5) {
                    order.payment.goods_total += delta;
                } else {
                    order.payment.amount += delta;
                }
                order.canonical_json()
            }
            InvalidKind::FutureDate => {
                let mut order = order.clone();
                // Days ahead rather than minutes, so that the message stays in the future
                // for any consumer that reads it on the same day.
                let ahead = self.rng.random_range(2 * DAY_SECONDS..=60 * DAY_SECONDS);
                order.date_created = Timestamp::from_instant(
                    DateTime::from_timestamp(self.now.timestamp() + ahead, 0)
                        .unwrap_or(self.now + Duration::days(2)),
                );
                order.canonical_json()
            }
        };
        (order.order_uid, bytes)
    }

    /// A different valid order under `original`'s `order_uid`: another delivery address and
    /// a different delivery cost, with the payment sums kept consistent.
    pub fn conflicting(&mut self, original: &Order) -> Order {
        let mut order = original.clone();
        order.delivery = self.delivery();
        let change = 100 * self.rng.random_range(1..=20);
        let raised = (
            order.payment.delivery_cost.checked_add(change),
            order.payment.amount.checked_add(change),
        );
        if let (Some(cost), Some(amount)) = raised {
            order.payment.delivery_cost = cost;
            order.payment.amount = amount;
        } else {
            // Only an order with absurd amounts gets here; lowering keeps the sums right.
            let lower = change.min(order.payment.delivery_cost);
            order.payment.delivery_cost -= lower;
            order.payment.amount -= lower;
        }
        order
    }

    fn delivery(&mut self) -> Delivery {
        let first: &str = FirstName().fake_with_rng(&mut self.rng);
        let last: &str = LastName().fake_with_rng(&mut self.rng);
        let building: String = BuildingNumber().fake_with_rng(&mut self.rng);
        let street: String = StreetName().fake_with_rng(&mut self.rng);
        let digits = self.rng.random_range(10..=12);
        let phone = format!(
            "+{}{}",
            self.rng.random_range(1..=9),
            self.chars(b"0123456789", digits - 1)
        );
        let email = format!(
            "{}.{}{}@{}",
            email_part(first),
            email_part(last),
            self.rng.random_range(1..1000),
            self.pick(EMAIL_DOMAINS)
        );
        Delivery {
            name: format!("{first} {last}"),
            phone,
            // Five or six digits, leading zeros kept: a zip code is text, not a number.
            zip: {
                let digits = self.rng.random_range(5..=6);
                self.chars(b"0123456789", digits)
            },
            city: CityName().fake_with_rng(&mut self.rng),
            address: format!("{street} {building}"),
            region: StateName().fake_with_rng(&mut self.rng),
            email,
        }
    }

    fn item(&mut self, track_number: &str) -> Item {
        let price = self.rng.random_range(100..=100_000);
        let sale = if self.rng.random_bool(0.6) {
            self.rng.random_range(1..=70)
        } else {
            0
        };
        Item {
            chrt_id: self.rng.random_range(1_000_000..10_000_000),
            track_number: track_number.to_owned(),
            price,
            rid: self.id(21),
            name: (*self.pick(PRODUCTS)).to_owned(),
            sale,
            size: (*self.pick(SIZES)).to_owned(),
            // Whole minor units, rounded down, as in the contract's example (453 at 30 % off
            // is 317).
            total_price: price * (100 - sale) / 100,
            nm_id: self.rng.random_range(1_000_000..10_000_000),
            brand: self.brands[self.rng.random_range(0..self.brands.len())].clone(),
            status: *self.pick(ITEM_STATUSES),
        }
    }

    fn malformed(&mut self, order: &Order) -> Vec<u8> {
        let json = order.canonical_json();
        match self.rng.random_range(0..4) {
            // Any proper prefix of an object lacks its closing brace.
            0 => json[..self.rng.random_range(1..json.len())].to_vec(),
            1 => {
                let mut bytes = json;
                bytes.extend_from_slice(b"}");
                bytes
            }
            // JSON, but not an object.
            2 => {
                let mut bytes = b"[".to_vec();
                bytes.extend_from_slice(&json);
                bytes.extend_from_slice(b"]");
                bytes
            }
            _ => format!("order {} please", order.order_uid).into_bytes(),
        }
    }

    fn mutated(&mut self, order: &Order, mutate: fn(&mut Self, &mut Value)) -> Vec<u8> {
        let mut value = serde_json::to_value(order).unwrap_or(Value::Null);
        mutate(self, &mut value);
        serde_json::to_vec(&value).unwrap_or_default()
    }

    fn wrong_type(&mut self, value: &mut Value) {
        match self.rng.random_range(0..7) {
            0 => stringify_number(&mut value["payment"]["amount"]),
            1 => stringify_number(&mut value["sm_id"]),
            2 => stringify_number(&mut value["items"][0]["price"]),
            3 => value["delivery"]["zip"] = Value::from(self.rng.random_range(10_000..99_999)),
            4 => {
                value["delivery"]["phone"] =
                    Value::from(self.rng.random_range(1_000_000..9_999_999))
            }
            5 => {
                let created = value["date_created"].take();
                let seconds = created
                    .as_str()
                    .and_then(|text| DateTime::parse_from_rfc3339(text).ok())
                    .map_or(0, |time| time.timestamp());
                value["date_created"] = Value::from(seconds);
            }
            _ => {
                // An object where the array of items belongs.
                let first = value["items"][0].take();
                value["items"] = first;
            }
        }
    }

    fn missing_field(&mut self, value: &mut Value) {
        let (parent, key): (Option<&str>, &str) = match self.rng.random_range(0..8) {
            0 => (None, "order_uid"),
            1 => (None, "delivery"),
            2 => (Some("payment"), "amount"),
            3 => (None, "date_created"),
            4 => (None, "track_number"),
            5 => (None, "customer_id"),
            6 => (Some("delivery"), "email"),
            _ => (None, "items"),
        };
        let object = match parent {
            Some(parent) => &mut value[parent],
            None => value,
        };
        if let Value::Object(map) = object {
            map.remove(key);
        }
    }

    fn id(&mut self, len: usize) -> String {
        self.chars(ID_CHARS, len)
    }

    fn chars(&mut self, alphabet: &[u8], len: usize) -> String {
        (0..len)
            .map(|_| char::from(alphabet[self.rng.random_range(0..alphabet.len())]))
            .collect()
    }

    /// One element of a non-empty constant list.
    fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.rng.random_range(0..items.len())]
    }
}

/// A name reduced to what reads well in an e-mail address.
fn email_part(name: &str) -> String {
    let part: String = name
        .chars()
        .filter(char::is_ascii_alphanumeric)
        .map(|c| c.to_ascii_lowercase())
        .collect();
    if part.is_empty() {
        "customer".to_owned()
    } else {
        part
    }
}

fn stringify_number(value: &mut Value) {
    *value = Value::from(value.to_string());
}

#[cfg(test)]
mod tests {
    use std::collections::HashSet;

    use chrono::TimeZone;

    use super::*;
    use orders_service::domain::{Rules, validate};

    fn base_time() -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2025, 6, 1, 12, 0, 0)
            .single()
            .expect("a valid date")
    }

    #[test]
    fn generated_orders_are_valid_and_unique() {
        let now = base_time();
        let mut generator = Generator::new(42, now);
        let mut uids = HashSet::new();
        for _ in 0..2_000 {
            let order = generator.order();
            let bytes = order.canonical_json();
            let validated = match validate(&bytes, &Rules::default(), now) {
                Ok(validated) => validated,
                Err(violations) => panic!("{order:#?} refused: {violations:#?}"),
            };
            assert!(validated.warnings.is_empty(), "{:?}", validated.warnings);
            assert_eq!(validated.order, order, "the order survives a round trip");
            assert!((1..=5).contains(&order.items.len()));
            assert!(order.date_created.instant() <= now);
            assert!(order.date_created.instant() > now - Duration::days(30));
            let digits = order.delivery.phone.len() - 1;
            assert!((10..=12).contains(&digits), "{}", order.delivery.phone);
            assert!(uids.insert(order.order_uid.clone()), "{}", order.order_uid);
        }
    }

    #[test]
    fn the_same_seed_repeats_and_another_seed_differs() {
        let now = base_time();
        let first: Vec<Order> = {
            let mut generator = Generator::new(7, now);
            (0..100).map(|_| generator.order()).collect()
        };
        let again: Vec<Order> = {
            let mut generator = Generator::new(7, now);
            (0..100).map(|_| generator.order()).collect()
        };
        let other: Vec<Order> = {
            let mut generator = Generator::new(8, now);
            (0..100).map(|_| generator.order()).collect()
        };
        assert_eq!(first, again);
        assert!(first.iter().zip(&other).all(|(a, b)| a != b));
    }

    #[test]
    fn each_invalid_kind_is_refused_with_its_code() {
        let now = base_time();
        let mut generator = Generator::new(3, now);
        for kind in InvalidKind::ALL {
            // Enough rounds to meet every variant of each kind.
            for _ in 0..200 {
                let bytes = generator.invalid(kind);
                let violations = match validate(&bytes, &Rules::default(), now) {
                    Ok(_) => panic!("{kind:?} accepted: {}", String::from_utf8_lossy(&bytes)),
                    Err(violations) => violations,
                };
                let codes: Vec<Code> = violations.iter().map(|v| v.code).collect();
                assert!(
                    codes.contains(&kind.expected_code()),
                    "{kind:?} refused with {codes:?}"
                );
                let allowed = |code: &Code| {
                    *code == kind.expected_code()
                        || (kind == InvalidKind::SumMismatch && *code == Code::GoodsTotalMismatch)
                };
                assert!(
                    codes.iter().all(allowed),
                    "{kind:?} also broke other rules: {violations:?}"
                );
            }
        }
    }

    #[test]
    fn conflicting_keeps_the_uid_and_changes_the_payload() {
        let now = base_time();
        let mut generator = Generator::new(11, now);
        for _ in 0..100 {
            let original = generator.order();
            let conflict = generator.conflicting(&original);
            assert_eq!(conflict.order_uid, original.order_uid);
            assert_ne!(conflict.canonical_json(), original.canonical_json());
            let validated = validate(&conflict.canonical_json(), &Rules::default(), now)
                .expect("a conflicting order is still valid");
            assert!(validated.warnings.is_empty());
        }
    }
}
