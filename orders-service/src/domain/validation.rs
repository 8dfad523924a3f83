//! Validation of an incoming order message (spec 1.1): bytes in, an [`Order`] or every
//! violation found out. Each violation has a stable snake_case code, the field's path and a
//! sentence for people.
//!
//! Pure functions of the bytes, the rules and the current time: no I/O, no clock reads.

use std::collections::HashSet;

use chrono::{DateTime, Duration, Utc};
use serde::Serialize;
use serde_json::{Map, Value};

use super::order::{Delivery, Item, Order, Payment, Timestamp};

/// What was wrong, as a stable machine code.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Code {
    MalformedJson,
    WrongType,
    MissingField,
    TooLarge,
    BadOrderUid,
    EmptyField,
    NoItems,
    BadEmail,
    BadPhone,
    BadCurrency,
    NegativeAmount,
    AmountMismatch,
    GoodsTotalMismatch,
    TrackMismatch,
    FutureDate,
    NulCharacter,
}

impl Code {
    /// The code as it appears in dead-letter headers.
    pub fn as_str(self) -> &'static str {
        match self {
            Code::MalformedJson => "malformed_json",
            Code::WrongType => "wrong_type",
            Code::MissingField => "missing_field",
            Code::TooLarge => "too_large",
            Code::BadOrderUid => "bad_order_uid",
            Code::EmptyField => "empty_field",
            Code::NoItems => "no_items",
            Code::BadEmail => "bad_email",
            Code::BadPhone => "bad_phone",
            Code::BadCurrency => "bad_currency",
            Code::NegativeAmount => "negative_amount",
            Code::AmountMismatch => "amount_mismatch",
            Code::GoodsTotalMismatch => "goods_total_mismatch",
            Code::TrackMismatch => "track_mismatch",
            Code::FutureDate => "future_date",
            Code::NulCharacter => "nul_character",
        }
    }

    /// Whether `validation.strict = false` turns this rule into a warning.
    pub fn is_relaxable(self) -> bool {
        matches!(
            self,
            Code::AmountMismatch | Code::GoodsTotalMismatch | Code::TrackMismatch
        )
    }
}

/// One broken rule.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Violation {
    pub code: Code,
    /// Path of the offending field (`delivery.email`, `items[2].price`); none for the whole
    /// message.
    pub field: Option<String>,
    pub message: String,
}

impl Violation {
    fn new(code: Code, field: Option<&str>, message: impl Into<String>) -> Self {
        Self {
            code,
            field: field.map(str::to_owned),
            message: message.into(),
        }
    }
}

/// The rules' knobs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rules {
    /// Largest accepted message value, bytes.
    pub max_bytes: usize,
    /// Whether the sum rules and `track_mismatch` refuse the message (true) or only warn.
    pub strict: bool,
    /// Largest number of items in one order.
    pub max_items: usize,
    /// How far in the future `date_created` may be (clock skew allowance).
    pub max_future_skew: Duration,
}

impl Default for Rules {
    fn default() -> Self {
        Self {
            max_bytes: 1024 * 1024,
            strict: true,
            max_items: 1000,
            max_future_skew: Duration::minutes(5),
        }
    }
}

/// A valid order and the relaxed rules it broke.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Validated {
    pub order: Order,
    pub warnings: Vec<Violation>,
}

/// Checks a message value against every rule and returns the order, or all violations.
pub fn validate(
    bytes: &[u8],
    rules: &Rules,
    now: DateTime<Utc>,
) -> Result<Validated, Vec<Violation>> {
    if bytes.len() > rules.max_bytes {
        return Err(vec![Violation::new(
            Code::TooLarge,
            None,
            format!(
                "the message has {} bytes, more than the limit of {}",
                bytes.len(),
                rules.max_bytes
            ),
        )]);
    }
    let value: Value = match serde_json::from_slice(bytes) {
        Ok(value) => value,
        Err(err) => {
            return Err(vec![Violation::new(
                Code::MalformedJson,
                None,
                format!("not valid UTF-8 JSON: {err}"),
            )]);
        }
    };
    let Value::Object(root) = value else {
        return Err(vec![Violation::new(
            Code::MalformedJson,
            None,
            "the message is JSON but not an object",
        )]);
    };

    let mut reader = Reader::default();
    let order = reader.order(&root);
    let mut violations = reader.violations;
    // PostgreSQL stores no NUL character in text or jsonb, whatever field (known or not)
    // holds it: refused here, by name, rather than by the database.
    let mut nul = Vec::new();
    nul_paths(&Value::Object(root), "", &mut nul);
    violations.extend(nul.into_iter().map(|path| {
        let message = format!("{path} holds a NUL character (\\u0000), which cannot be stored");
        Violation::new(Code::NulCharacter, Some(&path), message)
    }));
    let mut warnings = Vec::new();
    for violation in check_rules(&order, &reader.unusable, rules, now) {
        if !rules.strict && violation.code.is_relaxable() {
            warnings.push(violation);
        } else {
            violations.push(violation);
        }
    }
    if violations.is_empty() {
        Ok(Validated { order, warnings })
    } else {
        Err(violations)
    }
}

