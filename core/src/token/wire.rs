//! The JSON of the stored token sets, read and written by hand.
//!
//! The SDK's token sets carry members this crate does not know, and they
//! must survive a round trip. A derive with `#[serde(flatten)]` keeps them,
//! but buffers every member into serde's private `Content` tree first and
//! reads each struct twice: slower on every session load (a cookie, a Redis
//! hash) and about 5 KB of a wasm app. These visitors read each member once:
//! a known name goes to its field, any other to `extra`.
//!
//! ```text
//! { "accessToken": …, "expiresAt": …, "futureField": … }
//!        │                  │              │
//!   Key::Known(i) ──► its field      Key::Other(name) ──► extra[name]
//! ```
//!
//! A known member given twice is an error (as the derive has it).

use alloc::string::String;
use core::fmt;

use serde::de::{self, DeserializeSeed, Deserializer, MapAccess, Visitor};
use serde::ser::{SerializeMap, Serializer};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use super::set::seconds_from_json;

/// A member name: one of the struct's known names (its index), or another.
pub(crate) enum Key {
    Known(usize),
    Other(String),
}

/// Reads a member name against `names` without allocating for known ones.
pub(crate) struct KeySeed(pub(crate) &'static [&'static str]);

impl<'de> DeserializeSeed<'de> for KeySeed {
    type Value = Key;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<Key, D::Error> {
        deserializer.deserialize_str(self)
    }
}

impl Visitor<'_> for KeySeed {
    type Value = Key;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a member name")
    }

    fn visit_str<E: de::Error>(self, name: &str) -> Result<Key, E> {
        Ok(match self.0.iter().position(|known| *known == name) {
            Some(i) => Key::Known(i),
            None => Key::Other(String::from(name)),
        })
    }
}

/// Reads the next value into `slot`, refusing a second one for `name`.
pub(crate) fn fill<'de, A, T>(
    map: &mut A,
    slot: &mut Option<T>,
    name: &'static str,
) -> Result<(), A::Error>
where
    A: MapAccess<'de>,
    T: Deserialize<'de>,
{
    if slot.is_some() {
        return Err(de::Error::duplicate_field(name));
    }
    *slot = Some(map.next_value()?);
    Ok(())
}

/// A number of seconds read leniently (a number or a numeric string;
/// anything else is unknown), as the SDK's `normalizeExpiresAt`.
pub(crate) struct Lenient(pub(crate) Option<u64>);

impl<'de> Deserialize<'de> for Lenient {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let value = Value::deserialize(deserializer)?;
        Ok(Lenient(seconds_from_json(&value)))
    }
}

/// Keeps an unknown member.
pub(crate) fn keep_other<'de, A: MapAccess<'de>>(
    map: &mut A,
    extra: &mut Map<String, Value>,
    name: String,
) -> Result<(), A::Error> {
    let value: Value = map.next_value()?;
    extra.insert(name, value);
    Ok(())
}

/// Writes `value` under `name` when it is there.
pub(crate) fn put_opt<M: SerializeMap, T: Serialize + ?Sized>(
    map: &mut M,
    name: &'static str,
    value: Option<&T>,
) -> Result<(), M::Error> {
    match value {
        Some(value) => map.serialize_entry(name, value),
        None => Ok(()),
    }
}

/// Writes the unknown members back.
pub(crate) fn put_extra<M: SerializeMap>(
    map: &mut M,
    extra: &Map<String, Value>,
) -> Result<(), M::Error> {
    for (name, value) in extra {
        map.serialize_entry(name, value)?;
    }
    Ok(())
}

/// Starts a map of unknown length.
pub(crate) fn start<S: Serializer>(serializer: S) -> Result<S::SerializeMap, S::Error> {
    serializer.serialize_map(None)
}