/// Reads typed fields out of JSON, recording `missing_field` and `wrong_type` and the paths
/// that could not be read, so that the value rules skip them instead of piling up noise.
#[derive(Default)]
struct Reader {
    violations: Vec<Violation>,
    unusable: HashSet<String>,
}

impl Reader {
    fn field<'v>(
        &mut self,
        object: &'v Map<String, Value>,
        path: &str,
        key: &str,
    ) -> Option<&'v Value> {
        let value = object.get(key);
        if value.is_none() {
            self.violations.push(Violation::new(
                Code::MissingField,
                Some(path),
                format!("{path} is missing"),
            ));
            self.unusable.insert(path.to_owned());
        }
        value
    }

    fn wrong_type(&mut self, path: &str, expected: &str, found: &Value) {
        let found = match found {
            Value::Null => "null",
            Value::Bool(_) => "a boolean",
            Value::Number(_) => "a number",
            Value::String(_) => "a string",
            Value::Array(_) => "an array",
            Value::Object(_) => "an object",
        };
        self.violations.push(Violation::new(
            Code::WrongType,
            Some(path),
            format!("{path} must be {expected}, found {found}"),
        ));
        self.unusable.insert(path.to_owned());
    }

    fn string(&mut self, object: &Map<String, Value>, prefix: &str, key: &str) -> String {
        let path = join(prefix, key);
        match self.field(object, &path, key) {
            Some(Value::String(text)) => text.clone(),
            Some(other) => {
                self.wrong_type(&path, "a string", other);
                String::new()
            }
            None => String::new(),
        }
    }

    fn integer(&mut self, object: &Map<String, Value>, prefix: &str, key: &str) -> i64 {
        let path = join(prefix, key);
        match self.field(object, &path, key) {
            Some(Value::Number(number)) if number.is_i64() => number.as_i64().unwrap_or_default(),
            Some(other) => {
                self.wrong_type(&path, "an integer (64-bit)", other);
                0
            }
            None => 0,
        }
    }

    /// A nested object; when it is missing or not an object, every field under it is
    /// unusable and only one violation is reported for it.
    fn object<'v>(
        &mut self,
        root: &'v Map<String, Value>,
        key: &str,
        fields: &[&str],
    ) -> Option<&'v Map<String, Value>> {
        match self.field(root, key, key) {
            Some(Value::Object(inner)) => return Some(inner),
            Some(other) => self.wrong_type(key, "an object", other),
            None => {}
        }
        for field in fields {
            self.unusable.insert(join(key, field));
        }
        None
    }

    fn order(&mut self, root: &Map<String, Value>) -> Order {
        let delivery = match self.object(root, "delivery", &DELIVERY_FIELDS) {
            Some(d) => Delivery {
                name: self.string(d, "delivery", "name"),
                phone: self.string(d, "delivery", "phone"),
                zip: self.string(d, "delivery", "zip"),
                city: self.string(d, "delivery", "city"),
                address: self.string(d, "delivery", "address"),
                region: self.string(d, "delivery", "region"),
                email: self.string(d, "delivery", "email"),
            },
            None => empty_delivery(),
        };
        let payment = match self.object(root, "payment", &PAYMENT_FIELDS) {
            Some(p) => Payment {
                transaction: self.string(p, "payment", "transaction"),
                request_id: self.string(p, "payment", "request_id"),
                currency: self.string(p, "payment", "currency"),
                provider: self.string(p, "payment", "provider"),
                amount: self.integer(p, "payment", "amount"),
                payment_dt: self.integer(p, "payment", "payment_dt"),
                bank: self.string(p, "payment", "bank"),
                delivery_cost: self.integer(p, "payment", "delivery_cost"),
                goods_total: self.integer(p, "payment", "goods_total"),
                custom_fee: self.integer(p, "payment", "custom_fee"),
            },
            None => empty_payment(),
        };
        let items = match self.field(root, "items", "items") {
            Some(Value::Array(items)) => items
                .iter()
                .enumerate()
                .map(|(index, item)| self.item(index, item))
                .collect(),
            Some(other) => {
                self.wrong_type("items", "an array", other);
                Vec::new()
            }
            None => Vec::new(),
        };
        let date_created = self.date(root, "date_created");
        Order {
            order_uid: self.string(root, "", "order_uid"),
            track_number: self.string(root, "", "track_number"),
            entry: self.string(root, "", "entry"),
            delivery,
            payment,
            items,
            locale: self.string(root, "", "locale"),
            internal_signature: self.string(root, "", "internal_signature"),
            customer_id: self.string(root, "", "customer_id"),
            delivery_service: self.string(root, "", "delivery_service"),
            shardkey: self.string(root, "", "shardkey"),
            sm_id: self.integer(root, "", "sm_id"),
            date_created,
            oof_shard: self.string(root, "", "oof_shard"),
        }
    }

    fn date(&mut self, root: &Map<String, Value>, key: &str) -> Timestamp {
        let unusable = || Timestamp::from_instant(DateTime::UNIX_EPOCH);
        match self.field(root, key, key) {
            Some(Value::String(text)) => match Timestamp::parse(text) {
                Ok(time) => time,
                Err(_) => {
                    self.violations.push(Violation::new(
                        Code::WrongType,
                        Some(key),
                        format!("{key} must be an RFC 3339 date-time"),
                    ));
                    self.unusable.insert(key.to_owned());
                    unusable()
                }
            },
            Some(other) => {
                self.wrong_type(key, "an RFC 3339 string", other);
                unusable()
            }
            None => unusable(),
        }
    }

    fn item(&mut self, index: usize, value: &Value) -> Item {
        let prefix = format!("items[{index}]");
        let Value::Object(object) = value else {
            self.wrong_type(&prefix, "an object", value);
            for key in ITEM_FIELDS {
                self.unusable.insert(join(&prefix, key));
            }
            return empty_item();
        };
        Item {
            chrt_id: self.integer(object, &prefix, "chrt_id"),
            track_number: self.string(object, &prefix, "track_number"),
            price: self.integer(object, &prefix, "price"),
            rid: self.string(object, &prefix, "rid"),
            name: self.string(object, &prefix, "name"),
            sale: self.integer(object, &prefix, "sale"),
            size: self.string(object, &prefix, "size"),
            total_price: self.integer(object, &prefix, "total_price"),
            nm_id: self.integer(object, &prefix, "nm_id"),
            brand: self.string(object, &prefix, "brand"),
            status: self.integer(object, &prefix, "status"),
        }
    }
}

const DELIVERY_FIELDS: [&str; 7] = ["name", "phone", "zip", "city", "address", "region", "email"];
const PAYMENT_FIELDS: [&str; 10] = [
    "transaction",
    "request_id",
    "currency",
    "provider",
    "amount",
    "payment_dt",
    "bank",
    "delivery_cost",
    "goods_total",
    "custom_fee",
];
const ITEM_FIELDS: [&str; 11] = [
    "chrt_id",
    "track_number",
    "price",
    "rid",
    "name",
    "sale",
    "size",
    "total_price",
    "nm_id",
    "brand",
    "status",
];

fn empty_delivery() -> Delivery {
    Delivery {
        name: String::new(),
        phone: String::new(),
        zip: String::new(),
        city: String::new(),
        address: String::new(),
        region: String::new(),
        email: String::new(),
    }
}

fn empty_payment() -> Payment {
    Payment {
        transaction: String::new(),
        request_id: String::new(),
        currency: String::new(),
        provider: String::new(),
        amount: 0,
        payment_dt: 0,
        bank: String::new(),
        delivery_cost: 0,
        goods_total: 0,
        custom_fee: 0,
    }
}

fn empty_item() -> Item {
    Item {
        chrt_id: 0,
        track_number: String::new(),
        price: 0,
        rid: String::new(),
        name: String::new(),
        sale: 0,
        size: String::new(),
        total_price: 0,
        nm_id: 0,
        brand: String::new(),
        status: 0,
    }
}

/// The paths of every string (and object key) under `value` that holds a NUL character.
fn nul_paths(value: &Value, path: &str, out: &mut Vec<String>) {
    match value {
        Value::String(text) if text.contains('\0') => out.push(path.to_owned()),
        Value::Array(items) => {
            for (index, item) in items.iter().enumerate() {
                nul_paths(item, &format!("{path}[{index}]"), out);
            }
        }
        Value::Object(fields) => {
            for (key, item) in fields {
                let at = join(path, key);
                if key.contains('\0') {
                    out.push(at.clone());
                }
                nul_paths(item, &at, out);
            }
        }
        _ => {}
    }
}

fn join(prefix: &str, key: &str) -> String {
    if prefix.is_empty() {
        key.to_owned()
    } else {
        format!("{prefix}.{key}")
    }
}

/// The value rules, applied to every field that could be read, in a fixed order.
fn check_rules(
    order: &Order,
    unusable: &HashSet<String>,
    rules: &Rules,
    now: DateTime<Utc>,
) -> Vec<Violation> {
    let usable = |path: &str| !unusable.contains(path);
    let mut out = Vec::new();
    check_identity_and_presence(order, &usable, rules, &mut out);
    check_formats(order, &usable, &mut out);
    check_amounts(order, &usable, &mut out);
    check_sums_and_tracks(order, &usable, &mut out);
    if usable("date_created") && order.date_created.instant() > now + rules.max_future_skew {
        out.push(Violation::new(
            Code::FutureDate,
            Some("date_created"),
            format!(
                "date_created {} is more than {} minutes in the future",
                order.date_created.as_str(),
                rules.max_future_skew.num_minutes()
            ),
        ));
    }
    out
}

fn check_identity_and_presence(
    order: &Order,
    usable: &impl Fn(&str) -> bool,
    rules: &Rules,
    out: &mut Vec<Violation>,
) {
    if usable("order_uid") && !valid_order_uid(&order.order_uid) {
        out.push(Violation::new(
            Code::BadOrderUid,
            Some("order_uid"),
            "order_uid must be 1 to 64 characters of A-Z, a-z, 0-9, '_' or '-'",
        ));
    }
    let mut required: Vec<(String, &str)> = vec![
        ("track_number".into(), &order.track_number),
        ("entry".into(), &order.entry),
        ("customer_id".into(), &order.customer_id),
        ("delivery_service".into(), &order.delivery_service),
        ("locale".into(), &order.locale),
        ("delivery.name".into(), &order.delivery.name),
        ("delivery.phone".into(), &order.delivery.phone),
        ("delivery.city".into(), &order.delivery.city),
        ("delivery.address".into(), &order.delivery.address),
        ("payment.transaction".into(), &order.payment.transaction),
        ("payment.currency".into(), &order.payment.currency),
        ("payment.provider".into(), &order.payment.provider),
    ];
    for (index, item) in order.items.iter().enumerate() {
        for (key, value) in [
            ("name", &item.name),
            ("rid", &item.rid),
            ("brand", &item.brand),
            ("track_number", &item.track_number),
        ] {
            required.push((format!("items[{index}].{key}"), value));
        }
    }
    for (path, value) in &required {
        if usable(path) && value.trim().is_empty() {
            out.push(Violation::new(
                Code::EmptyField,
                Some(path),
                format!("{path} is empty"),
            ));
        }
    }
    if usable("items") && order.items.is_empty() {
        out.push(Violation::new(
            Code::NoItems,
            Some("items"),
            "the order has no items",
        ));
    } else if order.items.len() > rules.max_items {
        out.push(Violation::new(
            Code::NoItems,
            Some("items"),
            format!(
                "the order has {} items, more than {}",
                order.items.len(),
                rules.max_items
            ),
        ));
    }
}

fn check_formats(order: &Order, usable: &impl Fn(&str) -> bool, out: &mut Vec<Violation>) {
    if usable("delivery.email") && !valid_email(&order.delivery.email) {
        out.push(Violation::new(
            Code::BadEmail,
            Some("delivery.email"),
            "delivery.email is not an e-mail address",
        ));
    }
    let phone = &order.delivery.phone;
    if usable("delivery.phone") && !phone.trim().is_empty() && !valid_phone(phone) {
        out.push(Violation::new(
            Code::BadPhone,
            Some("delivery.phone"),
            "delivery.phone must be '+' followed by 5 to 20 digits",
        ));
    }
    let currency = &order.payment.currency;
    if usable("payment.currency")
        && !currency.trim().is_empty()
        && !(currency.len() == 3 && currency.bytes().all(|b| b.is_ascii_uppercase()))
    {
        out.push(Violation::new(
            Code::BadCurrency,
            Some("payment.currency"),
            "payment.currency must be three upper-case letters (ISO 4217)",
        ));
    }
}

fn check_amounts(order: &Order, usable: &impl Fn(&str) -> bool, out: &mut Vec<Violation>) {
    let p = &order.payment;
    let mut non_negative: Vec<(String, i64)> = vec![
        ("payment.amount".into(), p.amount),
        ("payment.delivery_cost".into(), p.delivery_cost),
        ("payment.goods_total".into(), p.goods_total),
        ("payment.custom_fee".into(), p.custom_fee),
        ("sm_id".into(), order.sm_id),
    ];
    for (index, item) in order.items.iter().enumerate() {
        for (key, value) in [
            ("price", item.price),
            ("sale", item.sale),
            ("total_price", item.total_price),
            ("chrt_id", item.chrt_id),
            ("nm_id", item.nm_id),
        ] {
            non_negative.push((format!("items[{index}].{key}"), value));
        }
    }
    for (path, value) in &non_negative {
        if usable(path) && *value < 0 {
            out.push(Violation::new(
                Code::NegativeAmount,
                Some(path),
                format!("{path} is {value}, below zero"),
            ));
        }
    }
    for (index, item) in order.items.iter().enumerate() {
        let path = format!("items[{index}].sale");
        if usable(&path) && item.sale > 100 {
            out.push(Violation::new(
                Code::NegativeAmount,
                Some(&path),
                format!("{path} is {}, above 100 percent", item.sale),
            ));
        }
    }
}

fn check_sums_and_tracks(order: &Order, usable: &impl Fn(&str) -> bool, out: &mut Vec<Violation>) {
    let p = &order.payment;
    let sum_fields = [
        "payment.amount",
        "payment.goods_total",
        "payment.delivery_cost",
        "payment.custom_fee",
    ];
    if sum_fields.iter().all(|f| usable(f)) {
        let expected = p
            .goods_total
            .checked_add(p.delivery_cost)
            .and_then(|sum| sum.checked_add(p.custom_fee));
        if expected != Some(p.amount) {
            out.push(Violation::new(
                Code::AmountMismatch,
                Some("payment.amount"),
                format!(
                    "payment.amount is {} but goods_total + delivery_cost + custom_fee is {}",
                    p.amount,
                    expected.map_or_else(|| "too large".to_owned(), |e| e.to_string())
                ),
            ));
        }
    }
    let items_usable = usable("items")
        && (0..order.items.len()).all(|i| usable(&format!("items[{i}].total_price")));
    // An empty item list adds up to 0: a goods_total above it is a mismatch too, reported
    // beside `no_items` (every broken rule is listed).
    if usable("payment.goods_total") && items_usable {
        let sum = order
            .items
            .iter()
            .try_fold(0_i64, |acc, item| acc.checked_add(item.total_price));
        if sum != Some(p.goods_total) {
            out.push(Violation::new(
                Code::GoodsTotalMismatch,
                Some("payment.goods_total"),
                format!(
                    "payment.goods_total is {} but the items' total_price add up to {}",
                    p.goods_total,
                    sum.map_or_else(|| "too large".to_owned(), |s| s.to_string())
                ),
            ));
        }
    }
    if usable("track_number") && !order.track_number.is_empty() {
        for (index, item) in order.items.iter().enumerate() {
            let path = format!("items[{index}].track_number");
            if usable(&path)
                && !item.track_number.is_empty()
                && item.track_number != order.track_number
            {
                out.push(Violation::new(
                    Code::TrackMismatch,
                    Some(&path),
                    format!(
                        "{path} is {:?}, not the order's {:?}",
                        item.track_number, order.track_number
                    ),
                ));
            }
        }
    }
}

/// `[A-Za-z0-9_-]{1,64}`.
pub fn valid_order_uid(uid: &str) -> bool {
    !uid.is_empty()
        && uid.len() <= 64
        && uid
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
}

/// One `@`, a local part, and a domain with a dot and no empty label; no spaces.
fn valid_email(email: &str) -> bool {
    if email.len() > 254 || email.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return false;
    }
    let Some((local, domain)) = email.split_once('@') else {
        return false;
    };
    !local.is_empty()
        && !domain.contains('@')
        && domain.contains('.')
        && domain.split('.').all(|label| !label.is_empty())
}

/// `+` and 5 to 20 digits.
fn valid_phone(phone: &str) -> bool {
    phone.strip_prefix('+').is_some_and(|digits| {
        (5..=20).contains(&digits.len()) && digits.bytes().all(|b| b.is_ascii_digit())
    })
}

#[cfg(test)]
#[path = "validation_tests.rs"]
mod tests;
